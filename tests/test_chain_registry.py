"""Identities from the chain: the contract's party registry, ChainRegistry, and a gRPC server using it.

Attacks first: a certificate in the manifest but not on chain, a certificate registered as one
device acting as another or as the coordinator, a revoked device, the chain unavailable, a stream
of unknown certificates. Everything runs in this process on the embedded py-evm chain.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from eth_hash.auto import keccak

import ppbfl
from ppbfl.chain import Chain
from ppbfl.chain.errors import ChainError, ChainRevertError, ChainValueError
from ppbfl.chain.rounds import ROLE_COORDINATOR, ROLE_DEALER, ROLE_DEVICE, ROLE_EDGE
from ppbfl.cli import main
from ppbfl.errors import ConfigError
from ppbfl.field import MERSENNE61
from ppbfl.protocol.chain_registry import ChainRegistry, RegistryBusyError, RegistryUnavailableError
from ppbfl.protocol.creds import write_credentials
from ppbfl.protocol.errors import PeerAuthError
from ppbfl.protocol.grpc_transport import GrpcTransport, serve
from ppbfl.protocol.ledger import ChainLedger
from ppbfl.protocol.messages import PRZSOffer, SetupEdge
from ppbfl.protocol.registry import Identity, Registry
from ppbfl.protocol.testing import EchoHandler, EchoRequest
from ppbfl.protocol.tls import issue, load_credentials, make_ca


def _ppbfl(*args: str) -> list[str]:
    return [sys.executable, "-m", "ppbfl.cli", *args]


def _env() -> dict[str, str]:
    root = str(Path(ppbfl.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""), "GRPC_VERBOSITY": "NONE"}


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingContract:
    """The real contract, counting its ``party`` view calls (what the rate bound limits)."""

    def __init__(self, contract) -> None:
        self.contract, self.calls = contract, 0

    def party(self, fingerprint: bytes) -> tuple[int, int, bool]:
        self.calls += 1
        return self.contract.party(fingerprint)


class DownContract:
    """A contract whose node does not answer (what ``Chain.connect`` users see when it goes down)."""

    def party(self, fingerprint: bytes) -> tuple[int, int, bool]:
        raise ConnectionError("connection refused")


@pytest.fixture(scope="module")
def net():
    """A consortium CA; on chain (t=1, n=2, 4 devices): edge-1/2, coordinator, dealer, device-0 with
    their own certificates, and device 3 holding a certificate its owner had named ``device-4``.
    ``device-1`` is in the manifest only."""
    ca = make_ca("ppbfl chain-registry test")
    creds = {p: issue(ca, p) for p in ("edge-1", "edge-2", "coordinator", "dealer", "device-0", "device-1")}
    creds["device-3 named device-4"] = issue(ca, "device-4")
    chain = Chain.embedded(accounts=12)
    fps = {p: creds[p].fingerprint for p in ("edge-1", "edge-2", "coordinator", "dealer", "device-0")}
    fps["device-3"] = creds["device-3 named device-4"].fingerprint
    fps["flower-server"] = b"\x07" * 32  # a manifest's extra party: no role on chain, left out
    ledger = ChainLedger(
        chain, 1, 2, 4, edge_accounts={1: chain.new_account(), 2: chain.new_account()},
        device_accounts=[chain.new_account() for _ in range(4)], fingerprints=fps,
    )
    manifest = Registry({p: c.fingerprint for p, c in creds.items() if " " not in p})
    yield {"ca": ca, "creds": creds, "chain": chain, "ledger": ledger, "contract": ledger.contract, "manifest": manifest}
    chain.close()


def echo(client: GrpcTransport) -> str:
    values = np.arange(3, dtype=np.uint64) % np.uint64(MERSENNE61)
    return client.call("edge-1", EchoRequest(values=values, op="echo", seconds=0.0), round=0, timeout=10).message.caller


def client(net, cred_name: str, party: str | None = None, address: str = "") -> GrpcTransport:
    creds = net["creds"][cred_name]
    return GrpcTransport(party or creds.party_id, creds, net["ca"].cert_pem, {"edge-1": address}, retries=0)


# ------------------------------------------------------------------------ the server, over gRPC


def test_a_certificate_in_the_manifest_but_not_on_chain_is_refused(net):
    registry = ChainRegistry(net["contract"])
    assert net["manifest"].identify(net["creds"]["device-1"].fingerprint) is not None  # the manifest would accept it
    with serve(EchoHandler(), "edge-1", net["creds"]["edge-1"], net["ca"].cert_pem, registry=registry) as server:
        with client(net, "device-0", address=server.address) as ok:
            assert echo(ok) == "device-0"
        fp = net["creds"]["device-1"].fingerprint.hex()[:16]
        with client(net, "device-1", address=server.address) as unlisted, pytest.raises(PeerAuthError, match=f"{fp}.*not registered"):
            echo(unlisted)


def test_a_certificate_registered_as_device_3_cannot_act_as_device_4_or_as_the_coordinator(net):
    contract, evil = net["contract"], net["creds"]["device-3 named device-4"]
    registry = ChainRegistry(contract)
    assert registry.identify(evil.fingerprint) == Identity("device-3", "device", 3)  # the chain's id, not the name
    with (
        serve(EchoHandler(), "edge-1", net["creds"]["edge-1"], net["ca"].cert_pem, registry=registry) as server,
        client(net, "device-3 named device-4", address=server.address) as as_4,
        pytest.raises(PeerAuthError, match="sender"),
    ):
        echo(as_4)
    # a second CA-issued certificate, named "coordinator", registered as device 3 (the old one revoked)
    net["creds"]["device-3 named coordinator"] = named_coordinator = issue(net["ca"], "coordinator")
    contract.revoke_party(evil.fingerprint)
    contract.register_parties([(named_coordinator.fingerprint, ROLE_DEVICE, 3)])
    registry = ChainRegistry(contract)
    assert registry.identify(named_coordinator.fingerprint) == Identity("device-3", "device", 3)
    assert registry.identify(evil.fingerprint) is None
    with (
        serve(EchoHandler(), "edge-1", net["creds"]["edge-1"], net["ca"].cert_pem, registry=registry) as server,
        client(net, "device-3 named coordinator", address=server.address) as as_c,
        pytest.raises(PeerAuthError, match="sender"),
    ):
        echo(as_c)


def test_chain_unavailable_refuses_with_a_typed_error(net):
    registry = ChainRegistry(DownContract())  # type: ignore[arg-type]
    fp = net["creds"]["device-0"].fingerprint
    with pytest.raises(RegistryUnavailableError, match=fp.hex()) as refused:
        registry.identify(fp)
    assert refused.value.fingerprint == fp and "ConnectionError" in refused.value.reason
    with (
        serve(EchoHandler(), "edge-1", net["creds"]["edge-1"], net["ca"].cert_pem, registry=registry) as server,
        client(net, "device-0", address=server.address) as c,
        pytest.raises(PeerAuthError, match="not confirmed on chain"),
    ):
        echo(c)


# ------------------------------------------------------------------------ ChainRegistry bounds


def test_a_revoked_device_is_refused_within_max_age(net):
    contract, clock = net["contract"], Clock()
    cert = issue(net["ca"], "device-2")
    contract.register_parties([(cert.fingerprint, ROLE_DEVICE, 2)])
    registry = ChainRegistry(contract, max_age_s=5.0, clock=clock)
    assert registry.identify(cert.fingerprint) == Identity("device-2", "device", 2)
    contract.revoke_party(cert.fingerprint)
    assert contract.party(cert.fingerprint) == (ROLE_DEVICE, 2, False)
    clock.now += 4.9  # inside the bound the cached answer may still be used ...
    assert registry.identify(cert.fingerprint) == Identity("device-2", "device", 2)
    clock.now += 0.1  # ... from max_age_s on it is asked again, and refused
    assert registry.identify(cert.fingerprint) is None
    clock.now += 60.0
    assert registry.identify(cert.fingerprint) is None
    with pytest.raises(ChainRevertError, match="PartyExists"):  # a revoked certificate cannot come back
        contract.register_parties([(cert.fingerprint, ROLE_DEVICE, 2)])


def test_unknown_certificates_are_looked_up_at_a_bounded_rate(net):
    counting, clock = CountingContract(net["contract"]), Clock()
    registry = ChainRegistry(counting, lookups_per_s=2.0, burst=3, max_entries=8, clock=clock)  # type: ignore[arg-type]
    known = net["creds"]["device-0"].fingerprint
    assert registry.identify(known) == Identity("device-0", "device", 0)
    randoms = [os.urandom(32) for _ in range(40)]
    assert [registry.identify(fp) for fp in randoms[:2]] == [None, None]
    busy = 0
    for fp in randoms[2:]:
        with pytest.raises(RegistryBusyError):
            registry.identify(fp)
        busy += 1
    assert counting.calls == 3 and busy == 38  # 38 certificates refused without a chain call
    assert registry.identify(known) == Identity("device-0", "device", 0)  # the registered party is still served
    clock.now += 1.0  # two tokens a second
    assert [registry.identify(fp) for fp in randoms[2:4]] == [None, None]
    with pytest.raises(RegistryBusyError):
        registry.identify(randoms[4])
    assert counting.calls == 5
    clock.now += 100.0  # a cached active party past max_age is re-checked without a token, even with the bucket full
    registry._tokens = 0.0
    assert registry.identify(known) == Identity("device-0", "device", 0) and counting.calls == 6
    assert len(registry._cache) <= 8


def test_bad_bounds_are_config_errors(net):
    for kwargs, key in (({"max_age_s": 0}, "max_age_s"), ({"lookups_per_s": float("inf")}, "lookups_per_s"),
                        ({"burst": 0}, "burst"), ({"max_entries": True}, "max_entries")):
        with pytest.raises(ConfigError) as error:
            ChainRegistry(net["contract"], **kwargs)
        assert error.value.key == key


# ------------------------------------------------------------------------ the contract's registry


def test_the_ledger_registers_every_role(net):
    contract, creds = net["contract"], net["creds"]
    assert contract.party(creds["edge-2"].fingerprint) == (ROLE_EDGE, 2, True)
    assert contract.party(creds["coordinator"].fingerprint) == (ROLE_COORDINATOR, 0, True)
    assert contract.party(creds["dealer"].fingerprint) == (ROLE_DEALER, 0, True)
    assert contract.party(creds["device-0"].fingerprint) == (ROLE_DEVICE, 0, True)
    assert contract.party(creds["device-1"].fingerprint) == (0, 0, False)
    assert contract.party(b"\x07" * 32) == (0, 0, False)
    assert contract.party_fingerprint(ROLE_EDGE, 1) == creds["edge-1"].fingerprint
    # a party added later (a device joining), and what the ledger refuses to add
    ledger, late = net["ledger"], os.urandom(32)
    assert ledger.register_identities({"device-7": late}) > 21_000 and contract.party(late) == (ROLE_DEVICE, 7, True)
    with pytest.raises(ChainRevertError, match="PartyExists"):
        ledger.register_identities({"dealer": os.urandom(32)})
    with pytest.raises(ChainError, match="no role"):
        ledger.register_identities({"flower-server": os.urandom(32)})
    # an in-process deployment (no certificates) registers keccak(party id) for every party
    chain = Chain.embedded(accounts=6)
    try:
        bare = ChainLedger(chain, 1, 1, 2, edge_accounts={1: chain.new_account()}, device_accounts=[chain.new_account() for _ in range(2)])
        for party, role, index in (("edge-1", ROLE_EDGE, 1), ("device-1", ROLE_DEVICE, 1), ("coordinator", ROLE_COORDINATOR, 0), ("dealer", ROLE_DEALER, 0)):
            assert bare.contract.party(keccak(party.encode())) == (role, index, True)
    finally:
        chain.close()


def test_registration_is_admin_only_and_checked(net):
    contract, chain = net["contract"], net["chain"]
    outsider, fp = chain.new_account(), os.urandom(32)
    with pytest.raises(ChainRevertError, match="NotAdmin"):
        contract.register_parties([(fp, ROLE_DEVICE, 9)], sender=outsider)
    with pytest.raises(ChainRevertError, match="NotAdmin"):
        contract.revoke_party(net["creds"]["device-0"].fingerprint, sender=outsider)
    with pytest.raises(ChainRevertError, match="BadParty"):  # an edge entry must be the certificate registerEdgeNode holds
        contract.register_parties([(fp, ROLE_EDGE, 1)])
    with pytest.raises(ChainRevertError, match="BadParty"):
        contract.register_parties([(fp, ROLE_COORDINATOR, 1)])
    with pytest.raises(ChainRevertError, match="PartyExists"):  # one active certificate per party
        contract.register_parties([(fp, ROLE_DEVICE, 0)])
    with pytest.raises(ChainRevertError, match="PartyExists"):  # one party per certificate
        contract.register_parties([(net["creds"]["device-0"].fingerprint, ROLE_DEVICE, 9)])
    with pytest.raises(ChainRevertError, match="NotActiveParty"):
        contract.revoke_party(fp)
    with pytest.raises(ChainValueError, match="role"):
        contract.register_parties([(fp, 5, 0)])
    with pytest.raises(ChainValueError, match="fingerprint"):
        contract.register_parties([(fp[:31], ROLE_DEVICE, 9)])
    assert contract.party(fp) == (0, 0, False)


# ------------------------------------------------------------------------ ppbfl edge --chain (a process: anvil)


def _listening(process: subprocess.Popen) -> str:
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("LISTENING "), (first, process.poll())
    return first.split()[1]


def test_servers_with_chain_refuse_a_manifest_only_certificate(tmp_path):
    """``ppbfl edge --chain --contract`` and ``python -m ppbfl.protocol.serve --chain --contract``
    (what the dealer runs under) answer the coordinator registered on chain and refuse device-0,
    which ``ppbfl creds`` put in the manifest but the chain never registered."""
    issued = write_credentials(tmp_path, ["edge-1", "coordinator", "dealer", "device-0"])
    ca, ca_pem = str(tmp_path / "ca.crt"), (tmp_path / "ca.crt").read_bytes()
    with Chain.anvil(accounts=6) as chain:
        ledger = ChainLedger(
            chain, 1, 1, 1, edge_accounts={1: issued.chain_accounts["edge-1"]}, device_accounts=[chain.new_account()],
            fingerprints={p: issued.fingerprints[p] for p in ("edge-1", "coordinator", "dealer")},
        )
        assert chain.node is not None
        on_chain = ["--chain", chain.node.url, "--contract", ledger.address]
        edge = subprocess.Popen(
            _ppbfl("edge", "--party", "edge-1", "--creds", str(tmp_path), "--ca", ca, "--port", "0", "--unsigned-uploads", *on_chain),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(),
        )
        served = subprocess.Popen(
            [sys.executable, "-m", "ppbfl.protocol.serve", "--handler", "ppbfl.protocol.testing:make_echo_handler",
             "--party", "dealer", "--creds", str(tmp_path), "--ca", ca, "--port", "0", *on_chain],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(),
        )
        try:
            peers = {"edge-1": _listening(edge), "dealer": _listening(served)}
            setup = SetupEdge(index=1, t=1, n=1, d=8, frac_bits=16, tau=0.0, validity_k=40, session=b"\x05" * 32)
            values = np.arange(3, dtype=np.uint64)
            with GrpcTransport("coordinator", load_credentials(tmp_path, "coordinator"), ca_pem, peers) as coordinator:
                assert coordinator.call("edge-1", setup, round=0, timeout=30.0, expect=PRZSOffer).sender == "edge-1"
                echoed = coordinator.call("dealer", EchoRequest(values=values, op="echo", seconds=0.0), round=0, timeout=30.0)
                assert echoed.message.caller == "coordinator"
            fp = issued.fingerprints["device-0"].hex()[:16]
            with GrpcTransport("device-0", load_credentials(tmp_path, "device-0"), ca_pem, peers, retries=0) as device:
                with pytest.raises(PeerAuthError, match=f"{fp}.*not registered"):
                    device.call("edge-1", setup, round=0, timeout=30.0)
                with pytest.raises(PeerAuthError, match=f"{fp}.*not registered"):
                    device.call("dealer", EchoRequest(values=values, op="echo", seconds=0.0), round=0, timeout=30.0)
        finally:
            for process in (edge, served):
                process.terminate()
                process.wait(timeout=30)


def test_ppbfl_edge_chain_options_are_checked(tmp_path, capsys):
    write_credentials(tmp_path, ["edge-1"])
    base = ["edge", "--party", "edge-1", "--creds", str(tmp_path), "--ca", str(tmp_path / "ca.crt")]
    assert main([*base, "--chain", "http://127.0.0.1:1"]) == 2
    assert "ConfigError: contract: --chain and --contract go together" in capsys.readouterr().err
    assert main([*base, "--contract", "0x" + "11" * 20]) == 2
    assert "ConfigError: chain: --chain and --contract go together" in capsys.readouterr().err
    assert main([*base, "--chain", "http://127.0.0.1:1", "--contract", "0x12"]) == 2  # checked before any connection
    assert "ConfigError: contract: '0x12' is not an address" in capsys.readouterr().err
    with socket.socket() as unused:  # a port nobody listens on: the node does not answer
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    assert main([*base, "--chain", url, "--contract", "0x" + "11" * 20]) == 2
    assert "ChainError" in capsys.readouterr().err

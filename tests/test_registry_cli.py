"""``ppbfl registry list | register | revoke``: the admin manages the contract's party registry on a
live chain (anvil started here), and a chain-registry server refuses what the admin revoked.

Attacks: a non-admin key (``NotAdmin`` from the contract), an edited manifest that maps a party to
another certificate, a certificate of another CA, a certificate registered under another party's
name, an edge certificate that is not the registered edge node's, and the admin key leaking through
the command line or an error message.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from eth_account import Account

from ppbfl.chain import Chain
from ppbfl.chain.attest import ChainKey
from ppbfl.chain.rounds import ROLE_COORDINATOR, ROLE_DEALER, ROLE_DEVICE, ROLE_EDGE
from ppbfl.cli import main
from ppbfl.field import MERSENNE61
from ppbfl.protocol.chain_registry import ChainRegistry
from ppbfl.protocol.creds import write_credentials
from ppbfl.protocol.errors import PeerAuthError
from ppbfl.protocol.grpc_transport import GrpcTransport, serve
from ppbfl.protocol.registry import Identity
from ppbfl.protocol.testing import EchoHandler, EchoRequest
from ppbfl.protocol.tls import issue as issue_cert
from ppbfl.protocol.tls import load_ca, load_credentials, make_ca, save_credentials

PARTIES = ["edge-1", "edge-2", "coordinator", "dealer", "device-0", "device-1"]
ROLE_OF = {"edge-1": (ROLE_EDGE, 1), "edge-2": (ROLE_EDGE, 2), "coordinator": (ROLE_COORDINATOR, 0),
           "dealer": (ROLE_DEALER, 0), "device-0": (ROLE_DEVICE, 0), "device-1": (ROLE_DEVICE, 1)}
NOWHERE = ["--chain", "http://127.0.0.1:1", "--contract", "0x" + "11" * 20]  # never reached: input is checked first


def _anvil_admin_key() -> bytes:
    """The secret of anvil's first dev account (its documented default mnemonic): the deployer, so the admin."""
    Account.enable_unaudited_hdwallet_features()
    return bytes(Account.from_mnemonic("test test test test test test test test test test test junk").key)


def _rows(out: str) -> set[tuple[str, ...]]:
    return {tuple(line.split()) for line in out.splitlines() if line and not line.startswith("#")}


def _echo(creds, ca_pem: bytes, address: str) -> str:
    values = np.arange(3, dtype=np.uint64) % np.uint64(MERSENNE61)
    with GrpcTransport(creds.party_id, creds, ca_pem, {"edge-1": address}, retries=0) as client:
        return client.call("edge-1", EchoRequest(values=values, op="echo", seconds=0.0), round=0, timeout=10).message.caller


def test_the_admin_registers_lists_and_revokes_and_a_server_then_refuses_the_revoked_certificate(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PPBFL_ADMIN_KEY", raising=False)
    folder = tmp_path / "creds"
    issued = write_credentials(folder, PARTIES)
    fps, ca_pem = issued.fingerprints, (folder / "ca.crt").read_bytes()
    key_file = tmp_path / "admin.key"
    ChainKey(_anvil_admin_key()).save(key_file)
    with Chain.anvil(accounts=3) as chain:
        assert chain.node is not None
        contract = chain.deploy(1, 2)
        assert contract.admin == ChainKey(_anvil_admin_key()).address
        contract.register_edge_node(1, issued.chain_accounts["edge-1"], fps["edge-1"])
        on_chain = ["--chain", chain.node.url, "--contract", contract.address]
        admin = [*on_chain, "--admin-key", str(key_file)]

        # no edge node 2 in the contract yet: named, nothing sent
        assert main(["registry", "register", *admin, "--creds", str(folder)]) == 2
        assert "ConfigError: cert: edge-2: no edge node 2 is registered in the contract" in capsys.readouterr().err
        assert contract.party(fps["coordinator"]) == (0, 0, False)

        # --edge-nodes registers it first (account from chain-accounts.json); edge-1's stays as it was
        assert main(["registry", "register", *admin, "--creds", str(folder), "--edge-nodes"]) == 0
        out = capsys.readouterr().out
        assert f"registered edge node edge-2 (account {issued.chain_accounts['edge-2']})" in out
        assert contract.edge_node(2) == (issued.chain_accounts["edge-2"], fps["edge-2"])
        assert {line.split()[1] for line in out.splitlines() if line.startswith("registered ") and "edge node" not in line} == set(PARTIES)
        for party, (role, index) in ROLE_OF.items():  # the contract's own view, against the certificates ppbfl creds wrote
            assert contract.party(fps[party]) == (role, index, True)
            assert contract.party_fingerprint(role, index) == fps[party]
        assert main(["registry", "register", *admin, "--creds", str(folder)]) == 0  # twice: nothing to do, no transaction
        assert capsys.readouterr().out.count("already registered") == len(PARTIES)

        assert main(["registry", "list", *on_chain]) == 0  # no key needed to read
        names = {ROLE_EDGE: "edge", ROLE_DEVICE: "device", ROLE_COORDINATOR: "coordinator", ROLE_DEALER: "dealer"}
        expected = {(fps[p].hex(), names[r], str(i), "yes", p) for p, (r, i) in ROLE_OF.items()}
        assert _rows(capsys.readouterr().out) == expected

        # anyone but the admin: the contract's NotAdmin, typed, exit 2; the key is never printed
        outsider = ChainKey.generate()
        chain.fund(outsider.address)
        secret = outsider._key.secret.hex()
        monkeypatch.setenv("PPBFL_ADMIN_KEY", secret)
        assert main(["registry", "revoke", *on_chain, fps["device-1"].hex()]) == 2
        err = capsys.readouterr().err
        assert "ChainRevertError: revokeParty" in err and f"NotAdmin(caller='{outsider.address.lower()}')" in err and secret not in err
        assert contract.party(fps["device-1"]) == (ROLE_DEVICE, 1, True)
        assert chain.w3.eth.get_transaction_count(outsider.address) == 0  # refused in simulation: no gas spent
        monkeypatch.delenv("PPBFL_ADMIN_KEY")

        # a server identifying callers from the chain admits device-1, then refuses it once revoked
        registry = ChainRegistry.connect(chain.node.url, contract.address, max_age_s=0.3)
        edge = load_credentials(folder, "edge-1")
        with serve(EchoHandler(), "edge-1", edge, ca_pem, registry=registry) as server:
            device = load_credentials(folder, "device-1")
            assert _echo(device, ca_pem, server.address) == "device-1"
            assert main(["registry", "revoke", *admin, "--cert", str(folder / "device-1.crt")]) == 0
            assert capsys.readouterr().out.split()[:2] == ["revoked", "device-1"]
            time.sleep(0.3)  # the server's bound on a cached answer
            with pytest.raises(PeerAuthError, match=f"{fps['device-1'].hex()[:16]}.*not registered"):
                _echo(device, ca_pem, server.address)
            assert _echo(load_credentials(folder, "device-0"), ca_pem, server.address) == "device-0"
        assert registry.identify(fps["device-1"]) is None
        assert registry.identify(fps["device-0"]) == Identity("device-0", "device", 0)

        assert main(["registry", "list", *on_chain]) == 0  # a revoked certificate is listed only with --all
        assert _rows(capsys.readouterr().out) == expected - {(fps["device-1"].hex(), "device", "1", "yes", "device-1")}
        assert main(["registry", "list", *on_chain, "--all"]) == 0
        assert (fps["device-1"].hex(), "device", "1", "no", "device-1") in _rows(capsys.readouterr().out)
        assert main(["registry", "revoke", *admin, fps["device-1"].hex()]) == 2  # twice: named, no gas spent
        assert f"ConfigError: fingerprint: {fps['device-1'].hex()} was revoked before" in capsys.readouterr().err

        # a new certificate for device 1 (rotation) is registered by --cert with an explicit role and index
        new = issue_cert(load_ca(folder), "device-1")
        save_credentials(new, tmp_path / "rotated")
        cert = ["--cert", str(tmp_path / "rotated" / "device-1.crt"), "--ca", str(folder / "ca.crt")]
        assert main(["registry", "register", *admin, *cert, "--role", "device", "--index", "1"]) == 0
        assert contract.party(new.fingerprint) == (ROLE_DEVICE, 1, True)

        # edge-1 gets a new certificate and chain account (no round in flight): rotate-edge
        new_edge, new_account = issue_cert(load_ca(folder), "edge-1"), ChainKey.generate().address
        save_credentials(new_edge, tmp_path / "edge-rotated")
        rotate = ["--index", "1", "--cert", str(tmp_path / "edge-rotated" / "edge-1.crt"), "--ca", str(folder / "ca.crt"), "--account", new_account]
        monkeypatch.setenv("PPBFL_ADMIN_KEY", secret)  # the outsider's key: the contract's NotAdmin, nothing sent
        assert main(["registry", "rotate-edge", *on_chain, *rotate]) == 2
        err = capsys.readouterr().err
        assert "ChainRevertError: rotateEdgeNode" in err and "NotAdmin" in err and secret not in err
        monkeypatch.delenv("PPBFL_ADMIN_KEY")
        assert contract.edge_node(1) == (issued.chain_accounts["edge-1"], fps["edge-1"])
        assert main(["registry", "rotate-edge", *admin, *rotate]) == 0
        assert f"rotated edge-1: account {issued.chain_accounts['edge-1']} -> {new_account}" in capsys.readouterr().out
        assert contract.edge_node(1) == (new_account, new_edge.fingerprint) and contract.edge_index_of(issued.chain_accounts["edge-1"]) == 0
        assert contract.party(fps["edge-1"]) == (ROLE_EDGE, 1, False)
        time.sleep(0.3)  # the registry's bound on a cached answer
        assert registry.identify(fps["edge-1"]) is None
        assert registry.identify(new_edge.fingerprint) == Identity("edge-1", "edge", 1)
        assert main(["registry", "rotate-edge", *admin, *rotate]) == 2  # the same certificate again: named, nothing sent
        assert "ConfigError: cert: certificate " in capsys.readouterr().err


ADMIN = ["--admin-account", "0x" + "22" * 20]  # a node account: no key involved


@pytest.mark.parametrize(("args", "message"), [
    (["register", "--cert", "CERT", "--ca", "CA", "--role", "auditor", *ADMIN], "ConfigError: role: 'auditor' is not one of coordinator, dealer, device, edge"),
    (["register", "--cert", "CERT", "--ca", "CA", "--role", "coordinator", "--index", "3", *ADMIN], "ConfigError: index: coordinator 3: the coordinator has index 0, got 3"),
    (["register", "--cert", "CERT", "--ca", "CA", "--role", "edge", "--index", "0", *ADMIN], "ConfigError: index: edge 0: edge nodes are numbered from 1"),
    (["register", "--cert", "CERT", "--ca", "CA", "--role", "device", "--index", "3", *ADMIN], "is the certificate of 'device-1', not of 'device-3'"),
    (["register", "--cert", "OTHER", "--ca", "CA", "--role", "device", "--index", "1", *ADMIN], "was not issued by the consortium CA"),
    (["register", "--creds", "DIR", "--party", "device-9", *ADMIN], "ConfigError: party: 'device-9' is not in"),
    (["register", "--creds", "DIR", "--cert", "CERT", *ADMIN], "ConfigError: creds: give either --creds DIR"),
    (["register", "--cert", "CERT", "--role", "device", "--index", "1", *ADMIN], "ConfigError: ca: --cert needs"),
    (["register", "--creds", "DIR"], "ConfigError: admin_key: the admin must sign"),
    (["register", "--cert", "CERT", "--ca", "CA", "--role", "device", "--index", "1", "--edge-nodes", *ADMIN], "ConfigError: edge_nodes: --edge-nodes takes"),
    (["register", "--creds", "DIR", "--admin-account", "0x12"], "ConfigError: admin_account: '0x12' is not an address"),
    (["revoke", "abc", *ADMIN], "ConfigError: fingerprint: 'abc' is not 64 hex digits"),
    (["revoke", "0x" + "ab" * 31 + "zz", *ADMIN], "is not 64 hex digits"),
    (["revoke", *ADMIN], "give the certificate's FINGERPRINT or --cert FILE"),
    (["revoke", "ab" * 32, "--admin-key", "KEY"], "ConfigError: admin_key: chain key:"),
    (["rotate-edge", "--index", "1", "--cert", "CERT", "--ca", "CA", "--account", "0x12", *ADMIN], "ConfigError: account: '0x12' is not an address"),
    (["rotate-edge", "--index", "1", "--cert", "CERT", "--ca", "CA", "--account", "0x" + "33" * 20, *ADMIN], "is the certificate of 'device-1', not of 'edge-1'"),
    (["rotate-edge", "--index", "0", "--cert", "CERT", "--ca", "CA", "--account", "0x" + "33" * 20, *ADMIN], "ConfigError: index: edge 0: edge nodes are numbered from 1"),
    (["rotate-edge", "--index", "1", "--cert", "OTHER", "--ca", "CA", "--account", "0x" + "33" * 20, *ADMIN], "was not issued by the consortium CA"),
])
def test_bad_input_is_named_with_exit_status_2_before_the_chain_is_asked(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.delenv("PPBFL_ADMIN_KEY", raising=False)
    folder = tmp_path / "creds"
    write_credentials(folder, ["device-1"])
    save_credentials(issue_cert(make_ca("another consortium"), "device-1"), tmp_path / "other")
    key = tmp_path / "admin.key"
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o644)  # readable by others: refused
    paths = {"CERT": str(folder / "device-1.crt"), "CA": str(folder / "ca.crt"), "DIR": str(folder),
             "OTHER": str(tmp_path / "other" / "device-1.crt"), "KEY": str(key)}
    assert main(["registry", args[0], *NOWHERE, *[paths.get(a, a) for a in args[1:]]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ppbfl registry: ") and message in err, err


def test_an_edited_manifest_cannot_register_another_certificate(tmp_path, capsys):
    """Someone who can write the folder's registry.json maps device-0 to their own CA-issued
    certificate: refused, because each certificate file must carry the manifest's fingerprint."""
    folder = tmp_path / "creds"
    issued = write_credentials(folder, ["device-0", "device-1"])
    manifest = json.loads((folder / "registry.json").read_text())
    manifest["parties"]["device-0"] = issued.fingerprints["device-1"].hex()
    manifest["parties"]["device-1"] = issued.fingerprints["device-0"].hex()
    (folder / "registry.json").write_text(json.dumps(manifest))
    assert main(["registry", "register", *NOWHERE, "--creds", str(folder), "--admin-account", "0x" + "22" * 20]) == 2
    err = capsys.readouterr().err
    assert "ConfigError: cert: " in err and "device-0.crt is not the certificate" in err and "lists for 'device-0'" in err


def test_a_malformed_admin_key_in_the_environment_is_named_without_echoing_it(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "creds"
    write_credentials(folder, ["device-0"])
    secret = "0x" + "f" * 64  # >= the curve order: not a key
    monkeypatch.setenv("PPBFL_ADMIN_KEY", secret)
    assert main(["registry", "register", *NOWHERE, "--creds", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "ConfigError: admin_key: $PPBFL_ADMIN_KEY is not a 32-byte secp256k1 key" in err and "f" * 64 not in err
    monkeypatch.setenv("PPBFL_ADMIN_KEY", "ab" * 32)
    assert main(["registry", "register", *NOWHERE, "--creds", str(folder), "--admin-account", "0x" + "22" * 20]) == 2
    assert "ConfigError: admin_account: give the admin's key or --admin-account, not both" in capsys.readouterr().err

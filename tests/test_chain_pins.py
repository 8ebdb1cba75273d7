"""Clients pin the servers they call to the certificates of the contract's party registry
(``GrpcTransport(pins=ChainRegistry(...))``): an edge certificate revoked on chain, another
CA-issued certificate for the same party, and a chain that cannot answer are refused by a device's
transport (in process: gRPC servers and the embedded chain in this process)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ppbfl.chain import Chain
from ppbfl.chain.rounds import ROLE_DEALER, ROLE_DEVICE, ROLE_EDGE
from ppbfl.errors import ConfigError
from ppbfl.field import MERSENNE61
from ppbfl.protocol.chain_registry import ChainRegistry
from ppbfl.protocol.errors import PeerAuthError
from ppbfl.protocol.grpc_transport import GrpcTransport, serve
from ppbfl.protocol.testing import EchoHandler, EchoRequest
from ppbfl.protocol.tls import issue, make_ca

MAX_AGE = 0.3


def echo(transport: GrpcTransport, party: str = "edge-1") -> str:
    values = np.arange(3, dtype=np.uint64) % np.uint64(MERSENNE61)
    return transport.call(party, EchoRequest(values=values, op="echo", seconds=0.0), round=0, timeout=10).message.caller


class DownContract:
    """A contract whose node does not answer."""

    def party_fingerprint(self, role: int, index: int) -> bytes:
        raise ConnectionError("connection refused")


@pytest.fixture()
def net():
    ca = make_ca("ppbfl chain-pins test")
    creds = {"edge-1": issue(ca, "edge-1"), "rogue edge-1": issue(ca, "edge-1"), "device-0": issue(ca, "device-0")}
    chain = Chain.embedded(accounts=4)
    contract = chain.deploy(1, 1)
    contract.register_edge_node(1, chain.new_account(), creds["edge-1"].fingerprint)
    contract.register_parties([(creds["edge-1"].fingerprint, ROLE_EDGE, 1), (creds["device-0"].fingerprint, ROLE_DEVICE, 0)])
    yield {"ca": ca, "creds": creds, "contract": contract}
    chain.close()


def client(net, address: str, pins, party: str = "edge-1") -> GrpcTransport:
    return GrpcTransport("device-0", net["creds"]["device-0"], net["ca"].cert_pem, {party: address}, pins=pins, retries=0)


def test_a_device_refuses_an_edge_certificate_revoked_on_chain_and_one_never_registered(net):
    contract, creds, ca_pem = net["contract"], net["creds"], net["ca"].cert_pem
    pins = ChainRegistry(contract, max_age_s=MAX_AGE)
    assert pins.fingerprint_of("edge-1") == creds["edge-1"].fingerprint == contract.party_fingerprint(ROLE_EDGE, 1)
    assert pins.fingerprint_of("dealer") is None and pins.fingerprint_of("flower-server") is None
    with (
        serve(EchoHandler(), "edge-1", creds["edge-1"], ca_pem, registry=ChainRegistry(contract)) as honest,
        serve(EchoHandler(), "edge-1", creds["rogue edge-1"], ca_pem, registry=ChainRegistry(contract)) as rogue,
    ):
        with client(net, honest.address, pins) as device:
            assert echo(device) == "device-0"
            # a second certificate the CA issued for edge-1, never registered: refused before any request
            with client(net, rogue.address, pins) as fooled, pytest.raises(PeerAuthError, match="does not match the registered fingerprint"):
                echo(fooled)
            contract.revoke_party(creds["edge-1"].fingerprint)
            assert contract.party_fingerprint(ROLE_EDGE, 1) == bytes(32)
            time.sleep(MAX_AGE)  # the pin is asked again, and the server checked again, after max_age_s
            with pytest.raises(PeerAuthError, match=r"edge-1.*no active certificate is registered for it"):
                echo(device)  # the open transport, which had checked the server before
        with client(net, honest.address, pins) as fresh, pytest.raises(PeerAuthError, match="no active certificate"):
            echo(fresh)


def test_after_a_rotation_the_old_certificate_is_refused_and_the_new_one_served(net):
    """The dealer's certificate is replaced on chain (revoke, register the new one; an edge node's
    cannot be: the contract binds it to ``registerEdgeNode``): a transport that had checked the
    old server checks again once its pin changed, and refuses it."""
    contract, ca, ca_pem = net["contract"], net["ca"], net["ca"].cert_pem
    old, new = issue(ca, "dealer"), issue(ca, "dealer")
    contract.register_parties([(old.fingerprint, ROLE_DEALER, 0)])
    pins = ChainRegistry(contract, max_age_s=MAX_AGE)
    with (
        serve(EchoHandler(), "dealer", old, ca_pem, registry=ChainRegistry(contract)) as before,
        serve(EchoHandler(), "dealer", new, ca_pem, registry=ChainRegistry(contract)) as after,
        client(net, before.address, pins, "dealer") as device,
    ):
        assert echo(device, "dealer") == "device-0"
        contract.revoke_party(old.fingerprint)
        contract.register_parties([(new.fingerprint, ROLE_DEALER, 0)])
        time.sleep(MAX_AGE)
        with pytest.raises(PeerAuthError, match="does not match the registered fingerprint"):
            echo(device, "dealer")
        with client(net, after.address, pins, "dealer") as rotated:
            assert echo(rotated, "dealer") == "device-0"


def test_a_chain_that_cannot_answer_refuses_the_server_and_pins_exclude_fixed_fingerprints(net):
    creds, ca_pem = net["creds"], net["ca"].cert_pem
    with (
        serve(EchoHandler(), "edge-1", creds["edge-1"], ca_pem, registry=ChainRegistry(net["contract"])) as server,
        client(net, server.address, ChainRegistry(DownContract())) as device,  # type: ignore[arg-type]
        pytest.raises(PeerAuthError, match="could not be confirmed on chain: ConnectionError"),
    ):
        echo(device)
    with pytest.raises(ConfigError, match="pins"):
        GrpcTransport("device-0", creds["device-0"], ca_pem, {}, fingerprints={"edge-1": bytes(32)}, pins=ChainRegistry(net["contract"]))

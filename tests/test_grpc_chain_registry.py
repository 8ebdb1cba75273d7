"""A GrpcDeployment over anvil whose edge and dealer processes identify callers from the contract's
party registry (``GrpcDeployment(..., ledger=)``): a round completes, and a device whose certificate
the CA issued (and the manifest lists) but the chain does not register is refused; a verify request
other than the one whose hash the coordinator posted is refused by the process it reaches."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ppbfl.chain import Chain
from ppbfl.chain.errors import ChainRevertError
from ppbfl.chain.rounds import ROLE_COORDINATOR, ROLE_DEALER, ROLE_DEVICE, ROLE_EDGE
from ppbfl.errors import ConfigError
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import GrpcDeployment
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.errors import PeerAuthError
from ppbfl.protocol.grpc_transport import GrpcTransport
from ppbfl.protocol.ledger import ChainLedger
from ppbfl.protocol.messages import SetupEdge
from ppbfl.protocol.registry import MANIFEST, write_manifest
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.tls import issue
from tests.protocol_helpers import plaintext_aggregate, synthetic_round
from tests.test_adversarial_verify_agreement import Relay, only, other_reference

T, N, D, M = 2, 3, 64, 4
REVOKED = 3
ATOL = 5e-5


def test_a_round_over_anvil_with_identities_from_the_chain_refuses_unregistered_devices():
    with Chain.anvil(accounts=M + N + 4) as chain:
        registered = ChainLedger(chain, T, N, M, edge_accounts={j: chain.new_account() for j in range(1, N + 1)})
        with pytest.raises(ConfigError, match="registered already"):  # the deployment registers its own edge nodes
            GrpcDeployment(T, N, D, ledger=registered)
        ledger = ChainLedger(chain, T, N, M, pow_bits=4)
        with GrpcDeployment(T, N, D, ledger=ledger, signed_uploads=True) as dep:
            # every server identity is on chain, under its role and index, before any process served
            for party in [edge_party(j) for j in range(1, N + 1)] + ["coordinator", "dealer"]:
                assert ledger.contract.party(dep.fingerprints[party])[2], party
            assert ledger.edge_accounts == dep.edge_accounts
            # a certificate of the consortium CA, listed in the manifest but never registered on chain
            stray = issue(dep.ca, "device-9")
            write_manifest(dep.workdir / MANIFEST, {"device-9": stray.fingerprint})
            setup = SetupEdge(index=1, t=T, n=N, d=D, frac_bits=16, tau=0.0, validity_k=40, session=b"\x05" * 32)
            with GrpcTransport("device-9", stray, dep.ca.cert_pem, dep.peers, retries=0) as caller:
                for party in (edge_party(1), "dealer"):
                    with pytest.raises(PeerAuthError, match=f"{stray.fingerprint.hex()[:16]}.*not registered"):
                        caller.call(party, setup, round=0, timeout=30.0)
            # device 3's certificate was registered when issued, then revoked before its first call
            dep.device_transport(REVOKED)
            assert ledger.contract.party(dep.fingerprints[f"device-{REVOKED}"])[:2] == (2, REVOKED)
            ledger.contract.revoke_party(dep.fingerprints[f"device-{REVOKED}"])

            coordinator = Coordinator(T, N, D, dep.coordinator, ledger=ledger, device_keys=dep.device_keys, timeout=30.0)
            assert coordinator.setup() == (1, 2, 3)
            with Federation(dep, coordinator, range(M), ledger=ledger) as federation:
                updates, reference = synthetic_round(M, D, set(), seed=1)
                result = federation.run_round(1, updates, reference)
                # every edge process refused the revoked device's uploads; the round went on without it
                with pytest.raises(PeerAuthError, match="not registered"):
                    federation.devices[REVOKED].transport.call(edge_party(2), setup, round=0, timeout=30.0)
                # round 2: the relay posts its request's hash, then sends edge-1 another reference; the
                # process reads the posted hash through its ChainRegistry and refuses before any share
                coordinator.transport = Relay(dep.coordinator, only(edge_party(1), other_reference))
                mixed = federation.run_round(2, updates, reference)
                assert 1 not in mixed.online and "'request_hash'" in coordinator.dropped[1] and "peer coordinator" in coordinator.dropped[1]
            kept = {i: g for i, g in updates.items() if i != REVOKED}
            for i in kept:  # issued by Federation (GrpcDeployment.issue_devices) and registered on chain before the round
                assert ledger.contract.party(dep.fingerprints[f"device-{i}"]) == (ROLE_DEVICE, i, True)
            assert REVOKED not in result.devices and result.accepted == sorted(kept)
            assert result.missing[REVOKED] == f"missing upload: edge nodes {list(range(1, N + 1))} do not have it"
            for round_result in (result, mixed):  # round 2 completed on the processes that got the posted request
                np.testing.assert_allclose(round_result.aggregate, plaintext_aggregate(kept, reference)[0], atol=ATOL)


def test_a_ledger_on_the_embedded_chain_is_refused():
    with Chain.embedded(accounts=8) as chain:
        ledger = ChainLedger(chain, T, N, M)
        with pytest.raises(ConfigError, match="embedded"):  # no edge process could read its contract
            GrpcDeployment(T, N, D, ledger=ledger)


def test_the_ledger_registers_a_deployments_certificates_once_in_any_order():
    """What GrpcDeployment(ledger=) relies on (embedded chain, no processes): edge nodes with
    certificates issued after the ledger, then the default registration, then the devices'
    accounts (whose default registration adds nothing), then a device's certificate as issued."""
    fps = {p: os.urandom(32) for p in ("edge-1", "edge-2", "edge-3", "coordinator", "dealer", "device-2")}
    with Chain.embedded(accounts=10) as chain:
        ledger = ChainLedger(chain, T, N, M)
        ledger.register_edge_nodes({j: chain.new_account() for j in range(1, N + 1)}, fingerprints={p: fps[p] for p in fps if p != "device-2"})
        assert ledger.register_identities() > 0
        assert ledger.register_identities() == 0  # nothing left to register
        ledger.register_devices([chain.new_account() for _ in range(M)])  # registers no certificate twice
        assert ledger.register_identities({"device-2": fps["device-2"]}) > 0
        expected = {"edge-1": (ROLE_EDGE, 1), "edge-2": (ROLE_EDGE, 2), "edge-3": (ROLE_EDGE, 3), "coordinator": (ROLE_COORDINATOR, 0),
                    "dealer": (ROLE_DEALER, 0), "device-2": (ROLE_DEVICE, 2)}
        for party, (role, index) in expected.items():
            assert ledger.contract.party(fps[party]) == (role, index, True), party
        for i in (0, 1, 3):  # devices whose certificates were never issued hold no identity, not even keccak(id)
            assert ledger.contract.party_fingerprint(ROLE_DEVICE, i) == bytes(32)
        with pytest.raises(ChainRevertError, match="PartyExists"):
            ledger.register_identities({"device-2": fps["device-2"]})

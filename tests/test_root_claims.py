"""Issue 12, item 5, without a ledger: one edge node reporting another root for a device.

Without a chain the commitment of a device is the root the edge nodes report in their
``UploadsReport``. With signed uploads each report carries the device's signature of its root, so
the coordinator keeps the root the device signed and names the node that reports another
(:func:`ppbfl.protocol.attribution.settle_roots`); a device that signed two roots is rejected with
nobody named. Without device keys (unsigned uploads) the old, weaker behaviour holds: the device is
left out and nobody is named. The lying node and the equivocating device live here (production
roles carry no fault injection); the oracle is the plaintext FLTrust aggregate.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ppbfl.chain.pow import bind_commitment
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.edge_node import EdgeNode
from ppbfl.protocol.messages import UploadsQuery, UploadsReport
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.wire import Envelope
from tests.protocol_helpers import install_nodes, plaintext_aggregate, synthetic_round
from tests.test_adversarial_attribution import EquivocatingSigner

T, N, D, M = 3, 5, 64, 8
MALICIOUS = {1, 5}  # sign-flipped devices: rejected by cosine, whatever the edge tier does
ATOL = 5e-5  # as tests/test_protocol_round.py
LIAR = 2
OTHER_ROOT = bytes(range(32))


class ReportsAnotherRoot(EdgeNode):
    """Reports device 0's upload under another root: its own leaves' root, bound to the round and
    device, with the device's signature of the real root (a signature of another root)."""

    def _uploads_report(self, envelope: Envelope, message: UploadsQuery):
        report: UploadsReport = super()._uploads_report(envelope, message)
        k = report.devices.index(0)
        roots, upload_roots = list(report.roots), list(report.upload_roots)
        roots[k], upload_roots[k] = bind_commitment(OTHER_ROOT, envelope.round, 0), OTHER_ROOT
        return dataclasses.replace(report, roots=roots, upload_roots=upload_roots)


def _federation(liars: dict[int, type[EdgeNode]], *, signed: bool = True, factories=None) -> Federation:
    deployment = InProcessDeployment(T, N, D, signed_uploads=signed)
    install_nodes(deployment, liars)
    coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), device_keys=deployment.device_keys)
    coordinator.setup()
    return Federation(deployment, coordinator, range(M), factories=factories)


def _honest_aggregate(result, updates, reference, excluded=frozenset()):
    honest = set(range(M)) - MALICIOUS - set(excluded)
    assert {i: result.rejected[i] for i in honest if i in result.rejected} == {}
    kept = {i: g for i, g in updates.items() if i not in excluded}
    np.testing.assert_allclose(result.aggregate, plaintext_aggregate(kept, reference)[0], atol=ATOL)


def test_a_node_reporting_another_root_is_named_and_the_device_stays():
    federation = _federation({LIAR: ReportsAnotherRoot})
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=3)
    result = federation.run_round(1, updates, reference)
    assert 0 in result.accepted
    _honest_aggregate(result, updates, reference)
    assert result.liars == (LIAR,)
    assert set(result.dropped) == {LIAR}
    assert "named as a liar: reported root" in result.dropped[LIAR] and "of device 0 in round 1" in result.dropped[LIAR]
    assert LIAR not in result.online
    second = federation.run_round(2, *synthetic_round(M, D, MALICIOUS, seed=4))
    assert LIAR not in second.online and second.liars == ()  # a named liar leaves the tier


def test_a_device_that_signs_two_roots_is_rejected_and_nobody_is_named():
    # device 6 sends node 1 other leaves than nodes 2..5 (node 1's own leaf matching its share), both signed
    federation = _federation({}, factories={6: EquivocatingSigner})
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=3)
    result = federation.run_round(1, updates, reference)
    assert result.rejected[6] == "commitment mismatch"
    _honest_aggregate(result, updates, reference, excluded={6})
    assert result.liars == () and result.dropped == {}


def test_with_unsigned_uploads_a_lying_node_still_leaves_the_device_out_unnamed():
    # negative control (docs/security.md: weaker): no device signature, nothing to settle the roots by
    federation = _federation({LIAR: ReportsAnotherRoot}, signed=False)
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=3)
    result = federation.run_round(1, updates, reference)
    assert result.rejected[0] == "missing upload: edge nodes hold uploads under different commitments"
    _honest_aggregate(result, updates, reference, excluded={0})
    assert result.liars == () and result.dropped == {}


def test_an_honest_round_without_a_ledger_names_nobody():
    federation = _federation({})
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=3)
    result = federation.run_round(1, updates, reference)
    _honest_aggregate(result, updates, reference)
    assert result.liars == () and result.dropped == {} and result.missing == {}

"""An edge node that reports other decisions than its opening (docs/security.md, Edge nodes row
"report other decisions than its opening"): the aggregate combiner opens the decision itself and
names every node whose reported reasons or weights differ; the round completes with the honest
result."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.messages import AggregateShare
from ppbfl.protocol.round import Coordinator
from tests.protocol_helpers import change_replies, synthetic_round

T, N, D, M = 3, 5, 64, 6
MALICIOUS = {5}


def _accept_everyone(reply: AggregateShare) -> AggregateShare:
    """Report every device accepted (reason 0), the rejected device with the largest weight."""
    weights = reply.weights.copy()
    weights[weights == 0] = int(weights.max())
    return dataclasses.replace(reply, reasons=[0] * len(reply.reasons), weights=weights)


def _shift_one_weight(reply: AggregateShare) -> AggregateShare:
    weights = reply.weights.copy()
    weights[0] += np.uint64(1)
    return dataclasses.replace(reply, weights=weights)


def _round(liar: int | None, change) -> tuple:
    updates, reference = synthetic_round(M, D, MALICIOUS, seed=3)
    with InProcessDeployment(T, N, D, signed_uploads=True) as deployment:
        if liar is not None:
            change_replies(deployment, liar, lambda envelope, reply: change(reply) if isinstance(reply, AggregateShare) else reply)
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), device_keys=deployment.device_keys)
        with Federation(deployment, coordinator, range(M)) as federation:
            first = federation.run_round(1, updates, reference)
            second = federation.run_round(2, updates, reference)
    return first, second


@pytest.mark.parametrize("change", [_accept_everyone, _shift_one_weight], ids=["accept-everyone", "shift-one-weight"])
def test_a_node_reporting_other_decisions_is_named_and_the_round_keeps_the_opened_decision(change):
    honest, _ = _round(None, lambda reply: reply)
    assert not honest.liars and set(honest.rejected) == MALICIOUS  # the control: the malicious device is out, nobody named
    lied, after = _round(2, change)
    assert lied.liars == (2,)  # named in RoundResult.liars (and on chain with a ledger: reportLiar)
    assert lied.rejected == honest.rejected and lied.accepted == honest.accepted
    np.testing.assert_array_equal(lied.aggregate, honest.aggregate)  # the combiner's own opening decides
    assert 2 not in after.online and after.rejected == honest.rejected  # the named node left the tier

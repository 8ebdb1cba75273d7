"""A device whose certificate was revoked still commits on chain (its chain key is its own), but
every edge node refuses its uploads: the round must name it in ``RoundResult.missing``, not only
answer "missing upload" when asked about it (in process, embedded chain)."""

from __future__ import annotations

import numpy as np

from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.device import Device
from ppbfl.protocol.errors import PeerAuthError
from ppbfl.protocol.ledger import open_ledger
from ppbfl.protocol.round import Coordinator
from tests.protocol_helpers import plaintext_aggregate, synthetic_round

T, N, D, M = 2, 3, 32, 3
REVOKED = 1
ATOL = 5e-5


class RefusedTransport:
    """What a revoked device meets at every chain-registry server: ``PeerAuthError`` before any handler."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def call(self, party: str, *args, **kwargs):
        raise PeerAuthError(party, "certificate named 'device-1' is not registered")

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


class RevokedDevice(Device):
    """An honest device whose TLS certificate the consortium revoked: it commits, its uploads are refused."""

    def __init__(self, *args, transport, **kwargs) -> None:
        super().__init__(*args, transport=RefusedTransport(transport), **kwargs)


def test_a_revoked_device_that_committed_is_named_missing():
    deployment = InProcessDeployment(T, N, D)
    with open_ledger("embedded", T, N, devices=M) as ledger:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger)
        with Federation(deployment, coordinator, range(M), ledger=ledger, factories={REVOKED: RevokedDevice}) as federation:
            updates, reference = synthetic_round(M, D, set(), seed=3)
            result = federation.run_round(1, updates, reference)
        assert ledger.commitment(1, REVOKED) is not None  # it did commit: only its uploads were refused
        assert REVOKED not in result.devices
        assert result.missing[REVOKED] == "missing upload: edge nodes [1, 2, 3] do not have it"
        assert result.rejected[REVOKED] == result.missing[REVOKED] and set(result.missing) == {REVOKED}
        kept = {i: g for i, g in updates.items() if i != REVOKED}
        assert result.accepted == sorted(kept)
        np.testing.assert_allclose(result.aggregate, plaintext_aggregate(kept, reference)[0], atol=ATOL)

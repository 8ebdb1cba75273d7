"""Shared pieces of the protocol tests: synthetic updates and the plaintext reference aggregate."""

from __future__ import annotations

import numpy as np

from ppbfl.defense.submission import encode_update
from ppbfl.fl.field_attacks import out_of_range_shift
from ppbfl.protocol.device import Device
from ppbfl.sharing.seeded import share_compressed


def synthetic_round(m: int, d: int, malicious: set[int], seed: int = 0) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Honest updates near a reference direction; malicious ones sign-flipped and scaled by 3."""
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=d) * 0.01
    updates = {i: reference + rng.normal(size=d) * 0.01 for i in range(m)}
    for i in malicious:
        updates[i] = -3.0 * updates[i]
    return updates, reference


def plaintext_aggregate(updates: dict[int, np.ndarray], reference: np.ndarray) -> tuple[np.ndarray, dict[int, float]]:
    """FLTrust-style aggregate in floats: ``sum w_i c_i g_i / sum w_i``, ``w = relu(cos)``, ``c = min(1, |r|/|g|)``."""
    weights, total = {}, np.zeros_like(reference)
    for i, g in updates.items():
        cos = float(g @ reference / (np.linalg.norm(g) * np.linalg.norm(reference)))
        weights[i] = max(0.0, cos)
        total += weights[i] * min(1.0, np.linalg.norm(reference) / np.linalg.norm(g)) * g
    return total / sum(weights.values()), weights


class InconsistentDevice(Device):
    """Commits to (and uploads) shares that do not lie on one polynomial."""

    def share(self, round, update):
        sharing, mask = super().share(round, update)
        sharing.dense[0, 3] = (sharing.dense[0, 3] + np.uint64(1)) % np.uint64(sharing.field.p)
        return sharing, mask


class EquivocatingDevice(Device):
    """Uploads to node 1 a share other than the one it committed to."""

    def prepare(self, round, update):
        prepared = super().prepare(round, update)
        upload = prepared.uploads[1]
        bad = upload.share.copy()
        bad[0] = (bad[0] + np.uint64(1)) % np.uint64(2**61 - 1)
        prepared.uploads[1] = type(upload)(upload.device, bad, upload.seed, upload.stream, upload.mask_share, upload.leaves)
        return prepared


class FieldVectorDevice(Device):
    """A malicious client that shares the field vector :meth:`crafted` returns instead of its
    encoded update (mask, leaves and uploads as an honest device builds them)."""

    def crafted(self, round: int, update: np.ndarray) -> np.ndarray:
        """The (d,) uint64 vector this device shares in ``round``."""
        raise NotImplementedError

    def share(self, round, update):
        _, mask = super().share(round, update)
        return share_compressed(self.crafted(round, update), self.t, self.n, stream=round, field=self.codec.field), mask


class OutOfRangeDevice(FieldVectorDevice):
    """Issue 13's attacker: shares its honest-looking encoded update shifted by
    :func:`ppbfl.fl.field_attacks.out_of_range_shift`, so the opened ``<g, r>`` and ``||g||^2``
    are those of the honest update while three entries are of order ``p / 2``. ``reference``
    (the public encoded reference) is set by the test."""

    reference: np.ndarray | None = None

    def crafted(self, round, update):
        return out_of_range_shift(encode_update(update, self.codec, device=self.index), self.reference, field=self.codec.field)

"""Shared pieces of the protocol tests: synthetic updates, the plaintext reference aggregate and
misbehaving parties."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ppbfl.defense.submission import encode_update
from ppbfl.fl.field_attacks import out_of_range_shift
from ppbfl.protocol.device import Device
from ppbfl.protocol.parties import edge_party
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
    """Commits to (and uploads) shares that do not lie on one polynomial: coordinate 3 of every
    dense node's share moved by a random offset. That is more nodes than a round may drop over a
    dispute (:mod:`ppbfl.protocol.attribution`), so the device is rejected whatever the tier;
    one bad share would only take its node out of the round."""

    def share(self, round, update):
        sharing, mask = super().share(round, update)
        p = sharing.field.p
        offsets = np.random.default_rng(self.index).integers(1, p, size=sharing.dense.shape[0], dtype=np.uint64)
        sharing.dense[:, 3] = (sharing.dense[:, 3] + offsets) % np.uint64(p)
        return sharing, mask


class EquivocatingDevice(Device):
    """Uploads to nodes 1 and 2 shares other than the ones it committed to (two nodes: more than a
    round of 5 nodes at threshold 3 may drop over a dispute, so the device is left out)."""

    def prepare(self, round, update):
        prepared = super().prepare(round, update)
        for j in (1, 2):
            upload = prepared.uploads[j]
            bad = upload.share.copy()
            bad[0] = (bad[0] + np.uint64(1)) % np.uint64(2**61 - 1)
            prepared.uploads[j] = type(upload)(upload.device, bad, upload.seed, upload.stream, upload.mask_share, upload.leaves)
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


class ChangedReplies:
    """Edge node handler ``inner`` whose every reply passes through ``change(envelope, reply)``: a
    node that lies in what it answers, while keeping its honest state."""

    def __init__(self, inner: Any, change: Callable[[Any, Any], Any]) -> None:
        self.inner, self.change = inner, change

    @property
    def context(self) -> Any:
        return self.inner.context

    def handle(self, envelope: Any) -> Any:
        return self.change(envelope, self.inner.handle(envelope))


def change_replies(deployment: Any, j: int, change: Callable[[Any, Any], Any]) -> None:
    """Make edge node ``j`` of an in-process ``deployment`` answer through ``change`` (:class:`ChangedReplies`)."""
    party = edge_party(j)
    deployment._edges[party] = deployment._handlers[party] = ChangedReplies(deployment.nodes[party], change)


def install_nodes(deployment: Any, kinds: dict[int, type]) -> None:
    """Replace edge node ``j`` of an in-process ``deployment`` by a fresh ``kinds[j]`` (an
    :class:`~ppbfl.protocol.edge_node.EdgeNode` subclass that misbehaves) with the same field,
    device keys, credentials and registry."""
    for j, kind in kinds.items():
        party = edge_party(j)
        node = kind(
            field=deployment.nodes[party].field, device_keys=deployment.device_keys,
            credentials=deployment.creds[party], registry=deployment.registry,
        )
        for table in (deployment.nodes, deployment._edges, deployment._handlers):
            table[party] = node

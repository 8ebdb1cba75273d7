"""A device: a client that encodes its update, shares it (seed-compressed), commits the shares from its
own chain account and uploads each edge node its share over its own authenticated channel."""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ppbfl.defense.submission import encode_update
from ppbfl.errors import PPBFLError
from ppbfl.field.csprng import FieldRNG
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.protocol.announcement import RoundAnnouncement
from ppbfl.protocol.commitments import commitment_root, share_leaf
from ppbfl.protocol.errors import ConfigError
from ppbfl.protocol.messages import DeviceUpload
from ppbfl.protocol.parties import device_party, edge_party
from ppbfl.protocol.round_errors import AnnouncementError
from ppbfl.protocol.transport import Transport
from ppbfl.sharing.seeded import CompressedShares, share_compressed
from ppbfl.sharing.shamir import share

__all__ = ["CommitmentBoard", "Device", "PreparedUpload", "Submission", "device_party"]


@dataclass(frozen=True)
class PreparedUpload:
    """A device's round output: ``uploads[j]`` for edge node ``j`` (1..n) and the ``commitment`` root."""

    device: int
    round: int
    uploads: dict[int, DeviceUpload]
    commitment: bytes


class CommitmentBoard(Protocol):
    """Where a device posts its share commitment: its own chain account
    (:class:`ppbfl.protocol.ledger.DeviceChainAccount`)."""

    def commit(self, round: int, commitment: bytes) -> None:
        """Post the 32-byte ``commitment`` for ``round`` (with whatever stamp the chain requires)."""


@dataclass(frozen=True)
class Submission:
    """What a device did in a round: its ``commitment``, the edge nodes that stored its upload
    (``delivered``), those that refused it or could not be reached (``refused``: node -> why) and
    seconds per step (``share``, ``commit``, ``upload``)."""

    device: int
    round: int
    commitment: bytes
    delivered: tuple[int, ...]
    refused: dict[int, str]
    timings: dict[str, float] = field(default_factory=dict)


class Device:
    """Device ``index`` of a ``(t, n)`` deployment with fixed-point ``codec``.

    Args:
        transport: the device's own authenticated channel to the edge nodes (None: it can only
            :meth:`prepare`).
        board: its own chain account for commitments (None: no chain; the edge nodes' reports of
            the leaves' root are then the commitment).
        rng: CSPRNG for the consistency mask (default: OS-seeded); share seeds come from the OS.
        timeout: seconds per upload.
    """

    def __init__(
        self, index: int, t: int, n: int, codec: FixedPointCodec, *, transport: Transport | None = None,
        board: CommitmentBoard | None = None, rng: FieldRNG | None = None, timeout: float = 30.0,
    ) -> None:
        self.index, self.t, self.n, self.codec = index, t, n, codec
        self.transport, self.board, self.timeout = transport, board, timeout
        self.rng = FieldRNG(field=codec.field) if rng is None else rng

    @property
    def party(self) -> str:
        """This device's party id."""
        return device_party(self.index)

    def share(self, round: int, update: np.ndarray) -> tuple[CompressedShares, np.ndarray]:
        """Encode ``update`` (float (d,)) under the no-wrap bound and share it; returns the
        seed-compressed sharing and the (n,) uint64 shares of a fresh consistency mask ``rho``.

        Raises:
            UpdateRangeError: an entry exceeds the bound (names the device and the coordinate).
        """
        encoded = encode_update(update, self.codec, device=self.index)
        sharing = share_compressed(encoded, self.t, self.n, stream=round, field=self.codec.field)
        mask = share(self.rng.random(1), self.t, self.n, field=self.codec.field, rng=self.rng)[:, 0]
        return sharing, mask

    def prepare(self, round: int, update: np.ndarray) -> PreparedUpload:
        """Share ``update`` and build the ``n`` uploads and the commitment root for ``round``."""
        sharing, mask = self.share(round, update)
        leaves = []
        for j in range(1, self.n + 1):
            if j in sharing.seeds:
                leaves.append(share_leaf(round, self.index, j, int(mask[j - 1]), seed=sharing.seeds[j], stream=sharing.stream))
            else:
                leaves.append(share_leaf(round, self.index, j, int(mask[j - 1]), share=sharing.share_for(j)))
        uploads = {
            j: DeviceUpload(
                device=self.index,
                share=None if j in sharing.seeds else sharing.share_for(j),
                seed=sharing.seeds.get(j),
                stream=sharing.stream,
                mask_share=int(mask[j - 1]),
                leaves=leaves,
            )
            for j in range(1, self.n + 1)
        }
        return PreparedUpload(self.index, round, uploads, commitment_root(leaves))

    def check_announcement(self, announcement: RoundAnnouncement) -> None:
        """Refuse an announcement that disagrees with this device's configuration.

        Raises:
            AnnouncementError: naming the field (``t``, ``n``, ``frac_bits``, ``edge_nodes``, ``round``).
        """
        for name, mine in (("t", self.t), ("n", self.n), ("frac_bits", self.codec.frac_bits)):
            if getattr(announcement, name) != mine:
                raise AnnouncementError(self.index, name, getattr(announcement, name), str(mine))
        if announcement.round < 1:
            raise AnnouncementError(self.index, "round", announcement.round, ">= 1")
        nodes = announcement.edge_nodes
        if not nodes or len(set(nodes)) != len(nodes) or not all(1 <= j <= self.n for j in nodes):
            raise AnnouncementError(self.index, "edge_nodes", nodes, f"distinct edge nodes in 1..{self.n}")

    def submit(self, announcement: RoundAnnouncement, update: np.ndarray, *, pool: Executor | None = None) -> Submission:
        """Take part in the announced round with float (d,) ``update``: share it, commit the root on
        the board, upload each announced edge node its share (through ``pool`` concurrently when given).

        A node that refuses the upload or cannot be reached is reported in ``refused``; the device
        goes on with the others (the coordinator leaves it out unless every online node has it).

        Raises:
            AnnouncementError: the announcement disagrees with this device's configuration.
            UpdateRangeError: an entry of ``update`` exceeds the no-wrap bound.
            ConfigError: the device has no transport (key ``transport``).
        """
        if self.transport is None:
            raise ConfigError("transport", f"device {self.index} has no transport to upload with")
        self.check_announcement(announcement)
        if np.shape(update) != (announcement.d,):
            raise AnnouncementError(self.index, "d", announcement.d, f"the update's length {np.shape(update)}")
        tick = time.perf_counter()
        prepared = self.prepare(announcement.round, update)
        shared = time.perf_counter()
        if self.board is not None:
            self.board.commit(announcement.round, prepared.commitment)
        committed = time.perf_counter()
        transport = self.transport
        context = {"d": announcement.d, "p": self.codec.field.p}

        def upload(j: int) -> str | None:
            try:
                transport.call(edge_party(j), prepared.uploads[j], round=announcement.round, timeout=self.timeout, context=context)
            except PPBFLError as error:
                return f"{type(error).__name__}: {error}"
            return None

        nodes = list(announcement.edge_nodes)
        outcomes = list(pool.map(upload, nodes)) if pool is not None else [upload(j) for j in nodes]
        refused = {j: why for j, why in zip(nodes, outcomes) if why is not None}
        timings = {"share": shared - tick, "commit": committed - shared, "upload": time.perf_counter() - committed}
        return Submission(
            self.index, announcement.round, prepared.commitment,
            tuple(j for j in nodes if j not in refused), refused, timings,
        )

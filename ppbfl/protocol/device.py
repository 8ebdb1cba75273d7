"""A device: a client that encodes its update, shares it (seed-compressed), commits the shares from its
own chain account and uploads each edge node its share over its own authenticated channel."""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from cryptography.hazmat.primitives.asymmetric import ec

from ppbfl.defense import validity
from ppbfl.defense.errors import UpdateNormError
from ppbfl.defense.submission import encode_update
from ppbfl.errors import PPBFLError
from ppbfl.field.csprng import FieldRNG
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.protocol.announcement import RoundAnnouncement, ValidityChallenge
from ppbfl.protocol.attribution import sign_upload
from ppbfl.protocol.commitments import commitment_root, share_leaf
from ppbfl.protocol.errors import ConfigError
from ppbfl.protocol.messages import DeviceUpload, ProofUpload
from ppbfl.protocol.parties import device_party, edge_party
from ppbfl.protocol.round_errors import AnnouncementError
from ppbfl.protocol.transport import Transport
from ppbfl.sharing.seeded import CompressedShares, share_compressed
from ppbfl.sharing.shamir import share

__all__ = ["CommitmentBoard", "Device", "PreparedUpload", "ProofDelivery", "Submission", "device_party"]


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


@dataclass(frozen=True)
class ProofDelivery:
    """A device's validity proof in a round: the edge nodes that stored it (``delivered``), those
    that refused it or could not be reached (``refused``: node -> why), seconds per step
    (``prove``: projections, bits and their sharing; ``upload``)."""

    device: int
    round: int
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
        rng: CSPRNG for the consistency masks and the proof's shares (default: OS-seeded); share
            seeds come from the OS.
        timeout: seconds per upload.
        validity_k: projections of the input-validity check this device expects (a challenge
            with another ``k`` is refused).
        strict: refuse an update the validity check would reject (:class:`UpdateNormError`, before
            anything is shared). ``False`` is for simulating attackers: any finite update is
            encoded modulo ``p`` and its proof is sent as is, for the edge nodes to reject.
        signing_key: the device's identity key (its TLS key, ECDSA P-256): it signs each round's
            uploads (:func:`ppbfl.protocol.attribution.sign_upload`, one signature per round), so
            a node's claim about them can be checked by anyone. None: unsigned uploads.
    """

    def __init__(
        self, index: int, t: int, n: int, codec: FixedPointCodec, *, transport: Transport | None = None,
        board: CommitmentBoard | None = None, rng: FieldRNG | None = None, timeout: float = 30.0,
        validity_k: int = validity.DEFAULT_ROWS, strict: bool = True, signing_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> None:
        self.index, self.t, self.n, self.codec = index, t, n, codec
        self.signing_key = signing_key
        self.transport, self.board, self.timeout = transport, board, timeout
        self.rng = FieldRNG(field=codec.field) if rng is None else rng
        self.validity_k, self.strict = validity_k, strict
        self._encoded: dict[int, np.ndarray] = {}  # round -> centred encoded update, until proved

    @property
    def party(self) -> str:
        """This device's party id."""
        return device_party(self.index)

    def encode(self, update: np.ndarray) -> np.ndarray:
        """Encode float (d,) ``update`` to (d,) uint64 field elements.

        Strict (honest) devices encode under the no-wrap bound and check the validity check's L2
        bound; others encode ``rint(x 2^f) mod p`` (what an attacker can send).

        Raises:
            UpdateRangeError: (strict) an entry exceeds the no-wrap bound.
            UpdateNormError: (strict) the encoded L2 norm exceeds :meth:`ValidityParams.honest_l2`.
            DefenseParameterError: (not strict) an entry is NaN or infinite.
        """
        if not self.strict:
            return validity.encode_wrapping(update, self.codec, device=self.index)
        encoded = encode_update(update, self.codec, device=self.index)
        params = validity.ValidityParams.for_length(encoded.size, k=self.validity_k, field=self.codec.field)
        norm = validity.encoded_l2(encoded, self.codec.field.p)
        if norm > params.honest_l2():
            raise UpdateNormError(self.index, norm, params.honest_l2(), self.codec.frac_bits)
        return encoded

    def share(self, round: int, update: np.ndarray) -> tuple[CompressedShares, np.ndarray]:
        """Encode ``update`` (float (d,), :meth:`encode`) and share it; returns the seed-compressed
        sharing and the (n,) uint64 shares of a fresh consistency mask ``rho``.

        Raises:
            UpdateRangeError, UpdateNormError: as :meth:`encode`.
        """
        encoded = self.encode(update)
        self._encoded = {r: g for r, g in self._encoded.items() if r > round - 2}  # kept until proved
        self._encoded[round] = validity.centred(encoded, self.codec.field.p)
        sharing = share_compressed(encoded, self.t, self.n, stream=round, field=self.codec.field)
        mask = share(self.rng.random(1), self.t, self.n, field=self.codec.field, rng=self.rng)[:, 0]
        return sharing, mask

    def prepare(self, round: int, update: np.ndarray) -> PreparedUpload:
        """Share ``update`` and build the ``n`` uploads and the commitment root for ``round``
        (the encoded update is kept until :meth:`prove` for that round)."""
        sharing, mask = self.share(round, update)
        leaves = []
        for j in range(1, self.n + 1):
            if j in sharing.seeds:
                leaves.append(share_leaf(round, self.index, j, int(mask[j - 1]), seed=sharing.seeds[j], stream=sharing.stream))
            else:
                leaves.append(share_leaf(round, self.index, j, int(mask[j - 1]), share=sharing.share_for(j)))
        root = commitment_root(leaves)
        signature = None if self.signing_key is None else sign_upload(self.signing_key, round, self.index, root)
        uploads = {
            j: DeviceUpload(
                device=self.index,
                share=None if j in sharing.seeds else sharing.share_for(j),
                seed=sharing.seeds.get(j),
                stream=sharing.stream,
                mask_share=int(mask[j - 1]),
                leaves=leaves,
                signature=signature,
            )
            for j in range(1, self.n + 1)
        }
        return PreparedUpload(self.index, round, uploads, root)

    def _check_edge_nodes(self, nodes: tuple[int, ...]) -> None:
        """Refuse an empty, repeated or out-of-tier list of edge nodes (``AnnouncementError``)."""
        if not nodes or len(set(nodes)) != len(nodes) or not all(1 <= j <= self.n for j in nodes):
            raise AnnouncementError(self.index, "edge_nodes", nodes, f"distinct edge nodes in 1..{self.n}")

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
        self._check_edge_nodes(announcement.edge_nodes)

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

    def pending(self, round: int) -> np.ndarray | None:
        """The centred encoded update ((d,) int64) submitted in ``round`` and not yet proved, if any
        (a client that runs each message in a fresh process keeps it in its own state)."""
        return self._encoded.get(round)

    def resume(self, round: int, encoded: np.ndarray) -> None:
        """Restore what :meth:`pending` returned, so :meth:`prove` can run in another process."""
        values = np.asarray(encoded)
        if values.ndim != 1 or values.dtype != np.int64:
            raise ConfigError("encoded", f"expected a (d,) int64 vector, got {values.dtype} of shape {values.shape}")
        self._encoded[round] = values

    def prove(self, challenge: ValidityChallenge, *, pool: Executor | None = None) -> ProofDelivery:
        """Prove the range of the update submitted in ``challenge.round``: project it with the
        challenge's matrix, share the bits of the projections (:mod:`ppbfl.defense.validity`) and
        upload each node its share, through ``pool`` concurrently when given.

        Raises:
            AnnouncementError: the challenge disagrees with this device (``round``: nothing
                submitted in it; ``validity d``/``validity k``/``validity bits``/``seed``/``edge_nodes``).
            ValidityProofError: (strict) a projection is out of range (an update near the bound,
                probability <= 2^-40, or one shared by a subclass that is not its encoded update).
            ConfigError: the device has no transport (key ``transport``).
        """
        if self.transport is None:
            raise ConfigError("transport", f"device {self.index} has no transport to upload with")
        g = self._encoded.get(challenge.round)
        if g is None:
            raise AnnouncementError(self.index, "round", challenge.round, "a round this device submitted to and has not proved")
        params = validity.ValidityParams.for_length(g.size, k=self.validity_k, field=self.codec.field)
        for name, mine in (("d", params.d), ("k", params.k), ("bits", params.bits)):
            if getattr(challenge, name) != mine:
                raise AnnouncementError(self.index, f"validity {name}", getattr(challenge, name), str(mine))
        if len(challenge.seed) != 32:
            raise AnnouncementError(self.index, "seed", challenge.seed.hex(), "32 bytes")
        nodes = challenge.edge_nodes
        self._check_edge_nodes(nodes)
        tick = time.perf_counter()
        projections = validity.project(validity.projection_stream(challenge.seed, params), g, params)
        if not self.strict:  # a simulated attacker sends what it can: its projections, clamped into the range
            projections = np.clip(projections, -params.half_width, params.half_width - 1)
        bits = validity.bit_decompose(projections, params, device=self.index)
        field_ = self.codec.field
        together = share(np.append(bits, self.rng.random(1)), self.t, self.n, field=field_, rng=self.rng)  # the bits and a mask, one call
        bit_shares, mask = together[:, :-1], together[:, -1]
        proved = time.perf_counter()
        transport = self.transport
        context = {"d": params.d, "p": field_.p}

        def upload(j: int) -> str | None:
            message = ProofUpload(self.index, bit_shares[j - 1], int(mask[j - 1]))
            try:
                transport.call(edge_party(j), message, round=challenge.round, timeout=self.timeout, context=context)
            except PPBFLError as error:
                return f"{type(error).__name__}: {error}"
            return None

        outcomes = list(pool.map(upload, nodes)) if pool is not None else [upload(j) for j in nodes]
        self._encoded.pop(challenge.round, None)
        refused = {j: why for j, why in zip(nodes, outcomes) if why is not None}
        timings = {"prove": proved - tick, "upload": time.perf_counter() - proved}
        return ProofDelivery(self.index, challenge.round, tuple(j for j in nodes if j not in refused), refused, timings)

"""The round coordinator: drives devices, edge nodes, the dealer and the chain through one round.

State machine of round ``r`` (mirrored on chain when a ledger is given, DESIGN §6)::

    open -> (devices share + commit with PoW + upload) -> commitments closed (challenge seed fixed)
         -> verify (consistency, <g, r>, ||g||^2 on shares) -> aggregate (decide, weighted sum on
         shares) -> reconstruct (robust; liars named) -> posted + audited -> closed

Timeouts, dropouts and retries: every call to a party has a deadline (the transport retries
transient failures a bounded number of times); a party that fails a call is marked dropped for the
rest of the round with the reason. The round completes with up to ``n - t`` edge nodes dropped:
with at least ``2t - 1`` online the squared norms use honest-majority shares (no dealer); with
fewer, the coordinator falls back to Beaver triples from the dealer. Any devices may drop: a device
whose upload did not reach every online node, or that did not commit, is left out ("missing upload").
The coordinator sees only opened scalars and aggregate shares, never a device's update.

Redundancy: with ``k`` edge nodes online, up to ``floor((k - t) / 2)`` wrong aggregate shares are
corrected (``floor((k - 2t + 1) / 2)`` for honest-majority norm shares) and the share-consistency
check compares ``k - t`` extra points; with exactly ``t`` online nothing can be checked or corrected.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ppbfl.defense.decision import DeviceDecision
from ppbfl.defense.submission import codec_for_length
from ppbfl.errors import PPBFLError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.mpc.przs import PRZSKeys
from ppbfl.protocol.aggregator import Aggregator
from ppbfl.protocol.device import Device, PreparedUpload
from ppbfl.protocol.edge_node import DEALER_PARTY, edge_party
from ppbfl.protocol.errors import PeerUnavailableError
from ppbfl.protocol.messages import (
    AggregateRequest,
    AggregateShare,
    BeaverFinish,
    BeaverMasked,
    BeaverOpen,
    NormShares,
    SetupEdge,
    TripleRequest,
    VerifyRequest,
    VerifyShares,
)
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError, RoundFailedError
from ppbfl.protocol.transport import Transport
from ppbfl.protocol.verification import RoundDecision, decide_request, screen
from ppbfl.protocol.wire import Message
from ppbfl.sharing.robust import robust_reconstruct

__all__ = ["Coordinator", "RoundLedger", "RoundResult"]


class RoundLedger(Protocol):
    """What the coordinator records on chain (:class:`ppbfl.protocol.ledger.ChainLedger` implements it)."""

    def open_round(self, round: int, model_hash: bytes) -> None:
        """Open ``round`` for the global model with hash ``model_hash``."""

    def commit(self, round: int, device: int, commitment: bytes) -> None:
        """Record device ``device``'s share commitment (with its PoW stamp)."""

    def commitment(self, round: int, device: int) -> bytes | None:
        """The commitment device ``device`` posted for ``round`` (None if none)."""

    def close_commitments(self, round: int) -> bytes:
        """End the commit phase; return the 32-byte challenge seed fixed after it."""

    def record_round(
        self, round: int, result: RoundResult, replies: dict[int, AggregateShare], aggregate_secret: np.ndarray, model_hash: bytes
    ) -> int:
        """Post scalars, decisions, aggregate commitments, the aggregate and liars; audit; close. Returns gas used."""


@dataclass
class RoundResult:
    """What one round did.

    Attributes:
        round: the round number.
        devices: the device indices, in the order of ``decision.decisions``.
        aggregate: float64 (d,) ``sum_i w_i c_i g_i / sum_i w_i`` (zeros if nothing was accepted).
        decision: the public :class:`RoundDecision` (the coordinator's own opening).
        mode: ``"honest-majority"`` or ``"beaver"`` (how squared norms were computed).
        online: edge nodes that completed the round.
        dropped: edge node -> why it was dropped.
        liars: edge nodes caught sending wrong shares or reporting different decisions.
        missing: devices left out (no commitment or upload did not reach every online node) -> why.
        trust: the public trust score each device was weighted with.
        timings: seconds per step (``share``, ``upload``, ``verify``, ``aggregate``, ``reconstruct``, ``chain``).
        gas: gas used by this round's transactions (0 without a ledger).
    """

    round: int
    devices: list[int]
    aggregate: np.ndarray
    decision: RoundDecision
    mode: str
    online: tuple[int, ...]
    dropped: dict[int, str]
    liars: tuple[int, ...]
    missing: dict[int, str]
    trust: dict[int, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    gas: int = 0

    def decision_of(self, device: int) -> DeviceDecision:
        """The decision about device ``device`` (``"missing upload"`` if it was left out)."""
        if device in self.devices:
            return self.decision.decisions[self.devices.index(device)]
        return DeviceDecision(float("nan"), None, 0.0, 1.0, "missing upload")

    @property
    def accepted(self) -> list[int]:
        """Devices whose update entered the aggregate."""
        return [i for i, d in zip(self.devices, self.decision.decisions) if d.accepted]

    @property
    def rejected(self) -> dict[int, str]:
        """Rejected or missing devices -> reason."""
        out = {i: d.reason for i, d in zip(self.devices, self.decision.decisions) if not d.accepted}
        out.update(self.missing)
        return out


class Coordinator:
    """Drives rounds over a :class:`Transport` (party ``"coordinator"``).

    Args:
        t, n: threshold and number of edge nodes (parties ``edge-1 .. edge-n``).
        d: update length.
        transport: the coordinator's transport to edge nodes and the dealer.
        codec: fixed-point codec of the updates (field, fractional bits).
        tau: cosine acceptance threshold.
        dealer: whether a dealer party (``"dealer"``) is available for the Beaver fallback.
        ledger: the chain recorder (None: no chain, the challenge seed comes from the OS CSPRNG).
        timeout: seconds per call to a party.
    """

    def __init__(
        self,
        t: int,
        n: int,
        d: int,
        transport: Transport,
        *,
        codec: FixedPointCodec | None = None,
        tau: float = 0.0,
        dealer: bool = True,
        ledger: RoundLedger | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.t, self.n, self.d = t, n, d
        self.transport = transport
        self.codec = FixedPointCodec() if codec is None else codec
        self.field = self.codec.field
        self.tau, self.dealer, self.ledger, self.timeout = tau, dealer, ledger, timeout
        self.safe = codec_for_length(self.codec, d)
        self.aggregator = Aggregator(t, d, self.codec)
        self.online: list[int] = []
        self.dropped: dict[int, str] = {}
        self.excluded: dict[int, str] = {}

    # -- calls ---------------------------------------------------------------------------------
    def _context(self) -> dict:
        return {"d": self.d, "p": self.field.p}

    def _call_nodes(self, nodes: Sequence[int], build: Callable[[int], Message], round: int, expect: type) -> dict[int, Message]:
        """Call every node in ``nodes``; a node that fails or answers the wrong kind is dropped."""
        replies = {}
        for j in nodes:
            try:
                envelope = self.transport.call(edge_party(j), build(j), round=round, timeout=self.timeout, context=self._context())
            except PPBFLError as error:
                self.dropped[j] = f"{type(error).__name__}: {error}"
                continue
            if not isinstance(envelope.message, expect):
                self.dropped[j] = f"answered {type(envelope.message).__name__}, expected {expect.__name__}"
                continue
            replies[j] = envelope.message
        return replies

    def _alive(self) -> list[int]:
        return [j for j in self.online if j not in self.dropped]

    # -- setup ---------------------------------------------------------------------------------
    def setup(self) -> tuple[int, ...]:
        """Send every edge node its :class:`SetupEdge` (fresh PRZS keys); returns the nodes that are ready.

        Raises:
            NotEnoughEdgeNodesError: fewer than ``t`` nodes answered.
        """
        keys = PRZSKeys.setup(self.t, self.n, field=self.field)

        def message(j: int) -> SetupEdge:
            mine = [(a, k) for a, k in keys.keys.items() if j in a]
            return SetupEdge(
                index=j, t=self.t, n=self.n, d=self.d, frac_bits=self.codec.frac_bits, tau=self.tau,
                przs_sets=[sum(1 << (x - 1) for x in a) for a, _ in mine], przs_keys=[k for _, k in mine],
            )

        self.dropped = {}
        replies = self._call_nodes(range(1, self.n + 1), message, 0, Message)
        self.online = sorted(replies)
        if len(self.online) < self.t:
            raise NotEnoughEdgeNodesError("setup", tuple(self.online), self.t)
        return tuple(self.online)

    # -- one round -----------------------------------------------------------------------------
    def run_round(
        self,
        round: int,
        devices: Sequence[Device],
        updates: dict[int, np.ndarray],
        reference: np.ndarray,
        *,
        trust: dict[int, float] | None = None,
        device_transport: Callable[[int], Transport],
        model_hash: bytes = b"\x00" * 32,
    ) -> RoundResult:
        """Run round ``round`` (>= 1) for ``devices`` with float (d,) ``updates[index]`` and the public
        float (d,) ``reference``; ``device_transport(index)`` is device ``index``'s transport.

        Raises:
            NotEnoughEdgeNodesError: fewer than ``t`` edge nodes stayed online.
            RoundFailedError: reconstruction failed (more liars than can be corrected).
        """
        if not self.online:
            raise RoundFailedError(round, "setup() has not been run")
        self.dropped = {j: why for j, why in self.dropped.items() if j not in self.online}
        timings = dict.fromkeys(("share", "upload", "verify", "aggregate", "reconstruct", "chain"), 0.0)
        clock = time.perf_counter()

        def lap(step: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[step] += now - clock
            clock = now

        if self.ledger is not None:
            self.ledger.open_round(round, model_hash)
            lap("chain")
        missing: dict[int, str] = {}
        committed: dict[int, bytes] = {}
        delivered: dict[int, set[int]] = {}
        for device in devices:
            i = device.index
            if i not in updates:
                missing[i] = "missing upload: no update"
                continue
            try:
                prepared: PreparedUpload = device.prepare(round, updates[i])
            except PPBFLError as error:
                missing[i] = f"missing upload: {error}"
                continue
            lap("share")
            if self.ledger is not None:
                self.ledger.commit(round, i, prepared.commitment)
                lap("chain")
            committed[i] = prepared.commitment
            transport = device_transport(i)
            delivered[i] = set()
            for j in self._alive():
                try:
                    transport.call(edge_party(j), prepared.uploads[j], round=round, timeout=self.timeout, context=self._context())
                    delivered[i].add(j)
                except PeerUnavailableError as error:  # the node is gone, not the device's fault
                    self.dropped[j] = f"{type(error).__name__}: {error}"
                except PPBFLError as error:  # the node refused this device's upload
                    missing.setdefault(i, f"missing upload: edge node {j} refused it: {error}")
            lap("upload")
        if self.ledger is not None:
            seed = self.ledger.close_commitments(round)
            committed = {i: c for i, c in committed.items() if self.ledger.commitment(round, i) == c}
            lap("chain")
        else:
            seed = secrets.token_bytes(32)
        alive = self._alive()
        members = [i for i in sorted(committed) if i not in missing and all(j in delivered[i] for j in alive)]
        for i in sorted(committed):
            if i not in members:
                missing.setdefault(i, "missing upload: not every online edge node has it")
        r_enc = self.safe.encode(np.asarray(reference, dtype=np.float64))

        # verify: consistency values, <g, r> shares, and honest-majority ||g||^2 shares
        hm = len(alive) >= 2 * self.t - 1
        verify_request = VerifyRequest(seed, r_enc, members, [committed[i] for i in members], int(hm), round)
        verify = self._call_nodes(alive, lambda j: verify_request, round, VerifyShares)
        points = self._require_nodes("verify", self.t)
        mismatched = sorted({k for j in points for k in verify[j].mismatched})

        def consistency(nodes: Sequence[int]) -> np.ndarray:
            return np.stack([verify[j].consistency for j in nodes]).reshape(len(nodes), len(members))

        norm2_rows: dict[int, np.ndarray]
        if hm and len(points) >= 2 * self.t - 1:
            mode, degree = "honest-majority", 2 * (self.t - 1)
            norm2_rows = {j: verify[j].norm2 for j in points}
        else:
            # only devices that pass the screening every node will run get a triple
            out = screen(points, consistency(points), self.t, field=self.field, mismatched=mismatched).rejected
            mode, degree = "beaver", self.t - 1
            norm2_rows = self._beaver_norms(round, members, [k for k in range(len(members)) if k not in out], points)
            points = self._require_nodes("beaver", self.t)
        lap("verify")

        trust_values = np.array([1.0 if trust is None else float(trust.get(i, 1.0)) for i in members])
        request = AggregateRequest(
            list(points),
            consistency(points),
            np.stack([verify[j].dot_ref for j in points]).reshape(len(points), len(members)),
            np.stack([norm2_rows[j] for j in points]).reshape(len(points), len(members)),
            degree, trust_values, mismatched,
        )
        decision = decide_request(request, r_enc, t=self.t, tau=self.tau, codec=self.codec)
        replies = self._call_nodes(points, lambda j: request, round, AggregateShare)
        final = self._require_nodes("aggregate", self.t)
        lap("aggregate")

        combined = self.aggregator.combine(round, {j: replies[j] for j in final}, decision)
        lap("reconstruct")
        outcome = RoundResult(
            round, members, combined.update, decision, mode, tuple(final), dict(self.dropped), combined.liars, missing,
            dict(zip(members, trust_values.tolist())), timings,
        )
        for j in outcome.liars:  # named liars leave the tier (their shares are no longer trusted)
            self.excluded[j] = f"sent wrong shares in round {round}"
        self.online = [j for j in self.online if j not in self.excluded]
        if self.ledger is not None:
            outcome.gas = self.ledger.record_round(round, outcome, {j: replies[j] for j in final}, combined.secret, model_hash)
            lap("chain")
        outcome.timings = timings
        return outcome

    def _require_nodes(self, step: str, needed: int) -> tuple[int, ...]:
        alive = tuple(self._alive())
        if len(alive) < needed:
            raise NotEnoughEdgeNodesError(step, alive, needed)
        return alive

    def _beaver_norms(self, round: int, members: list[int], columns: list[int], points: tuple[int, ...]) -> dict[int, np.ndarray]:
        """Squared norms' degree-``(t - 1)`` shares from dealer triples (fewer than ``2t - 1`` nodes online).

        Only the devices at positions ``columns`` (those with consistent shares) get a triple; the
        other positions get zero shares (those devices are rejected before norms are opened).
        """
        if not self.dealer:
            raise NotEnoughEdgeNodesError("verify (honest majority, no dealer configured)", points, 2 * self.t - 1)
        devices = [members[k] for k in columns]
        try:
            self.transport.call(DEALER_PARTY, TripleRequest(len(devices), list(points)), round=round, timeout=self.timeout, context=self._context())
        except PPBFLError as error:
            raise RoundFailedError(round, f"the dealer could not deal triples: {error}", DEALER_PARTY) from error
        masked = self._call_nodes(points, lambda j: BeaverOpen(devices), round, BeaverMasked)
        opened_at = self._require_nodes("beaver open", self.t)
        eps_shares = np.stack([masked[j].eps for j in opened_at]).reshape(len(opened_at), len(devices), self.d)
        eps = np.empty((len(devices), self.d), dtype=np.uint64)
        for i in range(len(devices)):
            try:
                eps[i] = robust_reconstruct(eps_shares[:, i, :], opened_at, self.t, field=self.field).secret
            except PPBFLError as error:
                raise RoundFailedError(round, f"opening g - a of device {devices[i]}: {error}") from error
        finished = self._call_nodes(opened_at, lambda j: BeaverFinish(eps), round, NormShares)
        rows = {}
        for j, reply in finished.items():
            rows[j] = np.zeros(len(members), dtype=np.uint64)
            rows[j][columns] = reply.norm2
        return rows

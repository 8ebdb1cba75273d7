"""The round coordinator: an untrusted relay that drives edge nodes, the dealer and the chain through a round.

State machine of round ``r`` (mirrored on chain when a ledger is given, DESIGN §6)::

    open (announce) -> devices share, commit (own chain account, PoW) and upload (own channel)
         -> commitments closed (challenge seed fixed) -> devices prove their range (own channel)
         -> who delivered (edge nodes report, close the proofs and draw coins)
         -> the verify request's hash fixed on chain -> verify (consistency, validity, <g, r>,
         ||g||^2 on shares) -> aggregate (decide, weighted sum on shares) -> reconstruct (robust;
         liars named) -> posted + audited -> closed

The coordinator never holds an update, a device object or a device's key: :meth:`Coordinator.open_round`
returns the :class:`RoundAnnouncement` the devices act on (they are clients, driven by whatever runs
them: a real device, or the simulation harness :mod:`ppbfl.fl.federation`),
:meth:`Coordinator.challenge` closes the commitments and returns the :class:`ValidityChallenge` the
devices prove their update's range against (:mod:`ppbfl.defense.validity`), and
:meth:`Coordinator.finish_round` learns who committed from the chain and who delivered from the
edge nodes (:class:`~ppbfl.protocol.messages.UploadsQuery`).

Timeouts, dropouts and retries: every call to a party has a deadline (the transport retries
transient failures a bounded number of times); calls to the edge nodes run concurrently, so a step
takes as long as the slowest node, not the sum; a party that fails a call is marked dropped for the
rest of the round with the reason. The round completes with up to ``n - t`` edge nodes dropped:
with at least ``2t + 1`` online the squared norms use honest-majority shares (no dealer); with
fewer, Beaver triples from the dealer, whose degree-``(t - 1)`` results let ``floor((k - t) / 2)``
wrong shares be corrected and named (``norms`` says when honest majority is used anyway). Any devices may drop: a device
that did not commit, or whose upload did not reach every online node, is left out ("missing upload").
The coordinator sees only opened scalars and aggregate shares, never a device's update.

Redundancy: with ``k`` edge nodes online, up to ``floor((k - t) / 2)`` wrong aggregate shares are
corrected (``floor((k - 2t + 1) / 2)`` for honest-majority norm shares) and the share-consistency
check compares ``k - t`` extra points; with exactly ``t`` online nothing can be checked or corrected.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

import numpy as np
from cryptography.hazmat.primitives.asymmetric import ec

from ppbfl.chain.votes import ChainContext
from ppbfl.defense.decision import DeviceDecision
from ppbfl.defense.submission import codec_for_length
from ppbfl.defense.validity import DEFAULT_ROWS, ValidityParams
from ppbfl.errors import ConfigError, FieldShapeError, PPBFLError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.protocol.aggregator import AggregateCombiner
from ppbfl.protocol.announcement import RoundAnnouncement, ValidityChallenge
from ppbfl.protocol.attribution import MISMATCH, DeviceKeys, Dispute, Settlement, settle, settle_roots, verify_disputes
from ppbfl.protocol.edge_node import DEALER_PARTY, RULES, edge_party
from ppbfl.protocol.errors import MessageError, PeerAuthError
from ppbfl.protocol.flame_decision import FLAME_SPACES, GlobalModelError, check_global_model, decide_flame_request, pair_count
from ppbfl.protocol.flame_decision import model_hash as flame_model_hash
from ppbfl.protocol.messages import (
    Ack,
    AggregateRequest,
    AggregateShare,
    BeaverCheck,
    BeaverFinish,
    BeaverMasked,
    BeaverOpen,
    EndorseRequest,
    EpsCheck,
    FlameAggregateRequest,
    GramRequest,
    GramShares,
    NormShares,
    PRZSDeliver,
    PRZSOffer,
    PRZSPeers,
    PRZSSealed,
    RequestEndorsement,
    SetupEdge,
    TripleRequest,
    UploadsQuery,
    UploadsReport,
    VerifyRequest,
    VerifyShares,
)
from ppbfl.protocol.przs_setup import check_offer_point, offer_key
from ppbfl.protocol.registry import PeerRegistry
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError, RoundFailedError
from ppbfl.protocol.signed_shares import (
    coin_digest,
    endorse_digest,
    eps_check_digest,
    eps_check_seed,
    field_hash,
    gram_digest,
    norms_digest,
    request_hash,
    signed_by,
    verify_digest,
)
from ppbfl.protocol.transport import Transport
from ppbfl.protocol.verification import RoundDecision, decide_request, screen
from ppbfl.protocol.wire import Message
from ppbfl.sharing.robust import robust_reconstruct

__all__ = ["Coordinator", "RoundAnnouncement", "RoundLedger", "RoundResult", "ValidityChallenge"]

Reply = TypeVar("Reply", bound=Message)

MAX_DEVICES = 1 << 16
"""Most devices one round takes (the messages' list bound)."""


class RoundLedger(Protocol):
    """What the coordinator records on chain (:class:`ppbfl.protocol.ledger.ChainLedger` implements it).

    Devices commit with their own keys (:class:`ppbfl.protocol.ledger.DeviceChainAccount`), not here.
    """

    @property
    def context(self) -> ChainContext:
        """The contract and chain the edge nodes sign their votes for (sent in the aggregate request)."""

    def open_round(self, round: int, model_hash: bytes) -> None:
        """Open ``round`` for the global model with hash ``model_hash``."""

    def close_commitments(self, round: int) -> bytes:
        """End the commit phase; return the 32-byte challenge seed fixed after it."""

    def post_verify_request(self, round: int, request_hash: bytes) -> None:
        """Fix the hash of ``round``'s one ``VerifyRequest`` on chain (once), before it is sent."""

    def abort_round(self, round: int) -> None:
        """Fail ``round`` on chain (it cannot complete), so that the next round can open."""

    def commitments(self, round: int, devices: Iterable[int] | None = None) -> dict[int, bytes]:
        """Device index -> the share commitment it posted for ``round``, over ``devices`` (default:
        every registered one); devices that posted none are absent."""

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
        missing: devices left out (no commitment, or an upload that did not reach every online node) -> why.
        trust: the public trust score each device was weighted with.
        timings: seconds per step of the coordinator (``collect``, ``verify``, ``aggregate``,
            ``reconstruct``, ``chain``); a harness adds the devices' steps.
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


@dataclass
class _OpenRound:
    announcement: RoundAnnouncement
    timings: dict[str, float]
    seed: bytes | None = None  # the challenge seed, once the commitments are closed


class Coordinator:
    """Relays a round between edge nodes, the dealer and the chain (party ``"coordinator"``).

    It holds no party's secret: it sees the devices' commitments (on chain), opened scalars and
    aggregate shares. Anyone may run it; what it relays is checked by the parties (t-agreement on
    chain, robust reconstruction, the on-chain audit).

    Args:
        t, n: threshold and number of edge nodes (parties ``edge-1 .. edge-n``).
        d: update length.
        transport: the coordinator's transport to edge nodes and the dealer.
        codec: fixed-point codec of the updates (field, fractional bits).
        tau: cosine acceptance threshold.
        dealer: whether a dealer party (``"dealer"``) is available for the Beaver fallback.
        norms: how the squared norms (and the validity values) are computed on shares.
            ``"auto"``: honest majority (no dealer) when its degree-``2(t - 1)`` openings can correct a
            wrong share, i.e. ``k >= 2t + 1`` nodes online; with ``2t - 1 <= k <= 2t`` Beaver triples from
            the dealer (degree ``t - 1``: ``floor((k - t) / 2)`` wrong shares corrected and named),
            or honest majority when there is no dealer; Beaver below ``2t - 1``. Under rule ``"flame"``
            the Gram matrix follows the norms (Beaver: from the same triples' pair products).
            ``"honest-majority"``: honest majority whenever ``k >= 2t - 1``
            (no dealer traffic; a wrong norm share is then undetected at ``k = 2t - 1`` and only
            detected at ``k = 2t``: docs/security.md). ``"beaver"``: always dealer triples.
        ledger: the chain recorder (None: no chain; commitments are then the roots the edge nodes
            report, and the challenge seed comes from the OS CSPRNG).
        timeout: seconds per call to a party.
        validity_k: random projections of the input-validity check (soundness error
            ``2^-validity_k``; edge nodes refuse fewer than 40).
        device_keys: the devices' identity keys, when every edge node requires signed uploads
            (:attr:`ppbfl.protocol.deployment.Deployment.device_keys`): a node's mismatch claim is
            then decided by its evidence and a false one names it (:mod:`ppbfl.protocol.attribution`).
        rule: the public decision rule, sent to the edge nodes in their setup (they refuse the
            other rule's requests): ``"cosine"`` (DESIGN §5) or ``"flame"`` (FLAME's clustering
            on the opened Gram matrix, :mod:`ppbfl.protocol.flame_decision`; the tier needs
            ``n >= 2t - 1``; in Beaver mode the Gram matrix comes from the dealer's pair products,
            degree ``t - 1``, so ``floor((k - t) / 2)`` wrong Gram shares are corrected and named).
        flame_noise: rule ``"flame"``: the noise level ``lambda`` the nodes add on shares
            (:mod:`ppbfl.defense.flame_noise`; 0: none).
        rescale: rule ``"cosine"``: FLTrust's norm rescaling (every accepted update weighted by
            ``w_i ||r|| / ||g_i||`` instead of clipped to ``||r||``), sent to the nodes in their setup.
        flame_space: rule ``"flame"``: cluster the ``"updates"`` (default) or the local
            ``"models"`` ``G + g_i`` (docs/flame.md); with ``"models"`` the ``reference`` of
            :meth:`finish_round` is the global model ``G``, which must hash to the announced model hash.
        request_endorsements: before the verify request leaves, ask every online node to endorse
            its hash (:class:`EndorseRequest`, one more fan-out) and relay their signatures in it:
            what nodes with a request quorum (:attr:`EdgeNode.request_quorum`, nodes without a
            chain view) require; a node that does not endorse leaves the round like a dropped one.
            False (default): no endorsements (such nodes then refuse every verify request).
        registry: who holds which certificate, the registry the edge nodes check their peers' PRZS
            offers against: the coordinator then refuses an offer whose certificate is not
            registered to its node, as the peers would (None: it checks the offer's signature
            under the offer's own certificate only).

    Every signed value a node's peers check (its PRZS offer, its ``UploadsReport`` coin, its
    ``RequestEndorsement``, ``VerifyShares``, ``EpsCheck``, ``NormShares`` and ``GramShares``) is
    checked here first, with the digest and the key the peers use (the key of the certificate in
    the node's checked offer): a node whose signature fails is dropped with a
    :class:`PeerAuthError` naming it and the field, and its value is not relayed (the peers would
    refuse the relayed rows and leave the round, docs/security.md).
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
        norms: Literal["auto", "honest-majority", "beaver"] = "auto",
        ledger: RoundLedger | None = None,
        timeout: float = 30.0,
        validity_k: int = DEFAULT_ROWS,
        device_keys: DeviceKeys | None = None,
        rule: str = "cosine",
        flame_noise: float = 0.0,
        rescale: bool = False,
        flame_space: str = "updates",
        request_endorsements: bool = False,
        registry: PeerRegistry | None = None,
    ) -> None:
        if norms not in ("auto", "honest-majority", "beaver"):
            raise RoundFailedError(0, f"norms = {norms!r}: expected 'auto', 'honest-majority' or 'beaver'")
        if rule not in RULES or (rule == "flame" and n < 2 * t - 1):
            raise ConfigError("rule", f"{rule!r}: expected one of {RULES}; 'flame' needs n >= 2t - 1 = {2 * t - 1}")
        if not 0.0 <= flame_noise < float("inf") or (flame_noise > 0 and rule != "flame"):
            raise ConfigError("flame_noise", f"{flame_noise!r}: expected a finite number >= 0, and 0 unless rule = 'flame'")
        if rescale and rule != "cosine":
            raise ConfigError("rescale", f"FLTrust's norm rescaling is an option of rule 'cosine', not {rule!r}")
        if flame_space not in FLAME_SPACES or (flame_space != "updates" and rule != "flame"):
            raise ConfigError("flame_space", f"{flame_space!r}: expected one of {FLAME_SPACES}, and 'updates' unless rule = 'flame'")
        self.rule, self.flame_noise, self.rescale, self.flame_space = rule, float(flame_noise), bool(rescale), flame_space
        self.request_endorsements = bool(request_endorsements)
        self.t, self.n, self.d = t, n, d
        self.transport = transport
        self.codec = FixedPointCodec() if codec is None else codec
        self.field = self.codec.field
        self.tau, self.dealer, self.norms, self.ledger, self.timeout = tau, dealer, norms, ledger, timeout
        self.device_keys = device_keys
        self.safe = codec_for_length(self.codec, d)
        self.validity = ValidityParams.for_length(d, k=validity_k, field=self.field)
        self.aggregator = AggregateCombiner(t, d, self.codec)
        self.online: list[int] = []
        self.dropped: dict[int, str] = {}
        self.excluded: dict[int, str] = {}
        self.registry = registry
        self._session = b""  # the setup session the nodes' signatures are bound to
        self._keys: dict[int, ec.EllipticCurvePublicKey] = {}  # node -> the signing key of its checked PRZS offer
        self._open: dict[int, _OpenRound] = {}
        self._pool = ThreadPoolExecutor(max_workers=n + 1, thread_name_prefix="ppbfl-coordinator")

    def close(self) -> None:
        """Stop the fan-out threads."""
        self._pool.shutdown(wait=True)

    # -- calls ---------------------------------------------------------------------------------
    def _context(self) -> dict:
        return {"d": self.d, "p": self.field.p}

    def _call_nodes(
        self, nodes: Iterable[int], build: Callable[[int], Message], round: int, expect: type[Reply],
        shapes: Mapping[str, tuple[int, ...]] | None = None,
    ) -> dict[int, Reply]:
        """Call every node in ``nodes`` concurrently; a node that fails, answers the wrong kind, or
        answers an array field whose shape is not ``shapes[field]`` (what the round needs: the wire
        schema cannot know ``m``) is dropped, the latter as a :class:`MessageError` naming the field."""

        def call(j: int) -> Message:
            return self.transport.call(edge_party(j), build(j), round=round, timeout=self.timeout, context=self._context()).message

        futures = {j: self._pool.submit(call, j) for j in nodes}
        replies: dict[int, Reply] = {}
        for j, future in futures.items():
            try:
                message = future.result()
            except PPBFLError as error:
                self.dropped[j] = f"{type(error).__name__}: {error}"
                continue
            if not isinstance(message, expect):
                self.dropped[j] = f"answered {type(message).__name__}, expected {expect.__name__}"
                continue
            wrong = [(name, getattr(message, name).shape, shape) for name, shape in (shapes or {}).items() if getattr(message, name).shape != shape]
            if wrong:
                name, got, shape = wrong[0]
                malformed = MessageError(edge_party(j), name, f"shape {got}, expected {shape}")
                self.dropped[j] = f"{type(malformed).__name__}: {malformed}"
                continue
            replies[j] = message
        return replies

    def _signed(self, replies: dict[int, Reply], field: str, digest: Callable[[int, Reply], bytes]) -> dict[int, Reply]:
        """``replies`` less those whose ``field`` is not their node's signature of ``digest(j, reply)``
        (the digest its peers check, :mod:`ppbfl.protocol.signed_shares`): such a node is dropped
        with a :class:`PeerAuthError` naming it and the field, before anything of it is relayed."""
        kept: dict[int, Reply] = {}
        for j, reply in replies.items():
            if signed_by(self._keys, j, getattr(reply, field), digest(j, reply)):
                kept[j] = reply
                continue
            bad = PeerAuthError(edge_party(j), f"field {field!r} of its {reply.KIND} is not its signature (its peers would refuse it)")
            self.dropped[j] = f"{type(bad).__name__}: {bad}"
        return kept

    def _alive(self) -> list[int]:
        return [j for j in self.online if j not in self.dropped]

    # -- setup ---------------------------------------------------------------------------------
    def setup(self, round: int = 0) -> tuple[int, ...]:
        """Set every edge node up and relay their PRZS key agreement; returns the nodes that are ready.

        ``round``: the latest round on chain, for a coordinator that restarts
        (:mod:`ppbfl.protocol.resume`): the nodes then accept uploads for the rounds after it.
        Nodes in :attr:`excluded` (named liars) are left out.

        Three relayed steps (:mod:`ppbfl.protocol.przs_setup`): :class:`SetupEdge` (fresh session)
        -> signed X25519 offers; every offer to every node -> the set keys each leads, sealed per
        member; each node its ciphertexts -> ready. The coordinator sees public keys and
        ciphertexts only. An offer is checked as the peers check it
        (:func:`~ppbfl.protocol.przs_setup.offer_key`) before it is relayed: a node whose offer
        fails is left out of the setup, named. A node that fails a step is dropped (with the reason); if one fails
        after its offer (the keys of the sets it leads are then missing at their other members),
        the setup runs once more among the nodes that sealed their keys.

        Raises:
            NotEnoughEdgeNodesError: fewer than ``t`` nodes completed a step.
        """
        self.dropped = {}
        nodes = [j for j in range(1, self.n + 1) if j not in self.excluded]
        for attempt in (1, 2):
            offered, sealers = self._agree_keys(nodes, round)
            if len(sealers) == len(offered) or attempt == 2:
                break
            nodes = sealers  # leave out the nodes that failed after their offer, and agree again
            for j in nodes:
                self.dropped.pop(j, None)
        self.online = list(self._require_nodes("setup", self.t))
        return tuple(self.online)

    def _agree_keys(self, nodes: Sequence[int], round: int = 0) -> tuple[list[int], list[int]]:
        """One setup session among ``nodes``: returns the nodes that offered and those that sealed their keys
        (the key agreement's messages carry ``round``, the latest round on chain)."""
        session = secrets.token_bytes(32)
        self._session, self._keys = session, {}

        def message(j: int) -> SetupEdge:
            return SetupEdge(
                index=j, t=self.t, n=self.n, d=self.d, frac_bits=self.codec.frac_bits, tau=self.tau,
                validity_k=self.validity.k, session=session, rule=self.rule, flame_noise=self.flame_noise,
                rescale=self.rescale, flame_space=self.flame_space,
            )

        offers = self._call_nodes(nodes, message, 0, PRZSOffer)
        for j in sorted(offers):  # a bad offer is dropped here, named, not relayed (the peers would refuse it)
            try:
                key = offer_key(edge_party(j), "sent", j, offers[j], session=session, t=self.t, n=self.n, registry=self.registry)
                check_offer_point(j, offers[j].public_key)
                self._keys[j] = key
            except PeerAuthError as error:
                self.dropped[j] = f"{type(error).__name__}: {error}"
                del offers[j]
        self.online = sorted(offers)
        peers = PRZSPeers(
            self.online, [offers[j].public_key for j in self.online], [offers[j].certificate for j in self.online],
            [offers[j].signature for j in self.online],
        )
        sealed = self._call_nodes(self._require_nodes("setup", self.t), lambda j: peers, round, PRZSSealed)
        inbox: dict[int, list[tuple[int, int, bytes]]] = {j: [] for j in sealed}  # recipient -> (set, sender, ciphertext)
        for sender, reply in sealed.items():
            for mask, recipient, ciphertext in zip(reply.sets, reply.recipients, reply.ciphertexts):
                if recipient in inbox:  # addressed to a node still in the setup
                    inbox[recipient].append((mask, sender, ciphertext))

        def deliver(j: int) -> PRZSDeliver:
            return PRZSDeliver([m for m, _, _ in inbox[j]], [s for _, s, _ in inbox[j]], [c for _, _, c in inbox[j]])

        self._call_nodes(self._require_nodes("setup", self.t), deliver, round, Ack)
        return sorted(offers), sorted(sealed)

    # -- one round -----------------------------------------------------------------------------
    def open_round(self, round: int, model_hash: bytes = b"\x00" * 32) -> RoundAnnouncement:
        """Open round ``round`` (>= 1) for the model with hash ``model_hash`` (on chain with a ledger).

        Returns what the devices need to take part; they share, commit and upload on their own,
        then :meth:`finish_round` runs the edge tier.

        Raises:
            RoundFailedError: :meth:`setup` has not run, or ``round`` is already open.
        """
        if not self.online:
            raise RoundFailedError(round, "setup() has not been run")
        if round in self._open:
            raise RoundFailedError(round, "this round is already open")
        self.dropped = {j: why for j, why in self.dropped.items() if j not in self.online}
        timings = dict.fromkeys(("chain", "collect", "verify", "aggregate", "reconstruct"), 0.0)
        tick = time.perf_counter()
        if self.ledger is not None:
            self.ledger.open_round(round, model_hash)
        timings["chain"] += time.perf_counter() - tick
        announcement = RoundAnnouncement(
            round, self.t, self.n, self.d, self.codec.frac_bits, tuple(self._alive()), bytes(model_hash),
        )
        self._open[round] = _OpenRound(announcement, timings)
        return announcement

    def challenge(self, round: int) -> ValidityChallenge:
        """Close round ``round``'s commitments (on chain with a ledger) and return the challenge the
        devices prove their update's range against (:meth:`ppbfl.protocol.device.Device.prove`).

        Raises:
            RoundFailedError: the round is not open, or its commitments are already closed.
        """
        pending = self._open.get(round)
        if pending is None:
            raise RoundFailedError(round, "challenge before open_round")
        if pending.seed is not None:
            raise RoundFailedError(round, "the commitments of this round are already closed")
        tick = time.perf_counter()
        pending.seed = self.ledger.close_commitments(round) if self.ledger is not None else secrets.token_bytes(32)
        pending.timings["chain"] += time.perf_counter() - tick
        v = self.validity
        return ValidityChallenge(round, pending.seed, v.d, v.k, v.bits, pending.announcement.edge_nodes)

    def finish_round(
        self, round: int, reference: np.ndarray, *, trust: dict[int, float] | None = None, model: np.ndarray | None = None,
    ) -> RoundResult:
        """Run the edge tier of round ``round`` (after :meth:`challenge`) against the public float (d,) ``reference``.

        ``trust``: device index -> public trust score in [0, 1] (default 1). FLAME on local models
        (``flame_space = "models"``): ``reference`` is the global model ``G`` (public; sent to the
        nodes as float32 with the announced model hash, which it must have). ``model``: rule
        ``"cosine"``: the round's global model ((d,) float32, public), sent with the announced model
        hash, which it must have, so that nodes with a reference source compute the reference
        themselves (:meth:`ppbfl.protocol.edge_node.EdgeNode._check_reference`); such nodes
        refuse a request without it.

        Raises:
            FieldShapeError: ``reference`` is not (d,); ConfigError: a trust score is not in [0, 1],
                or ``model`` under rule ``"flame"``; GlobalModelError: FLAME on models and
                ``reference``, or ``model``, is not the announced model (or, FLAME, beyond the
                no-wrap bound) (all before anything is sent: the round stays open).
            NotEnoughEdgeNodesError: fewer than ``t`` edge nodes stayed online.
            RoundFailedError: the round is not open or not challenged, or reconstruction failed (more
                liars than can be corrected).

        Any failure after the commit phase closed aborts the round on chain (``ledger.abort_round``)
        before the error propagates, so the next round can open.
        """
        if np.shape(reference) != (self.d,):
            raise FieldShapeError("reference", np.shape(reference), f"({self.d},)")
        for i, score in (trust or {}).items():
            if not 0.0 <= float(score) <= 1.0:  # also refuses NaN
                raise ConfigError("trust", f"device {i}: {score!r} is not in [0, 1]")
        pending = self._open.get(round)
        if pending is None:
            raise RoundFailedError(round, "finish_round before open_round")
        if pending.seed is None:
            raise RoundFailedError(round, "finish_round before challenge: the devices have not been asked to prove their range")
        sent = np.zeros(0, dtype="<f4")
        if self.flame_space == "models":
            sent = np.ascontiguousarray(reference, dtype="<f4")
            check_global_model(sent, pending.announcement.model_hash, None, self.codec, self.d, party="coordinator")
            reference = sent.astype(np.float64)  # what the nodes encode
        elif model is not None:
            if self.rule != "cosine":
                raise ConfigError("model", f"the global model goes with the request under rule 'cosine' (or FLAME on models, as its reference), not {self.rule!r}")
            sent = np.ascontiguousarray(model, dtype="<f4")
            if sent.shape != (self.d,) or flame_model_hash(sent) != pending.announcement.model_hash:
                raise GlobalModelError("coordinator", "model", f"shape {sent.shape} (expected ({self.d},)) and the announced model hash expected")
        del self._open[round]
        seed = pending.seed
        timings = pending.timings
        clock = time.perf_counter()

        def lap(step: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[step] += now - clock
            clock = now

        try:
            return self._run_edge_tier(round, reference, trust, seed, pending, lap, sent)
        except Exception as error:  # the round cannot complete: fail it on chain so the next one opens
            if self.ledger is not None:
                try:
                    self.ledger.abort_round(round)
                except Exception as abort_error:  # reported with the round's own error
                    error.add_note(f"aborting round {round} on chain failed too: {type(abort_error).__name__}: {abort_error}")
            raise

    def _run_edge_tier(
        self, round: int, reference: np.ndarray, trust: dict[int, float] | None, seed: bytes, pending: _OpenRound,
        lap: Callable[[str], None], model: np.ndarray,
    ) -> RoundResult:
        """Everything of :meth:`finish_round` after the commit phase closed (``seed``: its challenge seed)."""
        timings = pending.timings
        reports = self._call_nodes(self._alive(), lambda j: UploadsQuery(MAX_DEVICES), round, UploadsReport)
        reports = self._signed(reports, "coin_signature", lambda j, r: coin_digest(self._session, round, j, r.coin))
        lap("collect")
        on_chain: dict[int, bytes] | None = None
        if self.ledger is not None:  # every registered device's: one that committed but reached no node is missing too
            on_chain = self.ledger.commitments(round)
            lap("chain")
        named: dict[int, str] = {}  # nodes a claim of theirs shows to lie -> why
        committed, missing, disputes, liars = self._members(round, reports, on_chain)
        for j, why in liars.items():  # reported a root the device did not sign: named, they leave the round now
            named[j] = self.dropped[j] = f"named as a liar: {why}"
        budget = (len(self._alive()) - self.t) // 2  # nodes a round may drop over disputes (attribution.py)
        settled = self._settle(disputes, budget)
        budget -= len(settled.dropped)
        for dispute in settled.upheld:
            missing[dispute.device] = dispute.reason
            del committed[dispute.device]
        members = sorted(committed)
        r_enc = self.safe.encode(np.asarray(reference, dtype=np.float64))

        # verify: consistency values, <g, r> shares, and honest-majority ||g||^2 shares
        alive = self._alive()
        hm = self._honest_majority(len(alive))
        coin_nodes = sorted(j for j in alive if j in reports)
        verify_request = VerifyRequest(
            seed, r_enc, members, [committed[i] for i in members], int(hm), round, coin_nodes, [reports[j].coin for j in coin_nodes],
            [reports[j].coin_signature for j in coin_nodes],
            model=model, model_hash=pending.announcement.model_hash if model.size else b"",
        )
        answered = request_hash(verify_request)  # what every node signs; the endorsements added below are outside it
        if self.ledger is not None:  # one request for every node, fixed on chain first: nodes that read it answer only this one
            self.ledger.post_verify_request(round, answered)
            lap("chain")
        if self.request_endorsements:  # nodes with a request quorum answer only a request that q of them endorsed
            asked = EndorseRequest(answered)
            endorsed = self._call_nodes(alive, lambda j: asked, round, RequestEndorsement)
            endorsed = self._signed(endorsed, "signature", lambda j, r: endorse_digest(self._session, round, j, asked.request_hash))
            alive = list(self._require_nodes("endorse", self.t))
            verify_request = dataclasses.replace(verify_request, endorsers=alive, endorsements=[endorsed[j].signature for j in alive])
        m, m_hm = (len(members),), (len(members) if hm else 0,)
        verify = self._call_nodes(
            alive, lambda j: verify_request, round, VerifyShares,
            {"consistency": m, "dot_ref": m, "proof_consistency": m, "norm2": m_hm, "validity": m_hm},
        )
        verify = self._signed(verify, "signature", lambda j, r: verify_digest(
            self._session, round, j, consistency=r.consistency, dot_ref=r.dot_ref, norm2_hash=field_hash(r.norm2),
            proof_consistency=r.proof_consistency, validity_hash=field_hash(r.validity), mismatched=r.mismatched, request=answered,
        ))
        points = self._require_nodes("verify", self.t)

        def rows(name: str, nodes: Sequence[int]) -> np.ndarray:
            return np.stack([getattr(verify[j], name) for j in nodes]).reshape(len(nodes), len(members))

        claims = {j: self._claims(verify[j], len(members)) for j in points}
        found = verify_disputes(
            round, members, verify_request.commitments, claims, points, rows("consistency", points),
            rows("proof_consistency", points), self.t, device_keys=self.device_keys, field=self.field,
        )
        for j, why in found.liars.items():  # named: they leave the round now, and the tier after it
            named[j] = self.dropped[j] = f"named as a liar: {why}"
        settled = self._settle(found.disputes, budget)
        points = self._require_nodes("verify", self.t)
        mismatched = sorted(set(found.proven) | {members.index(d.device) for d in settled.upheld if d.reason == MISMATCH})

        norm2_rows: dict[int, np.ndarray]
        validity_rows: dict[int, np.ndarray]
        norm_signatures: dict[int, bytes] = {}
        if hm and self._honest_majority(len(points)):
            mode, degree = "honest-majority", 2 * (self.t - 1)
            norm2_rows = {j: verify[j].norm2 for j in points}
            validity_rows = {j: verify[j].validity for j in points}
        else:
            # Beaver mode, also after an honest-majority verify that lost nodes: each node answers one
            # verify per round, and its NormShares bring degree-(t - 1) shares of ||g||^2 and z.
            # Only devices that pass the screening every node will run get a triple.
            out = screen(
                points, rows("consistency", points), self.t, field=self.field, mismatched=mismatched,
                proof_consistency=rows("proof_consistency", points),
            ).rejected
            mode, degree = "beaver", self.t - 1
            norm2_rows, validity_rows, norm_signatures, eps_liars = self._beaver_norms(
                round, members, [k for k in range(len(members)) if k not in out], points,
            )
            for j in eps_liars:  # corrected while opening g - a: named like any other wrong share
                named[j] = self.dropped[j] = f"named as a liar: sent wrong Beaver shares of g - a (or a wrong eps check) in round {round}"
            points = self._require_nodes("beaver", self.t)
        lap("verify")

        trust_values = np.array([1.0 if trust is None else float(trust.get(i, 1.0)) for i in members])
        request = AggregateRequest(
            list(points),
            rows("consistency", points),
            rows("dot_ref", points),
            np.stack([norm2_rows[j] for j in points]).reshape(len(points), len(members)),
            degree, trust_values, mismatched,
            rows("proof_consistency", points),
            np.stack([validity_rows[j] for j in points]).reshape(len(points), len(members)),
            # what lets each node check the rows against their nodes' signatures (signed_shares)
            [verify[j].signature for j in points], [field_hash(verify[j].norm2) for j in points], [verify[j].mismatched for j in points],
            [norm_signatures[j] for j in points] if norm_signatures else [],
            [field_hash(verify[j].validity) for j in points] if norm_signatures else [],
            # the chain the nodes sign their votes for (their signatures come back in AggregateShare)
            chain_contract=b"" if self.ledger is None else self.ledger.context.contract_bytes,
            chain_id=0 if self.ledger is None else self.ledger.context.chain_id,
        )
        if self.rule == "flame":
            request, points, decision = self._flame_request(round, request, members, mode, r_enc)
        else:
            decision = decide_request(request, r_enc, t=self.t, tau=self.tau, codec=self.codec, rescale=self.rescale)
        replies = self._call_nodes(points, lambda j: request, round, AggregateShare)
        final = self._require_nodes("aggregate", self.t)
        lap("aggregate")

        combined = self.aggregator.combine(round, {j: replies[j] for j in final}, decision)
        lap("reconstruct")
        outcome = RoundResult(
            round, members, combined.update, decision, mode, tuple(final), dict(self.dropped), tuple(sorted({*combined.liars, *named})), missing,
            dict(zip(members, trust_values.tolist())), timings,
        )
        for j in outcome.liars:  # named liars leave the tier (their shares are no longer trusted)
            self.excluded[j] = f"sent wrong shares in round {round}"
        self.online = [j for j in self.online if j not in self.excluded]
        if self.ledger is not None:
            outcome.gas = self.ledger.record_round(round, outcome, {j: replies[j] for j in final}, combined.secret, pending.announcement.model_hash)
            lap("chain")
        outcome.timings = timings
        return outcome

    def _honest_majority(self, k: int) -> bool:
        """Whether ``k`` online nodes compute the squared norms in honest-majority mode (see ``norms``)."""
        if self.norms == "beaver" or k < 2 * self.t - 1:
            return False
        return self.norms == "honest-majority" or k >= 2 * self.t + 1 or not self.dealer

    def _members(
        self, round: int, reports: dict[int, UploadsReport], on_chain: dict[int, bytes] | None
    ) -> tuple[dict[int, bytes], dict[int, str], list[Dispute], dict[int, str]]:
        """Devices some online node holds an upload from, under the root they committed.

        With a ledger the commitment is the chain's; without one, it is the root the nodes report
        (they must all report the same, or, with :attr:`device_keys`, the root the device signed:
        :func:`~ppbfl.protocol.attribution.settle_roots` names the nodes that report another).
        Returns ``(commitment per candidate member, missing -> why, disputes, liars -> why)``: a
        candidate that some online nodes say they do not hold (its upload or its validity proof) is
        in a dispute against those nodes (:mod:`ppbfl.protocol.attribution`).
        """
        alive = self._alive()
        held: dict[int, dict[int, bytes]] = {}  # device -> node -> root
        signed: dict[int, dict[int, tuple[bytes, bytes]]] = {}  # device -> node -> (leaves' root, device signature)
        proved: dict[int, set[int]] = {}  # device -> nodes holding its validity proof
        for j in alive:
            report = reports[j]
            evidence = list(zip(report.upload_roots, report.upload_signatures))
            for n, (i, root) in enumerate(zip(report.devices, report.roots)):
                held.setdefault(i, {})[j] = root
                signed.setdefault(i, {})[j] = evidence[n] if n < len(evidence) else (b"", b"")
            for i in report.proofs:
                proved.setdefault(i, set()).add(j)
        missing: dict[int, str] = {}
        committed: dict[int, bytes] = {}
        disputes: list[Dispute] = []
        liars: dict[int, str] = {}
        for i in sorted(set(held) | set(on_chain or {})):
            nodes = held.get(i, {})
            if on_chain is not None and i not in on_chain:
                missing[i] = "missing upload: no commitment on chain"
                continue
            roots = set(nodes.values())
            key = self.device_keys(i) if on_chain is None and len(roots) > 1 and self.device_keys is not None else None
            if key is not None:  # unsigned uploads (no key): nodes that disagree leave the device out, nobody named
                claims = settle_roots(round, i, {j: (root, *signed[i][j]) for j, root in nodes.items()}, key)
                for j, why in claims.liars.items():
                    liars.setdefault(j, why)
                if claims.root is None:
                    missing[i] = claims.reason
                    continue
                roots = {claims.root}
            if not nodes or (on_chain is None and len(roots) > 1):
                missing[i] = (
                    f"missing upload: edge nodes {alive} do not have it" if not nodes
                    else "missing upload: edge nodes hold uploads under different commitments"
                )
                continue
            committed[i] = on_chain[i] if on_chain is not None else roots.pop()
            absent = [j for j in alive if j not in nodes]
            unproved = [j for j in alive if j not in proved.get(i, ())]
            if absent:
                against = tuple(sorted(set(absent) | set(unproved)))
                disputes.append(Dispute(i, against, "does not hold the upload", f"missing upload: edge nodes {absent} do not have it"))
            elif unproved:
                disputes.append(
                    Dispute(i, tuple(unproved), "does not hold the validity proof", f"missing proof: edge nodes {unproved} hold no validity proof")
                )
        return committed, missing, disputes, liars

    @staticmethod
    def _claims(reply: VerifyShares, m: int) -> dict[int, tuple[bytes, bytes]]:
        """A node's mismatch claims: column -> (root it holds, the device's signature of it); a
        claim without evidence (a short list) carries an empty root and signature."""
        evidence = list(zip(reply.evidence_roots, reply.evidence_signatures))
        return {k: evidence[n] if n < len(evidence) else (b"", b"") for n, k in enumerate(reply.mismatched) if 0 <= k < m}

    def _settle(self, disputes: list[Dispute], budget: int) -> Settlement:
        """Settle ``disputes`` among the nodes online (:func:`~ppbfl.protocol.attribution.settle`);
        the nodes it drops leave the round with the reason."""
        settled = settle(disputes, self._alive(), self.t, budget)
        self.dropped.update(settled.dropped)
        return settled

    def _require_nodes(self, step: str, needed: int) -> tuple[int, ...]:
        alive = tuple(self._alive())
        if len(alive) < needed:
            raise NotEnoughEdgeNodesError(step, alive, needed)
        return alive

    def _beaver_norms(
        self, round: int, members: list[int], columns: list[int], points: tuple[int, ...]
    ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[int, bytes], set[int]]:
        """Degree-``(t - 1)`` shares of the squared norms and of the validity values ``z`` from dealer
        triples, per node: ``(norms, z, the node's signature)``, and the nodes whose shares of
        ``g - a`` (or eps checks) robust opening corrected (liars). Steps: ``TripleRequest`` to the
        dealer, ``BeaverOpen`` (shares of ``g - a``, opened robustly here), ``BeaverCheck`` (each
        node's signed projection of its own shares onto a hash of the opened ``eps``, opened
        robustly here too), ``BeaverFinish`` (every point's checks: each node checks them against the
        ``eps`` it was sent before computing its ``NormShares``, so a shifted ``eps`` is refused).

        Only the devices at positions ``columns`` (those with consistent shares) get triples; the
        other positions get zero shares (those devices are rejected before anything is opened).
        """
        if not self.dealer:
            raise NotEnoughEdgeNodesError("verify (honest majority, no dealer configured)", points, 2 * self.t - 1)
        devices = [members[k] for k in columns]
        try:
            self.transport.call(
                DEALER_PARTY, TripleRequest(len(devices), self.validity.proof_length, list(points), pairs=self.rule == "flame"), round=round,
                timeout=self.timeout, context=self._context(),
            )
        except PPBFLError as error:
            raise RoundFailedError(round, f"the dealer could not deal triples: {error}", DEALER_PARTY) from error
        width = self.validity.proof_length
        masked = self._call_nodes(
            points, lambda j: BeaverOpen(devices), round, BeaverMasked, {"eps": (len(devices), self.d), "proof_eps": (len(devices), width)},
        )
        opened_at = self._require_nodes("beaver open", self.t)

        wrong: set[int] = set()

        def open_masked(name: str, length: int) -> np.ndarray:
            shares = np.stack([getattr(masked[j], name) for j in opened_at]).reshape(len(opened_at), len(devices), length)
            opened = np.empty((len(devices), length), dtype=np.uint64)
            for i in range(len(devices)):
                try:
                    result = robust_reconstruct(shares[:, i, :], opened_at, self.t, field=self.field)
                except PPBFLError as error:
                    raise RoundFailedError(round, f"opening {name} of device {devices[i]}: {error}") from error
                opened[i] = result.secret
                wrong.update(result.wrong_points)
            return opened

        eps, proof_eps = open_masked("eps", self.d), open_masked("proof_eps", width)
        honest = [j for j in opened_at if j not in wrong]
        # each node checks the opened eps against every node's signed projection of its own shares
        # before it computes anything from it (a relay cannot shift eps: docs/security.md)
        checked = self._call_nodes(honest, lambda j: BeaverCheck(eps, proof_eps), round, EpsCheck, {"checks": (len(devices),)})
        seed = eps_check_seed(self._session, round, devices, eps, proof_eps)
        checked = self._signed(checked, "signature", lambda j, r: eps_check_digest(self._session, round, j, seed=seed, checks=r.checks))
        check_points = [j for j in honest if j in checked]
        if len(check_points) < self.t:
            raise NotEnoughEdgeNodesError("beaver check", tuple(check_points), self.t)
        checks = np.stack([checked[j].checks for j in check_points]).reshape(len(check_points), len(devices))
        if devices:  # a node whose check is corrected lied about its own shares: named, and left out
            try:
                liars = set(robust_reconstruct(checks, check_points, self.t, field=self.field).wrong_points)
            except PPBFLError as error:
                raise RoundFailedError(round, f"opening the eps checks: {error}") from error
            wrong.update(liars)
            keep = [r for r, j in enumerate(check_points) if j not in liars]
            check_points, checks = [check_points[r] for r in keep], checks[keep]
        finish = BeaverFinish(check_points, checks, [checked[j].signature for j in check_points])
        finished = self._call_nodes(check_points, lambda j: finish, round, NormShares, {"norm2": (len(devices),), "validity": (len(devices),)})
        finished = self._signed(finished, "signature", lambda j, r: norms_digest(self._session, round, j, norm2=r.norm2, validity=r.validity))
        norms, z, signatures = {}, {}, {}
        for j, reply in finished.items():
            signatures[j] = reply.signature
            norms[j] = np.zeros(len(members), dtype=np.uint64)
            norms[j][columns] = reply.norm2
            z[j] = np.zeros(len(members), dtype=np.uint64)
            z[j][columns] = reply.validity
        return norms, z, signatures, wrong

    def _flame_request(
        self, round: int, request: AggregateRequest, members: list[int], mode: str, r_enc: np.ndarray,
    ) -> tuple[FlameAggregateRequest, tuple[int, ...], RoundDecision]:
        """Rule ``"flame"``: collect every node's signed Gram shares and build the aggregate request
        and decision over the nodes that answered (at least ``2t - 1`` in honest-majority mode, ``t``
        in Beaver mode, where the nodes' Gram shares come from the dealer's pair products)."""
        needed = 2 * self.t - 1 if mode == "honest-majority" else self.t
        grams = self._call_nodes(request.points, lambda j: GramRequest(members), round, GramShares, {"gram": (pair_count(len(members)),)})
        grams = self._signed(grams, "signature", lambda j, r: gram_digest(self._session, round, j, r.gram))
        keep = [r for r, j in enumerate(request.points) if j in grams and j in self._alive()]
        points = tuple(request.points[r] for r in keep)
        if len(points) < needed:
            raise NotEnoughEdgeNodesError("gram", points, needed)
        values = {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}  # the chain context too
        listed = ["verify_signatures", "verify_norm2", "mismatched_by"] + (["norm_signatures", "verify_validity"] if request.norm_signatures else [])
        values.update(
            points=list(points),
            **{name: values[name][keep] for name in ("consistency", "dot_ref", "norm2", "proof_consistency", "validity")},
            **{name: [values[name][r] for r in keep] for name in listed},
        )
        flame = FlameAggregateRequest(
            **values, gram=np.stack([grams[j].gram for j in points]).reshape(len(points), pair_count(len(members))),
            gram_signatures=[grams[j].signature for j in points],
        )
        return flame, points, decide_flame_request(flame, r_enc, t=self.t, codec=self.codec, space=self.flame_space)

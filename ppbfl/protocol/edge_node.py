"""An edge node: holds devices' shares, verifies them on shares with its peers, aggregates (DESIGN §2, §5).

The node is a message handler (``handle(envelope) -> reply``) usable behind any transport: the
in-process one or a gRPC server in its own OS process (``ppbfl edge``). Requests are idempotent: a
retried request (the transport retries on timeouts) gets the same reply, including those that
spend one-time material (a PRZS counter, Beaver triples); a verify request and a Beaver opening are
answered once per round (any other of the same round is refused: two would open differences). It keeps per-round state
only for a window of rounds: the latest round the coordinator has asked about (``current``), the
one before, and up to :data:`ROUNDS_AHEAD` after it; a message for any other round is refused
(:class:`OutOfPhaseError`) and never touches the current round's state. It never sees an update in the clear: every value it
publishes is a share of a verification scalar (re-randomised in honest-majority mode) or of the
weighted aggregate.
"""

from __future__ import annotations

import enum
import os
import secrets
import threading
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
from cryptography import x509
from eth_utils import to_checksum_address

from ppbfl.chain.attest import ChainKey
from ppbfl.chain.pow import bind_commitment
from ppbfl.chain.votes import ChainContext, RoundVotes, TrustVote
from ppbfl.defense import flame_noise, validity
from ppbfl.defense.consistency import challenge_coefficients
from ppbfl.defense.decision import DeviceDecision
from ppbfl.defense.errors import AggregateRangeError
from ppbfl.defense.rule import DecisionRule
from ppbfl.defense.submission import codec_for_length
from ppbfl.errors import ConfigError, PPBFLError
from ppbfl.field import ops
from ppbfl.field.csprng import expand_seed
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.mpc import linear
from ppbfl.mpc.beaver import gram_from_opened, masked_projections, square_from_opened
from ppbfl.mpc.przs import PartyPRZS
from ppbfl.protocol import signed_shares
from ppbfl.protocol.attribution import DeviceKeys, upload_signed
from ppbfl.protocol.chain_registry import ChainRegistry
from ppbfl.protocol.commitments import commitment_root, share_leaf
from ppbfl.protocol.edge_state import KEEP_ROUNDS, EdgeState, EdgeStateError, EdgeStateStore
from ppbfl.protocol.errors import MessageError, PeerAuthError, ReferenceMismatchError, RequestNotAgreedError
from ppbfl.protocol.flame_decision import (
    FLAME_SPACES,
    GlobalModelError,
    check_global_model,
    clip_bound,
    decide_flame_request,
    model_hash,
    pair_count,
)
from ppbfl.protocol.messages import (
    Ack,
    AggregateRecall,
    AggregateRequest,
    AggregateShare,
    BeaverCheck,
    BeaverFinish,
    BeaverMasked,
    BeaverOpen,
    DeviceUpload,
    EndorseRequest,
    EpsCheck,
    FlameAggregateRequest,
    GramRequest,
    GramShares,
    IdsReportQuery,
    IdsReportReply,
    NormShares,
    ProofUpload,
    PRZSDeliver,
    PRZSPeers,
    RecalledRound,
    RequestEndorsement,
    SetupEdge,
    TripleShares,
    TrustBehind,
    TrustCatchUp,
    TrustQuery,
    TrustVoteReply,
    UploadsQuery,
    UploadsReport,
    VerifyRequest,
    VerifyShares,
)
from ppbfl.protocol.parties import COORDINATOR_PARTY, DEALER_PARTY, edge_party
from ppbfl.protocol.przs_setup import MAX_PRZS_SETS, PRZSSetup, przs_set_count
from ppbfl.protocol.registry import PeerRegistry, identity_of
from ppbfl.protocol.round_errors import CommitmentMismatchError, OutOfPhaseError, SetupRuleError
from ppbfl.protocol.tls import PartyCredentials
from ppbfl.protocol.verification import RoundDecision, decide_request
from ppbfl.protocol.wire import MAX_MESSAGE_BYTES, Envelope, Message
from ppbfl.sharing.robust import robust_reconstruct
from ppbfl.trust.anchored import latest_anchored
from ppbfl.trust.ids_reports import IdsReport, report_from_bytes, report_to_bytes, sign_report

if TYPE_CHECKING:
    from ppbfl.chain.rounds import RoundsContract
    from ppbfl.trust.witness import TrustWitness

__all__ = ["COORDINATOR_PARTY", "DEALER_PARTY", "MAX_EDGE_NODES", "ROUNDS_AHEAD", "EdgeBehaviour", "EdgeNode", "check_request_quorum", "edge_party"]

#: most edge nodes a tier has (the contract's bound: its liar and agreement bitmasks are uint32)
MAX_EDGE_NODES = 31
#: rounds beyond the coordinator's latest one that devices (and the dealer) may send to: the next
#: round, and one spare for a round aborted before it reached the edge nodes. With one upload per
#: device per round, a device holds at most ``ROUNDS_AHEAD + 1`` share vectors at a node.
ROUNDS_AHEAD = 2
#: the decision rules a node can be set up with (:attr:`SetupEdge.rule`)
RULES = ("cosine", "flame")
#: PRZS counters of the Gram matrix's zero-sharings: ``GRAM_COUNTER + round`` (the node derives it;
#: verify counters are rounds, below 2^63)
GRAM_COUNTER = 1 << 63
#: PRF streams of FLAME's noise (``NOISE_COUNTER + round``; not a zero-sharing counter)
NOISE_COUNTER = 3 << 62
#: marks "endorsed a verify request of the round" among the spent counters (``ENDORSE_COUNTER +
#: round``, round < 2^61; not a zero-sharing counter): kept across restarts with them
ENDORSE_COUNTER = 5 << 61


def check_request_quorum(q: object, t: int, n: int) -> int:
    """``q`` as a request quorum of a ``(t, n)`` tier (:attr:`EdgeNode.request_quorum`).

    Raises:
        ConfigError: (key ``request_quorum``) ``q`` is not an int with ``(n + t - 1) / 2 < q <= n``:
            a smaller one lets two requests of a round each gather a quorum.
    """
    if isinstance(q, bool) or not isinstance(q, int) or not n + t - 1 < 2 * q or q > n:
        raise ConfigError(
            "request_quorum", f"{q!r} in a (t, n) = ({t}, {n}) tier: expected (n + t - 1) / 2 < q <= n (at least {(n + t) // 2 + 1}), "
            "so that two quorums share more nodes than the t - 1 that may collude",
        )
    return q

#: default :attr:`EdgeNode.reference_tolerance`: fixed-point units (``2^-f``) per entry by which a
#: relayed reference may differ from the node's own (float32 training on other CPUs or thread
#: counts can differ in the last bits; docs/leakage.md states what the slack lets a relay choose)
REFERENCE_TOLERANCE = 4

class EdgeBehaviour(str, enum.Enum):
    """Fault injection for demonstrations and tests: an honest node, or one that lies."""

    HONEST = "honest"
    TAMPER_AGGREGATE = "tamper-aggregate"
    """Adds a constant to its aggregate share (caught and named by robust reconstruction)."""
    TAMPER_VERIFY = "tamper-verify"
    """Adds a constant to its shares of ``<g, r>`` (corrected and named while opening)."""


def _certificate_key(pem: bytes) -> Any:
    """The public key of a PEM certificate (the state file's peers, checked against the registry on load)."""
    return x509.load_pem_x509_certificate(pem).public_key()


def _same_request(a: Message, b: Message) -> bool:
    """Whether two requests carry the same values (arrays compared element-wise)."""
    return all(
        np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y
        for x, y in ((getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    )


@dataclass
class _RoundState:
    uploads: dict[int, tuple[np.ndarray, int, bytes]] = field(default_factory=dict)
    devices: list[int] = field(default_factory=list)
    reference: np.ndarray | None = None
    triples: tuple[np.ndarray, np.ndarray] | None = None
    pairs: np.ndarray | None = None  # the dealt <a_r, a_s>, r < s, of the triples (rule "flame"; spent with them)
    eps_devices: list[int] = field(default_factory=list)
    aggregate: np.ndarray | None = None
    verified: tuple[VerifyRequest, VerifyShares] | None = None
    finished: tuple[BeaverFinish, NormShares] | None = None
    linear: np.ndarray | None = None  # the verify's degree-(t - 1) linear part of z per device: never sent alone
    opened: tuple[BeaverOpen, BeaverMasked] | None = None  # the one BeaverOpen of the round (its triples are spent)
    checked: tuple[BeaverCheck, EpsCheck] | None = None  # the one eps this node checks and finishes with this round
    proofs: dict[int, tuple[np.ndarray, int]] = field(default_factory=dict)
    coin: bytes | None = None  # drawn when the node reports its uploads: no proof is accepted after it
    coins: validity.ProofCoins | None = None
    proof_triples: tuple[np.ndarray, np.ndarray] | None = None
    signatures: dict[int, bytes] = field(default_factory=dict)  # device -> its signature of the leaves' root
    gram: GramShares | None = None  # rule "flame": this round's Gram shares (a retry gets the same)
    beaver_gram: np.ndarray | None = None  # rule "flame", Beaver mode: the Gram shares made at BeaverFinish (degree t - 1)
    gram_beaver: bool = False  # whether the Gram shares this node gave (``gram``) are the Beaver ones
    decided: dict[int, DeviceDecision] | None = None  # device -> the decision this node signed (trust votes)
    aggregating: bool = False  # an aggregate reply of this round is being made (one per round)
    endorsed: tuple[bytes, bytes] | None = None  # (request hash, this node's signature): the one verify request it endorsed this round


class EdgeNode:
    """Edge node ``index`` (set by :class:`SetupEdge`) behind a transport.

    Args:
        party: its party id (defaults to ``edge-<index>`` once set up).
        behaviour: :class:`EdgeBehaviour` (fault injection; honest by default).
        field: the prime field.
        device_keys: device index -> its identity key: every upload must then carry that device's
            signature of its leaves' root (else :class:`PeerAuthError`), and a mismatch the node
            reports carries it as evidence. None: signatures are kept but not checked.
        credentials, registry: the node's TLS identity (its key signs its PRZS offer) and who holds
            which certificate (peers' offers are checked against it); also set by
            :meth:`attach_identity`. A node without them refuses :class:`SetupEdge`.
        chain_key: the node's own chain key (its address is what the contract registers for it);
            it signs the node's votes in each :class:`AggregateShare` and never leaves the node.
            None: a fresh one (in-process deployments; :attr:`chain_address` tells the ledger).
        state_dir: where the node keeps the state that lets it rejoin after a restart without a
            new setup of the tier (:mod:`ppbfl.protocol.edge_state`: its setup, PRZS keys, spent
            counters, latest aggregate replies; encrypted under its TLS key). Read once the node
            has its identity; a file that cannot be used is reported in :attr:`restore_error`
            (and a warning) and the node starts as not set up. None: nothing survives a restart.
        decision_rule: the decision rule the node's operator configured: a :class:`SetupEdge` asking
            for another rule or other options is refused (:class:`SetupRuleError` naming the
            field). None: the node takes the rule from the setup (the coordinator's word).
    """

    def __init__(
        self, party: str | None = None, behaviour: EdgeBehaviour | str = EdgeBehaviour.HONEST, *, field: PrimeField = GF61,
        device_keys: DeviceKeys | None = None, credentials: PartyCredentials | None = None, registry: PeerRegistry | None = None,
        chain_key: ChainKey | None = None, state_dir: str | os.PathLike | None = None, decision_rule: DecisionRule | None = None,
    ) -> None:
        self.party = party
        self.decision_rule = decision_rule
        self._chain_key = ChainKey.generate() if chain_key is None else chain_key
        self.device_keys = device_keys
        self.credentials, self.registry = credentials, registry
        self._przs_setup: tuple[SetupEdge, PRZSSetup] | None = None  # the setup session in progress
        self.behaviour = EdgeBehaviour(behaviour)
        self.field = field
        self.setup: SetupEdge | None = None
        self.codec: FixedPointCodec | None = None
        self.przs: PartyPRZS | None = None
        self.validity: validity.ValidityParams | None = None
        self.rounds: dict[int, _RoundState] = {}
        self.current = 0  # the latest round the coordinator has sent a request for
        self._lock = threading.Lock()  # devices upload concurrently (gRPC worker threads, fan-out)
        self._save_lock = threading.Lock()
        self.trust_witness: TrustWitness | None = None
        """This node's own trust computation (:meth:`trust_vote`); None: it signs no trust."""
        self.ids_source: Callable[[int], Mapping[int, int]] | None = None
        """Round -> device -> windows this node's own detector flagged in it
        (:func:`ppbfl.ids.reputation.ids_flags`), set by its operator: what it signs when the
        coordinator asks for its IDS report (:class:`IdsReportQuery`); None: it reports none."""
        self.announced_model: Callable[[int], bytes] | None = None
        """Round -> the model hash the round was opened with, read by the node itself (FLAME on
        models checks the request's against it); None: from the chain when :attr:`registry` is a
        :class:`~ppbfl.protocol.chain_registry.ChainRegistry`, else the request's word."""
        self.reference_source: Callable[[int, np.ndarray], np.ndarray] | None = None
        """``(round, global model (d,) float32) -> the round's reference (d,) float``, set by the
        node's operator (:class:`ppbfl.fl.reference.RootReference`, ``ppbfl edge --reference``): under
        rule ``"cosine"`` the node then computes the reference itself and refuses a relayed one
        more than :attr:`reference_tolerance` units away (:meth:`_check_reference`). None: the
        relay's reference is taken (docs/security.md: weaker)."""
        self.reference_tolerance = REFERENCE_TOLERANCE
        """Fixed-point units per entry a relayed reference may differ from this node's own."""
        self.posted_request: Callable[[int], bytes] | None = None
        """Round -> the hash of the round's one verify request as the coordinator posted it on
        chain (32 zero bytes: none), read by the node itself: the node then answers only the
        request with that hash (:meth:`_check_posted_request`). None: from the chain when
        :attr:`registry` is a :class:`~ppbfl.protocol.chain_registry.ChainRegistry`, else no
        check (a relay may then send nodes different requests: docs/security.md)."""
        self.request_quorum: int | None = None
        """Set by the node's operator: answer a verify request only when this node endorsed its
        hash for the round (:class:`EndorseRequest`, one hash per round) and it carries valid
        endorsements of that hash by at least ``q`` distinct tier nodes, this one included
        (:meth:`_check_endorsements`). ``q`` must exceed ``(n + t - 1) / 2`` (two quorums then share
        ``2q - n >= t`` nodes, more than the colluding ones, so no two requests of a round can both
        gather one) and be at most ``n``; checked at setup (ConfigError). For nodes without a chain
        view; a round then needs ``q`` nodes online instead of ``t``. None: no quorum."""
        self.anchored_trust: Callable[[int, int], int] | None = None
        """``(round, last)`` -> the latest round in ``(last, round)`` whose trust the chain anchored
        (0: none), read by the node itself (:func:`~ppbfl.trust.anchored.latest_anchored`) to decide
        whether it is behind; None: from the chain when :attr:`registry` is a
        :class:`~ppbfl.protocol.chain_registry.ChainRegistry`, else the trust query's ``previous`` (the relay's word)."""
        self.state_dir = state_dir
        self.state_store: EdgeStateStore | None = None
        self.restore_error: EdgeStateError | None = None
        """Why the state in :attr:`state_dir` was not used at start (None: it was, or there was none)."""
        self._peer_certs: dict[int, bytes] = {}  # node -> the certificate of its checked PRZS offer
        self._kept: dict[int, tuple[Message, AggregateShare, RecalledRound]] = {}  # round -> (request, reply, recall reply), the latest KEEP_ROUNDS
        if credentials is not None and registry is not None:
            self._restore()

    def attach_identity(self, credentials: PartyCredentials, registry: PeerRegistry | None) -> None:
        """Give the node its TLS identity and registry (called by :func:`ppbfl.protocol.serve.run_server`)."""
        self.credentials, self.registry = credentials, registry
        if self.state_store is None:
            self._restore()

    def _restore(self) -> None:
        """Open the state folder and take up the stored state, if any (see :attr:`restore_error`)."""
        if self.state_dir is None or self.credentials is None or self.registry is None:
            return
        self.state_store = EdgeStateStore(self.state_dir, self.credentials)
        try:
            state = self.state_store.load(self.registry, self.field)
        except EdgeStateError as error:
            self.restore_error = error
            warnings.warn(f"{self.name} starts as not set up: {error}", RuntimeWarning, stacklevel=2)
            return
        if state is None:
            return
        setup = state.setup
        session = PRZSSetup(setup.index, setup.t, setup.n, setup.session, self.credentials, self.registry, self.field)
        for j, pem in state.peers.items():
            session.peer_keys[j] = _certificate_key(pem)
        session.opened = PartyPRZS(setup.index, setup.t, setup.n, dict(state.keys), self.field, set(state.used))
        self._przs_setup, self.przs, self._peer_certs = (setup, session), session.opened, dict(state.peers)
        self.party = self.party or edge_party(setup.index)
        self.codec = FixedPointCodec(self.field, setup.frac_bits)
        self.validity = validity.ValidityParams.for_length(setup.d, k=setup.validity_k, field=self.field)
        self.setup, self.current = setup, state.current
        self._kept = {r: (AggregateRecall(), recalled, recalled) for r, recalled in state.kept.items()}

    def _persist(self) -> None:
        """Write the state a restart needs (before the reply that depends on it leaves; no-op without a state folder)."""
        if self.state_store is None or self.przs is None or self.setup is None:
            return
        with self._save_lock:  # snapshot and write in one piece: an older snapshot never replaces a newer file
            with self._lock:
                state = EdgeState(
                    self.setup, dict(self._peer_certs), dict(self.przs.keys), frozenset(self.przs.used), self.current,
                    {r: recalled for r, (_, _, recalled) in self._kept.items()},
                )
            self.state_store.save(state, self.field)

    def read_chain(self, contract: RoundsContract) -> None:
        """Read each round's facts from ``contract`` itself, not from the relay's word: the model
        hash the round was opened with (:attr:`announced_model`) and the hash of its verify
        request (:attr:`posted_request`). For nodes in the process of a chain client (in-process
        deployments); a node whose registry is a ChainRegistry reads its contract without this."""
        self.announced_model = lambda r: bytes(contract.round_state(r).model_hash)
        self.posted_request = contract.verify_request

    def _chain_reader(self, read: Callable[[int], bytes] | None, name: str) -> Callable[[int], bytes] | None:
        """``read``, else the ``RoundState`` field ``name`` from the contract of a ChainRegistry (None: no chain view)."""
        if read is None and isinstance(self.registry, ChainRegistry):
            contract = self.registry.contract
            return lambda r: bytes(getattr(contract.round_state(r), name))
        return read

    @property
    def chain_address(self) -> str:
        """The address of this node's chain key (public): what the consortium registers for it."""
        return self._chain_key.address

    @property
    def name(self) -> str:
        """The party id for error messages (``"edge node"`` before setup)."""
        return self.party or "edge node"

    @property
    def config(self) -> SetupEdge:
        """The :class:`SetupEdge` this node was set up with.

        Raises:
            OutOfPhaseError: the node has not been set up.
        """
        if self.setup is None:
            raise OutOfPhaseError(self.name, "not set up")
        return self.setup

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, envelope: Envelope) -> Message:
        """Handle one validated message and return the reply (raises a typed error on a bad request)."""
        message = envelope.message
        if isinstance(message, SetupEdge):
            return self._setup(envelope, message)
        if self.setup is None:
            raise OutOfPhaseError(self.name, f"{type(message).__name__} before setup")
        if envelope.sender == COORDINATOR_PARTY:
            self._advance(envelope.round)
        handlers: dict[type[Message], Callable[[Envelope, Any], Message]] = {
            DeviceUpload: self._upload,
            ProofUpload: self._proof,
            UploadsQuery: self._uploads_report,
            VerifyRequest: self._verify,
            EndorseRequest: self._endorse,
            TripleShares: self._triples,
            BeaverOpen: self._beaver_open,
            BeaverCheck: self._beaver_check,
            BeaverFinish: self._beaver_finish,
            AggregateRequest: self._aggregate,
            PRZSPeers: self._przs_peers,
            PRZSDeliver: self._przs_deliver,
            GramRequest: self._gram,
            FlameAggregateRequest: self._flame_aggregate,
            TrustQuery: self._trust_query,
            TrustCatchUp: self._trust_catch_up,
            IdsReportQuery: self._ids_report_query,
            AggregateRecall: self._recall,
        }
        handler = handlers.get(type(message))
        if handler is None:
            raise OutOfPhaseError(self.name, f"an edge node does not handle {type(message).__name__}")
        return handler(envelope, message)

    @property
    def context(self) -> dict:
        """The decode context of requests to this node (the field prime and, once set up, ``d``)."""
        context: dict = {"p": self.field.p}
        if self.setup is not None:
            context["d"] = self.config.d
        return context

    def _advance(self, round: int) -> None:
        """The coordinator reached ``round``: keep the state of that round, the one before and later ones."""
        with self._lock:
            advanced = round > self.current
            if advanced:
                self.current = round
                for old in [r for r in self.rounds if r < round - 1]:
                    del self.rounds[old]
        if advanced:
            self._persist()

    def _check_window(self, round: int) -> None:
        """Raise OutOfPhaseError unless a new state for ``round`` may be made (see module docstring)."""
        if not self.current <= round <= self.current + ROUNDS_AHEAD:
            raise OutOfPhaseError(
                self.name, f"round {round} is outside the rounds accepted now ({self.current} .. {self.current + ROUNDS_AHEAD})"
            )

    def _state(self, round: int, create: bool = False) -> _RoundState:
        with self._lock:
            if round not in self.rounds:
                if not create:
                    raise OutOfPhaseError(self.name, f"nothing received for round {round}")
                self._check_window(round)
                self.rounds[round] = _RoundState()
            return self.rounds[round]

    @property
    def _session(self) -> bytes:
        """The setup session id (what this node's signatures on relayed values are bound to)."""
        return self.config.session

    def _sign(self, digest: bytes) -> bytes:
        if self.credentials is None:
            raise OutOfPhaseError(self.name, "no TLS key to sign relayed values with")
        return signed_shares.sign(self.credentials.key, digest)

    def _require(self, sender: str, expected: str, what: str) -> None:
        if sender != expected:
            raise OutOfPhaseError(self.name, f"{what} must come from {expected}, not {sender}")

    # -- handlers ------------------------------------------------------------------------------
    def _setup(self, envelope: Envelope, message: SetupEdge) -> Message:
        self._require(envelope.sender, COORDINATOR_PARTY, "setup")
        if not 1 <= message.index <= message.n or not 1 <= message.t <= message.n:
            raise OutOfPhaseError(self.name, f"bad setup: index {message.index}, (t, n) = ({message.t}, {message.n})")
        if message.n > MAX_EDGE_NODES or not 1 <= message.d <= MAX_MESSAGE_BYTES // 8:
            raise OutOfPhaseError(
                self.name, f"bad setup: n = {message.n} (at most {MAX_EDGE_NODES}), d = {message.d} (1 .. {MAX_MESSAGE_BYTES // 8})"
            )
        if przs_set_count(message.t, message.n) > MAX_PRZS_SETS:
            raise OutOfPhaseError(self.name, f"bad setup: (t, n) = ({message.t}, {message.n}) puts a node in more than {MAX_PRZS_SETS} PRZS sets")
        if not validity.MIN_ROWS <= message.validity_k <= validity.MAX_ROWS:
            raise OutOfPhaseError(
                self.name, f"bad setup: validity_k = {message.validity_k}, expected {validity.MIN_ROWS}..{validity.MAX_ROWS}"
            )
        if message.rule not in RULES or (message.rule == "flame" and message.n < 2 * message.t - 1):
            raise OutOfPhaseError(self.name, f"bad setup: rule {message.rule!r} (one of {RULES}; 'flame' needs n >= 2t - 1)")
        if message.flame_noise < 0 or (message.flame_noise > 0 and message.rule != "flame"):
            raise OutOfPhaseError(self.name, f"bad setup: flame_noise = {message.flame_noise!r} (>= 0, and only with rule 'flame')")
        if message.rescale and message.rule != "cosine":
            raise OutOfPhaseError(self.name, f"bad setup: rescale only with rule 'cosine', not {message.rule!r}")
        if message.flame_space not in FLAME_SPACES or (message.flame_space != "updates" and message.rule != "flame"):
            raise OutOfPhaseError(self.name, f"bad setup: flame_space = {message.flame_space!r} (one of {FLAME_SPACES}; 'models' only with rule 'flame')")
        differs = None if self.decision_rule is None else self.decision_rule.mismatch(
            message.rule, message.tau, message.rescale, message.flame_noise, message.flame_space,
        )
        if differs is not None:
            raise SetupRuleError(self.name, *differs)
        if self.credentials is None or self.registry is None:
            raise OutOfPhaseError(self.name, "no TLS identity and registry to agree PRZS keys with")
        self._quorum(message)
        if self._przs_setup is not None and _same_request(self._przs_setup[0], message):
            return self._przs_setup[1].offer()  # a retried setup: the same session and key pair
        session = PRZSSetup(message.index, message.t, message.n, message.session, self.credentials, self.registry, self.field)
        if self.state_store is not None:
            self.state_store.clear()  # the old session's keys and counters must not come back after a restart
        self.party = self.party or edge_party(message.index)
        self._przs_setup = (message, session)
        self.przs = None  # until the members' keys are delivered (PRZSDeliver)
        self._peer_certs, self._kept = {}, {}
        self.codec = FixedPointCodec(self.field, message.frac_bits)
        self.validity = validity.ValidityParams.for_length(message.d, k=message.validity_k, field=self.field)
        self.setup = message
        self.rounds.clear()
        self.current = 0
        return session.offer()

    def _przs_session(self, envelope: Envelope) -> PRZSSetup:
        self._require(envelope.sender, COORDINATOR_PARTY, "PRZS setup")
        if self._przs_setup is None:
            raise OutOfPhaseError(self.name, "PRZS setup message before SetupEdge")
        return self._przs_setup[1]

    def _przs_peers(self, envelope: Envelope, message: PRZSPeers) -> Message:
        sealed = self._przs_session(envelope).accept_peers(envelope.sender, message)
        if not self._peer_certs:  # every offer checked (a retry keeps the first, accepted list)
            self._peer_certs = dict(zip(message.indices, message.certificates))
        return sealed

    def _przs_deliver(self, envelope: Envelope, message: PRZSDeliver) -> Message:
        self.przs = self._przs_session(envelope).open(envelope.sender, message)
        self._persist()  # set up: a restart from here on needs no new setup
        config = self.config
        return Ack(f"{self.party} ready: edge node {config.index} of ({config.t}, {config.n}), d = {config.d}")

    def _require_device(self, envelope: Envelope, device: int) -> None:
        """The authenticated sender must be registered as device ``device`` (else :class:`PeerAuthError`)."""
        uploader = identity_of(envelope.sender)  # the registered identity of the authenticated sender
        if uploader.role != "device":
            raise PeerAuthError(envelope.sender, f"registered as {uploader.role}, not as a device: may not upload for device {device}")
        if uploader.index != device:
            raise PeerAuthError(envelope.sender, f"registered as device {uploader.index}, uploaded for device {device}")

    def _upload(self, envelope: Envelope, message: DeviceUpload) -> Message:
        self._require_device(envelope, message.device)
        with self._lock:
            if envelope.round not in self.rounds:
                self._check_window(envelope.round)  # before any work (a seed expands to d elements)
        index, d = self.config.index, self.config.d
        if len(message.leaves) != self.config.n:
            raise CommitmentMismatchError(self.name, message.device, f"{len(message.leaves)} leaves, expected n = {self.config.n}")
        if (message.share is None) == (message.seed is None):
            raise CommitmentMismatchError(self.name, message.device, "exactly one of share and seed must be set")
        if message.mask_share >= self.field.p:
            raise CommitmentMismatchError(self.name, message.device, f"mask_share {message.mask_share} is not < p")
        if message.share is not None:
            share = message.share
            leaf = share_leaf(envelope.round, message.device, index, message.mask_share, share=share)
        else:
            assert message.seed is not None  # exactly one of the two is set (checked above)
            share = expand_seed(message.seed, d, stream=message.stream, field=self.field)
            leaf = share_leaf(envelope.round, message.device, index, message.mask_share, seed=message.seed, stream=message.stream)
        if message.leaves[index - 1] != leaf:
            raise CommitmentMismatchError(self.name, message.device, "the share does not match its committed leaf")
        root = commitment_root(message.leaves)
        if self.device_keys is not None:
            key = self.device_keys(message.device)
            if key is None or not upload_signed(key, envelope.round, message.device, root, message.signature):
                raise PeerAuthError(envelope.sender, f"the upload of device {message.device} is not signed by its registered identity key")
        state = self._state(envelope.round, create=True)
        with self._lock:  # the upload and its signature together: an uploads report sees both or neither
            state.uploads[message.device] = (share, message.mask_share, root)
            state.signatures[message.device] = message.signature or b""
        return Ack(f"{self.party}: device {message.device} round {envelope.round} stored")

    def _proof(self, envelope: Envelope, message: ProofUpload) -> Message:
        self._require_device(envelope, message.device)
        assert self.validity is not None
        length = self.validity.proof_length
        if message.bits.shape != (length,):
            raise CommitmentMismatchError(self.name, message.device, f"proof of shape {message.bits.shape}, expected ({length},)")
        if message.mask_share >= self.field.p:
            raise CommitmentMismatchError(self.name, message.device, f"mask_share {message.mask_share} is not < p")
        state = self._state(envelope.round, create=True)
        with self._lock:
            if state.coin is not None:
                raise OutOfPhaseError(self.name, f"validity proofs for round {envelope.round} are closed")
            state.proofs[message.device] = (message.bits, message.mask_share)
        return Ack(f"{self.party}: proof of device {message.device} round {envelope.round} stored")

    def _uploads_report(self, envelope: Envelope, message: UploadsQuery) -> Message:
        self._require(envelope.sender, COORDINATOR_PARTY, "uploads query")
        state = self._state(envelope.round, create=True)
        with self._lock:
            if state.coin is None:  # close the proofs, then draw the coin: no device can know it before proving
                state.coin = secrets.token_bytes(32)
            held = sorted(dict(state.uploads).items())[: message.limit]  # dict(): one atomic copy
            signatures = [state.signatures.get(i, b"") for i, _ in held]
            proofs = sorted(state.proofs)
        bound = [bind_commitment(entry[2], envelope.round, i) for i, entry in held]  # as the chain stores them
        signature = self._sign(signed_shares.coin_digest(self._session, envelope.round, self.config.index, state.coin))
        return UploadsReport(
            [i for i, _ in held], bound, proofs[: message.limit], state.coin, signature,
            upload_roots=[entry[2] for _, entry in held], upload_signatures=signatures,
        )

    def _proof_rows(self, state: _RoundState, devices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The stored proofs of ``devices``: bit shares (m, K) and mask shares (m,)."""
        assert self.validity is not None
        missing = [i for i in devices if i not in state.proofs]
        if missing:
            raise OutOfPhaseError(self.name, f"no validity proof from devices {missing[:8]}")
        bits = np.empty((len(devices), self.validity.proof_length), dtype=np.uint64)
        for k, i in enumerate(devices):
            bits[k] = state.proofs[i][0]
        return bits, np.array([state.proofs[i][1] for i in devices], dtype=np.uint64)

    def _proof_coins(self, state: _RoundState, message: VerifyRequest, round: int, relay: str) -> validity.ProofCoins:
        """The round's proof coins; the request must carry this node's own coin and at least ``t`` signed ones."""
        assert self.validity is not None
        if not len(message.coin_nodes) == len(message.coins) == len(message.coin_signatures):
            raise OutOfPhaseError(self.name, f"{len(message.coins)} coins, {len(message.coin_signatures)} signatures for {len(message.coin_nodes)} nodes")
        mine = dict(zip(message.coin_nodes, message.coins)).get(self.config.index)
        if state.coin is None or mine != state.coin:
            raise OutOfPhaseError(self.name, "the verify request does not carry this node's coin for the proof checks")
        if not self.config.t <= len(set(message.coin_nodes)) == len(message.coin_nodes) or self._przs_setup is None:
            raise OutOfPhaseError(self.name, f"coins of nodes {list(message.coin_nodes)[:8]}: distinct, at least t = {self.config.t} expected")
        signed_shares.check_coins(
            message.coin_nodes, message.coins, message.coin_signatures, session=self._session, round=round,
            keys=self._przs_setup[1].peer_keys, relay=relay,
        )
        seed = validity.coin_seed(message.challenge_seed, list(zip(message.coin_nodes, message.coins)))
        return validity.proof_coins(message.challenge_seed, seed, self.validity)

    def _shares_of(self, state: _RoundState, devices: list[int]) -> list[np.ndarray]:
        """The stored (d,) share rows of ``devices``, in order (not copied into one matrix)."""
        missing = [i for i in devices if i not in state.uploads]
        if missing:
            raise OutOfPhaseError(self.name, f"no upload from devices {missing[:8]}")
        return [state.uploads[i][0] for i in devices]

    def _verify(self, envelope: Envelope, message: VerifyRequest) -> Message:
        self._require(envelope.sender, COORDINATOR_PARTY, "verify")
        state = self._state(envelope.round, create=not message.devices)  # a round nobody uploaded to is empty, not an error
        if state.verified is not None:
            if _same_request(state.verified[0], message):
                return state.verified[1]  # a retried request: the same reply (the PRZS counter is used once)
            raise OutOfPhaseError(
                self.name, f"already answered a verify request of round {envelope.round}: one verify reply per round "
                "(a second one, e.g. in the other mode, would open the difference of two sharings)",
            )
        if message.zero_counter != envelope.round or not 0 <= envelope.round < GRAM_COUNTER:
            raise OutOfPhaseError(self.name, f"verify request of round {envelope.round} with PRZS counter {message.zero_counter}: the counter is the round")
        self._check_posted_request(message, envelope.round, envelope.sender)
        self._check_endorsements(message, envelope.round, envelope.sender)
        self._check_model(message, envelope.round)
        shares = self._shares_of(state, message.devices)
        lam = challenge_coefficients(message.challenge_seed, self.config.d, field=self.field)
        masks = np.array([state.uploads[i][1] for i in message.devices], dtype=np.uint64)
        coins = self._proof_coins(state, message, envelope.round, envelope.sender)
        # one pass over each share row: <g_i, lam>, <g_i, r>, (honest majority) <g_i, g_i> and <g_i, v>
        sums = ops.row_dots(shares, lam, message.reference, coins.v, squares=bool(message.hm), field=self.field, rows_name="shares")
        consistency = ops.add(sums[0], masks, field=self.field)
        dot_ref = sums[1]
        if self.behaviour is EdgeBehaviour.TAMPER_VERIFY:
            dot_ref = ops.add(dot_ref, np.full(dot_ref.shape, 12345, dtype=np.uint64), field=self.field)
        bits, bit_masks = self._proof_rows(state, message.devices)
        g_dot_v = sums[3]
        proof_consistency, linear_part = validity.proof_linear_shares(bits, bit_masks, g_dot_v, coins, field=self.field)
        norm2 = valid = np.zeros(0, dtype=np.uint64)  # Beaver mode: z comes with the NormShares, never its linear part alone
        if message.hm:
            if self.przs is None:
                raise OutOfPhaseError(self.name, "honest-majority verify before the PRZS keys were agreed")
            m = len(message.devices)
            zeros = self.przs.zero_share(message.zero_counter, 2 * m)  # the first m as before: norms; then z
            norm2 = ops.add(sums[2], zeros[:m], field=self.field)
            if m:
                squares = ops.row_dots(validity.weighted_bits(bits, coins, field=self.field), coins.alpha, coins.alpha, field=self.field, rows_name="proof")[2]
                valid = ops.add(ops.sub(linear_part, squares, field=self.field), zeros[m:], field=self.field)
        if len(message.commitments) != len(message.devices):
            raise OutOfPhaseError(self.name, f"{len(message.commitments)} commitments for {len(message.devices)} devices")
        mismatched = [k for k, (i, root) in enumerate(zip(message.devices, message.commitments)) if bind_commitment(state.uploads[i][2], envelope.round, i) != root]
        state.devices = list(message.devices)
        state.reference = message.reference
        state.coins = coins
        state.linear = linear_part
        signature = self._sign(signed_shares.verify_digest(
            self._session, envelope.round, self.config.index, consistency=consistency, dot_ref=dot_ref, norm2_hash=signed_shares.field_hash(norm2),
            proof_consistency=proof_consistency, validity_hash=signed_shares.field_hash(valid), mismatched=mismatched,
            request=signed_shares.request_hash(message),
        ))
        reply = VerifyShares(
            consistency, dot_ref, norm2, proof_consistency=proof_consistency, validity=valid, mismatched=mismatched, signature=signature,
            evidence_roots=[state.uploads[message.devices[k]][2] for k in mismatched],
            evidence_signatures=[state.signatures.get(message.devices[k], b"") for k in mismatched],
        )
        state.verified = (message, reply)
        if message.hm:
            self._persist()  # the counter is spent: a restarted node must refuse it
        return reply

    def _check_posted_request(self, message: VerifyRequest, round: int, relay: str) -> None:
        """A node that reads the chain (:attr:`posted_request`) answers only the verify request
        whose hash the coordinator fixed on chain for ``round`` before sending it: one value per
        round for every node, so a relay cannot send nodes different requests (their mixed
        replies would open combinations no honest round opens). Checked before any share is
        computed; a node without a chain view answers the request as it comes.

        Raises:
            RequestNotAgreedError: no hash is posted for ``round``, or the request's is another
                (names ``relay`` and the field ``request_hash``).
            OutOfPhaseError: the chain cannot be read (nothing is answered).
        """
        posted = self._chain_reader(self.posted_request, "verify_request")
        if posted is None:
            return
        try:
            on_chain = bytes(posted(round))
        except Exception as error:  # a chain that cannot say refuses, as the registry does
            raise OutOfPhaseError(self.name, f"cannot read the verify request hash of round {round} on chain: {type(error).__name__}: {error}") from None
        if on_chain == bytes(32):
            raise RequestNotAgreedError(relay, "request_hash", round, "no verify request hash is posted on chain for the round")
        got = signed_shares.request_hash(message)
        if got != on_chain:
            raise RequestNotAgreedError(relay, "request_hash", round, f"{got.hex()[:16]}... is not the hash posted on chain ({on_chain.hex()[:16]}...)")

    def _quorum(self, setup: SetupEdge) -> int | None:
        """:attr:`request_quorum`, checked against the tier of ``setup``.

        Raises:
            ConfigError: (key ``request_quorum``) it is not an int with ``(n + t - 1) / 2 < q <= n``.
        """
        return None if self.request_quorum is None else check_request_quorum(self.request_quorum, setup.t, setup.n)

    def _endorse(self, envelope: Envelope, message: EndorseRequest) -> Message:
        """Endorse ``message.request_hash`` as the one verify request this node answers in the
        envelope's round (a retry of the same hash: the same signature). The mark survives a
        restart with the spent counters (:meth:`_persist`): a node restarted after endorsing
        endorses nothing more in that round (it left the round with its uploads anyway).

        Raises:
            RequestNotAgreedError: another hash is endorsed already this round (names the relay,
                field ``request_hash``); OutOfPhaseError: before the PRZS keys were agreed, a
                round out of range, or a round this node endorsed before a restart.
        """
        self._require(envelope.sender, COORDINATOR_PARTY, "endorse request")
        round, wanted = envelope.round, bytes(message.request_hash)
        if self.przs is None or not 0 <= round < 1 << 61:
            raise OutOfPhaseError(self.name, f"endorse request of round {round}: before the PRZS keys were agreed, or a round beyond 2^61")
        state = self._state(round, create=True)
        with self.przs.lock:  # check and mark in one step: one endorsed hash per round
            if state.endorsed is None:
                if ENDORSE_COUNTER + round in self.przs.used:
                    raise OutOfPhaseError(self.name, f"endorsed a verify request of round {round} before a restart: it endorses no other")
                self.przs.used.add(ENDORSE_COUNTER + round)
                state.endorsed = (wanted, self._sign(signed_shares.endorse_digest(self._session, round, self.config.index, wanted)))
                fresh = True
            elif state.endorsed[0] != wanted:
                raise RequestNotAgreedError(
                    envelope.sender, "request_hash", round, f"{wanted.hex()[:16]}...: this node endorsed another hash for the round "
                    f"({state.endorsed[0].hex()[:16]}...; one per round)",
                )
            else:
                fresh = False
        if fresh:
            self._persist()  # before the signature leaves: a restarted node must not endorse another hash
        return RequestEndorsement(state.endorsed[1])

    def _check_endorsements(self, message: VerifyRequest, round: int, relay: str) -> None:
        """With a :attr:`request_quorum` ``q``: answer only a request whose hash this node endorsed
        for ``round`` and that carries valid endorsements of it by at least ``q`` distinct nodes
        (this one included). Checked before any share is computed; without a quorum, nothing.

        Raises:
            RequestNotAgreedError: naming ``relay`` and the field ``endorsements`` (not endorsed by
                this node, too few, or a forged or replayed one); ConfigError: the quorum does not fit the tier.
        """
        q = self._quorum(self.config)
        if q is None:
            return
        got = signed_shares.request_hash(message)
        state = self.rounds.get(round)
        mine = None if state is None or state.endorsed is None else state.endorsed[0]
        if mine != got:
            why = "this node endorsed no verify request of the round" if mine is None else f"this node endorsed another hash ({mine.hex()[:16]}...)"
            raise RequestNotAgreedError(relay, "endorsements", round, f"request {got.hex()[:16]}...: {why}")
        assert self._przs_setup is not None  # the PRZS keys are agreed (this node endorsed)
        endorsers = signed_shares.check_endorsements(
            message.endorsers, message.endorsements, request=got, session=self._session, round=round,
            keys=self._przs_setup[1].peer_keys, relay=relay,
        ) | {self.config.index}
        if len(endorsers) < q:
            raise RequestNotAgreedError(
                relay, "endorsements", round, f"request {got.hex()[:16]}... endorsed by nodes {sorted(endorsers)}: this node's operator requires q = {q}",
            )

    def _check_model(self, message: VerifyRequest, round: int) -> None:
        """FLAME on local models: the request's global model must hash to its announced hash, be
        its reference's preimage (:func:`check_global_model`), and that hash must be the one
        ``round`` was opened with where the node can read it itself (:attr:`announced_model`);
        rule ``"cosine"``: :meth:`_check_reference`; FLAME on updates: no model.

        Raises:
            GlobalModelError: naming the field; ReferenceMismatchError: as :meth:`_check_reference`.
        """
        assert self.codec is not None
        if self.config.flame_space == "models":
            check_global_model(message.model, message.model_hash, message.reference, self.codec, self.config.d, party=self.name)
            self._check_announced(message, round)
        elif self.config.rule == "cosine":
            self._check_reference(message, round)
        elif message.model.size or message.model_hash:
            raise GlobalModelError(self.name, "model", f"this node clusters {self.config.flame_space!r} with rule {self.config.rule!r}: no global model is taken")

    def _check_announced(self, message: VerifyRequest, round: int) -> None:
        """The request's model hash must be the one ``round`` was opened with, where the node reads
        it itself (:attr:`announced_model`, else its ChainRegistry's contract; no view: unchecked).

        Raises:
            GlobalModelError: naming ``model_hash``.
        """
        announced = self._chain_reader(self.announced_model, "model_hash")
        if announced is not None and bytes(message.model_hash) != announced(round):
            raise GlobalModelError(self.name, "model_hash", f"is not the model hash round {round} was opened with")

    def _check_reference(self, message: VerifyRequest, round: int) -> None:
        """Rule ``"cosine"`` with a :attr:`reference_source`: the request must carry the round's
        global model ``G`` ((d,) float32) and its hash, ``G`` must hash to it and the hash be the
        one ``round`` was opened with (:meth:`_check_announced`); the node computes its own
        reference from ``G``, encodes it as the coordinator does (the no-wrap codec) and refuses a
        request whose reference differs from it by more than :attr:`reference_tolerance`
        fixed-point units in some entry (centred difference mod p). Checked before any share is
        computed; the node then takes the request's reference (every node must use the same one).
        Without a reference source the relay's reference is taken (a model it sends is unused).

        Raises:
            GlobalModelError: naming ``model`` or ``model_hash``;
            ReferenceMismatchError: naming the coordinator and ``reference``;
            ConfigError: the source's reference is not (d,) (the operator's spec is for another model).
        """
        source = self.reference_source
        if source is None:
            return
        assert self.codec is not None
        d = self.config.d
        if message.model.shape != (d,) or len(message.model_hash) != 32:
            raise GlobalModelError(
                self.name, "model", f"this node computes the reference from the round's global model: expected a ({d},) model and "
                f"its 32-byte hash, got shape {message.model.shape} and {len(message.model_hash)} bytes",
            )
        if model_hash(message.model) != bytes(message.model_hash):
            raise GlobalModelError(self.name, "model_hash", "the global model does not hash to the request's model hash")
        self._check_announced(message, round)
        mine = np.asarray(source(round, message.model.copy()), dtype=np.float64)
        if mine.shape != (d,):
            raise ConfigError("reference_source", f"gave a reference of shape {mine.shape} for d = {d}: the operator's spec is for another model")
        own = codec_for_length(self.codec, d).encode(mine)
        units = np.abs(validity.centred(ops.sub(message.reference, own, field=self.field), self.field.p))
        worst = int(np.argmax(units))
        if units[worst] > self.reference_tolerance:
            raise ReferenceMismatchError(COORDINATOR_PARTY, round, worst, int(units[worst]), self.reference_tolerance)

    def _triples(self, envelope: Envelope, message: TripleShares) -> Message:
        self._require(envelope.sender, DEALER_PARTY, "triples")
        assert self.validity is not None
        if message.a.shape[0] != message.c.shape[0] or message.a.shape[1] != self.config.d:
            raise OutOfPhaseError(self.name, f"triples of shape {message.a.shape}, {message.c.shape}: expected (k, {self.config.d}), (k,)")
        if message.proof_a.shape != (message.a.shape[0], self.validity.proof_length) or message.proof_c.shape != message.c.shape:
            raise OutOfPhaseError(
                self.name, f"proof triples of shape {message.proof_a.shape}, {message.proof_c.shape}: "
                f"expected ({message.a.shape[0]}, {self.validity.proof_length}), ({message.a.shape[0]},)",
            )
        count = message.a.shape[0]
        if message.pairs.size and message.pairs.shape != (pair_count(count),):
            raise OutOfPhaseError(self.name, f"pair products of shape {message.pairs.shape}: expected ({pair_count(count)},) or none")
        state = self._state(envelope.round, create=True)
        if state.opened is not None:
            raise OutOfPhaseError(self.name, f"triples for round {envelope.round} after its Beaver opening: the round's triples are spent")
        state.triples = (message.a, message.c)
        state.pairs = message.pairs if message.pairs.size else None
        state.proof_triples = (message.proof_a, message.proof_c)
        return Ack(f"{self.party}: {message.c.shape[0]} triples for round {envelope.round}")

    def _beaver_open(self, envelope: Envelope, message: BeaverOpen) -> Message:
        self._require(envelope.sender, COORDINATOR_PARTY, "beaver open")
        state = self._state(envelope.round)
        if state.opened is not None:  # one opening per round: a second one on the same triples would open g_i - g_k
            if _same_request(state.opened[0], message):
                return state.opened[1]
            raise OutOfPhaseError(self.name, f"already answered a Beaver open of round {envelope.round}: its triples are spent")
        if state.verified is None:  # e.g. a node restarted mid-round: the dealer's triples reached it, nothing else
            raise OutOfPhaseError(self.name, f"nothing received for round {envelope.round} but the dealer's triples: no verify request answered")
        if len(set(message.devices)) != len(message.devices) or not set(message.devices) <= set(state.devices):
            raise OutOfPhaseError(self.name, f"beaver open of devices {list(message.devices)[:8]}: distinct devices of the verify request expected")
        if state.triples is None or state.triples[0].shape[0] < len(message.devices):
            raise OutOfPhaseError(self.name, f"not enough Beaver triples for {len(message.devices)} devices in round {envelope.round}")
        if state.coins is None or state.proof_triples is None:
            raise OutOfPhaseError(self.name, f"beaver open before verify or without proof triples in round {envelope.round}")
        a = state.triples[0][: len(message.devices)]
        proof_a = state.proof_triples[0][: len(message.devices)]
        state.eps_devices = list(message.devices)
        eps = linear.sub(np.array(self._shares_of(state, message.devices), dtype=np.uint64).reshape(a.shape), a, field=self.field)
        weighted = validity.weighted_bits(self._proof_rows(state, message.devices)[0], state.coins, field=self.field)
        reply = BeaverMasked(eps, linear.sub(weighted, proof_a, field=self.field))
        state.opened = (message, reply)
        return reply

    def _beaver_check(self, envelope: Envelope, message: BeaverCheck) -> Message:
        """This node's signed projections of its own shares of ``g - a`` (:class:`EpsCheck`) for the
        relayed ``eps``; one eps per round (a retry gets the same reply, another eps is refused)."""
        self._require(envelope.sender, COORDINATOR_PARTY, "beaver check")
        state = self._state(envelope.round)
        if state.checked is not None:
            if _same_request(state.checked[0], message):
                return state.checked[1]
            raise OutOfPhaseError(self.name, f"already checked an eps of round {envelope.round}: one per round")
        assert self.validity is not None
        k = len(state.eps_devices)
        if state.opened is None or state.triples is None or message.eps.shape != (k, self.config.d):
            raise OutOfPhaseError(self.name, f"eps of shape {message.eps.shape}: expected ({k}, {self.config.d}) after beaver open")
        if message.proof_eps.shape != (k, self.validity.proof_length):
            raise OutOfPhaseError(self.name, f"proof_eps of shape {message.proof_eps.shape}: expected ({k}, {self.validity.proof_length})")
        seed = signed_shares.eps_check_seed(self._session, envelope.round, state.eps_devices, message.eps, message.proof_eps)
        mine = state.opened[1]  # the shares this node sent, not any relayed value
        checks = masked_projections(mine.eps, mine.proof_eps, seed, field=self.field)
        reply = EpsCheck(checks, self._sign(signed_shares.eps_check_digest(self._session, envelope.round, self.config.index, seed=seed, checks=checks)))
        state.checked = (message, reply)
        return reply

    def _check_eps(self, envelope: Envelope, state: _RoundState, message: BeaverFinish) -> None:
        """Refuse ``message`` unless the opening of every point's signed eps checks (robust, at least
        ``t`` points, this node's own row among them) equals the projection of the eps this node
        checked (:meth:`_beaver_check`): an eps the relay shifted is refused naming it."""
        if state.checked is None:
            raise OutOfPhaseError(self.name, f"beaver finish of round {envelope.round} before its beaver check")
        eps, proof_eps = state.checked[0].eps, state.checked[0].proof_eps
        if self._przs_setup is None:
            raise OutOfPhaseError(self.name, "beaver finish before the setup completed: no peer keys")
        points, k = [int(j) for j in message.points], len(state.eps_devices)
        if len(points) < self.config.t or message.checks.shape != (len(points), k):
            raise OutOfPhaseError(self.name, f"beaver finish: eps checks of shape {message.checks.shape} from points {points[:8]}, "
                                  f"expected (k >= t = {self.config.t}, {k})")
        seed = signed_shares.eps_check_seed(self._session, envelope.round, state.eps_devices, eps, proof_eps)
        signed_shares.check_eps_checks(
            points, message.checks, message.check_signatures, session=self._session, round=envelope.round, seed=seed,
            keys=self._przs_setup[1].peer_keys, relay=envelope.sender, me=self.name,
        )
        if self.config.index not in points or not np.array_equal(message.checks[points.index(self.config.index)], state.checked[1].checks):
            raise PeerAuthError(envelope.sender, "left this node's own eps checks out of the beaver finish (or altered them)")
        if k:
            try:
                opened = robust_reconstruct(message.checks, points, self.config.t, field=self.field).secret
            except PPBFLError as error:
                raise OutOfPhaseError(self.name, f"beaver finish: the eps checks do not open: {error}") from None
            expected = masked_projections(eps, proof_eps, seed, field=self.field)
            if not np.array_equal(opened, expected):
                wrong = [state.eps_devices[r] for r in np.flatnonzero(opened != expected)[:8]]
                raise PeerAuthError(envelope.sender, f"relayed an eps that is not the opening of the nodes' shares of g - a (devices {wrong})")

    def _beaver_finish(self, envelope: Envelope, message: BeaverFinish) -> Message:
        self._require(envelope.sender, COORDINATOR_PARTY, "beaver finish")
        state = self._state(envelope.round)
        if state.finished is not None and _same_request(state.finished[0], message):
            return state.finished[1]  # a retried request: the triples are spent, answer the same
        k = len(state.eps_devices)
        if state.triples is None or state.proof_triples is None:
            raise OutOfPhaseError(self.name, f"beaver finish of round {envelope.round} without unspent triples")
        self._check_eps(envelope, state, message)  # before anything is computed from eps
        assert state.checked is not None  # _check_eps refuses otherwise
        eps, proof_eps = state.checked[0].eps, state.checked[0].proof_eps
        a, c = state.triples
        proof_a, proof_c = state.proof_triples
        if self.config.rule == "flame":
            state.beaver_gram = self._beaver_gram(state, eps, a, state.pairs)
        state.triples = state.proof_triples = state.pairs = None  # single use
        norm2 = square_from_opened(eps, a[:k], c[:k], field=self.field)
        squares = square_from_opened(proof_eps, proof_a[:k], proof_c[:k], field=self.field)
        assert state.linear is not None  # set with state.coins, which beaver open required
        columns = [state.devices.index(i) for i in state.eps_devices]
        z = ops.sub(state.linear[columns], squares, field=self.field)  # degree t - 1 shares of z: nothing else
        digest = signed_shares.norms_digest(self._session, envelope.round, self.config.index, norm2=norm2, validity=z)
        reply = NormShares(norm2, z, self._sign(digest))
        state.finished = (message, reply)
        return reply

    def _beaver_gram(self, state: _RoundState, eps: np.ndarray, a: np.ndarray, pairs: np.ndarray | None) -> np.ndarray | None:
        """Rule ``"flame"``, Beaver mode: this node's degree-``(t - 1)`` shares of ``<g_i, g_j>`` for every
        pair ``i < j`` of the verified devices ((m (m - 1) / 2,) uint64, row-major upper triangle), from
        the opened ``eps`` ((k, d): ``g - a`` of the opened devices, slot ``r`` for ``state.eps_devices[r]``),
        the triples' ``a`` shares and their dealt pair products over all dealt slots; 0 for pairs with a
        device outside the opening. None without pair products (the dealer was not asked for them)."""
        if pairs is None:
            return None
        k, dealt, m = eps.shape[0], a.shape[0], len(state.devices)
        slot_r, slot_s = np.triu_indices(k, 1)
        dealt_pairs = pairs[slot_r * dealt - slot_r * (slot_r + 1) // 2 + (slot_s - slot_r - 1)]  # pair_index over the dealt slots
        values = gram_from_opened(eps, a[:k], dealt_pairs, field=self.field)
        positions = np.array([state.devices.index(i) for i in state.eps_devices], dtype=np.int64)
        low = np.minimum(positions[slot_r], positions[slot_s])
        high = np.maximum(positions[slot_r], positions[slot_s])
        gram = np.zeros(pair_count(m), dtype=np.uint64)
        gram[low * m - low * (low + 1) // 2 + (high - low - 1)] = values  # pair_index over the verified devices
        return gram

    def _aggregate(self, envelope: Envelope, message: AggregateRequest) -> Message:
        self._require(envelope.sender, COORDINATOR_PARTY, "aggregate")
        self._require_rule("cosine", message)
        assert self.codec is not None
        state = self._state(envelope.round)
        if state.reference is None:
            raise OutOfPhaseError(self.name, f"aggregate before verify in round {envelope.round}")
        m = len(state.devices)
        k = len(message.points)
        for name in ("consistency", "dot_ref", "norm2"):
            shape = getattr(message, name).shape
            if shape != (k, m):
                raise OutOfPhaseError(self.name, f"aggregate request field {name!r}: shape {shape}, expected ({k}, {m})")
        if message.trust.shape != (m,):
            raise OutOfPhaseError(self.name, f"aggregate request field 'trust': shape {message.trust.shape}, expected ({m},)")
        if self._przs_setup is None or self.przs is None:
            raise OutOfPhaseError(self.name, "aggregate before the setup completed: no peer keys to check relayed shares with")
        if not set(state.eps_devices) <= set(state.devices):
            raise OutOfPhaseError(self.name, "Beaver devices outside the verified devices")
        t, beaver = self.config.t, bool(message.norm_signatures)
        if message.norm2_degree != (t - 1 if beaver else 2 * (t - 1)):
            raise OutOfPhaseError(self.name, f"aggregate request: norm2_degree {message.norm2_degree} for {'Beaver' if beaver else 'honest-majority'} shares")
        fewest = 2 * t - 1 if self.decision_rule is None else self.decision_rule.honest_majority_from(t)
        if not beaver and k < fewest:
            raise OutOfPhaseError(
                self.name, f"aggregate request: honest-majority norms from {k} nodes, this node's operator requires {fewest} "
                "(with fewer, a lying share could not be corrected: Beaver triples are needed)",
            )
        signed_shares.check_relayed(
            message, session=self._session, round=envelope.round, keys=self._przs_setup[1].peer_keys, relay=envelope.sender,
            me=self.name, columns=[state.devices.index(i) for i in state.eps_devices], verified=self._verified_hash(state),
        )
        decision = decide_request(
            message, state.reference, t=self.config.t, tau=self.config.tau, codec=self.codec, rescale=self.config.rescale,
        )
        return self._aggregate_reply(envelope.round, message, state, decision)

    def _verified_hash(self, state: _RoundState) -> bytes:
        """The :func:`~ppbfl.protocol.signed_shares.request_hash` of the verify request this node answered in ``state``'s round."""
        if state.verified is None:
            raise OutOfPhaseError(self.name, "aggregate before this node answered a verify request")
        return signed_shares.request_hash(state.verified[0])

    def _aggregate_reply(
        self, round: int, message: AggregateRequest, state: _RoundState, decision: RoundDecision,
        noise: Callable[[int], np.ndarray] | None = None,
    ) -> AggregateShare:
        """This node's aggregate share, kept in ``state``: the accepted devices' share rows weighted
        as ``decision`` says ((d,) uint64 over the node's field; plus ``noise(kept)``, FLAME's noise
        share for ``kept`` accepted devices; zeros when none is accepted), then the test behaviour's
        tampering. The reply carries this node's signatures of its own scalars, decisions and share
        root for the chain the request names (none without a chain). Device indices are the chain's
        device ids (the ledger registers them in order).

        One reply per round: a retried request gets the same reply; another request for a round
        already aggregated is refused (two weighted sums of the same shares, e.g. with trust scores
        that differ at one device, would open that device's update). The reply is kept (written
        to the state folder before it leaves) for :class:`AggregateRecall`."""
        with self._lock:
            kept = self._kept.get(round)
            claimed = kept is None and state.aggregate is None and not state.aggregating
            state.aggregating = True
        if kept is not None and type(kept[0]) is type(message) and _same_request(kept[0], message):
            return kept[1]
        if not claimed:
            raise OutOfPhaseError(self.name, f"round {round} is aggregated already (or being aggregated): one aggregate share per round")
        try:
            return self._new_aggregate_reply(round, message, state, decision, noise)
        except BaseException:
            state.aggregating = False  # nothing left the node: the round may be aggregated again
            raise

    def _new_aggregate_reply(
        self, round: int, message: AggregateRequest, state: _RoundState, decision: RoundDecision,
        noise: Callable[[int], np.ndarray] | None,
    ) -> AggregateShare:
        """:meth:`_aggregate_reply` once this call holds the round's one reply (made, kept, written ahead)."""
        accepted = [i for i, d in enumerate(decision.decisions) if d.accepted]
        if accepted:
            rows = self._shares_of(state, [state.devices[i] for i in accepted])
            share = ops.weighted_rowsum(decision.weights[accepted], rows, field=self.field, rows_name="shares")
            if noise is not None:
                share = ops.add(share, noise(len(accepted)), field=self.field)
        else:
            share = np.zeros(self.config.d, dtype=np.uint64)
        if self.behaviour is EdgeBehaviour.TAMPER_AGGREGATE:  # under either rule (the demo's --liar)
            share = ops.add(share, np.full(share.shape, 1 << 40, dtype=np.uint64), field=self.field)
        state.aggregate = share
        signatures: list[bytes] = []
        if message.chain_contract:
            try:
                context = ChainContext(to_checksum_address(message.chain_contract), message.chain_id)
                votes = RoundVotes.of(state.devices, decision.norm2, decision.dot_ref, decision.reason_codes, decision.weights, share)
                signatures = votes.sign(self._chain_key, context, round)
            except ValueError as error:  # ChainValueError too: an address that is not 20 bytes, round 0
                raise OutOfPhaseError(self.name, f"aggregate request in round {round}: cannot sign its chain votes: {error}") from None
        state.decided = dict(zip(state.devices, decision.decisions))
        reply = AggregateShare(
            decision.norm2, decision.dot_ref, decision.reason_codes, decision.weights, decision.total_weight, share, chain_signatures=signatures,
        )
        recalled = RecalledRound(
            reply.norm2, reply.dot_ref, reply.reasons, reply.weights, reply.total_weight, reply.share, list(state.devices),
            np.array([d.cosine for d in decision.decisions], dtype=np.float64), np.array([d.weight for d in decision.decisions], dtype=np.float64),
            chain_signatures=signatures,
        )
        with self._lock:
            self._kept[round] = (message, reply, recalled)
            for old in sorted(self._kept)[:-KEEP_ROUNDS]:
                del self._kept[old]
        self._persist()
        return reply

    def _recall(self, envelope: Envelope, message: AggregateRecall) -> Message:
        """The aggregate reply this node gave for the envelope's round, again, with its decisions
        (:class:`RecalledRound`; one of the latest two rounds it aggregated)."""
        self._require(envelope.sender, COORDINATOR_PARTY, "aggregate recall")
        with self._lock:
            kept = self._kept.get(envelope.round)
        if kept is None:
            raise OutOfPhaseError(self.name, f"no aggregate reply of round {envelope.round} kept (rounds {sorted(self._kept)})")
        return kept[2]

    def ids_report(self, round: int, context: ChainContext, flags: Mapping[int, int]) -> IdsReport:
        """This node's signed IDS report of ``round`` for ``context``: ``flags`` = device -> windows
        its own detector flagged (:func:`ppbfl.ids.reputation.ids_flags`), signed with its chain key
        (kind 5, :mod:`ppbfl.trust.ids_reports`) over its witness's registered devices. The witness
        keeps it: the node's trust vote of ``round`` then requires it among the relayed reports.
        Asked again with the same flags, the same report.

        Raises:
            OutOfPhaseError: no trust witness, or another report of ``round`` already signed;
            IdsReportError: a device or count out of range.
        """
        witness = self.trust_witness
        if witness is None:
            raise OutOfPhaseError(self.name, "no trust witness: this node reports no IDS flags")
        report = sign_report(self._chain_key, context, round, len(witness.states), flags)
        kept = witness.reported.setdefault(round, report)
        if kept != report:
            raise OutOfPhaseError(self.name, f"round {round}: another IDS report of this round is signed already (one per round)")
        return report

    def trust_vote(
        self, round: int, context: ChainContext, commitments: Mapping[int, bytes], refused: Collection[int] = (), *, ids_reports: Sequence[IdsReport] = (),
    ) -> tuple[TrustVote, bytes]:
        """This node's trust update of ``round`` (its :attr:`trust_witness` fed with the decisions
        this node signed in the round and the edge nodes' signed ``ids_reports`` of it;
        ``commitments``: device -> its commitment on chain; ``refused``: the devices whose PoW stamp the
        chain refused in the round; a round the witness already stored is
        answered from its store) and its kind-4 signature of it for ``context``.

        Raises:
            OutOfPhaseError: no trust witness, or the node signed no decisions in ``round`` (or no
                longer holds them); ConfigError: as :meth:`TrustWitness.vote` (reports refused included).
        """
        if self.trust_witness is None:
            raise OutOfPhaseError(self.name, "no trust witness: this node signs no trust")
        vote = self.trust_witness.stored_vote(round)
        if vote is None:
            with self._lock:
                state = self.rounds.get(round)
                kept = self._kept.get(round)
            decided = state.decided if state is not None else None
            if decided is None and kept is not None:  # a node restarted since: the decisions it kept
                decided = kept[2].decided()
            if decided is None:
                raise OutOfPhaseError(self.name, f"round {round}: this node signed no decisions, so no trust")
            vote = self.trust_witness.vote(round, decided, commitments, refused, ids_reports=ids_reports, context=context)
        return vote, vote.sign(self._chain_key, context, round)

    def _trust_query(self, envelope: Envelope, message: TrustQuery) -> Message:
        """:meth:`trust_vote` over the wire: the chain and commitments from the coordinator's query."""
        self._require(envelope.sender, COORDINATOR_PARTY, "trust query")
        if len(message.commitments) != len(message.devices) or len(set(message.devices)) != len(message.devices):
            raise OutOfPhaseError(
                self.name, f"trust query: {len(message.devices)} devices (distinct expected) for {len(message.commitments)} commitments",
            )
        if self.trust_witness is not None and not set(message.devices) <= set(self.trust_witness.states):
            unknown = sorted(set(message.devices) - set(self.trust_witness.states))
            raise OutOfPhaseError(self.name, f"trust query: devices {unknown[:8]} are not registered")
        witness = self.trust_witness
        if witness is not None and witness.stored_vote(envelope.round) is None:
            anchored = self.anchored_trust
            if anchored is None and isinstance(self.registry, ChainRegistry):
                anchored = lambda r, last, contract=self.registry.contract: latest_anchored(contract, r, last)  # noqa: E731
            previous = message.previous if anchored is None else anchored(envelope.round, witness.round)
            if witness.behind(previous):
                return TrustBehind(witness.round)  # missed anchored rounds: voting now would sign stale states
        context = ChainContext(to_checksum_address(message.chain_contract), message.chain_id)
        try:
            reports = [report_from_bytes(data) for data in message.ids_reports]
        except ConfigError as error:
            raise MessageError(envelope.sender, "ids_reports", str(error)) from None
        vote, signature = self.trust_vote(
            envelope.round, context, dict(zip(message.devices, message.commitments)), message.refused, ids_reports=reports,
        )
        return TrustVoteReply(vote.root, list(vote.slots), [w.to_bytes(32, "big") for w in vote.words], signature)

    def _ids_report_query(self, envelope: Envelope, message: IdsReportQuery) -> Message:
        """:meth:`ids_report` of the envelope's round with this node's own detector's counts (:attr:`ids_source`)."""
        self._require(envelope.sender, COORDINATOR_PARTY, "IDS report query")
        if self.ids_source is None:
            raise OutOfPhaseError(self.name, "no IDS source: this node reports no IDS flags")
        context = ChainContext(to_checksum_address(message.chain_contract), message.chain_id)
        return IdsReportReply(report_to_bytes(self.ids_report(envelope.round, context, self.ids_source(envelope.round))))

    def _trust_catch_up(self, envelope: Envelope, message: TrustCatchUp) -> Message:
        """Adopt the envelope's round's anchored trust records (:meth:`TrustWitness.adopt`: checked
        against ``t`` registered edge signatures and this node's own states; ConfigError otherwise)."""
        self._require(envelope.sender, COORDINATOR_PARTY, "trust catch-up")
        if self.trust_witness is None:
            raise OutOfPhaseError(self.name, "no trust witness: this node adopts no trust round")
        context = ChainContext(to_checksum_address(message.chain_contract), message.chain_id)
        adopted = self.trust_witness.adopt(envelope.round, message.records, message.signatures, context)
        return Ack(f"trust round {envelope.round} {'adopted' if adopted else 'already held'}")

    # -- rule "flame" (ppbfl.defense.flame) ----------------------------------------------------
    def _require_rule(self, rule: str, message: Message) -> None:
        """Refuse ``message`` unless this node was set up with decision rule ``rule``."""
        if self.config.rule != rule:
            raise OutOfPhaseError(self.name, f"{type(message).__name__} is for rule {rule!r}; this tier runs rule {self.config.rule!r}")

    def _gram(self, envelope: Envelope, message: GramRequest) -> Message:
        """This node's shares of ``<g_i, g_j>``, ``i < j``, over the verified devices: the Beaver ones
        made at :class:`BeaverFinish` when the round went through one (degree ``t - 1``), else
        PRZS-masked local products (degree ``2(t - 1)``). One Gram reply per round."""
        self._require(envelope.sender, COORDINATOR_PARTY, "gram")
        self._require_rule("flame", message)
        assert self.przs is not None
        state = self._state(envelope.round)
        if state.verified is None or list(message.devices) != state.devices:
            raise OutOfPhaseError(self.name, f"gram request in round {envelope.round} must follow a verify of the same devices")
        if state.gram is not None:
            return state.gram  # a retried request: the PRZS counter (or the Beaver opening) is used once
        if state.finished is not None:  # Beaver mode: from the opened g - a and the dealt pair products
            if state.beaver_gram is None:
                raise OutOfPhaseError(self.name, f"round {envelope.round} went through a Beaver finish without pair products: no Beaver Gram matrix")
            signature = self._sign(signed_shares.gram_digest(self._session, envelope.round, self.config.index, state.beaver_gram))
            state.gram, state.gram_beaver = GramShares(state.beaver_gram, signature), True
            return state.gram
        if not state.verified[0].hm:
            raise OutOfPhaseError(
                self.name, f"gram request in round {envelope.round} must follow an honest-majority verify or a Beaver finish of the same devices",
            )
        if not 0 <= envelope.round < GRAM_COUNTER:
            raise OutOfPhaseError(self.name, f"round {envelope.round} has no Gram counter")
        m = len(state.devices)
        gram = np.zeros(pair_count(m), dtype=np.uint64)
        if m > 1:
            stacked = np.stack(self._shares_of(state, state.devices))
            products = ops.matmul_unchecked(stacked, np.ascontiguousarray(stacked.T), np.empty((m, m), dtype=np.uint64), self.field)
            upper = products[np.triu_indices(m, 1)]
            gram = ops.add(upper, self.przs.zero_share(GRAM_COUNTER + envelope.round, upper.size), field=self.field)
        state.gram = GramShares(gram, self._sign(signed_shares.gram_digest(self._session, envelope.round, self.config.index, gram)))
        self._persist()  # the counter is spent: a restarted node must refuse it
        return state.gram

    def _flame_aggregate(self, envelope: Envelope, message: FlameAggregateRequest) -> Message:
        """Open norms and Gram entries, run FLAME's clustering, return this node's aggregate share."""
        self._require(envelope.sender, COORDINATOR_PARTY, "aggregate")
        self._require_rule("flame", message)
        assert self.codec is not None
        state = self._state(envelope.round)
        if state.reference is None or state.gram is None:
            raise OutOfPhaseError(self.name, f"flame aggregate before verify and gram in round {envelope.round}")
        m, k, t = len(state.devices), len(message.points), self.config.t
        expected = {name: (k, m) for name in ("consistency", "dot_ref", "norm2", "proof_consistency", "validity")}
        expected["gram"] = (k, pair_count(m))
        for name, shape in expected.items():
            if getattr(message, name).shape != shape:
                raise OutOfPhaseError(self.name, f"aggregate request field {name!r}: shape {getattr(message, name).shape}, expected {shape}")
        beaver = bool(message.norm_signatures)  # Beaver norms: then the Gram shares must be this node's Beaver ones too
        degree = t - 1 if beaver else 2 * (t - 1)
        if message.trust.shape != (m,) or message.norm2_degree != degree or beaver != state.gram_beaver:
            raise OutOfPhaseError(self.name, f"flame aggregate request: trust {message.trust.shape} (expected ({m},)), "
                                  f"norm2_degree {message.norm2_degree} (expected {degree}: {'Beaver' if beaver else 'honest-majority'} norms), "
                                  f"this node gave {'Beaver' if state.gram_beaver else 'honest-majority'} Gram shares")
        fewest = 2 * t - 1 if self.decision_rule is None else self.decision_rule.honest_majority_from(t)
        if not beaver and k < fewest:
            raise OutOfPhaseError(
                self.name, f"flame aggregate request: honest-majority norms and Gram matrix from {k} nodes, this node's operator "
                f"requires {fewest} (with fewer, a lying share could not be corrected: Beaver triples are needed)",
            )
        if self._przs_setup is None or self.przs is None:
            raise OutOfPhaseError(self.name, "aggregate before the setup completed: no peer keys to check relayed shares with")
        if not set(state.eps_devices) <= set(state.devices):
            raise OutOfPhaseError(self.name, "Beaver devices outside the verified devices")
        keys = self._przs_setup[1].peer_keys
        signed_shares.check_relayed(
            message, session=self._session, round=envelope.round, keys=keys, relay=envelope.sender, me=self.name,
            columns=[state.devices.index(i) for i in state.eps_devices], verified=self._verified_hash(state),
        )
        signed_shares.check_gram(
            message.points, message.gram, message.gram_signatures, session=self._session, round=envelope.round, keys=keys,
            relay=envelope.sender, me=self.name,
        )
        decision = decide_flame_request(message, state.reference, t=t, codec=self.codec, space=self.config.flame_space)
        noise = (lambda kept: self._noise_share(envelope.round, decision, kept)) if self.config.flame_noise > 0 else None
        return self._aggregate_reply(envelope.round, message, state, decision, noise)

    def _noise_share(self, round_index: int, decision: RoundDecision, kept: int) -> np.ndarray:
        """This node's share of ``|kept| * N(0, (lambda S)^2)`` noise at the aggregate's scale ``2^(2f)``.

        Raises:
            AggregateRangeError: the noisy weighted sum could wrap modulo ``p``.
        """
        assert self.przs is not None and self.codec is not None
        with self.przs.lock:  # the noise stream of a round is drawn once (a second use would open the first noise)
            if NOISE_COUNTER + round_index in self.przs.used:
                raise OutOfPhaseError(self.name, f"the FLAME noise of round {round_index} was drawn already")
            self.przs.used.add(NOISE_COUNTER + round_index)
        config = self.config
        std = config.flame_noise * clip_bound(decision, config.frac_bits)
        scale = kept * 2.0 ** (2 * config.frac_bits)
        largest = round(float(codec_for_length(self.codec, config.d).max_abs or 0.0) * 2.0**config.frac_bits)
        if sum(int(w) for w in decision.weights) * largest + flame_noise.noise_bound(config.t, config.n, std, scale) > self.field.p // 2:
            raise AggregateRangeError(f"{self.name}: FLAME noise of std {std!r} could wrap the aggregate modulo p in round {round_index}")
        return flame_noise.noise_share(
            config.index, config.t, config.n, self.przs.keys, NOISE_COUNTER + round_index, config.d, std, scale, self.field,
        )

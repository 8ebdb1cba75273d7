"""A run of rounds that survives its coordinator (issue 12, item 4; DESIGN §11).

The coordinator is an untrusted relay that may crash or be killed at any step. What a run needs to
go on lives elsewhere, each piece checked against the chain:

* the rounds, their model hashes, decisions, named liars and trust anchors: the contract (a chain
  that outlives the coordinator: an anvil or any node at a URL, :func:`~ppbfl.protocol.ledger.attach_ledger`;
  the embedded py-evm chain lives in the coordinator's process and dies with it);
* the global model: a :class:`ModelStore` folder, one file per closed round written atomically
  before the round's trust step (the model before the round and its aggregate, so that both
  hashes the chain holds for the round can be checked: ``modelHash = keccak(model)`` and
  ``newModelHash = keccak(modelHash || aggregate)``);
* the devices' trust: the off-chain :class:`~ppbfl.trust.store.TrustStore` (its per-round Merkle
  root is anchored on chain; a :class:`~ppbfl.trust.keeper.TrustKeeper` resumes from it).

:func:`resume_point` reads where the run stands: a round left open (in any phase: open,
commitments closed, verified, decided, aggregate posted) is aborted on chain once its phase's
deadline passed (:meth:`~ppbfl.protocol.ledger.ChainLedger.abort_round`; on a dev chain by mining
to it), and the run continues with the next round from the model of the last closed round. The
devices' commitments of closed rounds stay on chain; those of the aborted round are void (the
devices commit again in the next round). :class:`ResumableRun` drives the rounds so that every
closed round's model is saved before its trust step.

A crash between a round's close on chain and its model file (one ``os.replace`` after the close
transaction), or between the model file and the trust records, leaves a closed round whose
aggregate or trust step the coordinator did not keep. The edge nodes keep their aggregate reply
of their latest two rounds with the decisions they signed (across their own restarts too,
:mod:`ppbfl.protocol.edge_state`) and send it again on :class:`~ppbfl.protocol.messages.AggregateRecall`
(:func:`recall_round`); :func:`rebuild_round` takes the replies of at least ``t`` nodes that agree
on the decisions, reconstructs the aggregate (robustly), and accepts it only if it is the chain's:
its Merkle root is the round's ``aggregateRoot``, ``keccak(modelHash || aggregate)`` its
``newModelHash`` and the decisions the agreed ones. The model file is then written and the trust
step run as if the coordinator had not stopped. With fewer than ``t`` matching replies (nodes that
restarted without a state folder, or more than two rounds later) :class:`ResumeError` names the round.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from eth_hash.auto import keccak

from ppbfl.chain.merkle import merkle_root
from ppbfl.chain.rounds import Phase, RoundState
from ppbfl.errors import ConfigError, PPBFLError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.protocol.durable import replace_durably
from ppbfl.protocol.ledger import ChainLedger
from ppbfl.protocol.messages import AggregateRecall, RecalledRound
from ppbfl.protocol.parties import edge_party
from ppbfl.protocol.round import RoundResult
from ppbfl.protocol.transport import Transport
from ppbfl.protocol.verification import RoundDecision
from ppbfl.sharing.robust import robust_reconstruct

if TYPE_CHECKING:
    from ppbfl.fl.federation import Federation
    from ppbfl.trust.keeper import TrustKeeper

__all__ = ["ModelStore", "ResumableRun", "ResumeError", "ResumePoint", "rebuild_round", "recall_round", "resume_point"]


#: what an edge node without its setup answers (:class:`~ppbfl.protocol.edge_node.EdgeNode`): a
#: node dropped for it restarted without a state folder, and the tier is set up again for it
NOT_SET_UP = "before setup"
#: most ``t``-subsets of the recalled shares tried against the chain's aggregate root
MAX_SUBSETS = 256


class ResumeError(PPBFLError):
    """The off-chain state cannot continue the run the chain records (names the round and what differs)."""

    def __init__(self, round: int, reason: str) -> None:
        super().__init__(f"cannot resume after round {round}: {reason}")
        self.round, self.reason = round, reason


def next_model_hash(model_hash: bytes, aggregate: np.ndarray) -> bytes:
    """The chain's ``newModelHash`` of a round: ``keccak(model_hash || aggregate)`` (float64 LE bytes)."""
    return keccak(bytes(model_hash) + np.ascontiguousarray(aggregate, dtype="<f8").tobytes())


class ModelStore:
    """The global model of each closed round in ``folder`` (created owner-only, ``0700``).

    File ``round-<r>.npz`` holds ``model`` (float32 (d,), the model round ``r`` opened with) and
    ``aggregate`` (float64 (d,), the round's aggregate); the model after the round is
    ``(model + aggregate).astype(float32)``. Writes are atomic (a temporary file in the same folder,
    fsync, ``os.replace``, fsync of the folder): a crash leaves the old file or the new one.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, round: int) -> Path:
        """The file of round ``round``."""
        return self.folder / f"round-{round:08d}.npz"

    def save(self, round: int, model: np.ndarray, aggregate: np.ndarray) -> Path:
        """Store round ``round``'s opening ``model`` (float32 (d,)) and ``aggregate`` (float64 (d,)) atomically."""
        replace_durably(
            self.path(round),
            lambda fh: np.savez(fh, model=np.asarray(model, dtype=np.float32), aggregate=np.asarray(aggregate, dtype=np.float64)),
            prefix=".round-",
        )
        return self.path(round)

    def load(self, round: int) -> tuple[np.ndarray, np.ndarray]:
        """``(model float32 (d,), aggregate float64 (d,))`` of round ``round``.

        Raises:
            ResumeError: no file for the round, or one that is not a model file of equal-length vectors.
        """
        path = self.path(round)
        try:
            with np.load(path, allow_pickle=False) as data:
                model, aggregate = data["model"], data["aggregate"]
        except (OSError, KeyError, ValueError) as error:
            raise ResumeError(round, f"no readable model file {path} ({type(error).__name__}: {error})") from None
        if model.dtype != np.float32 or aggregate.dtype != np.float64 or model.ndim != 1 or model.shape != aggregate.shape:
            raise ResumeError(round, f"{path}: model {model.dtype}{model.shape}, aggregate {aggregate.dtype}{aggregate.shape}")
        return model, aggregate


@dataclass(frozen=True)
class ResumePoint:
    """Where a run stands on chain.

    Attributes:
        next_round: the round to open next (latest on chain + 1).
        model: float32 (d,) the global model after the last closed round (the initial model if none).
        last_closed: the last closed round (0: none).
        aborted: the round this call aborted on chain (None: none was left open).
        liars: edge nodes reported on chain as liars in any round (its ``LiarReported`` events, one
            query; they stay out of the tier).
    """

    next_round: int
    model: np.ndarray
    last_closed: int
    aborted: int | None
    liars: tuple[int, ...]


def recall_round(transport: Transport, nodes: Iterable[int], round: int, *, d: int, p: int, timeout: float = 30.0) -> dict[int, RecalledRound]:
    """Edge node -> its :class:`RecalledRound` of ``round`` (:class:`AggregateRecall`), over
    ``transport`` (the coordinator's); a node that fails or answers something else is left out."""
    replies = {}
    for j in nodes:
        try:
            reply = transport.call(edge_party(j), AggregateRecall(), round=round, timeout=timeout, context={"d": d, "p": p}).message
        except PPBFLError:
            continue
        if isinstance(reply, RecalledRound):
            replies[j] = reply
    return replies


def rebuild_round(
    round: int, state: RoundState, replies: Mapping[int, RecalledRound], decisions: Mapping[int, tuple[int, int]], *,
    t: int, codec: FixedPointCodec, device_index: Mapping[int, int],
) -> RoundResult:
    """Round ``round``'s result from the edge nodes' kept replies, accepted only if it is the chain's.

    ``state``: the round on chain (``aggregateRoot``, ``modelHash``, ``newModelHash``);
    ``decisions``: chain device id -> (reason code, fixed-point weight) the nodes agreed on chain;
    ``device_index``: chain device id -> device index. Nodes are grouped by the decisions they
    report; a group of at least ``t`` whose decisions are the chain's and whose shares reconstruct
    (robustly) an aggregate with the chain's Merkle root and ``newModelHash`` gives the result
    (``aggregate``, ``devices``, each device's decision; its ``online`` is that group).

    Raises:
        ResumeError: no such group (names the round and how many nodes replied).
    """
    groups: dict[tuple, list[int]] = {}
    for j, reply in sorted(replies.items()):
        key = (tuple(reply.devices), tuple(reply.reasons), reply.weights.tobytes(), reply.total_weight, reply.cosine.tobytes(), reply.weight.tobytes())
        groups.setdefault(key, []).append(j)
    for nodes in sorted(groups.values(), key=len, reverse=True):
        first = replies[nodes[0]]
        if len(nodes) < t:
            break
        if dict(zip(first.devices, zip(first.reasons, map(int, first.weights)))) != dict(decisions) or not set(first.devices) <= set(device_index):
            continue
        secret = _chain_secret([(j, replies[j].share) for j in nodes], t, codec, state.aggregate_root)
        if secret is None:
            continue
        aggregate = np.zeros(secret.shape) if first.total_weight <= 0 else codec.decode(secret, scale_power=2) / first.total_weight
        if next_model_hash(state.model_hash, aggregate) != state.new_model_hash:
            continue
        decided = first.decided()
        decision = RoundDecision(first.norm2, first.dot_ref, tuple(decided[i] for i in first.devices), first.weights, first.total_weight, (), {})
        return RoundResult(round, [device_index[i] for i in first.devices], aggregate, decision, "recalled", tuple(nodes), {}, (), {})
    raise ResumeError(round, f"no t = {t} edge nodes' kept aggregate replies rebuild the aggregate and decisions the chain holds "
                             f"({len(replies)} nodes replied)")


def _chain_secret(shares: list[tuple[int, np.ndarray]], t: int, codec: FixedPointCodec, root: bytes) -> np.ndarray | None:
    """The secret of ``shares`` ((node, (d,) uint64) pairs) whose Merkle root is ``root``: robust
    reconstruction over all of them, else each ``t``-subset (the chain's root is the oracle that
    finds the subset without a wrong share; at most :data:`MAX_SUBSETS` tried); None: none."""
    points = tuple(j for j, _ in shares)
    stacked = np.stack([share for _, share in shares])
    try:
        secret = robust_reconstruct(stacked, points, t, field=codec.field).secret
        if merkle_root(secret) == root:
            return secret
    except PPBFLError:
        pass
    for subset in itertools.islice(itertools.combinations(range(len(points)), t), MAX_SUBSETS):
        try:
            secret = robust_reconstruct(stacked[list(subset)], tuple(points[k] for k in subset), t, field=codec.field).secret
        except PPBFLError:
            continue
        if merkle_root(secret) == root:
            return secret
    return None


def _model_opened(contract: object, models: ModelStore, round: int, initial: np.ndarray) -> np.ndarray:
    """The model ``round`` opened with: the model after the closed round before it (``initial`` if none)."""
    for before in range(round - 1, 0, -1):
        if contract.round_state(before).phase == Phase.CLOSED:  # type: ignore[attr-defined]
            opened, aggregate = models.load(before)
            return (opened + aggregate).astype(np.float32)
    return np.asarray(initial, dtype=np.float32)


def resume_point(
    ledger: ChainLedger, models: ModelStore, initial: np.ndarray, *, rebuild: Callable[[int], RoundResult] | None = None,
) -> ResumePoint:
    """Read the run from chain, abort a round left open, and check the stored model against the chain.

    ``initial``: the model round 1 opens with (float32 (d,)). ``rebuild``: round -> its result
    rebuilt from the edge nodes' kept replies (:func:`rebuild_round`); when the last closed
    round has no model file, its file is written from it (None: a missing file is an error).

    Raises:
        ResumeError: the model file of the last closed round is missing (and cannot be rebuilt),
            or its model or aggregate hashes to something else than the chain records for the
            round (or ``initial`` than round 1's model hash when no round closed).
    """
    contract = ledger.contract
    latest = contract.latest_round()
    aborted = None
    if latest and contract.round_state(latest).phase not in (Phase.CLOSED, Phase.FAILED):
        ledger.abort_round(latest)
        aborted = latest
    last, state = latest, None
    while last > 0:  # back to the last closed round: the rounds after it failed (their model is unchanged)
        state = contract.round_state(last)
        if state.phase == Phase.CLOSED:
            break
        last -= 1
    liars = tuple(sorted({edge for _, edge in contract.liar_reports()}))
    model = np.asarray(initial, dtype=np.float32)
    if state is None or last == 0:
        if latest and contract.round_state(1).model_hash != ChainLedger.model_hash(model):
            raise ResumeError(0, "the initial model is not the one round 1 opened with")
        return ResumePoint(latest + 1, model, 0, aborted, liars)
    if rebuild is not None and not models.path(last).exists():
        models.save(last, _model_opened(contract, models, last, initial), rebuild(last).aggregate)
    opened, aggregate = models.load(last)
    if ChainLedger.model_hash(opened) != state.model_hash:
        raise ResumeError(last, f"{models.path(last)} holds another model than the round opened with (modelHash)")
    if next_model_hash(state.model_hash, aggregate) != state.new_model_hash:
        raise ResumeError(last, f"{models.path(last)} holds another aggregate than the chain's newModelHash")
    return ResumePoint(latest + 1, (opened + aggregate).astype(np.float32), last, aborted, liars)


class ResumableRun:
    """Rounds of ``federation`` (its coordinator on ``ledger``) whose state survives the coordinator.

    Made by a coordinator that (re)starts: it reads the :func:`resume_point`, leaves the named
    liars out, sets the edge nodes up for the rounds after the latest one on chain, and checks the
    trust store against the chain's anchors; a last closed round without its model file or trust
    records is rebuilt from the edge nodes' kept replies (:func:`rebuild_round`). Each
    :meth:`run_round` opens the next round with the current model's hash, saves the model and
    aggregate once the round closed, then runs the trust step (store and on-chain anchor). An edge
    node that restarted with its state folder is back in the next round by itself; after a round
    that lost a node without its setup (restarted without a state folder) the tier is set up again.

    Args:
        federation: the devices and the coordinator (made without ``trust``: this run calls the keeper).
        ledger: the coordinator's ledger (:meth:`ChainLedger.attach` after a restart).
        keeper: the trust keeper over the off-chain store.
        models: where the global model of each closed round goes.
        initial: float32 (d,) the model of round 1.

    Raises:
        ResumeError: as :func:`resume_point`, or the trust store does not hold the root the chain
            anchored for a closed round (or holds records of a round that did not close), or a
            closed round without model file or trust records cannot be rebuilt from ``t`` edge nodes.
        ConfigError: ``federation`` runs a trust keeper itself.
    """

    def __init__(
        self, federation: Federation, ledger: ChainLedger, keeper: TrustKeeper, models: ModelStore, initial: np.ndarray,
    ) -> None:
        if federation.trust is not None:
            raise ConfigError("federation.trust", "must be None: the run calls the keeper itself, after saving the model")
        self.federation, self.ledger, self.keeper, self.models = federation, ledger, keeper, models
        self._rebuilt: dict[int, RoundResult] = {}
        self.point = resume_point(ledger, models, initial, rebuild=self._rebuild)
        self._check_trust()
        coordinator = federation.coordinator
        for j in self.point.liars:
            coordinator.excluded.setdefault(j, "reported as a liar on chain")
        coordinator.setup(self.point.next_round - 1)
        self.model = self.point.model
        """float32 (d,): the global model the next round opens with."""

    def _check_trust(self) -> None:
        """The trust records the keeper resumes from are the last closed round's, stored under the
        root anchored on chain (a round stored but not yet anchored, a crash between the two, is
        anchored now); no later round has any."""
        store, contract = self.keeper.store, self.ledger.contract
        stored = set(store.rounds())
        last = self.point.last_closed
        if last:
            anchor = contract.round_state(last).anchor
            if anchor == bytes(32) and last in stored:
                records = store.records(last)  # the edge nodes sign their own stored update of it again
                self.keeper.commit(last, store.root(last), records, {x.device: x.commitment for x in records if x.commitment is not None})
            elif anchor == bytes(32):  # closed, trust step never ran: from the nodes' kept decisions
                self.keeper.after_round(self._rebuild(last))
            elif last not in stored or store.root(last) != anchor:
                raise ResumeError(last, "the trust store does not hold the records whose root is anchored on chain")
        later = sorted(r for r in stored if r > last)
        if later:
            raise ResumeError(last, f"the trust store holds records of rounds {later[:8]}, which did not close on chain")

    def _rebuild(self, round: int) -> RoundResult:
        """Closed round ``round``'s result from the edge nodes' kept replies (:func:`rebuild_round`)."""
        if round not in self._rebuilt:
            coordinator, contract = self.federation.coordinator, self.ledger.contract
            replies = recall_round(
                coordinator.transport, range(1, coordinator.n + 1), round, d=coordinator.d, p=coordinator.field.p, timeout=coordinator.timeout,
            )
            decisions = {x.device_id: (x.reason, x.weight) for x in contract.decisions(round)}
            index = {chain_id: i for i, chain_id in self.ledger.device_ids.items()}
            self._rebuilt[round] = rebuild_round(
                round, contract.round_state(round), replies, decisions, t=coordinator.t, codec=coordinator.codec, device_index=index,
            )
        return self._rebuilt[round]

    def run_round(
        self, updates: Mapping[int, np.ndarray], reference: np.ndarray, *, ids_flags: Mapping[int, int] | None = None,
    ) -> RoundResult:
        """Run the next round (see :meth:`Federation.run_round` for ``updates`` and ``reference``),
        then save the model and run the trust step; :attr:`model` becomes the model after it.

        The round is the one after the latest on chain; a latest round an earlier failure left
        open (one before the commit phase closed, which the coordinator does not abort itself) is
        aborted first.

        Raises:
            NotEnoughEdgeNodesError, RoundFailedError, ChainRevertError: as :meth:`Federation.run_round`
            (the round fails; :attr:`model` stays).
        """
        contract, model = self.ledger.contract, self.model
        round = contract.latest_round() + 1
        if round > 1 and contract.round_state(round - 1).phase not in (Phase.CLOSED, Phase.FAILED):
            self.ledger.abort_round(round - 1)
        try:
            result = self.federation.run_round(
                round, updates, reference, trust=self.keeper.round_trust(), model_hash=ChainLedger.model_hash(model),
                model=model if self.federation.coordinator.rule == "cosine" else None,  # nodes with a reference source compute r from it
            )
        except PPBFLError as error:
            self._rejoin(round, error)
            raise
        self.models.save(round, model, result.aggregate)
        self.keeper.after_round(result, ids_flags=ids_flags)
        self.model = (model + result.aggregate).astype(np.float32)
        if any(NOT_SET_UP in why for why in result.dropped.values()):
            self._rejoin(round)
        return result

    def _rejoin(self, round: int, error: PPBFLError | None = None) -> None:
        """After a round that lost edge nodes, set the tier up again for the rounds after ``round``,
        so that a node that restarted (and lost its setup) takes part in the next round instead of
        being dropped in every round. A new PRZS key agreement among the nodes (three relayed
        calls); named liars stay out. A setup that fails is reported with the round's ``error``."""
        try:
            self.federation.coordinator.setup(round)
        except PPBFLError as setup_error:
            if error is None:
                raise
            error.add_note(f"setting the edge tier up again failed too: {type(setup_error).__name__}: {setup_error}")

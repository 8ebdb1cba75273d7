"""The coordinator killed at each step of a round, then a new one (issue 12, item 4, "Checks").

The chain is an anvil node that outlives the coordinator. A run of two rounds without a crash is
the reference. In each crash run the coordinator stops dead in round 2 at one step (a test-only
``Killed``, a ``BaseException`` the coordinator does not catch, raised right after that step's
transaction: nothing of the coordinator's own clean-up runs, as under ``kill -9``); a fresh
coordinator attaches to the same contract (``ChainLedger.attach``), aborts round 2 on chain and
runs the second round's updates as round 3. The closed rounds on chain (model hashes, decisions,
trust) and the off-chain records (model files, trust records) must equal the reference's, round
for round; the edge node named as a liar in round 1 stays out after the restart. The stop after the commitments closed is a real coordinator process killed with SIGKILL.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ppbfl.chain import Chain, ChainError
from ppbfl.chain.attest import KIND_DECISIONS, KIND_SCALARS, ChainKey
from ppbfl.chain.rounds import Phase
from ppbfl.errors import ConfigError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.edge_node import EdgeNode
from ppbfl.protocol.ledger import ChainLedger, attach_ledger
from ppbfl.protocol.resume import ModelStore, ResumableRun, ResumeError
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import RoundFailedError
from ppbfl.trust.config import TrustConfig
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.store import TrustStore
from ppbfl.trust.witness import TrustWitness
from tests.protocol_helpers import synthetic_round
from tests.test_protocol_transport import child_env

T, N, D, M = 2, 4, 16, 4
TRUST = TrustConfig(pow_max_bits=10)
MALICIOUS = {3}
LIAR = 4  # sends a wrong aggregate share in round 1: named on chain, out of the tier from round 2 on
INITIAL = np.random.default_rng(11).normal(size=D).astype(np.float32) * 0.1


def updates_of(step: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """The devices' updates and the reference of the run's ``step``-th round (1, 2, 3)."""
    return synthetic_round(M, D, MALICIOUS, seed=100 + step)


class Killed(BaseException):
    """The coordinator's process ends here (not an Exception: nothing of the coordinator handles it)."""


def chain_keys(folder: Path, kind: str, count: int, first: int = 0) -> dict[int, ChainKey]:
    """The ``kind`` parties' own chain keys (edge nodes 1..n or devices 0..m-1), kept in
    ``folder/keys``: each party keeps its key across a coordinator restart (made on first use)."""
    (folder / "keys").mkdir(exist_ok=True)
    keys = {}
    for i in range(first, first + count):
        path = folder / "keys" / f"{kind}-{i}.key"
        if not path.exists():
            ChainKey.generate().save(path)
        keys[i] = ChainKey.load(path)
    return keys


def tier(folder: Path, state: bool = False) -> InProcessDeployment:
    """The edge tier and the devices' transports (one liar among the nodes), the nodes with their
    own kept chain keys (and, with ``state``, their restart state in ``folder/state``)."""
    deployment = InProcessDeployment(
        T, N, D, behaviours={LIAR: "tamper-aggregate"}, signed_uploads=True, chain_keys=chain_keys(folder, "edge", N, 1),
        state_dir=folder / "state" if state else None,
    )
    for party, node in deployment.nodes.items():  # each node's trust states in its own kept store
        node.trust_witness = witness(folder, party)
    return deployment


def witness(folder: Path, party: str) -> TrustWitness:
    return TrustWitness(range(M), TRUST, TrustStore(f"sqlite:///{folder / f'{party}.trust.db'}"))


def start(ledger: ChainLedger, deployment: InProcessDeployment, folder: Path) -> ResumableRun:
    """A coordinator (re)starting on ``ledger``: what a coordinator process does at start."""
    coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger, device_keys=deployment.device_keys)
    federation = Federation(deployment, coordinator, range(M), ledger=ledger, device_chain_keys=chain_keys(folder, "device", M))
    keeper = TrustKeeper(
        range(M), TRUST, store=TrustStore(f"sqlite:///{folder / 'trust.db'}"), ledger=ledger, voters=list(deployment.nodes.values()),
    )
    return ResumableRun(federation, ledger, keeper, ModelStore(folder / "models"), INITIAL)


def stop(run: ResumableRun) -> None:
    """What is left of a dead coordinator: nothing (its threads and store connection go)."""
    run.federation.coordinator.close()
    run.keeper.store.close()


def closed_rounds(ledger: ChainLedger) -> list[int]:
    contract = ledger.contract
    return [r for r in range(1, contract.latest_round() + 1) if contract.round_state(r).phase == Phase.CLOSED]


def record(ledger: ChainLedger, folder: Path) -> list[dict]:
    """What each closed round left on chain and off chain, without what names the round itself
    (round numbers, the devices' round-bound commitments, the anchors of records that carry the round)."""
    store = TrustStore(f"sqlite:///{folder / 'trust.db'}")
    models = ModelStore(folder / "models")
    out = []
    try:
        for r in closed_rounds(ledger):
            state = ledger.contract.round_state(r)
            model, aggregate = models.load(r)
            out.append({
                "model_hash": state.model_hash, "new_model_hash": state.new_model_hash, "liars": state.reported_liars,
                "decisions": ledger.contract.decisions(r), "model": model.tobytes(), "aggregate": aggregate.tobytes(),
                "trust": [
                    {f.name: getattr(x, f.name) for f in dataclasses.fields(x) if f.name not in ("round", "commitment")}
                    for x in store.records(r)
                ],
            })
    finally:
        store.close()
    return out


class Chain1:
    """The anvil node, with a snapshot of its state after the reference's round 1 and a copy of
    the off-chain state then: each case starts a fresh coordinator from there (round 1 is shared)."""

    def __init__(self, url: str, address: str, folder: Path) -> None:
        self.url, self.address, self.folder = url, address, folder
        self._snapshot = self._rpc("evm_snapshot")

    def _rpc(self, method: str, *params):
        with Chain.connect(self.url) as chain:
            return chain.w3.provider.make_request(method, list(params))["result"]

    def restore(self, folder: Path) -> None:
        """Put the chain back to the end of round 1 and the off-chain state into ``folder``."""
        assert self._rpc("evm_revert", self._snapshot) is True
        self._snapshot = self._rpc("evm_snapshot")  # a snapshot is used up by its revert
        shutil.copytree(self.folder, folder, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Two rounds, no crash: what each closed round left, and the reputations at the end."""
    folder = tmp_path_factory.mktemp("reference")
    with Chain.anvil(accounts=16) as node, Chain.connect(node.node.url) as chain:
        ledger = ChainLedger(chain, T, N, M)
        run = start(ledger, tier(folder), folder)
        assert run.run_round(*updates_of(1)).liars == (LIAR,)
        after_round_1 = Chain1(node.node.url, ledger.address, tmp_path_factory.mktemp("after-round-1"))
        shutil.copytree(folder, after_round_1.folder, dirs_exist_ok=True)
        assert LIAR not in run.run_round(*updates_of(2)).online
        stop(run)
        assert closed_rounds(ledger) == [1, 2]
        yield record(ledger, folder), run.keeper.reputation(), after_round_1


def after(method, check=lambda value: True):
    """``method``, then the process dies (when ``check`` holds for what it returned)."""
    def wrapped(*args, **kwargs):
        value = method(*args, **kwargs)
        if check(value):
            raise Killed(method.__name__)
        return value
    return wrapped


def agreed(post_packed, kind: int):
    """``post_packed``, then the process dies once the edge nodes agreed on values of ``kind``."""
    def wrapped(kind_: int, *args, **kwargs):
        value = post_packed(kind_, *args, **kwargs)
        if kind_ == kind and value:
            raise Killed(f"agreed on kind {kind}")
        return value
    return wrapped


STEPS = {  # after the commitments closed: the real SIGKILL below
    "opened": lambda ledger: setattr(ledger, "open_round", after(ledger.open_round)),
    "verify request posted": lambda ledger: setattr(ledger, "post_verify_request", after(ledger.post_verify_request)),
    "scalars agreed (verified)": lambda ledger: setattr(ledger.contract, "post_packed", agreed(ledger.contract.post_packed, KIND_SCALARS)),
    "decisions agreed": lambda ledger: setattr(ledger.contract, "post_packed", agreed(ledger.contract.post_packed, KIND_DECISIONS)),
    "aggregate posted": lambda ledger: setattr(ledger.contract, "post_aggregate", after(ledger.contract.post_aggregate)),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_coordinator_killed_at_any_step_is_replaced_and_the_run_matches_one_without_the_crash(reference, tmp_path, step):
    expected, reputation, chain1 = reference
    chain1.restore(tmp_path)
    deployment = tier(tmp_path)  # the edge nodes and devices outlive the coordinator
    with attach_ledger(chain1.url, chain1.address) as ledger:
        first = start(ledger, deployment, tmp_path)
        assert (first.point.aborted, first.point.next_round) == (None, 2)
        STEPS[step](ledger)
        with pytest.raises(Killed):
            first.run_round(*updates_of(2))
        stop(first)
        phase = ledger.contract.round_state(2).phase
        assert phase not in (Phase.CLOSED, Phase.FAILED)  # left open: nobody aborted it
    with attach_ledger(chain1.url, chain1.address) as attached:
        second = start(attached, deployment, tmp_path)
        assert (second.point.aborted, second.point.next_round, second.point.last_closed, second.point.liars) == (2, 3, 1, (LIAR,))
        assert attached.contract.round_state(2).phase == Phase.FAILED
        assert LIAR not in second.federation.coordinator.online  # the liar named on chain stays out
        second.run_round(*updates_of(2))
        stop(second)
        assert closed_rounds(attached) == [1, 3]
        assert record(attached, tmp_path) == expected
        assert second.keeper.reputation() == reputation
        print(f"crash after {step}: round 2 {phase.name} -> FAILED, round 3 CLOSED; closed rounds match the reference")


def test_a_coordinator_killed_between_storing_and_anchoring_trust_is_replaced_and_anchors_it(reference, tmp_path):
    expected, reputation, chain1 = reference
    chain1.restore(tmp_path)
    deployment = tier(tmp_path)
    with attach_ledger(chain1.url, chain1.address) as ledger:
        first = start(ledger, deployment, tmp_path)
        ledger.contract.commit_trust = after(lambda *args: None)  # round 2 closed, model saved, trust stored: then dead
        with pytest.raises(Killed):
            first.run_round(*updates_of(2))
        stop(first)
        assert ledger.contract.round_state(2).phase == Phase.CLOSED and ledger.contract.round_state(2).anchor == bytes(32)
    with attach_ledger(chain1.url, chain1.address) as attached:
        second = start(attached, deployment, tmp_path)
        assert (second.point.aborted, second.point.next_round) == (None, 3)
        assert attached.contract.round_state(2).anchor == second.keeper.store.root(2)
        assert [attached.contract.trust(i) for i in range(M)] == pytest.approx(list(reputation.values()), abs=1e-4)
        stop(second)
        assert record(attached, tmp_path) == expected


def restart_tier(deployment: InProcessDeployment, folder: Path, nodes: tuple[int, ...] = tuple(range(1, N + 1))) -> None:
    """Edge nodes ``nodes`` (default: all) end and come back with their identity and state folder."""
    for j in nodes:
        party = f"edge-{j}"
        node = EdgeNode(
            behaviour="tamper-aggregate" if j == LIAR else "honest", device_keys=deployment.device_keys, credentials=deployment.creds[party],
            registry=deployment.registry, chain_key=chain_keys(folder, "edge", 1, j)[j], state_dir=folder / "state" / party,
        )
        node.trust_witness = witness(folder, party)
        deployment.nodes[party] = deployment._edges[party] = deployment._handlers[party] = node


CLOSED = {  # the round closed on chain; the coordinator dies before its model file, or before its trust step
    "closeRound": lambda run: setattr(run.ledger.contract, "close_round", after(run.ledger.contract.close_round)),
    "closeRound, and every edge node restarted": lambda run: setattr(run.ledger.contract, "close_round", after(run.ledger.contract.close_round)),
    "model file": lambda run: setattr(run.keeper, "after_round", after(lambda *args, **kwargs: None)),
}


@pytest.mark.parametrize("step", list(CLOSED))
def test_a_coordinator_killed_after_a_round_closed_is_replaced_from_the_edge_nodes_kept_replies(reference, tmp_path, step):
    """The aggregate of a closed round is kept by the edge nodes (in their state folders too): the
    next coordinator recalls ``t`` of their replies, checks them against the chain, writes the
    model file and runs the trust step; the run then equals the one without the crash."""
    expected, reputation, chain1 = reference
    chain1.restore(tmp_path)
    deployment = tier(tmp_path, state=True)
    with attach_ledger(chain1.url, chain1.address) as ledger:
        first = start(ledger, deployment, tmp_path)
        CLOSED[step](first)
        with pytest.raises(Killed):
            first.run_round(*updates_of(2))
        stop(first)
        assert ledger.contract.round_state(2).phase == Phase.CLOSED and ledger.contract.round_state(2).anchor == bytes(32)
        assert ModelStore(tmp_path / "models").path(2).exists() == (step == "model file")
    if "restarted" in step:
        restart_tier(deployment, tmp_path)
    with attach_ledger(chain1.url, chain1.address) as attached:
        second = start(attached, deployment, tmp_path)
        assert (second.point.aborted, second.point.next_round, second.point.last_closed) == (None, 3, 2)
        assert attached.contract.round_state(2).anchor == second.keeper.store.root(2)
        stop(second)
        assert closed_rounds(attached) == [1, 2]
        assert record(attached, tmp_path) == expected
        assert second.keeper.reputation() == reputation


def test_a_closed_round_whose_kept_replies_do_not_match_the_chain_is_refused(reference, tmp_path):
    """Fewer than ``t`` nodes with the round's replies (the others restarted without a state
    folder): ResumeError naming the round. With them back, one of three replies wrong (more than
    robust decoding corrects at t = 2): the subset the chain's aggregate root confirms is used."""
    expected, _, chain1 = reference
    chain1.restore(tmp_path)
    deployment = tier(tmp_path, state=True)
    with attach_ledger(chain1.url, chain1.address) as ledger:
        first = start(ledger, deployment, tmp_path)
        CLOSED["closeRound"](first)
        with pytest.raises(Killed):
            first.run_round(*updates_of(2))
        stop(first)
    for j in (2, 3):  # two of the three nodes of round 2 restart with nothing
        restart_edge(deployment, j, tmp_path)
    with attach_ledger(chain1.url, chain1.address) as attached:
        with pytest.raises(ResumeError, match=r"after round 2: no t = 2 edge nodes' kept aggregate replies .* \(1 nodes replied\)"):
            start(attached, deployment, tmp_path)
        restart_tier(deployment, tmp_path, (2, 3))  # they come back with their state folders; one then lies in its share
        request, reply, recalled = deployment.nodes["edge-3"]._kept[2]
        deployment.nodes["edge-3"]._kept[2] = (request, reply, dataclasses.replace(recalled, share=recalled.share ^ np.uint64(1)))
        run = start(attached, deployment, tmp_path)  # robust reconstruction corrects one wrong share of three
        stop(run)
        assert ModelStore(tmp_path / "models").load(2)[1].tobytes() == expected[1]["aggregate"]


def test_a_round_that_failed_before_its_commitments_closed_is_aborted_by_the_next_round(reference, tmp_path):
    """Not a crash: the chain refused ``closeCommitments`` once (an ordinary error, which the
    coordinator does not abort on before the commit phase closed); the run goes on in the same process."""
    expected, reputation, chain1 = reference
    chain1.restore(tmp_path)
    with attach_ledger(chain1.url, chain1.address) as ledger:
        run = start(ledger, tier(tmp_path), tmp_path)
        close = ledger.close_commitments

        def refused(round):
            ledger.close_commitments = close
            raise ChainError("the node refused the transaction")

        ledger.close_commitments = refused
        with pytest.raises(ChainError):
            run.run_round(*updates_of(2))
        assert ledger.contract.round_state(2).phase == Phase.OPEN
        run.run_round(*updates_of(2))
        stop(run)
        assert [ledger.contract.round_state(r).phase for r in (2, 3)] == [Phase.FAILED, Phase.CLOSED]
        assert record(ledger, tmp_path) == expected and run.keeper.reputation() == reputation


def restart_edge(deployment: InProcessDeployment, j: int, folder: Path) -> None:
    """Edge node ``j``'s process ends and comes back: same identity (TLS and chain keys), no setup, no round state."""
    party = f"edge-{j}"
    node = EdgeNode(
        device_keys=deployment.device_keys, credentials=deployment.creds[party], registry=deployment.registry,
        chain_key=chain_keys(folder, "edge", 1, j)[j],
    )
    deployment.nodes[party] = deployment._edges[party] = deployment._handlers[party] = node


def test_an_edge_node_that_restarts_rejoins_in_the_next_round(reference, tmp_path):
    *_, chain1 = reference
    chain1.restore(tmp_path)
    deployment = tier(tmp_path)
    with attach_ledger(chain1.url, chain1.address) as ledger:
        run = start(ledger, deployment, tmp_path)
        restart_edge(deployment, 2, tmp_path)
        lost = run.run_round(*updates_of(2))
        assert 2 in lost.dropped and "before setup" in lost.dropped[2]  # it lost its setup: out of this round
        back = run.run_round(*updates_of(3))
        stop(run)
        assert back.online == (1, 2, 3) and not back.dropped and back.accepted == lost.accepted
        assert [ledger.contract.round_state(r).phase for r in (2, 3)] == [Phase.CLOSED, Phase.CLOSED]


def test_a_stored_model_or_trust_store_that_differs_from_the_chain_is_refused(reference, tmp_path):
    *_, chain1 = reference
    chain1.restore(tmp_path)
    deployment = tier(tmp_path)
    models = ModelStore(tmp_path / "models")
    model, aggregate = models.load(1)
    with attach_ledger(chain1.url, chain1.address) as ledger:
        models.save(1, model, aggregate + 1e-9)
        with pytest.raises(ResumeError, match=r"after round 1: .* another aggregate than the chain's newModelHash"):
            start(ledger, deployment, tmp_path)
        models.save(1, model + np.float32(1e-3), aggregate)
        with pytest.raises(ResumeError, match="another model than the round opened with"):
            start(ledger, deployment, tmp_path)
        models.path(1).write_bytes(b"not a model file")
        with pytest.raises(ResumeError, match="no readable model file"):
            start(ledger, deployment, tmp_path)
        models.path(1).unlink()  # missing: rebuilt from the edge nodes, but these never held round 1
        with pytest.raises(ResumeError, match=r"round 1: no t = 2 edge nodes' kept aggregate replies .* \(0 nodes replied\)"):
            start(ledger, deployment, tmp_path)
        models.save(1, model, aggregate)
        (tmp_path / "trust.db").unlink()  # a store without round 1, which the chain anchored
        with pytest.raises(ResumeError, match="round 1: the trust store does not hold the records whose root is anchored on chain"):
            start(ledger, deployment, tmp_path)


COORDINATOR = """
import sys
from pathlib import Path
from ppbfl.protocol.ledger import attach_ledger
from tests.test_crash_resume import start, tier, updates_of

with attach_ledger(sys.argv[1], sys.argv[2]) as ledger:
    run = start(ledger, tier(Path(sys.argv[3])), Path(sys.argv[3]))
    close = ledger.close_commitments

    def closed_then_wait(round):
        seed = close(round)
        print("closed", round, flush=True)
        sys.stdin.readline()  # SIGKILL arrives here
        return seed

    ledger.close_commitments = closed_then_wait
    run.run_round(*updates_of(2))
"""


def test_a_coordinator_process_killed_with_sigkill_is_replaced_by_a_new_one(reference, tmp_path):
    expected, reputation, chain1 = reference
    chain1.restore(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", COORDINATOR, chain1.url, chain1.address, str(tmp_path)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), text=True, cwd=Path(__file__).resolve().parents[1],
    )
    try:
        line = proc.stdout.readline().strip()
        assert line == "closed 2", proc.stderr.read() if proc.poll() is not None else line
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    with attach_ledger(chain1.url, chain1.address) as attached:
        assert attached.contract.round_state(2).phase == Phase.COMMITTED
        # the edge tier restarts too (it lived in the killed process): new nodes, new keys, one setup
        run = start(attached, tier(tmp_path), tmp_path)
        assert (run.point.aborted, run.point.next_round) == (2, 3)
        run.run_round(*updates_of(2))
        stop(run)
        assert closed_rounds(attached) == [1, 3]
        assert record(attached, tmp_path) == expected
        assert run.keeper.reputation() == reputation


def test_a_restarted_coordinator_cannot_give_the_devices_new_chain_keys(reference, tmp_path):
    """The devices are registered on chain with their own keys: a new coordinator can neither
    register new ones nor run devices under keys other than the registered ones."""
    *_, chain1 = reference
    chain1.restore(tmp_path)
    deployment = tier(tmp_path)
    with attach_ledger(chain1.url, chain1.address) as ledger:
        coordinator = Coordinator(T, N, D, deployment.coordinator, codec=FixedPointCodec(), ledger=ledger, device_keys=deployment.device_keys)
        try:
            with pytest.raises(ConfigError, match=r"device_chain_keys.*device 0: the ledger's devices are registered already"):
                Federation(deployment, coordinator, range(M), ledger=ledger)
            others = {i: ChainKey.generate() for i in range(M)}
            with pytest.raises(ConfigError, match="device_chain_keys"):
                Federation(deployment, coordinator, range(M), ledger=ledger, device_chain_keys=others)
        finally:
            coordinator.close()


def test_on_a_chain_that_is_not_a_dev_chain_an_abort_waits_for_the_deadline_block(reference, tmp_path, monkeypatch):
    """A public node mines on its own schedule: ``abort_round`` reads the block number until the
    deadline passed (here each wait sees 3 new blocks), or gives up with a typed error."""
    *_, chain1 = reference
    chain1.restore(tmp_path)
    with attach_ledger(chain1.url, chain1.address) as ledger:
        ledger.open_round(2, ledger.contract.round_state(1).new_model_hash)
        chain = ledger.chain
        chain.target = "custom"  # nobody mines on request
        ledger.abort_wait_s, ledger.abort_poll_s = 0.2, 0.01
        monkeypatch.setattr("ppbfl.protocol.ledger.time.sleep", lambda seconds: None)  # no block comes
        with pytest.raises(RoundFailedError, match=r"round 2 failed: cannot abort yet: the deadline block \d+ did not come in 0.2 s"):
            ledger.abort_round(2)
        assert ledger.contract.round_state(2).phase == Phase.OPEN
        waits = []
        monkeypatch.setattr("ppbfl.protocol.ledger.time.sleep", lambda seconds: waits.append(seconds) or chain.mine(3))
        ledger.abort_wait_s = 30.0
        ledger.abort_round(2)
        assert ledger.contract.round_state(2).phase == Phase.FAILED and waits and max(waits) <= 0.01

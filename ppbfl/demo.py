"""``ppbfl demo``: the whole PPBFL round loop on a shipped medical dataset (DESIGN §1).

Per round:

1. every device trains one local epoch from the global model (torch MLP); 30 % of the devices are
   malicious (sign flip by default) and poison their update;
2. each device encodes its update in fixed point, Shamir-shares it among ``n`` edge nodes
   (seed-compressed), commits the shares' Merkle root on chain with a light PoW stamp and uploads
   each node its share over the transport (in-process, or gRPC + mutual TLS to edge-node processes);
3. the edge nodes check share consistency against a challenge fixed on chain after the
   commitments, compute ``<g_i, r>`` and ``||g_i||^2`` on shares (``r``: the update of a small clean
   root set, FLTrust-style, which every edge node also computes itself from the round's global model
   and the root-set spec ``--out``/reference.json, refusing a relayed ``r`` that is not its own) and
   open only those scalars; every node decides the same public
   weights ``w_i = max(0, cos_i)`` and clip ``min(1, ||r|| / ||g_i||)`` and returns its share of the
   weighted aggregate;
4. the aggregate is robustly reconstructed (a lying edge node is corrected and named), posted on
   chain with every decision, audited on chain at random coordinates, and applied to the model.

``--rule flame`` runs FLAME on shares instead (:mod:`ppbfl.protocol.flame_decision`): no root set
and no reference -- the nodes open the pairwise inner products of the updates, keep HDBSCAN's
majority cluster and clip to its median norm (``--flame-noise``: Gaussian noise added on shares);
every training sample then belongs to a device. ``--rescale`` makes the cosine rule scale every
accepted update to ``||r||`` as FLTrust does, instead of only clipping it.

IDS evidence (``ids``, on by default; ``--no-ids``): each round every edge node's gateway runs the
packaged detector on its own seeded view of the devices' telemetry (:mod:`ppbfl.ids.gateway`; the
malicious devices' streams contain attacks, the honest ones' normal traffic with benign
anomalies) and writes its counts where its node reads them; the demo asks every node for its
signed report (kind 5) and passes them to the round, so every node's trust vote combines them by
the ``(e + 1)``-th-largest rule (:mod:`ppbfl.trust.ids_reports`) and the anchored trust records
carry the agreed ``ids_flags``.

Beside it, plaintext FedAvg runs on the same devices under the same attack. The demo prints a
per-round table, writes ``rounds.json`` (the round log) and ``accuracy.png`` to ``--out``. Under
the backdoor attack it also reports, per round and at the end, the backdoor success rate of both
models (stamped non-target test samples classified as the target, :func:`ppbfl.fl.runner.backdoor_success`)
beside the untrained model's, the trigger's baseline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ppbfl.defense.rule import DecisionRule, load_decision_rule
from ppbfl.errors import PPBFLError
from ppbfl.field import GF61, FixedPointCodec, backend_name
from ppbfl.fl.aggregators import AggregationContext, FedAvg
from ppbfl.fl.attacks import make_attack
from ppbfl.fl.datasets import load_dataset
from ppbfl.fl.federation import Federation
from ppbfl.fl.models import build_model, get_flat
from ppbfl.fl.partition import iid_partition
from ppbfl.fl.reference import RootReference
from ppbfl.fl.runner import backdoor_success, train_round
from ppbfl.fl.training import TrainSettings, evaluate
from ppbfl.ids.gateway import Gateways, packaged_detector
from ppbfl.ids.reputation import FlagsFolder
from ppbfl.protocol.deployment import Deployment, GrpcDeployment, InProcessDeployment
from ppbfl.protocol.errors import PeerUnavailableError, RemoteError
from ppbfl.protocol.ledger import ChainLedger
from ppbfl.protocol.round import Coordinator, RoundResult
from ppbfl.protocol.trust_voter import RemoteTrustVoter
from ppbfl.trust import TrustConfig, initial_trust
from ppbfl.trust.catchup import TrustSigners
from ppbfl.trust.ids_reports import IdsReport, IdsSensors, lying_sensors
from ppbfl.trust.keeper import TrustKeeper, TrustVoter
from ppbfl.trust.store import TrustStore

__all__ = ["DemoConfig", "DemoConfigError", "DemoRound", "run_demo"]

DATASETS = ("breast_cancer", "heart_failure")
RULES = ("cosine", "flame")
TRANSPORTS = ("inprocess", "grpc")
CHAINS = ("embedded", "anvil")


class DemoConfigError(PPBFLError, ValueError):
    """A demo setting is out of range (names the setting)."""


@dataclass(frozen=True)
class DemoConfig:
    """Settings of :func:`run_demo` (the flags of ``ppbfl demo``)."""

    dataset: str = "breast_cancer"
    devices: int = 20
    malicious: float = 0.3
    attack: str = "sign_flip"
    rounds: int = 10
    t: int = 3
    n: int = 5
    hidden: int = 64
    lr: float = 0.1
    root_size: int = 20
    liar: int | None = 2
    kill_edge: int | None = None
    kill_round: int = 2
    transport: str = "inprocess"
    chain: str = "embedded"
    seed: int = 0
    out: str = "ppbfl-demo"
    rule: str = "cosine"
    flame_noise: float = 0.0
    rescale: bool = False
    ids: bool = True

    def check(self) -> None:
        """Raise :class:`DemoConfigError` naming the first bad setting."""
        if self.dataset not in DATASETS:
            raise DemoConfigError(f"dataset = {self.dataset!r}: expected one of {DATASETS}")
        if self.transport not in TRANSPORTS:
            raise DemoConfigError(f"transport = {self.transport!r}: expected one of {TRANSPORTS}")
        if self.chain not in CHAINS and not self.chain.startswith(("http://", "https://")):
            raise DemoConfigError(f"chain = {self.chain!r}: expected one of {CHAINS} or an http(s):// JSON-RPC URL")
        if not 2 <= self.devices <= 1000:
            raise DemoConfigError(f"devices = {self.devices}: expected 2..1000")
        if not 0 <= self.malicious < 1:
            raise DemoConfigError(f"malicious = {self.malicious}: expected a fraction in [0, 1)")
        if self.rounds < 1:
            raise DemoConfigError(f"rounds = {self.rounds}: expected >= 1")
        if not 1 <= self.t <= self.n or self.n < 2 * self.t - 1:
            raise DemoConfigError(f"(t, n) = ({self.t}, {self.n}): expected 1 <= t and n >= 2t - 1")
        for name, node in (("liar", self.liar), ("kill_edge", self.kill_edge)):
            if node is not None and not 1 <= node <= self.n:
                raise DemoConfigError(f"{name} = {node}: edge nodes are numbered 1..{self.n}")
        if self.liar is not None and self.liar == self.kill_edge:
            raise DemoConfigError("liar and kill_edge name the same edge node")
        if self.liar is not None and self.n - self.t < 2:
            raise DemoConfigError(f"a lying edge node is corrected only with n >= t + 2 = {self.t + 2} edge nodes")
        if self.rule not in RULES:
            raise DemoConfigError(f"rule = {self.rule!r}: expected one of {RULES}")
        if not 0.0 <= self.flame_noise < float("inf") or (self.flame_noise > 0 and self.rule != "flame"):
            raise DemoConfigError(f"flame_noise = {self.flame_noise!r}: expected a finite number >= 0, and 0 unless rule = 'flame'")
        if self.rescale and self.rule != "cosine":
            raise DemoConfigError(f"rescale: FLTrust's norm rescaling is an option of rule 'cosine', not {self.rule!r}")
        if self.ids and self.kill_edge is not None and lying_sensors(self.n, self.t) < 1:  # every node's report in the quorum n - e
            raise DemoConfigError(
                f"ids: with kill_edge = {self.kill_edge} only {self.n - 1} edge nodes report, (t, n) = ({self.t}, {self.n}) "
                f"gives e = 0 and a quorum of {self.n} reports; turn IDS off (--no-ids) or use n >= t + 2"
            )
        if self.rule == "flame" and self.kill_edge is not None and self.n - 1 < 2 * self.t - 1:
            raise DemoConfigError(
                f"kill_edge = {self.kill_edge}: rule 'flame' needs 2t - 1 = {2 * self.t - 1} edge nodes online, n - 1 = {self.n - 1} would be"
            )


@dataclass(frozen=True)
class DemoRound:
    """One row of the demo's round log."""

    round: int
    secure_accuracy: float
    fedavg_accuracy: float
    accepted: list[int]
    rejected: dict[int, str]
    malicious_rejected: int
    honest_rejected: int
    mode: str
    online_edge_nodes: list[int]
    dropped_edge_nodes: list[int]
    named_liars: list[int]
    gas: int
    seconds: float
    timings: dict[str, float]
    trust: dict[int, float] | None = None  # reputation after the round (ppbfl.trust)
    quarantined: list[int] | None = None
    secure_backdoor: float | None = None
    fedavg_backdoor: float | None = None
    ids_flags: dict[int, int] | None = None  # agreed IDS flags per device (the trust records' evidence)
    ids_counts: dict[int, dict[int, int]] | None = None  # edge node -> its signed report's counts (devices > 0)


def run_demo(config: DemoConfig, log: Callable[[str], None] = print) -> list[DemoRound]:
    """Run the demo; returns one :class:`DemoRound` per round and writes ``rounds.json`` and ``accuracy.png``."""
    config.check()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small MLP: more threads only contend with the kernels' pool
    try:
        return _run(config, log)
    finally:
        torch.set_num_threads(threads)


def _run(config: DemoConfig, log: Callable[[str], None]) -> list[DemoRound]:
    from ppbfl.protocol.ledger import open_ledger

    started = time.perf_counter()
    data = load_dataset(config.dataset, seed=config.seed)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(data.y_train))
    root_size = config.root_size if config.rule == "cosine" else 0  # FLAME needs no trusted root set
    root, pool = order[:root_size], order[root_size:]
    parts = [pool[p] for p in iid_partition(data.y_train[pool], config.devices, rng)]
    malicious = tuple(sorted(rng.permutation(config.devices)[: round(config.malicious * config.devices)].tolist()))
    attack = make_attack(config.attack)
    trigger = attack.backdoor if malicious else None
    settings = TrainSettings(epochs=1, batch_size=16, lr=config.lr)
    model = build_model("mlp", data.n_features, data.n_classes, hidden=config.hidden, seed=config.seed)
    secure_params = get_flat(model)
    fedavg_params = secure_params.copy()
    d = secure_params.size
    baseline = None if trigger is None else backdoor_success(model, secure_params, data, trigger)
    spec = None if config.rule == "flame" else RootReference.spec_for(  # the consortium's root set: FLAME has none
        config.dataset, root.tolist(), split_seed=config.seed, hidden=config.hidden, epochs=settings.epochs, batch_size=settings.batch_size,
        lr=settings.lr, seed=config.seed,
    )
    codec = FixedPointCodec()
    behaviours = {config.liar: "tamper-aggregate"} if config.liar else {}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("ids/edge-*/round-*.json"):  # the gateways' counts: fresh each run
        old.unlink()
    if spec is not None:  # what every edge node's operator loads (`ppbfl edge --reference`)
        spec.write(out / "reference.json")
    root_reference = None if spec is None else RootReference.from_spec(spec)  # the coordinator's own
    log(
        f"ppbfl demo: {config.dataset}, {config.devices} devices ({len(malicious)} malicious: {config.attack}), "
        f"(t, n) = ({config.t}, {config.n}) edge nodes, {d} parameters, field {GF61!r}, backend {backend_name()}, "
        f"transport {config.transport}, chain {config.chain}, rule {_rule_label(config)}"
    )
    rows: list[DemoRound] = []
    rule = load_decision_rule({"rule": config.rule, "rescale": config.rescale, "flame_noise": float(config.flame_noise)})  # every operator's
    with ExitStack() as stack:
        deployment: Deployment
        if config.transport == "grpc" and config.chain != "embedded":
            # the edge and dealer processes read identities from the contract: it exists first, and
            # the deployment registers every certificate in it before that party calls
            ledger = stack.enter_context(open_ledger(config.chain, config.t, config.n, devices=config.devices, trust=initial_trust(DEMO_TRUST)))
            deployment = stack.enter_context(_grpc_deployment(config, out, d, behaviours, rule, ledger, spec is not None))
        else:
            if config.transport == "grpc":  # the embedded chain lives in this process: the processes read the manifest
                deployment = stack.enter_context(_grpc_deployment(config, out, d, behaviours, rule, None, spec is not None))
            else:
                deployment = stack.enter_context(InProcessDeployment(config.t, config.n, d, behaviours=behaviours, signed_uploads=True, decision_rule=rule))
                for party, node in deployment.nodes.items():
                    if config.ids:  # each node signs what its gateway wrote, as `ppbfl edge --ids-flags` does
                        node.ids_source = FlagsFolder(out / "ids" / party)
                    if spec is not None:  # each node computes the reference itself, as `ppbfl edge --reference` does
                        node.reference_source = RootReference.from_spec(spec)
            ledger = stack.enter_context(open_ledger(
                config.chain, config.t, config.n, devices=config.devices, edge_accounts=deployment.edge_accounts,
                fingerprints=deployment.fingerprints, trust=initial_trust(DEMO_TRUST),
            ))  # registered with the model's initial trust: round 1's PoW difficulty follows it
        ledger.verify_fingerprints(deployment.fingerprints)  # the certificates the transports pin are the registered ones
        coordinator = Coordinator(
            config.t, config.n, d, deployment.coordinator, codec=codec, ledger=ledger, timeout=30.0, device_keys=deployment.device_keys,
            rule=config.rule, flame_noise=config.flame_noise, rescale=config.rescale, registry=deployment.peer_registry(),
        )
        coordinator.setup()
        # the devices: clients with their own transport and chain account, driven by the simulation
        keeper = _trust_keeper(out, config.devices, ledger, deployment)
        stack.callback(keeper.store.close)
        federation = stack.enter_context(Federation(deployment, coordinator, range(config.devices), ledger=ledger, trust=keeper))
        gateways: Gateways | None = None
        reporters: dict[int, RemoteTrustVoter] = {}
        if config.ids:
            gateways = Gateways(packaged_detector(), out / "ids", config.devices, malicious, config.seed)
            reporters = {j: RemoteTrustVoter(deployment.coordinator, j, account, config.devices) for j, account in sorted(ledger.edge_accounts.items())}
            log(_ids_label(gateways, IdsSensors.of(TrustSigners.of(ledger.edge_accounts.values(), config.t))))
        log(f"set up in {time.perf_counter() - started:.1f}s: edge nodes ready {coordinator.online}, contract {ledger.address}")
        header = f"{'round':>5} {'secure':>7} {'FedAvg':>7} {'accepted':>8} {'rejected (malicious)':>21} {'mode':>15} {'liars':>6} {'gas':>9} {'time':>6} {'trust h/m':>9} {'quarantined':>11}"
        if gateways is not None:
            header += f" {'IDS m/h':>9}"
        if trigger is not None:
            log(f"backdoor: trigger {list(trigger.features)} = {trigger.value} -> class {trigger.target}; "
                f"success rate of the untrained model {baseline:.3f}")
            header += f" {'backdoor secure/FedAvg':>22}"
        log(header)
        for rnd in range(1, config.rounds + 1):
            if config.kill_edge is not None and rnd == config.kill_round:
                deployment.stop_edge(config.kill_edge)
                log(f"      edge node {config.kill_edge} goes offline")
            tick = time.perf_counter()
            def generator(dev: int, rnd: int = rnd) -> torch.Generator:
                return torch.Generator().manual_seed(config.seed * 1_000_003 + rnd * 1009 + dev)

            updates = train_round(model, secure_params, data, parts, malicious, attack, settings, config.seed, rnd, generator)
            reference = np.zeros(d) if root_reference is None else root_reference(rnd, secure_params)  # FLAME: no reference
            trained = time.perf_counter() - tick
            reports: dict[int, IdsReport] = {}
            if gateways is not None:
                gateways.observe(rnd, range(1, config.n + 1))
                reports = _ids_reports(reporters, rnd, ledger)
            result: RoundResult = federation.run_round(
                rnd, {i: updates[i] for i in range(config.devices)}, reference, model_hash=ledger.model_hash(secure_params),
                ids_reports=list(reports.values()), model=None if root_reference is None else secure_params,
            )
            agreed = None if gateways is None or keeper.last is None else {x.device: x.evidence.ids_flags for x in keeper.last.records}
            secure_params = (secure_params + result.aggregate).astype(np.float32)
            plain = train_round(model, fedavg_params, data, parts, malicious, attack, settings, config.seed, rnd, generator)
            fedavg_step, _ = FedAvg().aggregate(plain, AggregationContext(weights=np.ones(config.devices)))
            fedavg_params = (fedavg_params + fedavg_step).astype(np.float32)
            secure_acc, _ = evaluate(model, secure_params, data.x_test, data.y_test, data.n_classes)
            fedavg_acc, _ = evaluate(model, fedavg_params, data.x_test, data.y_test, data.n_classes)
            rejected = result.rejected
            row = DemoRound(
                rnd, float(secure_acc), float(fedavg_acc), result.accepted, rejected,
                sum(1 for i in rejected if i in malicious), sum(1 for i in rejected if i not in malicious),
                result.mode, list(result.online), sorted(result.dropped), list(result.liars), int(result.gas),
                time.perf_counter() - tick, {"train": trained, **result.timings},
                keeper.reputation(), list(keeper.quarantined),
                secure_backdoor=None if trigger is None else backdoor_success(model, secure_params, data, trigger),
                fedavg_backdoor=None if trigger is None else backdoor_success(model, fedavg_params, data, trigger),
                ids_flags=agreed, ids_counts=None if gateways is None else {j: x.counts() for j, x in reports.items()},
            )
            honest_trust = np.mean([t for i, t in (row.trust or {}).items() if i not in malicious])
            malicious_trust = np.mean([t for i, t in (row.trust or {}).items() if i in malicious]) if malicious else float("nan")
            rows.append(row)
            log(
                f"{rnd:>5} {secure_acc:>7.3f} {fedavg_acc:>7.3f} {len(row.accepted):>8} "
                f"{f'{len(rejected)} ({row.malicious_rejected}/{len(malicious)})':>21} {row.mode:>15} "
                f"{row.named_liars or '-'!s:>6} {row.gas:>9} {row.seconds:>5.2f}s "
                f"{f'{honest_trust:.2f}/{malicious_trust:.2f}':>9} {len(keeper.quarantined):>11}"
                + (f" {f'{row.secure_backdoor:.3f}/{row.fedavg_backdoor:.3f}':>22}" if trigger is not None else "")
                + ("" if agreed is None else f" {_ids_cell(agreed, malicious):>9}")
            )
    _write(out, config, rows, list(malicious))
    last = rows[-1]
    log(
        f"after {config.rounds} rounds: ppbfl (secure) {last.secure_accuracy:.3f} vs plaintext FedAvg {last.fedavg_accuracy:.3f} "
        f"under {config.attack}; malicious devices rejected in every round: "
        f"{all(r.malicious_rejected == len(malicious) for r in rows)}; honest devices rejected: "
        f"{sum(r.honest_rejected for r in rows)} in total; lying edge nodes named: {sorted({j for r in rows for j in r.named_liars})}"
    )
    if last.secure_backdoor is not None:
        log(f"backdoor success after {config.rounds} rounds: ppbfl (secure) {last.secure_backdoor:.3f} vs plaintext FedAvg "
            f"{last.fedavg_backdoor:.3f} (untrained model {baseline:.3f})")
    log(f"wrote {out / 'rounds.json'} and {out / 'accuracy.png'} ({time.perf_counter() - started:.1f}s in all)")
    return rows


def _ids_label(gateways: Gateways, sensors: IdsSensors) -> str:
    """The IDS setting in words: the detector, the gateways' views and what e the tier gives."""
    e = sensors.liars
    rule = (f"the agreed count of a device is the ({e} + 1) = {_ordinal(e + 1)} largest of the nodes' counts (robust to {e} lying sensor(s))" if e
            else "the agreed count of a device is the LARGEST of the nodes' counts (e = 0: the rule is the max, one lying sensor can frame a device)")
    return (f"IDS: packaged LSTM detector (ppbfl/ids/detector.pt) at every edge node's gateway, each seeing its own seeded "
            f"{gateways.share:.0%} of every device's telemetry windows; e = floor((n - t) / 2) = {e}: {rule}; quorum {sensors.quorum} reports; "
            f"column 'IDS m/h': agreed flagged windows of the malicious / honest devices")


def _ordinal(k: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ... (k >= 1; the tiers' e + 1 stays small)."""
    return f"{k}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(k if k < 20 else k % 10, 'th')}"


def _ids_reports(reporters: dict[int, RemoteTrustVoter], round: int, ledger: ChainLedger) -> dict[int, IdsReport]:
    """Node index -> its signed IDS report of ``round``, asked through the coordinator's transport
    and checked (:meth:`RemoteTrustVoter.ids_report`); a node that does not answer (offline) reports nothing."""
    reports = {}
    for j, voter in reporters.items():
        try:
            reports[j] = voter.ids_report(round, ledger.context)
        except (PeerUnavailableError, RemoteError):
            continue
    return reports


def _ids_cell(agreed: dict[int, int], malicious: tuple[int, ...]) -> str:
    """``<malicious devices' agreed flags>/<honest devices'>`` of one round."""
    return f"{sum(c for i, c in agreed.items() if i in malicious)}/{sum(c for i, c in agreed.items() if i not in malicious)}"


def _rule_label(config: DemoConfig) -> str:
    """The decision rule in words: ``cosine`` / ``cosine, rescaled`` / ``flame`` / ``flame, noise 0.001``."""
    if config.rule == "flame":
        return "flame" + (f", noise {config.flame_noise:g}" if config.flame_noise > 0 else "")
    return "cosine, rescaled" if config.rescale else "cosine"


DEMO_TRUST = TrustConfig(pow_max_bits=14)
"""The demo's trust model: the defaults, PoW capped at 14 bits (see :func:`_trust_keeper`)."""


def _grpc_deployment(
    config: DemoConfig, out: Path, d: int, behaviours: dict[int, str], rule: DecisionRule, ledger: ChainLedger | None, reference: bool,
) -> GrpcDeployment:
    """The demo's edge and dealer processes, each node keeping its trust states in ``out/edge-<j>``
    (fresh each run); with ``ledger``, identities come from its contract (:class:`GrpcDeployment`);
    ``reference``: each node loads the root-set spec ``out/reference.json`` and computes the reference itself."""
    for old in out.glob("edge-*/trust.db"):  # fresh each run, as out/trust.db
        old.unlink()
    return GrpcDeployment(
        config.t, config.n, d, behaviours=behaviours, signed_uploads=True,
        trust_config=DEMO_TRUST, trust_devices=config.devices, trust_dir=out, decision_rule=rule, ledger=ledger,
        ids_flags_dir=out / "ids" if config.ids else None, reference=out / "reference.json" if reference else None,
        ready_timeout=180.0 if reference else 60.0,  # loading the spec imports torch and sklearn in each process (~6 s each, on shared cores)
    )


def _trust_keeper(out: Path, devices: int, ledger: ChainLedger, deployment: Deployment) -> TrustKeeper:
    """Reputation kept in ``out/trust.db`` (fresh each run: ``ppbfl trust show DEVICE --store sqlite:///out/trust.db``).

    PoW up to 14 bits (a quarantined device hashes ~2^14 nonces, ~30 ms here) so the demo stays
    under a minute; the library default goes to 22 bits. On chain: the edge nodes compute and sign
    each round's update themselves, in process or, over gRPC, each edge process with its own store
    ``out/edge-<j>/trust.db`` (:meth:`GrpcDeployment.trust_voters`; the coordinator relays)."""
    (out / "trust.db").unlink(missing_ok=True)
    store = TrustStore(f"sqlite:///{out / 'trust.db'}")
    voters: list[TrustVoter]
    if isinstance(deployment, GrpcDeployment):
        voters = list(deployment.trust_voters(ledger.edge_accounts))
    else:
        assert isinstance(deployment, InProcessDeployment)
        voters = list(deployment.nodes.values())
    return TrustKeeper(range(devices), DEMO_TRUST, store=store, ledger=ledger, voters=voters)


def _write(out: Path, config: DemoConfig, rows: list[DemoRound], malicious: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = {"config": asdict(config), "malicious_devices": malicious, "rounds": [asdict(r) for r in rows]}
    (out / "rounds.json").write_text(json.dumps(log, indent=2, default=str))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [r.round for r in rows]
    ax.plot(xs, [r.secure_accuracy for r in rows], marker="o", label=f"ppbfl (secure, {_rule_label(config)}, on chain)")
    ax.plot(xs, [r.fedavg_accuracy for r in rows], marker="s", label="plaintext FedAvg")
    if rows[0].secure_backdoor is not None:
        ax.plot(xs, np.array([r.secure_backdoor for r in rows], dtype=float), linestyle="--", marker="o", color="C0", label="backdoor success (secure)")
        ax.plot(xs, np.array([r.fedavg_backdoor for r in rows], dtype=float), linestyle="--", marker="s", color="C1", label="backdoor success (FedAvg)")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy" if rows[0].secure_backdoor is None else "test accuracy / backdoor success")
    ax.set_ylim(0, 1)
    ax.set_title(f"{config.dataset}: {len(malicious)}/{config.devices} devices {config.attack}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)

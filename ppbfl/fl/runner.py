"""Run an experiment grid: every cell is one seeded federated training simulation.

Per cell (dataset, attack, malicious fraction, defence, seed):

1. load the dataset with the split fixed by ``seed``; the server keeps ``root_size`` clean training
   samples (FLTrust's root set; removed from the devices' pool for every defence so that cells
   compare on the same data); the rest is partitioned over ``devices`` (IID or Dirichlet);
2. ``round(fraction * devices)`` malicious devices are the first of a seeded permutation (the same
   devices for every defence and attack at one seed), or the first of ``federation.malicious_devices``
   when the config lists them; they are recorded in the results;
3. each round every device trains locally from the global model; malicious devices poison their
   data and/or update (a field-level attack, ``out_of_range``, acts on the shared field elements
   instead: :func:`apply_field_attack`); the defence aggregates the ``(devices, d)`` updates; the global model moves
   by the aggregate; test accuracy, the backdoor success rate (when there is a trigger) and, for
   rules that exclude devices, the detection rates of malicious and honest devices
   (:mod:`ppbfl.fl.detection`) are recorded per round;
4. with trust (``cell.trust``: the secure rules, on by default, :data:`~ppbfl.fl.config.TRUST_RULES`)
   the run's protocol rounds are recorded on an embedded py-evm chain of their own
   (:func:`ppbfl.trust.onchain.chained_federation`, as the demo's rounds): every round is weighted
   with the trust agreed on chain (0 in quarantine), each device stamps its commitment at the PoW
   difficulty the contract derives from its trust, the edge nodes compute and sign the trust
   update, and ``commitTrust`` anchors the round's records. Each device's reputation, the
   quarantined devices, and the chain's record of the round (anchored root, trust words, PoW bits
   per device, gas: :class:`~ppbfl.trust.onchain.ChainRoundFacts`) are recorded after each round.
   With ``trust_chain=False`` (``[trust] chain = false``) a :class:`~ppbfl.trust.keeper.TrustKeeper`
   without a chain (in-memory store) weights the rounds instead: no agreement, anchoring or PoW,
   and the results say so (``trust_chain`` off). The chain costs about 3 s per round at 10 devices
   (py-evm; 0.28 s -> 3.3 s measured, reports/trust/README.md), plus the PoW the devices' trust
   sets (a quarantined device hashes ~2^pow_max_bits nonces a round).

Randomness derives only from the seed (NumPy ``default_rng`` / ``torch.Generator``; the secure
defence's share randomness and challenge from ``(seed, round)``), so the same config and seed give
identical results (wall time is reported separately).

A cell that raises is recorded, not fatal: :func:`run_experiment` turns any exception of one cell
into a failed :class:`CellResult` (its error type and message) and goes on with the grid.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from ppbfl.fl.aggregation import Aggregator
from ppbfl.fl.aggregators import GLOBAL_MODEL, AggregationContext, make_aggregator
from ppbfl.fl.attacks import Attack, Backdoor, make_attack
from ppbfl.fl.config import TRUST_RULES, Cell, ExperimentConfig, Federation
from ppbfl.fl.datasets import Dataset, load_csv, load_dataset
from ppbfl.fl.detection import detection_rates, excluded_devices
from ppbfl.fl.errors import ConfigError, PartitionError
from ppbfl.fl.models import build_model, get_flat
from ppbfl.fl.partition import partition
from ppbfl.fl.secure_aggregator import TRUST, TRUST_CHAIN
from ppbfl.fl.training import TrainSettings, evaluate, local_update, predict
from ppbfl.trust.config import TrustConfig

if TYPE_CHECKING:
    from ppbfl.trust.keeper import TrustKeeper
    from ppbfl.trust.onchain import ChainRoundFacts

__all__ = ["CellResult", "apply_field_attack", "backdoor_success", "device_generator", "failed_result", "get_dataset", "run_cell", "run_experiment", "train_round"]


@dataclass
class CellResult:
    """Outcome of one cell. ``accuracy_per_round: (rounds,)``; ``per_class_recall: (n_classes,)``.

    ``backdoor_per_round: (rounds,)`` the backdoor success rate after each round (empty without a
    trigger); ``extra["aggregate_max_abs"]: (rounds,)`` the largest entry of each round's aggregate
    (not written to the reports: a diagnostic of update-level damage); ``tpr_per_round`` / ``fpr_per_round: (rounds,)`` the defence's detection rates of
    malicious / honest devices (:mod:`ppbfl.fl.detection`; None for a rule that does not exclude
    devices, and the TPR also when no device is malicious).

    With trust (``cell.trust``): ``trust_per_round: (rounds, devices)`` each device's reputation in
    [0, 1] after each round, ``quarantined_per_round``: the devices in quarantine after each round
    (both None without trust); ``chain_per_round``: what the run's chain holds for each round
    (:class:`~ppbfl.trust.onchain.ChainRoundFacts`: anchored root, trust words, PoW bits per device,
    gas; None without trust or with ``trust_chain=False``).

    A failed cell (``error_type`` set) has no accuracy; ``error_message`` is the exception's text.
    """

    cell: Cell
    malicious_devices: tuple[int, ...]
    accuracy_per_round: list[float]
    per_class_recall: list[float]
    backdoor_success: float | None
    wall_time_s: float
    extra: dict[str, object] = field(default_factory=dict)
    error_type: str | None = None
    error_message: str | None = None
    backdoor_per_round: list[float] = field(default_factory=list)
    tpr_per_round: list[float] | None = None
    fpr_per_round: list[float] | None = None
    trust_per_round: list[list[float]] | None = None
    quarantined_per_round: list[list[int]] | None = None
    chain_per_round: list[ChainRoundFacts] | None = None

    def quarantine_round(self, device: int) -> int | None:
        """The first round (from 1) after which ``device`` was in quarantine (None: never, or no trust)."""
        return next((k + 1 for k, q in enumerate(self.quarantined_per_round or []) if device in q), None)

    @property
    def false_quarantines(self) -> int | None:
        """Honest device-rounds spent in quarantine (None without trust)."""
        if self.quarantined_per_round is None:
            return None
        return sum(1 for q in self.quarantined_per_round for i in q if i not in self.malicious_devices)

    @property
    def detection_tpr(self) -> float | None:
        """Mean over rounds of the fraction of malicious devices excluded (None: not a per-device rule, or no malicious devices)."""
        return None if not self.tpr_per_round else float(np.mean(self.tpr_per_round))

    @property
    def detection_fpr(self) -> float | None:
        """Mean over rounds of the fraction of honest devices excluded (None: not a per-device rule)."""
        return None if not self.fpr_per_round else float(np.mean(self.fpr_per_round))

    @property
    def failed(self) -> bool:
        """Whether the cell raised instead of finishing."""
        return self.error_type is not None

    @property
    def final_accuracy(self) -> float | None:
        """Test accuracy after the last round (None for a failed cell)."""
        return None if self.failed or not self.accuracy_per_round else self.accuracy_per_round[-1]


_CACHE: dict[tuple[str, int, float], Dataset] = {}


def get_dataset(name: str, seed: int, test_fraction: float) -> Dataset:
    """Load (and cache) a shipped dataset or ``csv:PATH:LABEL``."""
    key = (name, seed, test_fraction)
    if key not in _CACHE:
        if name.startswith("csv:"):
            path, label = name[4:].rsplit(":", 1)
            _CACHE[key] = load_csv(path, label, seed=seed, test_fraction=test_fraction, name=name)
        else:
            _CACHE[key] = load_dataset(name, seed=seed, test_fraction=test_fraction)
    return _CACHE[key]


def backdoor_success(model: torch.nn.Module, params: np.ndarray, data: Dataset, trigger: Backdoor) -> float:
    """The backdoor success rate of ``params`` ((d,) float32 for ``model``): the fraction of test
    samples whose label is not ``trigger.target`` that the model assigns to the target once stamped."""
    keep = data.y_test != trigger.target
    return float(np.mean(predict(model, params, trigger.stamp(data.x_test[keep])) == trigger.target))


def device_generator(seed: int, round_: int, device: int) -> torch.Generator:
    """The torch generator of ``device``'s local training in round ``round_`` (a function of the seed only)."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + round_) * 10_007 + device) % (2**63))


def train_round(
    model: torch.nn.Module,
    params: np.ndarray,
    data: Dataset,
    parts: list[np.ndarray],
    malicious: tuple[int, ...],
    attack: Attack,
    settings: TrainSettings,
    seed: int,
    round_: int,
    generator: Callable[[int], torch.Generator] | None = None,
) -> np.ndarray:
    """Every device's update from the global ``params`` ((d,) float32): (devices, d) float32.

    Device ``dev`` trains on ``data.x_train[parts[dev]]``; the ``malicious`` devices (sorted
    indices) poison their data and then their update with ``attack.for_round(round_)``, the update
    attacks seeing the mean of the malicious devices' own updates. Randomness derives from ``(seed, round_, dev)`` only: the
    poisoning's NumPy generators, and device ``dev``'s torch generator ``generator(dev)``
    (default :func:`device_generator`).
    """
    attack = attack.for_round(round_)
    if generator is None:
        def generator(dev: int) -> torch.Generator:
            return device_generator(seed, round_, dev)

    updates = np.empty((len(parts), params.size), dtype=np.float32)
    for dev, idx in enumerate(parts):
        x, y = data.x_train[idx], data.y_train[idx]
        if dev in malicious:
            x, y = attack.poison_data(x, y, data.n_classes, np.random.default_rng([seed, round_, dev, 1]))
        updates[dev] = local_update(model, params, x, y, settings, generator(dev))
    if malicious:
        reference = updates[list(malicious)].mean(axis=0)
        for dev in malicious:
            updates[dev] = attack.poison_update(updates[dev], reference, np.random.default_rng([seed, round_, dev, 2]))
    return updates


def run_cell(
    cell: Cell,
    federation: Federation,
    attack_params: dict | None = None,
    defence_params: dict | None = None,
    probe: Backdoor | None = None,
    trust: TrustConfig | None = None,
    trust_chain: bool = True,
) -> CellResult:
    """Run one federated simulation and return its :class:`CellResult`.

    The backdoor success rate is measured with the cell's own backdoor trigger, or with ``probe``
    when the cell runs no backdoor (the runner passes it to clean cells: the rate a trigger reaches
    without any attack, the baseline to compare against). ``trust``: the reputation model of a
    cell with ``cell.trust`` (default ``TrustConfig()``); ``trust_chain``: its rounds run on an
    embedded chain that agrees, anchors and applies trust (default; False: an off-chain keeper).

    Raises:
        ConfigError: ``cell.trust`` for a rule outside :data:`~ppbfl.fl.config.TRUST_RULES` (key ``grid.trust``).
    """
    start = time.perf_counter()
    if cell.trust and cell.defence not in TRUST_RULES:
        raise ConfigError("grid.trust", f"{cell.defence} runs no protocol rounds to keep trust from (only {', '.join(TRUST_RULES)})")
    fed = federation
    data = get_dataset(cell.dataset, cell.seed, fed.test_fraction)
    rng = np.random.default_rng(cell.seed)
    n_train = len(data.y_train)
    root_size = fed.root_size_for(data.n_classes)
    if root_size >= n_train:
        raise PartitionError(f"root_size {root_size} leaves no training data of {cell.dataset} for the devices")
    order = rng.permutation(n_train)
    root_idx, pool_idx = np.sort(order[:root_size]), np.sort(order[root_size:])
    parts = partition(data.y_train[pool_idx], fed.devices, fed.partition, rng, alpha=fed.alpha, min_samples=fed.min_samples)
    parts = [pool_idx[p] for p in parts]
    k = round(cell.fraction * fed.devices) if cell.attack != "none" else 0
    chosen = rng.permutation(fed.devices)  # drawn always, so the stream does not depend on the key
    if fed.malicious_devices is not None:
        chosen = np.asarray(fed.malicious_devices, dtype=np.int64)
    if k > len(chosen) or (k and chosen[:k].max() >= fed.devices):
        raise PartitionError(f"cannot pick {k} malicious devices out of {list(chosen)} with {fed.devices} devices")
    malicious = tuple(sorted(int(i) for i in chosen[:k]))
    attack = make_attack(cell.attack, (attack_params or {}).get(cell.attack))
    defence = make_aggregator(cell.defence, (defence_params or {}).get(cell.defence))
    trigger = (attack.backdoor if malicious else None) or probe
    if trigger is not None and max(trigger.features, default=-1) >= data.n_features:
        raise ConfigError("attack_params.backdoor.features",
                          f"index {max(trigger.features)} >= {data.n_features} features of {cell.dataset}")

    keeper = _keeper(fed.devices, trust) if cell.trust and not trust_chain else None
    chained = cell.trust and trust_chain
    reputation: list[list[float]] = []
    quarantined: list[list[int]] = []
    facts: list[ChainRoundFacts] = []
    field_attack = bool(malicious) and attack.field_level
    model = build_model(fed.model, data.n_features, data.n_classes, hidden=fed.hidden, image_shape=data.image_shape, seed=cell.seed)
    params = get_flat(model)
    settings = TrainSettings(fed.local_epochs, fed.batch_size, fed.lr)
    weights = np.array([len(p) for p in parts], dtype=np.float64)
    accuracy: list[float] = []
    backdoor: list[float] = []
    largest: list[float] = []
    tpr: list[float | None] = []
    fpr: list[float | None] = []
    device_rule = True
    recall = np.zeros(data.n_classes)
    try:
        for r in range(fed.rounds):
            updates = train_round(model, params, data, parts, malicious, attack, settings, cell.seed, r)
            context = AggregationContext(weights=weights, n_malicious=len(malicious), seed=cell.seed, round=r)
            context.extra[GLOBAL_MODEL] = params
            if keeper is not None:
                context.extra[TRUST] = keeper.round_trust()
            if chained:
                context.extra[TRUST_CHAIN] = TrustConfig() if trust is None else trust
            if defence.needs_reference or field_attack:
                context.reference = local_update(
                    model, params, data.x_train[root_idx], data.y_train[root_idx], settings, device_generator(cell.seed, r, fed.devices)
                )
            if field_attack:
                assert context.reference is not None
                updates = apply_field_attack(attack, malicious, updates, context, defence, defence_params)
            aggregate, info = defence.aggregate(updates, context)
            if keeper is not None:
                keeper.after_round(info["round"])
                reputation.append([keeper.reputation()[i] for i in range(fed.devices)])
                quarantined.append(list(keeper.quarantined))
            if chained:
                fact = info["chain"]
                facts.append(fact)
                reputation.append([fact.trust.trust(i) for i in range(fed.devices)])
                quarantined.append(list(fact.trust.quarantined))
            excluded = excluded_devices(cell.defence, info, fed.devices)
            if excluded is None:
                device_rule = False
            else:
                rates = detection_rates(excluded, malicious, fed.devices)
                tpr.append(rates[0])
                fpr.append(rates[1])
            largest.append(float(np.max(np.abs(aggregate))))
            params = (params + aggregate).astype(np.float32)
            acc, recall = evaluate(model, params, data.x_test, data.y_test, data.n_classes)
            accuracy.append(acc)
            if trigger is not None:
                backdoor.append(backdoor_success(model, params, data, trigger))
    finally:
        defence.close()  # e.g. the secure rule's in-process deployment
        if keeper is not None:
            keeper.store.close()
    return CellResult(
        cell, malicious, accuracy, [float(v) for v in recall], backdoor[-1] if backdoor else None, time.perf_counter() - start,
        extra={"aggregate_max_abs": largest},
        backdoor_per_round=backdoor, tpr_per_round=_rates(tpr) if device_rule else None,
        fpr_per_round=_rates(fpr) if device_rule else None,
        trust_per_round=reputation if cell.trust else None,
        quarantined_per_round=quarantined if cell.trust else None,
        chain_per_round=facts if chained else None,
    )


def _keeper(devices: int, config: TrustConfig | None) -> TrustKeeper:
    """A run's trust keeper: ``devices`` devices, an in-memory store, no chain."""
    from ppbfl.trust.keeper import TrustKeeper

    return TrustKeeper(range(devices), config)


def apply_field_attack(
    attack: Attack, malicious: tuple[int, ...], updates: np.ndarray, context: AggregationContext, defence: Aggregator,
    defence_params: dict | None,
) -> np.ndarray:
    """Route a field-level attack (``attack.field_level``, :mod:`ppbfl.fl.field_attacks`) to ``defence``.

    The secure rule gets the malicious devices in ``context.extra`` and they share the crafted field
    vectors through the protocol; ``updates`` ((m, d) float32) are returned unchanged. Any other
    rule gets a copy of ``updates`` whose malicious rows are the decoded vectors those devices
    effectively contribute (:func:`~ppbfl.fl.field_attacks.effective_update` under the codec the
    secure rule would use for this round: ``defence_params.ppbfl_secure``).
    """
    from ppbfl.fl.field_attacks import FieldAttackRound, effective_update
    from ppbfl.fl.secure_aggregator import FIELD_ATTACK, SecureCosineAggregator

    magnitude = int(getattr(attack, "magnitude", 1 << 50))
    if isinstance(defence, SecureCosineAggregator):
        context.extra[FIELD_ATTACK] = (FieldAttackRound(magnitude=magnitude), malicious)
        return updates
    secure = make_aggregator("ppbfl_secure", (defence_params or {}).get("ppbfl_secure"))
    assert isinstance(secure, SecureCosineAggregator) and context.reference is not None
    codec = secure.codec(updates.shape[1], updates.shape[0])
    attacked = updates.copy()
    for dev in malicious:
        attacked[dev] = effective_update(updates[dev], context.reference, codec, magnitude=magnitude).astype(np.float32)
    return attacked


def _rates(values: list[float | None]) -> list[float] | None:
    """Per-round rates, or None when a rate is undefined in every round (no malicious devices)."""
    known = [v for v in values if v is not None]
    return known if len(known) == len(values) else None


def failed_result(cell: Cell, error: Exception, wall_time_s: float) -> CellResult:
    """The record of a cell that raised ``error``: no accuracy, the error's type name and message."""
    return CellResult(cell, (), [], [], None, wall_time_s, error_type=type(error).__name__, error_message=str(error))


def _run_recorded(
    cell: Cell, federation: Federation, attack_params: dict | None, defence_params: dict | None, probe: Backdoor | None,
    trust: TrustConfig | None = None, trust_chain: bool = True,
) -> CellResult:
    """:func:`run_cell`, with any exception of the cell turned into :func:`failed_result`."""
    start = time.perf_counter()
    try:
        return run_cell(cell, federation, attack_params, defence_params, probe, trust, trust_chain)
    except Exception as error:  # any error of one cell: it is recorded and the grid goes on
        return failed_result(cell, error, time.perf_counter() - start)


_PRELOAD = ["ppbfl.fl.runner", "ppbfl.fl.aggregators", "ppbfl.trust.keeper", "ppbfl.trust.onchain", "sklearn.datasets", "torch._dynamo"]
"""What every cell imports (about 12 CPU seconds: scikit-learn's datasets, torch's optimiser stack;
the trust keeper's SQLAlchemy / alembic / pydantic about 0.8 s)."""


def _worker_context() -> multiprocessing.context.BaseContext:
    """``forkserver`` where the platform has it (a fresh single-threaded server process imports
    :data:`_PRELOAD` once and forks each worker from it: nothing of the caller's state or threads is
    inherited, as with ``spawn``, but the imports are paid once), else ``spawn``."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def _init_worker() -> None:
    torch.set_num_threads(1)  # small models: threads only add overhead (and N processes share the cores)


def run_experiment(
    config: ExperimentConfig, *, progress: bool = True, on_result: Callable[[CellResult], None] | None = None, jobs: int = 1,
) -> list[CellResult]:
    """Run every cell of the grid (with a tqdm progress bar if ``progress``).

    ``jobs > 1`` runs cells in that many worker processes (:func:`_worker_context`: started from a
    fresh interpreter, never forked from the caller, so it is safe with the caller's threads); each cell is seeded by itself, so the results equal those
    of ``jobs = 1``. ``on_result`` is called with each result as it finishes (in grid order for one
    job, in finishing order for several).

    Returns one :class:`CellResult` per cell of ``config.cells()``, in that order; a cell that
    raised (or whose worker process died) is a failed result (see :func:`failed_result`) and the
    grid goes on.

    Raises:
        ConfigError: ``jobs < 1`` (key ``jobs``).
    """
    from tqdm import tqdm

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError("jobs", f"must be an integer >= 1, got {jobs!r}")
    cells = config.cells()
    backdoor = make_attack("backdoor", config.attack_params.get("backdoor")) if "backdoor" in config.attacks else None
    probe = backdoor if isinstance(backdoor, Backdoor) else None
    args = [(cell, config.federation, config.attack_params, config.defence_params, probe if cell.attack == "none" else None,
             config.trust_config, config.trust_chain) for cell in cells]
    results: list[CellResult | None] = [None] * len(cells)
    bar = tqdm(total=len(cells), desc="ppbfl experiment", unit="run", disable=not progress)

    def done(i: int, result: CellResult) -> None:
        c = result.cell
        results[i] = result
        bar.set_postfix_str(f"{c.dataset} {c.attack} {c.fraction:.0%} {c.defence} s{c.seed}" + (" FAILED" if result.failed else ""))
        bar.update(1)
        if on_result is not None:
            on_result(result)

    try:
        if jobs == 1:
            threads = torch.get_num_threads()
            _init_worker()
            try:
                for i, a in enumerate(args):
                    done(i, _run_recorded(*a))
            finally:
                torch.set_num_threads(threads)
        else:
            with ProcessPoolExecutor(jobs, mp_context=_worker_context(), initializer=_init_worker) as pool:
                futures = {pool.submit(_run_recorded, *a): i for i, a in enumerate(args)}
                for future in as_completed(futures):
                    i = futures[future]
                    try:
                        result = future.result()
                    except Exception as error:  # the worker process died (BrokenProcessPool): recorded like a failed cell
                        result = failed_result(cells[i], error, 0.0)
                    done(i, result)
    finally:
        bar.close()
    return [r for r in results if r is not None]

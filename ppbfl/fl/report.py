"""Write experiment results: ``results.csv`` (deterministic), ``timings.csv``, ``results.md``
(Markdown tables), ``accuracy_<dataset>.png`` (accuracy per round per defence) and, where a
backdoor ran, ``backdoor_<dataset>.png`` (:mod:`ppbfl.fl.plots`; Agg backend). Where runs kept
trust (:mod:`ppbfl.trust`, the secure rules by default): ``trust.csv`` (each device's reputation
and quarantine after each round, deterministic), a trust table per dataset in ``results.md``
(:func:`trust_table`) and ``trust_<dataset>.png``; such runs are labelled ``"<rule> + trust"``.
Runs whose trust went through their chain (``[trust] chain = true``, the default) also get
``chain.csv`` (:func:`write_chain_csv`: per round the anchored root and the gas; not reproducible,
as the roots cover the devices' random share commitments).

A failed cell (it raised) is a row of ``results.csv`` with empty numbers and its ``error_type`` /
``error_message``; the tables and plots leave it out and ``results.md`` lists it under "Failed runs".

Every file is written to a temporary name in the output folder and moved into place with
:func:`os.replace`, so a reader (or a crash) never sees a half-written file; before writing,
:func:`write_all` removes the outputs a previous run left there (:data:`OUTPUT_PATTERNS`), so no
stale plot or table of another grid stays beside the new ones. Nothing else in the folder is
touched (a config or README kept there stays).

``results.csv`` holds no wall times so that the same config and seed give a byte-identical file;
wall times go to ``timings.csv`` and the Markdown. ``results.csv`` names defences by their registry
key (``ppbfl_secure``); tables and plots by their display name ("ppbfl (secure)").
"""

from __future__ import annotations

import csv
import os
import secrets
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ppbfl.fl.aggregators import display_name
from ppbfl.fl.plots import run_label
from ppbfl.fl.runner import CellResult

__all__ = [
    "CSV_FIELDS",
    "OUTPUT_PATTERNS",
    "atomic_path",
    "clear_outputs",
    "detection_table",
    "efficacy_table",
    "trust_table",
    "write_all",
    "write_csv",
    "write_markdown",
    "write_plots",
    "write_chain_csv",
    "write_timings",
    "write_trust_csv",
]

CSV_FIELDS = [
    "dataset", "attack", "malicious_fraction", "defence", "seed", "malicious_devices", "rounds",
    "final_accuracy", "per_class_recall", "backdoor_success", "detection_tpr", "detection_fpr",
    "accuracy_per_round", "backdoor_success_per_round", "detection_tpr_per_round", "detection_fpr_per_round",
    "trust", "quarantine_rounds", "false_quarantines", "quarantined_per_round", "trust_chain",
    "error_type", "error_message",
]
"""``results.csv`` columns. ``detection_tpr`` / ``detection_fpr``: the mean over rounds of the
fraction of malicious / honest devices the defence excluded (:mod:`ppbfl.fl.detection`; empty for
rules that never exclude a device, and the TPR also without malicious devices); the
``*_per_round`` columns hold one value per round, ``;``-separated. ``trust``: ``on`` / ``off``;
with trust, ``quarantine_rounds``: per malicious device (in ``malicious_devices`` order) the first
round after which it was in quarantine (``-``: never), ``false_quarantines``: honest device-rounds
in quarantine, ``quarantined_per_round``: the quarantined devices after each round (``;`` between
rounds, ``/`` between devices), ``trust_chain``: ``on`` when the run's trust was agreed, anchored and
applied to the PoW on its chain, ``off`` when it was kept off chain (``[trust] chain = false``)."""

TRUST_FIELDS = ["dataset", "attack", "malicious_fraction", "defence", "seed", "round", "device", "malicious", "trust", "quarantined",
                "chain_trust_q15", "pow_bits"]
"""``trust.csv`` columns: one row per run with trust, round (from 1) and device; ``trust`` the
device's reputation after the round (4 decimals), ``malicious`` / ``quarantined`` 0 or 1; with the
chain (else empty): ``chain_trust_q15`` the Q1.15 trust the contract holds after the round (what the
next round weights with, 0 in quarantine), ``pow_bits`` the PoW difficulty the device stamped its
commitment at in the round (``-1``: it did not commit)."""

CHAIN_FIELDS = ["dataset", "attack", "malicious_fraction", "defence", "seed", "round", "anchor", "round_gas", "trust_gas"]
"""``chain.csv`` columns: one row per run with trust on chain and round; ``anchor`` the Merkle root
of the round's trust records that ``commitTrust`` anchored (hex), ``round_gas`` / ``trust_gas`` the
gas of the round's transactions and of its ``commitTrust``."""

OUTPUT_PATTERNS = ("results.csv", "timings.csv", "results.md", "trust.csv", "chain.csv", "accuracy_*.png", "backdoor_*.png", "trust_*.png")
"""The names :func:`write_all` writes (glob patterns); the files :func:`clear_outputs` removes."""


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; on success move it onto ``path`` (:func:`os.replace`).

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def clear_outputs(folder: Path) -> list[Path]:
    """Remove the files of :data:`OUTPUT_PATTERNS` from ``folder`` (a previous run's); returns them."""
    removed = sorted({p for pattern in OUTPUT_PATTERNS for p in folder.glob(pattern) if p.is_file()})
    for p in removed:
        p.unlink()
    return removed


def _fmt(x: float | None) -> str:
    return "" if x is None else ("nan" if np.isnan(x) else f"{x:.4f}")


def _join(values: list[float]) -> str:
    return ";".join(_fmt(v) for v in values)


def _row(r: CellResult) -> dict[str, str]:
    c = r.cell
    kept = r.quarantined_per_round is not None
    return {
        "dataset": c.dataset, "attack": c.attack, "malicious_fraction": f"{c.fraction:.2f}", "defence": c.defence,
        "trust": "on" if c.trust else "off", "seed": str(c.seed), "malicious_devices": ";".join(map(str, r.malicious_devices)),
        "rounds": str(len(r.accuracy_per_round)), "final_accuracy": _fmt(r.final_accuracy),
        "per_class_recall": _join(r.per_class_recall), "backdoor_success": _fmt(r.backdoor_success),
        "detection_tpr": _fmt(r.detection_tpr), "detection_fpr": _fmt(r.detection_fpr),
        "accuracy_per_round": _join(r.accuracy_per_round), "backdoor_success_per_round": _join(r.backdoor_per_round),
        "detection_tpr_per_round": _join(r.tpr_per_round or []), "detection_fpr_per_round": _join(r.fpr_per_round or []),
        "quarantine_rounds": ";".join(str(r.quarantine_round(i) or "-") for i in r.malicious_devices) if kept else "",
        "false_quarantines": str(r.false_quarantines) if kept else "",
        "quarantined_per_round": ";".join("/".join(map(str, q)) for q in r.quarantined_per_round or []),
        "trust_chain": ("on" if r.chain_per_round is not None else "off") if kept else "",
        "error_type": r.error_type or "", "error_message": " ".join((r.error_message or "").split()),
    }


def write_csv(results: list[CellResult], path: Path) -> None:
    """One row per cell (see :data:`CSV_FIELDS`); numbers with 4 decimals; written atomically."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in results:
            writer.writerow(_row(r))


def write_trust_csv(results: list[CellResult], path: Path) -> bool:
    """``trust.csv`` (:data:`TRUST_FIELDS`) of the runs with trust, written atomically; False (nothing
    written) when no run kept trust."""
    kept = [r for r in results if r.trust_per_round]
    if not kept:
        return False
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(TRUST_FIELDS)
        for r in kept:
            c = r.cell
            for k, (trust, quarantined) in enumerate(zip(r.trust_per_round or [], r.quarantined_per_round or []), start=1):
                fact = r.chain_per_round[k - 1] if r.chain_per_round else None
                for device, value in enumerate(trust):
                    chain = [fact.trust_q15[device], fact.pow_bits[device]] if fact is not None else ["", ""]
                    writer.writerow([c.dataset, c.attack, f"{c.fraction:.2f}", c.defence, c.seed, k, device,
                                     int(device in r.malicious_devices), f"{value:.4f}", int(device in quarantined), *chain])
    return True


def write_chain_csv(results: list[CellResult], path: Path) -> bool:
    """``chain.csv`` (:data:`CHAIN_FIELDS`) of the runs with trust on chain, written atomically; False
    (nothing written) when no run had one."""
    kept = [r for r in results if r.chain_per_round]
    if not kept:
        return False
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CHAIN_FIELDS)
        for r in kept:
            c = r.cell
            for fact in r.chain_per_round or []:
                writer.writerow([c.dataset, c.attack, f"{c.fraction:.2f}", c.defence, c.seed, fact.round, fact.anchor.hex(),
                                 fact.round_gas, fact.trust_gas])
    return True


def write_timings(results: list[CellResult], path: Path) -> None:
    """Wall time of each cell (not reproducible, hence a separate file); written atomically."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["dataset", "attack", "malicious_fraction", "defence", "seed", "wall_time_s", "trust"])
        for r in results:
            c = r.cell
            writer.writerow([c.dataset, c.attack, f"{c.fraction:.2f}", c.defence, c.seed, f"{r.wall_time_s:.3f}", "on" if c.trust else "off"])


def _final(r: CellResult) -> float:
    if r.final_accuracy is None:
        raise ValueError(f"cell {r.cell} failed: it has no accuracy")
    return r.final_accuracy


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def efficacy_table(results: list[CellResult], dataset: str) -> list[str]:
    """Markdown lines of the defence-efficacy table of ``dataset``: one row per (attack, malicious
    fraction), the clean run first, one column per defence (display names), cells the final test
    accuracy (mean over seeds; "–" where the grid has no such run); runs with trust have their own
    column (:func:`~ppbfl.fl.plots.run_label`)."""
    rs = [r for r in results if r.cell.dataset == dataset and not r.failed]
    defences = list(dict.fromkeys(run_label(r.cell) for r in rs))
    acc: dict[tuple[str, float, str], list[float]] = defaultdict(list)
    for r in rs:
        acc[(r.cell.attack, r.cell.fraction, run_label(r.cell))].append(_final(r))
    rows = list(dict.fromkeys((r.cell.attack, r.cell.fraction) for r in sorted(rs, key=lambda r: r.cell.fraction > 0)))
    lines = ["| attack | malicious | " + " | ".join(defences) + " |",
             "|---|---|" + "---|" * len(defences)]
    for attack, fraction in rows:
        cells = [_fmt(_mean(acc[(attack, fraction, d)])) if acc.get((attack, fraction, d)) else "–" for d in defences]
        lines.append(f"| {attack} | {fraction:.0%} | " + " | ".join(cells) + " |")
    return lines


def detection_table(results: list[CellResult], dataset: str) -> list[str]:
    """Markdown lines of the detection table of ``dataset`` (empty when no run has rates): one row
    per attacked (attack, malicious fraction), one column per defence that excludes devices, cells
    "TPR / FPR" (means over rounds and seeds, :mod:`ppbfl.fl.detection`)."""
    rs = [r for r in results if r.cell.dataset == dataset and not r.failed and r.cell.fraction > 0]
    rates: dict[tuple[str, float, str], list[tuple[float, float]]] = defaultdict(list)
    for r in rs:
        if r.detection_tpr is not None and r.detection_fpr is not None:
            rates[(r.cell.attack, r.cell.fraction, run_label(r.cell))].append((r.detection_tpr, r.detection_fpr))
    defences = list(dict.fromkeys(d for (_, _, d) in rates))
    if not defences:
        return []
    lines = ["| attack | malicious | " + " | ".join(defences) + " |",
             "|---|---|" + "---|" * len(defences)]
    for attack, fraction in dict.fromkeys((r.cell.attack, r.cell.fraction) for r in rs):
        cells = []
        for d in defences:
            got = rates.get((attack, fraction, d))
            cells.append(f"{_mean([t for t, _ in got]):.2f} / {_mean([f for _, f in got]):.2f}" if got else "–")
        lines.append(f"| {attack} | {fraction:.0%} | " + " | ".join(cells) + " |")
    return lines


def trust_table(results: list[CellResult], dataset: str) -> list[str]:
    """Markdown lines of the trust table of ``dataset`` (empty without a run with trust): one row per
    (attack, malicious fraction, rule) that ran with trust; the final accuracy and the accuracy
    averaged over rounds with trust and, where the grid also ran the rule without, without it;
    the malicious devices quarantined (of all, over seeds), the mean first round of quarantine of
    those that were, and the false quarantines (honest device-rounds in quarantine, of all honest
    device-rounds). Means over seeds."""
    rs = [r for r in results if r.cell.dataset == dataset and not r.failed]
    groups: dict[tuple[str, float, str, bool], list[CellResult]] = defaultdict(list)
    for r in rs:
        groups[(r.cell.attack, r.cell.fraction, r.cell.defence, r.cell.trust)].append(r)
    keys = [k for k in groups if k[3]]
    if not keys:
        return []

    def accuracy(runs: list[CellResult] | None, final: bool) -> str:
        if not runs:
            return "–"
        return _fmt(_mean([_final(r) if final else float(np.mean(r.accuracy_per_round)) for r in runs]))

    lines = ["| attack | malicious | rule | final accuracy with / without trust | mean accuracy over rounds with / without | "
             "malicious quarantined | first quarantine round (mean) | false quarantines (honest device-rounds) |",
             "|---|---|---|---|---|---|---|---|"]
    for attack, fraction, defence, _ in keys:
        with_trust, without = groups[(attack, fraction, defence, True)], groups.get((attack, fraction, defence, False))
        entered = [q for r in with_trust for q in (r.quarantine_round(i) for i in r.malicious_devices) if q is not None]
        malicious = sum(len(r.malicious_devices) for r in with_trust)
        honest_rounds = sum((len(r.trust_per_round[0]) - len(r.malicious_devices)) * len(r.trust_per_round)
                            for r in with_trust if r.trust_per_round)
        false = sum(r.false_quarantines or 0 for r in with_trust)
        lines.append(
            f"| {attack} | {fraction:.0%} | {display_name(defence)} | {accuracy(with_trust, True)} / {accuracy(without, True)} | "
            f"{accuracy(with_trust, False)} / {accuracy(without, False)} | {len(entered)} of {malicious} | "
            f"{f'{_mean([float(q) for q in entered]):.1f}' if entered else '–'} | {false} of {honest_rounds} |"
        )
    return lines


def write_markdown(results: list[CellResult], path: Path, *, command: str | None = None, title: str = "Experiment results") -> None:
    """Per dataset: the defence-efficacy table (:func:`efficacy_table`); final accuracy (mean over
    seeds) with rows attack x defence and one column per malicious fraction (the 0 % column is the
    clean run, shared by every attack); the detection rates (:func:`detection_table`); backdoor
    success where a backdoor ran; then the per-cell
    table with per-class recall and wall time."""
    failed = [r for r in results if r.failed]
    everything, results = results, [r for r in results if not r.failed]
    fractions = sorted({r.cell.fraction for r in results if r.cell.fraction > 0})
    lines = [f"# {title}", ""]
    if command:
        lines += ["Reproduce with:", "", "```bash", command, "```", ""]
    total = sum(r.wall_time_s for r in everything)
    rounds = sorted({len(r.accuracy_per_round) for r in results})
    lines += [f"{len(everything)} runs, {', '.join(map(str, rounds)) or 'no'} rounds each, {total:.1f} s wall time in all"
              + (f"; {len(failed)} failed (see Failed runs)." if failed else "."), ""]
    by_ds: dict[str, list[CellResult]] = defaultdict(list)
    for r in results:
        by_ds[r.cell.dataset].append(r)
    for ds, rs in by_ds.items():
        acc: dict[tuple[str, str, float], list[float]] = defaultdict(list)
        bd: dict[tuple[str, str, float], list[float]] = defaultdict(list)
        for r in rs:
            acc[(r.cell.attack, run_label(r.cell), r.cell.fraction)].append(_final(r))
            if r.backdoor_success is not None:
                bd[(r.cell.attack, run_label(r.cell), r.cell.fraction)].append(r.backdoor_success)
        defences = list(dict.fromkeys(run_label(r.cell) for r in rs))
        attacks = [a for a in dict.fromkeys(r.cell.attack for r in rs) if a != "none"] or ["none"]
        cols = [0.0, *fractions]
        lines += [f"## {ds}: defence efficacy (final test accuracy, one column per defence)", "",
                  *efficacy_table(results, ds), ""]
        detection = detection_table(results, ds)
        if detection:
            lines += [(f"## {ds}: detection (malicious devices excluded / honest devices excluded, mean fraction per round; "
                       "rules that exclude whole devices)"), "", *detection, ""]
        trust = trust_table(results, ds)
        if trust:
            lines += [f"## {ds}: trust (reputation per device, quarantine; means over seeds)", "", *trust, ""]
        lines += [f"## {ds}: final test accuracy", "",
                  "| attack | defence | " + " | ".join(f"{f:.0%} malicious" for f in cols) + " |",
                  "|---|---|" + "---|" * len(cols)]
        for a in attacks:
            for d in defences:
                cells = [_fmt(_mean(acc.get(("none" if f == 0 else a, d, f), []))) if acc.get(("none" if f == 0 else a, d, f)) else "–" for f in cols]
                lines.append(f"| {a} | {d} | " + " | ".join(cells) + " |")
        lines.append("")
        if bd:
            lines += [(f"### {ds}: backdoor success rate (stamped non-target test samples classified as the target; "
                       "0 % = the clean model, the trigger's baseline)"), "",
                      "| defence | " + " | ".join(f"{f:.0%} malicious" for f in cols) + " |", "|---|" + "---|" * len(cols)]
            for d in defences:
                vals = [bd.get(("none" if f == 0 else "backdoor", d, f)) for f in cols]
                lines.append(f"| {d} | " + " | ".join(_fmt(_mean(v)) if v else "–" for v in vals) + " |")
            lines.append("")
    lines += ["## Every run", "", "| dataset | attack | malicious | defence | seed | malicious devices | accuracy | per-class recall | backdoor | wall s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        row = _row(r)
        lines.append(f"| {row['dataset']} | {row['attack']} | {r.cell.fraction:.0%} | {run_label(r.cell)} | {row['seed']} | "
                     f"{row['malicious_devices'] or '–'} | {row['final_accuracy']} | {row['per_class_recall']} | "
                     f"{row['backdoor_success'] or '–'} | {r.wall_time_s:.2f} |")
    if failed:
        lines += ["", "## Failed runs", "", "| dataset | attack | malicious | defence | seed | error |", "|---|---|---|---|---|---|"]
        for r in failed:
            row = _row(r)
            message = row["error_message"].replace("|", "\\|")
            lines.append(f"| {row['dataset']} | {row['attack']} | {r.cell.fraction:.0%} | {run_label(r.cell)} | "
                         f"{row['seed']} | {row['error_type']}: {message} |")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def write_plots(results: list[CellResult], folder: Path) -> list[Path]:
    """Per dataset ``accuracy_<dataset>.png``, where a backdoor ran ``backdoor_<dataset>.png``
    (:mod:`ppbfl.fl.plots`: one panel per attack x malicious fraction, one line per defence, the
    secure rule on top, mean ± std over seeds) and, where runs kept trust, ``trust_<dataset>.png``
    (:func:`~ppbfl.fl.plots.trust_figure`); written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ppbfl.fl.plots import accuracy_figure, backdoor_figure, trust_figure

    written = []
    for ds in dict.fromkeys(r.cell.dataset for r in results):
        for prefix, make in (("accuracy", accuracy_figure), ("backdoor", backdoor_figure), ("trust", trust_figure)):
            fig = make(results, ds)
            if fig is None:
                continue
            path = folder / f"{prefix}_{ds.replace(':', '_').replace('/', '_')}.png"
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=90, format="png")
            plt.close(fig)
            written.append(path)
    return written


def write_all(results: list[CellResult], folder: str | Path, *, command: str | None = None) -> dict[str, Path]:
    """Write results.csv, timings.csv, results.md, trust.csv (where runs kept trust), chain.csv (where
    their trust went through the chain) and the plots
    into ``folder`` (created), each atomically, after removing a previous run's outputs (:func:`clear_outputs`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clear_outputs(folder)
    out = {"csv": folder / "results.csv", "timings": folder / "timings.csv", "markdown": folder / "results.md"}
    write_csv(results, out["csv"])
    write_timings(results, out["timings"])
    if write_trust_csv(results, folder / "trust.csv"):
        out["trust"] = folder / "trust.csv"
    if write_chain_csv(results, folder / "chain.csv"):
        out["chain"] = folder / "chain.csv"
    write_markdown(results, out["markdown"], command=command)
    for p in write_plots(results, folder):
        out[p.stem] = p
    return out

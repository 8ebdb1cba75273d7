"""Figures of an experiment grid (matplotlib, Agg backend): per-round curves, one panel per
(attack, malicious fraction), one line per defence.

Each line is the mean over seeds; with more than one seed a band shows mean ± one standard
deviation (population, ``numpy.std``). The secure rule (``ppbfl_secure``) is drawn on top in its own
colour and marker, thicker; plaintext rules share thin lines in colours the secure rule never uses.
Failed runs are left out. A run with trust (``cell.trust``) is its own line, labelled
``"<rule> + trust"`` (:func:`run_label`); the secure rule without trust is drawn dashed beside it.
:func:`trust_figure` draws each device's reputation over the rounds of the runs with trust.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ppbfl.fl.aggregators import display_name
from ppbfl.fl.config import Cell
from ppbfl.fl.runner import CellResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SECURE", "accuracy_figure", "backdoor_figure", "defence_style", "mean_and_spread", "run_label", "trust_figure"]

SECURE = "ppbfl_secure"
_SECURE_COLOUR = "#d62728"  # red: no plaintext rule gets it
_PLAIN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_PLAIN_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">")


def run_label(cell: Cell) -> str:
    """A run's line / column label: the rule's display name, ``" + trust"`` when it ran with trust."""
    return display_name(cell.defence) + (" + trust" if cell.trust else "")


def defence_style(defence: str, index: int, *, trust: bool = False) -> dict[str, Any]:
    """``matplotlib`` line keywords of ``defence``, the ``index``-th plaintext rule of the figure
    (the secure rule: solid with trust, dashed with hollow markers without)."""
    if defence == SECURE:
        style = {"color": _SECURE_COLOUR, "marker": "*", "markersize": 8, "linewidth": 2.4, "zorder": 10 + trust}
        return style if trust else {**style, "linestyle": "--", "markerfacecolor": "none"}
    return {"color": _PLAIN_COLOURS[index % len(_PLAIN_COLOURS)], "marker": _PLAIN_MARKERS[index % len(_PLAIN_MARKERS)],
            "markersize": 3, "linewidth": 1.0, "alpha": 0.85, "zorder": 2}


def mean_and_spread(curves: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` over seeds of ``curves`` (seeds x rounds): two ``(rounds,)`` float arrays."""
    values = np.asarray(curves, dtype=np.float64)
    return values.mean(axis=0), values.std(axis=0)


def _figure(rs: list[CellResult], panels: list[tuple[str, float]], series: Callable[[CellResult], list[float]],
            ylabel: str, title: str) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False, sharey=True)
    variants = list(dict.fromkeys((r.cell.defence, r.cell.trust) for r in rs))
    plain = [v for v in variants if v[0] != SECURE]
    seeds = len({r.cell.seed for r in rs})
    for ax, (attack, frac) in zip(axes.flat, panels):
        curves: dict[tuple[str, bool], list[list[float]]] = defaultdict(list)
        for r in rs:
            if (r.cell.attack, r.cell.fraction) == (attack, frac) and series(r):
                curves[(r.cell.defence, r.cell.trust)].append(series(r))
        for variant in variants:
            if variant not in curves:
                continue
            defence, trust = variant
            style = defence_style(defence, plain.index(variant) if variant in plain else 0, trust=trust)
            mean, std = mean_and_spread(curves[variant])
            x = np.arange(1, len(mean) + 1)
            ax.plot(x, mean, label=display_name(defence) + (" + trust" if trust else ""), **style)
            if len(curves[variant]) > 1:
                ax.fill_between(x, mean - std, mean + std, color=style["color"], alpha=0.15, linewidth=0, zorder=style["zorder"] - 1)
        ax.set_title(f"{attack}, {frac:.0%} malicious", fontsize=9)
        ax.set_xlabel("round")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title + (f" (mean ± std over {seeds} seeds)" if seeds > 1 else ""))
    fig.tight_layout()
    return fig


def accuracy_figure(results: list[CellResult], dataset: str) -> Figure | None:
    """Test accuracy per round of ``dataset``: one panel per (attack, malicious fraction); None
    without a finished run."""
    rs = [r for r in results if r.cell.dataset == dataset and not r.failed]
    if not rs:
        return None
    panels = list(dict.fromkeys((r.cell.attack, r.cell.fraction) for r in rs))
    return _figure(rs, panels, lambda r: r.accuracy_per_round, "test accuracy", f"{dataset}: accuracy per round per defence")


def backdoor_figure(results: list[CellResult], dataset: str) -> Figure | None:
    """Backdoor success per round of ``dataset``: one panel per backdoor fraction after the clean
    run's (the trigger's baseline); None without a finished backdoor run."""
    rs = [r for r in results if r.cell.dataset == dataset and not r.failed and r.cell.attack in ("none", "backdoor")]
    if not any(r.cell.attack == "backdoor" for r in rs):
        return None
    panels = sorted(dict.fromkeys((r.cell.attack, r.cell.fraction) for r in rs), key=lambda p: p[1])
    return _figure(rs, panels, lambda r: r.backdoor_per_round, "backdoor success",
                   f"{dataset}: backdoor success per round (stamped non-target test samples classified as the target)")


def trust_figure(results: list[CellResult], dataset: str) -> Figure | None:
    """Each device's reputation after each round, one panel per run with trust of ``dataset`` (the
    first seed of each attack x malicious fraction x rule): malicious devices red, honest grey,
    a cross where a device entered quarantine; None without such a run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[tuple[str, float, str], CellResult] = {}
    for r in results:
        if r.cell.dataset == dataset and not r.failed and r.trust_per_round:
            runs.setdefault((r.cell.attack, r.cell.fraction, r.cell.defence), r)
    if not runs:
        return None
    cols = min(4, len(runs))
    rows = (len(runs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False, sharey=True)
    for ax, ((attack, frac, defence), r) in zip(axes.flat, runs.items()):
        trust = np.asarray(r.trust_per_round, dtype=np.float64)  # (rounds, devices)
        x = np.arange(1, trust.shape[0] + 1)
        for device in range(trust.shape[1]):
            bad = device in r.malicious_devices
            ax.plot(x, trust[:, device], color="#d62728" if bad else "#7f7f7f", linewidth=1.4 if bad else 0.8,
                    alpha=0.9 if bad else 0.6, zorder=3 if bad else 2, label=("malicious" if bad else "honest"))
            entered = r.quarantine_round(device)
            if entered is not None:
                ax.plot([entered], [trust[entered - 1, device]], marker="x", color="black", linestyle="none", zorder=4,
                        label="quarantined")
        ax.set_title(f"{attack}, {frac:.0%} malicious, {display_name(defence)} (seed {r.cell.seed})", fontsize=8)
        ax.set_xlabel("round")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        handles = dict(zip(*reversed(ax.get_legend_handles_labels())))
        ax.legend(handles.values(), handles.keys(), fontsize=6)
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    axes[0][0].set_ylabel("reputation")
    fig.suptitle(f"{dataset}: reputation per device per round (runs with trust)")
    fig.tight_layout()
    return fig

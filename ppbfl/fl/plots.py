"""Figures of an experiment grid (matplotlib, Agg backend): per-round curves, one panel per
(attack, malicious fraction), one line per defence.

Each line is the mean over seeds; with more than one seed a band shows mean ± one standard
deviation (population, ``numpy.std``). The secure rule (``ppbfl_secure``) is drawn on top in its own
colour and marker, thicker; plaintext rules share thin lines in colours the secure rule never uses.
Failed runs are left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ppbfl.fl.aggregators import display_name
from ppbfl.fl.runner import CellResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SECURE", "accuracy_figure", "backdoor_figure", "defence_style", "mean_and_spread"]

SECURE = "ppbfl_secure"
_SECURE_COLOUR = "#d62728"  # red: no plaintext rule gets it
_PLAIN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_PLAIN_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">")


def defence_style(defence: str, index: int) -> dict[str, Any]:
    """``matplotlib`` line keywords of ``defence``, the ``index``-th plaintext rule of the figure."""
    if defence == SECURE:
        return {"color": _SECURE_COLOUR, "marker": "*", "markersize": 8, "linewidth": 2.4, "zorder": 10}
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
    defences = list(dict.fromkeys(r.cell.defence for r in rs))
    plain = [d for d in defences if d != SECURE]
    seeds = len({r.cell.seed for r in rs})
    for ax, (attack, frac) in zip(axes.flat, panels):
        curves: dict[str, list[list[float]]] = defaultdict(list)
        for r in rs:
            if (r.cell.attack, r.cell.fraction) == (attack, frac) and series(r):
                curves[r.cell.defence].append(series(r))
        for defence in defences:
            if defence not in curves:
                continue
            style = defence_style(defence, plain.index(defence) if defence in plain else 0)
            mean, std = mean_and_spread(curves[defence])
            x = np.arange(1, len(mean) + 1)
            ax.plot(x, mean, label=display_name(defence), **style)
            if len(curves[defence]) > 1:
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

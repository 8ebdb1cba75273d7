"""Experiment figures (ppbfl.fl.plots): the secure rule on top in its own style, mean ± std over seeds, backdoor panels."""

from __future__ import annotations

import statistics

import matplotlib.colors
import matplotlib.pyplot as plt
import pytest
from matplotlib.collections import PolyCollection

from ppbfl.fl.config import Cell
from ppbfl.fl.plots import accuracy_figure, backdoor_figure
from ppbfl.fl.runner import CellResult

DEFENCES = ("fedavg", "fltrust", "ppbfl_secure", "krum")


def _result(attack: str, fraction: float, defence: str, seed: int) -> CellResult:
    base = 0.1 * DEFENCES.index(defence) + 0.05 * seed
    acc = [base + 0.1 * r for r in range(3)]
    backdoor = [0.9 - base - 0.1 * r for r in range(3)] if attack in ("none", "backdoor") else []
    return CellResult(Cell("ds", attack, fraction, defence, seed), (), acc, [], backdoor[-1] if backdoor else None, 0.0,
                      backdoor_per_round=backdoor)


@pytest.fixture
def results():
    cells = [("none", 0.0), ("backdoor", 0.2), ("sign_flip", 0.2)]
    out = [_result(a, f, d, s) for a, f in cells for d in DEFENCES for s in (0, 1)]
    out.append(CellResult(Cell("ds", "none", 0.0, "median", 0), (), [], [], None, 0.0, error_type="ValueError", error_message="x"))
    yield out
    plt.close("all")


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_the_secure_rule_is_drawn_on_top_in_its_own_colour_and_marker(results):
    fig = accuracy_figure(results, "ds")
    ax = fig.axes[0]
    lines = _lines(ax)
    assert set(lines) == {"fedavg", "fltrust", "ppbfl (secure)", "krum"}  # the failed median run is left out
    secure = lines.pop("ppbfl (secure)")
    assert all(secure.get_zorder() > line.get_zorder() for line in lines.values())
    assert secure.get_color() not in {line.get_color() for line in lines.values()}
    assert secure.get_marker() not in {line.get_marker() for line in lines.values()}
    assert all(secure.get_linewidth() > line.get_linewidth() for line in lines.values())


def test_lines_are_the_mean_over_seeds_with_a_one_std_band(results):
    fig = accuracy_figure(results, "ds")
    ax = fig.axes[0]  # the clean panel
    assert ax.get_title() == "none, 0% malicious" and "mean ± std over 2 seeds" in fig.get_suptitle()
    curves = [_result("none", 0.0, "fltrust", s).accuracy_per_round for s in (0, 1)]
    mean = [statistics.fmean(v) for v in zip(*curves)]
    std = [statistics.pstdev(v) for v in zip(*curves)]
    assert _lines(ax)["fltrust"].get_ydata().tolist() == pytest.approx(mean)
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == len(DEFENCES)
    colour = _lines(ax)["fltrust"].get_color()
    band = next(b for b in bands if matplotlib.colors.to_hex(b.get_facecolor()[0]) == matplotlib.colors.to_hex(colour))
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(min(m - s for m, s in zip(mean, std)))
    assert ys.max() == pytest.approx(max(m + s for m, s in zip(mean, std)))


def test_backdoor_panels_show_the_clean_baseline_and_each_backdoor_fraction(results):
    fig = backdoor_figure(results, "ds")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["none, 0% malicious", "backdoor, 20% malicious"]
    secure = _lines(fig.axes[1])["ppbfl (secure)"].get_ydata().tolist()
    expected = [statistics.fmean(_result("backdoor", 0.2, "ppbfl_secure", s).backdoor_per_round[r] for s in (0, 1)) for r in range(3)]
    assert secure == pytest.approx(expected)
    assert backdoor_figure([r for r in results if r.cell.attack != "backdoor"], "ds") is None

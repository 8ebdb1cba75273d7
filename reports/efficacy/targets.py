"""The issue-17 targets, cell by cell, from the grids' ``results.csv`` (no hand-typed numbers).

    python reports/efficacy/targets.py reports/efficacy

reads ``<folder>/<split>/results.csv`` for every split folder present (``iid``, ``dirichlet``) and
``<folder>/wall.json`` (written by ``run.py``), and writes the tables between the markers
``<!-- targets:begin -->`` / ``<!-- targets:end -->`` of ``<folder>/README.md`` (and prints them).

Targets (issue 17), for each secure rule of :data:`TWINS`:

* **backdoor**: (with, for reference, the trigger's rate on FedAvg's model trained without attack,
  the "clean rate") at every attacked fraction (20 %, 40 %) of every (dataset, split): where the best
  plaintext rule (:data:`PLAINTEXT`, lowest mean backdoor success over seeds) reaches <= 5 %, the
  secure rule's mean must be <= 5 % ("met" / "not met"); where none does, "no plaintext rule
  reaches it" (the numbers are shown either way). A "met" whose model hardly predicts the target
  class at all (its recall of the target class on the clean test data, mean over seeds, <= 5 %:
  :data:`TRIVIAL_RECALL`) is marked "met (trivially)": such a model shows no backdoor because it
  shows no class ``target``, not because it resisted the attack;
* **twin**: in every (dataset, split, fraction) the secure rule's final accuracy is within 1 point
  of its plaintext twin's, at every seed (the largest gap over seeds is shown);
* **clean**: without attack its mean final accuracy over seeds is >= FedAvg's mean - 2 points;
* **time**: the grids' total wall time (``wall.json``) is <= :data:`TIME_LIMIT_S`, the bound the
  README states.
"""

from __future__ import annotations

import csv
import json
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

TWINS = {"ppbfl_secure": "fltrust_clipped", "ppbfl_secure_rescaled": "fltrust", "ppbfl_flame": "flame", "ppbfl_flame_models": "flame_models"}
"""Secure rule -> its plaintext twin (the same rule in float arithmetic)."""

PLAINTEXT = ("fedavg", "fltrust", "fltrust_clipped", "flame", "flame_models")
"""The plaintext rules whose best backdoor success sets the bar."""

BACKDOOR_BAR = 0.05
EPS = 1e-9
"""Slack for float sums at a bound (a mean of exactly 5 % is met)."""
TWIN_POINTS = 1.0
CLEAN_POINTS = 2.0
TIME_LIMIT_S = 25 * 60
"""The wall-time bound the README states for the whole grid (both splits) with ``--jobs 2``."""

TRIVIAL_RECALL = 0.05
"""Target-class recall at or under which a "met" backdoor cell is marked trivial."""

BEGIN, END = "<!-- targets:begin -->", "<!-- targets:end -->"

Key = tuple[str, str, float]  # (dataset, split, malicious fraction)


def backdoor_target(folder: Path) -> int:
    """The backdoor's target class: ``attack_params.backdoor.target`` of the folder's configs (they must agree)."""
    found = {tomllib.loads(p.read_text()).get("attack_params", {}).get("backdoor", {}).get("target", 0)
             for p in sorted(folder.glob("config_*.toml"))}
    if len(found) > 1:
        raise SystemExit(f"the configs in {folder} use different backdoor targets {sorted(found)}")
    return int(found.pop()) if found else 0


def load(folder: Path) -> dict[tuple[str, str, float, str], dict[int, dict[str, float | None]]]:
    """``{(dataset, split, fraction, defence): {seed: {"accuracy", "backdoor", "tpr", "fpr", "recall"}}}`` of
    every split folder's ``results.csv`` ("recall": of the backdoor's target class, :func:`backdoor_target`);
    a failed run has ``None`` values."""
    target = backdoor_target(folder)
    runs: dict[tuple[str, str, float, str], dict[int, dict[str, float | None]]] = defaultdict(dict)
    for split_dir in sorted(p for p in folder.iterdir() if (p / "results.csv").is_file()):
        with open(split_dir / "results.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                def num(key: str, row: dict[str, str] = row) -> float | None:
                    return float(row[key]) if row.get(key) else None

                key = (row["dataset"], split_dir.name, float(row["malicious_fraction"]), row["defence"])
                recall = row["per_class_recall"].split(";") if row.get("per_class_recall") else []
                runs[key][int(row["seed"])] = {"accuracy": num("final_accuracy"), "backdoor": num("backdoor_success"),
                                               "tpr": num("detection_tpr"), "fpr": num("detection_fpr"),
                                               "recall": float(recall[target]) if len(recall) > target else None}
    return runs


def mean(values: list[float | None]) -> float | None:
    """Mean of the values, None if any is missing (a failed run) or there are none."""
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)


def metric(runs: dict, key: Key, defence: str, name: str) -> float | None:
    """Mean over seeds of ``name`` for ``defence`` in cell ``key`` (None: absent or a failed run)."""
    seeds = runs.get((*key, defence))
    return None if not seeds else mean([s[name] for s in seeds.values()])


def pct(x: float | None) -> str:
    return "failed" if x is None else f"{100 * x:.1f} %"


def backdoor_verdict(runs: dict, key: Key, rule: str) -> tuple[str, float | None, str, float | None]:
    """``(verdict, secure value, best plaintext rule, its value)`` of the backdoor target in ``key``."""
    plain = {p: metric(runs, key, p, "backdoor") for p in PLAINTEXT if (*key, p) in runs}
    known = {p: v for p, v in plain.items() if v is not None}
    value = metric(runs, key, rule, "backdoor")
    if not known:
        return "no plaintext result", value, "-", None
    best = min(known, key=lambda p: (known[p], p))
    if known[best] > BACKDOOR_BAR + EPS:
        return "no plaintext rule reaches it", value, best, known[best]
    if value is None:
        return "not met (failed run)", value, best, known[best]
    if value > BACKDOOR_BAR + EPS:
        return "not met", value, best, known[best]
    recall = metric(runs, key, rule, "recall")
    trivial = recall is not None and recall <= TRIVIAL_RECALL + EPS
    return ("met (trivially: target-class recall " + pct(recall) + ")" if trivial else "met"), value, best, known[best]


def twin_gap(runs: dict, key: Key, rule: str) -> float | None:
    """Largest ``|accuracy(rule) - accuracy(twin)|`` over the seeds both ran, in points (None: missing/failed)."""
    mine, twin = runs.get((*key, rule), {}), runs.get((*key, TWINS[rule]), {})
    seeds = sorted(set(mine) & set(twin))
    gaps = [None if mine[s]["accuracy"] is None or twin[s]["accuracy"] is None
            else abs(mine[s]["accuracy"] - twin[s]["accuracy"]) for s in seeds]  # type: ignore[operator]
    if not gaps or any(g is None for g in gaps):
        return None
    return 100 * max(g for g in gaps if g is not None)


def cells(runs: dict) -> list[Key]:
    """Every (dataset, split, fraction) in the results, in a stable order."""
    return sorted({k[:3] for k in runs}, key=lambda k: (k[0], k[1] != "iid", k[1], k[2]))


def tables(runs: dict, wall: dict | None) -> str:
    """The Markdown targets tables (backdoor, twin, clean, detection, time) and a tally per rule."""
    rules = [r for r in TWINS if any(k[3] == r for k in runs)]
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    out = ["### Backdoor success <= 5 % where the best plaintext rule reaches it (mean over seeds)", "",
           "| dataset | split | malicious | clean rate (FedAvg, no attack) | best plaintext rule | " + " | ".join(rules) + " |",
           "|---|---|---|---|---|" + "---|" * len(rules)]
    for key in cells(runs):
        if key[2] == 0.0:
            continue
        verdicts = [backdoor_verdict(runs, key, r) for r in rules]
        _, _, best, best_value = verdicts[0]
        best_recall = metric(runs, key, best, "recall") if best != "-" else None
        best_note = f" (recall {pct(best_recall)})" if best_recall is not None and best_recall <= TRIVIAL_RECALL + EPS else ""
        clean = metric(runs, (key[0], key[1], 0.0), "fedavg", "backdoor")
        row = [key[0], key[1], f"{key[2]:.0%}", pct(clean), f"{best} {pct(best_value)}{best_note}"]
        for rule, (verdict, value, _, _) in zip(rules, verdicts):
            row.append(f"{pct(value)}: {verdict}")
            if verdict.startswith(("met", "not met")):
                tally[(rule, "backdoor")][verdict.startswith("met")] += 1
                tally[(rule, "trivial")][1] += verdict.startswith("met (trivially")
        out.append("| " + " | ".join(row) + " |")
    out += ["", f"### Secure rule within {TWIN_POINTS:g} point of its plaintext twin (largest final-accuracy gap over seeds)", "",
            "| dataset | split | malicious | " + " | ".join(f"{r} vs {TWINS[r]}" for r in rules) + " |",
            "|---|---|---|" + "---|" * len(rules)]
    for key in cells(runs):
        row = [key[0], key[1], f"{key[2]:.0%}"]
        for rule in rules:
            gap = twin_gap(runs, key, rule)
            ok = gap is not None and gap <= TWIN_POINTS + EPS
            tally[(rule, "twin")][ok] += 1
            row.append("failed" if gap is None else f"{gap:.2f} pts: {'met' if ok else 'not met'}")
        out.append("| " + " | ".join(row) + " |")
    out += ["", f"### Clean accuracy >= clean FedAvg - {CLEAN_POINTS:g} points (no attack, mean over seeds)", "",
            "| dataset | split | FedAvg | " + " | ".join(rules) + " |", "|---|---|---|" + "---|" * len(rules)]
    for key in cells(runs):
        if key[2] != 0.0:
            continue
        fedavg = metric(runs, key, "fedavg", "accuracy")
        row = [key[0], key[1], pct(fedavg)]
        for rule in rules:
            acc = metric(runs, key, rule, "accuracy")
            ok = acc is not None and fedavg is not None and 100 * (acc - fedavg) >= -CLEAN_POINTS - EPS
            tally[(rule, "clean")][ok] += 1
            gap = "" if acc is None or fedavg is None else f" ({100 * (acc - fedavg):+.1f})"
            row.append(f"{pct(acc)}{gap}: {'met' if ok else 'not met'}")
        out.append("| " + " | ".join(row) + " |")
    out += ["", "### Tally (cells met / cells where the target applies)", "",
            "| rule | backdoor (of which trivially) | twin | clean |", "|---|---|---|---|"]
    for rule in rules:
        parts = []
        for target in ("backdoor", "twin", "clean"):
            no, yes = tally[(rule, target)]
            parts.append(f"{yes} / {yes + no}" + (f" ({tally[(rule, 'trivial')][1]})" if target == "backdoor" else ""))
        out.append(f"| {rule} | " + " | ".join(parts) + " |")
    every = [r for r in (*PLAINTEXT, *TWINS) if any(k[3] == r for k in runs)]
    out += ["", "### Backdoor success of every rule (mean over seeds; 0 % = the trigger on the clean run)", "",
            "| dataset | split | malicious | " + " | ".join(every) + " |", "|---|---|---|" + "---|" * len(every)]
    for key in cells(runs):
        out.append(f"| {key[0]} | {key[1]} | {key[2]:.0%} | " + " | ".join(pct(metric(runs, key, r, "backdoor")) for r in every) + " |")
    flames = [r for r in ("flame", "flame_models", "ppbfl_flame", "ppbfl_flame_models") if any(k[3] == r for k in runs)]
    if flames:
        out += ["", "### Detection of the backdoored devices (mean TPR / FPR over rounds and seeds)", "",
                "| dataset | split | malicious | " + " | ".join(flames) + " |", "|---|---|---|" + "---|" * len(flames)]
        for key in cells(runs):
            if key[2] == 0.0:
                continue
            row = [key[0], key[1], f"{key[2]:.0%}"]
            for rule in flames:
                tpr, fpr = metric(runs, key, rule, "tpr"), metric(runs, key, rule, "fpr")
                row.append("failed" if tpr is None or fpr is None else f"{tpr:.2f} / {fpr:.2f}")
            out.append("| " + " | ".join(row) + " |")
    out += ["", "### Time", ""]
    if wall is None:
        out.append("No `wall.json` (run `run.py`): time target not evaluated.")
    else:
        total = sum(g["wall_s"] for g in wall["grids"].values())
        m = wall["machine"]
        per = ", ".join(f"{s} {g['wall_s']:.0f} s" + (f" (load {g['load_after']:.0f} at its end)" if "load_after" in g else "")
                        for s, g in wall["grids"].items())
        verdict = "met" if total <= TIME_LIMIT_S else "not met"
        out.append(f"Whole grid {total:.0f} s ({per}) with `--jobs {wall['jobs']}` on {m['cores']} cores of "
                   f"{m['cpu']}, Python {m['python']}, 1-minute load average {m['load_before']:.1f} before the run "
                   f"(other engineers' jobs on the same VM): <= {TIME_LIMIT_S // 60} min: **{verdict}**.")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent)
    runs = load(folder)
    wall_file = folder / "wall.json"
    text = tables(runs, json.loads(wall_file.read_text()) if wall_file.is_file() else None)
    print(text)
    readme = folder / "README.md"
    if readme.is_file():
        body = readme.read_text()
        if BEGIN in body and END in body:
            head, rest = body.split(BEGIN, 1)
            readme.write_text(head + BEGIN + "\n" + text + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Per-seed table of reports/rescale/out/results.csv (the issue's non-IID cell, with and without
FLTrust's norm rescaling in the secure rule):

    python reports/rescale/summarize.py reports/rescale/out/results.csv

Prints, per attack and defence: final accuracy per seed and their mean, the first round whose
test accuracy leaves the majority-class plateau (accuracy > 0.68 + 0.01, '-' if never within the
run's rounds), and for each secure rule the largest per-round accuracy gap to its plaintext twin
(``ppbfl_secure_rescaled`` vs ``fltrust``) in points.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict

PLATEAU = 0.68  # heart failure's majority class (test split)
TWINS = {"ppbfl_secure_rescaled": "fltrust"}


def main(path: str) -> None:
    """Print the markdown table of ``path`` (a results.csv of ``ppbfl experiment``)."""
    runs: dict[tuple[str, str, str], dict[int, list[float]]] = defaultdict(dict)
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            key = (row["attack"], row["malicious_fraction"], row["defence"])
            runs[key][int(row["seed"])] = [float(x) for x in row["accuracy_per_round"].split(";")]
    print("| attack | malicious | defence | final accuracy per seed | mean | leaves 0.68 at round (per seed) | max gap to twin (points) |")
    print("|---|---|---|---|---|---|---|")
    for (attack, fraction, defence), by_seed in runs.items():
        seeds = sorted(by_seed)
        finals = [by_seed[s][-1] for s in seeds]
        escape = [next((str(r + 1) for r, a in enumerate(by_seed[s]) if a > PLATEAU + 0.01), "-") for s in seeds]
        twin = TWINS.get(defence)
        gap = "–"
        if twin is not None and (attack, fraction, twin) in runs:
            other = runs[(attack, fraction, twin)]
            gap = f"{100 * max(abs(a - b) for s in seeds for a, b in zip(by_seed[s], other[s])):.2f}"
        print(f"| {attack} | {float(fraction):.0%} | {defence} | {' / '.join(f'{x:.3f}' for x in finals)} | "
              f"{sum(finals) / len(finals):.3f} | {' / '.join(escape)} | {gap} |")


if __name__ == "__main__":
    main(sys.argv[1])

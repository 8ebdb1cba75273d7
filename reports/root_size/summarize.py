"""The root-set table of reports/root_size/README.md from the four runs' results.csv:

    python reports/root_size/summarize.py reports/root_size

Mean final accuracy over seeds (per seed in brackets) per root-set size, attack and defence, and
the secure rule's clean gap to FedAvg at that size (FedAvg trains on the same devices' data).
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

SIZES = (20, 50, 100, 200)
DEFENCES = ("fedavg", "fltrust", "ppbfl_secure", "ppbfl_secure_rescaled")
CELLS = (("none", "0.00"), ("sign_flip", "0.40"))


def main(folder: str) -> None:
    """Print the markdown table of the ``root<R>/results.csv`` files under ``folder``."""
    print("| root set | attack | malicious | " + " | ".join(DEFENCES) + " | secure − FedAvg (clean, points) |")
    print("|---|---|---|" + "---|" * len(DEFENCES) + "---|")
    for size in SIZES:
        accuracy: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        with open(Path(folder) / f"root{size}" / "results.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                accuracy[(row["attack"], row["malicious_fraction"], row["defence"])].append(float(row["final_accuracy"]))
        for attack, fraction in CELLS:
            runs = {d: accuracy[(attack, fraction, d)] for d in DEFENCES}
            mean = {d: sum(v) / len(v) for d, v in runs.items()}
            gap = f"{100 * (mean['ppbfl_secure'] - mean['fedavg']):+.1f}" if attack == "none" else "–"
            cells = " | ".join(f"{mean[d]:.3f} ({'/'.join(f'{x:.3f}' for x in runs[d])})" for d in DEFENCES)
            print(f"| {size} | {attack} | {float(fraction):.0%} | {cells} | {gap} |")


if __name__ == "__main__":
    main(sys.argv[1])

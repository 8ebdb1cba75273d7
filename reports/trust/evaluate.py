"""Trust evaluation: honest, always-malicious, on-off, slow-poisoning and intermittently dropping
devices through the protocol (in-process Federation + TrustKeeper, no chain), synthetic updates.

Usage: ``python reports/trust/evaluate.py [--rounds 20] [--out reports/trust]``. Writes
``trust.png`` (trust per device over rounds), ``results.md`` (rounds to quarantine per behaviour,
false quarantine rate of honest devices, aggregate error with vs without trust under the on-off
attack) and ``trust.csv``. Updates are synthetic (honest: the true direction plus noise), so the
"error" is the distance of the round's aggregate from the honest devices' mean, not model accuracy.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from ppbfl.fl.federation import Federation
from ppbfl.trust import TrustConfig
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.store import TrustStore

M, D, T, N = 20, 200, 2, 3
BEHAVIOURS = {**dict.fromkeys(range(0, 10), "honest"), **dict.fromkeys(range(10, 13), "always"),
              **dict.fromkeys(range(13, 16), "on-off"), **dict.fromkeys(range(16, 18), "slow"), **dict.fromkeys(range(18, 20), "dropout")}


def updates_for(rnd: int, rng: np.random.Generator, rounds: int) -> tuple[dict[int, np.ndarray], np.ndarray, np.ndarray]:
    """This round's updates by behaviour, the public reference and the honest mean."""
    truth = rng.normal(size=D) * 0.01
    reference = truth + rng.normal(size=D) * 0.003
    out: dict[int, np.ndarray] = {}
    for i, kind in BEHAVIOURS.items():
        honest = truth + rng.normal(size=D) * 0.01
        if kind == "always" or (kind == "on-off" and rnd % 2 == 0):
            out[i] = -3.0 * honest
        elif kind == "slow":  # drifts from honest to the opposite over the run
            a = rnd / rounds
            out[i] = (1 - a) * honest - a * 3.0 * honest
        elif kind == "dropout" and rng.random() < 0.4:
            continue
        else:
            out[i] = honest
    honest_mean = np.mean([out[i] for i, k in BEHAVIOURS.items() if k == "honest"], axis=0)
    return out, reference, honest_mean


def run(rounds: int, with_trust: bool, seed: int = 0) -> tuple[list[dict[int, float]], list[tuple[int, ...]], list[float]]:
    """Trust per round, quarantined per round, aggregate error per round."""
    rng = np.random.default_rng(seed)
    keeper = TrustKeeper(range(M), TrustConfig(), store=TrustStore()) if with_trust else None
    trust_log, quarantine_log, errors = [], [], []
    with Federation.in_process(T, N, D, M) as federation:
        federation.trust = keeper
        for rnd in range(1, rounds + 1):
            updates, reference, honest_mean = updates_for(rnd, rng, rounds)
            result = federation.run_round(rnd, updates, reference)
            errors.append(float(np.linalg.norm(result.aggregate - honest_mean) / np.linalg.norm(honest_mean)))
            if keeper is not None:
                trust_log.append(keeper.reputation())
                quarantine_log.append(keeper.quarantined)
    return trust_log, quarantine_log, errors


def main() -> None:
    """Run with and without trust; write the plot and the tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", default="reports/trust")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trust_log, quarantine_log, errors = run(args.rounds, True)
    _, _, errors_plain = run(args.rounds, False)

    with (out / "trust.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["round", *[f"d{i}:{BEHAVIOURS[i]}" for i in range(M)], "error_with_trust", "error_without"])
        for r, (row, e1, e0) in enumerate(zip(trust_log, errors, errors_plain), start=1):
            writer.writerow([r, *[f"{row[i]:.4f}" for i in range(M)], f"{e1:.4f}", f"{e0:.4f}"])

    first_q: dict[int, int | None] = {i: next((r + 1 for r, q in enumerate(quarantine_log) if i in q), None) for i in range(M)}
    lines = [f"# Trust evaluation ({M} devices, d = {D}, (t, n) = ({T}, {N}), {args.rounds} rounds, default TrustConfig)", "",
             f"Command: `python reports/trust/evaluate.py --rounds {args.rounds}`. Synthetic updates (see the script); "
             "error = ||aggregate - honest mean|| / ||honest mean||.", "",
             "| behaviour | devices | quarantined (of them) | rounds to quarantine (first) | trust after the last round (mean) |",
             "|---|---:|---:|---:|---:|"]
    for kind in ("honest", "always", "on-off", "slow", "dropout"):
        ids = [i for i, k in BEHAVIOURS.items() if k == kind]
        hit = [first_q[i] for i in ids if first_q[i] is not None]
        lines.append(f"| {kind} | {len(ids)} | {len(hit)} | {min(hit) if hit else '-'} | {np.mean([trust_log[-1][i] for i in ids]):.3f} |")
    honest = [i for i, k in BEHAVIOURS.items() if k in ("honest", "dropout")]
    false_q = sum(1 for i in honest for q in quarantine_log if i in q) / (len(honest) * len(quarantine_log))
    lines += ["", f"False quarantine rate of honest devices (incl. intermittent dropouts), device-rounds: {false_q:.3f}", "",
              "| aggregate error | with trust | without trust (weights max(0, cos)) |", "|---|---:|---:|",
              f"| mean over rounds | {np.mean(errors):.4f} | {np.mean(errors_plain):.4f} |",
              f"| mean over on-off rounds where they attack (even) | {np.mean(errors[1::2]):.4f} | {np.mean(errors_plain[1::2]):.4f} |",
              f"| mean over the last 5 rounds (slow poisoners near/after the cosine limit) | {np.mean(errors[-5:]):.4f} | {np.mean(errors_plain[-5:]):.4f} |"]
    (out / "results.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    colours = {"honest": "tab:green", "always": "tab:red", "on-off": "tab:orange", "slow": "tab:purple", "dropout": "tab:blue"}
    xs = range(1, args.rounds + 1)
    for i in range(M):
        kind = BEHAVIOURS[i]
        ax.plot(xs, [row[i] for row in trust_log], color=colours[kind], alpha=0.6, label=kind if i == min(j for j, k in BEHAVIOURS.items() if k == kind) else None)
    cfg = TrustConfig()
    ax.axhline(cfg.quarantine_below, color="k", ls="--", lw=0.8, label="quarantine below")
    ax.axhline(cfg.release_at, color="k", ls=":", lw=0.8, label="release at")
    ax.set_xlabel("round")
    ax.set_ylabel("trust")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "trust.png", dpi=120)
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main()

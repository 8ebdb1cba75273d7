"""Write an IDS run's report: Markdown table, JSON metrics, confusion matrices, macro-F1 per round,
the secure detector and a sample stream for ``ppbfl ids detect``."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import cast

import numpy as np

from ppbfl.ids.detector import write_stream_csv
from ppbfl.ids.federated import IDSRunResult
from ppbfl.ids.generator import summary
from ppbfl.ids.latency import measure
from ppbfl.ids.model import lstm_param_count, model_bytes
from ppbfl.ids.reputation import flag_summary

__all__ = ["LABELS", "machine", "write_report"]

LABELS = {
    "secure_fl": "LSTM, secure FL (ppbfl_secure)", "fedavg_attacked": "LSTM, FedAvg (same attackers)",
    "fedavg_clean": "LSTM, FedAvg (no attackers)", "central_lstm": "LSTM, central", "mlp": "MLP, central",
    "random_forest": "random forest", "gradient_boosting": "gradient boosting",
}


def machine() -> str:
    """One line naming the CPU, cores and Python/torch versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, torch {torch.__version__}"


def _plots(result: IDSRunResult, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.metrics)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    classes = result.data.class_names
    for ax, name in zip(axes.flat, names):
        cm = np.asarray(result.metrics[name]["confusion"], dtype=float)
        share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7, color="white" if share[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=60, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_title(f"{LABELS.get(name, name)}\nmacro-F1 {result.metrics[name]['macro']['f1']:.3f}", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.supxlabel("predicted", fontsize=8)
    fig.supylabel("true", fontsize=8)
    fig.tight_layout()
    confusion = out / "confusion.png"
    fig.savefig(confusion, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, curve in result.macro_f1_per_round.items():
        ax.plot(range(1, len(curve) + 1), curve, marker=".", label=LABELS.get(name, name))
    if "central_lstm" in result.metrics:
        ax.axhline(result.metrics["central_lstm"]["macro"]["f1"], color="grey", linestyle="--", label=LABELS["central_lstm"])
    ax.set_xlabel("round")
    ax.set_ylabel("test macro-F1")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    rounds = out / "macro_f1_rounds.png"
    fig.savefig(rounds, dpi=110)
    plt.close(fig)
    return [confusion, rounds]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def write_report(result: IDSRunResult, out: str | Path, *, command: str, wall_s: float, cpu_s: float) -> list[Path]:
    """Write everything under ``out`` (created); returns the paths written. ``wall_s`` / ``cpu_s``:
    the run's wall-clock and CPU seconds (CPU counts every thread of the process)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data, cfg, det = result.data, result.config, result.detector
    test = data.test
    written = _plots(result, out)
    det.save(out / "detector.pt")
    written.append(out / "detector.pt")
    sample = np.flatnonzero(test & (data.devices < 4))
    write_stream_csv(data.windows[sample], data.devices[sample], data.labels[sample], data.feature_names, data.class_names, out / "stream_sample.csv")
    written.append(out / "stream_sample.csv")
    flags = flag_summary(data.devices[test], result.test_predictions["secure_fl"])
    stats = summary(data)
    timing = measure(det.classify_one, det.classify, data.windows[np.flatnonzero(test)[:500]])
    params = lstm_param_count(len(data.feature_names), len(data.class_names), cfg.hidden)
    doc = {
        "command": command, "machine": machine(), "wall_s": round(wall_s, 1), "cpu_s": round(cpu_s, 1), "latency": timing, "config": repr(cfg),
        "malicious_clients": list(result.malicious), "lstm_parameters": params, "lstm_bytes": model_bytes(det.model),
        "data_summary": stats, "metrics": result.metrics, "macro_f1_per_round": result.macro_f1_per_round,
        "secure_rounds": result.secure_rounds, "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
        "device_flags": {k: {"windows": v.windows, "flagged": v.flagged} for k, v in flags.items()},
    }
    (out / "metrics.json").write_text(json.dumps(doc, indent=1))
    written.append(out / "metrics.json")

    m = result.metrics
    lines = [
        "# LSTM intrusion detection for IoMT, trained by secure federated learning", "",
        f"Produced by `{command}` in {wall_s:.0f} s wall / {cpu_s:.0f} s CPU on {machine()} (torch limited to 1 thread; "
        "the machine was shared, so wall time and latency tails are pessimistic).", "",
        f"Data: the seeded generator (`ppbfl.ids.generator`, see docs/ids.md): {stats['devices']} devices, "
        f"{stats['windows']} windows of {stats['window_steps']} records x {len(data.feature_names)} features; "
        f"test split = the last {cfg.generator.test_fraction:.0%} of every device's stream ({int(test.sum())} windows). "
        f"Class counts: " + ", ".join(f"{k} {v}" for k, v in cast(dict[str, int], stats["class_counts"]).items()) + ".", "",
        f"FL: {'one client per IoMT device' if cfg.partition == 'device' else f'{cfg.clients} clients, Dirichlet({cfg.alpha})'}, "
        f"{cfg.rounds} rounds, {cfg.local_epochs} local epochs, SGD lr {cfg.lr} (lr/3 for the last third); "
        f"{len(result.malicious)} poisoning clients ({cfg.malicious_fraction:.0%}): `{cfg.attack}` {cfg.attack_params}; "
        f"secure rule: Shamir (t, n) = ({cfg.t}, {cfg.n}), cosine verification against a {cfg.root_size}-window root set. "
        f"LSTM: hidden {cfg.hidden}, {params} parameters, {model_bytes(det.model)} bytes.", "",
        "## Overall (test windows; % )", "",
        "| model | accuracy | macro precision | macro recall | macro F1 | detection rate | false-alarm rate | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, x in m.items():
        mac = x["macro"]
        lines.append(
            f"| {LABELS.get(name, name)} | {_pct(x['accuracy'])} | {_pct(mac['precision'])} | {_pct(mac['recall'])} | {_pct(mac['f1'])} "
            f"| {_pct(x['detection_rate'])} | {_pct(x['false_alarm_rate'])} | {result.seconds[name]:.1f} |"
        )
    lines += ["", "## Deltas of the secure-FL LSTM against each baseline (percentage points)", "",
              "| baseline | accuracy | macro precision | macro recall | macro F1 | detection rate | false-alarm rate |", "|---|---|---|---|---|---|---|"]
    s = m["secure_fl"]
    for name, x in m.items():
        if name == "secure_fl":
            continue
        d = [s["accuracy"] - x["accuracy"], *(s["macro"][k] - x["macro"][k] for k in ("precision", "recall", "f1")),
             s["detection_rate"] - x["detection_rate"], s["false_alarm_rate"] - x["false_alarm_rate"]]
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(f"{100 * v:+.1f}" for v in d) + " |")
    lines += ["", "## Per class, secure-FL LSTM (%)", "",
              "| class | precision | recall | F1 | support | detection rate | false-alarm rate |", "|---|---|---|---|---|---|---|"]
    for c, x in s["per_class"].items():
        dr = _pct(x["detection_rate"]) if "detection_rate" in x else "-"
        far = _pct(x["false_alarm_rate"]) if "false_alarm_rate" in x else _pct(s["false_alarm_rate"]) + " (all)"
        lines.append(f"| {c} | {_pct(x['precision'])} | {_pct(x['recall'])} | {_pct(x['f1'])} | {x['support']} | {dr} | {far} |")
    lines += ["", "## Per attack, every model: detection rate / false-alarm rate (%)", "",
              "| model | " + " | ".join(data.class_names[1:]) + " |", "|---|" + "---|" * (len(data.class_names) - 1)]
    for name, x in m.items():
        cells = [f"{_pct(x['per_class'][c]['detection_rate'])} / {_pct(x['per_class'][c]['false_alarm_rate'])}" for c in data.class_names[1:]]
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    lines += [
        "", "## Real time (secure-FL detector, per-window path, one thread)", "",
        f"Latency over {min(500, int(test.sum()))} test windows one at a time: p50 {timing['p50_us']:.0f} us, p99 {timing['p99_us']:.0f} us "
        f"({timing['windows_per_s_single']:.0f} windows/s); batched (256): {timing['windows_per_s_batched']:.0f} windows/s. "
        f"Model memory {model_bytes(det.model)} bytes; per device stream the gateway keeps {det.window} x {len(data.feature_names)} float32 "
        f"records ({4 * det.window * len(data.feature_names)} bytes). Baselines' latency: `benchmarks/test_bench_ids.py`.",
    ]
    rej_bad = sum(len(r["rejected_malicious"]) for r in result.secure_rounds)
    rej_good = sum(len(r["rejected_honest"]) for r in result.secure_rounds)
    n_bad = len(result.malicious) * len(result.secure_rounds)
    n_good = (len(result.secure_rounds[0]["accepted"]) + len(result.secure_rounds[0]["rejected_malicious"])
              + len(result.secure_rounds[0]["rejected_honest"]) - len(result.malicious)) * len(result.secure_rounds) if result.secure_rounds else 0
    attacked = {int(k): float(np.mean(data.labels[test & (data.devices == k)] != 0)) for k in flags}
    top = sorted(flags.values(), key=lambda v: -v.fraction)[:5]
    lines += [
        "", "## Secure rounds", "",
        f"Rejected by the cosine verification on shares: {rej_bad} of {n_bad} poisoned uploads, {rej_good} of {n_good} honest uploads "
        f"(honest non-IID devices whose update points away from the root-set update are dropped that round). "
        f"A poisoned upload passes when its cosine with the root-set update is positive (for a sign flip: the attacker's "
        f"own update pointed away from the reference, so its flip points towards it); it is then clipped to the reference's norm.", "",
        "## Reputation evidence (`ppbfl.ids.reputation.ids_flags`) on the test windows", "",
        "| device | windows | flagged | flagged share | true attack share |", "|---|---|---|---|---|",
        *(f"| {v.device} | {v.windows} | {v.flagged} | {_pct(v.fraction)} | {_pct(attacked[v.device])} |" for v in top), "",
        "Figures: `confusion.png` (confusion matrices, counts; colour = row share), `macro_f1_rounds.png`. "
        "Files: `metrics.json` (every number above), `detector.pt` (the secure-FL detector), "
        "`stream_sample.csv` (devices 0-3 test stream: `ppbfl ids detect reports/ids/stream_sample.csv`).", "",
    ]
    (out / "README.md").write_text("\n".join(lines))
    written.append(out / "README.md")
    return written

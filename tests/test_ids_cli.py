"""``ppbfl ids train`` writes the report and the detector; ``ppbfl ids detect`` streams a CSV."""

from __future__ import annotations

import json
import re

import numpy as np

from ppbfl.cli import main
from ppbfl.ids.detector import Detector
from ppbfl.ids.generator import FEATURES
from ppbfl.ids.reputation import read_flags


def test_train_then_detect(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["ids", "train", "--quick", "--devices", "5", "--segments", "8", "--root-size", "5", "--rounds", "1",
                 "--central-epochs", "1", "--out", str(out)]) == 0
    for name in ("README.md", "metrics.json", "confusion.png", "macro_f1_rounds.png", "detector.pt", "stream_sample.csv"):
        assert (out / name).stat().st_size > 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["lstm_parameters"] == 5797 and "secure_fl" in doc["metrics"]
    assert "| LSTM, secure FL (ppbfl_secure) |" in (out / "README.md").read_text()
    capsys.readouterr()

    flags = tmp_path / "round-1.json"  # what `ppbfl edge --ids-flags DIR` signs as its IDS report of round 1
    assert main(["ids", "detect", str(out / "stream_sample.csv"), "--model", str(out / "detector.pt"), "--stride", "4",
                 "--flags-json", str(flags)]) == 0
    printed = capsys.readouterr().out.splitlines()
    alerts = [line for line in printed if line.startswith("ALERT")]
    summary = {m.group(1): (int(m.group(2)), int(m.group(3))) for line in printed if (m := re.match(r"device (\S+): (\d+) of (\d+)", line))}
    # independent oracle: sliding windows of each device's records classified in one batch
    det = Detector.load(out / "detector.pt")
    rows = np.genfromtxt(out / "stream_sample.csv", delimiter=",", names=True, dtype=None, encoding=None)
    for device, (flagged, seen) in summary.items():
        series = np.stack([rows[f][rows["device"] == int(device)] for f in FEATURES], axis=1)
        starts = range(0, len(series) - det.window + 1, 4)
        pred = det.classify(np.stack([series[s : s + det.window] for s in starts]))
        assert (flagged, seen) == (int(np.sum(pred != 0)), len(starts))
    assert len(alerts) == sum(f for f, _ in summary.values())
    assert read_flags(flags) == {int(device): flagged for device, (flagged, _) in summary.items()}


def test_detect_reports_a_bad_stream_and_a_bad_model(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("device,log_pkt_rate\n1,2\n")
    model = tmp_path / "m.pt"
    model.write_bytes(b"not a model")
    assert main(["ids", "detect", str(bad), "--model", str(model)]) == 2
    assert "ModelFileError" in capsys.readouterr().err

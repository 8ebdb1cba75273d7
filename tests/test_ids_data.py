"""IoMT intrusion data: the seeded generator and the WUSTL-EHMS-2020 / CICIoMT2024 readers."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from ppbfl.errors import ConfigError
from ppbfl.ids.errors import IDSError, LayoutError, StreamError, WindowShapeError
from ppbfl.ids.generator import CLASSES, DEVICE_TYPES, FEATURES, GeneratorConfig, generate, summary
from ppbfl.ids.loaders import (
    CICIOMT_COLUMNS,
    WUSTL_COLUMNS,
    WUSTL_FEATURES,
    ciciomt_category,
    load_ciciomt2024,
    load_wustl_ehms,
    rows_to_windows,
)

SMALL = GeneratorConfig(devices=8, segments=40, window=8, seed=3)


def test_generator_is_deterministic_per_seed():
    a, b = generate(SMALL), generate(SMALL)
    assert a.windows.tobytes() == b.windows.tobytes() and np.array_equal(a.labels, b.labels)
    c = generate(GeneratorConfig(devices=8, segments=40, window=8, seed=4))
    assert not np.array_equal(a.windows, c.windows)


def test_generator_shapes_split_and_stream_order():
    d = generate(SMALL)
    n = SMALL.devices * SMALL.segments
    assert d.windows.shape == (n, SMALL.window, len(FEATURES)) and d.windows.dtype == np.float32
    assert np.isfinite(d.windows).all()
    assert d.labels.shape == d.devices.shape == d.test.shape == (n,)
    # test split = the last 25 % of every device's segments (its most recent traffic)
    for k in range(SMALL.devices):
        seg = d.segment[d.devices == k]
        assert list(seg) == list(range(SMALL.segments))
        assert set(seg[d.test[d.devices == k]]) == set(range(30, 40))
    assert np.array_equal(d.device_types, d.devices % len(DEVICE_TYPES))


def test_generator_label_balance_follows_the_device_priors():
    d = generate(GeneratorConfig(devices=40, segments=60, window=4, seed=0))
    counts = np.bincount(d.labels, minlength=len(CLASSES))
    assert counts.min() > 0
    assert abs(counts[0] / counts.sum() - 0.5) < 0.05  # every type's prior gives normal 1/2
    for k, kind in enumerate(DEVICE_TYPES):
        mine = d.labels[(d.device_types == k) & (d.segment > 0)]
        share = np.bincount(mine, minlength=len(CLASSES)) / len(mine)
        # 590 segments per type: 4 standard deviations of a share is at most 0.083
        assert np.abs(share - np.asarray(kind.attack_prior)).max() < 0.083, kind.name
    # non-IID: the glucose monitors see replay far more often than DoS, the pumps DoS far more often than spoofing
    s = summary(d)["class_counts_by_type"]
    assert s["glucose_monitor"]["replay"] > 2 * s["glucose_monitor"]["dos"]
    assert s["infusion_pump"]["dos"] > 3 * s["infusion_pump"]["spoofing"]


def test_attack_signatures_move_the_features_they_should():
    d = generate(GeneratorConfig(devices=8, segments=60, window=8, seed=1))
    mean = {c: d.windows[d.labels == i].mean(axis=(0, 1)) for i, c in enumerate(CLASSES)}
    f = {name: j for j, name in enumerate(FEATURES)}
    assert mean["dos"][f["log_pkt_rate"]] > mean["normal"][f["log_pkt_rate"]] + 1.0
    assert mean["dos"][f["syn_ratio"]] > 0.3 > mean["normal"][f["syn_ratio"]]
    assert mean["replay"][f["log_ts_age"]] > mean["normal"][f["log_ts_age"]] + 1.0
    assert mean["spoofing"][f["latency_ms"]] > mean["normal"][f["latency_ms"]] + 5.0
    z = f["sensor_z"]
    assert np.abs(d.windows[d.labels == 4][:, :, z]).max(axis=1).mean() > 2.5 > np.abs(d.windows[d.labels == 0][:, :, z]).max(axis=1).mean()


@pytest.mark.parametrize("field, value", [("devices", 0), ("segments", 1), ("window", True), ("test_fraction", 1.0)])
def test_generator_config_errors_name_the_key(field, value):
    with pytest.raises(ConfigError, match=f"ids.{field}"):
        GeneratorConfig(**{field: value})


def _write(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _wustl_row(i, category):
    values = {c: float(i * 100 + j) for j, c in enumerate(WUSTL_COLUMNS)}
    values.update({"Dir": "->", "Flgs": "e", "SrcAddr": "10.0.1.172", "DstAddr": "10.0.1.150", "SrcMac": "0:1", "DstMac": "0:2"})
    values["Label"] = 0 if category == "normal" else 1
    values["Attack Category"] = category
    return values


def test_wustl_reads_features_and_attack_categories(tmp_path):
    cats = ["normal", "Spoofing", "normal", "Data Alteration"]
    header = [*WUSTL_COLUMNS[:-1], "Attack Category", "Label"]
    rows = [[_wustl_row(i, c)[h] for h in header] for i, c in enumerate(cats)]
    table = load_wustl_ehms(_write(tmp_path / "wustl-ehms-2020.csv", header, rows))
    assert table.class_names == ("normal", "data alteration", "spoofing")
    assert table.labels.tolist() == [0, 2, 0, 1]
    assert table.feature_names == WUSTL_FEATURES and "SrcAddr" not in table.feature_names
    expected = [[float(i * 100 + WUSTL_COLUMNS.index(c)) for c in WUSTL_FEATURES] for i in range(4)]
    np.testing.assert_array_equal(table.x, expected)


def test_wustl_without_category_is_binary(tmp_path):
    header = list(WUSTL_COLUMNS)
    rows = [[_wustl_row(i, c)[h] for h in header] for i, c in enumerate(["normal", "x", "normal"])]
    table = load_wustl_ehms(_write(tmp_path / "w.csv", header, rows))
    assert table.class_names == ("normal", "attack") and table.labels.tolist() == [0, 1, 0]


def test_wustl_missing_columns_are_named(tmp_path):
    header = [c for c in WUSTL_COLUMNS if c not in ("SpO2", "Label")]
    path = _write(tmp_path / "w.csv", header, [[1] * len(header)])
    with pytest.raises(LayoutError) as info:
        load_wustl_ehms(path)
    assert info.value.missing == ["SpO2", "Label"] and info.value.layout == "WUSTL-EHMS-2020"
    assert "'SpO2'" in str(info.value)


def test_wustl_non_numeric_value_names_row_and_column(tmp_path):
    header = list(WUSTL_COLUMNS)
    rows = [[_wustl_row(i, "normal")[h] for h in header] for i in range(3)]
    rows[2][header.index("Temp")] = "hot"
    with pytest.raises(StreamError) as info:
        load_wustl_ehms(_write(tmp_path / "w.csv", header, rows))
    assert (info.value.row, info.value.column) == (3, "Temp")


@pytest.mark.parametrize(
    "name, category",
    [("Benign_train.pcap.csv", "benign"), ("TCP_IP-DDoS-ICMP1_train.pcap.csv", "ddos"), ("TCP_IP-DoS-SYN2_test.pcap.csv", "dos"),
     ("MQTT-DDoS-Connect_Flood_train.pcap.csv", "mqtt"), ("ARP_Spoofing_test.pcap.csv", "spoofing"), ("Recon-OS_Scan_train.pcap.csv", "recon")],
)
def test_ciciomt_class_from_file_name(name, category):
    assert ciciomt_category(name) == category


def test_ciciomt_reads_files_labelled_by_name(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 45)), rng.random((2, 45))
    p1 = _write(tmp_path / "TCP_IP-DoS-UDP1_train.pcap.csv", CICIOMT_COLUMNS, a.tolist())
    p2 = _write(tmp_path / "Benign_train.pcap.csv", CICIOMT_COLUMNS, b.tolist())
    table = load_ciciomt2024([p1, p2])
    assert table.class_names == ("benign", "dos") and table.labels.tolist() == [1, 1, 1, 0, 0]
    np.testing.assert_allclose(table.x, np.vstack([a, b]), rtol=0)
    assert table.feature_names[40] == "Magnitue" and len(table.feature_names) == 45


def test_ciciomt_label_column_wins_and_unknown_class_is_typed(tmp_path):
    rows = [[*([0.5] * 45), "Benign"], [*([0.5] * 45), "ARP_Spoofing"]]
    table = load_ciciomt2024([_write(tmp_path / "mixed.csv", [*CICIOMT_COLUMNS, "label"], rows)])
    assert table.class_names == ("benign", "spoofing") and table.labels.tolist() == [0, 1]
    with pytest.raises(IDSError, match="cannot tell"):
        load_ciciomt2024([_write(tmp_path / "capture.csv", CICIOMT_COLUMNS, [[0.5] * 45])])


def test_ciciomt_wrong_layout_is_a_layout_error(tmp_path):
    cic2023 = ["flow_duration", *[c for c in CICIOMT_COLUMNS if c not in ("IGMP", "LLC")], "urg_count"]
    with pytest.raises(LayoutError) as info:
        load_ciciomt2024([_write(tmp_path / "Benign_train.pcap.csv", cic2023, [[1] * len(cic2023)])])
    assert info.value.missing == ["IGMP", "LLC"]


def test_rows_to_windows_matches_a_loop():
    rng = np.random.default_rng(2)
    x, y = rng.random((23, 3)), rng.integers(0, 4, 23)
    for window, stride in ((5, None), (4, 2), (23, 1)):
        w, lab = rows_to_windows(x, y, window, stride)
        step = stride or window
        starts = list(range(0, 23 - window + 1, step))
        assert w.shape == (len(starts), window, 3)
        for i, s in enumerate(starts):
            np.testing.assert_allclose(w[i], x[s : s + window], rtol=1e-6)
            assert lab[i] == y[s + window - 1]
    with pytest.raises(WindowShapeError):
        rows_to_windows(x[:, 0], y, 4)

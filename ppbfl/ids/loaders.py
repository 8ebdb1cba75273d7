"""Readers for the public IoMT intrusion data sets' CSV layouts (a user's local copy; nothing downloads).

**WUSTL-EHMS-2020** (Washington University in St. Louis, Enhanced Healthcare Monitoring System,
https://www.cse.wustl.edu/~jain/ehms/index.html): one row per network flow, Argus flow features
plus the patient's biometrics, label ``Label`` (0 normal, 1 attack) and, in the release that has
it, ``Attack Category``. Column names (:data:`WUSTL_COLUMNS`) as listed in the data set's public
description of its network-flow headers (e.g. the README of
github.com/allenallen512/Intrusion-Detection-for-Medical-IoT-Systems, found through the ``pages``
corpus) and in code that reads ``wustl-ehms-2020.csv``.

**CICIoMT2024** (Canadian Institute for Cybersecurity, https://www.unb.ca/cic/datasets/iomt-dataset-2024.html):
45 numeric features per window of packets (:data:`CICIOMT_COLUMNS`; the CIC page's feature table
and code reading the released CSVs spell them so, including the typo ``Magnitue``). The released
CSVs carry no label column: the class is in the file name (``Benign_train.pcap.csv``,
``TCP_IP-DDoS-ICMP1_train.pcap.csv``, ``MQTT-DoS-Connect_Flood_test.pcap.csv``,
``ARP_Spoofing_train.pcap.csv``, ``Recon-Port_Scan_test.pcap.csv``), mapped by
:func:`ciciomt_category` to the paper's five classes plus benign; a ``label`` column, when a
user's copy has one, wins.

Both return a :class:`FlowTable`; :func:`rows_to_windows` cuts consecutive rows into the
``(N, T, F)`` windows the LSTM reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ppbfl.ids.errors import IDSError, LayoutError, StreamError, WindowShapeError

__all__ = [
    "CICIOMT_COLUMNS", "WUSTL_COLUMNS", "WUSTL_FEATURES", "FlowTable",
    "ciciomt_category", "load_ciciomt2024", "load_wustl_ehms", "rows_to_windows",
]

WUSTL_COLUMNS = (
    "Dir", "Flgs", "SrcAddr", "DstAddr", "Sport", "Dport", "SrcBytes", "DstBytes", "SrcLoad", "DstLoad",
    "SrcGap", "DstGap", "SIntPkt", "DIntPkt", "SIntPktAct", "DIntPktAct", "SrcJitter", "DstJitter",
    "sMaxPktSz", "dMaxPktSz", "sMinPktSz", "dMinPktSz", "Dur", "Trans", "TotPkts", "TotBytes", "Load",
    "Loss", "pLoss", "pSrcLoss", "pDstLoss", "Rate", "SrcMac", "DstMac", "Packet_num",
    "Temp", "SpO2", "Pulse_Rate", "SYS", "DIA", "Heart_rate", "Resp_Rate", "ST", "Label",
)
"""Required WUSTL-EHMS-2020 columns (``Attack Category`` is optional)."""

WUSTL_IDENTIFIERS = ("Dir", "Flgs", "SrcAddr", "DstAddr", "Sport", "Dport", "SrcMac", "DstMac", "Packet_num")
WUSTL_FEATURES = tuple(c for c in WUSTL_COLUMNS if c not in (*WUSTL_IDENTIFIERS, "Label"))
"""The numeric flow and biometric features used (addresses, ports, MACs, flags and the packet
counter identify a flow or a capture, they do not describe behaviour)."""

CICIOMT_COLUMNS = (
    "Header_Length", "Protocol Type", "Duration", "Rate", "Srate", "Drate",
    "fin_flag_number", "syn_flag_number", "rst_flag_number", "psh_flag_number", "ack_flag_number",
    "ece_flag_number", "cwr_flag_number", "ack_count", "syn_count", "fin_count", "rst_count",
    "HTTP", "HTTPS", "DNS", "Telnet", "SMTP", "SSH", "IRC", "TCP", "UDP", "DHCP", "ARP", "ICMP", "IGMP",
    "IPv", "LLC", "Tot sum", "Min", "Max", "AVG", "Std", "Tot size", "IAT", "Number",
    "Magnitue", "Radius", "Covariance", "Variance", "Weight",
)
"""The 45 CICIoMT2024 feature columns, in file order."""

CICIOMT_CLASSES = ("benign", "spoofing", "mqtt", "recon", "ddos", "dos")


@dataclass(frozen=True)
class FlowTable:
    """Rows of a flow data set: ``x: (n, f) float64`` (raw units), ``labels: (n,) int64`` indexing
    ``class_names`` (index 0 is normal/benign traffic), ``feature_names`` and the ``source`` files."""

    x: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    source: tuple[str, ...]


def _read(path: str | Path, layout: str, required: Sequence[str]):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise IDSError(f"{layout} file {path} does not exist")
    try:
        frame = pd.read_csv(path, skipinitialspace=True, float_precision="round_trip")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise LayoutError(layout, str(path), [], f"not a CSV ({type(exc).__name__}: {exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise LayoutError(layout, str(path), missing)
    return frame


def _numeric(frame, columns: Sequence[str], path: str) -> np.ndarray:
    import pandas as pd

    out = np.empty((len(frame), len(columns)))
    for j, column in enumerate(columns):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            raise StreamError(path, row + 1, column, f"{frame[column].iloc[row]!r} is not a finite number")
        out[:, j] = values
    return out


def load_wustl_ehms(path: str | Path) -> FlowTable:
    """Read a WUSTL-EHMS-2020 CSV: :data:`WUSTL_FEATURES` and the class of each flow.

    Classes: ``Attack Category`` when present (``normal`` first, then the others sorted; values
    are stripped and lower-cased), else ``Label`` (``normal`` for 0, ``attack`` for 1).

    Raises:
        LayoutError: a required column is missing (all missing ones are named);
        StreamError: a feature or label value is not a number / not 0 or 1 (row and column named).
    """
    frame = _read(path, "WUSTL-EHMS-2020", WUSTL_COLUMNS)
    x = _numeric(frame, WUSTL_FEATURES, str(path))
    binary = _numeric(frame, ["Label"], str(path))[:, 0]
    if not np.isin(binary, (0.0, 1.0)).all():
        row = int(np.argmax(~np.isin(binary, (0.0, 1.0))))
        raise StreamError(str(path), row + 1, "Label", f"{binary[row]!r} is not 0 or 1")
    if "Attack Category" in frame.columns:
        names = frame["Attack Category"].astype(str).str.strip().str.lower().to_numpy()
        others = sorted(set(names) - {"normal"})
        classes = ("normal", *others)
        labels = np.array([classes.index(n) for n in names], dtype=np.int64)
    else:
        classes = ("normal", "attack")
        labels = binary.astype(np.int64)
    return FlowTable(x, labels, classes, WUSTL_FEATURES, (str(path),))


def ciciomt_category(filename: str) -> str:
    """The CICIoMT2024 class of a released CSV from its file name (see the module docstring).

    Raises:
        IDSError: the name matches no class.
    """
    name = Path(filename).name.lower()
    if name.startswith("benign"):
        return "benign"
    for token, category in (("spoofing", "spoofing"), ("mqtt", "mqtt"), ("recon", "recon"), ("ddos", "ddos"), ("dos", "dos")):
        if token in name:
            return category
    raise IDSError(f"cannot tell the CICIoMT2024 class of {filename!r} (expected Benign*, *Spoofing*, MQTT*, Recon*, *DDoS*, *DoS*)")


def load_ciciomt2024(paths: Sequence[str | Path]) -> FlowTable:
    """Read CICIoMT2024 CSVs (one class per file, named as released, or a ``label`` column).

    Rows keep file order, files the given order. Classes: :data:`CICIOMT_CLASSES` that occur
    (benign first).

    Raises:
        LayoutError: a file lacks one of the 45 feature columns;
        StreamError: a value is not a finite number; IDSError: no files, or an unknown class.
    """
    if not paths:
        raise IDSError("load_ciciomt2024 needs at least one CSV path")
    xs, names = [], []
    for path in paths:
        frame = _read(path, "CICIoMT2024", CICIOMT_COLUMNS)
        xs.append(_numeric(frame, CICIOMT_COLUMNS, str(path)))
        label_column = next((c for c in frame.columns if c.lower() == "label"), None)
        if label_column is None:
            names.extend([ciciomt_category(str(path))] * len(frame))
        else:
            for value in frame[label_column].astype(str):
                names.append("benign" if value.strip().lower() == "benign" else ciciomt_category(value.strip()))
    present = tuple(c for c in CICIOMT_CLASSES if c in set(names))
    labels = np.array([present.index(n) for n in names], dtype=np.int64)
    return FlowTable(np.concatenate(xs), labels, present, CICIOMT_COLUMNS, tuple(str(p) for p in paths))


def rows_to_windows(x: np.ndarray, labels: np.ndarray, window: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cut consecutive rows ``x: (n, f)`` into windows ``(N, window, f) float32``, each labelled by
    its last row (``(N,) int64``); ``stride`` defaults to ``window`` (no overlap). A tail shorter
    than ``window`` is dropped.

    Raises:
        WindowShapeError: ``x`` is not 2-D, ``labels`` not ``(n,)``, ``window`` / ``stride`` < 1.
    """
    x = np.asarray(x)
    labels = np.asarray(labels)
    stride = window if stride is None else stride
    if x.ndim != 2:
        raise WindowShapeError("x", x.shape, "(n, f)")
    if labels.shape != (len(x),):
        raise WindowShapeError("labels", labels.shape, f"({len(x)},)")
    if window < 1 or stride < 1:
        raise WindowShapeError("window/stride", (window, stride), "both >= 1")
    starts = np.arange(0, len(x) - window + 1, stride)
    idx = starts[:, None] + np.arange(window)[None, :]
    return x[idx].astype(np.float32).reshape(len(starts), window, x.shape[1]), labels[starts + window - 1].astype(np.int64)

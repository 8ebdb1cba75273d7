"""Detection metrics per class and macro, from one confusion matrix.

Rows of the confusion matrix are true classes, columns predictions; class 0 is normal traffic.
For every class ``c``: precision, recall, F1 (0 where undefined, as scikit-learn's
``zero_division=0``). For every attack class ``c``: **detection rate** = share of class-``c``
windows flagged as *any* attack (caught, even if under another attack's name) and **false-alarm
rate** = share of normal windows classified as ``c``. The overall false-alarm rate is the share of
normal windows flagged as any attack (the sum of the per-class ones); the overall detection rate
the share of all attack windows flagged. Macro values are unweighted means over classes
(precision/recall/F1: all classes; detection rate: attack classes).
"""

from __future__ import annotations

import numpy as np

from ppbfl.ids.errors import WindowShapeError

__all__ = ["confusion", "detection_metrics"]


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes) int64`` counts, ``[true, predicted]``.

    Raises:
        WindowShapeError: the label arrays differ in shape or hold a label outside ``[0, n_classes)``.
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or t.ndim != 1:
        raise WindowShapeError("labels", (t.shape, p.shape), "two (n,) arrays")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise WindowShapeError("labels", "out of range", f"in [0, {n_classes})")
    return np.bincount(t.astype(np.int64) * n_classes + p.astype(np.int64), minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def detection_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: tuple[str, ...]) -> dict[str, object]:
    """All metrics as a JSON-ready dict: ``accuracy``, ``per_class`` ``{class: {precision, recall,
    f1, support, detection_rate, false_alarm_rate}}`` (the last two only for attack classes),
    ``macro`` ``{precision, recall, f1, detection_rate}``, ``detection_rate``, ``false_alarm_rate``
    and ``confusion`` (list of lists)."""
    k = len(class_names)
    cm = confusion(y_true, y_pred, k)
    normal_total = cm[0].sum()
    per_class: dict[str, dict[str, float]] = {}
    for c, name in enumerate(class_names):
        precision = _ratio(cm[c, c], cm[:, c].sum())
        recall = _ratio(cm[c, c], cm[c].sum())
        row = {
            "precision": precision, "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall), "support": int(cm[c].sum()),
        }
        if c:
            row["detection_rate"] = _ratio(cm[c, 1:].sum(), cm[c].sum())
            row["false_alarm_rate"] = _ratio(cm[0, c], normal_total)
        per_class[name] = row
    attack = list(class_names[1:])
    return {
        "accuracy": _ratio(np.trace(cm), cm.sum()),
        "per_class": per_class,
        "macro": {
            **{m: float(np.mean([per_class[n][m] for n in class_names])) for m in ("precision", "recall", "f1")},
            "detection_rate": float(np.mean([per_class[n]["detection_rate"] for n in attack])),
        },
        "detection_rate": _ratio(cm[1:, 1:].sum(), cm[1:].sum()),
        "false_alarm_rate": _ratio(cm[0, 1:].sum(), normal_total),
        "confusion": cm.tolist(),
    }

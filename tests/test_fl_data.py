"""Datasets (shipped and user CSV), partitioning, models and their flat parameter vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ppbfl.errors import PPBFLError
from ppbfl.fl.datasets import load_csv, load_dataset
from ppbfl.fl.errors import MissingColumnError, NonNumericColumnError, PartitionError, TooFewClassesError, UnknownDatasetError
from ppbfl.fl.models import build_model, get_flat, n_params, set_flat
from ppbfl.fl.partition import dirichlet_partition, iid_partition
from ppbfl.fl.training import TrainSettings, local_update


@pytest.mark.parametrize(
    "name, n, f, k",
    [("breast_cancer", 569, 30, 2), ("digits", 1797, 64, 10), ("heart_failure", 299, 12, 2), ("framingham", 4240, 15, 2)],
)
def test_shipped_datasets_load_split_and_standardise(name, n, f, k):
    d = load_dataset(name, seed=1)
    assert d.x_train.shape[1] == d.x_test.shape[1] == f and d.n_classes == k
    assert len(d.y_train) + len(d.y_test) == n
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert not np.isnan(d.x_train).any() and not np.isnan(d.x_test).any()
    # standardised with training statistics: training mean 0 / std 1 (constant columns stay 0)
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0, atol=1e-4)
    std = d.x_train.std(axis=0)
    assert np.all((np.abs(std - 1) < 1e-3) | (std < 1e-6))
    # stratified: class shares of train and test agree
    share_tr = np.bincount(d.y_train, minlength=k) / len(d.y_train)
    share_te = np.bincount(d.y_test, minlength=k) / len(d.y_test)
    assert np.abs(share_tr - share_te).max() < 0.02
    again = load_dataset(name, seed=1)
    np.testing.assert_array_equal(again.x_test, d.x_test)
    assert not np.array_equal(load_dataset(name, seed=2).x_test, d.x_test)  # another seed, another split


def test_framingham_imputes_missing_values():
    assert load_dataset("framingham").info["imputed_values"] > 0


def test_unknown_dataset_is_typed():
    with pytest.raises(UnknownDatasetError):
        load_dataset("mnist")


def _csv(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_user_csv_loads_selected_features(tmp_path):
    rows = "\n".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}" for i in range(40))
    d = load_csv(_csv(tmp_path, "age,score,outcome\n" + rows), "outcome", ["age", "score"], seed=0)
    assert d.feature_names == ("age", "score") and d.n_classes == 2 and d.info["classes"] == ["no", "yes"]


def test_user_csv_errors_name_the_column(tmp_path):
    path = _csv(tmp_path, "age,notes,outcome\n" + "\n".join(f"{i},n{i},{i % 2}" for i in range(20)))
    with pytest.raises(MissingColumnError) as err:
        load_csv(path, "death")
    assert err.value.column == "death" and "'death'" in str(err.value)
    with pytest.raises(MissingColumnError, match="'weight'"):
        load_csv(path, "outcome", ["age", "weight"])
    with pytest.raises(NonNumericColumnError) as err:
        load_csv(path, "outcome")
    assert err.value.column == "notes" and isinstance(err.value, PPBFLError)
    single = _csv(tmp_path, "a,y\n" + "\n".join(f"{i},1" for i in range(10)))
    with pytest.raises(TooFewClassesError, match="'y'"):
        load_csv(single, "y")


def test_iid_partition_covers_every_sample_once():
    labels = np.repeat([0, 1], 50)
    parts = iid_partition(labels, 7, np.random.default_rng(0), min_samples=10)
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))
    assert min(map(len, parts)) >= 14
    with pytest.raises(PartitionError, match="at least 20"):
        iid_partition(labels, 6, np.random.default_rng(0), min_samples=20)


def test_dirichlet_partition_is_skewed_for_small_alpha_and_respects_the_minimum():
    labels = np.repeat(np.arange(4), 100)
    parts = dirichlet_partition(labels, 8, 0.1, np.random.default_rng(0), min_samples=5)
    assert sorted(np.concatenate(parts).tolist()) == list(range(400))
    assert min(map(len, parts)) >= 5
    dominant = [np.bincount(labels[p], minlength=4).max() / len(p) for p in parts]
    iid = [np.bincount(labels[p], minlength=4).max() / len(p) for p in iid_partition(labels, 8, np.random.default_rng(0))]
    assert np.mean(dominant) > np.mean(iid) + 0.2
    with pytest.raises(PartitionError, match=r"min_samples|every device"):
        dirichlet_partition(labels, 8, 0.01, np.random.default_rng(0), min_samples=49, max_tries=5)
    with pytest.raises(PartitionError, match="alpha"):
        dirichlet_partition(labels, 8, 0.0, np.random.default_rng(0))


@pytest.mark.parametrize("kind, f, k, image", [("logreg", 30, 2, None), ("mlp", 12, 2, None), ("cnn", 64, 10, (8, 8))])
def test_flat_roundtrip_and_local_update_is_the_parameter_difference(kind, f, k, image):
    model = build_model(kind, f, k, image_shape=image, seed=0)
    flat = get_flat(model)
    assert flat.shape == (n_params(model),) and flat.dtype == np.float32
    set_flat(model, flat * 2)
    np.testing.assert_array_equal(get_flat(model), flat * 2)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, f)).astype(np.float32), rng.integers(0, k, 32)
    delta = local_update(model, flat, x, y, TrainSettings(epochs=1, batch_size=8, lr=0.1), torch.Generator().manual_seed(0))
    np.testing.assert_allclose(delta, get_flat(model) - flat, atol=1e-6)
    assert np.abs(delta).max() > 0
    again = local_update(model, flat, x, y, TrainSettings(epochs=1, batch_size=8, lr=0.1), torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(again, delta)

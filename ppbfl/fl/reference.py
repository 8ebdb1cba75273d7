"""FLTrust's public reference ``r``, computed by whoever holds the root set: the coordinator *and* each edge node.

Rule ``"cosine"`` opens ``<g_i, r>`` of every update (docs/leakage.md), so whoever picks ``r``
picks the linear functional of every update that the round opens. The coordinator is an
untrusted relay: a node whose operator gives it a :class:`RootReference` (``ppbfl edge
--reference FILE``, or :attr:`ppbfl.protocol.edge_node.EdgeNode.reference_source` in process)
computes ``r`` itself from the round's global model and refuses a relayed reference that is not
its own (docs/security.md, row "choose the public reference ``r``").

The reference of round ``rnd`` from the global model ``G`` ((d,) float32) is FLTrust's root-set
update::

    r = local_update(model, G, x[root], y[root], TrainSettings(epochs, batch_size, lr),
                     torch.Generator().manual_seed(seed * 7919 + rnd))

(:func:`ppbfl.fl.training.local_update`: the trained parameters minus ``G``, (d,) float32). What
it depends on is public to the consortium and fixed in a :class:`ReferenceSpec` (JSON): a
shipped dataset and its split seed, the root set's indices in the training split, the model
architecture and the training settings, and the seed. Every party that loads the same spec
computes the same ``r`` (bitwise on one machine and torch build; the nodes' tolerance covers
last-bit differences elsewhere: :attr:`EdgeNode.reference_tolerance`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ppbfl.errors import ConfigError
from ppbfl.fl.datasets import SHIPPED

if TYPE_CHECKING:
    from torch import nn

    from ppbfl.fl.training import TrainSettings

__all__ = ["ROUND_SEED_STRIDE", "ReferenceSpec", "RootReference", "load_reference_spec"]

ROUND_SEED_STRIDE = 7919
"""The shuffling generator of round ``rnd`` is seeded ``seed * ROUND_SEED_STRIDE + rnd``."""


class ReferenceSpec(BaseModel):
    """What the root-set reference depends on (public to the consortium; JSON with these keys).

    Attributes:
        dataset: a shipped dataset (:data:`ppbfl.fl.datasets.SHIPPED`; nothing is downloaded).
        split_seed: the seed of its train/test split (:func:`ppbfl.fl.datasets.load_dataset`).
        root: indices of the root set in the training split (distinct, at least one).
        model: ``"logreg"``, ``"mlp"`` or ``"cnn"`` (:func:`ppbfl.fl.models.build_model`).
        hidden: the MLP's hidden width.
        epochs, batch_size, lr: the root-set training (:class:`ppbfl.fl.training.TrainSettings`).
        seed: round ``rnd`` shuffles with ``torch.Generator().manual_seed(seed * 7919 + rnd)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    dataset: str
    split_seed: int = 0
    root: list[int] = Field(min_length=1)
    model: Literal["logreg", "mlp", "cnn"] = "mlp"
    hidden: int = Field(default=64, ge=1)
    epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=16, ge=1)
    lr: float = Field(default=0.1, gt=0.0, allow_inf_nan=False)
    seed: int = 0

    @field_validator("dataset")
    @classmethod
    def _shipped(cls, dataset: str) -> str:
        if dataset not in SHIPPED:
            raise ValueError(f"{dataset!r} is not a shipped dataset ({', '.join(SHIPPED)})")
        return dataset

    @field_validator("root")
    @classmethod
    def _distinct_indices(cls, root: list[int]) -> list[int]:
        if min(root) < 0 or len(set(root)) != len(root):
            raise ValueError("expected distinct indices >= 0 into the training split")
        return root

    def write(self, path: str | Path) -> None:
        """Write the spec as JSON to ``path`` (what ``ppbfl edge --reference`` reads)."""
        Path(path).write_text(json.dumps(self.model_dump(), indent=1))


def load_reference_spec(path: str | Path) -> ReferenceSpec:
    """The :class:`ReferenceSpec` in the JSON file ``path``.

    Raises:
        ConfigError: the file cannot be read or is not JSON (key ``reference``), or a value is
            invalid (key ``reference.<field>``).
    """
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError("reference", f"{path}: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError("reference", f"{path}: expected a JSON object")
    return _validated(values)


def _validated(values: dict) -> ReferenceSpec:
    """``values`` as a :class:`ReferenceSpec` (ConfigError naming ``reference.<field>``)."""
    try:
        return ReferenceSpec.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"reference.{where}" if where else "reference", first["msg"]) from None


class RootReference:
    """The root-set reference of each round: ``reference(rnd, G) -> r`` ((d,) float32; see the module docstring).

    One instance trains one model at a time (a lock: an edge node answers calls from several
    threads). Build it from a spec with :meth:`from_spec`.

    Args:
        model: the architecture (its parameters are overwritten by each call's ``G``).
        x, y: the root set: (k, f) float32 features and (k,) int64 labels.
        settings: the root-set training.
        seed: the seed rule's ``seed``.
    """

    def __init__(self, model: nn.Module, x: np.ndarray, y: np.ndarray, settings: TrainSettings, seed: int) -> None:
        from ppbfl.fl.models import n_params

        self.model, self.settings, self.seed = model, settings, int(seed)
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.y = np.ascontiguousarray(y, dtype=np.int64)
        self.d = n_params(model)
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: ReferenceSpec) -> RootReference:
        """Load the spec's dataset and root set and build its model (the global torch RNG is left as it was).

        Raises:
            ConfigError: ``reference.root`` has an index beyond the training split, or
                ``reference.model`` does not fit the dataset (``cnn`` needs 8x8 images).
        """
        import torch

        from ppbfl.fl.datasets import load_dataset
        from ppbfl.fl.errors import UnknownComponentError
        from ppbfl.fl.models import build_model
        from ppbfl.fl.training import TrainSettings

        data = load_dataset(spec.dataset, seed=spec.split_seed)
        if max(spec.root) >= len(data.y_train):
            raise ConfigError("reference.root", f"index {max(spec.root)} is beyond the training split of {spec.dataset} ({len(data.y_train)} samples)")
        with torch.random.fork_rng(devices=[]):  # build_model seeds the global generator
            try:
                model = build_model(spec.model, data.n_features, data.n_classes, hidden=spec.hidden, image_shape=data.image_shape)
            except UnknownComponentError as error:
                raise ConfigError("reference.model", str(error)) from None
        root = np.asarray(spec.root, dtype=np.int64)
        settings = TrainSettings(epochs=spec.epochs, batch_size=spec.batch_size, lr=spec.lr)
        # torch's first optimizer imports torch._dynamo (~3.5 s): here, at load, not in a node's first
        # verify request, which runs under the coordinator's deadline
        torch.optim.SGD(model.parameters(), lr=spec.lr)
        return cls(model, data.x_train[root], data.y_train[root], settings, spec.seed)

    @classmethod
    def load(cls, path: str | Path) -> RootReference:
        """:meth:`from_spec` of the JSON spec in ``path`` (:func:`load_reference_spec`; ConfigError as it)."""
        return cls.from_spec(load_reference_spec(path))

    def __call__(self, round: int, global_params: np.ndarray) -> np.ndarray:
        """The reference of round ``round`` from the global model ``global_params`` ((d,) float32):
        (d,) float32, the root set's update.

        Raises:
            ConfigError: ``global_params`` is not (d,) or not finite (key ``model``).
        """
        import torch

        from ppbfl.fl.training import local_update

        params = np.asarray(global_params)
        if params.shape != (self.d,) or not np.isfinite(params).all():
            raise ConfigError("model", f"shape {params.shape} (expected ({self.d},)), finite entries expected")
        generator = torch.Generator().manual_seed(self.seed * ROUND_SEED_STRIDE + int(round))
        with self._lock:
            return local_update(self.model, params.astype(np.float32), self.x, self.y, self.settings, generator)

    @staticmethod
    def spec_for(
        dataset: str, root: Sequence[int], *, split_seed: int = 0, model: str = "mlp", hidden: int = 64, epochs: int = 1,
        batch_size: int = 16, lr: float = 0.1, seed: int = 0,
    ) -> ReferenceSpec:
        """A :class:`ReferenceSpec` from Python values (numpy integers accepted in ``root``).

        Raises:
            ConfigError: naming the invalid value (``reference.<field>``).
        """
        return _validated({
            "dataset": dataset, "split_seed": int(split_seed), "root": [int(i) for i in root], "model": model, "hidden": int(hidden),
            "epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr), "seed": int(seed),
        })

"""Split training samples over devices: IID or Dirichlet(alpha) non-IID by label.

Both return a list of ``n_devices`` index arrays (``int64``, sorted) that partition
``range(len(labels))``; every device gets at least ``min_samples`` samples or
:class:`~ppbfl.fl.errors.PartitionError` is raised.
"""

from __future__ import annotations

import numpy as np

from ppbfl.fl.errors import PartitionError

__all__ = ["iid_partition", "dirichlet_partition", "partition"]


def _check(n: int, n_devices: int, min_samples: int) -> None:
    if n_devices < 1:
        raise PartitionError(f"n_devices must be >= 1, got {n_devices}")
    if min_samples < 0:
        raise PartitionError(f"min_samples must be >= 0, got {min_samples}")
    if n_devices * min_samples > n:
        raise PartitionError(
            f"cannot give {n_devices} devices at least {min_samples} samples each from {n} samples"
        )


def iid_partition(labels: np.ndarray, n_devices: int, rng: np.random.Generator, min_samples: int = 1) -> list[np.ndarray]:
    """Shuffle and cut into ``n_devices`` near-equal shards. ``labels: (n,)``."""
    n = len(labels)
    _check(n, n_devices, min_samples)
    order = rng.permutation(n)
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, n_devices)]


def dirichlet_partition(
    labels: np.ndarray,
    n_devices: int,
    alpha: float,
    rng: np.random.Generator,
    min_samples: int = 1,
    max_tries: int = 100,
) -> list[np.ndarray]:
    """Per class, split its samples over devices in proportions drawn from Dirichlet(alpha).

    Small ``alpha`` = strongly non-IID. Redraws up to ``max_tries`` times until every device
    has ``min_samples``; raises :class:`PartitionError` if that never happens.
    """
    if not alpha > 0:
        raise PartitionError(f"alpha must be > 0, got {alpha}")
    labels = np.asarray(labels)
    _check(len(labels), n_devices, min_samples)
    for _ in range(max_tries):
        parts: list[list[int]] = [[] for _ in range(n_devices)]
        for cls in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            props = rng.dirichlet(np.full(n_devices, alpha))
            cuts = (np.cumsum(props)[:-1] * len(idx)).astype(int)
            for device, chunk in enumerate(np.split(idx, cuts)):
                parts[device].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_samples:
            return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    raise PartitionError(
        f"Dirichlet(alpha={alpha}) split of {len(labels)} samples over {n_devices} devices did not give "
        f"every device {min_samples} samples in {max_tries} tries; raise alpha or lower min_samples"
    )


def partition(
    labels: np.ndarray, n_devices: int, scheme: str, rng: np.random.Generator, *, alpha: float = 0.5, min_samples: int = 1
) -> list[np.ndarray]:
    """Dispatch on ``scheme`` (``"iid"`` or ``"dirichlet"``)."""
    if scheme == "iid":
        return iid_partition(labels, n_devices, rng, min_samples)
    if scheme == "dirichlet":
        return dirichlet_partition(labels, n_devices, alpha, rng, min_samples)
    raise PartitionError(f"unknown partition scheme {scheme!r} (iid, dirichlet)")

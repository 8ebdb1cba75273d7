"""Poisoning attacks applied by malicious devices.

An attack acts in up to two places: on the device's local data before training
(:meth:`Attack.poison_data`: label flip, backdoor) and on the trained update before upload
(:meth:`Attack.poison_update`: sign flip, scaling, Gaussian noise, adaptive). Updates are
``(d,) float32`` vectors; labels ``(n,) int64``; features ``(n, f) float32``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ppbfl.fl.errors import ConfigError
from ppbfl.fl.registry import build_component

__all__ = [
    "Attack", "NoAttack", "LabelFlip", "SignFlip", "Scaling", "GaussianNoise", "Backdoor", "Adaptive", "OutOfRange",
    "ATTACKS", "make_attack", "cosine",
]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two ``(d,)`` vectors (0 if either is zero)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return 0.0 if na == 0 or nb == 0 else float(np.dot(a.astype(np.float64), b.astype(np.float64)) / (na * nb))


class Attack:
    """Base class: the identity on data and updates.

    ``field_level``: the attack acts on the field elements a device shares, below the float level
    (:class:`OutOfRange`); the runner then hands the plaintext rules the decoded vector such a
    device effectively contributes and the secure rule the field vector itself.
    """

    name = "none"
    field_level = False

    def poison_data(self, x: np.ndarray, y: np.ndarray, n_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return the (possibly poisoned) training data of a malicious device."""
        return x, y

    def poison_update(self, delta: np.ndarray, reference: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        """Return the update a malicious device uploads; ``reference: (d,)`` is what the attacker
        believes the benign direction is (the mean honest update of the malicious devices)."""
        return delta

    @property
    def backdoor(self) -> Backdoor | None:
        return None


class NoAttack(Attack):
    """No attack (the malicious fraction is ignored)."""


@dataclass
class LabelFlip(Attack):
    """Train on flipped labels: ``y -> n_classes - 1 - y`` (binary: 0 <-> 1)."""

    name = "label_flip"

    def poison_data(self, x, y, n_classes, rng):
        return x, (n_classes - 1 - y).astype(np.int64)


@dataclass
class SignFlip(Attack):
    """Upload ``-delta`` (times ``factor``, default 1)."""

    factor: float = 1.0
    name = "sign_flip"

    def poison_update(self, delta, reference, rng):
        return (-self.factor * delta).astype(np.float32)


@dataclass
class Scaling(Attack):
    """Upload ``factor * delta`` (model replacement / boosting)."""

    factor: float = 10.0
    name = "scaling"

    def poison_update(self, delta, reference, rng):
        return (self.factor * delta).astype(np.float32)


@dataclass
class GaussianNoise(Attack):
    """Upload ``delta + N(0, std^2 I)``."""

    std: float = 1.0
    name = "noise"

    def poison_update(self, delta, reference, rng):
        return (delta + rng.normal(0.0, self.std, size=delta.shape)).astype(np.float32)


@dataclass
class Backdoor(Attack):
    """Stamp a trigger on a fraction of the device's samples and relabel them ``target``.

    The trigger sets features ``features`` (indices) to ``value`` (in standardised units). The
    attack is measured by the backdoor success rate: the share of test samples whose true label is
    not ``target`` that the model classifies as ``target`` once stamped.
    """

    target: int = 0
    features: tuple[int, ...] = (0, 1, 2)
    value: float = 4.0
    fraction: float = 0.5
    name = "backdoor"

    def stamp(self, x: np.ndarray) -> np.ndarray:
        """Copy of ``x: (n, f)`` with the trigger set."""
        out = np.array(x, dtype=np.float32, copy=True)
        out[:, list(self.features)] = self.value
        return out

    def poison_data(self, x, y, n_classes, rng):
        if not 0 <= self.target < n_classes:
            raise ConfigError("attack_params.backdoor.target", f"{self.target} is not a class in [0, {n_classes})")
        if max(self.features, default=-1) >= x.shape[1]:
            raise ConfigError("attack_params.backdoor.features", f"index {max(self.features)} >= {x.shape[1]} features")
        chosen = rng.random(len(y)) < self.fraction
        x = x.copy()
        y = y.copy()
        x[chosen] = self.stamp(x[chosen])
        y[chosen] = self.target
        return x, y

    @property
    def backdoor(self) -> Backdoor:
        return self


@dataclass
class Adaptive(Attack):
    """Push against the reference while staying just above a cosine threshold to it.

    The uploaded vector is ``||delta|| * (c * r_hat + sqrt(1 - c^2) * e)`` with
    ``c = threshold + margin``, ``r_hat`` the unit reference and ``e`` the unit component of
    ``-delta`` orthogonal to the reference: its cosine to the reference is exactly ``c``, so a
    cosine filter at ``threshold`` (FLTrust: ReLU at 0) keeps it while it steers the model away.
    """

    threshold: float = 0.0
    margin: float = 0.01
    name = "adaptive"

    def poison_update(self, delta, reference, rng):
        if reference is None or not np.any(reference):
            reference = delta
        if not np.any(reference):
            return delta.astype(np.float32)  # nothing to steer against: a zero update stays zero
        r = reference.astype(np.float64)
        r_hat = r / np.linalg.norm(r)
        w = -delta.astype(np.float64)
        e = w - np.dot(w, r_hat) * r_hat
        if np.linalg.norm(e) < 1e-12 * max(1.0, float(np.linalg.norm(w))):
            e = rng.normal(size=r.shape)
            e -= np.dot(e, r_hat) * r_hat
        e /= np.linalg.norm(e)
        c = min(1.0, self.threshold + self.margin)
        norm = float(np.linalg.norm(delta)) or float(np.linalg.norm(r))
        return (norm * (c * r_hat + np.sqrt(max(0.0, 1.0 - c * c)) * e)).astype(np.float32)


@dataclass
class OutOfRange(Attack):
    """Issue 13's attack (:func:`ppbfl.fl.field_attacks.out_of_range_shift`): the device shares its
    honest encoded update shifted on three coordinates by field elements of order ``magnitude``
    and ``p / 2``, chosen so that the opened ``<g, r>`` and ``||g||^2`` (mod p) are those of the
    honest update. Its float update is left as trained (:meth:`poison_update` is the identity);
    the field vector is built per rule by :mod:`ppbfl.fl.field_attacks` (``field_level``).

    ``magnitude``: the first shifted entry, as a field element (default ``2^50``), an int in
    ``[1, 2^60)``.
    """

    magnitude: int = 1 << 50
    name = "out_of_range"
    field_level = True

    def __post_init__(self) -> None:
        if isinstance(self.magnitude, bool) or not isinstance(self.magnitude, int) or not 1 <= self.magnitude < 1 << 60:
            raise ConfigError("attack_params.out_of_range.magnitude", f"must be an integer in [1, 2^60), got {self.magnitude!r}")


ATTACKS: dict[str, type[Attack]] = {
    "none": NoAttack, "label_flip": LabelFlip, "sign_flip": SignFlip, "scaling": Scaling,
    "noise": GaussianNoise, "backdoor": Backdoor, "adaptive": Adaptive, "out_of_range": OutOfRange,
}


def make_attack(name: str, params: dict[str, Any] | None = None) -> Attack:
    """Build an attack by name with keyword ``params`` (a bad key raises ConfigError naming it)."""
    params = dict(params or {})
    if "features" in params:
        params["features"] = tuple(int(i) for i in params["features"])
    return build_component("attack", "attack_params", ATTACKS, name, params)

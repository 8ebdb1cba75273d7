"""Poisoning attacks applied by malicious devices.

An attack acts in up to two places: on the device's local data before training
(:meth:`Attack.poison_data`: label flip, backdoor) and on the trained update before upload
(:meth:`Attack.poison_update`: sign flip, scaling, Gaussian noise, adaptive). Updates are
``(d,) float32`` vectors; labels ``(n,) int64``; features ``(n, f) float32``.

Attacks that change over time (``on_off``: alternate attacking and behaving; ``slow_poison``: a
cosine to the benign direction that falls round after round) give the attack of each round with
:meth:`Attack.for_round` (rounds counted from 0, as the runner does); the others are the same in
every round. They are what a reputation system (:mod:`ppbfl.trust`) is meant to catch: a filter
that judges each round alone lets the on-off device's good rounds count and the slow poisoner's
early, still-similar rounds through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ppbfl.fl.errors import ConfigError
from ppbfl.fl.registry import build_component

__all__ = [
    "Attack", "NoAttack", "LabelFlip", "SignFlip", "Scaling", "GaussianNoise", "Backdoor", "Adaptive", "OutOfRange",
    "OnOff", "SlowPoison", "ATTACKS", "at_cosine", "make_attack", "cosine",
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

    def for_round(self, round_: int) -> Attack:
        """The attack a malicious device runs in round ``round_`` (from 0); this one in every round."""
        return self

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
        return at_cosine(delta, reference, min(1.0, self.threshold + self.margin), rng)


def at_cosine(delta: np.ndarray, reference: np.ndarray | None, c: float, rng: np.random.Generator) -> np.ndarray:
    """``||delta|| (c r_hat + sqrt(1 - c^2) e)``: ``(d,)`` float32 at cosine exactly ``c`` in [-1, 1]
    to ``reference`` (``delta`` itself when None or zero), ``e`` the unit component of ``-delta``
    orthogonal to it (random if ``delta`` is parallel to it); a zero ``delta`` and reference stay zero."""
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


def _positive_int(key: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(key, f"must be an integer >= {least}, got {value!r}")


def _number(key: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(key, f"must be a number in [{low}, {high}], got {value!r}")


@dataclass
class OnOff(Attack):
    """Alternate (the on-off attack on reputation): sign flip (``-factor * delta``) for ``on`` rounds,
    then the honest update for ``off`` rounds, repeating from round 0 (attacking first).

    Args (``[attack_params.on_off]``): ``factor`` > 0 (default 1), ``on`` >= 1 and ``off`` >= 1
    rounds (default 1 and 1: every other round).
    """

    factor: float = 1.0
    on: int = 1
    off: int = 1
    name = "on_off"

    def __post_init__(self) -> None:
        _number("attack_params.on_off.factor", self.factor, 1e-12, 1e12)
        _positive_int("attack_params.on_off.on", self.on, 1)
        _positive_int("attack_params.on_off.off", self.off, 1)

    def attacking(self, round_: int) -> bool:
        """Whether round ``round_`` (from 0) is an attacking round: ``round_ mod (on + off) < on``."""
        return round_ % (self.on + self.off) < self.on

    def for_round(self, round_: int) -> Attack:
        """:class:`SignFlip` (``factor``) in an attacking round, :class:`NoAttack` otherwise."""
        return SignFlip(float(self.factor)) if self.attacking(round_) else NoAttack()


@dataclass
class SlowPoison(Attack):
    """Drift away slowly: in round ``k`` (from 0) upload the trained update turned to cosine
    ``max(end, start - step * k)`` to the benign direction the attackers see (the mean of their
    own honest updates; :func:`at_cosine`, norm kept). Early rounds pass a cosine filter; the
    cosine crosses 0 after ``start / step`` rounds and the update then pushes against the model.

    Args (``[attack_params.slow_poison]``): ``start`` in [-1, 1] (default 0.6), ``step`` > 0
    (default 0.1 per round), ``end`` in [-1, start] (default -1).
    """

    start: float = 0.6
    step: float = 0.1
    end: float = -1.0
    name = "slow_poison"

    def __post_init__(self) -> None:
        _number("attack_params.slow_poison.start", self.start, -1.0, 1.0)
        _number("attack_params.slow_poison.step", self.step, 1e-12, 2.0)
        _number("attack_params.slow_poison.end", self.end, -1.0, float(self.start))

    def cosine_at(self, round_: int) -> float:
        """The cosine of round ``round_``: ``max(end, start - step * round_)``."""
        return max(float(self.end), float(self.start) - float(self.step) * round_)

    def for_round(self, round_: int) -> Attack:
        """An :class:`Adaptive` attack at this round's cosine (threshold = cosine, margin 0)."""
        return Adaptive(threshold=self.cosine_at(round_), margin=0.0)


ATTACKS: dict[str, type[Attack]] = {
    "none": NoAttack, "label_flip": LabelFlip, "sign_flip": SignFlip, "scaling": Scaling,
    "noise": GaussianNoise, "backdoor": Backdoor, "adaptive": Adaptive, "out_of_range": OutOfRange,
    "on_off": OnOff, "slow_poison": SlowPoison,
}


def make_attack(name: str, params: dict[str, Any] | None = None) -> Attack:
    """Build an attack by name with keyword ``params`` (a bad key raises ConfigError naming it)."""
    params = dict(params or {})
    if "features" in params:
        params["features"] = tuple(int(i) for i in params["features"])
    return build_component("attack", "attack_params", ATTACKS, name, params)

"""The secure cosine defence (DESIGN §5) as one more :class:`~ppbfl.fl.aggregation.Aggregator`.

:class:`SecureCosineAggregator` (registry key ``ppbfl_secure``, shown as "ppbfl (secure)") runs
one round of the protocol itself on the plaintext updates of the simulation -- the same code the
demo and a deployment run, through :class:`ppbfl.fl.federation.SecureCosineFilter` (an in-process
deployment: devices as clients, edge nodes, the coordinator as a relay; no chain):

1. every device encodes its update in fixed point, Shamir-shares it among ``n`` edge nodes
   with threshold ``t`` (seed-compressed, with a consistency mask) and uploads each node its share;
2. the edge nodes run the share-consistency check, open only ``<g_i, r>`` and ``||g_i||^2``
   against the public root-set reference ``r`` (the very update the runner computes for the
   FLTrust baseline), weight ``w_i = max(0, cos_i)`` (``cos_i > tau``), clip
   ``c_i = min(1, ||r|| / ||g_i||)`` and aggregate ``sum_i w_i c_i g_i`` on shares; the aggregate
   is robustly reconstructed and divided by ``sum_i w_i`` in the clear.

**Compared with plaintext FLTrust** (same reference, same ``ReLU(cos)`` trust, same
``sum_i w_i s_i g_i / sum_i w_i`` convention) the result differs only by (a) fixed point: updates,
the reference and the weights ``w_i c_i`` are rounded to ``2^-frac_bits``; (b) the norm rule:
FLTrust rescales every update to ``||r||`` (``s_i = ||r|| / ||g_i||``, also *up*), the secure
defence only clips (``c_i = min(1, ||r|| / ||g_i||)``), so the two agree exactly when every
accepted update is at least as long as ``r``; (c) ``tau``: FLTrust accepts ``cos > 0``, here
``cos > tau`` (default 0, the same rule).

**Range.** Fixed point in ``GF(2^61 - 1)`` holds a bounded range. ``max_abs`` is the public bound
on update entries (a protocol parameter every device knows, like ``t`` and ``n``); with
``frac_bits = None`` the aggregator takes the most fractional bits under which ``d`` products of
entries up to ``max_abs`` (the inner products) and the weighted sum of ``m`` updates cannot wrap
modulo ``p`` (:func:`choose_frac_bits`; about 19 bits for ``d = 1e3``, 15 for ``d = 1e5`` with the
default ``max_abs = 64``). Every round runs the input-validity check on shares (docs/validity.md):
the simulated devices share whatever update they were given (encoded modulo ``p``, as a malicious
device can), and one whose L2 norm is above the check's bound (``info["validity_l2_bound"]``,
about ``V / 16`` for the per-entry bound ``V``) is rejected by the edge nodes as ``"out of range"``
-- what a deployment does with it. A reference beyond the bound is the server's configuration
error (:class:`~ppbfl.fl.errors.UpdateRangeError` for device ``-1``).

**Randomness.** Devices draw their shares and masks from the OS CSPRNG and, with no chain, the
challenge seed comes from the OS too, as in a deployment. The opened values and the
reconstructed aggregate are exact field results, so the output does not depend on that
randomness: a run's ``results.csv`` reproduces byte for byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, ClassVar, Literal

import numpy as np

from ppbfl.defense import codec_for_length
from ppbfl.defense.validity import l2_bound
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.fl.aggregation import AggregationContext, Aggregator
from ppbfl.fl.errors import AggregationError, ConfigError, UpdateRangeError
from ppbfl.fl.federation import SecureCosineFilter
from ppbfl.fl.field_attacks import FieldAttackRound, OutOfRangeDevice

__all__ = [
    "FIELD_ATTACK", "GLOBAL_MODEL", "MIN_FRAC_BITS", "TRUST", "TRUST_CHAIN", "SecureCosineAggregator", "SecureFlameAggregator",
    "SecureFlameModelsAggregator", "choose_frac_bits", "fits",
]

KEY = "defence_params.ppbfl_secure"
MIN_FRAC_BITS = 8
GLOBAL_MODEL = "global_model"
"""``AggregationContext.extra`` key of the global model ``(d,)`` float32 the updates start from (the runner sets it)."""
FIELD_ATTACK = "field_attack"
"""``AggregationContext.extra`` key: ``(FieldAttackRound, devices)`` of a field-level attack (set by the runner)."""
TRUST = "trust"
"""``AggregationContext.extra`` key: device -> trust in [0, 1] the round weights it with (set by the
runner from its :class:`~ppbfl.trust.keeper.TrustKeeper`); ``info["round"]`` then carries the round's
:class:`~ppbfl.protocol.round.RoundResult` for the keeper."""
"""Fewest fractional bits accepted: a step of ``2^-9`` already rivals typical update entries."""
TRUST_CHAIN = "trust_chain"
"""``AggregationContext.extra`` key: a :class:`~ppbfl.trust.config.TrustConfig` (set by the runner):
the rounds then run on an embedded chain whose agreed trust weights them
(:func:`ppbfl.trust.onchain.chained_federation`); ``info["round"]`` carries the
:class:`~ppbfl.protocol.round.RoundResult` and ``info["chain"]`` the chain's
:class:`~ppbfl.trust.onchain.ChainRoundFacts` of the round."""


def fits(frac_bits: int, d: int, m: int, max_abs: float, field: PrimeField = GF61) -> bool:
    """Whether entries up to ``max_abs`` at ``frac_bits`` are safe for ``m`` updates of length ``d``.

    Both conditions the defence checks, in exact integers: the encoded bound ``V = rint(max_abs 2^f)``
    satisfies ``d V^2 <= (p - 1) / 2`` (no inner product wraps) and ``m 2^f V <= (p - 1) / 2``
    (the sum of ``m`` updates weighted by public weights ``<= 1`` at scale ``2^f`` does not wrap).
    """
    if not 0 <= frac_bits < field.bits - 1:
        return False
    half = field.p // 2
    largest = int(np.rint(max_abs * math.ldexp(1.0, frac_bits)))
    return d * largest * largest <= half and m * (1 << frac_bits) * largest <= half


def choose_frac_bits(d: int, m: int, max_abs: float, field: PrimeField = GF61, key: str = KEY) -> int:
    """The most fractional bits ``f`` with :func:`fits` ``(f, d, m, max_abs)``.

    Raises:
        ConfigError: not even :data:`MIN_FRAC_BITS` fit (``max_abs`` too large for ``d``, ``m``),
            named ``<key>.max_abs``.
    """
    for f in range(field.bits - 2, MIN_FRAC_BITS - 1, -1):
        if fits(f, d, m, max_abs, field):
            return f
    raise ConfigError(
        f"{key}.max_abs",
        f"{max_abs!r} leaves fewer than {MIN_FRAC_BITS} fractional bits for {m} updates of length {d} in {field!r}",
    )


@dataclass
class SecureCosineAggregator(Aggregator):
    """The secure cosine defence behind the aggregation interface (see the module docstring).

    Args (all from ``[defence_params.ppbfl_secure]``):
        t, n: Shamir threshold and number of edge nodes (default ``(3, 5)``).
        dot_mode: ``"honest_majority"`` (``n >= 2t - 1``, no dealer; default) or ``"beaver"``
            (squared norms from the dealer party's triples).
        tau: accept ``cos > tau``, in ``[-1, 1)`` (default 0: FLTrust's ``ReLU``).
        max_abs: public bound on the entries of every update and of the reference (default 64).
        frac_bits: fractional bits; None (default) picks the most that are safe
            (:func:`choose_frac_bits`).
        rescale: FLTrust's norm rescaling: weight each accepted update by ``w_i ||r|| / ||g_i||``
            (scaled to the reference norm, also up) instead of ``w_i min(1, ||r|| / ||g_i||)``
            (default False: clip only). Its plaintext twin is ``fltrust`` (``rescale = true``, its
            default); the clipping rule's twin is ``fltrust`` with ``rescale = false``.

    ``aggregate`` returns ``(update (d,) float32, info)`` with ``info``: ``weights`` (m floats,
    0 for rejected devices), ``accepted`` (device indices), ``reasons`` (m strings),
    ``frac_bits`` and ``wrong_edge_nodes``.
    """

    t: int = 3
    n: int = 5
    dot_mode: Literal["honest_majority", "beaver"] = "honest_majority"
    tau: float = 0.0
    max_abs: float = 64.0
    frac_bits: int | None = None
    rescale: bool = False
    _filter: SecureCosineFilter | None = field(default=None, init=False, repr=False, compare=False)
    _knowledge: FieldAttackRound = field(default_factory=FieldAttackRound, init=False, repr=False, compare=False)
    name = "ppbfl_secure"
    display_name = "ppbfl (secure)"
    needs_reference = True
    rule: ClassVar[str] = "cosine"
    """The protocol's decision rule (:class:`~ppbfl.protocol.round.Coordinator`)."""
    key: ClassVar[str] = KEY
    """Where its parameters live in a config (named in ConfigError)."""

    def __post_init__(self) -> None:
        for key in ("t", "n"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{self.key}.{key}", f"must be a positive integer, got {value!r}")
        if self.t > self.n:
            raise ConfigError(f"{self.key}.t", f"threshold {self.t} exceeds the number of edge nodes n = {self.n}")
        if self.dot_mode not in ("honest_majority", "beaver"):
            raise ConfigError(f"{self.key}.dot_mode", f"must be 'honest_majority' or 'beaver', got {self.dot_mode!r}")
        if self.dot_mode == "honest_majority" and self.n < 2 * self.t - 1:
            raise ConfigError(f"{self.key}.n", f"honest-majority mode needs n >= 2t - 1 = {2 * self.t - 1}, got {self.n}")
        if isinstance(self.tau, bool) or not isinstance(self.tau, (int, float)) or not -1.0 <= self.tau < 1.0:
            raise ConfigError(f"{self.key}.tau", f"must be a number in [-1, 1), got {self.tau!r}")
        if isinstance(self.max_abs, bool) or not isinstance(self.max_abs, (int, float)) or not 0 < self.max_abs < math.inf:
            raise ConfigError(f"{self.key}.max_abs", f"must be a positive finite number, got {self.max_abs!r}")
        if self.frac_bits is not None and (
            isinstance(self.frac_bits, bool) or not isinstance(self.frac_bits, int)
            or not MIN_FRAC_BITS <= self.frac_bits < GF61.bits - 1
        ):
            raise ConfigError(f"{self.key}.frac_bits", f"must be an integer in [{MIN_FRAC_BITS}, {GF61.bits - 1}), got {self.frac_bits!r}")
        if not isinstance(self.rescale, bool):
            raise ConfigError(f"{self.key}.rescale", f"must be true or false, got {self.rescale!r}")

    def codec(self, d: int, m: int) -> FixedPointCodec:
        """The round's codec for ``m`` updates of length ``d`` (bound ``max_abs``, see :func:`fits`)."""
        if self.frac_bits is None:
            return FixedPointCodec(GF61, choose_frac_bits(d, m, float(self.max_abs), key=self.key), float(self.max_abs))
        if not fits(self.frac_bits, d, m, float(self.max_abs)):
            raise ConfigError(
                f"{self.key}.frac_bits",
                f"{self.frac_bits} fractional bits with max_abs = {self.max_abs!r} could wrap modulo p for {m} updates "
                f"of length {d}; at most {choose_frac_bits(d, m, float(self.max_abs), key=self.key)} fit (or leave frac_bits unset)",
            )
        return FixedPointCodec(GF61, self.frac_bits, float(self.max_abs))

    def _rule_options(self) -> dict[str, Any]:
        """The protocol's rule options for :class:`SecureCosineFilter`."""
        return {"rule": self.rule, "rescale": self.rescale}

    def close(self) -> None:
        """Stop the in-process deployment kept between rounds (a later round starts a new one)."""
        if self._filter is not None:
            self._filter.close()
            self._filter = None

    def _field_attackers(self, context: AggregationContext, reference: np.ndarray) -> tuple[set[int], FieldAttackRound]:
        """The devices of ``context.extra["field_attack"]`` (:class:`~ppbfl.fl.field_attacks.FieldAttackRound`
        and their indices) told this round's reference; none without it."""
        plan = context.extra.get(FIELD_ATTACK)
        if plan is None:
            return set(), self._knowledge
        knowledge, devices = plan
        self._knowledge.magnitude = knowledge.magnitude
        self._knowledge.reference = reference
        return {int(i) for i in devices}, self._knowledge

    def aggregate(self, updates: np.ndarray, context: AggregationContext) -> tuple[np.ndarray, dict[str, Any]]:
        """Share, verify and aggregate ``updates`` ((m, d) float) against ``context.reference`` ((d,) float).

        A device whose update is above the validity bound is rejected "out of range" (see the module docstring).
        ``context.extra[FIELD_ATTACK] = (FieldAttackRound, devices)`` makes those devices
        :class:`~ppbfl.fl.field_attacks.OutOfRangeDevice` clients (the ``out_of_range`` attack of the grid).

        Raises:
            AggregationError: no reference, or shapes disagree; UpdateRangeError: a reference entry
            is beyond the bound (reported as device ``-1``).
        """
        u = self._check(updates)
        if context.reference is None:
            raise AggregationError(f"{self.name} needs context.reference (the server's root-set update)")
        reference = np.asarray(context.reference, dtype=np.float64)
        m, d = u.shape
        if reference.shape != (d,):
            raise AggregationError(f"reference has shape {reference.shape}, updates have d = {d}")
        codec = self.codec(d, m)
        bound = float(codec_for_length(codec, d).max_abs or 0.0)
        outside = ~(np.abs(reference) <= bound)
        if outside.any():
            j = int(np.argmax(outside))
            raise UpdateRangeError(-1, j, float(reference[j]), bound, f"{self.key}.max_abs")
        attackers, knowledge = self._field_attackers(context, reference)
        secure = self._filter
        chain_trust = context.extra.get(TRUST_CHAIN)
        if secure is None or secure.codec != codec or set(secure.factories) != attackers or secure.chain_trust != chain_trust:
            if secure is not None:
                secure.close()
            norms: Literal["honest-majority", "beaver"] = "beaver" if self.dot_mode == "beaver" else "honest-majority"
            factories = {i: partial(OutOfRangeDevice, knowledge=knowledge) for i in attackers}
            secure = self._filter = SecureCosineFilter(
                self.t, self.n, codec, tau=float(self.tau), norms=norms, factories=factories, chain_trust=chain_trust, **self._rule_options(),
            )
        trust = context.extra.get(TRUST)
        scores = None if trust is None else np.array([trust[i] for i in range(m)], dtype=np.float64)
        aggregate, result = secure.verify_and_aggregate(u, reference, scores)
        decisions = [result.decision_of(i) for i in range(m)]
        info = {
            "weights": [d.weight for d in decisions],
            "accepted": result.accepted,
            "reasons": [result.missing.get(i, d.reason) for i, d in enumerate(decisions)],
            "frac_bits": codec.frac_bits,
            "validity_l2_bound": l2_bound(codec, d),
            "wrong_edge_nodes": list(result.liars),
        }
        if trust is not None or chain_trust is not None:
            info["round"] = result
        if chain_trust is not None:
            from ppbfl.trust.onchain import ChainedFederation, round_facts

            assert isinstance(secure.federation, ChainedFederation)
            info["chain"] = round_facts(secure.federation, result)
        return aggregate.astype(np.float32), info


@dataclass
class SecureFlameAggregator(SecureCosineAggregator):
    """FLAME on Shamir shares (registry key ``ppbfl_flame``), driven by the protocol with rule ``"flame"``.

    The edge nodes open ``||g_i||^2`` and ``<g_i, g_j>`` (honest-majority products, or Beaver
    products from the dealer's triples and their pair products with ``dot_mode = "beaver"``), every node
    runs FLAME's clustering on the opened Gram matrix (:mod:`ppbfl.protocol.flame_decision`), and
    the kept updates are clipped to their median norm by public weights ``enc(c_i)`` on shares;
    the aggregate is ``sum_kept c_i g_i / |kept|`` (plus the noise). Its plaintext twin is ``flame``
    (:class:`ppbfl.fl.aggregators.Flame`) with the same ``noise_lambda`` (the same noise
    distribution, not the same sample). Needs no reference.

    Args (``[defence_params.ppbfl_flame]``): ``t``, ``n``, ``max_abs``, ``frac_bits`` as for
    ``ppbfl_secure``; ``dot_mode``: ``"honest_majority"`` (default) or ``"beaver"`` (norms and Gram
    matrix from the dealer's triples, degree ``t - 1``; the tier still needs ``n >= 2t - 1``);
    ``noise_lambda`` (>= 0, default 0): the edge nodes add Gaussian noise ``N(0, (lambda S)^2)``
    to the aggregate on shares, a pseudorandom secret sharing from their PRZS keys that no single
    node knows (:mod:`ppbfl.defense.flame_noise`; the plaintext rule's default is the paper's
    0.001); ``tau`` is not a FLAME parameter and must stay 0.

    ``info`` as ``ppbfl_secure``'s: ``weights`` is 1 for a kept device, 0 for the others (the clip
    factors are the public fixed-point aggregation weights of the round's decision).
    """

    noise_lambda: float = 0.0
    name = "ppbfl_flame"
    display_name = "FLAME (secure)"
    needs_reference = False
    rule: ClassVar[str] = "flame"
    key: ClassVar[str] = "defence_params.ppbfl_flame"

    def __post_init__(self) -> None:
        if isinstance(self.n, int) and isinstance(self.t, int) and self.n < 2 * self.t - 1:
            raise ConfigError(f"{self.key}.n", f"FLAME tiers need n >= 2t - 1 = {2 * self.t - 1}, got {self.n}")
        if self.tau != 0.0:
            raise ConfigError(f"{self.key}.tau", f"FLAME has no cosine threshold; got {self.tau!r}")
        if self.rescale is not False:
            raise ConfigError(f"{self.key}.rescale", f"FLAME clips to the median norm, it does not rescale; got {self.rescale!r}")
        lam = self.noise_lambda
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= lam < math.inf:
            raise ConfigError(f"{self.key}.noise_lambda", f"must be a finite number >= 0, got {lam!r}")
        super().__post_init__()

    def _rule_options(self) -> dict[str, Any]:
        return {"rule": self.rule, "flame_noise": float(self.noise_lambda)}

    def aggregate(self, updates: np.ndarray, context: AggregationContext) -> tuple[np.ndarray, dict[str, Any]]:
        """Share, verify and aggregate ``updates`` ((m, d) float) with FLAME's rule (no reference)."""
        u = self._check(updates)
        return super().aggregate(u, replace(context, reference=np.zeros(u.shape[1])))


@dataclass
class SecureFlameModelsAggregator(SecureFlameAggregator):
    """FLAME clustering the local **models** ``G + g_i`` on Shamir shares (registry key
    ``ppbfl_flame_models``): the protocol's rule ``"flame"`` with ``flame_space = "models"``.

    The global model ``G`` (``context.extra[GLOBAL_MODEL]``, public) is the round's reference: the
    coordinator announces its hash, the edge nodes check it and open ``<G, g_i>`` (shares linear
    in the device's shares) beside the Gram matrix, cluster
    ``<G + g_i, G + g_j> = ||G||^2 + <G, g_i> + <G, g_j> + <g_i, g_j>`` and clip the kept updates
    to their median norm (:mod:`ppbfl.protocol.flame_decision`). Its plaintext twin is
    ``flame_models`` (:class:`ppbfl.fl.aggregators.FlameModels`). Parameters as ``ppbfl_flame``'s,
    under ``[defence_params.ppbfl_flame_models]``; ``G``'s entries must be within the no-wrap
    bound (:class:`~ppbfl.fl.errors.UpdateRangeError` for device ``-1`` otherwise). With a chain
    (``context.extra[TRUST_CHAIN]``) the round is opened on chain for ``G``'s hash and every node
    reads it there.
    """

    name = "ppbfl_flame_models"
    display_name = "FLAME on models (secure)"
    key: ClassVar[str] = "defence_params.ppbfl_flame_models"

    def _rule_options(self) -> dict[str, Any]:
        return {**super()._rule_options(), "flame_space": "models"}

    def aggregate(self, updates: np.ndarray, context: AggregationContext) -> tuple[np.ndarray, dict[str, Any]]:
        """Share, verify and aggregate ``updates`` ((m, d) float) with FLAME on the local models
        ``G + g_i``, ``G = context.extra[GLOBAL_MODEL]`` ((d,) float; rounded to float32, as announced).

        Raises:
            AggregationError: no global model, or its shape is not (d,).
        """
        u = self._check(updates)
        model = context.extra.get(GLOBAL_MODEL)
        if model is None:
            raise AggregationError(f"{self.name} needs context.extra[{GLOBAL_MODEL!r}] (the global model)")
        g = np.asarray(model, dtype=np.float32).astype(np.float64)
        if g.shape != (u.shape[1],):
            raise AggregationError(f"{self.name}: global model has shape {g.shape}, updates have d = {u.shape[1]}")
        return SecureCosineAggregator.aggregate(self, u, replace(context, reference=g))

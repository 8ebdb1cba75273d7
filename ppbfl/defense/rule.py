"""The decision rule an edge node's operator configures: what a coordinator's setup must match.

A round's decision rule (``"cosine"`` with its threshold ``tau`` and FLTrust's ``rescale``, or
``"flame"`` with its noise level) decides which devices enter the aggregate and how. The
coordinator announces it in :class:`~ppbfl.protocol.messages.SetupEdge`, but the coordinator is
an untrusted relay: a node whose operator configured a :class:`DecisionRule` refuses a setup
with any other (:meth:`DecisionRule.mismatch` names the first differing field), so switching
the tier to another rule (FLAME -> cosine, noise 0, rescale on / off, ``tau = -1``) takes the
nodes' operators, not the relay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from ppbfl.errors import ConfigError

__all__ = ["DecisionRule", "load_decision_rule"]


class DecisionRule(BaseModel):
    """A tier's public decision rule and its options.

    Attributes:
        rule: ``"cosine"`` (DESIGN §5) or ``"flame"`` (docs/flame.md).
        tau: rule ``"cosine"``: accept ``cos > tau``, in ``[-1, 1)``.
        rescale: rule ``"cosine"``: FLTrust's norm rescaling.
        flame_noise: rule ``"flame"``: the noise level ``lambda >= 0`` (finite).
        flame_space: rule ``"flame"``: cluster the ``"updates"`` or the local ``"models"`` (docs/flame.md).
        norms: from how many nodes the node opens honest-majority (degree ``2(t - 1)``) shares of
            ``||g||^2`` and ``z`` (and, rule ``"flame"``, of the Gram matrix). ``"auto"``: at least
            ``2t + 1``, where a lying share is corrected and named (with fewer, the tier must use
            Beaver triples, so a tier without a dealer then fails its rounds); ``"honest-majority"``:
            from ``2t - 1``, where one lying share goes unseen (docs/security.md). Not part of
            ``SetupEdge``: the node checks it on each aggregate request.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, validate_default=True)

    rule: Literal["cosine", "flame"] = "cosine"
    tau: float = 0.0
    rescale: bool = False
    flame_noise: float = 0.0
    norms: Literal["auto", "honest-majority"] = "auto"
    flame_space: Literal["updates", "models"] = "updates"

    @field_validator("tau")
    @classmethod
    def _tau_in_range(cls, tau: float) -> float:
        if not -1.0 <= tau < 1.0:
            raise ValueError(f"{tau!r}: expected a number in [-1, 1)")
        return tau

    @field_validator("rescale")
    @classmethod
    def _rescale_under_cosine(cls, rescale: bool, info: ValidationInfo) -> bool:
        if rescale and info.data.get("rule") != "cosine":
            raise ValueError(f"an option of rule 'cosine', not {info.data.get('rule')!r}")
        return rescale

    @field_validator("flame_noise")
    @classmethod
    def _noise_under_flame(cls, noise: float, info: ValidationInfo) -> float:
        if not 0.0 <= noise < math.inf or (noise > 0 and info.data.get("rule") != "flame"):
            raise ValueError(f"{noise!r}: expected a finite number >= 0, and 0 unless rule = 'flame'")
        return noise

    @field_validator("flame_space")
    @classmethod
    def _space_under_flame(cls, space: str, info: ValidationInfo) -> str:
        if space != "updates" and info.data.get("rule") != "flame":
            raise ValueError(f"an option of rule 'flame', not {info.data.get('rule')!r}")
        return space

    def honest_majority_from(self, t: int) -> int:
        """The fewest nodes whose honest-majority norm shares this node opens (see ``norms``)."""
        return 2 * t + 1 if self.norms == "auto" else 2 * t - 1

    def mismatch(
        self, rule: str, tau: float, rescale: bool, flame_noise: float, flame_space: str = "updates",
    ) -> tuple[str, object, object] | None:
        """The first field of a setup's rule that differs from this one, as ``(field, setup's value,
        this rule's value)``; None when the setup asks for exactly this rule (``tau`` matters under
        ``"cosine"`` only)."""
        pairs: list[tuple[str, object, object]] = [("rule", rule, self.rule), ("rescale", bool(rescale), self.rescale)]
        pairs += [("flame_noise", float(flame_noise), self.flame_noise), ("flame_space", flame_space, self.flame_space)]
        if self.rule == "cosine":
            pairs.append(("tau", float(tau), self.tau))
        return next(((name, got, mine) for name, got, mine in pairs if got != mine), None)


def load_decision_rule(values: Mapping[str, object], *, prefix: str = "rule") -> DecisionRule:
    """A :class:`DecisionRule` from a mapping (``ppbfl edge --rule ...`` options, a config table).

    Raises:
        ConfigError: naming the offending key (``rule.tau``, ...).
    """
    try:
        return DecisionRule.model_validate(dict(values))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"{prefix}.{where}" if where else prefix, first["msg"]) from None

"""Building a named component (attack, defence) from a registry and config parameters."""

from __future__ import annotations

from typing import Any, TypeVar

from ppbfl.fl.errors import ConfigError, UnknownComponentError

__all__ = ["build_component"]

T = TypeVar("T")


def build_component(kind: str, params_key: str, registry: dict[str, type[T]], name: str, params: dict[str, Any] | None) -> T:
    """``registry[name](**params)`` after checking the name and every parameter key.

    Raises:
        UnknownComponentError: ``name`` is not in ``registry`` (lists the known names).
        ConfigError: a parameter is not a field of the component, named as
            ``<params_key>.<name>.<key>`` (e.g. ``attack_params.sign_flip.facter``).
    """
    if name not in registry:
        raise UnknownComponentError(kind, name, list(registry))
    cls = registry[name]
    params = dict(params or {})
    allowed = set(getattr(cls, "__dataclass_fields__", {}))
    for key in params:
        if key not in allowed:
            raise ConfigError(
                f"{params_key}.{name}.{key}", f"unknown parameter (allowed: {', '.join(sorted(allowed)) or 'none'})"
            )
    return cls(**params)

"""The one place that decides which kernel implementation runs.

A backend is a module exposing the range kernels of :mod:`ppbfl.field.numba_kernels`
(``add_range``, ``mul_range``, ..., ``horner_share_range``) with the same signatures and
contracts. ``native`` is the C extension built by ``pip install`` when a compiler is present
(:mod:`ppbfl.field.native_kernels`); ``numba`` imports Numba, and only when that backend is
loaded (so a device without Numba runs on ``native``). The choice is, in order:
:func:`set_backend`, the ``PPBFL_BACKEND`` environment variable, then the first importable
backend in :data:`PREFERENCE`.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from ppbfl.errors import BackendUnavailableError

__all__ = ["PREFERENCE", "available_backends", "backend_name", "get_backend", "set_backend"]

#: backend name -> module implementing the range kernels, in order of preference.
_MODULES: dict[str, str] = {
    "native": "ppbfl.field.native_kernels",
    "numba": "ppbfl.field.numba_kernels",
}
PREFERENCE: tuple[str, ...] = tuple(_MODULES)

_active: tuple[str, ModuleType] | None = None


def _load(name: str) -> ModuleType:
    if name not in _MODULES:
        raise BackendUnavailableError(
            f"backend {name!r} is unknown; known backends: {', '.join(_MODULES)}"
        )
    try:
        return importlib.import_module(_MODULES[name])
    except ImportError as exc:
        raise BackendUnavailableError(f"backend {name!r} cannot be loaded: {exc}") from exc


def _first_loadable() -> tuple[str, ModuleType]:
    """The first backend in :data:`PREFERENCE` that loads, or an error giving each one's reason."""
    reasons = []
    for name in PREFERENCE:
        try:
            return name, _load(name)
        except BackendUnavailableError as exc:
            reasons.append(str(exc))
    raise BackendUnavailableError(
        f"no kernel backend can be loaded ({', '.join(PREFERENCE)}): " + "; ".join(reasons)
        + ". Build the C extension (pip install with a C compiler) or install numba."
    )


def available_backends() -> list[str]:
    """Names of the backends that load on this machine, in order of preference."""
    names = []
    for name in PREFERENCE:
        try:
            _load(name)
        except BackendUnavailableError:
            continue
        names.append(name)
    return names


def set_backend(name: str) -> None:
    """Select the kernel backend by name for the whole process.

    Raises:
        BackendUnavailableError: the backend is unknown or cannot be loaded here.
    """
    global _active
    _active = (name, _load(name))


def get_backend() -> ModuleType:
    """The active kernel module (chosen on first use, see the module docstring)."""
    global _active
    if _active is None:
        requested = os.environ.get("PPBFL_BACKEND")
        if requested:
            set_backend(requested)
        else:
            _active = _first_loadable()
    assert _active is not None
    return _active[1]


def backend_name() -> str:
    """Name of the active backend (``numba`` or ``native``)."""
    get_backend()
    assert _active is not None
    return _active[0]

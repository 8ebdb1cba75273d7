"""Typed exceptions of ppbfl.

Every error names what was wrong: the argument (``field``), the offending index or
shape, and where it applies the party (edge node / device). All derive from
:class:`PPBFLError`, and additionally from the matching builtin (``ValueError`` or
``TypeError``) so that generic handlers keep working.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PPBFLError",
    "FieldDTypeError",
    "FieldShapeError",
    "FieldRangeError",
    "UnsupportedFieldError",
    "EncodingRangeError",
    "CodecParameterError",
    "SharingParameterError",
    "EvaluationPointError",
    "InsufficientSharesError",
    "ReconstructionError",
    "SeedError",
    "NotInvertibleError",
    "BackendUnavailableError",
    "ConfigError",
    "UpdateRangeError",
]


class PPBFLError(Exception):
    """Base class of every error raised by ppbfl."""


class FieldDTypeError(PPBFLError, TypeError):
    """An array argument does not have the dtype the field kernels require (``uint64``)."""

    def __init__(self, name: str, dtype: Any, expected: str = "uint64") -> None:
        self.name = name
        self.dtype = dtype
        super().__init__(f"{name}: dtype {dtype} is not {expected}")


class FieldShapeError(PPBFLError, ValueError):
    """An array argument has the wrong number of dimensions or mismatched lengths."""

    def __init__(self, name: str, shape: tuple[int, ...], expected: str) -> None:
        self.name = name
        self.shape = tuple(shape)
        super().__init__(f"{name}: shape {self.shape}, expected {expected}")


class FieldRangeError(PPBFLError, ValueError):
    """An array argument holds a value that is not a reduced field element (``>= p``)."""

    def __init__(self, name: str, index: tuple[int, ...], value: int, p: int) -> None:
        self.name = name
        self.index = index
        self.value = value
        self.p = p
        super().__init__(f"{name}[{', '.join(map(str, index))}] = {value} is not in [0, p) for p = {p}")


class UnsupportedFieldError(PPBFLError, ValueError):
    """The requested modulus is not a prime the kernels support."""


class EncodingRangeError(PPBFLError, ValueError):
    """A real value cannot be encoded: it is NaN/inf or ``|x| * 2^f`` leaves the safe range."""

    def __init__(self, index: tuple[int, ...], value: float, max_abs: float, frac_bits: int) -> None:
        self.index = index
        self.value = value
        self.max_abs = max_abs
        self.frac_bits = frac_bits
        where = ", ".join(map(str, index))
        super().__init__(
            f"value[{where}] = {value!r} cannot be encoded with {frac_bits} fractional bits: "
            f"only finite values with |x| <= {max_abs!r} are in the safe range"
        )


class CodecParameterError(PPBFLError, ValueError):
    """A fixed-point codec parameter is invalid (``frac_bits``, ``max_abs``, ``scale_power``, a length)."""


class SharingParameterError(PPBFLError, ValueError):
    """Bad threshold parameters: ``t < 1``, ``t > n`` or ``n >= p``."""


class EvaluationPointError(PPBFLError, ValueError):
    """Evaluation points are duplicated, zero (the secret's point) or not in ``[1, p)``."""


class InsufficientSharesError(PPBFLError, ValueError):
    """Fewer shares than the threshold were supplied."""

    def __init__(self, got: int, needed: int, what: str = "reconstruction") -> None:
        self.got = got
        self.needed = needed
        super().__init__(f"{what} needs at least {needed} shares, got {got}")


class ReconstructionError(PPBFLError):
    """Robust reconstruction failed: more shares are wrong than the code can correct.

    ``coordinates`` lists (up to 16 of) the coordinates that could not be decoded.
    """

    def __init__(self, message: str, coordinates: tuple[int, ...] = ()) -> None:
        self.coordinates = coordinates
        super().__init__(message)


class SeedError(PPBFLError, ValueError):
    """A PRG seed has the wrong type or length (seeds are exactly 32 bytes)."""


class NotInvertibleError(PPBFLError, ZeroDivisionError):
    """Zero has no multiplicative inverse in a field."""


class BackendUnavailableError(PPBFLError, RuntimeError):
    """A kernel backend was requested that is unknown or cannot be loaded here."""


class ConfigError(PPBFLError, ValueError):
    """A configuration value is invalid: an experiment config, a defence or a transport parameter.

    ``key`` names the setting (the dotted config key ``federation.rounds``, or a parameter such as
    ``timeout``); the message says what was wrong with it.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


class UpdateRangeError(PPBFLError, ValueError):
    """A device's update has an entry outside the public bound under which it can be encoded safely.

    Beyond ``max_abs`` the fixed-point encoding (or the inner products of encoded vectors) could wrap
    modulo ``p``, so the update is not encoded. ``device``, ``index`` and ``value`` name the entry
    (``device = -1``: the server's reference update); ``key``, when set, is the config key that
    raises the bound (e.g. ``defence_params.ppbfl_secure.max_abs``).
    """

    def __init__(self, device: int, index: int, value: float, max_abs: float, key: str | None = None) -> None:
        self.device = device
        self.index = index
        self.value = value
        self.max_abs = max_abs
        self.key = key
        fix = f"raise {key} (it costs fractional bits)" if key is not None else "clip or rescale it first"
        super().__init__(
            f"device {device}: update[{index}] = {value!r} is outside the public bound |x| <= {max_abs!r} under which "
            f"its fixed-point encoding and inner products cannot wrap modulo p; it is not encoded ({fix})"
        )

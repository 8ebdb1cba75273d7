"""Device side: encode an update safely and Shamir-share it (with the consistency-check mask)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppbfl.defense.errors import DefenseParameterError, UpdateRangeError
from ppbfl.errors import EncodingRangeError
from ppbfl.field.csprng import FieldRNG
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.sharing.shamir import share

__all__ = ["DeviceSubmission", "codec_for_length", "encode_update", "share_update"]


@dataclass(frozen=True)
class DeviceSubmission:
    """A device's upload: ``shares`` (n, d) uint64 of its encoded update, ``mask_shares`` (n,) uint64 of ``rho``."""

    shares: np.ndarray
    mask_shares: np.ndarray


def codec_for_length(codec: FixedPointCodec, d: int) -> FixedPointCodec:
    """The codec with ``max_abs`` lowered to ``codec.max_abs_for_dot(d)``: two encoded length-``d``
    vectors within it have an inner product that cannot wrap modulo ``p`` (checked in exact integers)."""
    bound = min(float(codec.max_abs), codec.max_abs_for_dot(d))
    return FixedPointCodec(codec.field, codec.frac_bits, bound)


def encode_update(update: np.ndarray, codec: FixedPointCodec, *, device: int) -> np.ndarray:
    """Encode a float (d,) update with :func:`codec_for_length`; returns (d,) uint64.

    Raises:
        UpdateRangeError: some ``|update[j]|`` exceeds the no-wrap bound (or is NaN/inf); names the device.
    """
    values = np.asarray(update, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise DefenseParameterError(f"device {device}: update must be a non-empty 1-D array, got shape {values.shape}")
    safe = codec_for_length(codec, values.size)
    try:
        return safe.encode(values)  # checks every entry against the bound (NaN and inf fail it)
    except EncodingRangeError as error:
        raise UpdateRangeError(device, error.index[0], error.value, error.max_abs) from error


def share_update(
    update: np.ndarray, t: int, n: int, *, codec: FixedPointCodec | None = None, device: int = 0, rng: FieldRNG | None = None
) -> DeviceSubmission:
    """Encode and share a float (d,) update and a fresh random mask ``rho`` (threshold ``t``, ``n`` parties).

    Returns a :class:`DeviceSubmission` ((n, d) and (n,) uint64). ``rng``: a FieldRNG over the
    codec's field (default: an OS-seeded key).
    """
    codec = FixedPointCodec() if codec is None else codec
    field = codec.field
    rng = FieldRNG(field=field) if rng is None else rng
    encoded = encode_update(update, codec, device=device)
    shares = share(encoded, t, n, field=field, rng=rng)
    rho = rng.random(1)
    mask = share(rho, t, n, field=field, rng=rng)[:, 0].copy()
    return DeviceSubmission(shares, mask)

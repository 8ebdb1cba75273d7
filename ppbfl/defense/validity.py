"""Input validity on shares (DESIGN §12): a device proves its encoded update is small enough that
``<g, r>`` and ``||g||^2`` computed modulo ``p`` equal their integer values.

The construction (docs/validity.md has the full argument):

1. After every device has committed its shares, the chain fixes a seed; it expands to a
   projection matrix ``R`` in ``{-1, 0, 1}^(k x d)``, ``R_ji = b_ji s_i`` with mask bits ``b_ji``
   i.i.d. uniform in ``{0, 1}`` and column signs ``s_i`` i.i.d. uniform in ``{-1, 1}`` (each
   entry is 0 with probability 1/2, +1 and -1 with 1/4 each).
2. The device computes its projections ``y = R g`` over the integers (``g``: its encoded update,
   centred) and shares the ``b`` bits of each ``y_j + Y`` (``Y = 2^(b - 1)``): ``K = k b`` field
   elements, with a fresh mask for the share-consistency test of those bits.
3. Once every edge node holds the proofs, the nodes draw public coins (each node contributes
   32 random bytes and checks its own is in the mix), which fix ``alpha`` (consistency of the bit
   shares), ``rho'`` (``rho = rho'^2``), ``sigma`` and ``gamma``. Each node computes, on shares,

       ``z = sum_l rho_l b_l (1 - b_l) + gamma * (sum_j sigma_j (sum_l 2^l b_jl - Y) - <v, g>)``

   with ``v = R^T sigma`` (one public vector per round), re-randomises it with a PRZS sharing of
   zero (honest majority) or computes the product with dealer triples (Beaver), and the nodes open
   ``z``. An honest device has ``z = 0``; nothing else is opened.

**Soundness.** If some centred entry has ``|g_i| >= 2Y``, every row accepts with probability at
most 1/2 over its mask bit ``b_ji`` (``b_ji = 0`` and ``1`` give projections that differ by
``s_i g_i``, so they cannot both lie in ``[-Y, Y)``), independently across rows given ``s``:
``Pr[accept] <= 2^-k``. The bit and linear identities fail for a cheating device except with
probability ``<= 5/p`` over the coins (consistency ``1/p``, the identities ``4/p``). Certified: every ``|g_i| <= 2Y - 1 < 2^b <= V`` with
``d V^2 <= (p - 1) / 2``, so ``||g||^2`` and ``<g, r>`` (``|r_i| <= V``) cannot wrap.

**Completeness.** ``y_j = A + E_j`` with ``A = sum_i s_i g_i / 2`` and
``E_j = sum_i (b_ji - 1/2) s_i g_i``, each a sum of independent zero-mean terms in
``[-|g_i| / 2, |g_i| / 2]``, so (Hoeffding) ``Pr[|A| >= Y/2]`` and each ``Pr[|E_j| >= Y/2]`` are
``<= 2 exp(-Y^2 / (2 ||g||^2))``; a device with ``||g||_2 <= Y / sqrt(2 (ln(2(k + 1)) + 40 ln 2))``
is rejected with probability ``<= 2^-40``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ppbfl.defense.errors import DefenseParameterError
from ppbfl.errors import PPBFLError
from ppbfl.field import ops
from ppbfl.field.csprng import FieldRNG
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.field.prime_field import GF61, PrimeField
from ppbfl.field.threads import MIN_SPLIT, map_blocks, worker_count

__all__ = [
    "DEFAULT_ROWS",
    "MAX_ROWS",
    "MIN_ROWS",
    "ProofCoins",
    "ValidityParams",
    "ValidityProofError",
    "bit_decompose",
    "centred",
    "encoded_l2",
    "encode_wrapping",
    "l2_bound",
    "coin_seed",
    "proof_linear_shares",
    "project",
    "projection_combination",
    "projection_stream",
    "row_bytes",
    "proof_coins",
    "weighted_bits",
]

DEFAULT_ROWS = 40
"""Default number of projections ``k``: soundness error ``2^-40`` per device and round."""
MIN_ROWS = 40
"""Fewest projections an edge node accepts in its setup (a relay cannot weaken the check)."""
MAX_ROWS = 256

PROJECTION_STREAM = 0x70726F6A  # "proj": the ChaCha20 stream of R under the round's challenge seed
_COIN_STREAMS = {"alpha": 1, "rho": 2, "sigma": 3, "gamma": 4}
_COMPLETENESS_BITS = 40


class ValidityProofError(PPBFLError, ValueError):
    """A device's projection leaves the provable range (its update is too large for the check)."""

    def __init__(self, device: int, row: int, value: int, half_width: int) -> None:
        self.device, self.row, self.value, self.half_width = device, row, value, half_width
        super().__init__(
            f"device {device}: projection {row} of the encoded update is {value}, outside [-{half_width}, {half_width}); "
            "the update's L2 norm is above the validity bound (clip it to ValidityParams.honest_l2)"
        )


@dataclass(frozen=True)
class ValidityParams:
    """Parameters of the validity check for updates of length ``d`` over ``GF(p)``.

    Attributes:
        d: update length.
        k: number of random projections (soundness error ``2^-k``).
        bits: bits per projection ``b``; projections are proven in ``[-2^(b-1), 2^(b-1))``.
        p: the field prime.
    """

    d: int
    k: int
    bits: int
    p: int

    @classmethod
    def for_length(cls, d: int, *, k: int = DEFAULT_ROWS, field: PrimeField = GF61) -> ValidityParams:
        """The widest provable range for length ``d``: ``b = floor(log2 V)`` with ``V = isqrt(((p-1)/2) / d)``,
        the largest ``|g_i|`` for which ``d * V^2 <= (p - 1) / 2``.

        Raises:
            DefenseParameterError: ``d < 1``, ``k`` outside ``[1, MAX_ROWS]``, or ``d`` too large for the field.
        """
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise DefenseParameterError(f"d = {d!r}: expected a positive int")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_ROWS:
            raise DefenseParameterError(f"k = {k!r}: expected an int in [1, {MAX_ROWS}]")
        v = math.isqrt((field.p // 2) // d)
        if v < 2:
            raise DefenseParameterError(f"d = {d} is too large for a validity check over p = {field.p}")
        return cls(d, k, v.bit_length() - 1, field.p)

    @property
    def half_width(self) -> int:
        """``Y = 2^(b - 1)``: proven projections lie in ``[-Y, Y)``."""
        return 1 << (self.bits - 1)

    @property
    def proof_length(self) -> int:
        """``K = k b``: field elements a device shares as its proof."""
        return self.k * self.bits

    @property
    def certified_max_abs(self) -> int:
        """What an accepted device's encoded entries are proven to satisfy: ``|g_i| <= 2Y - 1``."""
        return 2 * self.half_width - 1

    def honest_l2(self, error_bits: int = _COMPLETENESS_BITS) -> float:
        """Largest encoded ``||g||_2`` rejected with probability ``<= 2^-error_bits``:
        ``Y / sqrt(2 (ln(2 (k + 1)) + error_bits ln 2))``."""
        return self.half_width / math.sqrt(2.0 * (math.log(2 * (self.k + 1)) + error_bits * math.log(2.0)))

    @property
    def soundness_error(self) -> float:
        """Acceptance probability bound for a device with an entry ``|g_i| >= 2Y``: ``2^-k``."""
        return 2.0 ** -self.k

    def false_rejection(self, l2: float) -> float:
        """Hoeffding bound on rejecting an honest device with encoded ``||g||_2 = l2``:
        ``2 (k + 1) exp(-Y^2 / (2 l2^2))`` (the shared half ``A`` of the projections, then each row)."""
        if l2 <= 0:
            return 0.0
        return min(1.0, 2 * (self.k + 1) * math.exp(-(self.half_width**2) / (2.0 * l2 * l2)))


def l2_bound(codec: FixedPointCodec, d: int, *, k: int = DEFAULT_ROWS) -> float:
    """The validity check's bound in the update's own units: updates of length ``d`` with
    ``||x||_2`` at most this are rejected with probability ``<= 2^-40`` (``honest_l2 / 2^f``)."""
    return ValidityParams.for_length(d, k=k, field=codec.field).honest_l2() / codec.scale


def centred(encoded: np.ndarray, p: int) -> np.ndarray:
    """Signed representatives of field elements: (d,) uint64 in ``[0, p)`` -> (d,) int64 in ``(-p/2, p/2]``."""
    values = np.asarray(encoded, dtype=np.uint64)
    out = values.astype(np.int64)
    out -= (values > np.uint64(p // 2)) * np.int64(p)  # measured 7x faster than subtract(where=) at d = 1e5
    return out


def encoded_l2(encoded: np.ndarray, p: int) -> float:
    """``||centred(encoded)||_2`` in float64 (what a strict device checks against :meth:`ValidityParams.honest_l2`)."""
    g = centred(encoded, p).astype(np.float64)
    return float(np.sqrt(np.einsum("i,i", g, g)))  # not np.dot: BLAS threads cost 100x on a loaded machine


def encode_wrapping(update: np.ndarray, codec: FixedPointCodec, *, device: int) -> np.ndarray:
    """``rint(x 2^f) mod p`` for any finite float (d,) ``update``: what a malicious device can share.

    Raises:
        DefenseParameterError: not a non-empty 1-D array of finite values below ``2^62 / 2^f``.
    """
    values = np.asarray(update, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise DefenseParameterError(f"device {device}: update must be a non-empty 1-D array, got shape {values.shape}")
    scaled = np.rint(values * codec.scale)
    if not np.all(np.isfinite(scaled)) or np.abs(scaled).max() >= 2.0**62:
        raise DefenseParameterError(f"device {device}: update has entries that are not finite or above 2^62 / 2^f")
    return (scaled.astype(np.int64) % np.int64(codec.field.p)).astype(np.uint64)


def row_bytes(d: int) -> int:
    """Bytes of one bit string of length ``d`` in the projection stream: ``8 ceil(d / 64)``."""
    return 8 * ((d + 63) // 64)


def projection_stream(seed: bytes, params: ValidityParams) -> np.ndarray:
    """The keystream bytes that fix ``R``: ((k + 1) row_bytes(d),) uint8.

    The stream is ``k + 1`` bit strings of ``row_bytes(d)`` bytes each: first the column signs
    ``s``, then the masks ``b_0 .. b_(k-1)`` of the rows; bit ``i`` of a string is bit ``i % 8``
    of byte ``i // 8`` (bits past ``d`` are ignored). ``R[j, i] = b_j[i] * (-1 if s[i] else 1)``:
    every entry is 0 with probability 1/2 and +1, -1 with 1/4 each; the masks are independent
    across rows, the sign of a column is shared by its rows. ``seed``: 32 bytes fixed after the
    commitments.
    """
    size = (params.k + 1) * row_bytes(params.d)
    return np.frombuffer(FieldRNG(seed, stream=PROJECTION_STREAM).random_bytes(size), dtype=np.uint8)


def _bits(string: np.ndarray, d: int) -> np.ndarray:
    return np.unpackbits(string, bitorder="little")[:d]


def projection_matrix(stream: np.ndarray, params: ValidityParams) -> np.ndarray:
    """``R`` as a (k, d) int8 matrix (for tests and small ``d``; the kernels read the stream directly)."""
    width = row_bytes(params.d)
    signs = 1 - 2 * _bits(stream[:width], params.d).astype(np.int8)
    masks = [_bits(stream[(j + 1) * width : (j + 2) * width], params.d) for j in range(params.k)]
    return (np.stack(masks).astype(np.int8) * signs[None, :]).astype(np.int8)


def _native():
    """The C kernels when the active field backend is ``native``, else None (Numba)."""
    from ppbfl.field.backend import backend_name

    if backend_name() != "native":
        return None
    from ppbfl.field import native_kernels

    return native_kernels


def _kernels():  # lazy: numba compiles on first use only
    from ppbfl.defense import validity_kernels

    return validity_kernels


def _blocks(total: int, work: int) -> int:
    """How many thread blocks to cut ``total`` items into (one when the call is small)."""
    return max(1, min(worker_count(), total)) if work >= MIN_SPLIT * 16 else 1


def project(stream: np.ndarray, g: np.ndarray, params: ValidityParams) -> np.ndarray:
    """``y = R g`` over the integers: (d,) int64 centred entries -> (k,) int64.

    One pass applies the column signs (``h = s g``, in 32-bit lanes when ``sum |g_i| < 2^31``,
    which holds for every update under the honest bound); then each row is the sum of ``h`` over
    its mask, without materialising ``R``. Exact while ``sum_i |g_i| < 2^63`` (true for every
    encodable update: ``|g_i| <= V < 2^31``, ``d <= 2^31``).
    """
    g = np.ascontiguousarray(g, dtype=np.int64)
    if g.shape != (params.d,):
        raise DefenseParameterError(f"g: shape {g.shape}, expected ({params.d},)")
    width = row_bytes(params.d)
    if stream.shape != ((params.k + 1) * width,):
        raise DefenseParameterError(f"stream: shape {stream.shape}, expected ({(params.k + 1) * width},)")
    scratch = np.empty(params.d, dtype=np.uint64)
    h32 = scratch.view(np.uint32)[: params.d]
    native = _native()
    if native:
        signs, masks, stride = stream[:width], stream[width:], width
        small = native.ternary_prepare(signs, g, scratch)
        kernel = native.ternary_project32 if small else native.ternary_project64
    else:
        words = _words(stream)
        signs, masks, stride = words[: width // 4], words[width // 4 :], width // 4
        small = _kernels().prepare(signs, g, h32, scratch)
        kernel = _kernels().project32 if small else _kernels().project64
    h = h32 if small else scratch
    y = np.empty(params.k, dtype=np.int64)
    blocks = _blocks(params.k, params.k * params.d)
    map_blocks(lambda b: kernel(masks, stride, params.d, h, y, params.k * b // blocks, params.k * (b + 1) // blocks), blocks)
    return y


def _words(stream: np.ndarray) -> np.ndarray:
    """The stream as little-endian uint32 words in native byte order (the Numba kernels' input)."""
    return np.frombuffer(stream.tobytes(), dtype="<u4").astype(np.uint32, copy=False)


_COMBINE_TILE = 2048


def projection_combination(stream: np.ndarray, sigma: np.ndarray, params: ValidityParams) -> np.ndarray:
    """``v = R^T sigma`` mod ``p``: (k,) uint64 -> (d,) uint64 in ``[0, p)`` (``p = 2^61 - 1`` or ``p < 2^32``)."""
    if params.p != GF61.p and params.p >= 1 << 32:
        raise DefenseParameterError(f"the validity kernels are for p = 2^61 - 1 or p < 2^32, not {params.p}")
    sigma = np.ascontiguousarray(sigma, dtype=np.uint64)
    if sigma.shape != (params.k,):
        raise DefenseParameterError(f"sigma: shape {sigma.shape}, expected ({params.k},)")
    if stream.shape != ((params.k + 1) * row_bytes(params.d),):
        raise DefenseParameterError(f"stream: shape {stream.shape}, expected ({(params.k + 1) * row_bytes(params.d)},)")
    if sigma.size and int(sigma.max()) >= params.p:
        raise DefenseParameterError(f"sigma: entries must be below p = {params.p}")
    native = _native()
    kernel = native.ternary_combine if native else _kernels().combine
    data = stream if native else _words(stream)
    out = np.empty(params.d, dtype=np.uint64)
    tiles = (params.d + _COMBINE_TILE - 1) // _COMBINE_TILE
    blocks = _blocks(tiles, params.k * params.d)

    def work(b: int) -> None:
        lo, hi = tiles * b // blocks * _COMBINE_TILE, min(params.d, tiles * (b + 1) // blocks * _COMBINE_TILE)
        kernel(data, sigma, params.k, params.d, np.uint64(params.p), out, lo, hi)

    map_blocks(work, blocks)
    return out


def bit_decompose(projections: np.ndarray, params: ValidityParams, *, device: int) -> np.ndarray:
    """The proof: bits of ``y_j + Y``, (k,) int64 -> (K,) uint64 of 0/1, row ``j`` at ``[j b, (j + 1) b)``, LSB first.

    Raises:
        ValidityProofError: some ``y_j`` is outside ``[-Y, Y)`` (names the device and the row).
    """
    y = np.asarray(projections, dtype=np.int64)
    outside = np.flatnonzero((y < -params.half_width) | (y >= params.half_width))
    if outside.size:
        j = int(outside[0])
        raise ValidityProofError(device, j, int(y[j]), params.half_width)
    shifted = (y + params.half_width).astype(np.uint64)
    return ((shifted[:, None] >> np.arange(params.bits, dtype=np.uint64)) & np.uint64(1)).reshape(-1)


def coin_seed(challenge_seed: bytes, coins: Sequence[tuple[int, bytes]]) -> bytes:
    """The seed of a round's proof coins: SHA-256 over the challenge seed and each ``(node, coin)`` in order."""
    h = hashlib.sha256(b"ppbfl/validity-coins/v1")
    h.update(challenge_seed)
    for node, coin in coins:
        h.update(int(node).to_bytes(2, "little"))
        h.update(coin)
    return h.digest()


@dataclass(frozen=True)
class ProofCoins:
    """A round's public coins for checking proofs (every node derives the same from the same seeds).

    Attributes:
        alpha: (K,) uint64 coefficients of the bit shares' consistency test.
        rho_root: (K,) uint64 ``rho'`` (the bit test uses ``rho = rho'^2``).
        linear: (K,) uint64 ``rho_l + gamma sigma_j 2^l``: the coefficients of ``b`` in ``z``.
        v: (d,) uint64 ``gamma R^T sigma``: the coefficients of ``g`` (subtracted) in ``z``.
        offset: ``gamma Y sum_j sigma_j`` mod p (subtracted from ``z``).
    """

    alpha: np.ndarray
    rho_root: np.ndarray
    linear: np.ndarray
    v: np.ndarray
    offset: int


def proof_coins(challenge_seed: bytes, seed: bytes, params: ValidityParams, *, stream: np.ndarray | None = None) -> ProofCoins:
    """Derive :class:`ProofCoins` from the challenge seed (fixes ``R``) and the coin seed (:func:`coin_seed`)."""
    field = PrimeField(params.p) if params.p != GF61.p else GF61
    K = params.proof_length

    def draw(name: str, size: int) -> np.ndarray:
        return FieldRNG(seed, stream=_COIN_STREAMS[name], field=field).random(size)

    alpha, rho_root, sigma = draw("alpha", K), draw("rho", K), draw("sigma", params.k)
    gamma = int(draw("gamma", 1)[0])
    rho = ops.mul(rho_root, rho_root, field=field)
    sigma_gamma = ops.scalar_mul(sigma, gamma, field=field)  # gamma folded in before the length-d combination
    powers = np.array([pow(2, l, params.p) for l in range(params.bits)], dtype=np.uint64)
    linear = ops.add(rho, ops.mul(np.repeat(sigma_gamma, params.bits), np.tile(powers, params.k), field=field), field=field)
    stream = projection_stream(challenge_seed, params) if stream is None else stream
    v = projection_combination(stream, sigma_gamma, params)  # gamma R^T sigma = R^T (gamma sigma)
    offset = gamma * params.half_width % params.p * (int(sigma.astype(object).sum()) % params.p) % params.p
    return ProofCoins(alpha, rho_root, linear, v, offset)


def proof_linear_shares(
    bits: np.ndarray, masks: np.ndarray, g_dot_v: np.ndarray, coins: ProofCoins, *, field: PrimeField = GF61
) -> tuple[np.ndarray, np.ndarray]:
    """One node's degree-``(t - 1)`` values for ``m`` devices from their bit shares (m, K), mask shares
    (m,) and ``<v, g>`` shares (m,), all uint64.

    Returns ``(consistency, linear)``, each (m,) uint64: ``<alpha, b> + mu`` and
    ``<linear, b> - offset - <v, g>`` (``z`` is ``linear`` minus the squares of :func:`weighted_bits`).
    """
    m = bits.shape[0]
    if m == 0:
        empty = np.zeros(0, dtype=np.uint64)
        return empty, empty.copy()
    dots = ops.row_dots(bits, coins.alpha, coins.linear, squares=False, field=field, rows_name="proof")
    consistency = ops.add(dots[0], masks, field=field)
    linear = ops.sub(ops.sub(dots[1], g_dot_v, field=field), np.full(m, coins.offset, dtype=np.uint64), field=field)
    return consistency, linear


def weighted_bits(bits: np.ndarray, coins: ProofCoins, *, field: PrimeField = GF61) -> np.ndarray:
    """``rho' * b`` per device: (m, K) uint64 shares -> (m, K) uint64 (``z`` subtracts their squared norms)."""
    m = bits.shape[0]
    return ops.mul(np.ascontiguousarray(bits).reshape(-1), np.tile(coins.rho_root, m), field=field).reshape(bits.shape)

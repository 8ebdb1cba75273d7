"""The ChaCha20 field CSPRNG against an independent pure-Python ChaCha20 (RFC 8439).

The reference block function below is checked against the RFC's published test vectors, then
used to recompute exactly what :class:`FieldRNG` must output: little-endian 64-bit keystream
words, masked to ``bits(p)`` bits, words ``>= p`` rejected, order kept.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ppbfl.errors import FieldShapeError, SeedError
from ppbfl.field.csprng import PRG_BLOCK, SEED_BYTES, FieldRNG, expand_seed, expand_seed_block, new_seed
from ppbfl.field.prime_field import GF61, MERSENNE61, PrimeField

P61 = MERSENNE61
GF257 = PrimeField(257)  # 9-bit mask: ~half of all masked words are rejected
GF31 = PrimeField(31)
SEED = bytes(range(100, 132))
FAST = settings(max_examples=40, deadline=None)

# ---------------------------------------------------------------------------------------------
# independent ChaCha20 reference (RFC 8439, section 2.3)
# ---------------------------------------------------------------------------------------------

_M32 = 0xFFFFFFFF


def _rotl(v: int, c: int) -> int:
    return ((v << c) & _M32) | (v >> (32 - c))


def _quarter(x: list[int], a: int, b: int, c: int, d: int) -> None:
    x[a] = (x[a] + x[b]) & _M32
    x[d] = _rotl(x[d] ^ x[a], 16)
    x[c] = (x[c] + x[d]) & _M32
    x[b] = _rotl(x[b] ^ x[c], 12)
    x[a] = (x[a] + x[b]) & _M32
    x[d] = _rotl(x[d] ^ x[a], 8)
    x[c] = (x[c] + x[d]) & _M32
    x[b] = _rotl(x[b] ^ x[c], 7)


def chacha20_block(key: bytes, counter: int, nonce: bytes) -> bytes:
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state += list(struct.unpack("<8I", key)) + [counter] + list(struct.unpack("<3I", nonce))
    x = list(state)
    for _ in range(10):
        _quarter(x, 0, 4, 8, 12)
        _quarter(x, 1, 5, 9, 13)
        _quarter(x, 2, 6, 10, 14)
        _quarter(x, 3, 7, 11, 15)
        _quarter(x, 0, 5, 10, 15)
        _quarter(x, 1, 6, 11, 12)
        _quarter(x, 2, 7, 8, 13)
        _quarter(x, 3, 4, 9, 14)
    return struct.pack("<16I", *[(x[i] + state[i]) & _M32 for i in range(16)])


def ref_keystream(key: bytes, nbytes: int, *, stream: int = 0, block: int = 0) -> bytes:
    """FieldRNG's documented keystream: counter from 0, 96-bit nonce = (block, stream) LE."""
    nonce = block.to_bytes(4, "little") + stream.to_bytes(8, "little")
    out = bytearray()
    counter = 0
    while len(out) < nbytes:
        out += chacha20_block(key, counter, nonce)
        counter += 1
    return bytes(out[:nbytes])


def ref_field_elements(key: bytes, n: int, p: int, *, stream: int = 0, block: int = 0):
    """(first n accepted elements, number of keystream words consumed to get them)."""
    mask = (1 << p.bit_length()) - 1
    accepted: list[int] = []
    words_needed = 2 * n + 64
    while True:
        data = ref_keystream(key, 8 * words_needed, stream=stream, block=block)
        words = struct.unpack(f"<{words_needed}Q", data)
        accepted.clear()
        for i, w in enumerate(words):
            if len(accepted) == n:
                return accepted, i
            v = w & mask
            if v < p:
                accepted.append(v)
        if len(accepted) == n:
            return accepted, words_needed
        words_needed *= 2


# RFC 8439 vectors (A.1 #1 and #2: zero key and nonce, counters 0 and 1; 2.3.2: key 00..1f,
# nonce 00:00:00:09:00:00:00:4a:00:00:00:00, counter 1).
RFC_A1_1 = bytes.fromhex(
    "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
    "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
)
RFC_A1_2 = bytes.fromhex(
    "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
    "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f"
)
RFC_232 = bytes.fromhex(
    "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
    "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
)
RFC_232_KEY = bytes(range(32))
RFC_232_NONCE = bytes.fromhex("000000090000004a00000000")


def test_reference_chacha20_matches_rfc_vectors():
    assert chacha20_block(bytes(32), 0, bytes(12)) == RFC_A1_1
    assert chacha20_block(bytes(32), 1, bytes(12)) == RFC_A1_2
    assert chacha20_block(RFC_232_KEY, 1, RFC_232_NONCE) == RFC_232


def test_random_bytes_is_the_rfc_chacha20_keystream():
    assert FieldRNG(bytes(32)).random_bytes(128) == RFC_A1_1 + RFC_A1_2
    # the RFC 2.3.2 nonce read as FieldRNG's (block, stream) identifiers
    block = int.from_bytes(RFC_232_NONCE[:4], "little")
    stream = int.from_bytes(RFC_232_NONCE[4:], "little")
    rng = FieldRNG(RFC_232_KEY, stream=stream, block=block)
    assert rng.random_bytes(128)[64:] == RFC_232


@pytest.mark.parametrize("p", [31, 257, 65521, 2**31 - 1, 4294967291, P61])
@pytest.mark.parametrize("stream,block", [(0, 0), (7, 0), (2**64 - 1, 3), (12345, 2**32 - 1)])
def test_elements_are_masked_keystream_words_with_rejection(p, stream, block):
    n = 300
    field = PrimeField(p)
    expected, consumed = ref_field_elements(SEED, n, p, stream=stream, block=block)
    rng = FieldRNG(SEED, stream=stream, block=block, field=field)
    got = rng.random(n)
    assert got.dtype == np.uint64 and got.shape == (n,)
    assert [int(v) for v in got] == expected
    # no keystream was consumed past the n-th accepted word
    after = ref_keystream(SEED, 8 * consumed + 40, stream=stream, block=block)[8 * consumed:]
    assert rng.random_bytes(40) == after


def test_rejection_is_exercised_for_p_257():
    n = 2000
    expected, consumed = ref_field_elements(SEED, n, 257)
    rejected = consumed - n
    # 255 of 512 masked values are rejected: about half of the words consumed
    assert 0.4 < rejected / consumed < 0.6
    rng = FieldRNG(SEED, field=GF257)
    assert [int(v) for v in rng.random(n)] == expected
    raw = np.frombuffer(FieldRNG(SEED).random_bytes(8 * consumed), dtype="<u8") & np.uint64(511)
    assert int((raw >= 257).sum()) == rejected
    assert int(raw.max()) >= 257  # values 257..511 really occur in the masked stream


# ---------------------------------------------------------------------------------------------
# determinism, independence, range
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", [GF61, GF257, GF31])
def test_same_seed_and_stream_give_identical_output(field):
    a = FieldRNG(SEED, stream=5, field=field).random(1000)
    b = FieldRNG(bytearray(SEED), stream=5, field=field).random(1000)
    assert np.array_equal(a, b)
    c = FieldRNG(SEED, stream=5, field=field).random((10, 100))
    assert c.shape == (10, 100) and c.flags.c_contiguous
    assert np.array_equal(c.reshape(-1), a)


def test_different_streams_blocks_and_seeds_differ():
    base = FieldRNG(SEED).random(64)
    others = [
        FieldRNG(SEED, stream=1).random(64),
        FieldRNG(SEED, block=1).random(64),
        FieldRNG(SEED, stream=2**63).random(64),
        FieldRNG(bytes([SEED[0] ^ 1]) + SEED[1:]).random(64),
        FieldRNG(SEED[:-1] + bytes([SEED[-1] ^ 0x80])).random(64),
    ]
    outputs = [base] + others
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            # 64 independent uniform 61-bit values: any coincidence is a bug
            assert int((outputs[i] == outputs[j]).sum()) == 0, (i, j)


def test_unseeded_generators_differ():
    assert not np.array_equal(FieldRNG().random(16), FieldRNG().random(16))
    s1, s2 = new_seed(), new_seed()
    assert isinstance(s1, bytes) and len(s1) == SEED_BYTES == 32
    assert s1 != s2


@pytest.mark.parametrize("field", [GF61, GF257, GF31, PrimeField(4294967291)])
def test_values_are_reduced(field):
    out = FieldRNG(SEED, field=field).random(50_000)
    assert out.dtype == np.uint64
    assert int(out.max()) < field.p
    # the largest values of small fields do occur
    if field.p < 1000:
        assert int(out.max()) == field.p - 1 and int(out.min()) == 0


def test_empty_requests():
    rng = FieldRNG(SEED)
    assert rng.random(0).shape == (0,)
    assert rng.random((3, 0)).shape == (3, 0)
    rng.fill(np.empty(0, dtype=np.uint64))
    assert rng.random_bytes(0) == b""
    # nothing was consumed
    assert np.array_equal(rng.random(8), FieldRNG(SEED).random(8))


# ---------------------------------------------------------------------------------------------
# chunk invariance
# ---------------------------------------------------------------------------------------------


@FAST
@given(
    st.sampled_from([257, 31, P61]),
    st.lists(st.integers(0, 700), min_size=1, max_size=8),
)
def test_fill_in_chunks_equals_one_fill(p, sizes):
    field = PrimeField(p)
    whole = FieldRNG(SEED, stream=3, field=field).random(sum(sizes))
    rng = FieldRNG(SEED, stream=3, field=field)
    parts = []
    for k, n in enumerate(sizes):
        if k % 2:
            parts.append(rng.random(n))
        else:
            buf = np.full(n, np.iinfo(np.uint64).max, dtype=np.uint64)
            rng.fill(buf)
            parts.append(buf)
    assert np.array_equal(np.concatenate(parts), whole)


def test_chunk_invariance_across_the_internal_1mib_chunk():
    n_a, n_b = 100_000, 70_003  # with p = 257, each fill spans several 2^17-word cipher calls
    whole = FieldRNG(SEED, field=GF257).random(n_a + n_b)
    rng = FieldRNG(SEED, field=GF257)
    a = np.empty(n_a, dtype=np.uint64)
    b = np.empty(n_b, dtype=np.uint64)
    rng.fill(a)
    rng.fill(b)
    assert np.array_equal(np.concatenate([a, b]), whole)
    # a view of a larger array is a valid fill target
    big = np.zeros(n_a + n_b + 10, dtype=np.uint64)
    rng2 = FieldRNG(SEED, field=GF257)
    rng2.fill(big[5 : 5 + n_a])
    rng2.fill(big[5 + n_a : 5 + n_a + n_b])
    assert np.array_equal(big[5 : 5 + n_a + n_b], whole)
    assert big[:5].sum() == 0 and big[-5:].sum() == 0


def test_random_bytes_and_elements_share_one_stream():
    rng = FieldRNG(SEED)
    first = rng.random_bytes(24)
    rest = rng.random(4)
    ks = ref_keystream(SEED, 24 + 32)
    assert first == ks[:24]
    words = struct.unpack("<4Q", ks[24:])
    assert [int(v) for v in rest] == [w & P61 for w in words]  # no 2^61-1 word: no rejection


# ---------------------------------------------------------------------------------------------
# uniformity
# ---------------------------------------------------------------------------------------------

ALPHA = 1e-4  # fixed seeds make these deterministic; the power checks show they can fail


def _chi2_pvalue(values: np.ndarray, bins: int) -> float:
    counts = np.bincount(values.astype(np.int64), minlength=bins)
    assert counts.size == bins
    return float(stats.chisquare(counts).pvalue)


@pytest.mark.parametrize("field,per_bin", [(GF257, 400), (GF31, 2000)])
def test_chi_square_uniformity_small_fields(field, per_bin):
    p = field.p
    n = p * per_bin
    sample = FieldRNG(b"\x42" * 32, stream=9, field=field).random(n)
    assert _chi2_pvalue(sample, p) > ALPHA

    # power check: at the same sample size, a sampler that folds masked words with `% p`
    # instead of rejecting them is caught.
    mask = (1 << p.bit_length()) - 1
    raw = np.frombuffer(FieldRNG(b"\x42" * 32, stream=9).random_bytes(8 * n), dtype="<u8")
    biased = (raw & np.uint64(mask)) % np.uint64(p)
    assert _chi2_pvalue(biased, p) < 1e-12


def test_gf61_top_and_low_bits_are_uniform():
    n = 200_000
    sample = FieldRNG(b"\x17" * 32, stream=1).random(n)
    assert int(sample.max()) < P61
    # each of the five top bits (60..56) is set with probability ~1/2
    for bit in range(56, 61):
        ones = int(((sample >> np.uint64(bit)) & np.uint64(1)).sum())
        assert abs(ones - n / 2) < 5 * np.sqrt(n / 4), (bit, ones)
    # the top 8 bits and the low 8 bits are uniform over 256 bins
    assert _chi2_pvalue(sample >> np.uint64(53), 256) > ALPHA
    assert _chi2_pvalue(sample & np.uint64(255), 256) > ALPHA
    # the top bit is really used: values above 2^60 occur about half the time
    assert int((sample >= np.uint64(2**60)).sum()) > 0.45 * n

    # power check: a 60-bit sampler (top bit never set) fails the top-bits test
    truncated = sample & np.uint64(2**60 - 1)
    assert _chi2_pvalue(truncated >> np.uint64(53), 256) < 1e-12


def test_expand_seed_is_uniform_over_block_boundary():
    field = GF257
    n = PRG_BLOCK + 257 * 200
    sample = expand_seed(b"\x99" * 32, n, field=field)
    assert _chi2_pvalue(sample, 257) > ALPHA
    # the second block is not a copy of the first
    assert not np.array_equal(sample[:1000], sample[PRG_BLOCK : PRG_BLOCK + 1000])


# ---------------------------------------------------------------------------------------------
# expand_seed
# ---------------------------------------------------------------------------------------------


def test_expand_seed_is_blockwise_field_rng():
    n = 2 * PRG_BLOCK + 123
    out = expand_seed(SEED, n, stream=4)
    assert out.dtype == np.uint64 and out.shape == (n,) and int(out.max()) < P61
    for b, width in enumerate([PRG_BLOCK, PRG_BLOCK, 123]):
        chunk = out[b * PRG_BLOCK : b * PRG_BLOCK + width]
        assert np.array_equal(chunk, FieldRNG(SEED, stream=4, block=b).random(width))
        assert np.array_equal(chunk, expand_seed_block(SEED, b, width, stream=4))
    # prefix property and determinism
    assert np.array_equal(expand_seed(SEED, 1000, stream=4), out[:1000])
    assert not np.array_equal(expand_seed(SEED, 1000, stream=5), out[:1000])


def test_expand_seed_small_field_against_reference():
    expected, _ = ref_field_elements(SEED, 500, 257, stream=2, block=0)
    got = expand_seed(SEED, 500, stream=2, field=GF257)
    assert [int(v) for v in got] == expected
    expected_b1, _ = ref_field_elements(SEED, 50, 257, stream=2, block=1)
    assert [int(v) for v in expand_seed_block(SEED, 1, 50, stream=2, field=GF257)] == expected_b1


@pytest.mark.parametrize("size", [-1, 1.5, True, "3", None])
def test_expand_seed_rejects_bad_size(size):
    with pytest.raises(FieldShapeError, match="size"):
        expand_seed(SEED, size)


# ---------------------------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------------------------

BAD_SEEDS = [
    (bytes(31), "got 31"),
    (bytes(33), "got 33"),
    (b"", "got 0"),
    (bytearray(16), "got 16"),
    ("a" * 32, "got str"),
    (12345, "got int"),
    (list(range(32)), "got list"),
    (np.zeros(32, dtype=np.uint8), "got ndarray"),
    (memoryview(bytes(32)), "got memoryview"),
]


@pytest.mark.parametrize("seed,pattern", BAD_SEEDS, ids=[p for _, p in BAD_SEEDS])
def test_bad_seed_raises_seed_error(seed, pattern):
    with pytest.raises(SeedError, match=rf"^seed: expected 32 bytes, {pattern}$"):
        FieldRNG(seed)
    with pytest.raises(SeedError, match=pattern):
        expand_seed(seed, 10)
    with pytest.raises(SeedError):
        expand_seed_block(seed, 0, 10)
    with pytest.raises(ValueError):  # SeedError is also a ValueError
        FieldRNG(seed)


@pytest.mark.parametrize("kwargs,name", [
    ({"stream": -1}, "stream"), ({"stream": 2**64}, "stream"),
    ({"block": -1}, "block"), ({"block": 2**32}, "block"),
])
def test_stream_and_block_range(kwargs, name):
    with pytest.raises(FieldShapeError, match=rf"^{name}:"):
        FieldRNG(SEED, **kwargs)


def test_fill_rejects_bad_targets():
    rng = FieldRNG(SEED)
    for bad in (
        np.zeros(4, dtype=np.int64),
        np.zeros((2, 2), dtype=np.uint64),
        np.zeros(8, dtype=np.uint64)[::2],
        np.zeros(4, dtype=np.uint32),
    ):
        with pytest.raises(FieldShapeError, match=r"^out:"):
            rng.fill(bad)


def test_random_rejects_negative_size():
    with pytest.raises(FieldShapeError, match=r"^size:"):
        FieldRNG(SEED).random((3, -1))
    with pytest.raises(FieldShapeError, match=r"^size:"):
        FieldRNG(SEED).random(-2)

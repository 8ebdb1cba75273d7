"""Chain layer: Merkle commitments of share vectors, PoW stamps, one full on-chain round.

* ``merkle d=...`` -- :func:`ppbfl.chain.merkle_root` of a ``(d,)`` uint64 share vector (Numba
  keccak over 16-element chunks) against ``eth_hash_loop``: the same tree hashed with one
  pycryptodome call per node (what a straightforward implementation does). Target (issue 6):
  ``d = 1e5`` in <= ~20 ms.
* ``pow bits=12`` -- :func:`ppbfl.chain.pow_stamp` (expected 4096 hashes).
* ``chain round devices=... d=...`` -- one complete honest round (commit with PoW, scalars,
  decisions, aggregate shares, aggregate, audit with t shares, trust, anchor, close) on the
  in-process py-evm chain and on a real anvil node; gas per phase goes to ``extra_info``.
  Gas tables: ``benchmarks/chain_gas.py``; results in RESULTS.md ("Chain (issue 6)").
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import QUICK, field_vector, size_id
from eth_hash.auto import keccak

from ppbfl.chain import CHUNK, Chain, merkle_root, pow_stamp, pow_valid
from ppbfl.chain.scenario import Scenario, run_round

T, N = 3, 5
MERKLE_SIZES = (10**3, 10**4) if QUICK else (10**4, 10**5, 10**6)
ROUND_DEVICES = (3,) if QUICK else (10, 100)
ROUND_D = 10**3 if QUICK else 10**5


def _eth_hash_root(vector: np.ndarray) -> bytes:
    """The same tree, one eth_hash call per leaf and node (the per-call-overhead baseline)."""
    count = -(-vector.size // CHUNK)
    padded = np.zeros(count * CHUNK, dtype=">u8")
    padded[: vector.size] = vector
    raw = padded.tobytes()
    level = [keccak(c.to_bytes(4, "big") + raw[128 * c : 128 * c + 128]) for c in range(count)]
    zero = bytes(32)
    while len(level) > 1:
        if len(level) % 2:
            level.append(zero)
        level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        zero = keccak(zero + zero)
    return level[0]


# (not named `d`: conftest parametrizes `d` with the sharing sizes)
@pytest.mark.parametrize("length", MERKLE_SIZES, ids=[f"d{size_id(d)}" for d in MERKLE_SIZES])
def test_merkle_root_ppbfl(benchmark, group, length):
    group("merkle", d=length)
    vector = field_vector("merkle", length)
    root = benchmark(merkle_root, vector)
    if length <= 10**5:
        assert root == _eth_hash_root(vector)


@pytest.mark.parametrize("length", MERKLE_SIZES, ids=[f"d{size_id(d)}" for d in MERKLE_SIZES])
def test_merkle_root_eth_hash_loop(group, slow, length):
    group("merkle", d=length)
    vector = field_vector("merkle", length)
    small = vector[: max(CHUNK, length // 10)]
    slow(_eth_hash_root, (vector,), probe=lambda: _eth_hash_root(small), scale=length / small.size)


CONTRACT = "0x" + "ee" * 20  # the deployment a stamp is bound to (with chain id 31337)


def test_pow_stamp_12_bits(benchmark, group):
    group("pow", bits=12)
    device = "0x" + "ab" * 20
    counter = iter(range(10**9))

    def stamp() -> tuple[bytes, int]:
        commitment = keccak(str(next(counter)).encode())  # a new commitment each call
        return commitment, pow_stamp(CONTRACT, 31337, device, 1, commitment, 12)

    commitment, nonce = benchmark(stamp)
    assert pow_valid(CONTRACT, 31337, device, 1, commitment, nonce, 12)


@pytest.fixture(scope="module", params=["py-evm", "anvil"])
def target(request):
    chain = Chain.embedded(accounts=160) if request.param == "py-evm" else Chain.anvil(accounts=160)
    yield chain
    chain.close()


@pytest.mark.parametrize("devices", ROUND_DEVICES, ids=[f"m{m}" for m in ROUND_DEVICES])
def test_chain_round(benchmark, group, target, devices):
    group(f"chain round {target.target}", devices=devices, d=ROUND_D)
    scenario = Scenario(target, T, N, devices, d=ROUND_D, pow_bits=8, audit_shares=T)
    rounds = iter(range(1, 10**6))
    record = benchmark.pedantic(lambda: run_round(scenario, next(rounds)), rounds=2, iterations=1)
    scenario.close()
    assert record.audit is not None and record.audit.passed
    benchmark.extra_info["gas"] = record.gas
    benchmark.extra_info["gas_per_device"] = record.per_device(devices)

"""Gas of the calls issue 12 changed, on a fresh contract: commitShares (PoW 8 bits), a t-share
audit (d = 1000) and closeRound, over two rounds (t = 3, n = 5, 4 devices). Quick (~1 min on
py-evm); run it on two checkouts to compare::

    PYTHONPATH=$PWD /work/main/.venv/bin/python benchmarks/chain_commit_gas.py
"""

from __future__ import annotations

import numpy as np
from eth_hash.auto import keccak

from ppbfl.chain import Chain, merkle_root
from ppbfl.chain.attest import KIND_AGGREGATE_SHARE, KIND_DECISIONS, KIND_SCALARS
from ppbfl.chain.scenario import setup_consortium
from ppbfl.sharing import share

T, N, DEVICES, D = 3, 5, 4, 1000


def main() -> None:
    """Print one line per round: the commitments' gas, the audit's and closeRound's."""
    with Chain.embedded(accounts=40) as chain:
        c = setup_consortium(chain, T, N, DEVICES, pow_bits=8)
        r = c.rounds
        ids = list(range(DEVICES))
        for rnd in (1, 2):
            r.open_round(rnd, keccak(b"model"))
            gas = []
            for device in c.devices:
                root = keccak(device.encode() + bytes([rnd]))
                gas.append(r.commit_shares(device, rnd, root, r.pow_stamp(device, rnd, root)))
            r.close_commitments(rnd)
            r.challenge_seed(rnd)
            edges = range(1, T + 1)  # each edge node signs its votes; the aggregator relays them
            values = np.ones((DEVICES, 2), dtype=np.uint64)
            r.post_scalars(rnd, ids, values, c.sign(edges, KIND_SCALARS, rnd, keccak(r.pack_scalars(ids, values))))
            packed = r.pack_decisions(ids, [0] * DEVICES, [1] * DEVICES)
            r.post_decisions(rnd, ids, [0] * DEVICES, [1] * DEVICES, c.sign(edges, KIND_DECISIONS, rnd, keccak(packed)))
            aggregate = np.arange(D, dtype=np.uint64)
            shares = share(aggregate, T, N)
            roots = [merkle_root(x) for x in shares]
            r.commit_aggregate_shares(rnd, roots, [c.sign([e], KIND_AGGREGATE_SHARE, rnd, roots[e - 1])[0] for e in range(1, N + 1)])
            r.post_aggregate(rnd, merkle_root(aggregate), keccak(b"next"), D)
            audit = r.audit(rnd, {e: shares[e - 1] for e in range(1, T + 1)}, aggregate)
            before = chain.gas_report().total("closeRound") if "closeRound" in chain.gas_report().calls else 0
            r.close_round(rnd)
            close = chain.gas_report().total("closeRound") - before
            print(f"round {rnd}: commitShares {gas} (mean {sum(gas) / len(gas):,.0f}); audit, t shares, d = {D}: {audit.gas:,}; closeRound {close:,}")


if __name__ == "__main__":
    main()

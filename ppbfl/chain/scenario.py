"""A complete honest round on chain with synthetic data (tests, benchmarks, examples).

:func:`setup_consortium` deploys the contract and registers ``n`` edge nodes and ``m`` devices;
:func:`run_round` drives one round through every phase: commitments with PoW stamps, scalars
and decisions agreed by t edge nodes, aggregate-share commitments of a real Shamir sharing of
the aggregate, the aggregate, an audit, trust, anchor and close. It records the gas per phase.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from eth_hash.auto import keccak

from ppbfl.chain.driver import Chain
from ppbfl.chain.merkle import merkle_root, root_of_leaves
from ppbfl.chain.rounds import AuditResult, Phase, RoundsContract
from ppbfl.field import FieldRNG
from ppbfl.sharing import share

__all__ = ["Consortium", "RoundRecord", "run_round", "setup_consortium"]


@dataclass
class Consortium:
    """A deployed contract with its registered parties."""

    chain: Chain
    rounds: RoundsContract
    edge_accounts: dict[int, str]
    devices: list[str]


@dataclass
class RoundRecord:
    """What :func:`run_round` did: gas per phase, audit result, wall time."""

    round: int
    gas: dict[str, int] = field(default_factory=dict)
    audit: AuditResult | None = None
    seconds: float = 0.0

    def per_device(self, devices: int) -> float:
        """Commitment + share of scalars, decisions and trust per device (the issue's 60k metric)."""
        return (self.gas["commit"] + self.gas["scalars"] + self.gas["decisions"] + self.gas["trust"]) / devices


def setup_consortium(chain: Chain, t: int, n: int, devices: int, *, pow_bits: int = 8, **deploy: int) -> Consortium:
    """Deploy and register ``n`` edge nodes (fingerprint keccak("tls-i")) and ``devices`` devices."""
    rounds = chain.deploy(t, n, **deploy)
    edges = {}
    for i in range(1, n + 1):
        edges[i] = chain.new_account()
        rounds.register_edge_node(i, edges[i], keccak(f"tls-{i}".encode()))
    accounts = []
    for _ in range(devices):
        account = chain.new_account()
        rounds.register_device(account, pow_bits)
        accounts.append(account)
    return Consortium(chain, rounds, edges, accounts)


def _gas_since(chain: Chain, before: dict[str, int], methods: tuple[str, ...]) -> int:
    report = chain.gas_report()
    return sum(report.total(m) - before.get(m, 0) for m in methods)


def run_round(
    c: Consortium, round_: int, *, d: int = 1000, pow_bits: int = 8, seed: int = 0, audit_shares: int | None = None
) -> RoundRecord:
    """Run round ``round_`` honestly: every device commits, edge nodes 1..t post scalars and
    decisions (the first publishes, the others vote), all n commit aggregate shares, and the
    audit opens ``audit_shares`` (default t: the routine audit; t + 1 attributes a mismatch)."""
    start = time.perf_counter()
    r, chain, t, n = c.rounds, c.chain, c.rounds.t, c.rounds.n
    record = RoundRecord(round_)
    rng = np.random.default_rng(seed + round_)  # simulation data only (not secrets)
    snapshot = {m: chain.gas_report().total(m) for m in chain.gas_report().calls}

    r.open_round(round_, keccak(f"model-{round_}".encode()))
    for device in c.devices:
        per_edge = [rng.bytes(32) for _ in range(n)]
        root = root_of_leaves(per_edge)
        r.commit_shares(device, round_, root, r.pow_stamp(device, round_, root, pow_bits))
    record.gas["commit"] = _gas_since(chain, snapshot, ("commitShares",))
    r.close_commitments(round_)
    r.challenge_seed(round_)

    ids = list(range(len(c.devices)))
    scalars = rng.integers(0, (1 << 61) - 1, size=(len(ids), 2), dtype=np.uint64)
    for edge in range(1, t + 1):
        r.post_scalars(edge, round_, ids, scalars)
    reasons = (rng.random(len(ids)) < 0.2).astype(np.uint8)
    weights = np.where(reasons == 0, 1 << 16, 0).astype(np.uint64)
    for edge in range(1, t + 1):
        r.post_decisions(edge, round_, ids, reasons, weights)

    aggregate = rng.integers(0, (1 << 61) - 1, size=d, dtype=np.uint64)
    shares = share(aggregate, t, n, rng=FieldRNG(bytes(32)))
    for edge in range(1, n + 1):
        r.commit_aggregate_share(edge, round_, merkle_root(shares[edge - 1]))
    r.post_aggregate(round_, merkle_root(aggregate), keccak(f"model-{round_ + 1}".encode()), d)
    audit_set = t if audit_shares is None else audit_shares
    record.audit = r.audit(round_, {e: shares[e - 1] for e in range(1, audit_set + 1)}, aggregate)
    r.set_trust(round_, ids, np.where(reasons == 0, 1.0, 0.5))
    r.anchor(round_, keccak(f"store-{round_}".encode()))
    r.close_round(round_)
    if r.round_state(round_).phase != Phase.CLOSED:
        raise AssertionError(f"round {round_} did not close")

    for key, methods in {
        "scalars": ("postScalars", "voteScalars"), "decisions": ("postDecisions", "voteDecisions"), "trust": ("setTrust",),
        "aggregate_shares": ("commitAggregateShare",), "aggregate": ("postAggregate",), "audit": ("audit",),
        "fixed": ("openRound", "closeCommitments", "anchor", "closeRound"),
    }.items():
        record.gas[key] = _gas_since(chain, snapshot, methods)
    record.gas["total"] = _gas_since(chain, snapshot, tuple(chain.gas_report().calls))
    record.seconds = time.perf_counter() - start
    return record

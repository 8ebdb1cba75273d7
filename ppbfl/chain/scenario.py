"""Synthetic rounds on chain through the protocol itself (tests, benchmarks, the gas tables).

:func:`setup_consortium` deploys the contract and registers ``n`` edge nodes and ``m`` devices
(the fixture of the contract's unit tests). :class:`Scenario` is a whole deployment on a chain:
a :class:`~ppbfl.protocol.ledger.ChainLedger`, an in-process edge tier and ``m`` device clients
(:class:`~ppbfl.fl.federation.Federation`); :func:`run_round` feeds it seeded synthetic updates
(every fifth sign-flipped, so decisions carry rejections) and records the gas per phase.
Every transaction is the one a real round sends: there is no second implementation of a round.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Self

import numpy as np
from eth_hash.auto import keccak

from ppbfl.chain.attest import ChainKey
from ppbfl.chain.driver import Chain
from ppbfl.chain.rounds import AuditResult, RoundsContract

__all__ = ["Consortium", "RoundRecord", "Scenario", "run_round", "setup_consortium"]


@dataclass
class Consortium:
    """A deployed contract with its registered parties: the edge nodes' own chain keys (their
    addresses are the registered accounts) and the devices' accounts."""

    chain: Chain
    rounds: RoundsContract
    edge_keys: dict[int, ChainKey]
    devices: list[str]

    @property
    def edge_accounts(self) -> dict[int, str]:
        """Edge index -> the registered address of its key."""
        return {i: key.address for i, key in self.edge_keys.items()}

    def sign(self, edges: Iterable[int], kind: int, round_: int, digest: bytes) -> list[bytes]:
        """The signatures of ``edges``' attestations of ``digest`` (kind 1 scalars, 2 decisions,
        3 aggregate-share root, 4 trust) in ``round_``, as each node makes it."""
        return [self.rounds.attest(self.edge_keys[e], kind, round_, digest) for e in edges]


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
    """Deploy and register ``n`` edge nodes (a fresh :class:`ChainKey` each, fingerprint
    keccak("tls-i")) and ``devices`` devices."""
    rounds = chain.deploy(t, n, **deploy)
    edges = {}
    for i in range(1, n + 1):
        edges[i] = ChainKey.generate()
        rounds.register_edge_node(i, edges[i].address, keccak(f"tls-{i}".encode()))
    accounts = []
    for _ in range(devices):
        account = chain.new_account()
        rounds.register_device(account, pow_bits)
        accounts.append(account)
    return Consortium(chain, rounds, edges, accounts)


PHASES: dict[str, tuple[str, ...]] = {
    "commit": ("commitShares",),
    "verify_request": ("postVerifyRequest",),
    "scalars": ("postScalars", "voteScalars"),
    "decisions": ("postDecisions", "voteDecisions"),
    "trust": ("commitTrust",),
    "aggregate_shares": ("commitAggregateShares",),
    "aggregate": ("postAggregate",),
    "audit": ("audit",),
    "fixed": ("openRound", "closeCommitments", "reportLiar", "closeRound"),
}
"""Gas phases of a round -> the contract methods whose gas they sum."""


class Scenario:
    """A ``(t, n)`` deployment with ``devices`` devices and length-``d`` updates on ``chain``.

    Args:
        pow_bits: every device's PoW difficulty.
        audit_shares: aggregate shares the on-chain audit opens (default ``t + 1``: a mismatch is
            attributed; ``t``: the routine audit).
    """

    def __init__(self, chain: Chain, t: int, n: int, devices: int, *, d: int = 1000, pow_bits: int = 8, audit_shares: int | None = None) -> None:
        from ppbfl.field.fixed_point import FixedPointCodec
        from ppbfl.fl.federation import Federation
        from ppbfl.protocol.deployment import InProcessDeployment
        from ppbfl.protocol.ledger import ChainLedger
        from ppbfl.protocol.round import Coordinator

        self.chain, self.d, self.devices = chain, d, devices
        self.ledger = ChainLedger(chain, t, n, devices, pow_bits=pow_bits, audit_shares=audit_shares)
        deployment = InProcessDeployment(t, n, d)
        coordinator = Coordinator(t, n, d, deployment.coordinator, codec=FixedPointCodec(), ledger=self.ledger, registry=deployment.peer_registry())
        self.federation = Federation(deployment, coordinator, range(devices), ledger=self.ledger, owns_deployment=True)

    @property
    def rounds(self) -> RoundsContract:
        """The deployed contract."""
        return self.ledger.contract

    def close(self) -> None:
        """Stop the deployment's threads (the chain is the caller's)."""
        self.federation.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _gas_since(chain: Chain, before: dict[str, int], methods: tuple[str, ...]) -> int:
    report = chain.gas_report()
    return sum(report.total(m) - before.get(m, 0) for m in methods)


def run_round(scenario: Scenario, round_: int, *, seed: int = 0) -> RoundRecord:
    """Run protocol round ``round_`` of ``scenario`` on seeded synthetic updates (entries ~1e-3,
    inside the devices' validity bound up to d = 1e5; devices 4, 9, 14, ... sign-flipped); returns
    the gas per phase (:data:`PHASES`), the audit and the wall time."""
    start = time.perf_counter()
    chain = scenario.chain
    rng = np.random.default_rng(seed + round_)  # simulation data only (not secrets)
    reference = rng.normal(0.0, 0.001, scenario.d)  # L2 ~0.45 at d = 1e5 (bound 2.0 at 16 fractional bits)
    updates = {i: reference + rng.normal(0.0, 0.001, scenario.d) for i in range(scenario.devices)}
    for i in range(4, scenario.devices, 5):
        updates[i] = -updates[i]
    snapshot = {m: chain.gas_report().total(m) for m in chain.gas_report().calls}
    scenario.federation.run_round(round_, updates, reference, model_hash=keccak(f"model-{round_}".encode()))
    record = RoundRecord(round_, audit=scenario.ledger.records[round_].audit)
    for key, methods in PHASES.items():
        record.gas[key] = _gas_since(chain, snapshot, methods)
    record.gas["total"] = _gas_since(chain, snapshot, tuple(chain.gas_report().calls))
    record.seconds = time.perf_counter() - start
    return record

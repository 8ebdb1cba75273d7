"""Trust through the chain for a simulated run: an in-process federation on an embedded py-evm chain.

``ppbfl experiment``'s secure runs with trust use :func:`chained_federation`: the same round the
demo runs, on a fresh ``PPBFLRounds`` contract of its own (py-evm, in process, gone with the run).
Every round then

* each device reads the PoW difficulty the contract derives from its stored trust and stamps its
  share commitment at it (the contract refuses a stamp below it);
* the edge nodes agree the scalars and decisions on chain (t signatures), the audit runs;
* every edge node computes the trust update itself from the decisions it signed
  (:class:`~ppbfl.trust.witness.TrustWitness`), and the keeper relays ``commitTrust`` with the
  nodes' t signatures: the round's records are anchored and the new trust words written, from
  which the next round's weights and PoW difficulty follow.

:func:`round_facts` reads back what the chain holds for a round (:class:`ChainRoundFacts`: the
anchored root, the trust words, the difficulty each device stamped at, gas), so a run's outputs
report the chain's record, not the keeper's word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ppbfl.chain import Chain
from ppbfl.errors import ConfigError
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.fl.federation import ZERO_HASH, DeviceFactory, Federation, operator_rule
from ppbfl.protocol.deployment import InProcessDeployment
from ppbfl.protocol.ledger import ChainLedger, DeviceChainAccount
from ppbfl.protocol.round import Coordinator, RoundResult
from ppbfl.trust.config import TrustConfig
from ppbfl.trust.ids_reports import IdsReport
from ppbfl.trust.keeper import RoundTrust, TrustKeeper
from ppbfl.trust.reputation import initial_trust

__all__ = ["ChainRoundFacts", "ChainedFederation", "chained_federation", "round_facts"]


@dataclass(frozen=True)
class ChainRoundFacts:
    """What the chain holds for one round of a :class:`ChainedFederation`.

    ``anchor``: the Merkle root ``commitTrust`` anchored (32 bytes); ``trust_q15``: each device's
    Q1.15 trust on chain after the round (the contract's trust words, index = device; read right
    after the round's ``commitTrust``, so they are what it wrote); ``pow_bits``: the difficulty each
    device read from the chain and stamped its commitment at in this round (index = device; -1: it
    did not commit); ``round_gas`` / ``trust_gas``: gas of the round's transactions and of its
    ``commitTrust``; ``trust``: the keeper's step (records, quarantined devices).
    """

    round: int
    anchor: bytes
    trust_q15: tuple[int, ...]
    pow_bits: tuple[int, ...]
    round_gas: int
    trust_gas: int
    trust: RoundTrust


class ChainedFederation(Federation):
    """A :class:`~ppbfl.fl.federation.Federation` whose ledger (and its embedded chain) and trust
    keeper it owns: :meth:`close` closes the keeper's store and the chain too. Before each round
    every device reads its PoW difficulty from the chain (:meth:`run_round`), so it stamps at what
    its trust sets, not at a difficulty cached from an earlier round."""

    ledger: ChainLedger
    trust: TrustKeeper

    def run_round(
        self, round: int, updates: Mapping[int, np.ndarray], reference: np.ndarray, *,
        trust: Mapping[int, float] | None = None, model_hash: bytes = ZERO_HASH, ids_flags: Mapping[int, int] | None = None,
        ids_reports: Sequence[IdsReport] = (), model: np.ndarray | None = None,
    ) -> RoundResult:
        """:meth:`Federation.run_round` after each device read its difficulty from the chain;
        ``ids_reports``: the edge nodes' signed IDS reports of the round (``node.ids_report``).

        Raises:
            ConfigError: ``trust`` given (the chain's agreed trust weights every round).
        """
        if trust is not None:
            raise ConfigError("trust", "a chained federation weights every round with the trust agreed on chain")
        for device in self.devices.values():
            board = device.board
            if isinstance(board, DeviceChainAccount):
                board.pow_bits = self.ledger.contract.device(board.account)[2]
        return super().run_round(round, updates, reference, model_hash=model_hash, ids_flags=ids_flags, ids_reports=ids_reports, model=model)

    def close(self) -> None:
        """Close the federation, the keeper's store and the embedded chain."""
        try:
            super().close()
        finally:
            self.trust.store.close()
            self.ledger.chain.close()


def chained_federation(
    t: int, n: int, d: int, devices: int, config: TrustConfig, *, codec: FixedPointCodec | None = None, tau: float = 0.0,
    norms: Literal["auto", "honest-majority", "beaver"] = "auto", factories: Mapping[int, DeviceFactory] | None = None, strict: bool = True,
    rule: str = "cosine", flame_noise: float = 0.0, rescale: bool = False, flame_space: str = "updates",
) -> ChainedFederation:
    """``devices`` devices around an in-process ``(t, n)`` deployment for updates of length ``d``,
    recording every round on a fresh contract on an embedded py-evm chain, with a
    :class:`~ppbfl.trust.keeper.TrustKeeper` (in-memory store) whose update the edge nodes sign.

    Devices are registered with the model's initial trust (:func:`~ppbfl.trust.reputation.initial_trust`),
    so round 1's difficulty follows the model; the keeper sets the contract's PoW range from
    ``config``. Other arguments as :meth:`Federation.in_process`. Every node reads the hash each
    round was opened with and its verify request's hash from the contract (the federation's
    :meth:`~ppbfl.protocol.edge_node.EdgeNode.read_chain`), not from the relay's request.
    """
    codec = FixedPointCodec() if codec is None else codec
    chain = Chain.embedded(accounts=devices + n + 4)
    deployment: InProcessDeployment | None = None
    try:
        rule_config = operator_rule(rule, tau, rescale, flame_noise, norms, flame_space)  # every node configured as by its operator
        deployment = InProcessDeployment(t, n, d, field=codec.field, signed_uploads=True, decision_rule=rule_config)
        ledger = ChainLedger(chain, t, n, devices, edge_accounts=deployment.edge_accounts, trust=initial_trust(config))
        coordinator = Coordinator(
            t, n, d, deployment.coordinator, codec=codec, tau=tau, norms=norms, device_keys=deployment.device_keys,
            ledger=ledger, rule=rule, flame_noise=flame_noise, rescale=rescale, flame_space=flame_space, registry=deployment.peer_registry(),
        )
        keeper = TrustKeeper(range(devices), config, ledger=ledger, voters=list(deployment.nodes.values()))
        return ChainedFederation(
            deployment, coordinator, range(devices), ledger=ledger, factories=factories, owns_deployment=True, strict=strict,
            trust=keeper,
        )
    except BaseException:
        if deployment is not None:
            deployment.close()
        chain.close()
        raise


def round_facts(federation: ChainedFederation, result: RoundResult) -> ChainRoundFacts:
    """What the chain holds for ``result.round`` after :meth:`ChainedFederation.run_round` (read from the contract)."""
    contract = federation.ledger.contract
    m = len(federation.devices)
    kept = federation.trust.last
    if kept is None or kept.round != result.round:
        raise ConfigError("round", f"round {result.round} has no trust step")
    words = [int(federation.ledger.chain.call(contract.contract, "trustWord", slot)) for slot in range((m + 15) // 16)]
    on_chain = [(words[i // 16] >> (16 * (i % 16))) & 0xFFFF for i in range(m)]
    stamped = {x.device for x in kept.records if x.commitment is not None}  # the commitments the keeper read from the chain
    bits = []
    for i in range(m):
        board = federation.devices[i].board
        bits.append(board.pow_bits if isinstance(board, DeviceChainAccount) and i in stamped and board.pow_bits is not None else -1)
    return ChainRoundFacts(
        result.round, contract.round_state(result.round).anchor, tuple(on_chain), tuple(bits),
        int(result.gas), kept.gas, kept,
    )

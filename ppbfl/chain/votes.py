"""An edge node's three chain votes of a round, built from its own values, and their signatures.

The node packs what it computed itself exactly as the contract stores it
(:meth:`~ppbfl.chain.rounds.RoundsContract.pack_scalars` /
:meth:`~ppbfl.chain.rounds.RoundsContract.pack_decisions`, :func:`~ppbfl.chain.merkle.merkle_root`)
and signs the attestations (:mod:`ppbfl.chain.attest`) of their keccak256 (scalars, decisions)
and of the root (aggregate share). A relay submits the signatures with the bytes it rebuilds from
the node's reply; if it changes a single byte, the contract recovers another signer and refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from eth_hash.auto import keccak
from eth_utils import to_canonical_address

from ppbfl.chain.attest import KIND_AGGREGATE_SHARE, KIND_DECISIONS, KIND_SCALARS, ChainKey, recover_signer
from ppbfl.chain.errors import ChainValueError
from ppbfl.chain.merkle import merkle_root
from ppbfl.chain.rounds import RoundsContract

__all__ = ["ChainContext", "RoundVotes"]


@dataclass(frozen=True)
class ChainContext:
    """The deployment a node signs its votes for: the contract's address and the chain id."""

    contract: str
    chain_id: int

    @property
    def contract_bytes(self) -> bytes:
        """The contract's 20-byte address (what :class:`~ppbfl.protocol.messages.AggregateRequest` carries)."""
        return to_canonical_address(self.contract)


@dataclass(frozen=True)
class RoundVotes:
    """A node's votes: ``scalars`` and ``decisions`` (packed bytes as the contract stores them)
    and ``share_root`` (the Merkle root of its aggregate share)."""

    scalars: bytes
    decisions: bytes
    share_root: bytes

    @classmethod
    def of(
        cls, device_ids: Sequence[int], norm2: np.ndarray, dot_ref: np.ndarray, reasons: Sequence[int], weights: np.ndarray,
        share: np.ndarray,
    ) -> RoundVotes:
        """Pack the votes of an edge node's reply: ``norm2``, ``dot_ref``, ``weights``: (m,) uint64
        and ``reasons``: m reason codes for the m chain ``device_ids`` (ascending); ``share``: (d,) uint64.

        Raises:
            ChainValueError: a field has the wrong shape or dtype, or ids are not ascending.
        """
        m = len(device_ids)
        norm2, dot_ref = np.asarray(norm2), np.asarray(dot_ref)
        if norm2.shape != (m,) or dot_ref.shape != (m,):
            raise ChainValueError("scalars", f"norm2 {norm2.shape} and dot_ref {dot_ref.shape}, expected ({m},) each")
        values = np.stack([norm2, dot_ref], axis=1).astype(np.uint64).reshape(m, 2)
        return cls(
            RoundsContract.pack_scalars(device_ids, values),
            RoundsContract.pack_decisions(device_ids, list(reasons), np.asarray(weights)),
            merkle_root(np.asarray(share)),
        )

    def _items(self) -> tuple[tuple[int, bytes], ...]:
        return ((KIND_SCALARS, keccak(self.scalars)), (KIND_DECISIONS, keccak(self.decisions)), (KIND_AGGREGATE_SHARE, self.share_root))

    def sign(self, key: ChainKey, context: ChainContext, round_: int) -> list[bytes]:
        """``key``'s three signatures (scalars, decisions, aggregate share) for ``round_`` in ``context``."""
        return [key.attest(kind, context.contract, context.chain_id, round_, digest) for kind, digest in self._items()]

    def signed_by(self, account: str, signatures: Sequence[bytes], context: ChainContext, round_: int) -> bool:
        """Whether ``signatures`` are ``account``'s three signatures of these votes (what the
        contract will accept as that node's)."""
        if len(signatures) != 3:
            return False
        return all(
            (recover_signer(signature, kind, context.contract, context.chain_id, round_, digest) or "").lower() == account.lower()
            for signature, (kind, digest) in zip(signatures, self._items())
        )

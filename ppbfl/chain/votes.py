"""An edge node's three chain votes of a round, built from its own values, and their signatures.

The node packs what it computed itself exactly as the contract stores it
(:meth:`~ppbfl.chain.rounds.RoundsContract.pack_scalars` /
:meth:`~ppbfl.chain.rounds.RoundsContract.pack_decisions`, :func:`~ppbfl.chain.merkle.merkle_root`)
and signs the attestations (:mod:`ppbfl.chain.attest`) of their keccak256 (scalars, decisions)
and of the root (aggregate share). A relay submits the signatures with the bytes it rebuilds from
the node's reply; if it changes a single byte, the contract recovers another signer and refuses.
:class:`TrustVote` is the fourth kind: a round's trust update, signed after the round.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak
from eth_utils import to_canonical_address

from ppbfl.chain.attest import KIND_AGGREGATE_SHARE, KIND_DECISIONS, KIND_SCALARS, KIND_TRUST, ChainKey, recover_signer
from ppbfl.chain.errors import ChainValueError
from ppbfl.chain.merkle import merkle_root
from ppbfl.chain.rounds import RoundsContract

__all__ = ["ChainContext", "RoundVotes", "TrustVote", "refusal_digest"]


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


def refusal_digest(refused: Collection[int]) -> bytes:
    """The contract's ``refusalDigest`` of a round whose refused device ids are ``refused``: 32 zero
    bytes when none, else ``h_k = keccak256(h_{k-1} || uint32 id_k)`` over the ids ascending, ``h_0 = 0``."""
    h = bytes(32)
    for i in sorted({int(x) for x in refused}):
        h = keccak(h + i.to_bytes(4, "big"))
    return h


@dataclass(frozen=True)
class TrustVote:
    """A round's trust update as ``commitTrust`` writes it: the trust store's Merkle ``root`` and
    the storage ``words`` (16 Q1.15 lanes each) at ``slots``, computed with the PoW refusals
    ``refused`` (device ids, ascending: the round's refusals on chain); edge nodes sign its
    ``digest`` (kind 4) and the contract accepts it only with ``t`` such signatures, and only if
    ``refused`` are exactly the refusals it recorded."""

    root: bytes
    slots: tuple[int, ...]
    words: tuple[int, ...]
    refused: tuple[int, ...] = ()

    @classmethod
    def of(cls, root: bytes, device_ids: Sequence[int], trust_q15: Sequence[int], refused: Collection[int] = ()) -> TrustVote:
        """The vote setting device ``device_ids[k]`` to ``trust_q15[k]`` (ints in [0, 2^15]); every
        lane of the words these ids fall in that is not listed is set to 0, so list every
        registered device (the keeper does). ``refused``: the device ids whose PoW stamp the
        round's update counted as refused.

        Raises:
            ChainValueError: root not 32 bytes, lengths differ, an id twice, a score or a refused id out of range.
        """
        if any(not 0 <= int(i) < 1 << 32 for i in refused):
            raise ChainValueError("refused", f"device ids in [0, 2^32) expected, got {sorted(refused)[:8]}")
        if len(root) != 32:
            raise ChainValueError("root", f"{len(root)} bytes, expected 32")
        if len(device_ids) != len(trust_q15) or len(set(device_ids)) != len(device_ids):
            raise ChainValueError("device_ids", f"{len(device_ids)} ids (distinct) for {len(trust_q15)} scores expected")
        words: dict[int, int] = {}
        for device, score in zip(device_ids, trust_q15):
            if not 0 <= int(score) <= 1 << 15 or not 0 <= int(device) < 1 << 32:
                raise ChainValueError("trust_q15", f"device {device}: {score!r} is not a Q1.15 score in [0, 2^15]")
            slot, lane = divmod(int(device), 16)
            words[slot] = words.get(slot, 0) | int(score) << (16 * lane)
        slots = tuple(sorted(words))
        return cls(bytes(root), slots, tuple(words[s] for s in slots), tuple(sorted({int(i) for i in refused})))

    @property
    def digest(self) -> bytes:
        """What the kind-4 attestation covers: ``keccak256(abi.encode(root, slots, words))``, or with
        refusals ``keccak256(abi.encode(root, slots, words, refusal_digest(refused)))`` (the
        contract's ``refusalDigest`` of the round must equal it)."""
        if not self.refused:
            return keccak(abi_encode(["bytes32", "uint256[]", "uint256[]"], [self.root, list(self.slots), list(self.words)]))
        return keccak(abi_encode(
            ["bytes32", "uint256[]", "uint256[]", "bytes32"], [self.root, list(self.slots), list(self.words), refusal_digest(self.refused)],
        ))

    def sign(self, key: ChainKey, context: ChainContext, round_: int) -> bytes:
        """``key``'s kind-4 signature of this vote for ``round_`` in ``context``."""
        return key.attest(KIND_TRUST, context.contract, context.chain_id, round_, self.digest)

    def signed_by(self, account: str, signature: bytes, context: ChainContext, round_: int) -> bool:
        """Whether ``signature`` is ``account``'s kind-4 signature of this vote."""
        signer = recover_signer(signature, KIND_TRUST, context.contract, context.chain_id, round_, self.digest)
        return (signer or "").lower() == account.lower()

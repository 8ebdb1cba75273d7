"""A device's on-chain commitment where the device cannot reach the chain (a Flower SuperNode):
the device stamps and signs its own ``commitShares`` transaction, a relay sends it unchanged.

The relay (the Flower workflow) tells each device the public facts it needs to sign
(:class:`ChainTerms`: the contract, the chain id, its account's next nonce and its PoW
difficulty). They are the relay's word, and lying about them gains it nothing it could not do by
dropping the transaction: a wrong contract, chain id or nonce gives a transaction the chain
refuses or that lands nowhere (the device then has no commitment and is missing from the round);
a difficulty below the chain's reverts on chain (``StalePow``, nothing recorded: the transaction
names the difficulty the device stamped at, so a relay's wrong figure cannot make the device's
stamp a recorded PoW refusal); a higher one only costs hashing. The device refuses only a
difficulty above its own bound (hashing ``2^bits`` nonces would be a relay's way to stall it).
The key never leaves the device and the commitment is bound on chain to the device's registered
account, round and id (``docs/chain.md``), so a relay cannot commit for a device.
"""

from __future__ import annotations

from dataclasses import dataclass

from ppbfl.chain.attest import ChainKey
from ppbfl.chain.driver import signing_fields
from ppbfl.chain.pow import pow_stamp
from ppbfl.chain.rounds import commit_transaction
from ppbfl.protocol.round_errors import AnnouncementError

__all__ = ["DEFAULT_MAX_POW_BITS", "ChainTerms", "RelayedCommitment"]

DEFAULT_MAX_POW_BITS = 24
"""The highest PoW difficulty a device stamps at unless configured otherwise (2^24 keccak hashes:
seconds on a laptop, about a minute on a Raspberry-Pi-class device; trust-scaled PoW asks ~8-20)."""


@dataclass(frozen=True)
class ChainTerms:
    """What a relay tells the devices about the chain for one round (public).

    Attributes:
        contract: the rounds contract's 0x address.
        chain_id: the chain's id (EIP-155).
        nonces: device index -> its chain account's next transaction nonce.
        pow_bits: device index -> its PoW difficulty on chain this round.
    """

    contract: str
    chain_id: int
    nonces: dict[int, int]
    pow_bits: dict[int, int]


class RelayedCommitment:
    """Device ``device``'s commitment board (:class:`~ppbfl.protocol.device.CommitmentBoard`) when
    a relay sends its transaction: :meth:`commit` stamps the PoW and signs with ``key``, and keeps
    the signed bytes in :attr:`raw` for the relay.

    Args:
        key: the device's own chain key (registered on chain for it).
        device: the device index (the terms' key).
        terms: the relay's :class:`ChainTerms` for this round.
        max_pow_bits: the highest difficulty this device stamps at.
    """

    def __init__(self, key: ChainKey, device: int, terms: ChainTerms, *, max_pow_bits: int = DEFAULT_MAX_POW_BITS) -> None:
        self.key, self.device, self.terms, self.max_pow_bits = key, device, terms, max_pow_bits
        self.raw: bytes | None = None

    def commit(self, round: int, commitment: bytes) -> None:
        """Stamp ``commitment`` (32 bytes) for ``round`` at the device's difficulty and sign the
        ``commitShares`` transaction into :attr:`raw`.

        Raises:
            AnnouncementError: the terms name no nonce or difficulty for this device, or a
                difficulty above ``max_pow_bits`` (nothing is hashed then).
        """
        nonce, bits = self.terms.nonces.get(self.device), self.terms.pow_bits.get(self.device)
        if nonce is None or bits is None:
            raise AnnouncementError(self.device, "chain", sorted(self.terms.nonces), f"a nonce and PoW difficulty for device {self.device}")
        if not 0 <= bits <= self.max_pow_bits:
            raise AnnouncementError(self.device, "chain_pow_bits", bits, f"a PoW difficulty in [0, {self.max_pow_bits}]")
        stamp = pow_stamp(self.terms.contract, self.terms.chain_id, self.key.address, round, commitment, bits)
        fields = signing_fields(nonce, self.terms.chain_id)
        self.raw = commit_transaction(self.key, self.terms.contract, fields, round, commitment, stamp, bits)

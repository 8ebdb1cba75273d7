"""Edge nodes' signed chain votes (attestations), checked by ``PPBFLRounds`` with ``ecrecover``.

An edge node holds its own secp256k1 key (:class:`ChainKey`; the key never leaves the node) and
signs what it agrees to, for one contract, chain and round:

    attestation = keccak256(abi.encode(uint8 kind, address contract, uint256 chainid, uint64 round, bytes32 digest))
    signed hash = keccak256("\\x19Ethereum Signed Message:\\n32" || attestation)      (EIP-191)

``kind`` 1 = scalars (``digest`` = keccak256 of the packed scalars,
:meth:`~ppbfl.chain.rounds.RoundsContract.pack_scalars`), 2 = decisions (keccak256 of the packed
decisions), 3 = the node's aggregate-share Merkle root, 4 = a trust vote; 5 = an IDS report
(:mod:`ppbfl.trust.ids_reports`: checked by the edge nodes, never by the contract, which recovers
only the kinds it counts, so a kind-5 signature cannot pass as a vote). A signature is 65 bytes ``r || s || v``
with ``v`` in {27, 28} and low ``s`` (the contract refuses the malleable twin). Any relay may
submit it; the contract counts the recovered signer if it is a registered edge node, so a relay
can neither vote for a node nor move a signature to another kind, round, contract or chain.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coincurve import PrivateKey, PublicKey
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_canonical_address, to_checksum_address

from ppbfl.chain.errors import ChainValueError

__all__ = [
    "KIND_AGGREGATE_SHARE",
    "KIND_DECISIONS",
    "KIND_IDS_FLAGS",
    "KIND_SCALARS",
    "KIND_TRUST",
    "SIGNATURE_BYTES",
    "ChainKey",
    "attestation_hash",
    "recover_signer",
]

KIND_SCALARS = 1
KIND_DECISIONS = 2
KIND_AGGREGATE_SHARE = 3
KIND_TRUST = 4
KIND_IDS_FLAGS = 5
#: r (32) || s (32) || v (1)
SIGNATURE_BYTES = 65
_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1 group order
_PREFIX = b"\x19Ethereum Signed Message:\n32"


def attestation_hash(kind: int, contract: str, chain_id: int, round_: int, digest: bytes) -> bytes:
    """The 32-byte EIP-191 hash an edge node signs for ``(kind, contract, chain_id, round_, digest)``.

    Raises:
        ChainValueError: a field is out of range (kind 1..5, round a uint64 >= 1, digest 32 bytes).
    """
    if kind not in (KIND_SCALARS, KIND_DECISIONS, KIND_AGGREGATE_SHARE, KIND_TRUST, KIND_IDS_FLAGS):
        raise ChainValueError("kind", f"{kind!r} is not 1 (scalars), 2 (decisions), 3 (aggregate share), 4 (trust) or 5 (IDS report)")
    if isinstance(round_, bool) or not isinstance(round_, int) or not 0 < round_ < 1 << 64:
        raise ChainValueError("round", f"{round_!r} is not a uint64 round number >= 1")
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or not 0 <= chain_id < 1 << 256:
        raise ChainValueError("chain_id", f"{chain_id!r} is not a uint256")
    if not isinstance(digest, (bytes, bytearray)) or len(digest) != 32:
        raise ChainValueError("digest", "is not 32 bytes")
    try:
        address = to_canonical_address(contract)
    except (TypeError, ValueError) as exc:
        raise ChainValueError("contract", f"{contract!r} is not an address") from exc
    encoded = (
        kind.to_bytes(32, "big") + bytes(12) + address + chain_id.to_bytes(32, "big") + round_.to_bytes(32, "big") + bytes(digest)
    )
    return keccak(_PREFIX + keccak(encoded))


def _address(public: PublicKey) -> str:
    return to_checksum_address(keccak(public.format(compressed=False)[1:])[-20:])


class ChainKey:
    """An edge node's own secp256k1 chain key: its address is what the contract registers for it."""

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, (bytes, bytearray)) or len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < _ORDER:
            raise ChainValueError("secret", "is not a 32-byte secp256k1 private key in [1, n)")
        self._key = PrivateKey(bytes(secret))
        self.address = _address(self._key.public_key)

    @classmethod
    def generate(cls) -> ChainKey:
        """A fresh key from the OS's CSPRNG."""
        while True:
            secret = os.urandom(32)
            if 0 < int.from_bytes(secret, "big") < _ORDER:
                return cls(secret)

    def save(self, path: str | os.PathLike) -> None:
        """Write the key (hex) to ``path``, readable by the owner only (0600); refuses to overwrite."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self._key.secret.hex() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> ChainKey:
        """Read a key written by :meth:`save`.

        Raises:
            ChainValueError: the file is missing, readable by others than its owner, or not a key.
        """
        file = Path(path)
        try:
            mode = file.stat().st_mode
            text = file.read_text().strip()
        except OSError as exc:
            raise ChainValueError("chain key", f"cannot read {file}: {exc}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ChainValueError("chain key", f"{file} is readable by others (mode {stat.filemode(mode)}); expected 0600")
        try:
            secret = bytes.fromhex(text)
        except ValueError as exc:
            raise ChainValueError("chain key", f"{file} does not hold a hex key") from exc
        return cls(secret)

    def sign_transaction(self, tx: Mapping[str, Any]) -> bytes:
        """This key's signed raw transaction (EIP-1559 fields: ``to``, ``data``, ``nonce``,
        ``chainId``, ``gas``, ``maxFeePerGas``, ``maxPriorityFeePerGas``): what a party hands a
        relay to send unchanged (:meth:`ppbfl.chain.driver.Chain.send_raw`)."""
        return bytes(Account.sign_transaction(dict(tx), self._key.secret).raw_transaction)

    def attest(self, kind: int, contract: str, chain_id: int, round_: int, digest: bytes) -> bytes:
        """This key's 65-byte signature ``r || s || v`` (low s, v in {27, 28}) of :func:`attestation_hash`."""
        signature = self._key.sign_recoverable(attestation_hash(kind, contract, chain_id, round_, digest), hasher=None)
        return signature[:64] + bytes([27 + signature[64]])


def recover_signer(signature: bytes, kind: int, contract: str, chain_id: int, round_: int, digest: bytes) -> str | None:
    """The address whose key made ``signature`` for these fields, as the contract recovers it;
    None where the contract refuses the signature (not 65 bytes, v not 27/28, s = 0 or high, r = 0
    or not recoverable)."""
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != SIGNATURE_BYTES or signature[64] not in (27, 28):
        return None
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
    if not (0 < r < _ORDER and 0 < s <= _ORDER // 2):
        return None
    message = attestation_hash(kind, contract, chain_id, round_, digest)
    try:
        public = PublicKey.from_signature_and_message(bytes(signature[:64]) + bytes([signature[64] - 27]), message, hasher=None)
    except ValueError:
        return None
    return _address(public)

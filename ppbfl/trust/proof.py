"""A proof that one trust record is in a round's anchored Merkle root, and its chain-only verifier.

The verifier needs nothing from the store or the relay: it recomputes the record's leaf
(:mod:`ppbfl.trust.record`), folds the sibling path and compares with the root the contract holds
for that round (``roundInfo(round).anchor``, set once by ``commitTrust``/``anchor``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ppbfl.chain.merkle import verify_leaf_proof
from ppbfl.chain.rounds import RoundsContract
from ppbfl.errors import ConfigError
from ppbfl.trust.record import TrustRecord
from ppbfl.trust.reputation import DeviceTrust, Evidence

__all__ = ["TrustProof", "verify_on_chain"]


@dataclass(frozen=True)
class TrustProof:
    """``record`` is leaf ``index`` (records sorted by device) of its round's tree; ``siblings``: the path, leaf level first."""

    record: TrustRecord
    index: int
    siblings: tuple[bytes, ...]

    def verify(self, root: bytes) -> bool:
        """Whether the record's leaf and the path fold to ``root`` (32 bytes, not all zero)."""
        if len(root) != 32 or root == bytes(32):
            return False
        return verify_leaf_proof(root, self.record.leaf, self.index, self.siblings)

    def to_json(self) -> str:
        """The proof as JSON (hex byte strings; a NaN cosine as null)."""
        x = self.record
        return json.dumps({
            "round": x.round, "device": x.device, "reason": x.evidence.reason, "pow_failed": x.evidence.pow_failed,
            "ids_flags": x.evidence.ids_flags, "cosine": None if math.isnan(x.cosine) else x.cosine, "weight": x.weight,
            "before": [x.before.positive, x.before.negative, x.before.quarantined],
            "after": [x.after.positive, x.after.negative, x.after.quarantined],
            "trust_before": x.before.trust, "trust_after": x.after.trust, "pow_bits": x.pow_bits,
            "commitment": None if x.commitment is None else x.commitment.hex(),
            "index": self.index, "siblings": [s.hex() for s in self.siblings],
        }, indent=1)

    @classmethod
    def from_json(cls, text: str) -> TrustProof:
        """Parse :meth:`to_json`'s output.

        Raises:
            ConfigError: malformed JSON or a missing/ill-typed field (named).
        """
        try:
            d: dict[str, Any] = json.loads(text)
            record = TrustRecord(
                int(d["round"]), int(d["device"]), Evidence(int(d["reason"]), bool(d["pow_failed"]), int(d["ids_flags"])),
                math.nan if d["cosine"] is None else float(d["cosine"]), float(d["weight"]),
                DeviceTrust(int(d["before"][0]), int(d["before"][1]), bool(d["before"][2])),
                DeviceTrust(int(d["after"][0]), int(d["after"][1]), bool(d["after"][2])),
                int(d["pow_bits"]), None if d["commitment"] is None else bytes.fromhex(d["commitment"]),
            )
            siblings = tuple(bytes.fromhex(s) for s in d["siblings"])
            proof = cls(record, int(d["index"]), siblings)
        except (ValueError, TypeError, KeyError, IndexError) as error:
            raise ConfigError("proof", f"not a trust proof: {type(error).__name__}: {error}") from error
        if proof.record.before.trust != d["trust_before"] or proof.record.after.trust != d["trust_after"]:
            raise ConfigError("proof.trust_after", "the stated trust does not follow from the evidence counts")
        return proof


def verify_on_chain(proof: TrustProof, contract: RoundsContract) -> bool:
    """Check ``proof`` against the root the contract anchored for its round (False if none is anchored)."""
    return proof.verify(contract.round_state(proof.record.round).anchor)

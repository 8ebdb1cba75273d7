"""Catch-up without a chain client: a missed round's records proven by the t edge signatures.

An edge process has no chain client, so it cannot read a round's anchor or agreed decisions
itself. What it can check is what ``commitTrust`` checked: the round's trust vote (the root the
records fold to, and the Q1.15 words of their ``after`` states) carries kind-4 signatures of
``t`` distinct *registered* edge accounts (:class:`TrustSigners`, given to the node by its
operator, never by the relay). Fewer than ``t`` edge nodes are corrupt, so at least one honest
node computed exactly these records from the decisions agreed on chain; the node then also checks
each record against its own states (``before`` is its state, ``after`` the update rule's, every
registered device has one record of this round).

Records travel as their canonical leaf rows (:data:`~ppbfl.trust.record.LEAF_DTYPE`, 103 bytes
each): :func:`records_to_rows` / :func:`records_from_rows` (which refuses a non-canonical row).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ppbfl.chain.attest import KIND_TRUST, recover_signer
from ppbfl.chain.votes import ChainContext, TrustVote
from ppbfl.errors import ConfigError
from ppbfl.trust.record import LEAF_DTYPE, TrustRecord, pack_records
from ppbfl.trust.reputation import DeviceTrust, Evidence

__all__ = ["ROW_BYTES", "TrustSigners", "records_from_rows", "records_to_rows"]

ROW_BYTES = LEAF_DTYPE.itemsize
"""Bytes of one record on the wire (its leaf row)."""


@dataclass(frozen=True)
class TrustSigners:
    """The registered edge ``accounts`` (0x addresses) and the ``threshold`` t of kind-4
    signatures ``commitTrust`` requires: what a node checks a relayed round against."""

    accounts: frozenset[str]
    threshold: int

    @classmethod
    def of(cls, accounts: Iterable[str], threshold: int) -> TrustSigners:
        """From the operator's list of registered edge accounts and t.

        Raises:
            ConfigError: key ``trust_signers``: t < 1 or more than the distinct accounts.
        """
        unique = frozenset(a.lower() for a in accounts)
        if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= len(unique):
            raise ConfigError("trust_signers", f"threshold {threshold!r} for {len(unique)} distinct edge accounts")
        return cls(unique, threshold)

    def check(self, vote: TrustVote, signatures: Sequence[bytes], context: ChainContext, round: int) -> None:
        """Whether ``signatures`` hold kind-4 signatures of ``vote`` for ``round`` in ``context``
        by at least ``threshold`` distinct registered accounts.

        Raises:
            ConfigError: key ``signatures``, saying how many valid distinct registered signers.
        """
        recovered = {recover_signer(s, KIND_TRUST, context.contract, context.chain_id, round, vote.digest) for s in signatures}
        signers = {a.lower() for a in recovered if a is not None} & self.accounts
        if len(signers) < self.threshold:
            raise ConfigError("signatures", f"round {round}: {len(signers)} valid signatures of registered edge accounts "
                                            f"over these records, {self.threshold} required")


def records_to_rows(records: Sequence[TrustRecord]) -> list[bytes]:
    """Each record's canonical ``ROW_BYTES``-byte row (the bytes its leaf hashes)."""
    packed = pack_records(records)
    return [packed[k].tobytes() for k in range(len(records))]


def records_from_rows(rows: Sequence[bytes], round: int, devices: Collection[int]) -> list[TrustRecord]:
    """The records of ``round`` in ``rows``: exactly one per device of ``devices``, each row canonical.

    Raises:
        ConfigError: key ``records`` (count, a row's length, round, device, or a non-canonical row:
            a field out of range or a stored trust that is not the state's).
    """
    if len(rows) != len(devices):
        raise ConfigError("records", f"round {round}: {len(rows)} records for {len(devices)} registered devices")
    if any(len(row) != ROW_BYTES for row in rows):
        raise ConfigError("records", f"round {round}: a record row is not {ROW_BYTES} bytes")
    packed = np.frombuffer(b"".join(rows), dtype=LEAF_DTYPE)
    at = ROW_BYTES - 32  # the last field; numpy's S32 drops trailing zero bytes: read the row's own
    records = []
    for k, x in enumerate(packed):
        commitment = rows[k][at:at + 32]
        try:
            record = TrustRecord(
                int(x["round"]), int(x["device"]), Evidence(int(x["reason"]), bool(x["pow_failed"]), int(x["ids_flags"])),
                float(x["cosine"]), float(x["weight"]),
                DeviceTrust(int(x["positive_before"]), int(x["negative_before"]), bool(x["quarantined_before"])),
                DeviceTrust(int(x["positive_after"]), int(x["negative_after"]), bool(x["quarantined_after"])),
                int(x["pow_bits"]), None if commitment == bytes(32) else commitment,
            )
        except ConfigError as error:
            raise ConfigError("records", f"round {round}, record {k}: {error}") from None
        if record.round != round:
            raise ConfigError("records", f"record {k} is of round {record.round}, not {round}")
        if records_to_rows([record])[0] != rows[k]:
            raise ConfigError("records", f"round {round}, record {k}: not canonical (a flag or stored trust is not the state's)")
        records.append(record)
    if sorted(x.device for x in records) != sorted(devices):
        raise ConfigError("records", f"round {round}: the records' devices are not the registered ones, once each")
    return records

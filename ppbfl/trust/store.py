"""The off-chain trust store: every device's record of every round, one Merkle root per round.

SQLAlchemy over any database URL: SQLite by default (a file, or ``sqlite://`` in memory),
PostgreSQL with ``postgresql+psycopg://user@host:port/db``. Opening a store upgrades its schema to
the head alembic revision (``ppbfl/trust/migrations``; the version lives in the table
``trust_alembic_version``), so an older database is migrated in place and a new one created.

A round's records are stored in one transaction together with the Merkle root of their leaves
(:mod:`ppbfl.trust.record`, sorted by device; tree of :func:`ppbfl.chain.merkle.root_of_leaves`):
the root is what the coordinator anchors on chain, and :meth:`TrustStore.prove` opens one record
against it (:mod:`ppbfl.trust.proof`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import resources
from itertools import pairwise
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, delete, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

from ppbfl.chain.merkle import leaf_proof, root_of_leaves
from ppbfl.errors import PPBFLError
from ppbfl.trust import schema
from ppbfl.trust.proof import TrustProof
from ppbfl.trust.record import TrustRecord, record_leaves
from ppbfl.trust.reputation import DeviceTrust, Evidence

__all__ = ["HEAD_REVISION", "TrustStore", "TrustStoreError", "safe_url"]

HEAD_REVISION = "0002"
"""The alembic revision this code writes."""


def safe_url(url: str) -> str:
    """``url`` with its password masked (for messages)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


class TrustStoreError(PPBFLError):
    """The store cannot do what was asked: a round stored twice, no such record, an unreachable database."""


def _row(x: TrustRecord) -> dict[str, Any]:
    return {
        "round": x.round, "device": x.device, "reason": x.evidence.reason, "pow_failed": x.evidence.pow_failed,
        "ids_flags": x.evidence.ids_flags, "cosine": None if math.isnan(x.cosine) else x.cosine, "weight": x.weight,
        "positive_before": x.before.positive, "negative_before": x.before.negative, "quarantined_before": x.before.quarantined,
        "positive_after": x.after.positive, "negative_after": x.after.negative, "quarantined_after": x.after.quarantined,
        "trust_before": x.before.trust, "trust_after": x.after.trust, "pow_bits": x.pow_bits, "commitment": x.commitment,
    }


def _record(row: Any) -> TrustRecord:
    return TrustRecord(
        int(row.round), int(row.device), Evidence(int(row.reason), bool(row.pow_failed), int(row.ids_flags)),
        math.nan if row.cosine is None else float(row.cosine), float(row.weight),
        DeviceTrust(int(row.positive_before), int(row.negative_before), bool(row.quarantined_before)),
        DeviceTrust(int(row.positive_after), int(row.negative_after), bool(row.quarantined_after)),
        int(row.pow_bits), None if row.commitment is None else bytes(row.commitment),
    )


def _migrations() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("ppbfl.trust") / "migrations"))
    return config


class TrustStore:
    """The records of a consortium's rounds in the database at ``url`` (default: in-memory SQLite).

    Raises:
        TrustStoreError: the database cannot be reached or migrated.
    """

    def __init__(self, url: str = "sqlite://") -> None:
        try:
            self.engine: Engine = create_engine(url)
            with self.engine.begin() as connection:
                config = _migrations()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except SQLAlchemyError as error:
            raise TrustStoreError(f"trust store {safe_url(url)}: {type(error).__name__}: {error}") from error

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def revision(self) -> str | None:
        """The schema revision the database is at (:data:`HEAD_REVISION` after opening)."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection, opts={"version_table": "trust_alembic_version"}).get_current_revision()

    # -- writing -------------------------------------------------------------------------------
    def add_round(self, round: int, records: Sequence[TrustRecord], *, replace: bool = False) -> bytes:
        """Store round ``round``'s records (one per device, any order) and their Merkle root; returns the root.
        ``replace``: first drop round ``round`` and every later round (in the same transaction):
        a node repairing a round it stored differently from what the edge nodes agreed.

        Raises:
            TrustStoreError: no records, a record of another round or a device twice, or the round
                is already stored (without ``replace``).
        """
        ordered = sorted(records, key=lambda x: x.device)
        if not ordered:
            raise TrustStoreError(f"round {round}: no records")
        for a, b in pairwise(ordered):
            if a.device == b.device:
                raise TrustStoreError(f"round {round}: device {a.device} has two records")
        wrong = [x.device for x in ordered if x.round != round]
        if wrong:
            raise TrustStoreError(f"round {round}: records of devices {wrong[:8]} belong to another round")
        leaves = [leaf.tobytes() for leaf in record_leaves(ordered)]
        root = root_of_leaves(leaves)
        try:
            with self.engine.begin() as connection:
                if replace:
                    connection.execute(delete(schema.records).where(schema.records.c.round >= round))
                    connection.execute(delete(schema.rounds).where(schema.rounds.c.round >= round))
                connection.execute(insert(schema.rounds), [{"round": round, "root": root, "count": len(ordered)}])
                connection.execute(insert(schema.records), [{**_row(x), "leaf": leaf} for x, leaf in zip(ordered, leaves)])
        except IntegrityError as error:
            raise TrustStoreError(f"round {round} is already stored") from error
        return root

    # -- reading -------------------------------------------------------------------------------
    def rounds(self) -> list[int]:
        """The stored rounds, ascending."""
        with self.engine.connect() as connection:
            return [int(r) for r in connection.execute(select(schema.rounds.c.round).order_by(schema.rounds.c.round)).scalars()]

    def root(self, round: int) -> bytes:
        """The Merkle root stored with ``round`` (the one anchored on chain)."""
        with self.engine.connect() as connection:
            root = connection.execute(select(schema.rounds.c.root).where(schema.rounds.c.round == round)).scalar()
        if root is None:
            raise TrustStoreError(f"round {round} is not stored")
        return bytes(root)

    def records(self, round: int) -> list[TrustRecord]:
        """Round ``round``'s records, sorted by device (empty if it is not stored)."""
        t = schema.records
        with self.engine.connect() as connection:
            return [_record(r) for r in connection.execute(select(t).where(t.c.round == round).order_by(t.c.device))]

    def history(self, device: int) -> list[TrustRecord]:
        """Every record of ``device``, by round."""
        t = schema.records
        with self.engine.connect() as connection:
            return [_record(r) for r in connection.execute(select(t).where(t.c.device == device).order_by(t.c.round))]

    def latest_states(self) -> dict[int, DeviceTrust]:
        """Each device's reputation after the last round it has a record of."""
        states: dict[int, DeviceTrust] = {}
        t = schema.records
        with self.engine.connect() as connection:
            for row in connection.execute(select(t).order_by(t.c.round)):
                states[int(row.device)] = DeviceTrust(int(row.positive_after), int(row.negative_after), bool(row.quarantined_after))
        return states

    def prove(self, device: int, round: int) -> TrustProof:
        """A proof of ``device``'s record of ``round`` against that round's Merkle root.

        The path comes from the round's stored leaves (one column), the record from its row: the
        verifier recomputes the record's leaf, so an edited row fails whatever its stored leaf says.

        Raises:
            TrustStoreError: no such record, or a row without its leaf.
        """
        t = schema.records
        with self.engine.connect() as connection:
            row = connection.execute(select(t).where(t.c.round == round, t.c.device == device)).first()
            if row is None:
                raise TrustStoreError(f"no record of device {device} in round {round}")
            pairs = connection.execute(select(t.c.device, t.c.leaf).where(t.c.round == round).order_by(t.c.device)).all()
        devices = [int(d) for d, _ in pairs]
        if any(leaf is None for _, leaf in pairs):
            raise TrustStoreError(f"round {round}: rows without a stored leaf (written outside TrustStore)")
        index = devices.index(device)
        return TrustProof(_record(row), index, tuple(leaf_proof([bytes(leaf) for _, leaf in pairs], index)))

    def __enter__(self) -> TrustStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



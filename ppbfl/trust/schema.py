"""The off-chain store's tables (SQLAlchemy Core). Changes to them go with an alembic migration in
``ppbfl/trust/migrations/versions`` (the store upgrades a database to the head revision on open)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, LargeBinary, MetaData, SmallInteger, Table

__all__ = ["metadata", "records", "rounds"]

metadata = MetaData()

records = Table(
    "trust_records", metadata,
    Column("round", BigInteger, primary_key=True),
    Column("device", BigInteger, primary_key=True),
    Column("reason", SmallInteger, nullable=False),
    Column("pow_failed", Boolean, nullable=False),
    Column("ids_flags", Integer, nullable=False),
    Column("cosine", Float(53), nullable=True),  # NULL: not computed (NaN)
    Column("weight", Float(53), nullable=False),
    Column("positive_before", BigInteger, nullable=False),
    Column("negative_before", BigInteger, nullable=False),
    Column("quarantined_before", Boolean, nullable=False),
    Column("positive_after", BigInteger, nullable=False),
    Column("negative_after", BigInteger, nullable=False),
    Column("quarantined_after", Boolean, nullable=False),
    Column("trust_before", Integer, nullable=False),
    Column("trust_after", Integer, nullable=False),
    Column("pow_bits", SmallInteger, nullable=False),
    Column("commitment", LargeBinary(32), nullable=True),
    Column("leaf", LargeBinary(32), nullable=True),  # revision 0002; NULL only if written by hand
    Index("trust_records_device", "device", "round"),
)
"""One row per device per round (:class:`~ppbfl.trust.record.TrustRecord`)."""

rounds = Table(
    "trust_rounds", metadata,
    Column("round", BigInteger, primary_key=True),
    Column("root", LargeBinary(32), nullable=False),
    Column("count", Integer, nullable=False),
)
"""One row per stored round: the Merkle root of its records (the value anchored on chain)."""

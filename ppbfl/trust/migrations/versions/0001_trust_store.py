"""The first trust store schema: trust_records and trust_rounds.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the two tables."""
    op.create_table(
        "trust_records",
        sa.Column("round", sa.BigInteger, primary_key=True),
        sa.Column("device", sa.BigInteger, primary_key=True),
        sa.Column("reason", sa.SmallInteger, nullable=False),
        sa.Column("pow_failed", sa.Boolean, nullable=False),
        sa.Column("ids_flags", sa.Integer, nullable=False),
        sa.Column("cosine", sa.Float(53), nullable=True),
        sa.Column("weight", sa.Float(53), nullable=False),
        sa.Column("positive_before", sa.BigInteger, nullable=False),
        sa.Column("negative_before", sa.BigInteger, nullable=False),
        sa.Column("quarantined_before", sa.Boolean, nullable=False),
        sa.Column("positive_after", sa.BigInteger, nullable=False),
        sa.Column("negative_after", sa.BigInteger, nullable=False),
        sa.Column("quarantined_after", sa.Boolean, nullable=False),
        sa.Column("trust_before", sa.Integer, nullable=False),
        sa.Column("trust_after", sa.Integer, nullable=False),
        sa.Column("pow_bits", sa.SmallInteger, nullable=False),
        sa.Column("commitment", sa.LargeBinary(32), nullable=True),
    )
    op.create_index("trust_records_device", "trust_records", ["device", "round"])
    op.create_table(
        "trust_rounds",
        sa.Column("round", sa.BigInteger, primary_key=True),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("trust_rounds")
    op.drop_index("trust_records_device", "trust_records")
    op.drop_table("trust_records")

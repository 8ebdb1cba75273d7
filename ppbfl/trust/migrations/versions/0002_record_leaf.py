"""Store each record's Merkle leaf, so a proof reads one column of its round instead of every row.

Revision ID: 0002
Revises: 0001

Existing rows are backfilled with the leaf of their record (``ppbfl.trust.record`` layout v1).
A proof still recomputes the proven record's own leaf from its row, so an edited row fails
verification whether or not its stored leaf was edited too.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``trust_records.leaf`` and fill it."""
    from ppbfl.trust.record import record_leaves
    from ppbfl.trust.store import _record

    op.add_column("trust_records", sa.Column("leaf", sa.LargeBinary(32), nullable=True))
    bind = op.get_bind()
    table = sa.table("trust_records", sa.column("round"), sa.column("device"), sa.column("leaf"))
    rows = bind.execute(sa.text("SELECT * FROM trust_records")).fetchall()
    if rows:
        leaves = record_leaves([_record(row) for row in rows])
        update = sa.update(table).where(table.c.round == sa.bindparam("r"), table.c.device == sa.bindparam("d")).values(leaf=sa.bindparam("l"))
        bind.execute(update, [{"r": row.round, "d": row.device, "l": leaf.tobytes()} for row, leaf in zip(rows, leaves)])


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("trust_records") as batch:
        batch.drop_column("leaf")

"""Alembic environment of the trust store: runs on the connection :class:`~ppbfl.trust.store.TrustStore` passes."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table="trust_alembic_version")
with context.begin_transaction():
    context.run_migrations()

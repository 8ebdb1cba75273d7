"""The off-chain trust store on SQLite: migrations, round-trips, Merkle roots against an
independent tree, proofs, and tampering (an edited row, a forged proof) detected."""

from __future__ import annotations

import dataclasses

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from eth_hash.auto import keccak
from sqlalchemy import text

from ppbfl.errors import ConfigError
from ppbfl.trust import TrustConfig
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.proof import TrustProof
from ppbfl.trust.record import LEAF_DTYPE
from ppbfl.trust.schema import metadata
from ppbfl.trust.store import HEAD_REVISION, TrustStore, TrustStoreError
from tests.trust_helpers import round_result

CONFIG = TrustConfig(pow_min_bits=4, pow_max_bits=12)
REASONS = ["accepted", "accepted", "cosine <= tau", "inconsistent shares", "accepted"]


def keccak_tree_root(leaves: list[bytes]) -> bytes:
    """Independent reference: pad to a power of two with zero *subtrees* (0x00.., then their hashes)."""
    level, zero = list(leaves), bytes(32)
    while len(level) > 1:
        if len(level) % 2:
            level.append(zero)
        level = [keccak(level[k] + level[k + 1]) for k in range(0, len(level), 2)]
        zero = keccak(zero + zero)
    return level[0]


def _fill(store: TrustStore, rounds: int = 3) -> TrustKeeper:
    keeper = TrustKeeper(range(5), CONFIG, store=store)
    for r in range(1, rounds + 1):
        keeper.after_round(round_result(r, dict(enumerate(REASONS[:4])), {4: "missing upload: no update"} if r == 2 else {}))
    return keeper


@pytest.fixture
def store(tmp_path):
    with TrustStore(f"sqlite:///{tmp_path / 'trust.db'}") as s:
        yield s


def test_a_new_database_is_migrated_to_head_and_matches_the_schema(store: TrustStore) -> None:
    assert store.revision() == HEAD_REVISION
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": "trust_alembic_version"})
        diff = [d for d in compare_metadata(context, metadata) if "trust_alembic_version" not in str(d)]
    assert diff == []


def test_reopening_keeps_the_records_and_resumes_the_states(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'trust.db'}"
    with TrustStore(url) as first:
        keeper = _fill(first)
    with TrustStore(url) as again:
        assert again.revision() == HEAD_REVISION and again.rounds() == [1, 2, 3]
        resumed = TrustKeeper(range(5), CONFIG, store=again)
        assert resumed.states == keeper.states


def test_records_round_trip_exactly_and_roots_match_an_independent_tree(store: TrustStore) -> None:
    keeper = _fill(store)
    for r in (1, 2, 3):
        records = store.records(r)
        assert [x.device for x in records] == list(range(5))
        leaves = [keccak(x_bytes(x)) for x in records]
        assert store.root(r) == keccak_tree_root(leaves)
    history = store.history(3)
    assert [x.round for x in history] == [1, 2, 3]
    assert all(x.evidence.reason == 2 for x in history)  # inconsistent shares
    assert history[-1].after == keeper.states[3]
    assert store.history(4)[1].evidence.reason == 9  # missing upload in round 2


def x_bytes(x) -> bytes:
    """The leaf's 103 bytes written out field by field with int.to_bytes / struct (independent of numpy)."""
    import struct

    be = lambda v, n: int(v).to_bytes(n, "big")  # noqa: E731
    return b"".join([
        be(x.round, 8), be(x.device, 4), be(x.evidence.reason, 1), be(x.evidence.pow_failed, 1), be(x.evidence.ids_flags, 2),
        struct.pack(">d", x.cosine), struct.pack(">d", x.weight), be(x.before.positive, 8), be(x.before.negative, 8),
        be(x.before.quarantined, 1), be(x.after.positive, 8), be(x.after.negative, 8), be(x.after.quarantined, 1),
        be(x.before.trust, 2), be(x.after.trust, 2), be(x.pow_bits, 1), x.commitment or bytes(32),
    ])


def test_leaf_layout_is_the_documented_103_bytes() -> None:
    assert LEAF_DTYPE.itemsize == 103


def test_every_record_proves_and_an_edited_row_does_not(store: TrustStore) -> None:
    _fill(store)
    for device in range(5):
        proof = store.prove(device, 2)
        assert proof.verify(store.root(2))
        assert TrustProof.from_json(proof.to_json()) == proof
        assert not proof.verify(store.root(1))  # the same device's proof does not fit another round
    anchored = store.root(2)
    with store.engine.begin() as connection:  # the operator "improves" device 3's record
        connection.execute(text("UPDATE trust_records SET trust_after = 30000, negative_after = 0 WHERE round = 2 AND device = 3"))
    assert not store.prove(3, 2).verify(anchored)
    assert store.prove(1, 2).verify(anchored)  # untouched records still prove (paths come from the stored leaves)
    with store.engine.begin() as connection:  # ... and editing the stored leaf as well does not help
        connection.execute(text("UPDATE trust_records SET leaf = :l WHERE round = 2 AND device = 3"), {"l": store.prove(3, 2).record.leaf})
    assert not store.prove(3, 2).verify(anchored)


def test_forged_proofs_fail(store: TrustStore) -> None:
    _fill(store)
    root, proof = store.root(3), store.prove(2, 3)
    better = dataclasses.replace(proof.record, after=dataclasses.replace(proof.record.after, quarantined=False, negative=0))
    assert not dataclasses.replace(proof, record=better).verify(root)
    assert not dataclasses.replace(proof, record=dataclasses.replace(proof.record, device=0)).verify(root)
    assert not dataclasses.replace(proof, index=proof.index ^ 1).verify(root)
    assert not dataclasses.replace(proof, siblings=proof.siblings[:-1]).verify(root)
    assert not proof.verify(bytes(32))


def test_proof_json_that_lies_about_trust_or_is_malformed_is_refused(store: TrustStore) -> None:
    _fill(store)
    import json

    d = json.loads(store.prove(1, 1).to_json())
    with pytest.raises(ConfigError, match="trust_after"):
        TrustProof.from_json(json.dumps({**d, "trust_after": d["trust_after"] + 1}))
    with pytest.raises(ConfigError, match="proof"):
        TrustProof.from_json(json.dumps({**d, "siblings": ["zz"]}))
    with pytest.raises(ConfigError, match="proof"):
        TrustProof.from_json("[]")


def test_a_round_is_stored_once_and_bad_record_sets_are_refused(store: TrustStore) -> None:
    keeper = _fill(store, rounds=1)
    records = store.records(1)
    with pytest.raises(TrustStoreError, match="already stored"):
        store.add_round(1, records)
    assert store.records(1) == records  # the failed insert changed nothing
    with pytest.raises(TrustStoreError, match="two records"):
        store.add_round(2, [dataclasses.replace(records[0], round=2)] * 2)
    with pytest.raises(TrustStoreError, match="another round"):
        store.add_round(2, records)
    with pytest.raises(TrustStoreError, match="no record of device 9"):
        store.prove(9, 1)
    with pytest.raises(TrustStoreError, match="not stored"):
        store.root(7)
    assert keeper.states[0].trust > keeper.states[3].trust


def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
    with pytest.raises(TrustStoreError) as caught:
        TrustStore("postgresql+psycopg://user:secret@127.0.0.1:1/none?connect_timeout=2")
    assert "secret" not in str(caught.value)
    with pytest.raises(TrustStoreError, match="unparsable"):
        TrustStore("not a database url")


def test_a_database_at_revision_0001_is_upgraded_and_its_rows_get_their_leaves(tmp_path) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from ppbfl.trust.schema import records as records_table
    from ppbfl.trust.store import _migrations, _row

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with TrustStore() as scratch:  # records and roots as the current code makes them
        _fill(scratch, rounds=2)
        expected = {r: (scratch.root(r), scratch.records(r)) for r in (1, 2)}
    engine = create_engine(url)
    with engine.begin() as connection:  # an old store: schema 0001, rows without leaves
        config = _migrations()
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        old_columns = [c for c in records_table.c if c.name != "leaf"]
        for r, (root, recs) in expected.items():
            connection.execute(text("INSERT INTO trust_rounds VALUES (:r, :root, :n)"), {"r": r, "root": root, "n": len(recs)})
            connection.execute(text(
                f"INSERT INTO trust_records ({', '.join(c.name for c in old_columns)}) VALUES ({', '.join(':' + c.name for c in old_columns)})"
            ), [_row(x) for x in recs])
    engine.dispose()
    with TrustStore(url) as upgraded:
        assert upgraded.revision() == HEAD_REVISION == "0002"
        for r, (root, recs) in expected.items():
            assert upgraded.records(r) == recs
            assert all(upgraded.prove(x.device, r).verify(root) for x in recs)

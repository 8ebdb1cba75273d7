"""Trust: the reputation update, the store's round insert and a record's proof.

* ``trust update devices=...`` -- :func:`ppbfl.trust.update_all` (integer beta reputation) over
  every device, against ``float_loop``: the same rule in plain Python floats (what the integer
  arithmetic for bit-exact agreement costs).
* ``trust insert devices=...`` -- :meth:`TrustStore.add_round` into in-memory SQLite (records,
  leaves, Merkle root, one transaction) against ``sqlite3_executemany``: the same rows through
  the standard-library driver without SQLAlchemy, leaves or root.
* ``trust prove devices=...`` / ``trust verify`` -- :meth:`TrustStore.prove` (reads the round,
  recomputes its leaves and the path) and :meth:`TrustProof.verify`.
The 1e5 devices x 10 rounds figure (SQLite and PostgreSQL) is ``benchmarks/trust_store_scale.py``.
"""

from __future__ import annotations

import sqlite3

import pytest
from conftest import QUICK, size_id

from ppbfl.trust import Evidence, TrustConfig, update_all
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.store import TrustStore, _row
from tests.trust_helpers import round_result

DEVICES = (10**3,) if QUICK else (10**3, 10**4)
CONFIG = TrustConfig()
REASONS = ("accepted", "accepted", "accepted", "cosine <= tau", "out-of-range shares: x", "accepted", "inconsistent shares")


def _evidence(m: int) -> dict[int, Evidence]:
    return {i: Evidence((0, 0, 0, 7, 4, 9, 2)[i % 7]) for i in range(m)}


def _result(m: int, r: int = 1):
    return round_result(r, {i: REASONS[i % 7] for i in range(m) if i % 11}, {i: "missing upload: no update" for i in range(0, m, 11)})


@pytest.mark.parametrize("devices", DEVICES, ids=[f"m{size_id(m)}" for m in DEVICES])
def test_trust_update_integer(benchmark, group, devices):
    group("trust update", devices=devices)
    evidence = _evidence(devices)
    states = benchmark(update_all, {}, evidence, CONFIG)
    assert states[3].trust < states[0].trust


@pytest.mark.parametrize("devices", DEVICES, ids=[f"m{size_id(m)}" for m in DEVICES])
def test_trust_update_float_loop(benchmark, group, devices):
    group("trust update", devices=devices)
    evidence = _evidence(devices)
    lam = CONFIG.forgetting

    def floats() -> dict[int, float]:
        out = {}
        for i, e in evidence.items():
            r, s = lam * CONFIG.initial_positive, lam * CONFIG.initial_negative
            if e.reason == 0:
                r += CONFIG.accepted
            else:
                s += CONFIG.malformed if e.reason in (2, 4) else CONFIG.cosine_rejected if e.reason == 7 else CONFIG.missing
            out[i] = (r + 1) / (r + s + 2)
        return out

    trust = benchmark(floats)
    reference = update_all({}, evidence, CONFIG)
    assert all(abs(trust[i] - reference[i].trust / 2**15) < 2**-12 for i in evidence)


def _records(devices: int):
    keeper = TrustKeeper(range(devices), CONFIG)
    return list(keeper.after_round(_result(devices)).records)


@pytest.mark.parametrize("devices", DEVICES, ids=[f"m{size_id(m)}" for m in DEVICES])
def test_trust_insert_store(benchmark, group, devices):
    group("trust insert", devices=devices)
    records = _records(devices)
    stores: list[TrustStore] = []

    def setup():
        stores.append(TrustStore())
        return (stores[-1], 1, records), {}

    benchmark.pedantic(lambda store, r, recs: store.add_round(r, recs), setup=setup, rounds=5)
    assert len(stores[-1].records(1)) == devices
    for s in stores:
        s.close()


@pytest.mark.parametrize("devices", DEVICES, ids=[f"m{size_id(m)}" for m in DEVICES])
def test_trust_insert_sqlite3_executemany(benchmark, group, devices):
    group("trust insert", devices=devices)
    rows = [tuple(_row(x).values()) for x in _records(devices)]

    def setup():
        db = sqlite3.connect(":memory:")
        db.execute(f"CREATE TABLE r ({', '.join(f'c{k}' for k in range(len(rows[0])))}, PRIMARY KEY (c0, c1))")
        return (db,), {}

    def insert(db):
        with db:
            db.executemany(f"INSERT INTO r VALUES ({', '.join('?' * len(rows[0]))})", rows)
        return db

    db = benchmark.pedantic(insert, setup=setup, rounds=5)
    assert db.execute("SELECT count(*) FROM r").fetchone()[0] == devices


@pytest.mark.parametrize("devices", DEVICES, ids=[f"m{size_id(m)}" for m in DEVICES])
def test_trust_prove_and_verify(benchmark, group, devices):
    group("trust prove", devices=devices)
    with TrustStore() as store:
        root = store.add_round(1, _records(devices))
        proof = benchmark(store.prove, devices // 2, 1)
        assert proof.verify(root)


def test_trust_verify(benchmark, group):
    group("trust verify")
    with TrustStore() as store:
        root = store.add_round(1, _records(1000))
        proof = store.prove(500, 1)
    assert benchmark(proof.verify, root)

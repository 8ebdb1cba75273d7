"""The trust store on a real PostgreSQL server started here on 127.0.0.1 (Debian's ``postgresql``
binaries, installed by ``.ci/run``) and torn down after: migrations, rounds, proofs, tampering,
and byte-identical roots to the SQLite store on the same rounds -- synthetic round results, and
full protocol rounds (an in-process :class:`~ppbfl.fl.federation.Federation` with the keeper).

PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` system user (the
Debian package creates it) via ``runuser``. Skips, naming what is missing, only without the binaries.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from ppbfl.defense.decision import REASON_CODES
from ppbfl.fl.federation import Federation
from ppbfl.trust import TrustConfig
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.store import HEAD_REVISION, TrustStore
from tests.protocol_helpers import InconsistentDevice, synthetic_round
from tests.trust_helpers import round_result


def _bin_dir() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(os.path.realpath(found))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (pg_ctl, initdb) not found: apt-get install postgresql (.ci/run does)")
    prefix: list[str] = []
    home = tempfile.mkdtemp(prefix="ppbfl-pg-")
    if os.geteuid() == 0:  # initdb and postgres refuse root
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(home, "postgres", "postgres")
    data, port = os.path.join(home, "data"), _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"{args[0]}: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    run(f"{bin_dir}/initdb", "-D", data, "-U", "ppbfl", "--auth=trust", "-E", "UTF8", "--no-sync")
    run(f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(home, "log"), "-w", "-t", "60",
        "-o", f"-h 127.0.0.1 -p {port} -k {home} -c fsync=off", "start")
    try:
        yield f"postgresql+psycopg://ppbfl@127.0.0.1:{port}/postgres"
    finally:
        run(f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


ROUNDS = [
    ({0: "accepted", 1: "cosine <= tau", 2: "out-of-range shares: violates Cauchy-Schwarz"}, {3: "missing upload: no update"}),
    ({0: "accepted", 1: "negative cosine", 2: "zero trust", 3: "accepted"}, {}),
    ({0: "accepted", 1: "accepted", 2: "commitment mismatch"}, {3: "missing upload: no commitment on chain"}),
]


def _run_rounds(store: TrustStore) -> TrustKeeper:
    keeper = TrustKeeper(range(4), TrustConfig(), store=store)
    for r, (reasons, missing) in enumerate(ROUNDS, start=1):
        keeper.after_round(round_result(r, reasons, missing), ids_flags={1: 1} if r == 2 else None)
    return keeper


def test_rounds_on_postgresql_match_sqlite_byte_for_byte_and_prove(postgres_url: str) -> None:
    with TrustStore(postgres_url) as pg, TrustStore() as lite:
        assert pg.revision() == HEAD_REVISION
        keeper = _run_rounds(pg)
        _run_rounds(lite)
        for r in (1, 2, 3):
            assert pg.records(r) == lite.records(r)  # NaN cosines, floats and big ints round-trip alike
            assert pg.root(r) == lite.root(r)
            for device in range(4):
                assert pg.prove(device, r).verify(pg.root(r))
        assert TrustKeeper(range(4), TrustConfig(), store=pg).states == keeper.states  # resumed from the server
        anchored = pg.root(3)
        with pg.engine.begin() as connection:
            connection.execute(text("UPDATE trust_records SET quarantined_after = false WHERE round = 3 AND device = 2"))
        assert not pg.prove(2, 3).verify(anchored)


def test_protocol_rounds_with_the_keeper_on_postgresql(postgres_url: str) -> None:
    """Three protocol rounds (6 devices, (2, 3) edge nodes, no chain): device 1 sign-flips, device 4
    sends inconsistent shares, device 5 has no update in round 3. The keeper weights each round and
    stores it on the server (a database of its own); the same results replayed into SQLite give the same roots."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE DATABASE protocol_rounds"))
    admin.dispose()
    with TrustStore(postgres_url.rsplit("/", 1)[0] + "/protocol_rounds") as pg, TrustStore() as lite:
        pg_keeper = TrustKeeper(range(6), TrustConfig(), store=pg)
        with Federation.in_process(2, 3, 32, 6, factories={4: InconsistentDevice}) as federation:
            federation.trust = pg_keeper
            results = []
            for r in (1, 2, 3):
                updates, reference = synthetic_round(6, 32, {1}, seed=r)
                if r == 3:
                    del updates[5]
                results.append(federation.run_round(r, updates, reference))
        assert results[0].rejected[1] == "negative cosine" and results[0].rejected[4] == "inconsistent shares"
        assert results[2].trust[4] == 0.0 and 4 in pg_keeper.quarantined  # quarantined after round 2, weighted 0 in round 3
        lite_keeper = TrustKeeper(range(6), TrustConfig(), store=lite)
        for result in results:
            lite_keeper.after_round(result)
        for r in (1, 2, 3):
            assert pg.records(r) == lite.records(r) and pg.root(r) == lite.root(r)
            assert all(pg.prove(device, r).verify(pg.root(r)) for device in range(6))
        assert pg.records(3)[5].evidence.reason == REASON_CODES["missing upload"]  # the device without an update
        assert TrustKeeper(range(6), TrustConfig(), store=pg).states == pg_keeper.states == lite_keeper.states

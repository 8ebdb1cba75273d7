"""The trust store on a real PostgreSQL server started here on 127.0.0.1 (Debian's ``postgresql``
binaries, installed by ``.ci/run``) and torn down after: migrations, rounds, proofs, tampering,
and byte-identical roots to the SQLite store on the same rounds.

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
from sqlalchemy import text

from ppbfl.trust import TrustConfig
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.store import HEAD_REVISION, TrustStore
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

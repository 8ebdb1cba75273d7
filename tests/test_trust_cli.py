"""``ppbfl trust show`` and ``ppbfl trust prove`` on a SQLite store."""

from __future__ import annotations

from ppbfl.cli import main
from ppbfl.trust import TrustConfig
from ppbfl.trust.keeper import TrustKeeper
from ppbfl.trust.proof import TrustProof
from ppbfl.trust.store import TrustStore
from tests.trust_helpers import round_result


def _store(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'trust.db'}"
    with TrustStore(url) as store:
        keeper = TrustKeeper(range(3), TrustConfig(), store=store)
        for r in (1, 2, 3):
            keeper.after_round(round_result(r, {0: "accepted", 1: "out-of-range shares: violates Cauchy-Schwarz"}, {2: "missing upload: no update"}))
    return url


def test_show_prints_one_line_per_round_with_trust_and_quarantine(tmp_path, capsys) -> None:
    url = _store(tmp_path)
    assert main(["trust", "show", "1", "--store", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "# device 1: 3 rounds"
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert all("out-of-range" in " ".join(r) for r in rows)
    with TrustStore(url) as store:
        expected = [x.after.trust / 2**15 for x in store.history(1)]
    assert [float(r[-3]) for r in rows] == [round(t, 4) for t in expected]
    assert rows[-1][-2] == "yes"


def test_prove_prints_a_proof_that_verifies_against_the_stored_root(tmp_path, capsys) -> None:
    url = _store(tmp_path)
    assert main(["trust", "prove", "2", "2", "--store", url]) == 0
    proof = TrustProof.from_json(capsys.readouterr().out)
    with TrustStore(url) as store:
        assert proof.verify(store.root(2)) and proof.record == store.history(2)[1]


def test_unknown_device_or_round_is_exit_2_with_a_message(tmp_path, capsys) -> None:
    url = _store(tmp_path)
    assert main(["trust", "show", "7", "--store", url]) == 2
    assert "no records of device 7" in capsys.readouterr().err
    assert main(["trust", "prove", "0", "9", "--store", url]) == 2
    assert "TrustStoreError: no record of device 0 in round 9" in capsys.readouterr().err


def test_verify_with_a_missing_proof_file_is_exit_2(tmp_path, capsys) -> None:
    assert main(["trust", "verify", str(tmp_path / "none.json"), "--chain", "http://127.0.0.1:1", "--contract", "0x" + "00" * 20]) == 2
    assert "FileNotFoundError" in capsys.readouterr().err

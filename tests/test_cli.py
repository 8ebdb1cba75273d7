"""The ``ppbfl`` command: the demo's accepted/rejected split, its round log and plot, and bad flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ppbfl.cli import main
from ppbfl.demo import DemoConfig, DemoConfigError, run_demo
from ppbfl.field import available_backends


def test_demo_rejects_every_malicious_device_names_the_liar_and_writes_its_log(tmp_path):
    lines: list[str] = []
    config = DemoConfig(devices=10, rounds=3, hidden=16, liar=4, out=str(tmp_path))
    rows = run_demo(config, log=lines.append)
    log = json.loads((tmp_path / "rounds.json").read_text())
    malicious = log["malicious_devices"]
    assert len(malicious) == 3 and len(log["rounds"]) == 3
    for row in rows:
        assert set(row.rejected) == set(malicious), row.rejected
        assert all(reason == "negative cosine" for reason in row.rejected.values())
        assert row.accepted == sorted(set(range(10)) - set(malicious))
        assert row.gas > 0
    assert rows[0].named_liars == [4] and 4 not in rows[1].online_edge_nodes
    assert rows[-1].secure_accuracy > rows[-1].fedavg_accuracy
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
    assert any("malicious devices rejected in every round: True" in line for line in lines)


def test_demo_on_a_real_anvil_node_with_an_edge_node_going_offline(tmp_path):
    rows = run_demo(
        DemoConfig(devices=4, malicious=0.25, rounds=2, hidden=8, liar=None, kill_edge=5, kill_round=2, chain="anvil", out=str(tmp_path)),
        log=lambda _: None,
    )
    assert rows[0].mode == rows[1].mode == "beaver"  # 5 and 4 of (3, 5) online: Beaver norms either way
    assert rows[1].dropped_edge_nodes == [5]
    assert all(row.malicious_rejected == 1 and row.honest_rejected == 0 for row in rows)


def test_demo_on_any_json_rpc_node_given_by_url(tmp_path):
    """``--chain URL``: a consortium's own node, started separately (here an anvil process); the
    demo deploys its contract there and leaves the node running."""
    from ppbfl.chain import AnvilProcess, Chain

    node = AnvilProcess.start(accounts=20)
    try:
        rows = run_demo(
            DemoConfig(devices=4, malicious=0.25, rounds=1, hidden=8, liar=None, chain=node.url, out=str(tmp_path)),
            log=lambda _: None,
        )
        assert rows[0].gas > 0 and rows[0].malicious_rejected == 1 and rows[0].honest_rejected == 0
        with Chain.connect(node.url) as chain:  # still up, with the demo's transactions mined
            assert chain.block_number > 20
    finally:
        node.stop()


def test_a_chain_url_that_does_not_answer_is_a_typed_error(tmp_path):
    from ppbfl.chain import ChainError

    with pytest.raises(ChainError, match="does not answer"):
        run_demo(DemoConfig(devices=2, rounds=1, hidden=8, liar=None, chain="http://127.0.0.1:9", out=str(tmp_path)), log=lambda _: None)
    with pytest.raises(DemoConfigError, match="chain"):
        DemoConfig(chain="ftp://example").check()


@pytest.mark.parametrize(
    "config, field",
    [
        (DemoConfig(liar=9), "liar"),
        (DemoConfig(t=3, n=4), "(t, n)"),
        (DemoConfig(transport="tcp"), "transport"),
        (DemoConfig(malicious=1.0), "malicious"),
    ],
)
def test_bad_demo_settings_name_the_setting(config, field):
    with pytest.raises(DemoConfigError, match=field.replace("(", r"\(").replace(")", r"\)")):
        config.check()


def test_cli_reports_a_bad_setting_with_exit_status_2(capsys):
    assert main(["demo", "--liar", "9"]) == 2
    assert "liar = 9" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["info"], ["demo", "--rounds", "2", "--devices", "6", "--hidden", "16"]])
def test_console_entry_point_runs(args, tmp_path):
    done = subprocess.run([sys.executable, "-m", "ppbfl.cli", *args, *(["--out", str(tmp_path)] if args[0] == "demo" else [])],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    if args == ["info"]:
        default_backend = os.environ.get("PPBFL_BACKEND") or available_backends()[0]
        assert f"kernel backend: {default_backend}" in done.stdout
    else:
        # 6 devices, 2 malicious (sign flip): 4 accepted, 2 rejected, both malicious, every round
        rows = [line.split() for line in done.stdout.splitlines() if line.split()[:1] in (["1"], ["2"])]
        assert len(rows) == 2 and all(row[3] == "4" and row[4] == "2" and row[5] == "(2/2)" for row in rows), done.stdout
        assert "lying edge nodes named: [2]" in done.stdout

"""``ppbfl trust show`` and ``ppbfl trust prove`` on a SQLite store."""

from __future__ import annotations

import pytest

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


def test_verify_checks_a_proof_against_a_real_node_alone(tmp_path, capsys) -> None:
    """``ppbfl trust prove`` then ``ppbfl trust verify`` against an anvil node (started and stopped
    here): exit 0 for the stored record, 1 for an edited one and for a round without an anchor."""
    import json

    from ppbfl.chain import Chain
    from ppbfl.chain.attest import KIND_TRUST, ChainKey
    from ppbfl.chain.votes import TrustVote

    url = _store(tmp_path)
    with TrustStore(url) as store:
        root = store.root(2)
    with Chain.anvil(accounts=8) as chain:
        contract = chain.deploy(2, 3, commit_blocks=1, verify_blocks=1)
        keys = [ChainKey.generate() for _ in range(3)]
        for j, key in enumerate(keys, 1):
            contract.register_edge_node(j, key.address, bytes([j]) * 32)
        for _ in range(3):
            contract.register_device(chain.new_account(), 8)
        for r in (1, 2):  # rounds that fail at their deadlines: the cheapest way to rounds commitTrust accepts
            contract.open_round(r, bytes(32))
            chain.mine(2)
            contract.close_commitments(r)
            chain.mine(2)
            contract.abort_round(r)
        vote = TrustVote.of(root, [0, 1, 2], [30000, 1000, 20000])  # two edge nodes computed it (t = 2)
        contract.commit_trust(2, root, vote.slots, vote.words, [contract.attest(key, KIND_TRUST, 2, vote.digest) for key in keys[:2]])
        node_url = chain.node.url
        assert main(["trust", "prove", "1", "2", "--store", url]) == 0
        good = tmp_path / "proof.json"
        good.write_text(capsys.readouterr().out)
        edited = json.loads(good.read_text())
        edited["reason"] = 0
        bad = tmp_path / "edited.json"
        bad.write_text(json.dumps(edited))
        elsewhere = tmp_path / "round1.json"
        elsewhere.write_text(good.read_text().replace('"round": 2', '"round": 1'))
        args = ["--chain", node_url, "--contract", contract.address]
        assert main(["trust", "verify", str(good), *args]) == 0
        assert "VALID" in capsys.readouterr().out
        assert main(["trust", "verify", str(bad), *args]) == 1
        assert main(["trust", "verify", str(elsewhere), *args]) == 1  # round 1 has no anchor
        assert capsys.readouterr().out.count("INVALID") == 2


def test_ppbfl_edge_keeps_its_trust_store_beside_its_credentials_so_a_restarted_node_re_signs(tmp_path) -> None:
    """``ppbfl edge --trust-config`` without ``--trust-store``: the node's witness lives in
    ``CREDS/<party>.trust.db``; a node restarted from the same folder still holds round 1 and
    answers with the same vote (a coordinator restarted before anchoring can collect it again).
    An explicit in-memory store (``sqlite://``) loses it, as the old default did."""
    import argparse

    from ppbfl.cli import _edge_trust
    from ppbfl.defense.decision import DeviceDecision
    from ppbfl.protocol.deployment import make_edge_node

    (tmp_path / "trust.toml").write_text("[trust]\nforgetting = 0.8\n")
    options = {"trust_config": str(tmp_path / "trust.toml"), "trust_devices": 3, "creds": str(tmp_path), "party": "edge-2", "trust_t": None}
    decided = {0: DeviceDecision(0.9, 1, 1.0, 1.0, "accepted"), 2: DeviceDecision(-0.5, 1, 0.0, 1.0, "cosine <= tau")}
    for store, kept in ((None, True), ("sqlite://", False)):
        settings = _edge_trust(argparse.Namespace(trust_store=store, **options))
        node = make_edge_node(**settings)
        assert node.trust_witness is not None
        vote = node.trust_witness.vote(1, decided, {})
        node.trust_witness.store.close()
        restarted = make_edge_node(**settings).trust_witness
        assert restarted is not None
        assert (restarted.stored_vote(1) == vote, restarted.round) == ((True, 1) if kept else (False, 0))
        assert restarted.states == node.trust_witness.states if kept else restarted.round == 0
        restarted.store.close()
        (tmp_path / "edge-2.trust.db").unlink(missing_ok=True)
    assert settings["trust_store"] == "sqlite://"
    assert _edge_trust(argparse.Namespace(trust_store=None, **options))["trust_store"] == f"sqlite:///{tmp_path.resolve() / 'edge-2.trust.db'}"


def test_ppbfl_edge_trust_t_takes_the_catch_up_signers_from_the_consortiums_public_accounts(tmp_path) -> None:
    """``ppbfl edge --trust-config F --trust-t 2``: the node adopts a missed round only when 2 of the
    edge accounts in ``CREDS/chain-accounts.json`` (written by ``ppbfl creds``) signed it: devices'
    accounts are not signers; without ``--trust-t`` there is no catch-up; a t above the edges is a
    ConfigError naming ``trust_signers``."""
    from ppbfl.cli import build_parser, edge_node
    from ppbfl.errors import ConfigError
    from ppbfl.protocol.creds import party_ids, read_chain_accounts, write_credentials

    creds = tmp_path / "creds"
    write_credentials(creds, party_ids(edges=3, devices=2, coordinator=True))
    (tmp_path / "trust.toml").write_text("[trust]\n")
    base = ["edge", "--party", "edge-1", "--creds", str(creds), "--ca", str(creds / "ca.crt"), "--trust-config", str(tmp_path / "trust.toml"),
            "--trust-devices", "2", "--trust-store", "sqlite://"]
    node = edge_node(build_parser().parse_args([*base, "--trust-t", "2"]))
    edges = {a.lower() for p, a in read_chain_accounts(creds).items() if p.startswith("edge-")}
    assert node.trust_witness is not None and node.trust_witness.signers is not None
    assert node.trust_witness.signers.accounts == edges and node.trust_witness.signers.threshold == 2
    node.trust_witness.store.close()
    plain = edge_node(build_parser().parse_args(base)).trust_witness
    assert plain is not None and plain.signers is None
    plain.store.close()
    with pytest.raises(ConfigError) as caught:
        edge_node(build_parser().parse_args([*base, "--trust-t", "4"]))
    assert caught.value.key == "trust_signers"

"""Trust in ``ppbfl experiment``: the grid switch, the on-off and slow-poisoning attacks, a keeper per
run following the secure rule's rounds (checked against a float beta-reputation model), and trust in
results.csv, trust.csv, results.md and the trust plot. Each run's trust goes through its own embedded
chain (the default): the trust words the contract holds are the model's, the anchored roots verify
the store's records (``ppbfl trust prove`` / ``verify`` logic) and a chain-only audit, and every
device stamped its PoW at the difficulty its trust set; ``[trust] chain = false`` runs are marked."""

from __future__ import annotations

import csv
import dataclasses
import tomllib

import numpy as np
import pytest

from ppbfl.fl.attacks import Adaptive, NoAttack, OnOff, SignFlip, SlowPoison, cosine, make_attack
from ppbfl.fl.config import Cell, Federation, parse_config
from ppbfl.fl.errors import ConfigError
from ppbfl.fl.report import write_all
from ppbfl.fl.runner import run_cell, run_experiment, train_round
from ppbfl.trust.audit import audit_store
from ppbfl.trust.onchain import ChainedFederation
from ppbfl.trust.pow import pow_bits_for
from ppbfl.trust.proof import TrustProof, verify_on_chain
from ppbfl.trust.reputation import TRUST_ONE, initial_state

GRID = """
[grid]
datasets = ["breast_cancer"]
attacks = ["sign_flip", "on_off"]
malicious_fractions = [0.4]
defences = ["fltrust", "ppbfl_secure"]
seeds = [3]
{trust}

[federation]
devices = 5
rounds = {rounds}
model = "logreg"
root_size = 10

[defence_params.ppbfl_secure]
t = 2
n = 3
"""
LIGHT_POW = "[trust]\npow_max_bits = 12\n"  # quarantined devices hash ~2^12 nonces a round (the default 22: seconds each)


ROUNDS = 5  # the sign flippers' trust falls below 0.3 after round 5
CHAIN_ROUNDS = 3  # the chained run quarantines below 0.5: after round 2 (2.62 / 5.52), so round 3 stamps at the maximum


def _config(trust: str = "", extra: str = "", rounds: int = ROUNDS):
    light = LIGHT_POW + extra.removeprefix("[trust]\n") if extra.startswith("[trust]") else LIGHT_POW + extra
    return parse_config(tomllib.loads(GRID.format(trust=trust, rounds=rounds) + light))


def test_trust_is_on_for_the_secure_rules_by_default_and_a_grid_axis_when_asked() -> None:
    cells = _config().cells()
    assert {(c.defence, c.trust) for c in cells} == {("fltrust", False), ("ppbfl_secure", True)}
    both = _config("trust = [true, false]").cells()
    assert len(both) == 6  # 2 attacks x (fltrust once, ppbfl_secure with and without)
    assert [(c.defence, c.trust) for c in both[:3]] == [("fltrust", False), ("ppbfl_secure", True), ("ppbfl_secure", False)]
    assert {c.trust for c in _config("trust = [false]").cells()} == {False}
    config = _config(extra="[trust]\nforgetting = 0.8\nquarantine_below = 0.25\n")
    assert (config.trust_config.forgetting, config.trust_config.quarantine_below) == (0.8, 0.25)


@pytest.mark.parametrize("trust, extra, key", [
    ("trust = [1]", "", "grid.trust"),
    ("trust = []", "", "grid.trust"),
    ("trust = [true, true]", "", "grid.trust"),
    ("", "[trust]\nforgeting = 0.8\n", "trust.forgeting"),
    ("", "[trust]\nforgetting = 1.5\n", "trust.forgetting"),
    ("", "[trust]\nrelease_at = 0.1\n", "trust"),  # below quarantine_below
    ("", "trust = 1\n", "trust"),
    ("", "[attack_params.on_off]\noff = 0\n", "attack_params.on_off.off"),
    ("", "[attack_params.on_off]\nfactor = -1.0\n", "attack_params.on_off.factor"),
    ("", "[attack_params.slow_poison]\nend = 0.9\n", "attack_params.slow_poison.end"),
])
def test_bad_trust_and_attack_settings_name_the_key(trust: str, extra: str, key: str) -> None:
    text = GRID.format(trust=trust, rounds=ROUNDS).replace('attacks = ["sign_flip", "on_off"]', 'attacks = ["on_off", "slow_poison"]')
    if extra.startswith("trust = 1"):
        text = extra + text  # a top-level key named like the section
    else:
        text += extra
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(text))
    assert caught.value.key == key


def test_a_plaintext_rule_cannot_be_asked_to_keep_trust() -> None:
    with pytest.raises(ConfigError) as caught:
        run_cell(Cell("breast_cancer", "none", 0.0, "fedavg", 0, True), Federation(devices=3, rounds=1, model="logreg"))
    assert caught.value.key == "grid.trust"


def test_on_off_alternates_sign_flip_and_honest_rounds() -> None:
    attack = make_attack("on_off", {"on": 2, "off": 1, "factor": 3.0})
    kinds = [type(attack.for_round(k)) for k in range(7)]
    assert kinds == [SignFlip, SignFlip, NoAttack, SignFlip, SignFlip, NoAttack, SignFlip]
    delta = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    assert attack.for_round(1).poison_update(delta, None, np.random.default_rng(0)).tolist() == [-3.0, 6.0, -1.5]
    assert attack.for_round(2).poison_update(delta, None, np.random.default_rng(0)) is delta


def test_slow_poison_turns_the_update_a_step_further_from_the_benign_direction_each_round() -> None:
    rng = np.random.default_rng(1)
    delta, reference = rng.normal(size=50).astype(np.float32), rng.normal(size=50)
    attack = SlowPoison(start=0.6, step=0.25, end=-0.9)
    for k, expected in enumerate([0.6, 0.35, 0.1, -0.15, -0.4, -0.65, -0.9, -0.9]):
        out = attack.for_round(k).poison_update(delta, reference, rng)
        assert isinstance(attack.for_round(k), Adaptive)
        assert cosine(out, reference) == pytest.approx(expected, abs=1e-5)
        assert float(np.linalg.norm(out)) == pytest.approx(float(np.linalg.norm(delta)), rel=1e-5)


def test_train_round_applies_the_attack_of_the_round() -> None:
    from ppbfl.fl.models import build_model, get_flat
    from ppbfl.fl.runner import get_dataset
    from ppbfl.fl.training import TrainSettings

    data = get_dataset("breast_cancer", 0, 0.25)
    model = build_model("logreg", data.n_features, data.n_classes, seed=0)
    params, parts, settings = get_flat(model), [np.arange(0, 40), np.arange(40, 80)], TrainSettings(1, 16, 0.1)
    for k in (0, 1):  # device 1 is malicious: sign flip in round 0, honest in round 1
        honest = train_round(model, params, data, parts, (), NoAttack(), settings, 0, k)
        attacked = train_round(model, params, data, parts, (1,), OnOff(), settings, 0, k)
        assert np.array_equal(attacked[0], honest[0])
        assert np.array_equal(attacked[1], -honest[1] if k == 0 else honest[1])


def _float_trust(rejected: list[bool], forgetting: float = 0.9) -> list[float]:
    """The beta reputation with forgetting in floats: r0 = 2, s0 = 0; +1 to r (accepted) or s (rejected)."""
    r, s, out = 2.0, 0.0, []
    for bad in rejected:
        r, s = forgetting * r + (not bad), forgetting * s + bad
        out.append((r + 1) / (r + s + 2))
    return out


def _check_on_chain(federation: ChainedFederation) -> dict:
    """Before a run's chain goes: every stored record's proof checked against the contract (as
    ``ppbfl trust prove`` then ``verify``), the same proofs with one field edited, and the chain-only audit."""
    store, contract = federation.trust.store, federation.ledger.contract
    proofs = {(r, x.device): store.prove(x.device, r) for r in store.rounds() for x in store.records(r)}
    edited = {key: TrustProof(dataclasses.replace(p.record, weight=p.record.weight + 0.5), p.index, p.siblings) for key, p in proofs.items()}
    return {
        "anchors": {r: contract.round_state(r).anchor for r in store.rounds()},
        "verified": {key: verify_on_chain(p, contract) for key, p in proofs.items()},
        "edited": {key: verify_on_chain(p, contract) for key, p in edited.items()},
        "audit": audit_store(store, contract, federation.trust.config),
    }


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """Both attacks with and without trust, trust kept off chain (``[trust] chain = false``: fast)."""
    config = _config("trust = [true, false]", "[trust]\nchain = false\n")
    config = dataclasses.replace(config, defences=("ppbfl_secure",))
    results = run_experiment(config, progress=False)
    folder = tmp_path_factory.mktemp("out")
    return results, write_all(results, folder, command="ppbfl experiment c.toml"), folder


@pytest.fixture(scope="module")
def chained(tmp_path_factory):
    """The sign-flip run with trust through its chain (the default); before its chain goes, every
    record's proof is checked against the contract (see :func:`_check_on_chain`)."""
    config = _config(extra="[trust]\nquarantine_below = 0.5\nrelease_at = 0.5\n", rounds=CHAIN_ROUNDS)
    config = dataclasses.replace(config, attacks=("sign_flip",), defences=("ppbfl_secure",))
    assert config.trust_chain
    checked: list[dict] = []
    close = ChainedFederation.close

    def checking_close(self: ChainedFederation) -> None:
        checked.append(_check_on_chain(self))
        close(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ChainedFederation, "close", checking_close)
        (run,) = run_experiment(config, progress=False)
    return run, write_all([run], tmp_path_factory.mktemp("chained")), checked


def test_each_run_keeps_trust_that_follows_the_beta_model_and_quarantines_the_sign_flippers(grid) -> None:
    results, _, _ = grid
    by = {(r.cell.attack, r.cell.trust): r for r in results}
    assert set(by) == {("sign_flip", True), ("sign_flip", False), ("on_off", True), ("on_off", False)}
    assert all(not r.failed for r in results)
    assert by[("sign_flip", False)].trust_per_round is None and by[("sign_flip", False)].quarantined_per_round is None
    for attack, pattern in (("sign_flip", [True] * ROUNDS), ("on_off", [k % 2 == 0 for k in range(ROUNDS)])):
        run = by[(attack, True)]
        assert run.fpr_per_round == [0.0] * ROUNDS  # every honest device accepted every round (weight > 0)
        trust = np.asarray(run.trust_per_round)
        assert trust.shape == (ROUNDS, 5) and len(run.malicious_devices) == 2
        for device in range(5):
            expected = _float_trust(pattern if device in run.malicious_devices else [False] * ROUNDS)
            assert trust[:, device] == pytest.approx(expected, abs=2**-9)  # integer rule vs floats
            first = next((k + 1 for k, t in enumerate(expected) if t < 0.3), None)
            assert run.quarantine_round(device) == first
    sign_flip = by[("sign_flip", True)]
    assert all(sign_flip.quarantine_round(i) == 5 for i in sign_flip.malicious_devices)  # 2.18 / 7.28 < 0.3 after round 5
    assert sign_flip.quarantined_per_round[-1] == list(sign_flip.malicious_devices) and sign_flip.false_quarantines == 0
    assert by[("on_off", True)].quarantined_per_round == [[]] * ROUNDS  # alternating stays near 0.6: never quarantined


def test_trust_reaches_results_csv_trust_csv_the_markdown_and_a_plot(grid) -> None:
    results, written, folder = grid
    rows = {(r["attack"], r["trust"]): r for r in csv.DictReader(written["csv"].read_text().splitlines())}
    run = next(r for r in results if r.cell.attack == "sign_flip" and r.cell.trust)
    row = rows[("sign_flip", "on")]
    assert row["quarantine_rounds"] == "5;5" and row["false_quarantines"] == "0"
    assert row["quarantined_per_round"].split(";") == ["/".join(map(str, q)) for q in run.quarantined_per_round]
    assert rows[("sign_flip", "off")]["quarantine_rounds"] == rows[("sign_flip", "off")]["false_quarantines"] == ""
    trust_rows = list(csv.DictReader(written["trust"].read_text().splitlines()))
    assert len(trust_rows) == 2 * ROUNDS * 5  # runs with trust x rounds x devices
    for t in trust_rows:
        r = next(x for x in results if x.cell.attack == t["attack"] and x.cell.trust)
        k, device = int(t["round"]), int(t["device"])
        assert float(t["trust"]) == pytest.approx(r.trust_per_round[k - 1][device], abs=5e-5)
        assert int(t["quarantined"]) == (device in r.quarantined_per_round[k - 1])
        assert int(t["malicious"]) == (device in r.malicious_devices)
    markdown = written["markdown"].read_text()
    assert "| attack | malicious | ppbfl (secure) + trust | ppbfl (secure) |" in markdown
    assert "## breast_cancer: trust" in markdown
    line = next(x for x in markdown.splitlines() if x.startswith("| sign_flip | 40% | ppbfl (secure) | "))
    assert line.endswith(f"| 2 of 2 | 5.0 | 0 of {3 * ROUNDS} |")
    assert (folder / "trust_breast_cancer.png").stat().st_size > 0


def test_the_run_agrees_anchors_and_applies_its_trust_on_its_own_chain(chained) -> None:
    run, _, checked = chained
    config = _config(extra="[trust]\nquarantine_below = 0.5\nrelease_at = 0.5\n").trust_config
    facts = run.chain_per_round
    assert not run.failed and facts is not None and [f.round for f in facts] == list(range(1, CHAIN_ROUNDS + 1))
    for device in range(5):  # the agreed update is the float beta model's, as off chain
        expected = _float_trust([True] * CHAIN_ROUNDS if device in run.malicious_devices else [False] * CHAIN_ROUNDS)
        assert np.asarray(run.trust_per_round)[:, device] == pytest.approx(expected, abs=2**-9)
    assert all(run.quarantine_round(i) == 2 for i in run.malicious_devices)
    # the contract's trust words are the model's weights (reputation, 0 in quarantine)
    for k, f in enumerate(facts):
        expected = [0 if i in run.quarantined_per_round[k] else round(run.trust_per_round[k][i] * TRUST_ONE) for i in range(5)]
        assert list(f.trust_q15) == expected == [x.after.weight_trust for x in f.trust.records]
        assert f.round_gas > 0 and f.trust_gas > 0
    # each device stamped at the difficulty the chain derived from its trust before the round
    start = initial_state(config).weight_trust
    assert start == 3 * TRUST_ONE // 4
    before = [[start] * 5] + [list(f.trust_q15) for f in facts[:-1]]
    for f, words in zip(facts, before):
        assert list(f.pow_bits) == [pow_bits_for(w, config) for w in words]
    assert facts[0].pow_bits == (9,) * 5  # 12 - floor(4 * 0.75 / 0.9)
    last, honest = facts[-1], [i for i in range(5) if i not in run.malicious_devices]
    assert all(last.pow_bits[i] == 12 for i in run.malicious_devices)  # quarantined after round 2: the hardest stamp
    assert all(last.pow_bits[i] < 12 for i in honest) and facts[0].trust_q15 != last.trust_q15
    # the anchored roots are the chain's, every record proves against them, an edited one does not, the audit is clean
    (check,) = checked
    assert check["anchors"] == {f.round: f.anchor for f in facts}
    assert len(check["verified"]) == 5 * CHAIN_ROUNDS and all(check["verified"].values())
    assert not any(check["edited"].values())
    assert check["audit"] == {r: [] for r in range(1, CHAIN_ROUNDS + 1)}


def test_the_chain_facts_reach_trust_csv_chain_csv_and_results_csv(chained, grid) -> None:
    run, written, _ = chained
    rows = list(csv.DictReader(written["trust"].read_text().splitlines()))
    assert len(rows) == 5 * CHAIN_ROUNDS
    for t in rows:
        fact = run.chain_per_round[int(t["round"]) - 1]
        assert (int(t["chain_trust_q15"]), int(t["pow_bits"])) == (fact.trust_q15[int(t["device"])], fact.pow_bits[int(t["device"])])
    chain_rows = list(csv.DictReader(written["chain"].read_text().splitlines()))
    assert [(int(c["round"]), c["anchor"], int(c["round_gas"]), int(c["trust_gas"])) for c in chain_rows] == [
        (f.round, f.anchor.hex(), f.round_gas, f.trust_gas) for f in run.chain_per_round]
    (row,) = csv.DictReader(written["csv"].read_text().splitlines())
    assert (row["trust"], row["trust_chain"]) == ("on", "on")
    # trust kept off chain ([trust] chain = false) is marked so, and has no chain columns or chain.csv
    results, off, _ = grid
    assert all(r.chain_per_round is None for r in results)
    marks = {(r["attack"], r["trust"]): r["trust_chain"] for r in csv.DictReader(off["csv"].read_text().splitlines())}
    assert marks == {("sign_flip", "on"): "off", ("sign_flip", "off"): "", ("on_off", "on"): "off", ("on_off", "off"): ""}
    assert "chain" not in off and {t["pow_bits"] for t in csv.DictReader(off["trust"].read_text().splitlines())} == {""}


def test_the_chain_setting_is_a_boolean(tmp_path) -> None:
    assert _config().trust_chain is True and _config(extra="[trust]\nchain = false\n").trust_chain is False
    with pytest.raises(ConfigError) as caught:
        _config(extra="[trust]\nchain = 1\n")
    assert caught.value.key == "trust.chain"


def test_a_chained_federation_takes_no_trust_from_its_caller() -> None:
    from ppbfl.errors import ConfigError as PPBFLConfigError
    from ppbfl.trust.onchain import chained_federation

    federation = chained_federation(2, 3, 4, 3, _config().trust_config)
    try:  # the harness (or a coordinator) cannot weight a round with its own numbers
        with pytest.raises(PPBFLConfigError) as caught:
            federation.run_round(1, {i: np.zeros(4) for i in range(3)}, np.ones(4), trust={0: 1.0, 1: 1.0, 2: 1.0})
        assert caught.value.key == "trust"
        assert federation.ledger.contract.latest_round() == 0  # refused before anything reached the chain
    finally:
        federation.close()

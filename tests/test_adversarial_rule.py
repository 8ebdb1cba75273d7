"""Issue 12: the decision rule is the consortium's, not the coordinator's word.

An edge node whose operator configured a :class:`~ppbfl.defense.rule.DecisionRule` (``ppbfl edge
--rule ...``, ``InProcessDeployment(decision_rule=...)``, what ``Federation.in_process`` and the
demo do) refuses a ``SetupEdge`` asking for another rule or other options, naming the field; a
coordinator that tries to switch the tier (FLAME -> cosine, noise 0, rescale on / off, ``tau``)
sets up no node.
"""

from __future__ import annotations

import re

import pytest

from ppbfl.defense.rule import DecisionRule, load_decision_rule
from ppbfl.errors import ConfigError
from ppbfl.fl.federation import Federation
from ppbfl.protocol.deployment import InProcessDeployment, make_edge_node
from ppbfl.protocol.edge_node import edge_party
from ppbfl.protocol.errors import RemoteError
from ppbfl.protocol.messages import SetupEdge
from ppbfl.protocol.round import Coordinator
from ppbfl.protocol.round_errors import NotEnoughEdgeNodesError

T, N, D, M = 2, 3, 16, 4
BASE = {"index": 1, "t": T, "n": N, "d": D, "frac_bits": 16, "validity_k": 40, "session": b"\x03" * 32}


@pytest.mark.parametrize(
    ("configured", "asked", "field"),
    [
        (DecisionRule(rule="flame", flame_noise=0.01), {"rule": "cosine", "tau": 0.0}, "rule"),
        (DecisionRule(rule="flame", flame_noise=0.01), {"rule": "flame", "tau": 0.0, "flame_noise": 0.0}, "flame_noise"),
        (DecisionRule(rule="cosine"), {"rule": "cosine", "tau": 0.0, "rescale": True}, "rescale"),
        (DecisionRule(rule="cosine", rescale=True), {"rule": "cosine", "tau": 0.0}, "rescale"),
        (DecisionRule(rule="cosine", tau=0.1), {"rule": "cosine", "tau": -1.0}, "tau"),
        (DecisionRule(rule="cosine"), {"rule": "flame", "tau": 0.0}, "rule"),
    ],
    ids=["flame-to-cosine", "noise-off", "rescale-on", "rescale-off", "tau-down", "cosine-to-flame"],
)
def test_a_setup_with_another_rule_than_the_operators_is_refused_naming_the_field(configured, asked, field):
    deployment = InProcessDeployment(T, N, D, decision_rule=configured)
    try:
        with pytest.raises(RemoteError, match=rf"SetupEdge field '{field}' = .*this node's operator configured") as refused:
            deployment.coordinator.call(edge_party(1), SetupEdge(**BASE, **asked), round=0, timeout=5)
        assert refused.value.remote_type == "SetupRuleError"
        assert deployment.nodes[edge_party(1)].setup is None  # nothing set up
        matching = {"rule": configured.rule, "tau": configured.tau, "rescale": configured.rescale, "flame_noise": configured.flame_noise}
        deployment.coordinator.call(edge_party(1), SetupEdge(**BASE, **matching), round=0, timeout=5)  # the operator's rule: accepted
        assert deployment.nodes[edge_party(1)].setup is not None
    finally:
        deployment.close()


def test_a_coordinator_that_switches_a_flame_tier_to_cosine_sets_up_no_node():
    rule = DecisionRule(rule="flame")
    with Federation.in_process(2, 3, D, M, rule="flame", strict=False) as federation:  # every node configured with FLAME
        assert all(node.decision_rule == rule for node in federation.deployment.nodes.values())
        switched = Coordinator(2, 3, D, federation.deployment.coordinator)  # rule "cosine"
        with pytest.raises(NotEnoughEdgeNodesError):
            switched.setup()
        switched.close()
        assert sorted(switched.dropped) == [1, 2, 3]
        assert all("SetupRuleError" in why and "field 'rule' = 'cosine'" in why for why in switched.dropped.values())


def test_ppbfl_edge_rule_options_configure_the_node_and_bad_ones_are_named(tmp_path, capsys):
    from ppbfl.cli import main
    from ppbfl.protocol.creds import write_credentials

    node = make_edge_node(decision_rule={"rule": "flame", "tau": 0.0, "rescale": False, "flame_noise": 0.5})
    assert node.decision_rule == DecisionRule(rule="flame", flame_noise=0.5)
    assert make_edge_node().decision_rule is None  # without --rule the node takes the coordinator's rule
    with pytest.raises(ConfigError, match=r"decision_rule\.rescale"):
        make_edge_node(decision_rule={"rule": "flame", "rescale": True})
    with pytest.raises(ConfigError, match=r"rule\.tau"):
        load_decision_rule({"tau": 1.5})
    write_credentials(tmp_path, ["edge-1"])
    args = ["edge", "--party", "edge-1", "--creds", str(tmp_path), "--ca", str(tmp_path / "ca.crt"), "--rule", "cosine", "--flame-noise", "0.1"]
    assert main(args) == 2  # refused before serving
    err = capsys.readouterr().err
    assert err.startswith("ppbfl edge: ConfigError: ") and re.search(r"decision_rule\.flame_noise", err), err


def test_the_operators_norms_setting_fixes_from_how_many_nodes_honest_majority_norms_are_opened():
    assert DecisionRule().honest_majority_from(3) == 7  # cosine, "auto": a lying share must be correctable
    assert DecisionRule(norms="honest-majority").honest_majority_from(3) == 5
    assert DecisionRule(rule="flame").honest_majority_from(3) == 7  # FLAME's Gram matrix too (Beaver below)
    assert DecisionRule(rule="flame", norms="honest-majority").honest_majority_from(3) == 5
    with pytest.raises(ConfigError, match=r"rule\.norms"):
        load_decision_rule({"norms": "beaver"})

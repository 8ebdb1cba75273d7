"""The same full round against a real anvil node started and stopped by the test.

anvil comes from the repo's node_modules (``npm ci``), ``$PPBFL_ANVIL``, PATH, or is installed
once into the user cache with npm (ppbfl.chain.anvil). If none of that works the test fails
with the reason; it is never skipped.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from ppbfl.chain import (
    AnvilProcess,
    AnvilStartError,
    Chain,
    ChainRevertError,
    Phase,
    find_anvil,
)
from ppbfl.chain.scenario import Scenario, run_round


def test_full_round_on_anvil_matches_py_evm():
    with Chain.anvil(accounts=40) as chain:
        pid = chain.node.pid
        assert chain.target == "anvil"
        c = Scenario(chain, 3, 5, 6, d=300, pow_bits=6, audit_shares=3)
        anvil_record = run_round(c, 1)
        c.close()
        assert anvil_record.audit.passed
        assert c.rounds.round_state(1).phase == Phase.CLOSED
        assert c.rounds.decisions(1)[0].device_id == 0
        ids, values = c.rounds.agreed_scalars(1)
        assert ids.tolist() == list(range(6)) and values.dtype == np.uint64
        with pytest.raises(ChainRevertError, match=r"WrongPhase\(round=1, phase=<Phase.CLOSED"):
            c.rounds.close_round(1)  # reverts are decoded on a real node too
        process = chain.node.process
    assert process.poll() is not None, f"anvil (pid {pid}) still running after close()"
    with Chain.embedded(accounts=40) as chain, Scenario(chain, 3, 5, 6, d=300, pow_bits=6, audit_shares=3) as c:
        evm_record = run_round(c, 1)
    # same contract, calls and fork rules, and the same opened scalars and decisions (exact field
    # results): the gas agrees up to calldata bytes that differ per run (account addresses, PoW
    # nonces, Merkle roots of freshly random shares, audit coordinates drawn from block hashes)
    for phase in ("trust", "fixed"):
        assert anvil_record.gas[phase] == evm_record.gas[phase], phase
    for phase in ("scalars", "decisions"):  # the nodes' 65-byte signatures (fresh keys): at most 12 gas per zero byte
        assert abs(anvil_record.gas[phase] - evm_record.gas[phase]) <= 5 * 65 * 12, phase
    # 32-byte roots (and each node's 65-byte signature of its root): at most 12 gas per zero byte
    for phase, most in (("aggregate_shares", 5 * (32 + 65) * 12), ("aggregate", 5 * 32 * 12)):
        assert abs(anvil_record.gas[phase] - evm_record.gas[phase]) <= most, phase
    assert abs(anvil_record.gas["commit"] - evm_record.gas["commit"]) <= 0.01 * evm_record.gas["commit"]
    # the audit opens other coordinates on each chain: its calldata differs by at most the zero /
    # non-zero byte price difference (12 gas) on every byte of the 16 opened chunks (16 values of
    # 8 bytes) of the aggregate and the t + 1 = 4 share vectors
    assert abs(anvil_record.gas["audit"] - evm_record.gas["audit"]) <= 16 * 5 * 16 * 8 * 12


def test_find_anvil_returns_an_executable():
    path = find_anvil()
    assert path.is_file() and os.access(path, os.X_OK)


def test_a_binary_that_is_not_anvil_fails_with_a_clear_error(tmp_path):
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\necho 'not a node' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(AnvilStartError, match="not a node"):
        AnvilProcess.start(binary=fake, timeout_s=2, attempts=1)


def test_find_anvil_search_order_and_errors(tmp_path, monkeypatch):
    import ppbfl.chain.anvil as anvil_module
    from ppbfl.chain import AnvilUnavailableError

    real = find_anvil()
    monkeypatch.setenv("PPBFL_ANVIL", str(real))
    assert find_anvil() == real  # $PPBFL_ANVIL first
    monkeypatch.setattr(anvil_module, "_REPO", tmp_path / "repo")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("PPBFL_ANVIL", str(tmp_path / "missing"))
    with pytest.raises(AnvilUnavailableError, match=r"PPBFL_ANVIL=.*missing.*node_modules.*PATH.*npm \(not on PATH"):
        find_anvil()
    with pytest.raises(AnvilUnavailableError):
        find_anvil(install=False)

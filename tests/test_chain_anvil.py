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

from ppbfl.chain import AnvilProcess, AnvilStartError, Chain, Phase, find_anvil
from ppbfl.chain.scenario import run_round, setup_consortium


def test_full_round_on_anvil_matches_py_evm():
    with Chain.anvil(accounts=40) as chain:
        pid = chain.node.pid
        assert chain.target == "anvil"
        c = setup_consortium(chain, 3, 5, 6, pow_bits=6)
        anvil_record = run_round(c, 1, d=300)
        assert anvil_record.audit.passed
        assert c.rounds.round_state(1).phase == Phase.CLOSED
        assert c.rounds.decisions(1)[0].device_id == 0
        ids, values = c.rounds.agreed_scalars(1)
        assert ids.tolist() == list(range(6)) and values.dtype == np.uint64
        process = chain.node.process
    assert process.poll() is not None, f"anvil (pid {pid}) still running after close()"
    with Chain.embedded(accounts=40) as chain:
        c = setup_consortium(chain, 3, 5, 6, pow_bits=6)
        evm_record = run_round(c, 1, d=300)
    # same contract, calls and fork rules: the gas agrees up to calldata bytes that differ per
    # chain (account addresses, PoW nonces, audit coordinates drawn from different block hashes)
    for phase in ("scalars", "decisions", "aggregate_shares", "aggregate", "trust", "fixed"):
        assert anvil_record.gas[phase] == evm_record.gas[phase], phase
    for phase in ("commit", "audit"):
        assert abs(anvil_record.gas[phase] - evm_record.gas[phase]) <= 0.01 * evm_record.gas[phase], phase


def test_find_anvil_returns_an_executable():
    path = find_anvil()
    assert path.is_file() and os.access(path, os.X_OK)


def test_a_binary_that_is_not_anvil_fails_with_a_clear_error(tmp_path):
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\necho 'not a node' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(AnvilStartError, match="not a node"):
        AnvilProcess.start(binary=fake, timeout_s=2, attempts=1)

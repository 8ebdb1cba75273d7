"""The committed contract artifacts are what the pinned solc makes of contracts/*.sol.

Recompiles with ``node contracts/compile.mjs --print`` (npm ``solc`` pinned in package.json,
installed by ``npm ci``; ``.ci/run`` does that) and compares ABI and bytecode. Skips, naming
the missing tool, only when node or the npm packages are absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ppbfl.chain import load_artifact

ROOT = Path(__file__).resolve().parents[1]


def test_artifact_loads_and_pins_the_compiler():
    artifact = load_artifact()
    assert artifact["compiler"]["settings"]["evmVersion"] == "cancun"
    assert artifact["compiler"]["settings"]["optimizer"]["enabled"] is True
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["solc"]
    assert artifact["compiler"]["version"].startswith(pinned + "+")
    assert "pragma solidity " + pinned in (ROOT / "contracts" / "PPBFLRounds.sol").read_text()


def test_recompiling_reproduces_the_committed_artifacts():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot recompile the contracts")
    if not (ROOT / "node_modules" / "solc").is_dir():
        pytest.skip("node_modules/solc is missing: run `npm ci` at the repository root")
    done = subprocess.run(
        [node, "contracts/compile.mjs", "--print"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads(done.stdout)
    committed = {p.stem: json.loads(p.read_text()) for p in (ROOT / "ppbfl" / "chain" / "artifacts").glob("*.json")}
    assert set(fresh) == set(committed)
    for name, artifact in fresh.items():
        assert artifact["abi"] == committed[name]["abi"], name
        assert artifact["bytecode"] == committed[name]["bytecode"], name
        assert artifact["deployedBytecode"] == committed[name]["deployedBytecode"], name

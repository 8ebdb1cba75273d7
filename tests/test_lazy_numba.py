"""The device side runs without Numba: ``import ppbfl``, sharing and a device's upload on the native backend.

Each test runs a child interpreter whose first act is to install a ``sys.meta_path`` finder that
raises ``ImportError`` for ``numba`` and ``llvmlite`` (as on a device where they are not
installed); the child's results are checked here against values computed in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import ppbfl
from ppbfl.defense.submission import encode_update
from ppbfl.field.csprng import FieldRNG, expand_seed
from ppbfl.field.fixed_point import FixedPointCodec
from ppbfl.protocol.commitments import commitment_root, share_leaf
from ppbfl.sharing import reconstruct, share

T, N, D, ROUND, DEVICE = 3, 5, 1000, 7, 4
SEED = bytes(range(32))

_BLOCK = """
import importlib.abc, sys

class _Blocked(importlib.abc.MetaPathFinder):
    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name in self.names or name.split(".")[0] in self.names:
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, _Blocked(set(sys.argv[1].split(","))))
"""


def _run_blocked(blocked: str, body: str) -> dict:
    """Run ``body`` in a child with the modules ``blocked`` (comma separated) unimportable; its JSON stdout."""
    root = str(Path(ppbfl.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "PPBFL_BACKEND"}
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    script = _BLOCK + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script, blocked], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _update() -> np.ndarray:
    return np.random.default_rng(3).normal(0.0, 0.05, D)


def test_device_upload_and_sharing_on_the_native_backend_without_numba():
    child = _run_blocked("numba,llvmlite", f"""
        import json, sys
        import numpy as np
        import ppbfl
        from ppbfl.field import backend_name
        from ppbfl.field.csprng import FieldRNG
        from ppbfl.field.fixed_point import FixedPointCodec
        from ppbfl.protocol.device import Device
        from ppbfl.sharing import reconstruct, share

        update = np.random.default_rng(3).normal(0.0, 0.05, {D})
        prepared = Device({DEVICE}, {T}, {N}, FixedPointCodec(), rng=FieldRNG({SEED!r})).prepare({ROUND}, update)
        secret = np.arange(1, 101, dtype=np.uint64) * np.uint64(2**50)
        shares = share(secret, {T}, {N}, rng=FieldRNG({SEED!r}))
        print(json.dumps({{
            "numba_loaded": any(m.split(".")[0] in ("numba", "llvmlite") for m in sys.modules),
            "backend": backend_name(),
            "uploads": {{
                j: {{"share": None if u.share is None else u.share.tolist(), "seed": None if u.seed is None else u.seed.hex(),
                     "stream": u.stream, "mask": u.mask_share, "leaves": [leaf.hex() for leaf in u.leaves]}}
                for j, u in prepared.uploads.items()
            }},
            "commitment": prepared.commitment.hex(),
            "shares": shares.tolist(),
            "reconstructed": reconstruct(shares[[0, 2, 4]], [1, 3, 5], t={T}).tolist(),
        }}))
    """)
    assert child["backend"] == "native" and child["numba_loaded"] is False

    # the device's shares (dense and seed-expanded) reconstruct this process's encoding of the update
    uploads = {int(j): u for j, u in child["uploads"].items()}
    assert sorted(uploads) == list(range(1, N + 1))
    dense = {j: np.array(u["share"], dtype=np.uint64) for j, u in uploads.items() if u["share"] is not None}
    seeds = {j: bytes.fromhex(u["seed"]) for j, u in uploads.items() if u["seed"] is not None}
    rows = np.stack([dense[j] if j in dense else expand_seed(seeds[j], D, stream=ROUND) for j in range(1, N + 1)])
    expected = encode_update(_update(), FixedPointCodec(), device=DEVICE)
    for points in ([1, 2, 3], [3, 4, 5]):  # dense-only and seeded rows
        np.testing.assert_array_equal(reconstruct(rows[np.array(points) - 1], points, t=T), expected)

    # its leaves and commitment are what this process (Numba keccak) computes from those uploads
    leaves = [
        share_leaf(ROUND, DEVICE, j, u["mask"], share=dense.get(j), seed=seeds.get(j), stream=u["stream"])
        for j, u in sorted(uploads.items())
    ]
    assert all(u["leaves"] == [leaf.hex() for leaf in leaves] for u in uploads.values())
    assert child["commitment"] == commitment_root(leaves).hex()

    # plain sharing with a fixed key: the same shares as here, and the secret back from 3 of them
    secret = np.arange(1, 101, dtype=np.uint64) * np.uint64(2**50)
    np.testing.assert_array_equal(np.array(child["shares"], dtype=np.uint64), share(secret, T, N, rng=FieldRNG(SEED)))
    np.testing.assert_array_equal(np.array(child["reconstructed"], dtype=np.uint64), secret)


def test_without_numba_and_without_the_native_module_a_typed_error_names_both_backends():
    child = _run_blocked("numba,llvmlite,ppbfl.field._native", """
        import json
        import numpy as np
        import ppbfl  # importing still works: no kernel is needed yet
        from ppbfl.sharing import share

        try:
            share(np.arange(4, dtype=np.uint64), 2, 3)
        except Exception as exc:
            print(json.dumps({"type": type(exc).__name__, "message": str(exc)}))
        else:
            print(json.dumps({"type": None, "message": "share() ran without a kernel backend"}))
    """)
    assert child["type"] == "BackendUnavailableError"
    assert "'native' cannot be loaded" in child["message"] and "'numba' cannot be loaded" in child["message"]


def test_keccak_rows_without_numba_match_the_numba_kernel():
    from ppbfl.chain._keccak_numba import keccak256_rows_numba
    from ppbfl.chain.keccak import _rows_one_by_one

    rows = np.random.default_rng(5).integers(0, 256, (40, 200), dtype=np.uint8)
    for length in (0, 64, 135, 136, 200):
        data = np.ascontiguousarray(rows[:, :length])
        np.testing.assert_array_equal(_rows_one_by_one(data), keccak256_rows_numba(data))

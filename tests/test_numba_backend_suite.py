"""The field and sharing spec tests again, on the Numba backend.

The default backend is ``native`` wherever the C extension was built (CI), so this re-runs the
operation-level tests with ``PPBFL_BACKEND=numba`` in a fresh interpreter: both backends pass the
same specification end to end, not only kernel-by-kernel (``test_native.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SPEC_MODULES = ("test_field_ops.py", "test_shamir.py", "test_seeded.py", "test_robust.py")


def test_spec_tests_pass_on_the_numba_backend():
    env = dict(os.environ, PPBFL_BACKEND="numba")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(str(TESTS / m) for m in SPEC_MODULES)],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout and "skipped" not in done.stdout

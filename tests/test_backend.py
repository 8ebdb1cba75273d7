"""Kernel backend selection: default, set_backend errors, and the PPBFL_BACKEND variable.

The environment variable is read once, on first use, so it is tested in fresh interpreters.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ppbfl.field as F
from ppbfl.errors import BackendUnavailableError, PPBFLError
from ppbfl.field import backend, numba_kernels

KERNELS = (
    "add_range", "sub_range", "neg_range", "mul_range", "muladd_range", "scalar_mul_range",
    "dot_range", "weighted_rowsum_range", "matmul_range", "horner_share_range", "row_dots_range", "pack_rows",
)


@pytest.fixture(autouse=True)
def _restore_backend():
    """Tests here switch backends; later test modules must see the default again."""
    before = F.backend_name()
    yield
    F.set_backend(before)


def run_python(code: str, **env_overrides: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env, capture_output=True, text=True, timeout=120,
    )


def test_numba_is_available_and_preferred():
    names = backend.available_backends()
    assert "numba" in names
    assert names[0] == "numba" or "native" in names  # numba first unless native is built
    assert backend.PREFERENCE[0] in ("numba", "native")


def test_set_and_get_numba_backend():
    F.set_backend("numba")
    assert F.backend_name() == "numba"
    module = F.get_backend()
    assert module is numba_kernels
    for name in KERNELS:
        assert callable(getattr(module, name)), name
    a = np.array([2**61 - 2, 3], dtype=np.uint64)
    assert [int(v) for v in F.mul(a, a)] == [1, 9]


@pytest.mark.parametrize("name", ["nope", "", "NUMBA", "native-missing"])
def test_unknown_backend_raises_and_keeps_the_active_one(name):
    F.set_backend("numba")
    with pytest.raises(BackendUnavailableError, match=re.escape(repr(name))) as info:
        F.set_backend(name)
    assert isinstance(info.value, PPBFLError) and isinstance(info.value, RuntimeError)
    assert "numba" in str(info.value)  # lists the known backends
    assert F.backend_name() == "numba"
    assert F.get_backend() is numba_kernels


def test_default_backend_without_env_is_numba_in_fresh_process():
    proc = run_python(
        """
        import ppbfl.field as F
        from ppbfl.field import backend
        print(F.backend_name(), ",".join(F.available_backends()), backend.PREFERENCE[0])
        """,
        PPBFL_BACKEND=None,
    )
    assert proc.returncode == 0, proc.stderr
    active, available, first = proc.stdout.split()
    assert active == first == available.split(",")[0]
    assert "numba" in available.split(",")
    if "native" not in available.split(","):
        assert active == "numba"


def test_env_var_selects_numba():
    proc = run_python(
        """
        import numpy as np
        import ppbfl.field as F
        print(F.backend_name())
        a = np.array([2**61 - 2], dtype=np.uint64)
        print(int(F.mul(a, a)[0]))
        """,
        PPBFL_BACKEND="numba",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["numba", "1"]


def test_env_var_with_unknown_backend_raises_on_first_use():
    proc = run_python(
        """
        import numpy as np
        import ppbfl.field as F
        from ppbfl.errors import BackendUnavailableError
        try:
            F.add(np.zeros(2, dtype=np.uint64), np.zeros(2, dtype=np.uint64))
        except BackendUnavailableError as exc:
            print("raised:", exc)
        else:
            print("no error; backend =", F.backend_name())
        """,
        PPBFL_BACKEND="nope",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("raised:"), proc.stdout
    assert "'nope'" in proc.stdout


def test_set_backend_overrides_env_var():
    proc = run_python(
        """
        import ppbfl.field as F
        F.set_backend("numba")
        print(F.backend_name())
        """,
        PPBFL_BACKEND="nope",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["numba"]


def test_bad_thread_count_setting_is_a_clear_error():
    code = "from ppbfl.field import add; import numpy as np; add(np.zeros(3, np.uint64), np.zeros(3, np.uint64))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, PPBFL_THREADS="two"), capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "PPBFL_THREADS = 'two': expected a positive integer" in done.stderr


def test_without_the_native_extension_numba_is_used():
    """A machine that could not compile the C extension at install time runs on Numba."""
    proc = run_python(
        """
        import sys
        sys.modules["ppbfl.field._native"] = None  # what an install without a C compiler looks like
        import numpy as np
        import ppbfl.field as F
        a = np.array([2**61 - 2], dtype=np.uint64)
        print(F.backend_name(), ",".join(F.available_backends()), int(F.mul(a, a)[0]))
        """,
        PPBFL_BACKEND=None,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["numba", "numba", "1"]


def test_native_is_preferred_when_built():
    proc = run_python("import ppbfl.field as F; print(F.backend_name())", PPBFL_BACKEND=None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "native"  # pip install builds it wherever a C compiler exists (CI)

"""Known-answer tests of the native C field kernels, on the host and cross-built for ARM.

Runs the targets of ``native/Makefile``: ``test_kat`` (``native/test_kat.c``, linked with
``native/ppbfl_field.c``) checks every kernel against vectors that ``native/make_kat.py``
computes with the Numba reference kernels and cross-checks against galois. The ARM builds run
under qemu-user; each test skips, naming the missing tool and its Debian package, when a
compiler or emulator is absent (CI installs them: make gcc gcc-aarch64-linux-gnu
gcc-arm-linux-gnueabihf qemu-user).
"""

from __future__ import annotations

import platform
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

NATIVE = Path(__file__).resolve().parents[1] / "native"
M61 = (1 << 61) - 1

# (tool, Debian package providing it)
MAKE = ("make", "make")
GCC = ("gcc", "gcc")
AARCH64_GCC = ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu")
ARMHF_GCC = ("arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf")
QEMU_AARCH64 = ("qemu-aarch64", "qemu-user")
QEMU_ARM = ("qemu-arm", "qemu-user")

HOST_PATH = "int128" if platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64") else "portable"


def need(tool: str, package: str, alternatives: tuple[str, ...] = ()) -> str:
    """Path of ``tool`` (or an alternative name); skip the test, saying what to install, if absent."""
    for name in (tool, *alternatives):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"{tool} not found on PATH: install the Debian package {package} (apt-get install {package})")


def make(target: str, kat: Path, build: Path, *extra: str, timeout: int = 600) -> subprocess.CompletedProcess:
    need(*MAKE)
    cmd = ["make", "-C", str(NATIVE), target, f"PYTHON={sys.executable}", f"KAT={kat}", f"BUILD={build}", *extra]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)


def show(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


@pytest.fixture(scope="session")
def kat(tmp_path_factory) -> Path:
    """One KAT file for the session (make_kat.py run by ``make kat`` with this interpreter)."""
    need(*MAKE)
    base = tmp_path_factory.mktemp("native_kat")
    path = base / "kat.txt"
    proc = make("kat", path, base / "build")
    assert proc.returncode == 0, show(proc)
    assert path.is_file(), show(proc)
    return path


def test_kat_file_covers_every_kernel_and_prime(kat: Path):
    text = kat.read_text(encoding="ascii")
    assert len(text) < 230_000
    records = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert records[0][:2] == ["ppbfl-kat", "1"]
    count = int(records[0][2])
    assert records[-1] == ["end", str(count)]
    body = records[1:-1]
    assert len(body) == count
    families = {"add", "sub", "mul", "neg", "muladd", "scalar_mul", "dot", "weighted_rowsum", "row_dots", "row_dots4",
                "matmul", "horner_share", "ternary"}
    seen = {(r[0], int(r[1])) for r in body}
    for family in families:
        for p in (M61, (1 << 31) - 1):
            assert (family, p) in seen, f"no {family} case for p = {p}"
    assert {r[0] for r in body} == families
    # the edge values the portable 32-bit split is most likely to get wrong are in there
    numbers = {int(x) for r in body for x in r[1:]}
    for v in (0, 1, M61 - 1, M61 - 2, (1 << 32) - 1, 1 << 32, (1 << 32) + 1, 0x1FFFFFFF00000000,
              0x1FFFFFFEFFFFFFFF):
        assert v in numbers, v
    # horner_share: degree 2 and 5, n = 5 and 10, with col0 > 0 and lo > 0
    horner = [tuple(int(x) for x in r[1:9]) for r in body if r[0] == "horner_share"]
    for degree in (2, 5):
        for n in (5, 10):
            assert any(h[1] == degree and h[3] == n and h[5] > 0 and h[6] > 0 for h in horner), (degree, n)


TARGETS = [
    # target, tools needed, product path, target arch, sizeof(void*)
    pytest.param("host", [GCC], HOST_PATH, None, struct.calcsize("P"), id="host"),
    pytest.param("host-portable", [GCC], "portable", None, struct.calcsize("P"), id="host-portable"),
    pytest.param("aarch64", [AARCH64_GCC, QEMU_AARCH64], "int128", "aarch64", 8, id="aarch64-qemu"),
    pytest.param("armhf", [ARMHF_GCC, QEMU_ARM], "portable", "arm (32-bit)", 4, id="armhf-qemu"),
]


@pytest.mark.parametrize("target, tools, path, arch, pointer_size", TARGETS)
def test_kat_target(target, tools, path, arch, pointer_size, kat: Path, tmp_path: Path):
    extra = []
    for tool, package in tools:
        # Debian's qemu-user-static names its binaries qemu-*-static; either will do
        found = need(tool, package, (f"{tool}-static",) if tool.startswith("qemu-") else ())
        if tool.startswith("qemu-"):
            extra.append(f"QEMU_{tool.split('-')[1].upper()}={found}")
    proc = make(target, kat, tmp_path / "build", *extra)
    assert proc.returncode == 0, show(proc)
    out = proc.stdout
    assert f"test_kat: product path: {path}\n" in out, show(proc)
    assert f"sizeof(void*) = {pointer_size}," in out, show(proc)
    if arch is not None:
        assert f"test_kat: target {arch}," in out, show(proc)
    count = int(kat.read_text(encoding="ascii").split("ppbfl-kat 1 ", 1)[1].split()[0])
    assert re.search(rf"^ALL {count} CASES PASSED \({path}, ", out, re.MULTILINE), show(proc)
    assert "MISMATCH" not in out


@pytest.fixture()
def host_binary(kat: Path, tmp_path: Path) -> Path:
    need(*GCC)
    build = tmp_path / "build"
    proc = make("host", kat, build)
    assert proc.returncode == 0, show(proc)
    return build / "test_kat-host"


def _corrupt(kat: Path, dest: Path, kernel: str, p: int, field: str) -> tuple[int, int, int]:
    """Copy ``kat`` to ``dest`` with one expected value of the first (kernel, p) record changed.

    ``field`` is "out" (an output element inside [lo, hi)) or "top" (the returned max input).
    Returns (line number, expected value now in the file, value the kernel computes).
    """
    lines = kat.read_text(encoding="ascii").splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):  # noqa: B007 - `number` is the line found, used after the break
        tok = line.split()
        if tok and tok[0] == kernel and int(tok[1]) == p:
            break
    else:
        raise AssertionError(f"no {kernel} record for p = {p}")
    n, lo, hi = int(tok[2]), int(tok[3]), int(tok[4])
    assert kernel == "mul" and hi > lo
    top_at = 5 + 2 * n
    index = top_at if field == "top" else top_at + 1 + (lo + hi) // 2
    old = int(tok[index])
    new = (old + 1) % p if field == "out" else old + 1
    tok[index] = str(new)
    lines[number - 1] = " ".join(tok) + "\n"
    dest.write_text("".join(lines), encoding="ascii")
    return number, new, old


@pytest.mark.parametrize("field", ["out", "top"])
@pytest.mark.parametrize("p", [M61, (1 << 31) - 1])
def test_corrupted_expected_value_is_reported(host_binary: Path, kat: Path, tmp_path: Path, field: str, p: int):
    bad = tmp_path / "bad_kat.txt"
    line, new, old = _corrupt(kat, bad, "mul", p, field)
    proc = subprocess.run([str(host_binary), str(bad)], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, show(proc)
    assert f"MISMATCH in mul (p = {p}, KAT line {line}, whole run)" in proc.stdout, show(proc)
    assert re.search(rf"expected {new}\n\s+got\s+{old}\n", proc.stdout), show(proc)
    assert "CASES PASSED" not in proc.stdout
    assert proc.stdout.rstrip().endswith("FAILED")


def test_truncated_kat_is_rejected(host_binary: Path, kat: Path, tmp_path: Path):
    lines = kat.read_text(encoding="ascii").splitlines(keepends=True)
    bad = tmp_path / "truncated.txt"
    bad.write_text("".join(lines[:-2]), encoding="ascii")  # drop the last record and "end"
    proc = subprocess.run([str(host_binary), str(bad)], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, show(proc)
    assert "malformed KAT file" in proc.stderr, show(proc)
    assert "CASES PASSED" not in proc.stdout


def test_sanitized_host_build(kat: Path, tmp_path: Path):
    """AddressSanitizer + UBSan build: catches out-of-range reads/writes the KAT values might not."""
    gcc = need(*GCC)
    probe = subprocess.run(
        [gcc, "-fsanitize=address,undefined", "-x", "c", "-", "-o", str(tmp_path / "probe")],
        input="int main(void) { return 0; }\n", check=False, capture_output=True, text=True, timeout=120,
    )
    if probe.returncode != 0:
        pytest.skip(f"gcc cannot link -fsanitize=address,undefined (install libasan/libubsan): {probe.stderr[:200]}")
    proc = make("sanitize", kat, tmp_path / "build")
    assert proc.returncode == 0, show(proc)
    assert re.search(r"^ALL \d+ CASES PASSED", proc.stdout, re.MULTILINE), show(proc)

"""docs/security.md names, per attack, the test that shows its outcome: every test it names must
exist (a renamed or deleted test would leave a row pointing at nothing)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?::([\w]+)[^`]*`|`(tests/[\w/]+\.py)`")


def _named_tests() -> list[tuple[int, str, str]]:
    """(line, file, test name) for every ``tests/file.py::name`` and every ``::name`` that follows a
    file earlier in the same row."""
    named = []
    for number, line in enumerate((ROOT / "docs" / "security.md").read_text().splitlines(), 1):
        if not line.startswith("|"):
            continue
        current = None
        for match in REFERENCE.finditer(line):
            file, name, bare = match.groups()
            current = file or bare or current
            if name and current is not None:
                named.append((number, current, name))
    return named


def _defined(file: str) -> set[str]:
    tree = ast.parse((ROOT / file).read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}


def test_every_test_security_md_names_exists():
    named = _named_tests()
    assert len(named) > 150  # the parser finds the rows' references (a format change would find none)
    missing = [f"line {line}: {file}::{name}" for line, file, name in named if not (ROOT / file).is_file() or name not in _defined(file)]
    assert not missing, "docs/security.md names tests that do not exist:\n" + "\n".join(missing)

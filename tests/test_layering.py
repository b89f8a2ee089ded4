"""The import direction of DESIGN.md: `compiler -> passes -> dialects`, `compiler ->
backends -> dialects`, `compiler -> runtime -> backends`; `dialects` imports nothing of ours;
`runtime` never imports `passes` or `compiler` (a deployed container needs only `runtime`).
(`passes` runs `runtime.kernels` to fold constants: the same kernels, once, at compile
time; the backend passes read the chip's numbers in `backends.targets` and
`backends.layout`.) Every import counts, function-level ones included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("compiler", "passes", "dialects", "backends", "runtime")
FORBIDDEN = {
    "dialects": {"compiler", "passes", "backends", "runtime"},
    "backends": {"compiler", "passes", "runtime"},
    "runtime": {"compiler", "passes"},
    "passes": {"compiler"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_follow_the_layers(package: str):
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {k: v for k, v in wrong.items() if v} == {}

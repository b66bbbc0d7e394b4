"""No machine-specific absolute path in code, tests, benchmarks or docs.

The data live in ``../shared`` relative to the repository (or ``$GDASK_DATA``)
and the interpreter in ``.venv``: a path such as the build machine's root
folder breaks every other checkout.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the build machine's root (written in two pieces so that this file does not match itself)
MACHINE_ROOT = "/" + "work/"
SCANNED = ("gdask", "tests", "benchmarks", "docs", "deploy", "helm", "README.md", "Makefile")


def _files() -> list[Path]:
    out = []
    for name in SCANNED:
        root = REPO / name
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        out += [
            f
            for f in files
            if f.is_file()
            and "__pycache__" not in f.parts
            and f.suffix in {"", ".py", ".md", ".yaml", ".yml", ".txt", ".toml", ".tpl", ".json"}
        ]
    return out


def test_scan_covers_the_tree():
    names = {f.relative_to(REPO).as_posix() for f in _files()}
    assert {"gdask/cli.py", "benchmarks/README.md", "tests/conftest.py"} <= names


def test_no_machine_paths():
    hits = [
        f"{f.relative_to(REPO)}:{i}: {line.strip()}"
        for f in _files()
        for i, line in enumerate(f.read_text(errors="replace").splitlines(), 1)
        if MACHINE_ROOT in line
    ]
    assert not hits, "absolute machine paths (use ../shared, $GDASK_DATA, .venv):\n" + "\n".join(
        hits
    )

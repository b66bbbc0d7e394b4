"""Shared fixtures.

Real data lives in ../shared/data beside the repository (or where
GDASK_DATA points). Tests that need it fail loudly when it is absent rather
than skipping silently: CI always has it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("GDASK_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data folder; a test that asks for it fails if it is missing."""
    path = _data_dir()
    if not path.is_dir():
        pytest.fail(f"real data folder {path} not found (set GDASK_DATA)")
    return path


@pytest.fixture(params=["direct", "symlink"])
def linked_data_dir(request: pytest.FixtureRequest, data_dir: Path, tmp_path: Path) -> Path:
    """``data_dir`` as given, and reached through a symlink (``../shared`` may be one)."""
    if request.param == "direct":
        return data_dir
    link = tmp_path / "linked-data"
    link.symlink_to(data_dir.resolve(), target_is_directory=True)
    return link


@pytest.fixture(scope="session")
def hess_dir(data_dir: Path) -> Path:
    return data_dir / "hess-dl3-dr1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Markers follow from what a test uses, so ``-m`` selections are consistent.

    A test that asks for the real data (``data_dir`` or a fixture built on it) is
    ``realdata``; a test under ``tests/validation`` (Gammapy as the oracle) is
    ``validation``. ``make test-fast`` deselects both and ``slow``.
    """
    validation_dir = Path(__file__).parent / "validation"
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)
        if validation_dir in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.validation)

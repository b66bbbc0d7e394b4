"""Fixtures: small writable copies of real DL3 archives."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.archive.dl3copy import CRAB_RUNS, copy_archive


@pytest.fixture
def crab_archive(hess_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the four H.E.S.S. Crab runs."""
    return copy_archive(hess_dir, tmp_path / "dl3", CRAB_RUNS)

"""Fixtures shared by the validation modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.validation.gammapy_hess import HessCrab3D, hess_crab_3d


@pytest.fixture(scope="session")
def gp_hess_crab(hess_dir: Path) -> HessCrab3D:
    """Gammapy's reduction of the four H.E.S.S. Crab runs, built once per session.

    Shared: do not change its datasets in place (change a ``copy.deepcopy``).
    """
    return hess_crab_3d(hess_dir)

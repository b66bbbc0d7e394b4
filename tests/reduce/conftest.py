"""Fixtures of the reduction tests: one real H.E.S.S. run and a small geometry."""

from __future__ import annotations

import pytest

from gdask.dl3 import DL3Index, read_observation
from gdask.geometry import EnergyAxis, WcsGeom

CRAB = (83.633, 22.014)


@pytest.fixture(scope="session")
def hess_obs(hess_dir):
    return read_observation(DL3Index.read(hess_dir), 23523)


@pytest.fixture(scope="session")
def small_geom():
    return WcsGeom.create(skydir=CRAB, binsz=0.05, width=(2, 2), frame="icrs", proj="CAR")


@pytest.fixture(scope="session")
def axes():
    return (
        EnergyAxis.from_bounds(0.7, 10, 5),
        EnergyAxis.from_bounds(0.5, 20, 8, name="energy_true"),
    )

"""GADF DL3 readers and writers: index, events, GTI, IRFs and observations.

Plain numpy/astropy/xarray (no Dask). The IRF classes live in `gdask.dl3.irf`;
their names (``IRF_CLASSES``, ``read_irf``, ``EffectiveArea2D``...) are also
reachable here, forwarded lazily so that this package never depends on the
import order of its sub-packages.
"""

from __future__ import annotations

from typing import Any

from gdask.dl3 import irf
from gdask.dl3.events import EventList
from gdask.dl3.gti import GTI
from gdask.dl3.index import DL3Index, HDULocation
from gdask.dl3.observation import (
    IRF_TYPES,
    Observation,
    read_observation,
    read_observations,
    write_observations,
)

__all__ = [
    "DL3Index",
    "HDULocation",
    "EventList",
    "GTI",
    "Observation",
    "IRF_TYPES",
    "read_observation",
    "read_observations",
    "write_observations",
    "irf",
]


def __getattr__(name: str) -> Any:
    # forward IRF names (IRF_CLASSES, read_irf, EffectiveArea2D, ...) to gdask.dl3.irf
    if not name.startswith("_") and hasattr(irf, name):
        return getattr(irf, name)
    raise AttributeError(f"module 'gdask.dl3' has no attribute {name!r}")

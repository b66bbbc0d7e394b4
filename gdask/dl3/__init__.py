"""GADF DL3 readers and writers: index, events, GTI, IRFs and observations.

Plain numpy/astropy/xarray (no Dask). The IRF classes live in `gdask.dl3.irf`;
their names (``IRF_CLASSES``, ``read_irf``, ``EffectiveArea2D``...) are also
reachable here. Every name is imported on first use, so that a cheap command
(planning an up-to-date re-ingest needs only `DL3Index`) does not pay for
xarray and the IRF classes.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DL3Index",
    "HDULocation",
    "EventList",
    "GTI",
    "Observation",
    "ObservationInfo",
    "IRF_TYPES",
    "read_observation",
    "read_observations",
    "write_observations",
    "irf",
]

_WHERE = {
    "DL3Index": "index",
    "HDULocation": "index",
    "EventList": "events",
    "GTI": "gti",
    "Observation": "observation",
    "ObservationInfo": "observation_info",
    "IRF_TYPES": "observation",
    "read_observation": "observation",
    "read_observations": "observation",
    "write_observations": "observation",
}


def __getattr__(name: str) -> Any:
    if name == "irf":
        return importlib.import_module("gdask.dl3.irf")
    if name in _WHERE:
        return getattr(importlib.import_module(f"gdask.dl3.{_WHERE[name]}"), name)
    if not name.startswith("_"):
        irf = importlib.import_module("gdask.dl3.irf")
        if hasattr(irf, name):  # IRF names (IRF_CLASSES, read_irf, EffectiveArea2D, ...)
            return getattr(irf, name)
    raise AttributeError(f"module 'gdask.dl3' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

"""Term kind ``"bench-faked-map"`` of bench_fit_scaling.py: a template map dataset with faked counts.

``TermSpec("bench-faked-map", name, source=<template DL4 FITS>, models,
options={"counts": <.npy of shape (N, energy, lat, lon)>, "index": i})`` builds
gdask's ordinary `MapTerm` on the template's IRFs, background and masks with
counts ``counts[i]``. The template is read once per process and the counts file
memory-mapped, so N terms cost one FITS read. Import this module on the
workers with ``Coordinator(..., preload=["_faked_terms"])``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gdask.datasets import MapDataset
from gdask.likelihood.map import MapTerm
from gdask.likelihood.term import TermSpec, register_term
from gdask.models import Models

KIND = "bench-faked-map"


@lru_cache(maxsize=4)
def _template(path: str) -> MapDataset:
    return MapDataset.read(path)


@lru_cache(maxsize=4)
def _counts(path: str) -> np.ndarray:
    return np.load(path, mmap_mode="r")


@register_term(KIND)
def build_faked_map_term(spec: TermSpec) -> MapTerm:
    """The `MapTerm` of the template with counts ``counts[index]``."""
    template = _template(spec.source)
    counts = np.asarray(_counts(spec.options["counts"])[int(spec.options["index"])], dtype=float)
    ds = template.ds.copy(deep=False)
    da = ds["counts"]
    ds["counts"] = (da.dims, counts.reshape(da.shape), dict(da.attrs))
    ds.attrs = {**template.ds.attrs, "name": spec.name}
    return MapTerm(MapDataset.from_dataset(ds), Models.from_dict(spec.models), name=spec.name)

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


def _array_bytes(obj: object, seen: set[int], depth: int = 0) -> int:
    """Bytes of the distinct numpy buffers reachable from ``obj`` (views counted once)."""
    if isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        if id(base) in seen:
            return 0
        seen.add(id(base))
        return int(base.nbytes)
    if depth > 6 or isinstance(obj, (str, bytes, int, float, type)) or id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, dict):
        items = list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = list(obj)
    elif hasattr(obj, "__dict__"):
        items = list(vars(obj).values())
    elif hasattr(obj, "__slots__"):
        items = [getattr(obj, s, None) for s in obj.__slots__]
    else:
        return 0
    return sum(_array_bytes(v, seen, depth + 1) for v in items)


def group_memory(group: object, _: object) -> dict[str, float]:
    """Per-term array bytes (shared template arrays counted once per group) and this
    process's resident set size and CPU seconds (a `Coordinator.map_groups` payload)."""
    import resource

    terms = group.terms  # type: ignore[attr-defined]
    seen: set[int] = set()
    own = [_array_bytes(t, set()) for t in terms]
    shared_total = sum(_array_bytes(t, seen) for t in terms)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/statm") as fh:
        rss = int(fh.read().split()[1]) * resource.getpagesize()
    return {
        "n_terms": len(terms),
        "term_bytes_max": float(max(own)),
        "group_bytes_distinct": float(shared_total),
        "rss": float(rss),
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "minflt": float(ru.ru_minflt),
    }


def process_usage() -> dict[str, float]:
    """CPU seconds, minor page faults and RSS of the calling process (for ``client.run``)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/statm") as fh:
        rss = int(fh.read().split()[1]) * resource.getpagesize()
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "minflt": float(ru.ru_minflt), "rss": float(rss)}

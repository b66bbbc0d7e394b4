"""Run selection from the archive store's observation index (``observations`` of the config).

`select_obs_ids` applies the OBS_ID list, the pointing cone, the time range and the
index-column rules (numeric ranges, or values compared by `column_matches`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gdask.config import AnalysisConfig
from gdask.errors import SelectionError

__all__ = ["select_obs_ids", "column_matches"]


def _index_times(index, prefix: str):
    from astropy.time import Time

    dates = [str(d) for d in index[f"DATE-{prefix}"].values]
    clocks = [str(t) for t in index[f"TIME-{prefix}"].values]
    return Time([f"{d}T{t}" for d, t in zip(dates, clocks, strict=True)], scale="utc")


def _as_time(value: str | float):
    from astropy.time import Time

    return (
        Time(value, format="mjd", scale="utc")
        if isinstance(value, float)
        else Time(value, scale="utc")
    )


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    return str(value).strip()


def column_matches(values: np.ndarray, wanted: Sequence[str | float]) -> np.ndarray:
    """Rows of an index column equal to any of ``wanted`` (strings compared as trimmed text,
    numbers numerically where the column is numeric, else as text).

    Works for every dtype an index column can have (numpy ``StringDType``, fixed-width
    unicode or bytes, object, numbers).

    Examples
    --------
    >>> column_matches(np.array(["Crab", "Off data"]), ["Crab"]).tolist()
    [True, False]
    >>> column_matches(np.array([23523, 23526]), ["23526", 23523]).tolist()
    [True, True]
    """
    values = np.asarray(values)
    text = np.array([_as_text(v) for v in values.ravel()], dtype=object).reshape(values.shape)
    keep = np.zeros(values.shape, dtype=bool)
    numeric = values.dtype.kind in "iuf"
    for w in wanted:
        if numeric and not isinstance(w, str):
            keep |= values == w
        else:
            keep |= text == _as_text(w)
    return keep


def select_obs_ids(config: AnalysisConfig, store) -> list[int]:
    """OBS_IDs of the archive store matching ``config.observations`` (sorted).

    Raises
    ------
    SelectionError
        Unknown OBS_IDs, missing index columns, or nothing selected.
    """
    from astropy.coordinates import SkyCoord

    sel = config.observations
    index = store.index()
    ids = np.asarray(index["obs"].values, dtype=np.int64)
    keep = np.ones(ids.size, dtype=bool)
    if sel.obs_ids is not None:
        missing = sorted(set(sel.obs_ids) - set(ids.tolist()))
        if missing:
            raise SelectionError(
                f"OBS_IDs not in the archive store: {missing}",
                file=str(store.path),
                field="observations.obs_ids",
            )
        keep &= np.isin(ids, sel.obs_ids)
    if sel.cone is not None:
        c = sel.cone
        for col in ("RA_PNT", "DEC_PNT"):
            if col not in index:
                raise SelectionError(
                    f"the index has no {col} column",
                    file=str(store.path),
                    field="observations.cone",
                )
        pnt = SkyCoord(index["RA_PNT"].values, index["DEC_PNT"].values, unit="deg", frame="icrs")
        center = SkyCoord(c.lon, c.lat, unit="deg", frame=c.frame)
        keep &= pnt.separation(center).deg < c.radius
    if sel.time is not None:
        for col in ("DATE-OBS", "TIME-OBS", "DATE-END", "TIME-END"):
            if col not in index:
                raise SelectionError(
                    f"the index has no {col} column",
                    file=str(store.path),
                    field="observations.time",
                )
        if sel.time.start is not None:
            keep &= np.asarray(_index_times(index, "OBS") >= _as_time(sel.time.start))
        if sel.time.stop is not None:
            keep &= np.asarray(_index_times(index, "END") <= _as_time(sel.time.stop))
    for name, rule in sel.columns:
        if name not in index:
            raise SelectionError(
                f"the index has no column {name!r}; it has {sorted(index.data_vars)}",
                file=str(store.path),
                field=f"observations.columns.{name}",
            )
        values = index[name].values
        if rule[0] == "in":
            match = column_matches(values, rule[1])
            if keep.any() and not (keep & match).any():
                present = sorted({_as_text(v) for v in values[keep]})
                shown = ", ".join(repr(v) for v in present[:8]) + (
                    ", ..." if len(present) > 8 else ""
                )
                raise SelectionError(
                    f"no selected observation has {name} in {list(rule[1])} (it has: {shown})",
                    file=str(store.path),
                    field=f"observations.columns.{name}",
                )
            keep &= match
        else:
            try:
                v = values.astype(float)
            except (TypeError, ValueError) as exc:
                raise SelectionError(
                    f"column {name!r} is not numeric; select it by value(s)",
                    file=str(store.path),
                    field=f"observations.columns.{name}",
                ) from exc
            if rule[1] is not None:
                keep &= v >= rule[1]
            if rule[2] is not None:
                keep &= v <= rule[2]
    if not keep.any():
        raise SelectionError(
            f"the selection matches none of the {ids.size} observations in the store",
            file=str(store.path),
            field="observations",
        )
    return sorted(int(i) for i in ids[keep])

"""Time-sliced reduction: observations cut into time intervals, then reduced (light-curve bins).

Gammapy 2.1's ``Observations.select_time`` semantics, on gdask observations:

* an observation enters an interval ``[start, stop)`` when its first GTI's
  start is ``<= stop`` and that GTI's stop is ``> start`` (Gammapy's
  ``obs.tstart``/``obs.tstop`` are the first GTI's);
* its events are those with ``start <= TIME < stop``;
* its GTIs are those overlapping the interval, clipped to it, so the livetime
  (summed GTI times DEADC) scales with the kept time.

Times are seconds since the observation's MJDREF (MET); `interval_met`
converts astropy times (any scale) to that frame. `reduce_time_sliced` makes
one 1D ON/OFF dataset per (interval, observation), as Gammapy's light-curve
recipe does, the pairs run as independent tasks (``client=None``: in-process).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from astropy.time import Time

from gdask.dl3.gti import GTI
from gdask.dl3.observation import Observation

__all__ = [
    "interval_met",
    "overlaps",
    "reduce_time_sliced",
    "select_gti",
    "select_time",
    "select_time_mask",
]


def interval_met(interval: Time | Sequence[Time], time_reference: Time) -> tuple[float, float]:
    """``(start, stop)`` of an astropy time interval in seconds since ``time_reference``.

    Examples
    --------
    >>> from astropy.time import Time
    >>> ref = Time(51910, format="mjd", scale="tt")
    >>> interval_met(Time(["2001-01-01T00:00", "2001-01-01T00:10"], scale="tt"), ref)
    (0.0, 600.0)
    """
    start, stop = interval[0], interval[1]
    return (
        float((start - time_reference).to_value("s")),
        float((stop - time_reference).to_value("s")),
    )


def select_time_mask(met: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Events with ``start <= met < stop`` (Gammapy's ``EventList.select_time``)."""
    met = np.asarray(met, dtype=float)
    return (met >= start) & (met < stop)


def select_gti(gti: GTI, start: float, stop: float) -> GTI:
    """The GTIs overlapping ``[start, stop]`` (MET s), clipped to it (Gammapy's ``GTI.select_time``)."""
    g_start, g_stop = gti.start, gti.stop
    keep = (g_start <= stop) & (g_stop > start)
    ds = gti.ds.isel(gti=np.flatnonzero(keep))
    for name, values in (("START", g_start[keep]), ("STOP", g_stop[keep])):
        attrs = {**ds[name].attrs, "units": "s"}
        ds[name] = ("gti", np.clip(values, start, stop), attrs)
    return GTI(ds, file=gti.file)


def overlaps(observation: Observation, start: float, stop: float) -> bool:
    """Whether Gammapy's ``Observations.select_time`` keeps ``observation`` for ``[start, stop)``."""
    gti = observation.gti
    return bool(gti.start[0] <= stop and gti.stop[0] > start)


def select_time(observation: Observation, start: float, stop: float) -> Observation:
    """The observation cut to ``[start, stop)`` (MET s): events selected, GTIs clipped.

    Parameters
    ----------
    observation : Observation
        With events and GTI; the IRFs are shared, not copied.
    start, stop : float
        Interval in seconds since the observation's MJDREF.

    Returns
    -------
    Observation
        A new observation; its livetime (summed GTI x DEADC) is that of the kept time.

    Examples
    --------
    >>> sub = select_time(obs, obs.gti.met_start, obs.gti.met_start + 600.0)  # doctest: +SKIP
    """
    events = observation.events.select_mask(select_time_mask(observation.events.met, start, stop))
    return dataclasses.replace(
        observation,
        events=events,
        gti=select_gti(observation.gti, start, stop),
        irfs=dict(observation.irfs),
        meta=dict(observation.meta),
    )


def _reduce_one(observation: Observation, start: float, stop: float, kwargs: dict[str, Any]):
    from gdask.reduce.convert import to_spectrum_dataset
    from gdask.reduce.spectrum import make_spectrum_onoff

    sub = select_time(observation, start, stop)
    ds = make_spectrum_onoff(sub, **kwargs)
    return to_spectrum_dataset(ds, gti=sub.gti, name=f"{observation.obs_id}_{start:.3f}")


def reduce_time_sliced(
    observations: Sequence[Observation],
    time_intervals: Sequence[Time],
    on_region: Any,
    energy_axis: Any,
    energy_axis_true: Any,
    *,
    client: Any = None,
    **kwargs: Any,
) -> list[list[Any]]:
    """One 1D ON/OFF dataset per (time interval, overlapping observation).

    Parameters
    ----------
    observations : sequence of Observation
    time_intervals : sequence of astropy Time pairs
        ``[start, stop)`` of each bin (any time scale).
    on_region, energy_axis, energy_axis_true
        As for `gdask.reduce.spectrum.make_spectrum_onoff`.
    client : dask.distributed.Client, optional
        Run the (interval, observation) pairs as tasks there; None: in-process.
    **kwargs
        Further arguments of `make_spectrum_onoff` (exclusion mask,
        containment correction, safe mask, region finder).

    Returns
    -------
    list of list of SpectrumDatasetOnOff
        Per interval, the datasets of its observations (empty when none overlaps),
        named ``"<OBS_ID>_<start MET>"``, each with its clipped GTI.

    Examples
    --------
    >>> per_bin = reduce_time_sliced(observations, intervals, on, e_reco, e_true)  # doctest: +SKIP
    """
    kw = dict(kwargs, on_region=on_region, energy_axis=energy_axis)
    kw["energy_axis_true"] = energy_axis_true
    jobs: list[tuple[int, Observation, float, float]] = []
    for i, interval in enumerate(time_intervals):
        for obs in observations:
            start, stop = interval_met(interval, obs.gti.time_reference)
            if overlaps(obs, start, stop):
                jobs.append((i, obs, start, stop))
    if client is None:
        results = [_reduce_one(obs, a, b, kw) for _, obs, a, b in jobs]
    else:
        futures = [client.submit(_reduce_one, obs, a, b, kw, pure=False) for _, obs, a, b in jobs]
        results = client.gather(futures)
    out: list[list[Any]] = [[] for _ in time_intervals]
    for (i, *_), ds in zip(jobs, results, strict=True):
        out[i].append(ds)
    return out

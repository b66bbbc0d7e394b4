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
recipe does; each run is one task (``client=None``: in-process) that reduces the
whole run once and then histograms each slice's events (see `_reduce_run`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from astropy.time import Time

from gdask.dl3.gti import GTI
from gdask.dl3.observation import Observation
from gdask.errors import DL3Error

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
    gti = _gti(observation)
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
    events = _events(observation).select_mask(
        select_time_mask(_events(observation).met, start, stop)
    )
    return dataclasses.replace(
        observation,
        events=events,
        gti=select_gti(_gti(observation), start, stop),
        irfs=dict(observation.irfs),
        meta=dict(observation.meta),
    )


def _reduce_one(observation: Observation, start: float, stop: float, kwargs: dict[str, Any]):
    """The generic path: the slice reduced as an observation of its own."""
    from gdask.reduce.convert import to_spectrum_dataset
    from gdask.reduce.spectrum import make_spectrum_onoff

    sub = select_time(observation, start, stop)
    ds = make_spectrum_onoff(sub, **kwargs)
    return to_spectrum_dataset(ds, gti=sub.gti, name=f"{observation.obs_id}_{start:.3f}")


def _event_masks(observation: Observation, kwargs: dict[str, Any]) -> tuple[Any, Any] | None:
    """Per-event ON and OFF membership of a run, or None when the fast path does not apply.

    Only for an extended ON region with full-enclosure IRFs (no RAD_MAX): the
    same finder and `region_contains` calls as `make_spectrum_onoff`.
    """
    from regions import PointSkyRegion

    from gdask.geometry import region_contains
    from gdask.reduce.reflected import ReflectedRegionsFinder, as_exclusion_mask
    from gdask.reduce.spectrum import observation_pointing

    on = kwargs["on_region"]
    if not hasattr(on, "center") or isinstance(on, PointSkyRegion):
        return None
    if observation.irfs["aeff"].point_like:
        return None
    finder = kwargs.get("region_finder") or ReflectedRegionsFinder()
    exclusion = as_exclusion_mask(kwargs.get("exclusion_mask"))
    off_regions, wcs = finder.run(on, observation_pointing(observation), exclusion)
    ra, dec = _events(observation).radec
    on_mask = region_contains(on, ra, dec)
    off_mask = (
        region_contains(list(off_regions), ra, dec, wcs=wcs)
        if off_regions
        else np.zeros(ra.size, bool)
    )
    return on_mask, off_mask


def _reduce_run(
    observation: Observation, slices: list[tuple[float, float]], kwargs: dict[str, Any]
) -> list[Any]:
    """All slices of one run: IRF parts, OFF regions and event membership computed once.

    The run is reduced whole (`make_spectrum_onoff`); each slice then takes
    the histogram of its events in ON and OFF, its livetime (clipped GTIs x
    DEADC) and the exposure scaled by ``livetime / run livetime`` (edisp, safe
    mask and alpha do not depend on time).  The membership is checked against
    the whole run's counts; any mismatch (or a point-like case) falls back to
    reducing each slice on its own.
    """
    from gdask.reduce.convert import to_spectrum_dataset
    from gdask.reduce.spectrum import make_spectrum_onoff, observation_livetime

    full = make_spectrum_onoff(observation, **kwargs)
    masks = _event_masks(observation, kwargs)
    axis = kwargs["energy_axis"]
    energy = _events(observation).energy.to_value("TeV")

    def hist(mask: np.ndarray) -> np.ndarray:
        idx = axis.coord_to_idx(energy[mask])
        return np.bincount(idx[idx >= 0], minlength=axis.nbin).astype(np.int64)

    ok = masks is not None
    if masks is not None:
        on_mask, off_mask = masks
        ok = np.array_equal(hist(on_mask), full["counts"].values) and np.array_equal(
            hist(off_mask), full["counts_off"].values
        )
    if not ok:
        return [_reduce_one(observation, a, b, kwargs) for a, b in slices]
    lt_full = float(full["livetime"].values)
    met = _events(observation).met
    out = []
    for start, stop in slices:
        sel = select_time_mask(met, start, stop)
        gti = select_gti(_gti(observation), start, stop)
        sub = dataclasses.replace(observation, gti=gti)
        lt = observation_livetime(sub)
        ds = full.copy(deep=True)
        ds["counts"].values[:] = hist(sel & on_mask)
        ds["counts_off"].values[:] = hist(sel & off_mask)
        scale = lt / lt_full if lt_full > 0 else 0.0
        ds["exposure"].values[:] = full["exposure"].values * scale
        ds["edisp_exposure"].values[:] = full["edisp_exposure"].values * scale
        ds["livetime"] = ((), lt, full["livetime"].attrs)
        out.append(to_spectrum_dataset(ds, gti=gti, name=f"{observation.obs_id}_{start:.3f}"))
    return out


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
    jobs: dict[int, tuple[Observation, list[tuple[int, float, float]]]] = {}
    for i, interval in enumerate(time_intervals):
        for k, obs in enumerate(observations):
            start, stop = interval_met(interval, _gti(obs).time_reference)
            if overlaps(obs, start, stop):
                jobs.setdefault(k, (obs, []))[1].append((i, start, stop))
    runs = [jobs[k] for k in sorted(jobs)]
    if client is None:
        results = [_reduce_run(obs, [(a, b) for _, a, b in sl], kw) for obs, sl in runs]
    else:
        futures = [
            client.submit(_reduce_run, obs, [(a, b) for _, a, b in sl], kw, pure=False)
            for obs, sl in runs
        ]
        results = client.gather(futures)
    out: list[list[Any]] = [[] for _ in time_intervals]
    for (_, sl), datasets in zip(runs, results, strict=True):
        for (i, _, _), ds in zip(sl, datasets, strict=True):
            out[i].append(ds)
    return out


def _events(observation: Any) -> Any:
    """The observation's event list (an error naming the OBS_ID when it has none)."""
    if observation.events is None:
        raise DL3Error(
            "the observation has no event list", obs_id=observation.obs_id, field="EVENTS"
        )
    return observation.events


def _gti(observation: Any) -> GTI:
    """The observation's GTI table (an error naming the OBS_ID when it has none)."""
    if observation.gti is None:
        raise DL3Error("the observation has no GTI table", obs_id=observation.obs_id, field="GTI")
    gti: GTI = observation.gti
    return gti

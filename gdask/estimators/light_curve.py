"""Light curves: the source's norm fitted per time bin (and energy bin), as flux points.

Gammapy 2.1's ``LightCurveEstimator`` semantics (``reoptimize=False``):

* a dataset belongs to a time bin when its GTIs lie inside it (1e-6 s slack);
  time bins without any dataset are dropped from the light curve;
* in each (time, energy) bin the norm multiplying the source's amplitude is
  fitted on the reco bins inside the energy bin (safe mask applied), every
  other parameter frozen: `gdask.estimators.norm.estimate_norm` gives value,
  symmetric and asymmetric errors, the upper limit at ``n_sigma_ul``, TS,
  ``stat_scan`` and per dataset ``counts``, ``npred``, ``npred_excess``;
* per-dataset quantities are laid out on all datasets of the light curve
  (NaN where a dataset is not in the bin), as Gammapy's ``dataset`` axis.

Time bins are independent: each is one task building its own likelihood terms
from its (small) datasets, in-process with ``client=None`` or on a Dask
cluster; a task lost with its worker is recomputed by the scheduler and, the
estimation being a pure function of the datasets and the parameter vector,
gives the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.time import Time

from gdask.errors import ConfigError

from .flux_points import FluxPoints, FluxPointsEstimator, _reference_fluxes, snap_edges
from .norm import estimate_norm, norm_positions

__all__ = ["LightCurve", "LightCurveEstimator", "datasets_in_interval"]

#: per (time, energy) bin scalars
PER_BIN = ("norm", "norm_err", "norm_errn", "norm_errp", "norm_ul", "ts", "stat", "stat_null")
#: per (time, energy, dataset)
PER_DATASET = ("counts", "npred", "npred_excess")
#: Gammapy's ``atol`` of the dataset/time-bin comparison (s)
TIME_ATOL = 1e-6


@dataclass
class LightCurve(FluxPoints):
    """A light curve as arrays (Gammapy's ``FluxPoints`` with a time axis).

    The `~gdask.estimators.flux_points.FluxPoints` fields and properties
    (``sqrt_ts``, ``is_ul``, ``quantity``) with a leading time axis on every
    array, plus the time bins.

    Attributes
    ----------
    time_min, time_max : astropy.time.Time
        Bin edges (only the bins holding data), keyword-only.
    energy_edges : ndarray
        Energy bin edges in TeV.
    data : dict
        ``(n_time, n_energy)``: `PER_BIN` entries, ``success``, ``ref_dnde``
        (cm-2 s-1 TeV-1), ``ref_flux`` (cm-2 s-1), ``ref_eflux`` and
        ``ref_e2dnde`` (TeV cm-2 s-1); ``(n_time, n_energy, n_datasets)``:
        `PER_DATASET`; ``(n_time, n_energy, n_scan)``: ``norm_scan``, ``stat_scan``.
    datasets : list of str
        Names along the dataset axis.
    """

    time_min: Time = field(kw_only=True)
    time_max: Time = field(kw_only=True)

    def __len__(self) -> int:
        return len(self.time_min)

    @property
    def time_mid(self) -> Time:
        return self.time_min + 0.5 * (self.time_max - self.time_min)


def datasets_in_interval(gtis: Sequence[Any], start: Time, stop: Time) -> list[int]:
    """Indices of the GTIs (`gdask.dl3.GTI`) lying inside ``[start, stop]`` (Gammapy's ``select_time``)."""
    out = []
    for i, gti in enumerate(gtis):
        if gti is None or len(gti) == 0:
            continue
        ref = gti.time_reference
        lo = (start - ref).to_value("s") - TIME_ATOL
        hi = (stop - ref).to_value("s") + TIME_ATOL
        if gti.met_start >= lo and gti.met_stop <= hi:
            out.append(i)
    return out


def estimate_time_bin(
    datasets: Sequence[Any], models: Any, source: str, edges: np.ndarray, opts: dict[str, Any]
) -> list[dict[str, Any]]:
    """The flux points of one time bin: per energy bin, `estimate_norm` on fresh terms.

    Parameters
    ----------
    datasets : sequence of SpectrumDatasetOnOff
        The datasets of the bin.
    models : Models
        The joint models (the reference: norm 1 at their current values).
    source : str
        The SkyModel whose norm is fitted.
    edges : ndarray
        Energy bin edges (TeV), already on the datasets' reco edges.
    opts : dict
        Keywords of `estimate_norm`.
    """
    from gdask.likelihood.spectrum import SpectrumOnOffTerm

    values = np.asarray(models.parameters.value, float)
    pos = norm_positions(models, source)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        terms = [
            SpectrumOnOffTerm(d, models, energy_min=lo * (1 - 1e-6), energy_max=hi * (1 + 1e-6))
            for d in datasets
        ]
        rows.append(estimate_norm(terms, values, pos, **opts))
    return rows


class LightCurveEstimator(FluxPointsEstimator):
    """Light curve of one source from 1D datasets (Gammapy's ``LightCurveEstimator``).

    Parameters
    ----------
    time_intervals : sequence of astropy Time pairs
        ``[start, stop]`` of each bin.
    source : str
        Name of the SkyModel whose norm is fitted.
    energy_edges : sequence of float
        Energy bin edges in TeV (snapped to the datasets' reco edges).
    selection_optional : {"all"} or list of {"errn-errp", "ul", "scan"}, optional
    n_sigma, n_sigma_ul : float
        Error and upper-limit widths (Gammapy's 1 and 2).
    norm_scan : sequence of float, optional
        Norm grid of ``stat_scan`` (default Gammapy's 11 log values 0.2-5).
        (These keywords are `FluxPointsEstimator`'s.)

    Examples
    --------
    >>> est = LightCurveEstimator(intervals, "pks2155", [0.4, 20], selection_optional="all")  # doctest: +SKIP
    >>> lc = est.run(datasets, models)  # doctest: +SKIP
    >>> lc.quantity("flux"), lc.is_ul  # doctest: +SKIP
    """

    def __init__(
        self,
        time_intervals: Sequence[Time],
        source: str,
        energy_edges: Sequence[float],
        **kwargs: Any,
    ) -> None:
        if len(time_intervals) == 0:
            raise ConfigError("no time intervals given", field="time_intervals")
        super().__init__(source, energy_edges, **kwargs)
        self.time_intervals = [Time(t) for t in time_intervals]

    def run(self, datasets: Sequence[Any], models: Any, client: Any = None) -> LightCurve:
        """Estimate every time bin holding data (one task per bin).

        Parameters
        ----------
        datasets : sequence of SpectrumDatasetOnOff
            Each with its GTI (e.g. from `gdask.reduce.time_slices.reduce_time_sliced`).
        models : Models
            The models at the reference values.
        client : distributed.Client, optional
            Run the bins there; None: in-process.
        """
        datasets = list(datasets)
        if not datasets:
            raise ConfigError("no datasets given", field="datasets")
        names = [d.name for d in datasets]
        gtis = [getattr(d, "gti", None) for d in datasets]
        edges = snap_edges(
            self.energy_edges, datasets[0].energy_axis.quantity_edges.to_value("TeV")
        )
        norm_positions(models, self.source)  # fail early on a bad source
        bins = []
        for interval in self.time_intervals:
            idx = datasets_in_interval(gtis, interval[0], interval[1])
            if idx:
                bins.append((interval, idx))
        if not bins:
            raise ConfigError("no dataset lies inside any time interval", field="time_intervals")
        opts = self._opts()
        groups = [[datasets[i] for i in idx] for _, idx in bins]
        if client is None:
            rows = [estimate_time_bin(g, models, self.source, edges, opts) for g in groups]
        else:
            futs = [
                client.submit(estimate_time_bin, g, models, self.source, edges, opts, pure=False)
                for g in groups
            ]
            rows = client.gather(futs)
        data = _assemble(rows, [idx for _, idx in bins], len(datasets))
        ref = _reference_fluxes(models[self.source].spectral_model, edges)
        for key, value in ref.items():
            data[key] = np.broadcast_to(value, (len(bins), value.size)).copy()
        t_min = Time([b[0][0] for b in bins])
        t_max = Time([b[0][1] for b in bins])
        return LightCurve(
            edges, data, names, self.n_sigma, self.n_sigma_ul, time_min=t_min, time_max=t_max
        )


def _assemble(rows: list[list[dict[str, Any]]], members: list[list[int]], n_datasets: int) -> dict:
    n_time, n_energy = len(rows), len(rows[0])
    data: dict[str, np.ndarray] = {}
    first = rows[0][0]
    for key in first:
        if key in PER_DATASET:
            arr = np.full((n_time, n_energy, n_datasets), np.nan)
            for t, (row, idx) in enumerate(zip(rows, members, strict=True)):
                for e, r in enumerate(row):
                    arr[t, e, idx] = r[key]
        else:
            arr = np.array([[r[key] for r in row] for row in rows])
        data[key] = arr
    return data

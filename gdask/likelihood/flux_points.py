"""Flux points as a likelihood term: external SEDs joining a joint fit (Gammapy's FluxPointsDataset).

The model of a point is the sum of the dN/dE of the SkyModels applying to the
dataset at the point's ``e_ref`` (Gammapy's ``flux_pred`` for flux points).
Statistics (Gammapy 2.1's ``FIT_STATISTICS_REGISTRY`` for flux points):

``chi2``
    ``sum ((dnde - model) / sigma)**2`` over points with a finite ``dnde`` that
    are not upper limits; ``sigma = dnde_err`` or ``(errn + errp) / 2``.
``distrib``
    asymmetric Gaussians (``errp`` when the model is above the point, else
    ``errn``; ``dnde_err`` where those are NaN) and, for upper limits,
    ``2 log(erfc((ul - model) / ul) / erfc(1))``.
``profile``
    the likelihood profile of each point: ``|stat_scan - stat|`` against
    ``norm_scan``, interpolated by a quadratic spline (extrapolated), at
    ``model / ref_dnde``; needs a ``likelihood`` SED file.

``mask_safe``/``mask_fit`` columns of the file (Gammapy's FluxPointsDataset
write) are honoured.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.interpolate import make_interp_spline
from scipy.special import erfc

from gdask.datasets.sed import FluxPoints, read_sed
from gdask.errors import ConfigError
from gdask.likelihood.term import LikelihoodTerm, TermSpec, register_term
from gdask.models import Models, ParameterLayout, SkyModel

__all__ = ["FLUX_POINTS_STATS", "FluxPointsTerm", "build_flux_points_term"]

FLUX_POINTS_STATS = ("chi2", "distrib", "profile")


class FluxPointsTerm(LikelihoodTerm):
    """Likelihood term of one set of flux points.

    Parameters
    ----------
    data : FluxPoints
        The points (e.g. `gdask.datasets.sed.read_sed`).
    models : Models
    name : str
    stat : {"chi2", "distrib", "profile"}
    mask : array of bool, optional
        Points to use (default: all; combined with the statistic's valid points).
    layout : ParameterLayout, optional

    Examples
    --------
    >>> term = FluxPointsTerm(read_sed("hawc.fits"), models, name="hawc")  # doctest: +SKIP
    """

    def __init__(
        self,
        data: FluxPoints,
        models: Models,
        *,
        name: str,
        stat: str = "chi2",
        mask: np.ndarray | None = None,
        layout: ParameterLayout | None = None,
    ) -> None:
        if stat not in FLUX_POINTS_STATS:
            raise ConfigError(
                f"unknown flux points statistic {stat!r}; use one of {FLUX_POINTS_STATS}",
                field="stat",
            )
        self.name, self.stat_type = str(name), stat
        self.layout = layout = layout if layout is not None else models.layout()
        self.n_parameters = layout.n_parameters
        self._to_canonical = layout.to_canonical
        d = data.data
        self.e_ref = data.e_ref
        n = self.e_ref.size
        dnde = data.quantity("dnde") if "norm" in d else np.full(n, np.nan)
        is_ul = data.is_ul
        self.dnde = dnde
        self.is_ul = is_ul
        if stat == "chi2":
            valid = ~is_ul & np.isfinite(dnde)
            if "norm_err" in d:
                sigma = data.quantity("dnde", "_err")
            else:
                sigma = (data.quantity("dnde", "_errn") + data.quantity("dnde", "_errp")) / 2
            self._sigma = sigma
        elif stat == "distrib":
            ul = data.quantity("dnde", "_ul") if "norm_ul" in d else np.full(n, np.nan)
            valid = (is_ul & np.isfinite(ul)) | np.isfinite(dnde)
            err = data.quantity("dnde", "_err") if "norm_err" in d else np.full(n, np.nan)
            errn = data.quantity("dnde", "_errn") if "norm_errn" in d else np.full(n, np.nan)
            errp = data.quantity("dnde", "_errp") if "norm_errp" in d else np.full(n, np.nan)
            self._errn = np.where(np.isnan(errn), err, errn)
            self._errp = np.where(np.isnan(errp), err, errp)
            self._ul = ul
        else:
            if "stat_scan" not in d or "ref_dnde" not in d:
                raise ConfigError(
                    f"flux points {self.name!r}: the profile statistic needs a likelihood "
                    "SED file (norm_scan, stat_scan, ref_dnde)",
                    field="stat",
                )
            scan = np.abs(np.asarray(d["stat_scan"], float) - np.asarray(d["stat"], float)[:, None])
            norms = np.broadcast_to(np.asarray(d["norm_scan"], float), scan.shape)
            valid = np.all(np.isfinite(scan), axis=1)
            self._ref = np.asarray(d["ref_dnde"], float)
            self._splines = [
                make_interp_spline(norms[i], scan[i], k=2) if valid[i] else None for i in range(n)
            ]
        self.mask = valid if mask is None else valid & np.asarray(mask, bool)
        self._sources: list[tuple[Any, np.ndarray]] = []
        for comp in layout.for_dataset(self.name):
            m = models[comp.name]
            if isinstance(m, SkyModel) and m.spectral_model is not None:
                sp = comp.part("spectral")
                self._sources.append((m.spectral_model, np.arange(sp.start, sp.stop)))
        own = layout.positions(self.name)
        self.depends_on = own

    def _model(self, values: np.ndarray, grad: bool) -> tuple[np.ndarray, list]:
        e = self.e_ref
        total = np.zeros(e.size)
        grads = []
        for sm, pos in self._sources:
            theta = values[pos] * self._to_canonical[pos]
            total += np.asarray(sm.evaluate_theta(e, theta=theta), float)
            if grad:
                grads.append(np.asarray(sm.evaluate_grad_theta(e, theta=theta), float))
        return total, grads

    def _stat_and_dmodel(self, model: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-point statistic and its derivative with respect to the model dnde."""
        n = model.size
        stat, dstat = np.zeros(n), np.zeros(n)
        m = self.mask
        if self.stat_type == "chi2":
            r = (self.dnde - model) / self._sigma
            stat[m] = r[m] ** 2
            dstat[m] = (-2 * r / self._sigma)[m]
        elif self.stat_type == "distrib":
            with np.errstate(invalid="ignore"):
                scale = np.where(model >= self.dnde, self._errp, self._errn)
                r = (model - self.dnde) / scale
                g = np.isfinite(self.dnde) & m
                stat[g] = r[g] ** 2
                dstat[g] = (2 * r / scale)[g]
                u = self.is_ul & m
                z = (self._ul[u] - model[u]) / self._ul[u]
                stat[u] = 2 * np.log(erfc(z) / erfc(1.0))
                dstat[u] = 2 * (2 / np.sqrt(np.pi)) * np.exp(-(z**2)) / erfc(z) / self._ul[u]
            bad = ~np.isfinite(stat)
            stat[bad], dstat[bad] = 0.0, 0.0
        else:
            for i in np.flatnonzero(m):
                x = model[i] / self._ref[i]
                sp = self._splines[i]
                assert sp is not None  # masked out where the scan is not finite
                stat[i] = float(sp(x))
                dstat[i] = float(sp.derivative()(x)) / self._ref[i]
        return stat, dstat

    def stat(self, values: np.ndarray, request: Any = None) -> float:
        _no_request(request, self.name)
        model, _ = self._model(np.asarray(values, float), grad=False)
        return float(self._stat_and_dmodel(model)[0].sum())

    def stat_and_grad(self, values: np.ndarray, request: Any = None) -> tuple[float, np.ndarray]:
        _no_request(request, self.name)
        values = np.asarray(values, float)
        model, grads = self._model(values, grad=True)
        stat, dstat = self._stat_and_dmodel(model)
        out = np.zeros(self.n_parameters)
        for (_, pos), g in zip(self._sources, grads, strict=True):
            out[pos] += g @ dstat
        return float(stat.sum()), out * self._to_canonical

    def npred(self, values: np.ndarray) -> np.ndarray:
        """The model dN/dE at the points (cm-2 s-1 TeV-1)."""
        return self._model(np.asarray(values, float), grad=False)[0]

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "stat_type": self.stat_type, "e_ref": self.e_ref.copy()}


@register_term("flux_points")
def build_flux_points_term(spec: TermSpec) -> FluxPointsTerm:
    """Build a `FluxPointsTerm` (``kind="flux_points"``) from a GADF SED file.

    ``spec.source`` is the SED file (FITS or ECSV); ``spec.options`` may hold
    ``stat`` (``"chi2"``, ``"distrib"``, ``"profile"``).
    """
    unknown = set(spec.options) - {"stat"}
    if unknown:
        raise ConfigError(
            f"unknown flux_points options {sorted(unknown)}; known: ['stat']", field="options"
        )
    data = read_sed(spec.source)
    mask = None
    from astropy.table import Table

    if str(spec.source).lower().endswith((".fits", ".fits.gz", ".ecsv")):
        cols = Table.read(spec.source).colnames
        if "mask_safe" in cols or "mask_fit" in cols:
            t = Table.read(spec.source)
            mask = np.ones(len(t), bool)
            for c in ("mask_safe", "mask_fit"):
                if c in cols:
                    mask &= np.asarray(t[c], bool)
    return FluxPointsTerm(
        data,
        Models.from_dict(spec.models),
        name=spec.name,
        stat=spec.options.get("stat", "chi2"),
        mask=mask,
        layout=spec.layout,
    )


def _no_request(request: Any, name: str) -> None:
    """Flux-point terms have no energy bins to select: a request is an error, not ignored."""
    if request is not None:
        raise ConfigError(
            f"flux points {name!r}: a term of flux points takes no request", field="request"
        )

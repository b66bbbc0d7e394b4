"""Excess, significance, flux and upper-limit maps within a correlation radius.

Gammapy's ExcessMapEstimator semantics: reco-energy bins are grouped by
``energy_edges`` (safe bins only); counts, background (and, on/off, the OFF
counts and the background that defines alpha) are summed within a top-hat
of ``correlation_radius`` around each pixel; the significance is Li & Ma's
(Cash for a known background, WStat for on/off, from `gdask.stats`); the
flux divides the excess by the mean reco-energy exposure within the
top-hat (reference spectrum a power law of index 2, dispersion at the grid
centre).  Pixels outside the safe (and fit) mask are NaN.

Numerics are array functions (`tophat_kernel`, `correlate`,
`cash_excess_upper_limit`, `wstat_excess_upper_limit`); `ExcessMapEstimator`
applies them to a `~gdask.datasets.MapDataset` / `MapDatasetOnOff`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import fftconvolve
from scipy.special import lambertw

from gdask.errors import GdaskError
from gdask.estimators.maps_io import EstimatorMaps
from gdask.estimators.ts_map import energy_groups, reco_exposure_center_edisp
from gdask.likelihood.psf_kernel import round_up_to_odd
from gdask.models import PowerLawSpectralModel
from gdask.stats import cash_significance, cash_ts, wstat, wstat_significance, wstat_ts

__all__ = [
    "ExcessMapEstimator",
    "tophat_kernel",
    "correlate",
    "cash_excess_upper_limit",
    "wstat_excess_upper_limit",
]

Array = NDArray[np.float64]


def tophat_kernel(radius_pix: float, npix: int) -> Array:
    """``(npix, npix)`` disk of ones where the pixel centre is within ``radius_pix``.

    Examples
    --------
    >>> int(tophat_kernel(1.0, 3).sum())
    5
    """
    c = (npix - 1) / 2
    y, x = np.mgrid[:npix, :npix] - c
    return (x**2 + y**2 <= radius_pix**2).astype(float)


def correlate(images: Array, kernel: Array) -> Array:
    """Sum of each ``(..., ny, nx)`` image within the kernel (zeros outside the image)."""
    images = np.asarray(images, float)
    k = kernel.reshape((1,) * (images.ndim - 2) + kernel.shape)
    return fftconvolve(images, k, mode="same", axes=(-2, -1))


def cash_excess_upper_limit(n_on: Array, mu_bkg: Array, n_sigma: float = 2.0) -> Array:
    """Excess upper limit where the Cash statistic is ``n_sigma**2`` above its minimum.

    Closed form through the lower branch of the Lambert W function
    (``mu / n - 1 - log(mu / n) = n_sigma**2 / (2 n)``).

    Examples
    --------
    >>> round(float(cash_excess_upper_limit(np.array([0.0]), np.array([1.0]))[0]), 6)
    2.0
    """
    n_on = np.asarray(n_on, float)
    c = n_sigma**2 / 2
    out = np.full(n_on.shape, c)
    pos = n_on > 0
    on = n_on[pos]
    mu = -on * lambertw(-np.exp(-c / on - 1), k=-1).real
    out[pos] = mu - on + (on - np.asarray(mu_bkg, float)[pos])
    return out


def wstat_excess_upper_limit(
    n_on: Array, n_off: Array, alpha: Array, n_sigma: float = 2.0, n_iter: int = 80
) -> Array:
    """Excess upper limit where WStat is ``n_sigma**2`` above its minimum (bisection)."""
    n_on, n_off, alpha = (np.asarray(a, float) for a in (n_on, n_off, alpha))
    best = n_on - alpha * n_off
    err = np.sqrt(n_on + alpha**2 * n_off)
    target = wstat(n_on, n_off, alpha, best) + n_sigma**2
    lo = best.copy()
    hi = best + 2 * n_sigma * (err + 1)
    ok = wstat(n_on, n_off, alpha, hi) >= target
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        above = wstat(n_on, n_off, alpha, mid) >= target
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return np.where(ok, 0.5 * (lo + hi), np.nan)


@dataclass
class ExcessMapEstimator:
    """Correlated excess, Li & Ma significance, flux and upper-limit maps.

    Parameters
    ----------
    correlation_radius : float
        Top-hat radius (deg).
    energy_edges : sequence, optional
        Reco-energy group edges (TeV or Quantity); default one group per bin.
    n_sigma, n_sigma_ul : float
        Error and upper-limit levels.
    spectral_model : SpectralModel, optional
        Reference spectrum of the flux (power law of index 2).

    Examples
    --------
    >>> est = ExcessMapEstimator(correlation_radius=0.1, energy_edges=[0.7, 10])
    >>> # maps = est.run(dataset); maps["sqrt_ts"]
    """

    correlation_radius: float = 0.1
    energy_edges: Any = None
    n_sigma: float = 1.0
    n_sigma_ul: float = 2.0
    spectral_model: Any = None

    def kernel(self, geom: Any) -> Array:
        """Top-hat of ``correlation_radius`` on ``geom``'s pixels."""
        binsz = float(np.mean(np.abs(geom.wcs.wcs.cdelt)))
        npix = round_up_to_odd(
            2 * float(self.correlation_radius) / float(np.max(geom.pixel_scales))
        )
        return tophat_kernel(float(self.correlation_radius) / binsz, npix)

    def run(self, dataset: Any, npred: Array | None = None) -> EstimatorMaps:
        """Maps ``counts, background, npred_excess, ts, sqrt_ts, norm, norm_err, norm_ul,
        flux, flux_err, flux_ul`` per energy group.

        ``npred`` (``(n_reco, ny, nx)``) replaces the background of a
        MapDataset (e.g. background plus known sources).
        """
        spectral = self.spectral_model or PowerLawSpectralModel(index=2.0)
        ds = dataset.ds
        onoff = "counts_off" in ds
        name = getattr(dataset, "name", "") or "dataset"
        if not float(self.correlation_radius) > 0:
            raise GdaskError(
                f"correlation_radius must be > 0 deg, got {self.correlation_radius}",
                field="correlation_radius",
            )
        needed = ("acceptance", "acceptance_off") if onoff else ("background",) * (npred is None)
        for key in ("counts", "exposure") + tuple(needed):
            if key not in ds:
                raise GdaskError(f"{name}: no {key} map", field=key)
        counts = np.asarray(ds["counts"].values, float)
        mask = np.ones(counts.shape, bool)
        if "mask_safe" in ds:
            mask &= np.asarray(ds["mask_safe"].values, bool)
        mask_fit = np.asarray(ds["mask_fit"].values, bool) if "mask_fit" in ds else None
        expo_r = reco_exposure_center_edisp(dataset, spectral)
        edges = np.asarray(dataset.energy_axis.axis.edges, float)
        kernel = self.kernel(dataset.geom)
        if onoff:
            n_off = np.asarray(ds["counts_off"].values, float)
            acc = np.asarray(ds["acceptance"].values, float)
            acc_off = np.asarray(ds["acceptance_off"].values, float)
            with np.errstate(divide="ignore", invalid="ignore"):
                bkg = np.where(acc_off > 0, acc / acc_off * n_off, 0.0)
        else:
            bkg = np.asarray(ds["background"].values, float) if npred is None else npred
        out: dict[str, list[Array]] = {}
        groups = energy_groups(edges, self.energy_edges)
        if not groups:
            raise GdaskError(
                f"energy_edges {self.energy_edges} select no reco-energy bin", field="energy_edges"
            )
        for i0, i1 in groups:
            sl = slice(i0, i1)
            ms = mask[sl]
            m2 = ms.any(axis=0)
            if mask_fit is not None:
                m2 &= mask_fit[sl].any(axis=0)
            w = m2.astype(float)
            n_on = np.rint(correlate((counts[sl] * ms).sum(axis=0) * w, kernel))
            res: dict[str, Array] = {"counts": n_on}
            if onoff:
                off_g = (n_off[sl] * ms).sum(axis=0) * w
                b_g = (bkg[sl] * ms).sum(axis=0) * w
                b_g = np.where(off_g > 0, b_g, 0.0)
                off_c = correlate(off_g, kernel)
                b_c = correlate(b_g, kernel)
                with np.errstate(divide="ignore", invalid="ignore"):
                    alpha = b_c / off_c
                res["background"] = alpha * off_c
                res["npred_excess"] = n_on - alpha * off_c
                res["ts"] = wstat_ts(n_on, off_c, alpha)
                res["sqrt_ts"] = wstat_significance(n_on, off_c, alpha)
                err = np.sqrt(n_on + alpha**2 * off_c)
                ul = wstat_excess_upper_limit(n_on, off_c, alpha, self.n_sigma_ul)
                res["alpha"] = alpha
            else:
                b_c = correlate((bkg[sl] * ms).sum(axis=0) * w, kernel)
                res["background"] = b_c
                res["npred_excess"] = n_on - b_c
                res["ts"] = cash_ts(n_on, b_c)
                res["sqrt_ts"] = cash_significance(n_on, b_c)
                err = np.sqrt(n_on)
                ul = cash_excess_upper_limit(n_on, b_c, self.n_sigma_ul)
            e_g = (expo_r[sl] * ms).sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                e_c = correlate(e_g, kernel) / correlate(w, kernel)
                res["norm"] = res["npred_excess"] / e_c
                res["norm_err"] = self.n_sigma * err / e_c
                res["norm_ul"] = ul / e_c
            f_ref = float(np.asarray(spectral.integral(edges[i0], edges[i1])).ravel()[0])
            for key in ("norm", "norm_err", "norm_ul"):
                res["flux" + key[4:]] = res[key] * f_ref
            for key, val in res.items():
                out.setdefault(key, []).append(np.where(m2, val, np.nan))
        e_edges = np.array([edges[groups[0][0]]] + [edges[b] for _, b in groups])
        return EstimatorMaps(
            geom=dataset.geom,
            energy_edges=e_edges,
            maps={k: np.stack(v) for k, v in out.items()},
            meta={"estimator": "excess_map", "correlation_radius": float(self.correlation_radius)},
        )

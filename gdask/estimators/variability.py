"""Variability tests on light curves: pure functions on flux arrays.

The estimators of Gammapy 2.1's ``gammapy.stats.variability`` (used by
``gammapy.estimators.utils.compute_lightcurve_*``), same definitions and NaN
handling (NaN points are left out of sums and counts):

* `fractional_variance`: F_var = sqrt(|S^2 - <sigma^2>|) / <F> and its error
  (Vaughan et al. 2003);
* `point_to_point_variance`: F_pp from consecutive differences (Edelson et al. 2002);
* `chi2_constancy`: chi2 of the fluxes against their mean (``sum (F - <F>)^2 / <F>``,
  scipy's ``chisquare`` convention) and its p-value with n - 1 degrees of freedom;
* `flux_doubling`: the shortest doubling and halving times between consecutive points.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2 as chi2_dist

__all__ = ["chi2_constancy", "flux_doubling", "fractional_variance", "point_to_point_variance"]


def _excess_error(
    excess: NDArray, sig_square: NDArray, mean: NDArray, n: NDArray
) -> NDArray[np.float64]:
    a = np.sqrt(2 / n) * sig_square / mean**2
    b = np.sqrt(sig_square / n) * (2 * excess / mean)
    return np.sqrt(a**2 + b**2) / (2 * excess)


def fractional_variance(
    flux: ArrayLike, flux_err: ArrayLike, axis: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fractional excess variance F_var and its error along ``axis`` (time).

    Examples
    --------
    >>> fvar, err = fractional_variance([1.0, 2.0, 3.0], [0.1, 0.1, 0.1])
    >>> round(float(fvar), 6)
    0.497214
    """
    flux, err = np.asarray(flux, float), np.asarray(flux_err, float)
    mean = np.nanmean(flux, axis=axis)
    n = np.count_nonzero(~np.isnan(flux), axis=axis)
    s_square = np.nansum((flux - np.expand_dims(mean, axis)) ** 2, axis=axis) / (n - 1)
    sig_square = np.nansum(err**2, axis=axis) / n
    fvar = np.sqrt(np.abs(s_square - sig_square)) / mean
    return fvar, _excess_error(fvar, sig_square, mean, n)


def point_to_point_variance(
    flux: ArrayLike, flux_err: ArrayLike, axis: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Point-to-point fractional variance F_pp and its error along ``axis``.

    Examples
    --------
    >>> fpp, err = point_to_point_variance([1.0, 2.0, 3.0], [0.1, 0.1, 0.1])
    >>> round(float(fpp), 6)
    0.497214
    """
    flux, err = np.asarray(flux, float), np.asarray(flux_err, float)
    mean = np.nanmean(flux, axis=axis)
    n = np.count_nonzero(~np.isnan(flux), axis=axis)
    steps = np.diff(flux, axis=axis)
    s_square = np.nansum(steps**2, axis=axis) / (n - 1)
    sig_square = np.nansum(err**2, axis=axis) / n
    fpp = np.sqrt(np.abs(s_square - sig_square)) / mean
    return fpp, _excess_error(fpp, sig_square, mean, n)


def chi2_constancy(flux: ArrayLike) -> tuple[float, float]:
    """Chi2 of the fluxes against their mean and the p-value of constancy (n - 1 dof).

    Examples
    --------
    >>> chi2, p = chi2_constancy([1.0, 1.0, 1.0])
    >>> chi2, p
    (0.0, 1.0)
    """
    flux = np.ravel(np.asarray(flux, float))
    mean = flux.mean()
    chi2 = float(np.sum((flux - mean) ** 2 / mean))
    return chi2, float(chi2_dist.sf(chi2, flux.size - 1))


def flux_doubling(
    flux: ArrayLike, flux_err: ArrayLike, coords: ArrayLike, axis: int = 0
) -> dict[str, NDArray[np.float64]]:
    """Shortest doubling and halving times between consecutive points along ``axis``.

    ``dt / log2(F[i+1] / F[i])`` for each consecutive pair; the doubling time is the
    smallest positive one, the halving time the smallest (in absolute value)
    negative one; errors propagate the flux errors. ``coords`` are the point
    times (any unit, as plain numbers).

    Returns
    -------
    dict
        ``doubling``, ``doubling_err``, ``doubling_coord``, ``halving``,
        ``halving_err``, ``halving_coord`` (the coordinate is the earlier point's).

    Examples
    --------
    >>> out = flux_doubling([1.0, 2.0, 1.0], [0.1, 0.1, 0.1], [0.0, 1.0, 3.0])
    >>> float(out["doubling"]), float(out["halving"])
    (1.0, 2.0)
    """
    f = np.moveaxis(np.atleast_1d(np.asarray(flux, float)), axis, -1)
    e = np.moveaxis(np.atleast_1d(np.asarray(flux_err, float)), axis, -1)
    t = np.asarray(coords, float)
    dt = np.diff(t)
    ratio = f[..., 1:] / f[..., :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        times = dt / np.log2(ratio)
        common = dt * np.log(2) / np.log(ratio) ** 2
        err = np.sqrt(
            (e[..., 1:] * common / f[..., 1:]) ** 2 + (e[..., :-1] * common / f[..., :-1]) ** 2
        )
    finite = np.isfinite(times)
    i_up = np.argmin(np.where(finite & (times > 0), times, np.inf), axis=-1)[..., None]
    i_down = np.argmax(np.where(finite & (times < 0), times, -np.inf), axis=-1)[..., None]

    def take(a: NDArray, i: NDArray) -> NDArray:
        return np.take_along_axis(a, i, axis=-1)[..., 0]

    return {
        "doubling": take(times, i_up),
        "doubling_err": take(err, i_up),
        "doubling_coord": t[i_up[..., 0]],
        "halving": np.abs(take(times, i_down)),
        "halving_err": take(err, i_down),
        "halving_coord": t[i_down[..., 0]],
    }

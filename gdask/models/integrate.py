"""Numerical and analytic helpers for spectral integrals and their gradients.

The default numerical scheme reproduces Gammapy 2.1's ``integrate_spectrum``
exactly (same grid, same rule):

* every bin ``[emin_i, emax_i]`` is resampled on ``n`` log-spaced points
  (``numpy.geomspace``), with ``n = int(max(max_i(ndecade * log10(emax_i / emin_i)), 2))``
  -- one ``n`` for *all* bins of the call, set by the widest bin;
* on each sub-interval the function is taken as the power law through its two
  end values ("log-log trapezoid") and integrated exactly; summed per bin.

For one sub-interval ``[x0, x1]`` with values ``y0, y1`` that integral is
``ln(x1/x0) * (b - a) / ln(b / a)`` with ``a = x0*y0`` and ``b = x1*y1`` (the
logarithmic mean of ``x*y`` times the log width), which is what Gammapy's
power-law formula evaluates to.  Sub-intervals where one end value is zero
contribute zero, as in Gammapy.  Values of mixed sign are not meaningful in
either implementation.
"""

from __future__ import annotations

import numpy as np
from scipy.special import exprel

__all__ = [
    "DEFAULT_NDECADE",
    "log_grid",
    "trapz_loglog",
    "trapz_loglog_weights",
    "powerlaw_integral_factor",
]

#: Gammapy's default number of grid points per decade for ``integral``.
DEFAULT_NDECADE = 100

_SERIES_CUT = 1e-3


def log_grid(emin: np.ndarray, emax: np.ndarray, ndecade: float = DEFAULT_NDECADE) -> np.ndarray:
    """Log-spaced integration grid, shape ``emin.shape + (n,)`` (see module doc)."""
    emin = np.asarray(emin, dtype=float)
    emax = np.asarray(emax, dtype=float)
    num = np.maximum(np.max(ndecade * np.log10(emax / emin)), 2)
    return np.geomspace(emin, emax, num=int(num), axis=-1)


def _logmean_parts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logarithmic mean ``(b - a) / ln(b/a)`` and its partial derivatives.

    Zero where either argument is zero (Gammapy's clipping convention).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = (a != 0) & (b != 0) & np.isfinite(a) & np.isfinite(b)
        aa = np.where(valid, a, 1.0)
        bb = np.where(valid, b, 1.0)
        d = np.log(bb / aa)
        small = np.abs(d) < _SERIES_CUT
        ds = np.where(small, 1.0, d)
        # E1(d) = (e^d - 1)/d ; lm = a * E1(d)
        e1 = exprel(d)
        lm = aa * e1
        # dlm/da = (E1 - 1)/d ; dlm/db = (1 - E1 e^-d)/d = (1 - exprel(-d))/d
        da_big = (e1 - 1.0) / ds
        db_big = (1.0 - exprel(-d)) / ds
        # series: (E1-1)/d = 1/2 + d/6 + d^2/24 + d^3/120
        da_small = 0.5 + d * (1 / 6 + d * (1 / 24 + d / 120))
        db_small = 0.5 - d * (1 / 6 - d * (1 / 24 - d / 120))
        da = np.where(small, da_small, da_big)
        db = np.where(small, db_small, db_big)
    zero = np.zeros_like(lm)
    return (np.where(valid, lm, zero), np.where(valid, da, zero), np.where(valid, db, zero))


def trapz_loglog(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Log-log trapezoid integral along the last axis (summed over sub-intervals)."""
    x0, x1 = x[..., :-1], x[..., 1:]
    lm, _, _ = _logmean_parts(x0 * y[..., :-1], x1 * y[..., 1:])
    return np.sum(np.log(x1 / x0) * lm, axis=-1)


def trapz_loglog_weights(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integral and its derivative with respect to each grid value.

    Returns
    -------
    integral : ndarray
        ``y.shape[:-1]``.
    weights : ndarray
        ``y.shape``; ``d integral / d y[..., j]``, so that the gradient of the
        integral with respect to a parameter is ``sum_j weights[..., j] * dy_j``.
    """
    x0, x1 = x[..., :-1], x[..., 1:]
    lw = np.log(x1 / x0)
    lm, da, db = _logmean_parts(x0 * y[..., :-1], x1 * y[..., 1:])
    w = np.zeros(np.broadcast_shapes(y.shape, x.shape))
    w[..., :-1] += lw * da * x0
    w[..., 1:] += lw * db * x1
    return np.sum(lw * lm, axis=-1), w


def _g2(z: np.ndarray) -> np.ndarray:
    """``G(z) = int_0^1 w e^{z w} dw`` computed stably."""
    z = np.asarray(z, dtype=float)
    small = np.abs(z) < 0.1
    zs = np.where(small, 1.0, z)
    big = (np.exp(zs) * (zs - 1.0) + 1.0) / zs**2
    ser = np.zeros_like(z)
    term = np.ones_like(z)
    for k in range(12):
        ser = ser + term / (k + 2)
        term = term * z / (k + 1)
    return np.where(small, ser, big)


def powerlaw_integral_factor(
    a: np.ndarray, b: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``F = int_a^b exp(v t) dt`` and ``dF/dv``, stable near ``v = 0``.

    With ``a = ln(E1/E0)``, ``b = ln(E2/E0)`` and ``v = 1 - index`` the power-law
    integral is ``amplitude * E0 * F``.
    """
    a = np.asarray(a, dtype=float)
    d = np.asarray(b, dtype=float) - a
    ea = np.exp(v * a)
    f = ea * d * exprel(v * d)
    df = ea * (a * d * exprel(v * d) + d * d * _g2(v * d))
    return f, df

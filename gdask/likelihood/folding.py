"""Forward folding: pure numpy helpers shared by the likelihood terms.

Nothing here knows about datasets or parameter vectors; every function takes
arrays (energies in TeV) and, for the spectral integrals, a
`~gdask.models.SpectralModel` with its canonical parameters ``theta``.

Predicted counts in reconstructed energy follow Gammapy 2.1::

    npred_reco[j] = sum_i  integral(model, true bin i) * exposure[i] * edisp[i, j]

`fold_kernel` precomputes ``exposure[:, None] * edisp`` restricted to the
true-energy rows that reach the fitted reconstructed bins (`needed_rows`), so
one evaluation is one model integral over those rows and one small matrix
product; the gradient goes back through the same matrix
(``d stat / d flux_true = kernel @ d stat / d npred``).

Numerical integrals (models without an analytic one) use Gammapy's grid,
whose number of points is set by the *widest* bin of the call.  When only a
subset of the true-energy bins is integrated, `subset_ndecade` returns the
points-per-decade that reproduces the grid of the full axis, so a restricted
evaluation gives the same numbers as Gammapy's full one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy import units as u
from numpy.typing import ArrayLike, NDArray

from gdask.models.integrate import DEFAULT_NDECADE, log_grid, trapz_loglog, trapz_loglog_weights

__all__ = [
    "energy_range_mask",
    "diagonal_response",
    "fold_kernel",
    "needed_rows",
    "subset_ndecade",
    "integral_and_grad",
    "integration_grid",
    "scaled_integral_and_grads",
]

Array = NDArray[np.float64]

#: relative step in ln E of the central difference for d model / d ln E
_DLNE = 1e-5


def energy_range_mask(
    edges: ArrayLike,
    energy_min: float | None = None,
    energy_max: float | None = None,
    unit: str = "TeV",
) -> NDArray[np.bool_]:
    """Bins fully inside ``[energy_min, energy_max]``, exactly as Gammapy's ``geom.energy_mask``.

    A bin is kept when ``lo >= energy_min`` and ``hi <= energy_max``; partial
    bins are dropped. ``None`` means no bound.  Gammapy compares the edges its
    log-scaled ``MapAxis`` returns, which are the stored edges passed through
    ``exp(log(.))`` in the axis' own unit, against the bounds converted to that
    unit; both steps are reproduced here, so a bound that falls on an edge
    keeps or drops the same bins as Gammapy (``1 TeV`` on an OGIP edge of
    ``1e9 keV`` may be just above or below it).

    Parameters
    ----------
    edges : array_like
        Bin edges (n + 1) in ``unit``, as stored in the dataset's file.
    energy_min, energy_max : float, optional
        Bounds in TeV.
    unit : str
        Unit of ``edges`` (an OGIP file's ``keV``, a map dataset's ``TeV``).

    Examples
    --------
    >>> energy_range_mask([0.5, 1.0, 2.0, 4.0], 1.0, 4.0).tolist()
    [False, True, True]
    """
    # Gammapy's MapAxis.edges: an order-1 spline through log(edges), evaluated at the
    # nodes (exactly log(edges)), then exp: 10 TeV becomes 10.000000000000002 TeV
    seen = np.exp(np.log(np.asarray(edges, dtype=float)))
    to_unit = u.TeV.to(unit)
    lo = -np.inf if energy_min is None else float(energy_min) * to_unit
    hi = np.inf if energy_max is None else float(energy_max) * to_unit
    return (seen[:-1] >= lo) & (seen[1:] <= hi)


def diagonal_response(edges_true: ArrayLike, edges_reco: ArrayLike) -> Array:
    """Perfect-resolution migration matrix ``(n_true, n_reco)``.

    Fraction of each true bin's width inside each reco bin (Gammapy's
    ``EDispKernel.from_diagonal_response``); the identity for equal axes.
    """
    t = np.asarray(edges_true, dtype=float)
    r = np.asarray(edges_reco, dtype=float)
    lo = np.fmax(r[:-1], t[:-1, None])
    hi = np.fmin(r[1:], t[1:, None])
    return np.clip(hi - lo, 0.0, None) / (t[1:] - t[:-1])[:, None]


def needed_rows(kernel: ArrayLike, cols: ArrayLike) -> NDArray[np.intp]:
    """Indices of the rows of ``kernel`` with a non-zero entry in columns ``cols``."""
    k = np.asarray(kernel)[:, np.asarray(cols)]
    return np.flatnonzero(np.any(k != 0, axis=1))


def fold_kernel(
    exposure: ArrayLike, edisp: ArrayLike, reco_mask: ArrayLike | None = None
) -> tuple[NDArray[np.intp], NDArray[np.intp], Array]:
    """``exposure[:, None] * edisp`` restricted to useful rows and masked columns.

    Parameters
    ----------
    exposure : array_like
        ``(n_true,)`` exposure, cm2 s.
    edisp : array_like
        ``(n_true, n_reco)`` migration matrix.
    reco_mask : array_like of bool, optional
        Reconstructed bins kept (all by default).

    Returns
    -------
    rows : ndarray of int
        True-energy bins that contribute to the kept reco bins.
    cols : ndarray of int
        Kept reco bins.
    kernel : ndarray
        ``(len(rows), len(cols))`` C-contiguous matrix.
    """
    full = np.asarray(exposure, dtype=float)[:, None] * np.asarray(edisp, dtype=float)
    n_reco = full.shape[1]
    mask = np.ones(n_reco, bool) if reco_mask is None else np.asarray(reco_mask, bool)
    cols = np.flatnonzero(mask)
    rows = needed_rows(full, cols)
    return rows, cols, np.ascontiguousarray(full[np.ix_(rows, cols)])


def subset_ndecade(
    emin: ArrayLike, emax: ArrayLike, rows: ArrayLike, ndecade: float = DEFAULT_NDECADE
) -> float:
    """Points per decade giving bins ``rows`` the integration grid of all bins.

    Gammapy integrates all bins of a call on ``n = int(max(ndecade *
    max(log10(emax / emin)), 2))`` points each; this returns the ``ndecade``
    for which integrating only ``rows`` yields the same ``n``.
    """
    lw = np.log10(np.asarray(emax, float) / np.asarray(emin, float))
    rows = np.asarray(rows)
    if rows.size == 0:
        return float(ndecade)
    n_full = int(max(ndecade * np.max(lw), 2))
    return (n_full + 0.5) / float(np.max(lw[rows]))


def integral_and_grad(
    model: Any, emin: Array, emax: Array, theta: Array, ndecade: float, grad: bool
) -> tuple[Array, Array | None]:
    """Integral of ``model`` over each bin and, if ``grad``, its canonical gradient.

    Returns ``(value (n,), gradient (n_parameters, n) or None)``.
    """
    if grad:
        value, g = model.integral_and_grad_theta(emin, emax, theta, ndecade)
        return np.asarray(value, float), np.asarray(g, float)
    return np.asarray(model.integral_theta(emin, emax, theta, ndecade), float), None


def _dlnE(model: Any, x: Array, theta: Array) -> Array:
    """``d model / d ln E`` by a central difference in ``ln E``."""
    up = model.evaluate_theta(x * np.exp(_DLNE), theta=theta)
    dn = model.evaluate_theta(x * np.exp(-_DLNE), theta=theta)
    return (up - dn) / (2.0 * _DLNE)


def integration_grid(
    model: Any, emin: Array, emax: Array, ndecade: float = DEFAULT_NDECADE
) -> Array | None:
    """Gammapy's quadrature grid for ``model`` over the bins (None for analytic integrals)."""
    if model.analytic_integral:
        return None
    return log_grid(emin, emax, ndecade)


def scaled_integral_and_grads(
    model: Any,
    emin: Array,
    emax: Array,
    theta: Array,
    scale: float = 1.0,
    ndecade: float = DEFAULT_NDECADE,
    grad: bool = True,
    grad_scale: bool = False,
    grid: Array | None = None,
) -> tuple[Array, Array | None, Array | None]:
    """Integral over the scaled bins ``[scale * emin, scale * emax]`` and its derivatives.

    This is the photon number of the flux ``scale * phi(scale * E)`` in the
    bin ``[emin, emax]`` (an energy-scale shift with its Jacobian); with
    ``scale = 1`` simply the model integral of each bin.

    Parameters
    ----------
    model : SpectralModel
    emin, emax : ndarray
        Bin edges, TeV.
    theta : ndarray
        Canonical parameter values of ``model``.
    scale : float
        Energy scale factor.
    ndecade : float
        Points per decade of the numerical quadrature.
    grad, grad_scale : bool
        Whether to return the gradient in ``theta`` and the derivative in ``scale``.
    grid : ndarray, optional
        Precomputed `integration_grid` of the *unscaled* bins (saves the
        grid construction in a hot loop); ignored for analytic integrals.

    Returns
    -------
    value : ndarray
        ``(n,)`` integrals.
    grad_theta : ndarray or None
        ``(n_parameters, n)`` derivatives with respect to canonical ``theta``.
    grad_scale : ndarray or None
        ``(n,)`` derivative with respect to ``scale``: exact for analytic
        integrals (``emax phi(scale emax) - emin phi(scale emin)``), the
        derivative of the log-log trapezoid otherwise (grid points move with
        ``scale``; ``d phi / d ln E`` by a central difference of step 1e-5).
    """
    if model.analytic_integral:
        lo, hi = scale * emin, scale * emax
        value, g = integral_and_grad(model, lo, hi, theta, ndecade, grad)
        ds = None
        if grad_scale:
            f_hi = model.evaluate_theta(hi, theta=theta)
            f_lo = model.evaluate_theta(lo, theta=theta)
            ds = np.asarray(emax * f_hi - emin * f_lo, float)
        return value, g, ds
    x = log_grid(emin, emax, ndecade) if grid is None else grid
    if scale != 1.0:
        x = scale * x
    y = model.evaluate_theta(x, theta=theta)
    if not (grad or grad_scale):
        return np.asarray(trapz_loglog(y, x), float), None, None
    value, w = trapz_loglog_weights(y, x)
    g = ds = None
    if grad:
        g = np.einsum("p...n,...n->p...", model.evaluate_grad_theta(x, theta=theta), w)
    if grad_scale:
        # Q(s) = T(phi(X), X) with X = s x and T(y, s x) = s T(y, x) for the log-log
        # rule, so dQ/ds = (Q + sum_j W_j X_j phi'(X_j)) / s with W = dT(y, X)/dy.
        ds = (value + np.sum(w * _dlnE(model, x, theta), axis=-1)) / scale
    return np.asarray(value, float), g, ds

"""Per-pixel amplitude fit of a source kernel over a known background (TS maps).

For every output pixel ``p`` the model is ``mu_k = b_k + x m_k`` on the
kernel cutout around ``p`` (``m_k = kernel_k * exposure_{p+k}``), and the
amplitude ``x`` minimises the Cash statistic.  The root of the derivative

    f(x) = sum_k m_k - sum_{k: n_k > 0} n_k m_k / (b_k + x m_k)

is found by Newton's method inside the bracket of Stewart (2009, App. A),
starting at 0 (clipped into the bracket).  ``f`` is increasing and concave,
so a Newton step never lands right of the root; the bracket shrinks with
the sign of ``f`` and a step that would leave it is replaced by bisection.  Only bins with counts enter
the iteration (the others add the constant ``sum m``), and pixels leave the
active set once converged.  Everything here is NumPy on arrays: the tiling
over a cluster is `gdask.estimators.tiles`.

Conventions follow Gammapy's TSMapEstimator: the amplitude is clipped at
``-min(b/m)`` (no negative predicted counts), ``ts = stat(0) - stat(x)``,
``norm_err = n_sigma / sqrt(sum n m^2 / mu^2)``, the upper limit is where
the statistic rises by ``n_sigma_ul**2`` above its minimum (searched on
``[x, x + 100 norm_err]``; NaN if not bracketed).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from gdask.stats import TRUNCATION_VALUE

__all__ = ["fit_amplitudes", "newton_bracketed"]

Array = NDArray[np.float64]


def newton_bracketed(
    fun: Callable[[Array, NDArray[np.intp]], tuple[Array, Array]],
    x0: Array,
    lo: Array,
    hi: Array,
    rtol: float = 1e-10,
    max_niter: int = 100,
) -> tuple[Array, NDArray[np.int64], NDArray[np.bool_]]:
    """Vectorised Newton root search kept inside per-element brackets.

    Parameters
    ----------
    fun : callable
        ``fun(x, idx) -> (f, df)`` for the elements ``idx`` (increasing ``f``).
    x0, lo, hi : ndarray
        Start values and brackets (``f(lo) <= 0 <= f(hi)`` expected).
    rtol : float
        Stop when a step is below ``rtol * max(|x|, hi - lo)`` (the initial
        bracket width sets the scale of an amplitude near 0).
    max_niter : int
        Iteration limit; elements still moving then are flagged unconverged.

    Returns
    -------
    x, niter, converged : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda x, i: (x**2 - np.array([4.0, 9.0])[i], 2 * x)
    >>> x, _, ok = newton_bracketed(f, np.ones(2), np.zeros(2), np.full(2, 10.0))
    >>> np.round(x, 8).tolist(), ok.tolist()
    ([2.0, 3.0], [True, True])
    """
    x = np.array(x0, dtype=float)
    lo = np.array(lo, dtype=float)
    hi = np.array(hi, dtype=float)
    scale = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    niter = np.zeros(x.shape, np.int64)
    done = np.zeros(x.shape, bool)
    active = np.flatnonzero(~done)
    for _ in range(max_niter):
        if active.size == 0:
            break
        xa = x[active]
        f, df = fun(xa, active)
        niter[active] += 1
        # shrink the bracket with the sign of f
        neg = f < 0
        lo[active] = np.where(neg, np.maximum(lo[active], xa), lo[active])
        hi[active] = np.where(neg, hi[active], np.minimum(hi[active], xa))
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = xa - f / df
        la, ha = lo[active], hi[active]
        bad = ~np.isfinite(xn) | (xn < la) | (xn > ha)
        xn = np.where(bad, 0.5 * (la + ha), xn)
        step = np.abs(xn - xa)
        tol = rtol * np.maximum(np.abs(xn), np.maximum(scale[active], 1e-300))
        conv = (step <= tol) | (f == 0) | ((ha - la) <= tol)
        x[active] = np.where(f == 0, xa, xn)
        done[active[conv]] = True
        active = active[~conv]
    return x, niter, done


def _patches(a: Array, k: int) -> Array:
    return sliding_window_view(a, (k, k))


def fit_amplitudes(
    counts: Array,
    background: Array,
    *exposure: Array,
    kernel: Array,
    valid: NDArray[np.bool_] | None = None,
    n_sigma: float = 1.0,
    n_sigma_ul: float = 2.0,
    ul: bool = True,
    rtol: float = 1e-10,
    max_niter: int = 100,
) -> dict[str, Array]:
    """Fit the kernel amplitude at every pixel of a padded 2D tile.

    Parameters
    ----------
    counts, background : ndarray
        ``(ny + 2h, nx + 2h)`` padded images (zeros outside the data).
    *exposure : ndarray
        One padded image per kernel plane: the predicted counts of the
        reference spectrum per unit amplitude carried by that plane, zero
        where the data are masked.  The model at offset ``k`` from pixel
        ``p`` is ``sum_r kernel[r, k] * exposure[r][p + k]``.
    kernel : ndarray
        ``(n_planes, 2h + 1, 2h + 1)`` (or 2D for one plane) source kernel.
    valid : ndarray of bool, optional
        ``(ny, nx)``: pixels to fit (others are NaN).
    n_sigma, n_sigma_ul : float
        Error and upper-limit levels.
    ul : bool
        Compute ``norm_ul``.
    rtol : float
        Relative precision of the amplitude.
    max_niter : int
        Iteration limit of the root searches.

    Returns
    -------
    dict of ndarray
        ``(ny, nx)`` maps ``norm, norm_err, norm_ul, ts, stat, stat_null,
        niter, success, npred, npred_excess``.

    Examples
    --------
    >>> import numpy as np
    >>> k = np.zeros((3, 3)); k[1, 1] = 1.0
    >>> c = np.pad(np.array([[5.0]]), 1); b = np.pad(np.array([[1.0]]), 1)
    >>> out = fit_amplitudes(c, b, np.pad(np.array([[2.0]]), 1), kernel=k)
    >>> round(float(out["norm"][0, 0]), 6)   # (5 - 1) / 2
    2.0
    """
    counts = np.asarray(counts, float)
    background = np.asarray(background, float)
    kernel = np.asarray(kernel, float)
    if kernel.ndim == 2:
        kernel = kernel[None]
    if len(exposure) != kernel.shape[0]:
        raise ValueError(f"{len(exposure)} exposure planes for {kernel.shape[0]} kernel planes")
    ks = kernel.shape[-1]
    ny, nx = counts.shape[0] - ks + 1, counts.shape[1] - ks + 1
    if valid is None:
        valid = np.ones((ny, nx), bool)
    npix = ny * nx
    planes = [
        (np.asarray(e_r, float), k_r)
        for e_r, k_r in zip(exposure, kernel, strict=True)
        if np.any(k_r) and np.any(e_r)
    ]
    # per-pixel sums over the cutout, offset by offset on 2D images
    s_m = np.zeros((ny, nx))
    s_b = np.zeros((ny, nx))
    sn_min_total = np.full((ny, nx), np.inf)
    for dy in range(ks):
        for dx in range(ks):
            win = (slice(dy, dy + ny), slice(dx, dx + nx))
            b_k = background[win]
            s_b += b_k
            m_k = np.zeros((ny, nx))
            for e_r, k_r in planes:
                if k_r[dy, dx] != 0:
                    m_k += k_r[dy, dx] * e_r[win]
            s_m += m_k
            pos = m_k > 0
            if pos.any():
                with np.errstate(divide="ignore", invalid="ignore"):
                    np.minimum(sn_min_total, np.where(pos, b_k / m_k, np.inf), out=sn_min_total)
    s_m, s_b, sn_min_total = s_m.ravel(), s_b.ravel(), sn_min_total.ravel()
    # entries with counts, sorted by output pixel
    pix, ky, kx = np.nonzero(_patches(counts, ks).reshape(npix, ks, ks) > 0)
    iy, ix = np.divmod(pix, nx)
    ay, ax = iy + ky, ix + kx
    n = counts[ay, ax]
    b = background[ay, ax]
    m = np.zeros(n.size)
    for e_r, k_r in planes:
        m += k_r[ky, kx] * e_r[ay, ax]
    del iy, ix, ay, ax, ky, kx
    s_counts = np.bincount(pix, weights=n, minlength=npix)
    # Stewart's bracket: the smallest b/m among bins with counts and model
    with np.errstate(divide="ignore", invalid="ignore"):
        sn = np.where(m > 0, b / m, np.inf)
    # (entries are sorted by pixel: per-pixel minimum by segments, ties to the first)
    sn_min = np.full(npix, 1e14)
    c_min = np.ones(npix)
    if pix.size:
        seg_start = np.flatnonzero(np.r_[True, pix[1:] != pix[:-1]])
        seg_min = np.minimum.reduceat(sn, seg_start)
        seg_pix = pix[seg_start]
        has = np.isfinite(seg_min)
        sn_min[seg_pix[has]] = seg_min[has]
        at_min = np.flatnonzero(sn == sn_min[pix])
        _, first = np.unique(pix[at_min], return_index=True)
        c_min[pix[at_min[first]]] = n[at_min[first]]
    sn_min_total = np.minimum(sn_min_total, 1e14)
    norm_min_total = -sn_min_total
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = c_min / s_m - sn_min
        hi = s_counts / s_m - sn_min

    # bins with counts but no model add a constant to the statistic; the
    # iterations only need the others (sorted by pixel, with start offsets)
    zero = m <= 0
    nlog_const = np.bincount(
        pix[zero], weights=n[zero] * np.log(np.maximum(b[zero], TRUNCATION_VALUE)), minlength=npix
    )
    keep = ~zero
    pix, n, b, m = pix[keep], n[keep], b[keep], m[keep]
    starts = np.searchsorted(pix, np.arange(npix + 1))

    def gather(idx: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        lens = starts[idx + 1] - starts[idx]
        ent = np.repeat(starts[idx] - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        return ent, np.repeat(np.arange(idx.size), lens)

    def stat_at(x: Array, idx: NDArray[np.intp]) -> Array:
        ent, seg = gather(idx)
        mu = np.maximum(b[ent] + x[seg] * m[ent], TRUNCATION_VALUE)
        nlog = np.bincount(seg, weights=n[ent] * np.log(mu), minlength=idx.size)
        nlog += nlog_const[idx]
        mu0 = np.maximum(s_b[idx] + x * s_m[idx], 0.0)
        return np.asarray(2.0 * (mu0 - nlog), dtype=np.float64)

    def droot(x: Array, idx: NDArray[np.intp]) -> tuple[Array, Array]:
        ent, seg = gather(idx)
        m_e = m[ent]
        mu = b[ent] + x[seg] * m_e
        with np.errstate(divide="ignore", invalid="ignore"):
            q = n[ent] * m_e / mu
            dq = q * m_e / mu
        f = s_m[idx] - np.bincount(seg, weights=q, minlength=idx.size)
        df = np.bincount(seg, weights=dq, minlength=idx.size)
        return np.asarray(2.0 * f, dtype=np.float64), np.asarray(2.0 * df, dtype=np.float64)

    vflat = valid.ravel()
    trivial = (s_counts <= 0) | (s_m <= 0)
    fit = np.flatnonzero(vflat & ~trivial)
    norm = norm_min_total.copy()
    niter = np.zeros(npix, np.int64)
    success = np.ones(npix, bool)
    if fit.size:
        flo, _ = droot(lo[fit], fit)
        fhi, _ = droot(hi[fit], fit)
        ok = np.isfinite(flo) & np.isfinite(fhi) & (flo <= 0) & (fhi >= 0)
        # a bracket of zero width (one bin with counts) holds the root itself
        ok |= np.abs(hi[fit] - lo[fit]) <= 1e-12 * np.maximum(np.abs(hi[fit]), 1.0)
        bad = fit[~ok]
        niter[bad] = max_niter
        success[bad] = False
        fit = fit[ok]

        def f_sub(x: Array, i: NDArray[np.intp]) -> tuple[Array, Array]:
            return droot(x, fit[i])

        x0 = np.clip(0.0, lo[fit], hi[fit])
        x, it, conv = newton_bracketed(f_sub, x0, lo[fit], hi[fit], rtol, max_niter)
        norm[fit] = np.maximum(x, norm_min_total[fit])
        niter[fit] = it
        success[fit] = conv

    allpix = np.arange(npix)
    stat = stat_at(norm, allpix)
    stat_null = stat_at(np.zeros(npix), allpix)
    _, d2 = droot(norm, allpix)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm_err = n_sigma * np.sqrt(2.0 / d2)
    out = {
        "norm": norm,
        "norm_err": norm_err,
        "ts": stat_null - stat,
        "stat": stat,
        "stat_null": stat_null,
        "niter": niter.astype(float),
        "success": success.astype(float),
        "npred": s_b + norm * s_m,
        "npred_excess": norm * s_m,
    }
    if ul:
        out["norm_ul"] = _upper_limits(
            norm, norm_err, stat, n_sigma_ul, stat_at, droot, vflat, rtol, max_niter
        )
    for key, val in out.items():
        val = np.where(vflat, val, np.nan)
        out[key] = val.reshape(ny, nx)
    return out


def _upper_limits(
    norm: Array,
    norm_err: Array,
    stat: Array,
    n_sigma_ul: float,
    stat_at: Callable[[Array, NDArray[np.intp]], Array],
    droot: Callable[[Array, NDArray[np.intp]], tuple[Array, Array]],
    vflat: NDArray[np.bool_],
    rtol: float,
    max_niter: int,
) -> Array:
    """Amplitude where the statistic is ``n_sigma_ul**2`` above its minimum."""
    npix = norm.size
    target = stat + n_sigma_ul**2
    lo = norm.copy()
    hi = norm + 1e2 * norm_err
    idx = np.flatnonzero(vflat & np.isfinite(hi) & (hi > lo))
    out = np.full(npix, np.nan)
    if idx.size == 0:
        return out
    ghi = stat_at(hi[idx], idx) - target[idx]
    idx = idx[ghi >= 0]

    def g(x: Array, i: NDArray[np.intp]) -> tuple[Array, Array]:
        j = idx[i]
        f, _ = droot(x, j)
        return stat_at(x, j) - target[j], f

    x, _, _ = newton_bracketed(g, hi[idx], lo[idx], hi[idx], rtol, max_niter)
    out[idx] = x
    return out

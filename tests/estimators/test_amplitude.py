"""gdask.estimators.amplitude: the per-pixel amplitude fit against a direct minimisation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from gdask.estimators.amplitude import fit_amplitudes, newton_bracketed
from gdask.stats import cash


def _toy(seed=1, n=12, h=2):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-h : h + 1, -h : h + 1]
    kernel = np.exp(-(x**2 + y**2) / 2.0)
    kernel /= kernel.sum()
    bkg = np.pad(rng.uniform(0.2, 1.0, (n, n)), h)
    expo = np.pad(rng.uniform(5.0, 10.0, (n, n)), h)
    src = np.zeros((n + 2 * h, n + 2 * h))
    src[h + n // 2, h + n // 2] = 3.0
    from scipy.signal import convolve2d

    mu = bkg + convolve2d(src * expo, kernel, mode="same")
    counts = rng.poisson(mu).astype(float)
    counts[:h] = counts[-h:] = counts[:, :h] = counts[:, -h:] = 0
    return counts, bkg, expo, kernel, h, n


def test_matches_direct_minimisation():
    counts, bkg, expo, kernel, h, n = _toy()
    out = fit_amplitudes(counts, bkg, expo, kernel=kernel)
    k = 2 * h + 1
    for iy, ix in [(0, 0), (n // 2, n // 2), (3, 7), (n - 1, n - 2)]:
        c = counts[iy : iy + k, ix : ix + k]
        b = bkg[iy : iy + k, ix : ix + k]
        m = kernel * expo[iy : iy + k, ix : ix + k]
        lo = -np.min(b[m > 0] / m[m > 0])

        def stat(x, c=c, b=b, m=m):
            return cash(c, b + x * m).sum()

        res = minimize_scalar(stat, bounds=(lo, 50), method="bounded", options={"xatol": 1e-10})
        norm = max(res.x, lo)
        assert out["norm"][iy, ix] == pytest.approx(norm, abs=1e-6)
        assert out["ts"][iy, ix] == pytest.approx(stat(0.0) - stat(norm), abs=1e-6)
        # upper limit: the statistic 4 above its minimum, to the right
        ul = out["norm_ul"][iy, ix]
        assert ul > norm
        assert stat(ul) - stat(norm) == pytest.approx(4.0, abs=1e-6)
        # error: inverse curvature (observed, counts-weighted)
        mu = b + out["norm"][iy, ix] * m
        d2 = np.sum(c[mu > 0] * m[mu > 0] ** 2 / mu[mu > 0] ** 2)
        assert out["norm_err"][iy, ix] == pytest.approx(1 / np.sqrt(d2), rel=1e-9)
    assert out["ts"][n // 2, n // 2] > 9
    assert np.all(out["success"] == 1)
    assert np.all(out["niter"] <= 30)


def test_single_bin_closed_form():
    k = np.zeros((3, 3))
    k[1, 1] = 1.0
    c = np.pad(np.array([[7.0, 0.0, 0.0]]), 1)
    b = np.pad(np.array([[2.0, 1.0, 1.0]]), 1)
    e = np.pad(np.array([[5.0, 5.0, 5.0]]), 1)
    out = fit_amplitudes(c, b, e, kernel=k)
    assert out["norm"][0, 0] == pytest.approx(1.0, rel=1e-10)  # (7 - 2) / 5
    # no counts: amplitude at the lower bound -b/m, as Gammapy
    assert out["norm"][0, 2] == pytest.approx(-0.2)
    assert out["niter"][0, 2] == 0


def test_valid_mask_and_planes():
    counts, bkg, expo, kernel, h, n = _toy(seed=3)
    valid = np.ones((n, n), bool)
    valid[0, :] = False
    one = fit_amplitudes(counts, bkg, expo, kernel=kernel, valid=valid)
    # the same model split over two kernel planes
    two = fit_amplitudes(
        counts, bkg, 0.3 * expo, 0.7 * expo, kernel=np.stack([kernel, kernel]), valid=valid
    )
    assert np.all(np.isnan(one["ts"][0]))
    np.testing.assert_allclose(two["ts"], one["ts"], rtol=1e-9, equal_nan=True)
    with pytest.raises(ValueError, match="exposure planes"):
        fit_amplitudes(counts, bkg, expo, kernel=np.stack([kernel, kernel]))


def test_newton_bracketed_bisects_outside_bracket():
    # f = atan(x - 1): Newton from 10 overshoots far left; bracketing keeps it inside
    def f(x, i):
        return np.arctan(x - 1.0), 1.0 / (1.0 + (x - 1.0) ** 2)

    x, it, ok = newton_bracketed(f, np.array([10.0]), np.array([-2.0]), np.array([10.0]))
    assert ok[0] and x[0] == pytest.approx(1.0, abs=1e-9)

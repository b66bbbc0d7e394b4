"""Variability tests (`gdask.estimators.variability`) against Gammapy 2.1's to 1e-10."""

from __future__ import annotations

import numpy as np
import pytest

from gdask.estimators.variability import (
    chi2_constancy,
    flux_doubling,
    fractional_variance,
    point_to_point_variance,
)

RTOL = 1e-10


def _curves(seed: int, shape=(40, 3), nan: bool = False):
    rng = np.random.default_rng(seed)
    flux = rng.lognormal(-23, 0.5, size=shape)
    err = flux * rng.uniform(0.05, 0.3, size=shape)
    if nan:
        flux[rng.integers(0, shape[0], 5), 0] = np.nan
    return flux, err


@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(fractional_variance, "compute_fvar"), (point_to_point_variance, "compute_fpp")],
)
def test_excess_variances_match_gammapy(ours, theirs, nan):
    from gammapy.stats import variability

    flux, err = _curves(1, nan=nan)
    g_val, g_err = getattr(variability, theirs)(flux, err, axis=0)
    d_val, d_err = ours(flux, err, axis=0)
    np.testing.assert_allclose(d_val, g_val, rtol=RTOL)
    np.testing.assert_allclose(d_err, g_err, rtol=RTOL)
    # time on axis 1 too
    d_val1, _ = ours(flux.T, err.T, axis=1)
    np.testing.assert_allclose(d_val1, g_val, rtol=RTOL)


def test_chi2_matches_gammapy():
    from gammapy.stats.variability import compute_chisq

    flux, _ = _curves(2, shape=(30,))
    g = compute_chisq(flux)
    d = chi2_constancy(flux)
    np.testing.assert_allclose(d, np.asarray(g, float), rtol=RTOL)
    assert chi2_constancy(np.full(5, 3.0)) == (0.0, 1.0)


def test_flux_doubling_matches_gammapy():
    import astropy.units as u
    from gammapy.stats.variability import compute_flux_doubling

    flux, err = _curves(3)
    t = np.cumsum(np.random.default_rng(4).uniform(500, 700, flux.shape[0]))
    g = compute_flux_doubling(flux, err, t * u.s, axis=0)
    d = flux_doubling(flux, err, t, axis=0)
    for key in g:
        np.testing.assert_allclose(d[key], u.Quantity(g[key]).value, rtol=RTOL, err_msg=key)

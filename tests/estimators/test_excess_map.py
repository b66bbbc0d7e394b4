"""gdask.estimators.excess_map: top-hat, Li & Ma maps, upper limits, MapDatasetOnOff, FITS and plot."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from gdask.datasets import MapDataset, MapDatasetOnOff
from gdask.estimators.excess_map import (
    ExcessMapEstimator,
    cash_excess_upper_limit,
    correlate,
    tophat_kernel,
    wstat_excess_upper_limit,
)
from gdask.estimators.maps_io import EstimatorMaps
from gdask.geometry import WcsGeom
from gdask.geometry.axes import Axis
from gdask.stats import cash, wstat


def test_tophat_kernel_is_astropys_disk():
    from astropy.convolution import Tophat2DKernel

    for r in (1.0, 2.5, 5.0):
        k = Tophat2DKernel(r).array
        np.testing.assert_array_equal(tophat_kernel(r, k.shape[0]), k / k.max())


def test_correlate_sums_within_disk():
    img = np.zeros((9, 9))
    img[4, 4] = 1.0
    img[0, 0] = 2.0
    out = correlate(img, tophat_kernel(1.0, 3))
    assert out[4, 5] == pytest.approx(1.0) and out[3, 3] == pytest.approx(0.0, abs=1e-12)
    assert out[0, 1] == pytest.approx(2.0)  # zeros beyond the border


@pytest.mark.parametrize("n_on,bkg", [(10.0, 3.0), (3.0, 5.0), (0.0, 2.0), (200.0, 150.0)])
def test_cash_upper_limit_is_the_profile_crossing(n_on, bkg):
    ul = cash_excess_upper_limit(np.array([n_on]), np.array([bkg]), n_sigma=2.0)[0]
    best = max(n_on - bkg, -bkg)
    stat = lambda s: cash(n_on, bkg + s)  # noqa: E731
    if n_on > 0:
        root = brentq(lambda s: stat(s) - stat(best) - 4.0, best, best + 100 + 10 * n_on)
        assert ul == pytest.approx(root, rel=1e-9)
    else:
        assert ul == pytest.approx(2.0)


def test_wstat_upper_limit_is_the_profile_crossing():
    n_on, n_off, alpha = np.array([12.0, 4.0]), np.array([20.0, 30.0]), np.array([0.2, 0.2])
    ul = wstat_excess_upper_limit(n_on, n_off, alpha, n_sigma=2.0)
    for i in range(2):
        args = (n_on[i], n_off[i], alpha[i])
        best = n_on[i] - alpha[i] * n_off[i]

        def f(s, args=args, best=best):
            return wstat(*args, s) - wstat(*args, best) - 4.0

        assert ul[i] == pytest.approx(brentq(f, best, best + 100), rel=1e-8)


def _datasets(seed=0):
    rng = np.random.default_rng(seed)
    geom = WcsGeom.create(skydir=(83.63, 22.01), binsz=0.02, npix=40)
    e = Axis.from_bounds(1.0, 10.0, 2, name="energy", unit="TeV", interp="log")
    et = Axis.from_bounds(1.0, 10.0, 2, name="energy_true", unit="TeV", interp="log")
    shape = (2, 40, 40)
    bkg = np.full(shape, 0.5)
    counts = rng.poisson(bkg).astype(float)
    counts[:, 18:22, 18:22] += 5
    mask = np.ones(shape, bool)
    mask[0, :, :5] = False
    expo = np.full(shape, 1e10)
    on = MapDataset(geom, e, et, counts=counts, background=bkg, exposure=expo, mask_safe=mask)
    off = MapDatasetOnOff(
        geom,
        e,
        et,
        counts=counts,
        exposure=expo,
        mask_safe=mask,
        counts_off=np.full(shape, 5.0),
        acceptance=np.ones(shape),
        acceptance_off=np.full(shape, 10.0),
    )
    return on, off, counts, bkg, mask


def test_excess_map_cash_and_wstat():
    on, off, counts, bkg, mask = _datasets()
    est = ExcessMapEstimator(correlation_radius=0.06, energy_edges=[1.0, 10.0])
    a = est.run(on)
    k = est.kernel(on.geom)
    n = correlate((counts * mask).sum(0), k)
    b = correlate((bkg * mask).sum(0), k)
    np.testing.assert_allclose(a["counts"][0], np.rint(n))
    np.testing.assert_allclose(a["npred_excess"][0], np.rint(n) - b, atol=1e-9)
    assert np.nanmax(a["sqrt_ts"]) > 5
    assert a["sqrt_ts"].shape == (1, 40, 40)
    # same background expressed as OFF counts x alpha: the same excess, lower significance
    w = est.run(off)
    np.testing.assert_allclose(w["npred_excess"], a["npred_excess"], atol=1e-9)
    peak = np.unravel_index(np.nanargmax(a["sqrt_ts"]), a["sqrt_ts"].shape)
    assert 0 < w["sqrt_ts"][peak] < a["sqrt_ts"][peak]
    assert np.all(w["norm_ul"][0][20:22, 20:22] > w["norm"][0][20:22, 20:22])


def test_maps_write_read_plot(tmp_path):
    on, *_ = _datasets()
    maps = ExcessMapEstimator(correlation_radius=0.06).run(on)
    assert maps["ts"].shape == (2, 40, 40)
    path = tmp_path / "m.fits"
    maps.write(path)
    back = EstimatorMaps.read(path)
    assert set(back.names) == set(maps.names)
    np.testing.assert_allclose(back["sqrt_ts"], maps["sqrt_ts"], equal_nan=True)
    np.testing.assert_allclose(back.energy_edges, maps.energy_edges)
    png = tmp_path / "m.png"
    maps.plot(png, "sqrt_ts", energy_index=1)
    assert png.stat().st_size > 1000

"""Unit tests of gdask.reduce.ring on synthetic datasets."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.convolution import Ring2DKernel, Tophat2DKernel
from scipy.signal import convolve

from gdask.datasets import MapDataset, MapDatasetOnOff
from gdask.geometry import EnergyAxis, WcsGeom
from gdask.reduce.ring import (
    adaptive_ring_background,
    convolve_image,
    ring_background,
    ring_kernel,
    tophat_kernel,
)
from gdask.reduce.stack import stack_pair

GEOM = WcsGeom.create(skydir=(83.6, 22.0), binsz=0.05, width=(4, 4), frame="icrs", proj="CAR")
E_RECO = EnergyAxis.from_bounds(0.7, 10, 2)


def _dataset(counts: np.ndarray | None = None, bkg: float = 2.0) -> MapDataset:
    shape = (E_RECO.nbin,) + GEOM.shape
    rng = np.random.default_rng(0)
    counts = rng.poisson(bkg, shape).astype(float) if counts is None else counts
    return MapDataset(
        GEOM,
        E_RECO,
        counts=counts,
        background=np.full(shape, bkg),
        mask_safe=np.ones(shape, bool),
        name="x",
    )


@pytest.mark.parametrize(
    "r_in,width", [(10.0, 6.0), (3.3, 2.1), (0.5 / 0.02, 0.3 / 0.02), (7, 0.5)]
)
def test_ring_kernel_matches_astropy(r_in, width):
    k = Ring2DKernel(r_in, width)
    k.normalize("peak")
    np.testing.assert_array_equal(ring_kernel(r_in, width), k.array)


@pytest.mark.parametrize("radius", [0.0044, 3.5, 11.0])
def test_tophat_kernel_matches_astropy(radius):
    k = Tophat2DKernel(radius)
    k.normalize("peak")
    np.testing.assert_array_equal(tophat_kernel(radius), k.array)


def test_convolve_image_matches_direct():
    rng = np.random.default_rng(1)
    img = rng.poisson(3, (2, 40, 50)).astype(float)
    k = ring_kernel(5, 3)
    out = convolve_image(img, k)
    direct = np.stack([convolve(i, k, mode="same", method="direct") for i in img])
    np.testing.assert_array_equal(out, direct)
    flt = img * 0.37
    np.testing.assert_allclose(convolve_image(flt, k), direct * 0.37, rtol=1e-12)


def test_ring_uniform_interior():
    d = _dataset()
    out = ring_background(d, r_in=0.5, width=0.3)
    assert isinstance(out, MapDatasetOnOff) and "background" not in out.ds
    k = ring_kernel(0.5 / 0.05, 0.3 / 0.05)
    half = k.shape[0] // 2
    inner = (slice(None), slice(half, -half), slice(half, -half))
    np.testing.assert_allclose(out.acceptance_off.values[inner], 2.0 * k.sum())
    np.testing.assert_allclose(out.alpha.values[inner], 1.0 / k.sum())
    np.testing.assert_allclose(out.acceptance.values, d.background.values)
    direct = convolve(d.counts.values[0], k, mode="same")
    np.testing.assert_allclose(out.counts_off.values[0], direct, atol=1e-9)


def test_ring_exclusion_removes_source():
    base = _dataset()
    counts = base.counts.values.copy()
    counts[:, 40, 40] += 1000  # a bright source at the centre
    excl = np.ones(GEOM.shape, bool)
    excl[35:46, 35:46] = False
    with_src = ring_background(_dataset(counts), 0.5, 0.3, exclusion_mask=excl)
    without = ring_background(base, 0.5, 0.3, exclusion_mask=excl)
    np.testing.assert_array_equal(with_src.counts_off.values, without.counts_off.values)
    leaky = ring_background(_dataset(counts), 0.5, 0.3)
    assert leaky.counts_off.values.max() > with_src.counts_off.values.max() + 500


def test_ring_masks_pixels_without_off_acceptance():
    d = _dataset()
    excl = np.zeros(GEOM.shape, bool)  # everything excluded
    out = ring_background(d, 0.5, 0.3, exclusion_mask=excl)
    assert np.all(out.acceptance_off.values == 0)
    assert not out.mask_safe.values.any()


def test_ring_exclusion_on_other_grid():
    coarse = GEOM.to_binsz(0.1)
    excl = np.ones(coarse.shape, bool)
    excl[18:22, 18:22] = False
    out = ring_background(_dataset(), 0.5, 0.3, exclusion_mask=excl, exclusion_geom=coarse)
    lon, lat = GEOM.get_coord()
    ix, iy = coarse.coord_to_idx(lon, lat)
    fine = excl[iy, ix]
    ref = ring_background(_dataset(), 0.5, 0.3, exclusion_mask=fine)
    np.testing.assert_array_equal(out.counts_off.values, ref.counts_off.values)


def test_ring_outputs_stack():
    a = ring_background(_dataset(), 0.5, 0.3)
    s = stack_pair(a, a)
    np.testing.assert_array_equal(s.counts_off.values, 2 * a.counts_off.values)
    ok = a.counts_off.values > 0
    np.testing.assert_allclose(s.alpha.values[ok], a.alpha.values[ok], rtol=1e-12)


def test_adaptive_ring_limits():
    d = _dataset()
    loose = adaptive_ring_background(d, r_in=0.5, r_out_max=1.5, width=0.3, threshold_alpha=10.0)
    fixed = ring_background(d, 0.5, 0.3)
    assert loose.ds.sizes["energy"] == 1
    np.testing.assert_array_equal(loose.counts_off.values[0], fixed.counts_off.values[0])
    tight = adaptive_ring_background(d, 0.5, 1.5, 0.3, threshold_alpha=1e-9)
    assert np.all(np.isnan(tight.counts_off.values))
    # growing rings: a pixel that fails the threshold with the first ring takes a larger one
    mid = adaptive_ring_background(d, 0.5, 1.5, 0.3, stepsize=0.1, threshold_alpha=1 / 150.0)
    taken = mid.acceptance_off.values[np.isfinite(mid.acceptance_off.values)]
    assert taken.size and np.all(2.0 / taken <= 1 / 150.0 + 1e-12)
    with pytest.raises(ValueError):
        adaptive_ring_background(d, 0.5, 1.5, 0.3, method="bad")

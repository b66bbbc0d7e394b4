"""Tests of gdask.reduce.safe_mask."""

from __future__ import annotations

import numpy as np
import pytest

from gdask.reduce import make_map_dataset, make_safe_mask
from gdask.reduce.safe_mask import (
    energy_range_mask,
    mask_offset_max,
    threshold_aeff_max,
    threshold_bkg_peak,
    threshold_edisp_bias,
)

CRAB = (83.633, 22.014)


def test_energy_range_mask_needs_whole_bins():
    edges = np.array([1.0, 2.0, 4.0, 8.0])
    np.testing.assert_array_equal(energy_range_mask(edges, 2.0, 8.0), [False, True, True])
    np.testing.assert_array_equal(energy_range_mask(edges, 1.5), [False, True, True])
    np.testing.assert_array_equal(energy_range_mask(edges, None, 7.9), [True, True, False])


def test_offset_max(small_geom):
    m = mask_offset_max(small_geom, CRAB, 0.5)
    assert m.shape == small_geom.shape and 0 < m.sum() < m.size
    np.testing.assert_array_equal(m, small_geom.separation(CRAB) < 0.5)


def test_thresholds_synthetic():
    e = np.geomspace(0.1, 100, 31)
    aeff = 1e5 * (1 - np.exp(-((e / 0.5) ** 3)))
    thr = threshold_aeff_max(aeff, e, 10.0)
    # log-log interpolation of the table around the exact root (0.5 * (-ln 0.9)^(1/3))
    assert thr == pytest.approx(0.5 * (-np.log(0.9)) ** (1 / 3), rel=0.05)
    assert threshold_aeff_max(np.zeros_like(e), e) is None
    bkg = np.array([1.0, 5.0, 3.0, 1.0])[:, None, None] * np.ones((1, 2, 2))
    assert threshold_bkg_peak(bkg, np.array([0.1, 0.2, 0.4, 0.8, 1.6])) == 0.2
    # a diagonal kernel has no bias: the threshold is the peak-bias energy times 1.1
    et = np.geomspace(0.5, 50, 21)
    k = np.eye(21)
    assert threshold_edisp_bias(k, et, et, 10.0) == pytest.approx(et[0] * 1.1)


@pytest.mark.realdata
def test_make_safe_mask_real(hess_obs, small_geom, axes):
    e, et = axes
    ds = make_map_dataset(hess_obs, small_geom, e, et)
    full = make_safe_mask(ds, hess_obs, [])
    assert full.dims == ("energy", "lat", "lon")
    np.testing.assert_array_equal(full.values, ds["background"].values > 0)
    default = make_safe_mask(ds, hess_obs, ["aeff-default"]).values
    lo = 0.870963589956081  # LO_THRES of run 23523
    np.testing.assert_array_equal(default.any(axis=(1, 2)), e.edges[:-1] >= lo)
    both = make_safe_mask(ds, hess_obs, ["aeff-default", "offset-max"], offset_max=0.6).values
    assert both.sum() < default.sum()
    # the pointing from the dataset attrs is enough for offset-max
    np.testing.assert_array_equal(
        make_safe_mask(ds, None, ["offset-max"], offset_max=0.6).values,
        make_safe_mask(ds, hess_obs, ["offset-max"], offset_max=0.6).values,
    )
    for methods in (["aeff-max"], ["edisp-bias"], ["bkg-peak"]):
        m = make_safe_mask(ds, hess_obs, methods).values
        assert m.any()
    with pytest.raises(ValueError, match="not valid"):
        make_safe_mask(ds, hess_obs, ["nope"])
    with pytest.raises(ValueError, match="exclusive"):
        make_safe_mask(ds, hess_obs, ["aeff-max"], position=CRAB, fixed_offset=0.5)
    with pytest.raises(ValueError, match="observation"):
        make_safe_mask(ds, None, ["aeff-default"])

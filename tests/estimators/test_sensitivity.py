"""gdask.estimators.sensitivity: the significance inversion, the count thresholds, a 3D dataset."""

from __future__ import annotations

import numpy as np
import pytest

from gdask.datasets import MapDataset
from gdask.estimators.sensitivity import (
    SensitivityEstimator,
    apply_count_thresholds,
    excess_matching_significance,
)
from gdask.geometry import WcsGeom
from gdask.geometry.axes import Axis
from gdask.stats import cash_significance, wstat_significance


def test_excess_matches_significance():
    b = np.array([0.5, 10.0, 1000.0])
    s = excess_matching_significance(5.0, b)
    np.testing.assert_allclose(cash_significance(s + b, b), 5.0, rtol=1e-10)
    n_off, alpha = np.array([5.0, 100.0, 1e4]), np.array([0.1, 0.1, 0.1])
    s = excess_matching_significance(5.0, alpha * n_off, n_off, alpha)
    np.testing.assert_allclose(wstat_significance(s + alpha * n_off, n_off, alpha), 5.0, rtol=1e-10)
    assert excess_matching_significance(5.0, np.array([0.0]))[0] == 0.0


def test_count_thresholds():
    exc, crit = apply_count_thresholds(
        np.array([3.0, 50.0, 50.0]), np.array([1.0, 10.0, 2000.0]), 10, 0.05
    )
    np.testing.assert_allclose(exc, [10.0, 50.0, 100.0])
    assert list(crit) == ["gamma", "significance", "bkg"]


def test_map_dataset_sums_the_on_region():
    geom = WcsGeom.create(skydir=(0.0, 0.0), binsz=0.1, npix=5)
    e = Axis.from_bounds(1.0, 10.0, 3, name="energy", unit="TeV", interp="log")
    et = Axis.from_bounds(1.0, 10.0, 3, name="energy_true", unit="TeV", interp="log")
    shape = (3, 5, 5)
    ds = MapDataset(
        geom,
        e,
        et,
        counts=np.zeros(shape),
        background=np.full(shape, 2.0),
        exposure=np.full(shape, 1e9),
    )
    region = np.zeros((5, 5), bool)
    region[1:4, 1:4] = True
    t = SensitivityEstimator().run(ds, region_mask=region)
    b = 9 * 2.0
    assert np.asarray(t["background"]) == pytest.approx([b] * 3)
    assert np.asarray(t["excess"]) == pytest.approx(
        excess_matching_significance(5.0, np.full(3, b))
    )
    assert np.all(np.asarray(t["e2dnde"]) > 0)

"""Tests of gdask.reduce.fov_background."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gdask.reduce import apply_fov_background, fov_background_norm


def _ds(counts, bkg, safe=None):
    shape = counts.shape
    safe = np.ones(shape, bool) if safe is None else safe
    dims = ("energy", "lat", "lon")
    return xr.Dataset(
        {"counts": (dims, counts), "background": (dims, bkg), "mask_safe": (dims, safe)}
    )


def test_scale_uses_safe_and_not_excluded_bins():
    counts = np.full((2, 3, 3), 4.0)
    bkg = np.full((2, 3, 3), 2.0)
    counts[:, 1, 1] = 100.0  # a source, excluded
    excl = np.ones((3, 3), bool)
    excl[1, 1] = False
    safe = np.ones((2, 3, 3), bool)
    safe[0, 0, 0] = False
    out = apply_fov_background(_ds(counts, bkg, safe), excl, "scale")
    assert out.attrs["bkg_norm"] == pytest.approx(2.0)
    assert out.attrs["bkg_norm_error"] == pytest.approx(np.sqrt(4.0 * 15) / (2.0 * 15))
    assert out["mask_safe"].values.sum() == 17
    fit = apply_fov_background(_ds(counts, bkg, safe), excl, "fit")
    assert fit.attrs["bkg_norm"] == pytest.approx(2.0)
    assert fit.attrs["bkg_norm_error"] == pytest.approx(2.0 / np.sqrt(60.0))


def test_failure_masks_everything():
    counts = np.zeros((2, 3, 3))
    out = apply_fov_background(_ds(counts, np.ones((2, 3, 3))), None, "scale")
    assert not out["mask_safe"].values.any() and out.attrs["bkg_norm"] == 1.0
    norm, _, ok = fov_background_norm(np.ones(4), np.ones(4), np.ones(4, bool), min_counts=10)
    assert norm == 1.0 and not ok
    with pytest.raises(ValueError, match="method"):
        fov_background_norm(np.ones(4), np.ones(4), np.ones(4, bool), method="ring")

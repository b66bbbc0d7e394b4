"""Unit and real-data tests of gdask.reduce.maps."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gdask.dl3 import ObservationInfo
from gdask.dl3.irf import Background2D, Background3D
from gdask.dl3.irf.fast import bilinear_background_evaluator, eval_aeff, eval_edisp_pdf, eval_psf
from gdask.geometry import WcsGeom
from gdask.reduce import (
    default_rad_axis,
    irf_geom,
    make_background,
    make_counts,
    make_edisp_kernel_map,
    make_exposure,
    make_map_dataset,
    make_psf_map,
)
from gdask.reduce._common import fov_radec, offsets, rotation_times
from gdask.reduce.maps import _fill_missing_energy, _pad_offset

CRAB = (83.633, 22.014)


# ----------------------------------------------------------------------------- synthetic


def test_fill_missing_energy_interpolates_interior_holes_in_log():
    e = np.geomspace(0.1, 100, 7)
    x = np.linspace(-1, 1, 3)
    data = np.ones((6, 2, 2), dtype=np.float32)
    data[:, 0, 0] = [0, 1e-2, 0, 1e-4, 0, 0]  # interior hole at 2; edges left alone
    bkg = Background3D.create(e, x, x, data)
    out = _fill_missing_energy(bkg).ds["background"].values
    np.testing.assert_allclose(out[:, 0, 0], [0, 1e-2, 1e-3, 1e-4, 0, 0], rtol=1e-6)
    assert out.dtype == np.float32
    assert bkg.ds["background"].values[2, 0, 0] == 0  # input untouched
    assert _fill_missing_energy(Background3D.create(e, x, x, np.ones((6, 2, 2)))) is not None


def test_pad_offset_adds_edge_bins():
    bkg = Background2D.create(
        np.geomspace(0.1, 10, 4), np.linspace(0, 2, 5), np.arange(12.0).reshape(3, 4) + 1
    )
    out = _pad_offset(bkg)
    np.testing.assert_allclose(out.edges("offset"), np.linspace(-0.5, 2.5, 7))
    v = out.ds["background"].transpose("energy", "offset").values
    np.testing.assert_array_equal(v[:, 0], v[:, 1])
    np.testing.assert_array_equal(v[:, -1], v[:, -2])


def test_fov_radec_orientation(small_geom):
    lon, lat = fov_radec(small_geom, CRAB)
    iy, ix = (np.array(small_geom.shape) - 1) // 2
    assert abs(lon[iy, ix]) < 0.05 and abs(lat[iy, ix]) < 0.05
    # east (larger RA: column 0, CDELT1 < 0) is negative FoV longitude (Gammapy's FoV frames)
    assert lon[iy, 0] < 0 < lon[iy, -1]
    assert lat[-1, ix] > 0 > lat[0, ix]
    rev, _ = fov_radec(small_geom, CRAB, reverse_lon=True)
    np.testing.assert_array_equal(rev, -lon)
    np.testing.assert_allclose(np.hypot(lon, lat), offsets(small_geom, CRAB), rtol=1e-3)


def test_bilinear_background_equals_class_evaluation():
    e = np.geomspace(0.1, 100, 11)
    x = np.linspace(-2, 2, 9)
    rng = np.random.default_rng(1)
    data = (rng.uniform(0.5, 2, (10, 8, 8)) * np.geomspace(1, 1e-6, 10)[:, None, None]).astype(
        np.float32
    )
    data[3, 2, 2] = 0
    bkg = Background3D.create(e, x, x, data)
    energy = np.geomspace(0.05, 200, 15)[:, None, None]
    lon, lat = rng.uniform(-2.5, 2.5, (2, 1, 7, 9))
    fast = bilinear_background_evaluator(bkg)(energy, lon, lat)
    np.testing.assert_allclose(fast, bkg.evaluate(energy, lon, lat), rtol=1e-12, atol=1e-300)


# ----------------------------------------------------------------------------- real data

pytestmark_real = pytest.mark.realdata


@pytestmark_real
def test_fast_irf_paths_equal_irf_classes(hess_obs, small_geom, axes):
    _, et = axes
    off = offsets(small_geom, hess_obs.events.pointing) * 1.6  # reach beyond the IRF offsets
    aeff, psf, edisp = (hess_obs.irfs[k] for k in ("aeff", "psf", "edisp"))
    e = np.geomspace(0.01, 200, 12)
    np.testing.assert_allclose(
        eval_aeff(aeff, e, off), aeff.evaluate(e[:, None, None], off[None]), rtol=1e-12, atol=1e-10
    )
    rad = default_rad_axis().center
    np.testing.assert_allclose(
        eval_psf(psf, e, rad, off),
        psf.evaluate(e[:, None, None, None], off[None, None], rad[None, :, None, None]),
        rtol=1e-10,
        atol=1e-8,
    )
    m = edisp.nodes("migra")
    np.testing.assert_allclose(
        eval_edisp_pdf(edisp, e, off),
        edisp.evaluate(e[:, None, None, None], m[None, :, None, None], off[None, None]),
        rtol=1e-10,
        atol=1e-12,
    )


@pytestmark_real
def test_counts(hess_obs, small_geom, axes):
    e, _ = axes
    counts = make_counts(hess_obs.events, small_geom, e)
    assert counts.dims == ("energy", "lat", "lon") and counts.shape == (5, 40, 40)
    ra, dec = hess_obs.events.radec
    energy = hess_obs.events.energy.to_value("TeV")
    inside = small_geom.contains(ra, dec) & (energy >= e.edges[0]) & (energy < e.edges[-1])
    assert counts.values.sum() == inside.sum() > 0
    gal = WcsGeom.create(
        skydir=(184.557, -5.784), binsz=0.05, width=(2, 2), frame="galactic", proj="CAR"
    )
    assert make_counts(hess_obs.events, gal, e).values.sum() > 0.9 * inside.sum()


@pytestmark_real
def test_exposure_and_background(hess_obs, small_geom, axes):
    e, et = axes
    info = ObservationInfo.from_observation(hess_obs)
    assert info.livetime == pytest.approx(1687.0 * 0.9376, rel=1e-4)
    assert info.bkg_reverse_lon and info.location is not None
    exp = make_exposure(hess_obs.irfs["aeff"], info.pointing, info.livetime, small_geom, et)
    off = offsets(small_geom, info.pointing)
    iy, ix = np.unravel_index(np.argmin(off), off.shape)
    ref = hess_obs.irfs["aeff"].evaluate(et.center, off[iy, ix]) * info.livetime
    np.testing.assert_allclose(exp.values[:, iy, ix], ref, rtol=1e-12)
    assert exp.attrs["units"] == "m2 s"
    bkg = make_background(hess_obs.irfs["bkg"], info.pointing, info.ontime, small_geom, e)
    assert np.all(bkg.values >= 0) and bkg.values.sum() > 10
    over = make_background(
        hess_obs.irfs["bkg"], info.pointing, info.ontime, small_geom, e, oversampling=3
    )
    np.testing.assert_allclose(over.values.sum(), bkg.values.sum(), rtol=0.05)
    # ALTAZ: time steps cover the run; the map is close to the RADEC one (the FoV rotates)
    times = rotation_times(info.pointing, info.time_start, info.ontime, info.location)
    assert len(times) > 2 and (times[-1] - times[0]).to_value("s") == pytest.approx(info.ontime)
    altaz = make_background(
        hess_obs.irfs["bkg"],
        info.pointing,
        info.ontime,
        small_geom,
        e,
        "ALTAZ",
        time_start=info.time_start,
        location=info.location,
    )
    np.testing.assert_allclose(altaz.values.sum(), bkg.values.sum(), rtol=0.05)
    with pytest.raises(ValueError, match="ALTAZ"):
        make_background(hess_obs.irfs["bkg"], info.pointing, info.ontime, small_geom, e, "ALTAZ")


@pytestmark_real
def test_psf_and_edisp_maps(hess_obs, small_geom, axes):
    e, et = axes
    gi = irf_geom(small_geom)
    assert gi.shape == (10, 10)
    pnt = hess_obs.events.pointing
    psf = make_psf_map(hess_obs.irfs["psf"], pnt, gi, et)
    rad = default_rad_axis()
    ring = 2 * np.pi * rad.center * rad.widths * (np.pi / 180) ** 2
    integral = np.einsum("erij,r->eij", psf["psf"].values, ring)
    np.testing.assert_allclose(integral[integral > 0], 1.0, rtol=1e-12)
    assert "psf_exposure" not in psf
    ex = np.ones((et.nbin,) + gi.shape)
    ed = make_edisp_kernel_map(hess_obs.irfs["edisp"], pnt, gi, et, e, exposure=ex)
    assert ed["edisp"].dims == ("edisp_energy_true", "edisp_energy", "edisp_lat", "edisp_lon")
    np.testing.assert_allclose(ed["edisp_exposure"].values, 1e4)
    k = ed["edisp"].values
    assert np.all(k >= 0) and np.all(k.sum(axis=1) <= 1 + 1e-12)
    # equal to the IRF class's kernel rows
    off = offsets(gi, pnt)
    ref = hess_obs.irfs["edisp"].reco_probabilities(et.center[:, None, None], off[None], e.edges)
    np.testing.assert_allclose(k, np.moveaxis(ref, -1, 1), rtol=1e-9, atol=1e-14)


@pytestmark_real
def test_make_map_dataset(hess_obs, small_geom, axes):
    e, et = axes
    ds = make_map_dataset(
        hess_obs,
        small_geom,
        e,
        et,
        safe_mask=("offset-max", "aeff-default"),
        offset_max=2.5,
        fov_background="scale",
    )
    assert isinstance(ds, xr.Dataset)
    for name in (
        "counts",
        "exposure",
        "background",
        "mask_safe",
        "psf",
        "psf_exposure",
        "edisp",
        "edisp_exposure",
        "energy_bounds",
        "energy_true_bounds",
    ):
        assert name in ds
    assert ds["mask_safe"].dtype == bool and ds["mask_safe"].values.any()
    assert (
        ds.attrs["obs_id"] == 23523
        and ds.attrs["name"] == "23523"
        and 0.5 < ds.attrs["bkg_norm"] < 2
    )
    assert WcsGeom.from_header(ds.attrs["wcs_header"]) == small_geom
    np.testing.assert_allclose(ds["psf_exposure"].values, ds["edisp_exposure"].values)
    sub = make_map_dataset(hess_obs, small_geom, e, et, selection=["counts"])
    assert "exposure" not in sub and "psf" not in sub and sub["mask_safe"].values.all()
    np.testing.assert_array_equal(sub["counts"].values, ds["counts"].values)
    with pytest.raises(ValueError, match="selection"):
        make_map_dataset(hess_obs, small_geom, e, et, selection=["nope"])


@pytestmark_real
def test_cutout(hess_obs, axes):
    e, et = axes
    big = WcsGeom.create(skydir=CRAB, binsz=0.05, width=(6, 6), frame="icrs", proj="CAR")
    excl = big.separation(CRAB) > 0.3
    ds = make_map_dataset(
        hess_obs,
        big,
        e,
        et,
        selection=["counts", "background", "psf"],
        cutout_width=2.0,
        fov_background="scale",
        exclusion_mask=excl,
    )
    geom = WcsGeom.from_header(ds.attrs["wcs_header"])
    assert geom.shape == (40, 40) and geom.is_aligned(big)
    assert ds["psf"].shape[-2:] == (10, 10)
    assert geom.separation(hess_obs.events.pointing).min() < 0.05

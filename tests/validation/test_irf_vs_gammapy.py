"""Effective area, energy dispersion, background and RAD_MAX against Gammapy 2.1.

Tolerances: 1e-6 relative wherever Gammapy's value is above ``TINY`` (1e-9)
times the largest value of the comparison; below it (clipped extrapolation,
zero-filled regions, the steep tails of the background) the absolute
difference must be below ``TINY`` times that maximum. Measured agreement is
at the 1e-10 level or better (the background's log-interpolation is matched
by taking the log of the stored float32 rates in float32, as Gammapy does).
"""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from gammapy.irf import Background2D as GPBackground2D
from gammapy.irf import Background3D as GPBackground3D
from gammapy.irf import EffectiveAreaTable2D
from gammapy.irf import EnergyDispersion2D as GPEnergyDispersion2D
from gammapy.irf import RadMax2D as GPRadMax2D
from gammapy.makers.utils import _get_fov_coord, make_map_background_irf
from gammapy.maps import MapAxis, WcsGeom
from gammapy.utils.coordinates import FoVICRSFrame

from gdask.dl3.irf import Background2D, Background3D, EffectiveArea2D, EnergyDispersion2D, RadMax2D

pytestmark = pytest.mark.validation

RTOL = 1e-6
TINY = 1e-9
HESS_RUNS = (20136, 23523, 23592, 33787)
POINT_LIKE = (
    ("joint-crab/dl3/fact/fact_irf.fits", "EFFECTIVE AREA", "ENERGY DISPERSION"),
    ("veritas/crab-point-like-ED/64080.fits.gz", "EFFECTIVE AREA", "ENERGY DISPERSION"),
    ("joint-crab/dl3/magic/run_05029747_DL3.fits", "EFFECTIVE AREA", "ENERGY DISPERSION"),
    ("joint-crab/dl3/veritas/54809_DL3.fits", "EFFECTIVE AREA", "ENERGY DISPERSION"),
    (
        "magic/rad_max/data/20131004_05029747_DL3_CrabNebula-W0.40+035.fits",
        "EFFECTIVE AREA",
        "ENERGY DISPERSION",
    ),
)


def assert_agree(ours, ref):
    """1e-6 relative where ``ref`` is not tiny, ``TINY * max|ref|`` absolute elsewhere."""
    ours, ref = np.broadcast_arrays(np.asarray(ours, float), np.asarray(ref, float))
    assert np.all(np.isfinite(ours)) and np.all(np.isfinite(ref))
    scale = np.max(np.abs(ref)) if ref.size else 0.0
    if scale == 0:
        np.testing.assert_array_equal(ours, ref)
        return
    big = np.abs(ref) > TINY * scale
    np.testing.assert_allclose(ours[big], ref[big], rtol=RTOL, atol=0)
    np.testing.assert_allclose(ours[~big], ref[~big], rtol=0, atol=TINY * scale)


def _hess(data_dir, obs_id):
    return data_dir / f"hess-dl3-dr1/data/hess_dl3_dr1_obs_id_{obs_id:06d}.fits.gz"


def _read(path, hdu, ours, theirs):
    with fits.open(path) as hl, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ours.from_hdu(hl[hdu], file=str(path)), theirs.from_hdulist(hl, hdu=hdu)


def _random_log(rng, edges, n, pad=0.5):
    return np.exp(rng.uniform(np.log(edges[0]) - pad, np.log(edges[-1]) + pad, n))


def _random_lin(rng, edges, n, pad=0.3):
    return rng.uniform(edges[0] - pad, edges[-1] + pad, n)


def _grid(irf, dims):
    return np.meshgrid(*(irf.nodes(d) for d in dims), indexing="ij")


# ---------------------------------------------------------------- effective area


def _check_aeff(path, hdu):
    ours, ref = _read(path, hdu, EffectiveArea2D, EffectiveAreaTable2D)
    rng = np.random.default_rng(0)
    e = _random_log(rng, ours.edges("energy_true"), 4000)
    o = _random_lin(rng, ours.edges("offset"), 4000)
    assert_agree(
        ours.evaluate(e, o), ref.evaluate(energy_true=e * u.TeV, offset=o * u.deg).to_value("m2")
    )
    eg, og = _grid(ours, ("energy_true", "offset"))
    assert_agree(
        ours.evaluate(eg, og),
        ref.evaluate(energy_true=eg * u.TeV, offset=og * u.deg).to_value("m2"),
    )
    ee, oe = ours.edges("energy_true"), ours.edges("offset")  # on the edges
    ge, go = np.meshgrid(ee, oe, indexing="ij")
    assert_agree(
        ours.evaluate(ge, go),
        ref.evaluate(energy_true=ge * u.TeV, offset=go * u.deg).to_value("m2"),
    )
    assert ours.point_like == ref.is_pointlike
    return ours


@pytest.mark.realdata
@pytest.mark.parametrize("obs_id", HESS_RUNS)
def test_aeff_hess(data_dir, obs_id):
    _check_aeff(_hess(data_dir, obs_id), "AEFF")


@pytest.mark.realdata
@pytest.mark.parametrize(("path", "aeff_hdu", "edisp_hdu"), POINT_LIKE)
def test_aeff_point_like(data_dir, path, aeff_hdu, edisp_hdu):
    ours = _check_aeff(data_dir / path, aeff_hdu)
    assert ours.point_like


# ---------------------------------------------------------------- energy dispersion


def _check_edisp(path, hdu, offsets):
    ours, ref = _read(path, hdu, EnergyDispersion2D, GPEnergyDispersion2D)
    rng = np.random.default_rng(1)
    n = 4000
    e = _random_log(rng, ours.edges("energy_true"), n)
    m = _random_lin(rng, ours.edges("migra"), n, pad=0.2)
    o = _random_lin(rng, ours.edges("offset"), n)
    assert_agree(
        ours.evaluate(e, m, o), ref.evaluate(energy_true=e * u.TeV, migra=m, offset=o * u.deg).value
    )
    eg, mg, og = _grid(ours, ("energy_true", "migra", "offset"))
    assert_agree(
        ours.evaluate(eg, mg, og),
        ref.evaluate(energy_true=eg * u.TeV, migra=mg, offset=og * u.deg).value,
    )
    ee = ours.edges("energy_true")
    axis_true = MapAxis.from_energy_bounds(
        max(ee[0], 0.03), min(ee[-1], 80.0), nbin=25, unit="TeV", name="energy_true"
    )
    axis_reco = MapAxis.from_energy_bounds(0.05, 50.0, nbin=17, unit="TeV", name="energy")
    for off in offsets:
        kernel = ref.to_edisp_kernel(
            offset=off * u.deg, energy_axis_true=axis_true, energy_axis=axis_reco
        )
        mine = ours.reco_probabilities(
            axis_true.center.to_value("TeV"), off, axis_reco.edges.to_value("TeV")
        )
        assert mine.shape == kernel.data.shape
        assert_agree(mine, kernel.data)


@pytest.mark.realdata
@pytest.mark.parametrize("obs_id", HESS_RUNS[:2])
def test_edisp_hess(data_dir, obs_id):
    _check_edisp(_hess(data_dir, obs_id), "EDISP", offsets=(0.25, 0.5, 1.13, 2.3))


@pytest.mark.realdata
@pytest.mark.parametrize(("path", "aeff_hdu", "edisp_hdu"), POINT_LIKE)
def test_edisp_point_like(data_dir, path, aeff_hdu, edisp_hdu):
    _check_edisp(data_dir / path, edisp_hdu, offsets=(0.4, 0.7))


# ---------------------------------------------------------------- background


@pytest.mark.realdata
@pytest.mark.parametrize("obs_id", HESS_RUNS)
def test_bkg3d_rate_hess(data_dir, obs_id):
    ours, ref = _read(_hess(data_dir, obs_id), "BKG", Background3D, GPBackground3D)
    rng = np.random.default_rng(obs_id)
    n = 20000
    e = _random_log(rng, ours.edges("energy"), n, pad=0.3)
    x = _random_lin(rng, ours.edges("fov_lon"), n, pad=0.2)
    y = _random_lin(rng, ours.edges("fov_lat"), n, pad=0.2)
    unit = "s-1 MeV-1 sr-1"
    assert_agree(
        ours.evaluate(e, x, y),
        ref.evaluate(energy=e * u.TeV, fov_lon=x * u.deg, fov_lat=y * u.deg).to_value(unit),
    )
    eg, xg, yg = _grid(ours, ("energy", "fov_lon", "fov_lat"))
    assert_agree(
        ours.evaluate(eg, xg, yg),
        ref.evaluate(energy=eg * u.TeV, fov_lon=xg * u.deg, fov_lat=yg * u.deg).to_value(unit),
    )


@pytest.mark.realdata
@pytest.mark.parametrize("obs_id", HESS_RUNS)
@pytest.mark.parametrize("oversampling", [None, 3])
def test_bkg3d_integral_hess(data_dir, obs_id, oversampling):
    """The per-energy-bin integral, off-grid points, as Gammapy's integrate_log_log + upsampling."""
    ours, ref = _read(_hess(data_dir, obs_id), "BKG", Background3D, GPBackground3D)
    rng = np.random.default_rng(obs_id + 1)
    lon, lat = rng.uniform(-2.7, 2.7, (2, 25, 30))
    axis = MapAxis.from_energy_bounds(0.1, 100.0, nbin=16, unit="TeV", name="energy")
    fine = axis.upsample(oversampling) if oversampling else axis
    theirs = ref.integrate_log_log(
        energy=fine.edges[:, None, None],
        fov_lon=lon * u.deg,
        fov_lat=lat * u.deg,
        axis_name="energy",
    ).to_value("s-1 sr-1")
    if oversampling:
        theirs = theirs.reshape((16, oversampling) + lon.shape).sum(axis=1)
    mine = ours.integrate_energy(axis.edges.to_value("TeV"), lon, lat, oversampling=oversampling)
    assert_agree(mine, theirs)


@pytest.mark.realdata
@pytest.mark.parametrize("oversampling", [None, 2])
def test_bkg3d_map_maker(data_dir, oversampling):
    """End to end against make_map_background_irf: ours * solid angle * livetime."""
    path = _hess(data_dir, 23523)
    ours, ref = _read(path, "BKG", Background3D, GPBackground3D)
    pointing = SkyCoord(83.63, 21.51, unit="deg", frame="icrs")
    axis = MapAxis.from_energy_bounds(0.3, 30.0, nbin=6, unit="TeV", name="energy")
    geom = WcsGeom.create(
        skydir=(83.63, 22.01), width=(2.0, 1.6), binsz=0.1, frame="icrs", axes=[axis]
    )
    ontime = 1687.0 * u.s
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bkg_map = make_map_background_irf(
            pointing,
            ontime,
            ref,
            geom,
            time_start=Time("2004-12-04T22:00:00"),
            oversampling=oversampling,
        )
    coords = _get_fov_coord(
        geom.to_image().get_coord().skycoord, FoVICRSFrame(origin=pointing), use_offset=False
    )
    mine = ours.integrate_energy(
        axis.edges.to_value("TeV"),
        coords["fov_lon"].to_value("deg"),
        coords["fov_lat"].to_value("deg"),
        oversampling=oversampling,
    )
    mine = mine * geom.to_image().solid_angle().to_value("sr") * ontime.to_value("s")
    assert_agree(mine, bkg_map.data)


@pytest.mark.parametrize("oversampling", [None, 4])
def test_bkg2d_synthetic(oversampling):
    rng = np.random.default_rng(5)
    e_edges = np.geomspace(0.1, 100, 13)
    o_edges = np.linspace(0.0, 3.0, 7)
    data = (rng.uniform(0.5, 2.0, (12, 6)) * np.geomspace(1e-2, 1e-9, 12)[:, None]).astype(
        np.float32
    )
    data[-1, -1] = 0.0
    ours = Background2D.create(e_edges, o_edges, data)
    ref = GPBackground2D.from_table(_table(ours.to_hdu()))
    e = _random_log(rng, e_edges, 5000, pad=0.3)
    o = _random_lin(rng, o_edges, 5000, pad=0.3)
    assert_agree(ours.evaluate(e, o), ref.evaluate(energy=e * u.TeV, offset=o * u.deg).value)
    axis = MapAxis.from_energy_bounds(0.2, 50.0, nbin=9, unit="TeV", name="energy")
    fine = axis.upsample(oversampling) if oversampling else axis
    off = rng.uniform(0, 3.2, 40)
    theirs = ref.integrate_log_log(
        energy=fine.edges[:, None], offset=off * u.deg, axis_name="energy"
    ).to_value("s-1 sr-1")
    if oversampling:
        theirs = theirs.reshape(9, oversampling, 40).sum(axis=1)
    assert_agree(
        ours.integrate_energy(axis.edges.to_value("TeV"), off, oversampling=oversampling), theirs
    )


def _table(hdu):
    from astropy.table import Table

    return Table.read(hdu)


# ---------------------------------------------------------------- RAD_MAX


@pytest.mark.realdata
def test_rad_max_magic(data_dir):
    for path in sorted((data_dir / "magic/rad_max/data").glob("*.fits")):
        ours, ref = _read(path, "RAD_MAX", RadMax2D, GPRadMax2D)
        rng = np.random.default_rng(2)
        e = _random_log(rng, ours.edges("energy"), 3000)
        o = _random_lin(rng, ours.edges("offset"), 3000, pad=0.05)
        assert_agree(
            ours.evaluate(e, o), ref.evaluate(energy=e * u.TeV, offset=o * u.deg).to_value("deg")
        )
        e = np.concatenate([ours.nodes("energy"), ours.edges("energy")])
        assert_agree(
            ours.evaluate(e, ours.nodes("offset")[0]),
            ref.evaluate(energy=e * u.TeV, offset=ours.nodes("offset")[0] * u.deg).to_value("deg"),
        )


@pytest.mark.realdata
def test_rad_max_from_irf(data_dir):
    ours, ref = _read(
        data_dir / POINT_LIKE[0][0], "EFFECTIVE AREA", EffectiveArea2D, EffectiveAreaTable2D
    )
    rm, grm = RadMax2D.from_irf(ours), GPRadMax2D.from_irf(ref)
    e = np.geomspace(0.01, 300, 50)
    assert_agree(
        rm.evaluate(e, 0.5),
        grm.evaluate(energy=e * u.TeV, offset=0.5 * u.deg, method="nearest").to_value("deg"),
    )

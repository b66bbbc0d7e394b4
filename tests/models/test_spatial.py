"""Spatial models: values, normalisation, gradients, YAML round trip."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from gdask.models import model_from_dict
from gdask.models.spatial import (
    ConstantSpatialModel,
    DiskSpatialModel,
    GaussianSpatialModel,
    GeneralizedGaussianSpatialModel,
    PointSpatialModel,
    Shell2SpatialModel,
    ShellSpatialModel,
    disk_norm,
    sky_geometry,
)
from gdask.models.spatial_template import TemplateSpatialModel, wcs_pixel_solid_angle

LON0, LAT0 = 83.6, 22.0

CASES = {
    "gauss": (GaussianSpatialModel, dict(lon_0=LON0, lat_0=LAT0, sigma=0.4, e=0.0, phi=0.0)),
    "gauss-ell": (GaussianSpatialModel, dict(lon_0=LON0, lat_0=LAT0, sigma=0.4, e=0.7, phi=35.0)),
    "gengauss": (
        GeneralizedGaussianSpatialModel,
        dict(lon_0=LON0, lat_0=LAT0, r_0=0.5, eta=0.7, e=0.4, phi=-20.0),
    ),
    "disk": (
        DiskSpatialModel,
        dict(lon_0=LON0, lat_0=LAT0, r_0=0.6, e=0.0, phi=0.0, edge_width=0.2),
    ),
    "disk-ell": (
        DiskSpatialModel,
        dict(lon_0=LON0, lat_0=LAT0, r_0=0.6, e=0.6, phi=60.0, edge_width=0.2),
    ),
    "shell": (ShellSpatialModel, dict(lon_0=LON0, lat_0=LAT0, radius=0.5, width=0.3)),
    "shell2": (Shell2SpatialModel, dict(lon_0=LON0, lat_0=LAT0, r_0=0.8, eta=0.4)),
}


def _points(n=400, half=1.2, seed=3):
    rng = np.random.default_rng(seed)
    return LON0 + rng.uniform(-half, half, n), LAT0 + rng.uniform(-half, half, n)


def _sep_deg(lon, lat, lon0=LON0, lat0=LAT0):
    c = SkyCoord(lon * u.deg, lat * u.deg)
    return c.separation(SkyCoord(lon0 * u.deg, lat0 * u.deg)).deg


# ------------------------------------------------------------------- geometry
def test_sky_geometry_matches_astropy():
    lon, lat = _points()
    geo = sky_geometry(lon, lat, LON0, LAT0)
    np.testing.assert_allclose(np.degrees(geo["sep"]), _sep_deg(lon, lat), rtol=1e-12)
    c0 = SkyCoord(LON0 * u.deg, LAT0 * u.deg)
    pa = c0.position_angle(SkyCoord(lon * u.deg, lat * u.deg)).rad
    np.testing.assert_allclose(np.cos(geo["pa"]), np.cos(pa), atol=1e-12)
    np.testing.assert_allclose(np.sin(geo["pa"]), np.sin(pa), atol=1e-12)


# --------------------------------------------------------------------- values
def test_gaussian_symmetric_formula():
    lon, lat = _points()
    s = np.radians(0.4)
    a = 1 - np.cos(s)
    d = np.radians(_sep_deg(lon, lat))
    expected = np.exp(-(1 - np.cos(d)) / (2 * a)) / (4 * np.pi * a * (1 - np.exp(-1 / a)))
    got = GaussianSpatialModel.evaluate(lon, lat, **CASES["gauss"][1])
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_gaussian_elongated_axes():
    """Along the major axis the width is sigma, along the minor sigma*sqrt(1-e^2)."""
    pars = dict(lon_0=0.0, lat_0=0.0, sigma=0.5, e=0.8, phi=0.0)  # major axis north
    d = np.array([0.1, 0.3, 0.6])
    norm = 1 / (2 * np.pi * np.radians(0.5) ** 2 * np.sqrt(1 - 0.64))
    major = GaussianSpatialModel.evaluate(0 * d, d, **pars)
    minor = GaussianSpatialModel.evaluate(d, 0 * d, **pars)
    for vals, sig in ((major, 0.5), (minor, 0.5 * 0.6)):
        a = 1 - np.cos(np.radians(sig))
        np.testing.assert_allclose(
            vals, norm * np.exp(-(1 - np.cos(np.radians(d))) / (2 * a)), rtol=1e-10
        )


def test_gengauss_eta_half_is_gaussian():
    lon, lat = _points()
    r0 = 0.3
    got = GeneralizedGaussianSpatialModel.evaluate(lon, lat, LON0, LAT0, r0, 0.5, 0.0, 0.0)
    d = np.radians(_sep_deg(lon, lat))
    expected = np.exp(-((d / np.radians(r0)) ** 2)) / (np.pi * np.radians(r0) ** 2)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_disk_plateau_and_norm():
    r0 = 0.8
    norm = 1 / (2 * np.pi * (1 - np.cos(np.radians(r0))))
    assert disk_norm(r0, 0.0) == pytest.approx(norm, rel=1e-12)
    v = DiskSpatialModel.evaluate(
        np.array([0.0, 0.3, 2.0]), np.zeros(3), 0.0, 0.0, r0, 0.0, 0.0, 0.01
    )
    np.testing.assert_allclose(v, [norm, norm, 0.0], rtol=1e-12, atol=0)
    # half value on the edge
    edge = DiskSpatialModel.evaluate(r0, 0.0, 0.0, 0.0, r0, 0.0, 0.0, 0.05)
    assert edge == pytest.approx(0.5 * norm, rel=1e-12)


def test_shell_projection_formula():
    lon, lat = _points()
    ri, ro = np.radians(0.5), np.radians(0.8)
    d = np.radians(_sep_deg(lon, lat))
    outer = np.sqrt(np.clip(ro**2 - d**2, 0, None))
    inner = np.sqrt(np.clip(ri**2 - d**2, 0, None))
    expected = 3 / (2 * np.pi * (ro**3 - ri**3)) * (outer - inner)
    np.testing.assert_allclose(
        ShellSpatialModel.evaluate(lon, lat, LON0, LAT0, 0.5, 0.3), expected, rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        Shell2SpatialModel.evaluate(lon, lat, LON0, LAT0, 0.8, 0.375),
        expected,
        rtol=1e-10,
        atol=1e-12,
    )


def test_constant():
    m = ConstantSpatialModel(value=3.0)
    np.testing.assert_allclose(m(np.zeros((2, 3)), np.zeros((2, 3))), 3.0)
    assert m.position is None


# ---------------------------------------------------------------- normalisation
def _sky_integral(cls, pars, half):
    """Integral over a lon/lat box around (0, 0) with the cos(lat) Jacobian."""
    n = 801
    lon = np.linspace(-half, half, n)
    lat = np.linspace(-half, half, n)
    lo, la = np.meshgrid(lon, lat)
    step = np.radians(lon[1] - lon[0]) * np.radians(lat[1] - lat[0])
    return np.sum(cls.evaluate(lo, la, **pars) * np.cos(np.radians(la))) * step


@pytest.mark.parametrize(
    "name,rtol",
    [
        ("gauss", 1e-6),
        ("gauss-ell", 1e-3),
        ("gengauss", 1e-3),
        ("disk", 2e-3),
        ("disk-ell", 2e-3),
        ("shell", 3e-3),
        ("shell2", 3e-3),
    ],
)
def test_normalisation(name, rtol):
    cls, pars = CASES[name]
    pars = dict(pars, lon_0=0.0, lat_0=0.0)
    if "edge_width" in pars:  # the norm is that of the sharp disk (Gammapy's definition)
        pars["edge_width"] = 0.01
    half = 3.0 if name != "gengauss" else 4.0
    assert _sky_integral(cls, pars, half) == pytest.approx(1.0, rel=rtol)


def test_disk_norm_elliptical_is_exact_on_sphere():
    """Sharp elliptical disk of 5 deg: the spherical norm integrates to 1 to 1e-4."""
    pars = dict(lon_0=0.0, lat_0=0.0, r_0=5.0, e=0.8, phi=30.0, edge_width=1e-4)
    assert _sky_integral(DiskSpatialModel, pars, 6.0) == pytest.approx(1.0, rel=1e-3)


# ------------------------------------------------------------------ gradients
def _fd_check(fun, grad, pars, skip=(), rtol=1e-5):
    for name in pars:
        if name in skip:
            continue
        h = 1e-5 if name in ("e", "eta", "edge_width") else 1e-4
        pp, pm = dict(pars), dict(pars)
        pp[name] += h
        pm[name] -= h
        fd = (fun(**pp) - fun(**pm)) / (2 * h)
        scale = np.max(np.abs(fd)) + 1e-300
        np.testing.assert_allclose(grad[name], fd, rtol=rtol, atol=rtol * scale, err_msg=name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients(name):
    cls, pars = CASES[name]
    lon, lat = _points(n=300)
    d = _sep_deg(lon, lat)
    keep = d > 0.02
    if name.startswith("shell"):
        p = pars
        r_in, r_out = (0.5, 0.8) if name == "shell" else (0.48, 0.8)
        keep &= (np.abs(d - r_in) > 0.05) & (np.abs(d - r_out) > 0.05)
        del p
    lon, lat = lon[keep], lat[keep]
    skip = ("e",) if pars.get("e", 1) == 0 else ()
    if pars.get("e", 1) == 0:
        skip += ("phi",)
    grad = cls.evaluate_grad(lon, lat, **pars)
    assert set(grad) == set(pars)
    _fd_check(lambda **p: cls.evaluate(lon, lat, **p), grad, pars, skip=skip)


def test_gaussian_grad_e_zero_branch():
    lon, lat = _points(n=50)
    g = GaussianSpatialModel.evaluate_grad(lon, lat, **CASES["gauss"][1])
    assert np.all(g["e"] == 0) and np.all(g["phi"] == 0)


def test_model_gradient_uses_parameter_units():
    m = GaussianSpatialModel(lon_0=LON0, lat_0=LAT0, sigma=0.5 * u.deg)
    m.sigma.quantity = 30 * u.arcmin
    lon, lat = _points(n=20)
    g = m.gradient(lon, lat)
    gc = GaussianSpatialModel.evaluate_grad(lon, lat, **m.canonical_pars())
    np.testing.assert_allclose(g["sigma"], gc["sigma"] / 60.0, rtol=1e-12)


# ----------------------------------------------------------------- point source
def _header(nx=20, ny=16, binsz=0.1, frame="icrs"):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"] if frame == "icrs" else ["GLON-CAR", "GLAT-CAR"]
    w.wcs.crval = [LON0, LAT0] if frame == "icrs" else [0.0, 0.0]
    w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    w.wcs.cdelt = [-binsz, binsz]
    return w.to_header().tostring()


def test_point_pixel_weights_and_gradient():
    hdr = _header()
    m = PointSpatialModel(lon_0=LON0 + 0.013, lat_0=LAT0 - 0.021)
    w, g_lon, g_lat = m.pixel_weights(hdr, (16, 20), grad=True)
    assert w.sum() == pytest.approx(1.0)
    y, x = np.mgrid[0:16, 0:20]
    x0, y0 = WCS(fits.Header.fromstring(hdr)).wcs_world2pix(*m.position, 0)
    assert np.sum(w * x) == pytest.approx(x0) and np.sum(w * y) == pytest.approx(y0)
    h = 1e-5
    for grad, dl in ((g_lon, (h, 0)), (g_lat, (0, h))):
        lon, lat = m.position
        wp = PointSpatialModel(lon_0=lon + dl[0], lat_0=lat + dl[1]).pixel_weights(hdr, (16, 20))
        wm = PointSpatialModel(lon_0=lon - dl[0], lat_0=lat - dl[1]).pixel_weights(hdr, (16, 20))
        np.testing.assert_allclose(grad, (wp - wm) / (2 * h), atol=1e-6)
    with pytest.raises(NotImplementedError):
        m(LON0, LAT0)
    assert m.evaluation_radius == 0


# ------------------------------------------------------------------- template
def test_template_normalised_and_gradient():
    hdr = _header(nx=30, ny=24, binsz=0.05)
    yy, xx = np.mgrid[0:24, 0:30]
    data = np.exp(-((xx - 14.3) ** 2 + (yy - 11.7) ** 2) / 40.0) + 0.01
    m = TemplateSpatialModel(data, hdr, normalize=True)
    assert m.frame == "icrs" and m.unit == "sr-1"
    omega = wcs_pixel_solid_angle(hdr, data.shape)
    lon, lat = WCS(fits.Header.fromstring(hdr)).wcs_pix2world(xx, yy, 0)
    vals = m(lon, lat)
    assert np.sum(vals * omega) == pytest.approx(1.0, rel=1e-10)
    # flat-sky check of the solid angles near the tangent point
    assert omega[12, 15] == pytest.approx(np.radians(0.05) ** 2, rel=1e-4)
    # shifted template: gradient against finite differences, inside cells
    lo, la = _points(n=200, half=0.4, seed=5)
    pars = dict(lon_0=m.map_center[0] + 0.02, lat_0=m.map_center[1] - 0.03)
    grad = m.evaluate_grad(lo, la, **pars)
    h = 1e-7
    for name in pars:
        pp, pm = dict(pars), dict(pars)
        pp[name] += h
        pm[name] -= h
        fd = (m.evaluate(lo, la, **pp) - m.evaluate(lo, la, **pm)) / (2 * h)
        np.testing.assert_allclose(grad[name], fd, rtol=1e-4, atol=1e-4 * np.abs(fd).max())
    # far outside: 0
    assert m.evaluate(LON0 + 10, LAT0, **pars) == 0


def test_template_fermi_iem_cube(data_dir):
    fn = data_dir / "fermi-3fhl-crab" / "Fermi-LAT-3FHL_iem.fits"
    m = TemplateSpatialModel.read(fn, normalize=False)
    assert m.is_energy_dependent and m.frame == "galactic"
    assert u.Unit(m.unit) == u.Unit("cm-2 MeV-1 s-1 sr-1")
    assert m.data.shape == (30, 32, 40)
    lon, lat = m.map_center
    e = np.array([1e-4, 1e-3, 1e-2, 1e-1])
    v = m(np.full(4, lon), np.full(4, lat), e)
    assert np.all(v > 0) and np.all(np.diff(v) < 0)  # falling diffuse spectrum
    # energy nodes: the file's bin edges in TeV
    assert m.energy_nodes[0] == pytest.approx(5e-5, rel=1e-6)
    assert m(lon, lat, 1.0) == 0  # above the last edge
    d = m.to_dict()["spatial"]
    assert d["filename"] == str(fn) and d["normalize"] is False and d["frame"] == "galactic"
    m2 = model_from_dict(yaml.safe_load(yaml.safe_dump(m.to_dict())))
    np.testing.assert_allclose(m2(np.full(4, lon), np.full(4, lat), e), v)
    mn = TemplateSpatialModel.read(fn)  # normalised per energy plane
    omega = wcs_pixel_solid_angle(mn.wcs_header, mn.data.shape[1:])
    np.testing.assert_allclose((mn.data * omega).sum(axis=(1, 2)), 1.0, rtol=1e-10)


# ------------------------------------------------------------------------ YAML
@pytest.mark.parametrize("name", sorted(CASES))
def test_yaml_round_trip(name):
    cls, pars = CASES[name]
    m = cls(frame="galactic", **pars)
    m.parameters["lon_0"].frozen = True
    m.parameters["lon_0"].error = 0.1
    text = yaml.safe_dump(m.to_dict(), sort_keys=False)
    data = yaml.safe_load(text)
    assert list(data["spatial"]) == ["type", "frame", "parameters"]
    m2 = model_from_dict(data)
    assert type(m2) is cls and m2.frame == "galactic"
    np.testing.assert_allclose(m2.parameters.value, m.parameters.value)
    assert m2.parameters["lon_0"].frozen and m2.parameters["lon_0"].error == 0.1
    assert list(m2.parameters.frozen) == list(m.parameters.frozen)


def test_yaml_constant_and_point_and_short_tags():
    d = ConstantSpatialModel(value=2.0).to_dict()
    assert d == {"spatial": {"type": "ConstantSpatialModel", "parameters": []}}
    assert model_from_dict(d).parameters["value"].value == 1.0  # as Gammapy: not written
    crab = {
        "type": "PointSpatialModel",
        "frame": "icrs",
        "parameters": [
            {"name": "lon_0", "value": 83.63310241699219, "unit": "deg", "frozen": True},
            {
                "name": "lat_0",
                "value": 22.019899368286133,
                "unit": "deg",
                "min": -90.0,
                "max": 90.0,
                "frozen": True,
            },
        ],
    }
    p = model_from_dict({"spatial": crab})
    assert isinstance(p, PointSpatialModel) and p.position == pytest.approx(
        (83.6331, 22.0199), abs=1e-4
    )
    assert isinstance(
        model_from_dict({"spatial": {"type": "gauss", "frame": "icrs"}}), GaussianSpatialModel
    )
    with pytest.raises(ValueError):
        GaussianSpatialModel(frame="fk5")


def test_lonlat_in_frame():
    m = GaussianSpatialModel(frame="galactic")
    lon, lat = m.lonlat_in_frame([83.633], [22.0145], "icrs")
    assert lon[0] == pytest.approx(184.5575, abs=1e-3) and lat[0] == pytest.approx(
        -5.7843, abs=1e-3
    )

"""Unit tests of gdask.geometry.wcs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import SkyCoord

from gdask.errors import FormatError
from gdask.geometry import SKY_COORDS, SKY_DIMS, WCS_ATTR, EnergyAxis, WcsGeom

CRAB = (83.633, 22.014)


@pytest.fixture
def geom():
    return WcsGeom.create(skydir=CRAB, width=3, binsz=0.02)


def test_create_conventions(geom):
    assert geom.npix == (150, 150) and geom.shape == (150, 150)
    wcs = geom.wcs.wcs
    np.testing.assert_allclose(wcs.crpix, [75.5, 75.5])
    np.testing.assert_allclose(wcs.crval, CRAB)
    np.testing.assert_allclose(wcs.cdelt, [-0.02, 0.02])
    assert list(wcs.ctype) == ["RA---CAR", "DEC--CAR"]
    assert geom.frame == "icrs" and geom.projection == "CAR"
    # even npix: the centre lies between pixels, exactly at CRVAL
    np.testing.assert_allclose(geom.center_coord, CRAB, atol=1e-12)
    assert geom.width == pytest.approx((3.0, 3.0))


def test_create_odd_npix_and_rectangular():
    g = WcsGeom.create(skydir=CRAB, width=(2.1, 1.6), binsz=0.1, frame="galactic", proj="TAN")
    assert g.npix == (21, 16) and g.shape == (16, 21)
    np.testing.assert_allclose(g.wcs.wcs.crpix, [11.0, 8.5])
    assert list(g.wcs.wcs.ctype) == ["GLON-TAN", "GLAT-TAN"]
    lon, lat = g.get_coord()
    assert lon.shape == (16, 21)
    np.testing.assert_allclose((lon[7, 10], 0.5 * (lat[7, 10] + lat[8, 10])), CRAB, atol=1e-3)
    g = WcsGeom.create(npix=(10, 5), binsz=(0.1, 0.2))
    assert g.npix == (10, 5)
    np.testing.assert_allclose(g.binsz, (0.1, 0.2))
    with pytest.raises(ValueError):
        WcsGeom.create(frame="fk4")


def test_allsky():
    g = WcsGeom.create(binsz=1.0, frame="galactic", proj="AIT")
    assert g.npix == (360, 180) and g.is_allsky
    lon, lat = g.get_coord()
    assert np.isnan(lon[0, 0]) and np.isfinite(lon[90, 180])


def test_skycoord_skydir_is_transformed():
    pos = SkyCoord(*CRAB, unit="deg")
    g = WcsGeom.create(skydir=pos, width=1, binsz=0.1, frame="galactic")
    gal = pos.galactic
    np.testing.assert_allclose(g.wcs.wcs.crval, [gal.l.deg, gal.b.deg])


def test_header_roundtrip(geom):
    header = geom.to_header()
    assert header["WCSSHAPE"] == "(150,150)"
    assert WcsGeom.from_header(header) == geom
    assert WcsGeom.from_header(geom.to_header_string()) == geom
    h = geom.wcs.to_header()
    h["NAXIS1"], h["NAXIS2"] = 150, 150
    assert WcsGeom.from_header(h) == geom
    with pytest.raises(FormatError):
        WcsGeom.from_header(geom.wcs.to_header())


def test_pixel_coordinate_transforms(geom):
    lon, lat = geom.get_coord()
    x, y = geom.coord_to_pix(lon, lat)
    np.testing.assert_allclose(x, np.arange(150)[None, :] + 0 * x, atol=1e-9)
    np.testing.assert_allclose(y, np.arange(150)[:, None] + 0 * y, atol=1e-9)
    ix, iy = geom.coord_to_idx(SkyCoord(lon[3, 7], lat[3, 7], unit="deg"))
    assert (int(ix), int(iy)) == (7, 3)
    assert geom.contains(*CRAB)
    assert not geom.contains(90.0, 22.0)
    assert not geom.contains(SkyCoord(0, 0, unit="deg"))
    # a galactic position is transformed to the grid's frame
    crab_gal = SkyCoord(*CRAB, unit="deg").galactic
    np.testing.assert_allclose(geom.coord_to_pix(crab_gal), geom.center_pix, atol=1e-8)
    edges = geom.get_coord("edges")[0]
    assert edges.shape == (151, 151)
    with pytest.raises(ValueError):
        geom.get_coord("corners")


def test_solid_angle(geom):
    sa = geom.solid_angle()
    assert sa.shape == (150, 150)
    # small pixels: close to the flat-sky area times cos(lat) for this oblique CAR grid
    flat = np.deg2rad(0.02) ** 2
    assert np.all(np.abs(sa / flat - 1) < 1e-3)
    np.testing.assert_allclose(geom.upsample(2).solid_angle().sum(), sa.sum(), rtol=1e-6)
    # all-sky CAR covers 4 pi
    allsky = WcsGeom.create(binsz=0.5, frame="galactic")
    assert allsky.solid_angle().sum() == pytest.approx(4 * np.pi, rel=1e-3)


def test_separation(geom):
    sep = geom.separation(SkyCoord(*CRAB, unit="deg"))
    assert sep.shape == geom.shape
    assert sep.min() == pytest.approx(np.hypot(0.01, 0.01), rel=1e-2)
    np.testing.assert_allclose(geom.separation(CRAB), sep)


def test_resampling(geom):
    up = geom.upsample(3)
    assert up.npix == (450, 450)
    np.testing.assert_allclose(up.binsz, (0.02 / 3, 0.02 / 3))
    assert up.downsample(3) == geom
    with pytest.raises(ValueError):
        geom.downsample(7)
    # upsampled pixel centres average to the parent centres
    lon_up = up.get_coord()[1].reshape(150, 3, 150, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(lon_up, geom.get_coord()[1], atol=1e-9)


def test_to_binsz(geom):
    irf = geom.to_binsz(0.2)
    assert irf.npix == (15, 15)
    np.testing.assert_allclose(irf.wcs.wcs.crval, CRAB, atol=1e-10)
    assert irf.projection == "CAR" and irf.frame == "icrs"


def test_cutout_is_aligned(geom):
    cut = geom.cutout(SkyCoord(83.2, 22.5, unit="deg"), 1.0)
    assert cut.npix == (50, 50)
    assert cut.is_aligned(geom)
    sl = cut.cutout_slices(geom)
    lon, lat = geom.get_coord()
    clon, clat = cut.get_coord()
    np.testing.assert_allclose(clon, lon[sl["parent-slices"]], atol=1e-9)
    np.testing.assert_allclose(clat, lat[sl["parent-slices"]], atol=1e-9)
    odd = geom.cutout(CRAB, (0.5, 0.3), odd_npix=True)
    assert odd.npix == (25, 15)
    # trimmed at the border
    edge = geom.cutout(SkyCoord(84.9, 21.0, unit="deg"), 2.0)
    assert edge.npix[0] < 100 and edge.npix[1] < 100


def test_xarray_coords(geom):
    coords = geom.to_coords()
    assert set(coords) == set(SKY_COORDS)
    assert coords["sky_lon"].dims == SKY_DIMS == ("lat", "lon")
    assert coords["sky_lat"].attrs["units"] == "deg"
    axis = EnergyAxis.from_bounds(0.7, 10, 10)
    cube = geom.to_cube_coords(axis)
    assert set(cube) == {"energy", "energy_bounds", "sky_lon", "sky_lat"}
    assert WcsGeom.cube_dims(axis) == ("energy", "lat", "lon")
    ds = geom.empty(axis, name="counts")
    da = ds["counts"]
    assert da.shape == (10, 150, 150) and da.dims == ("energy", "lat", "lon")
    assert WcsGeom.from_dataset(ds) == geom
    assert WCS_ATTR in ds.attrs
    assert EnergyAxis.from_dataset(ds, "energy") == axis
    # the grid survives a netCDF-like round trip of the attrs (a plain string)
    da = xr.DataArray(np.zeros(geom.shape), dims=SKY_DIMS, coords=geom.to_coords())
    da.attrs.update(geom.to_attrs())
    assert WcsGeom.from_dataset(da) == geom
    assert geom.empty()["data"].dims == SKY_DIMS
    with pytest.raises(FormatError):
        WcsGeom.from_dataset(xr.Dataset())


def test_equality(geom):
    assert geom == WcsGeom.create(skydir=CRAB, width=3, binsz=0.02)
    assert geom != WcsGeom.create(skydir=CRAB, width=3, binsz=0.05)
    assert geom != "geom"
    assert not geom.is_aligned(WcsGeom.create(skydir=CRAB, width=3, binsz=0.02, proj="TAN"))
    assert "WcsGeom" in repr(geom)

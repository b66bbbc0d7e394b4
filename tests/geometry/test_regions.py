"""Unit tests of gdask.geometry.regions and WcsGeom.region_mask."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from regions import CircleSkyRegion, PointSkyRegion, RectangleSkyRegion

from gdask.errors import FileReadError, FormatError
from gdask.geometry import (
    RadMaxRegion,
    WcsGeom,
    circle_region,
    parse_regions,
    read_ds9,
    region_center,
    region_contains,
)

CRAB = SkyCoord(83.633, 22.014, unit="deg")


def test_circle_contains_matches_separation():
    region = circle_region(83.633, 22.014, 0.11)
    rng = np.random.default_rng(0)
    lon = 83.633 + rng.uniform(-0.2, 0.2, 4000)
    lat = 22.014 + rng.uniform(-0.2, 0.2, 4000)
    sep = CRAB.separation(SkyCoord(lon, lat, unit="deg")).deg
    inside = region_contains(region, lon, lat)
    # the TAN-projected circle equals the spherical one up to ~r^2/3 relative
    far = np.abs(sep - 0.11) > 1e-5
    np.testing.assert_array_equal(inside[far], sep[far] < 0.11)
    # galactic input positions are transformed
    gal = SkyCoord(lon, lat, unit="deg").galactic
    np.testing.assert_array_equal(region_contains(region, gal), inside)
    np.testing.assert_array_equal(
        region_contains(region, gal.l.deg, gal.b.deg, frame="galactic"), inside
    )


def test_region_lists_and_errors():
    a = circle_region(83.633, 22.014, 0.1)
    b = circle_region(83.9, 22.014, 0.1)
    lon, lat = np.array([83.633, 83.9, 84.5]), np.array([22.014, 22.014, 22.014])
    np.testing.assert_array_equal(region_contains([a, b], lon, lat), [True, True, False])
    np.testing.assert_array_equal(region_contains(a | b, lon, lat), [True, True, False])
    with pytest.raises(ValueError):
        region_contains(PointSkyRegion(CRAB), lon, lat)
    c = region_center(a | b)
    assert c.ra.deg == pytest.approx(83.7665, abs=1e-3)


def test_parse_regions():
    assert parse_regions(None) == []
    assert len(parse_regions("icrs; circle(83.6, 22.0, 0.3)")) == 1
    assert isinstance(parse_regions(CRAB)[0], PointSkyRegion)
    assert len(parse_regions([circle_region(0, 0, 1), circle_region(1, 0, 1)])) == 2


def test_read_ds9(tmp_path):
    path = tmp_path / "excl.reg"
    path.write_text("# Region file format: DS9\nfk5\ncircle(83.633008,22.013995,0.300000)\n")
    regions = read_ds9(path)
    assert len(regions) == 1 and isinstance(regions[0], CircleSkyRegion)
    assert regions[0].radius.to_value("deg") == pytest.approx(0.3)
    with pytest.raises(FileReadError):
        read_ds9(tmp_path / "missing.reg")
    bad = tmp_path / "bad.reg"
    bad.write_text("fk5\ncircle(1,2\n")
    with pytest.raises(FormatError):
        read_ds9(bad)


def test_region_mask():
    geom = WcsGeom.create(skydir=(83.633, 22.014), width=2, binsz=0.05)
    mask = geom.region_mask(CircleSkyRegion(CRAB, 0.3 * u.deg))
    assert mask.shape == geom.shape and mask.dtype == bool
    sep = geom.separation(CRAB)
    far = np.abs(sep - 0.3) > 1e-4
    np.testing.assert_array_equal(mask[far], sep[far] < 0.3)
    np.testing.assert_array_equal(
        geom.region_mask(CircleSkyRegion(CRAB, 0.3 * u.deg), inside=False), ~mask
    )
    # ds9 string and list
    np.testing.assert_array_equal(geom.region_mask("icrs; circle(83.633, 22.014, 0.3)"), mask)
    rect = RectangleSkyRegion(SkyCoord(83.0, 22.5, unit="deg"), 0.5 * u.deg, 0.3 * u.deg)
    both = geom.region_mask([CircleSkyRegion(CRAB, 0.3 * u.deg), rect])
    assert both.sum() == mask.sum() + geom.region_mask(rect).sum()
    # a point marks the (up to four) neighbouring pixels
    assert 1 <= geom.region_mask(PointSkyRegion(CRAB)).sum() <= 4
    assert geom.region_mask([]).sum() == 0


def test_rad_max_region_energy_dependent():
    edges = np.array([0.1, 1.0, 10.0, 100.0])
    region = RadMaxRegion(CRAB, edges, np.array([0.2, 0.1, 0.05]))
    assert not region.is_fixed
    # nearest node in log energy: nodes at sqrt(0.1), sqrt(10), sqrt(1000)
    np.testing.assert_allclose(
        region.radius([0.1, 0.5, 2.0, 5.0, 100.0]), [0.2, 0.2, 0.1, 0.1, 0.05]
    )
    # outside the table: nothing selected by default, edge values without fill
    np.testing.assert_allclose(region.radius([0.01, 1e4, np.nan]), 0.0)
    extended = RadMaxRegion(CRAB, edges, region.rad_max, fill_value=None)
    np.testing.assert_allclose(extended.radius([0.01, 1e4]), [0.2, 0.05])
    pos = CRAB.directional_offset_by(0 * u.deg, [0.15, 0.15, 0.08, 0.03] * u.deg)
    mask = region.contains(pos, None, np.array([0.5, 5.0, 5.0, 50.0]))
    np.testing.assert_array_equal(mask, [True, False, True, True])
    mask2 = region.contains(pos.ra.deg, pos.dec.deg, np.array([0.5, 5.0, 5.0, 50.0]))
    np.testing.assert_array_equal(mask, mask2)
    assert region.to_circle(5.0).radius.to_value("deg") == pytest.approx(0.1)
    with pytest.raises(FormatError):
        RadMaxRegion(CRAB, edges, np.array([0.1, 0.2]))


def test_rad_max_region_fixed_and_table():
    fixed = RadMaxRegion.fixed(CRAB, 0.1)
    assert fixed.is_fixed
    np.testing.assert_allclose(fixed.radius([0.01, 1, 100]), 0.1)
    table = np.array([[0.1, 0.2, 0.3], [0.05, 0.1, 0.15]])  # (energy, offset)
    r = RadMaxRegion.from_table(CRAB, [0.1, 1.0, 10.0], [0.0, 0.5, 1.0, 1.5], table, offset=0.6)
    np.testing.assert_allclose(r.rad_max, [0.2, 0.1])
    out = RadMaxRegion.from_table(CRAB, [0.1, 1.0, 10.0], [0.0, 0.5, 1.0, 1.5], table, offset=2.0)
    np.testing.assert_allclose(out.rad_max, 0.0)

"""gdask.geometry against gammapy.maps 2.1 (the oracle): identical pixel grids and axes."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from gammapy.maps import MapAxis
from gammapy.maps import WcsGeom as GpWcsGeom
from regions import CircleSkyRegion, EllipseSkyRegion, PointSkyRegion, RectangleSkyRegion

from gdask.geometry import Axis, EnergyAxis, WcsGeom

pytestmark = pytest.mark.validation

CRAB = (83.633, 22.014)

CONFIGS = {
    "crab-3deg-0.02-CAR": dict(skydir=CRAB, width=3, binsz=0.02, frame="icrs", proj="CAR"),
    "crab-2deg-0.05-CAR": dict(skydir=CRAB, width=(2, 2), binsz=0.05, frame="icrs", proj="CAR"),
    "crab-3deg-0.2-CAR": dict(skydir=CRAB, width=3, binsz=0.2, frame="icrs", proj="CAR"),
    "crab-odd-even": dict(skydir=CRAB, width=(2.1, 1.6), binsz=0.1, frame="icrs", proj="CAR"),
    "galactic-TAN": dict(
        skydir=(184.557, -5.784), width=(4, 3), binsz=0.04, frame="galactic", proj="TAN"
    ),
    "gc-galactic-TAN": dict(
        skydir=(0.0, 0.0), width=(3, 2), binsz=0.05, frame="galactic", proj="TAN"
    ),
    "pks-AIT": dict(skydir=(329.717, -30.226), width=(6, 4), binsz=0.1, frame="icrs", proj="AIT"),
    "allsky-CAR": dict(binsz=2.0, frame="galactic", proj="CAR"),
}


def header_dict(header):
    return {k: header[k] for k in header if k not in ("COMMENT", "HISTORY", "")}


def wrap_diff(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def assert_same_grid(ours: WcsGeom, ref: GpWcsGeom, solid_angle: bool = True):
    assert header_dict(ours.to_header()) == header_dict(ref.to_header())
    assert ours.npix == (int(ref.npix[0][0]), int(ref.npix[1][0]))
    assert ours.shape == ref.data_shape
    coord = ref.get_coord()
    lon, lat = ours.get_coord()
    finite = np.isfinite(coord.lon.value)
    np.testing.assert_array_equal(np.isfinite(lon), finite)
    assert np.max(wrap_diff(lon[finite], coord.lon.value[finite]), initial=0) < 1e-12
    assert np.max(np.abs(lat[finite] - coord.lat.value[finite]), initial=0) < 1e-12
    if solid_angle:
        ref_sa = ref.solid_angle().to_value("sr")
        ok = np.isfinite(ref_sa)
        np.testing.assert_allclose(ours.solid_angle()[ok], ref_sa[ok], rtol=1e-10)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_create(name):
    kw = CONFIGS[name]
    assert_same_grid(WcsGeom.create(**kw), GpWcsGeom.create(**kw))


def test_create_from_skycoord_and_npix():
    pos = SkyCoord(83.633, 22.014, unit="deg")
    for kw in (dict(width=2, binsz=0.05), dict(npix=(41, 30), binsz=0.05)):
        for frame in ("icrs", "galactic"):
            assert_same_grid(
                WcsGeom.create(skydir=pos, frame=frame, **kw),
                GpWcsGeom.create(skydir=pos, frame=frame, **kw),
            )


def test_from_header_roundtrip_gammapy():
    ref = GpWcsGeom.create(**CONFIGS["crab-3deg-0.02-CAR"])
    ours = WcsGeom.from_header(ref.to_header())
    assert_same_grid(ours, ref, solid_angle=False)
    back = GpWcsGeom.from_header(ours.to_header())
    assert back == ref


@pytest.mark.parametrize("name", ["crab-3deg-0.02-CAR", "galactic-TAN", "crab-odd-even"])
def test_binsz_irf(name):
    kw = CONFIGS[name]
    assert_same_grid(
        WcsGeom.create(**kw).to_binsz(0.2), GpWcsGeom.create(**kw).to_binsz(0.2 * u.deg)
    )


@pytest.mark.parametrize("factor", [2, 5])
def test_up_and_downsample(factor):
    kw = CONFIGS["crab-3deg-0.02-CAR"]
    ours, ref = WcsGeom.create(**kw), GpWcsGeom.create(**kw)
    assert_same_grid(ours.downsample(factor), ref.downsample(factor), solid_angle=False)
    assert_same_grid(ours.upsample(factor), ref.upsample(factor), solid_angle=False)


CUTOUTS = [
    ((83.633, 22.014), 1.0, {}),
    ((83.2, 22.5), (0.7, 1.13), {}),
    ((84.9, 21.0), 2.0, {}),  # clipped at the border (trim)
    ((84.9, 21.0), 2.0, {"mode": "partial"}),
    ((83.7, 22.1), 0.5, {"odd_npix": True}),
    ((83.7, 22.1), 0.01, {"min_npix": 3}),
]


@pytest.mark.parametrize("position, width, kw", CUTOUTS)
def test_cutout(position, width, kw):
    cfg = CONFIGS["crab-3deg-0.02-CAR"]
    ours, ref = WcsGeom.create(**cfg), GpWcsGeom.create(**cfg)
    pos = SkyCoord(*position, unit="deg")
    width_q = tuple(w * u.deg for w in width) if isinstance(width, tuple) else width * u.deg
    c_ref = ref.cutout(pos, width_q, **kw)
    c_ours = ours.cutout(pos, width, **kw)
    assert_same_grid(c_ours, c_ref, solid_angle=False)
    slices_ref = c_ref.cutout_slices(ref)
    assert c_ours.cutout_slices(ours) == slices_ref


def test_separation_and_pixel_transforms():
    kw = CONFIGS["galactic-TAN"]
    ours, ref = WcsGeom.create(**kw), GpWcsGeom.create(**kw)
    center = SkyCoord(83.633, 22.014, unit="deg")
    np.testing.assert_allclose(
        ours.separation(center), ref.separation(center).deg, rtol=0, atol=1e-11
    )
    rng = np.random.default_rng(3)
    lon = 184.557 + rng.uniform(-3, 3, 500)
    lat = -5.784 + rng.uniform(-2.5, 2.5, 500)
    x_ref, y_ref = ref.coord_to_pix((lon, lat))
    x, y = ours.coord_to_pix(lon, lat)
    np.testing.assert_allclose(x, x_ref, atol=1e-9)
    np.testing.assert_allclose(y, y_ref, atol=1e-9)
    np.testing.assert_array_equal(ours.contains(lon, lat), ref.contains((lon, lat)))
    ix_ref, iy_ref = ref.coord_to_idx((lon, lat))
    ix, iy = ours.coord_to_idx(lon, lat)
    np.testing.assert_array_equal(ix, ix_ref)
    np.testing.assert_array_equal(iy, iy_ref)


def test_region_mask():
    cfg = CONFIGS["crab-3deg-0.02-CAR"]
    ours, ref = WcsGeom.create(**cfg), GpWcsGeom.create(**cfg)
    crab = SkyCoord(*CRAB, unit="deg")
    regions = [
        CircleSkyRegion(crab, 0.3 * u.deg),
        EllipseSkyRegion(SkyCoord(84.5, 21.5, unit="deg"), 0.4 * u.deg, 0.2 * u.deg, 30 * u.deg),
        RectangleSkyRegion(SkyCoord(82.8, 22.8, unit="deg"), 0.5 * u.deg, 0.3 * u.deg),
        PointSkyRegion(SkyCoord(83.0, 21.5, unit="deg")),
        CircleSkyRegion(SkyCoord(184.557, -5.784, unit="deg", frame="galactic"), 0.2 * u.deg),
    ]
    for region in regions:
        np.testing.assert_array_equal(ours.region_mask(region), ref.region_mask([region]).data)
    np.testing.assert_array_equal(ours.region_mask(regions), ref.region_mask(regions).data)
    np.testing.assert_array_equal(
        ours.region_mask(regions, inside=False), ref.region_mask(regions, inside=False).data
    )


def test_exclusion_file_mask(data_dir):
    path = data_dir / "joint-crab" / "exclusion" / "Crab_exclusion.reg"
    text = path.read_text()
    cfg = CONFIGS["crab-2deg-0.05-CAR"]
    ours, ref = WcsGeom.create(**cfg), GpWcsGeom.create(**cfg)
    np.testing.assert_array_equal(ours.region_mask(text), ref.region_mask(text).data)


def test_energy_axes_hess_reco():
    edges = 10 ** (np.arange(-24, 40) / 24.0)
    ref = MapAxis.from_edges(edges, unit="TeV", name="energy", interp="log")
    ours = EnergyAxis.from_edges(edges, unit="TeV")
    assert ours.nbin == ref.nbin == 63
    np.testing.assert_allclose(ours.edges, ref.edges.to_value("TeV"), rtol=1e-14)
    np.testing.assert_allclose(ours.center, ref.center.to_value("TeV"), rtol=1e-14)
    np.testing.assert_allclose(ours.widths, ref.bin_width.to_value("TeV"), rtol=1e-12)
    energies = 10 ** np.random.default_rng(1).uniform(-1.2, 1.8, 1000)
    ref_idx = ref.coord_to_idx(energies * u.TeV)
    np.testing.assert_array_equal(ours.coord_to_idx(energies), ref_idx)
    np.testing.assert_allclose(
        ours.coord_to_pix(energies), ref.coord_to_pix(energies * u.TeV), atol=1e-10
    )


@pytest.mark.parametrize(
    "args, kw",
    [
        ((0.7, 10, 10), dict(unit="TeV")),
        ((0.5, 20, 20), dict(unit="TeV", name="energy_true")),
        ((0.3, 30, 10), dict(unit="TeV")),
        ((0.1, 100, 5), dict(unit="TeV", per_decade=True)),
        ((0.1, 50, 5), dict(unit="TeV", per_decade=True)),
        ((0.1, 50, 5), dict(unit="TeV", per_decade=True, strict_bounds=False)),
        ((100, 1e5, 8), dict(unit="GeV")),
    ],
)
def test_energy_axes_from_bounds(args, kw):
    ref = MapAxis.from_energy_bounds(*args, **kw)
    ours = EnergyAxis.from_bounds(*args, **kw)
    assert ours.name == ref.name
    assert ours.nbin == ref.nbin
    assert ours.unit == ref.unit.to_string()
    np.testing.assert_allclose(ours.edges, ref.edges.value, rtol=1e-14)
    np.testing.assert_allclose(ours.center, ref.center.value, rtol=1e-14)
    np.testing.assert_allclose(
        ours.downsample(2, strict=False).edges,
        ref.downsample(2, strict=False).edges.value,
        rtol=1e-14,
    )
    np.testing.assert_allclose(ours.upsample(3).edges, ref.upsample(3).edges.value, rtol=1e-13)
    np.testing.assert_allclose(
        ours.slice(slice(2, 5)).edges, ref.slice(slice(2, 5)).edges.value, rtol=1e-14
    )


def test_linear_axes():
    ref = MapAxis.from_bounds(0, 0.66, 66, name="rad", unit="deg")
    ours = Axis.from_bounds(0, 0.66, 66, name="rad", unit="deg")
    np.testing.assert_allclose(ours.edges, ref.edges.value, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(ours.center, ref.center.value, rtol=1e-14, atol=1e-15)
    ref = MapAxis.from_bounds(0.2, 5, 48, name="migra")
    ours = Axis.from_bounds(0.2, 5, 48, name="migra")
    np.testing.assert_allclose(ours.edges, ref.edges.value, rtol=1e-14)
    np.testing.assert_allclose(ours.center, ref.center.value, rtol=1e-14)


def test_region_contains_events_like_regiongeom():
    from gammapy.maps import RegionGeom

    from gdask.geometry import region_contains

    rng = np.random.default_rng(7)
    lon = 83.633 + rng.uniform(-0.5, 0.5, 20000)
    lat = 22.014 + rng.uniform(-0.5, 0.5, 20000)
    sky = SkyCoord(lon, lat, unit="deg")
    crab = SkyCoord(*CRAB, unit="deg")
    regions = [
        CircleSkyRegion(crab, 0.11 * u.deg),
        EllipseSkyRegion(crab, 0.4 * u.deg, 0.2 * u.deg, 30 * u.deg),
        RectangleSkyRegion(SkyCoord(83.4, 22.2, unit="deg"), 0.5 * u.deg, 0.3 * u.deg, 10 * u.deg),
        CircleSkyRegion(crab.galactic, 0.2 * u.deg),
    ]
    for region in regions:
        ref = RegionGeom.create(region).contains(sky)
        np.testing.assert_array_equal(region_contains(region, lon, lat), ref)


def test_rad_max_nearest_like_gammapy():
    from gammapy.irf import RadMax2D

    from gdask.geometry import RadMaxRegion

    e_axis = MapAxis.from_energy_edges([0.05, 0.1, 0.3, 1.0, 5.0, 30.0] * u.TeV)
    o_axis = MapAxis.from_edges([0.0, 0.6, 1.2, 2.0] * u.deg, name="offset")
    table = np.array(
        [
            [0.3, 0.32, 0.35],
            [0.2, 0.22, 0.25],
            [0.12, 0.13, 0.15],
            [0.08, 0.09, 0.1],
            [0.06, 0.07, 0.08],
        ]
    )
    ref = RadMax2D(axes=[e_axis, o_axis], data=table, unit="deg")
    energies = 10 ** np.random.default_rng(5).uniform(-1.6, 1.8, 3000)
    energies[:3] = [0.05, 30.0, 0.3]  # on the edges
    for offset in (0.1, 0.95, 1.7, 2.5):
        ours = RadMaxRegion.from_table(
            SkyCoord(*CRAB, unit="deg"), e_axis.edges.value, o_axis.edges.value, table, offset
        )
        expected = ref.evaluate(method="nearest", energy=energies * u.TeV, offset=offset * u.deg)
        np.testing.assert_allclose(ours.radius(energies), expected.to_value("deg"), rtol=1e-12)

"""MapDataset: synthetic construction, migration->kernel, FITS round trips of real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from gdask.datasets import BandAxis, EDispKernelMap, MapDataset, MapDatasetOnOff, migra_to_kernel
from gdask.errors import FileReadError, FormatError
from gdask.geometry import Axis, EnergyAxis, WcsGeom

MAP_FILES = [
    "fermi-3fhl-crab/Fermi-LAT-3FHL_data_Fermi-LAT.fits",
    "fermi-3fhl-gc/fermi-3fhl-gc.fits.gz",
    "hawc/DL4/nHit-5.fits.gz",
    "hawc/DL4/nHit-6.fits.gz",
    "hawc/DL4/nHit-7.fits.gz",
    "hawc/DL4/nHit-8.fits.gz",
    "hawc/DL4/nHit-9.fits.gz",
]


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    a, b = a.copy(), b.copy()
    for d in (a, b):  # the GTI header card order is not preserved by gdask.dl3
        d.attrs.pop("gti_attrs", None)
    xr.testing.assert_identical(a, b)


@pytest.fixture
def small() -> MapDataset:
    geom = WcsGeom.create(skydir=(83.6, 22.0), width=2.0, binsz=0.1, frame="icrs")
    e = EnergyAxis.from_bounds(0.1, 10, 4, unit="TeV")
    et = EnergyAxis.from_bounds(0.05, 20, 6, unit="TeV", name="energy_true")
    ds = MapDataset.create(geom, e, et, binsz_irf=0.5, name="small")
    rng = np.random.default_rng(1)
    ds.ds["counts"][:] = rng.poisson(3, ds.ds["counts"].shape)
    ds.ds["psf"][:] = rng.random(ds.ds["psf"].shape)
    ds.ds["mask_safe"][:] = True
    return ds


def test_create_shapes(small: MapDataset) -> None:
    assert small.counts.dims == ("energy", "lat", "lon")
    assert small.counts.shape == (4, 20, 20)
    assert small.exposure.dims == ("energy_true", "lat", "lon")
    assert small.exposure.attrs["units"] == "cm2 s"
    assert small.psf.data.shape == (6, 66, 4, 4)
    assert small.edisp.data.shape == (6, 4, 4, 4)
    assert small.geom == WcsGeom.create(skydir=(83.6, 22.0), width=2.0, binsz=0.1, frame="icrs")
    assert small.energy_axis.axis == EnergyAxis.from_bounds(0.1, 10, 4, unit="TeV")
    assert small.name == "small"
    assert "small" in repr(small)


def test_fits_roundtrip_synthetic(small: MapDataset, tmp_path: Path) -> None:
    small.write(tmp_path / "d.fits")
    back = MapDataset.read(tmp_path / "d.fits")
    _same(small.ds, back.ds)
    with pytest.raises(OSError):
        small.write(tmp_path / "d.fits")


def test_onoff_roundtrip(tmp_path: Path) -> None:
    geom = WcsGeom.create(skydir=(0, 0), width=1.0, binsz=0.25, frame="galactic")
    e = EnergyAxis.from_bounds(1, 10, 2)
    d = MapDatasetOnOff.create(geom, e, binsz_irf=0.5, name="onoff")
    d.ds["acceptance"][:] = 1.0
    d.ds["acceptance_off"][:] = 4.0
    assert float(d.alpha.max()) == 0.25
    d.write(tmp_path / "o.fits")
    with fits.open(tmp_path / "o.fits") as h:
        assert "COUNTS_OFF" in h and "BACKGROUND" not in h
    back = MapDataset.read(tmp_path / "o.fits")  # plain MapDataset reader ignores OFF maps
    assert "counts_off" not in back.ds
    back = MapDatasetOnOff.read(tmp_path / "o.fits")
    _same(d.ds, back.ds)


def test_from_dataset_type_dispatch(small: MapDataset) -> None:
    assert type(MapDataset.from_dataset(small.ds)) is MapDataset
    with pytest.raises(FormatError):
        MapDataset.from_dataset(xr.Dataset())


def test_shape_checks() -> None:
    geom = WcsGeom.create(width=1.0, binsz=0.5)
    e = EnergyAxis.from_bounds(1, 10, 2)
    with pytest.raises(FormatError):
        MapDataset(geom, e, counts=np.zeros((3, 2, 2)))
    with pytest.raises(ValueError):
        MapDataset(geom, e, exposure=np.zeros((2, 2, 2)))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileReadError):
        MapDataset.read(tmp_path / "nope.fits")


def test_migra_to_kernel_gaussian() -> None:
    """A narrow migration pdf centred on 1 gives a near-diagonal kernel that sums to 1."""
    et = BandAxis(EnergyAxis.from_bounds(1, 100, 10, name="energy_true"))
    er = BandAxis(EnergyAxis.from_bounds(0.1, 1000, 40))
    migra = BandAxis(Axis.from_bounds(0.2, 5, 480, name="migra"))
    m = migra.center
    pdf = np.exp(-0.5 * ((m - 1) / 0.05) ** 2) / (0.05 * np.sqrt(2 * np.pi))
    data = np.broadcast_to(pdf[None, :, None, None], (10, 480, 2, 3)).copy()
    kernel = migra_to_kernel(data, et, migra, er)
    assert kernel.shape == (10, 40, 2, 3)
    np.testing.assert_allclose(kernel.sum(axis=1), 1.0, rtol=1e-6)
    # the mean reconstructed energy follows the true energy
    mean = (kernel[:, :, 0, 0] * np.log(er.center)).sum(axis=1)
    np.testing.assert_allclose(mean, np.log(et.center), atol=0.02)


def test_edisp_kernel_map_dataset_roundtrip() -> None:
    et = BandAxis(EnergyAxis.from_bounds(1, 10, 3, name="energy_true"))
    er = BandAxis.from_nodes([1.0, 2.0, 4.0, 8.0], "energy", "log", "TeV")
    k = EDispKernelMap(
        np.random.default_rng(0).random((3, 4, 1, 1)), et, er, None, np.ones((3, 1, 1))
    )
    back = EDispKernelMap.from_dataset(k.to_dataset())
    assert back.geom is None and back.energy_axis.equal(er) and back.energy_axis_true.equal(et)
    np.testing.assert_array_equal(back.data, k.data)


@pytest.mark.realdata
@pytest.mark.parametrize("rel", MAP_FILES)
def test_real_roundtrip(data_dir: Path, rel: str, tmp_path: Path) -> None:
    path = data_dir / rel
    d = MapDataset.read(path)
    with fits.open(path) as h:
        np.testing.assert_array_equal(d.counts.values, h["COUNTS"].data)
        np.testing.assert_array_equal(d.background.values, h["BACKGROUND"].data)
        np.testing.assert_array_equal(d.mask_safe.values, h["MASK_SAFE"].data.astype(bool))
        np.testing.assert_array_equal(d.exposure.values, h["EXPOSURE"].data)  # cm2 s in all files
        if isinstance(h["EDISP"], fits.ImageHDU):
            np.testing.assert_array_equal(d.ds["edisp"].values, h["EDISP"].data)
    d.write(tmp_path / "rt.fits")
    _same(d.ds, MapDataset.read(tmp_path / "rt.fits").ds)


@pytest.mark.realdata
def test_real_contents(data_dir: Path) -> None:
    crab = MapDataset.read(data_dir / MAP_FILES[0])
    assert crab.psf.energy_axis.node_type == "center" and crab.psf.geom.npix == (2, 1)
    assert crab.edisp.geom.npix == (25, 20) and crab.ds["edisp_exposure"].shape == (5, 20, 25)
    gc = MapDataset.read(data_dir / MAP_FILES[1])
    assert gc.psf.geom is None and gc.edisp.geom is None
    assert gc.counts.dtype == np.int32 and gc.energy_axis_true.node_type == "center"
    np.testing.assert_allclose(gc.energy_axis.axis.edges[[0, -1]], [0.01, 0.5], rtol=1e-6)
    hawc = MapDataset.read(data_dir / MAP_FILES[2])
    assert hawc.name == "nHit-5" and hawc.psf.is_reco and hawc.meta["obs_ids"] == [103000133]
    assert len(hawc.gti.start) == 39250 and hawc.meta_table["OBS_ID"][0] == 103000133


def test_read_stacked_meta_table_vector_obs_id(small: MapDataset, tmp_path: Path) -> None:
    """Gammapy's stacked datasets hold one META_TABLE row with a vector OBS_ID."""
    from astropy.table import Table

    small.write(tmp_path / "d.fits")
    table = Table({"OBS_ID": [[23523, 23526, 23559]], "TELESCOP": [["HESS"] * 3]})
    with fits.open(tmp_path / "d.fits", mode="append") as hdul:
        hdul.append(fits.table_to_hdu(table))
        hdul[-1].name = "META_TABLE"
    back = MapDataset.read(tmp_path / "d.fits")
    assert back.meta["obs_ids"] == [23523, 23526, 23559]

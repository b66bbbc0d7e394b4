"""SpectrumDatasetOnOff OGIP IO and the zarr DatasetStore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from gdask.datasets import DatasetStore, MapDataset, SpectrumDatasetOnOff
from gdask.errors import ArchiveError, FileReadError
from gdask.geometry import EnergyAxis, WcsGeom

SPECTRA = ["fermi", "magic", "veritas", "fact", "hess"]


def _pha_files(data_dir: Path) -> list[Path]:
    files = sorted((data_dir / "joint-crab" / "spectra").glob("*/pha_*.fits"))
    assert {p.parent.name for p in files} == set(SPECTRA)
    return files


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    a, b = a.copy(), b.copy()
    for d in (a, b):
        d.attrs.pop("gti_attrs", None)
    xr.testing.assert_identical(a, b)


@pytest.fixture
def spec() -> SpectrumDatasetOnOff:
    e = EnergyAxis.from_bounds(0.1, 10, 5)
    et = EnergyAxis.from_bounds(0.05, 20, 8, name="energy_true")
    rng = np.random.default_rng(2)
    edisp = rng.random((8, 5))
    edisp[0, :] = 0
    edisp[3, 1] = 0
    return SpectrumDatasetOnOff(
        e,
        et,
        counts=rng.poisson(5, 5).astype(np.int32),
        counts_off=rng.poisson(20, 5).astype(np.int32),
        acceptance=np.ones(5),
        acceptance_off=np.full(5, 5.0),
        exposure=rng.random(8) * 1e9,
        edisp=edisp.astype(np.float32).astype(float),
        mask_safe=[False, True, True, True, False],
        livetime=1000.0,
        name="42",
        areascal=np.ones(5),
    )


def test_spectrum_synthetic_roundtrip(spec: SpectrumDatasetOnOff, tmp_path: Path) -> None:
    np.testing.assert_allclose(spec.alpha.values, 0.2)
    np.testing.assert_allclose(spec.exposure.values, spec.ds["effective_area"].values * 1000.0)
    pha = spec.write(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "arf_obs42.fits",
        "bkg_obs42.fits",
        "pha_obs42.fits",
        "rmf_obs42.fits",
    ]
    with fits.open(pha) as h:
        np.testing.assert_array_equal(h["SPECTRUM"].data["QUALITY"], [1, 0, 0, 0, 1])
        assert h["SPECTRUM"].header["BACKFILE"] == "bkg_obs42.fits"
    back = SpectrumDatasetOnOff.read(pha)
    assert back.meta["HDUCLASS"] == "OGIP"  # the writer adds the OGIP keywords
    _same(spec.ds.drop_attrs(deep=False), back.ds.drop_attrs(deep=False))
    assert back.name == "42" and back.livetime == 1000.0
    again = SpectrumDatasetOnOff.read(back.write(tmp_path / "again"))
    _same(back.ds, again.ds)


def test_spectrum_missing(tmp_path: Path) -> None:
    with pytest.raises(FileReadError):
        SpectrumDatasetOnOff.read(tmp_path / "pha_obs1.fits")


@pytest.mark.realdata
def test_spectrum_real_roundtrip(data_dir: Path, tmp_path: Path) -> None:
    for pha in _pha_files(data_dir):
        d = SpectrumDatasetOnOff.read(pha)
        with fits.open(pha) as h:
            t = h["SPECTRUM"].data
            np.testing.assert_array_equal(d.counts.values, t["COUNTS"])
            np.testing.assert_array_equal(d.mask_safe.values, t["QUALITY"] == 0)
            np.testing.assert_array_equal(d.acceptance.values, t["BACKSCAL"])
            assert d.livetime == h["SPECTRUM"].header["EXPOSURE"]
        out = d.write(tmp_path / pha.parent.name)
        _same(d.ds, SpectrumDatasetOnOff.read(out).ds)
    fact = SpectrumDatasetOnOff.read(data_dir / "joint-crab/spectra/fact/pha_stacked.fits")
    assert fact.name == "stacked" and len(fact.meta["obs_ids"]) == 125


def test_store_roundtrip(spec: SpectrumDatasetOnOff, tmp_path: Path) -> None:
    geom = WcsGeom.create(width=1.0, binsz=0.25)
    m = MapDataset.create(geom, EnergyAxis.from_bounds(1, 10, 2), binsz_irf=0.5, name="map1")
    store = DatasetStore(tmp_path / "s.zarr")
    store.write(spec)
    store.write(m)
    assert store.names() == ["42", "map1"] and "map1" in store and len(store) == 2
    lazy = store.read("map1")
    assert type(lazy) is MapDataset and hasattr(lazy.counts.data, "dask")
    xr.testing.assert_identical(lazy.ds.load(), m.ds)
    xr.testing.assert_identical(store.read("42", lazy=False).ds, spec.ds)
    with pytest.raises(ArchiveError):
        store.write(m)
    store.write(m, overwrite=True)
    with pytest.raises(ArchiveError):
        store.write(m, name="../evil")
    store.delete("42")
    assert store.names() == ["map1"]
    with pytest.raises(ArchiveError):
        store.read("42")


def test_store_crash_leaves_no_half_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DatasetStore(tmp_path / "s.zarr")
    m = MapDataset.create(
        WcsGeom.create(width=1.0, binsz=0.5), EnergyAxis.from_bounds(1, 10, 2), name="x"
    )

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr("gdask.zarrio._write_chunks", boom)
    with pytest.raises(ArchiveError):
        store.write(m)
    assert store.names() == [] and list((store.path / "_staging").iterdir()) == []


@pytest.mark.realdata
def test_store_real(data_dir: Path, tmp_path: Path) -> None:
    store = DatasetStore(tmp_path / "s.zarr")
    d = MapDataset.read(data_dir / "fermi-3fhl-gc/fermi-3fhl-gc.fits.gz", name="gc")
    store.write(d)
    back = store.read("gc")
    xr.testing.assert_identical(back.ds.load(), d.ds)
    assert back.psf.geom is None and back.edisp.data.shape == (12, 11, 1, 1)

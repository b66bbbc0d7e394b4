"""DL4 datasets (GADF-DL4 maps, OGIP spectra) read and written by gdask against Gammapy 2.1.

For every real file: Gammapy's arrays equal gdask's (energies compared in TeV
at 1e-12 relative; data exactly, or at 1e-12 after a unit conversion), and
the files gdask writes read back in Gammapy with the same arrays.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from gammapy.datasets import MapDataset as GPMapDataset
from gammapy.datasets import SpectrumDatasetOnOff as GPSpectrumDatasetOnOff
from gammapy.maps import MapAxis
from gammapy.maps import WcsGeom as GPWcsGeom

from gdask.datasets import MapDataset, SpectrumDatasetOnOff
from gdask.geometry import EnergyAxis, WcsGeom

pytestmark = pytest.mark.validation

MAP_FILES = [
    "fermi-3fhl-crab/Fermi-LAT-3FHL_data_Fermi-LAT.fits",
    "fermi-3fhl-gc/fermi-3fhl-gc.fits.gz",
    "hawc/DL4/nHit-5.fits.gz",
    "hawc/DL4/nHit-9.fits.gz",
]
RTOL = 1e-12


def _axis(gp_axis: MapAxis, gd_axis) -> None:
    np.testing.assert_allclose(
        gp_axis.edges.to_value("TeV" if gp_axis.unit.physical_type == "energy" else "deg"),
        gd_axis.axis.edges,
        rtol=1e-12,
        atol=1e-15,
    )
    np.testing.assert_allclose(
        gp_axis.center.to_value(gd_axis.axis.unit), gd_axis.center, rtol=1e-12
    )
    assert gp_axis.node_type == gd_axis.node_type


def _map(gp_map, values: np.ndarray, unit: str = "") -> None:
    data = gp_map.quantity.to_value(unit) if unit else gp_map.data
    np.testing.assert_allclose(values, data, rtol=RTOL, atol=0)


def _geom(gp_geom, gd_geom) -> None:
    if gd_geom is None:
        assert gp_geom.is_region and gp_geom.region is None
        return
    assert gd_geom == WcsGeom.from_header(gp_geom.to_header())
    np.testing.assert_allclose(gp_geom.wcs.wcs.crval, gd_geom.wcs.wcs.crval)
    assert tuple(int(np.max(n)) for n in gp_geom.npix) == gd_geom.npix


def _compare(gp: GPMapDataset, gd: MapDataset) -> None:
    _geom(gp.counts.geom.to_image(), gd.geom)
    _axis(gp.counts.geom.axes["energy"], gd.energy_axis)
    _axis(gp.exposure.geom.axes["energy_true"], gd.energy_axis_true)
    _map(gp.counts, gd.counts.values)
    _map(gp.background, gd.background.values)
    _map(gp.exposure, gd.exposure.values, "cm2 s")
    np.testing.assert_array_equal(gp.mask_safe.data, gd.mask_safe.values)
    assert (gp.mask_fit is None) == (gd.mask_fit is None)
    psf, gpsf = gd.psf, gp.psf
    _geom(gpsf.psf_map.geom.to_image(), psf.geom)
    _axis(gpsf.psf_map.geom.axes["rad"], psf.rad_axis)
    _axis(gpsf.psf_map.geom.axes[psf.energy_axis.name], psf.energy_axis)
    _map(gpsf.psf_map, psf.data, "sr-1")
    if gpsf.exposure_map is not None:
        _map(gpsf.exposure_map, psf.exposure[:, None], "cm2 s")
    else:
        assert psf.exposure is None
    ed, ged = gd.edisp, gp.edisp
    _geom(ged.edisp_map.geom.to_image(), ed.geom)
    _axis(ged.edisp_map.geom.axes["energy_true"], ed.energy_axis_true)
    _axis(ged.edisp_map.geom.axes["energy"], ed.energy_axis)
    _map(ged.edisp_map, ed.data)
    if ged.exposure_map is not None:
        _map(ged.exposure_map, ed.exposure[:, None], "cm2 s")
    kernel = ged.get_edisp_kernel()  # Gammapy's kernel at the map centre
    assert kernel.pdf_matrix.shape == ed.data.shape[:2]
    if gp.gti is not None and len(gp.gti.table):
        np.testing.assert_array_equal(gp.gti.met_start.to_value("s"), gd.gti.start)


@pytest.mark.realdata
@pytest.mark.parametrize("rel", MAP_FILES)
def test_map_dataset_vs_gammapy(data_dir: Path, rel: str, tmp_path: Path) -> None:
    path = data_dir / rel
    gp = GPMapDataset.read(path, name="x")
    gd = MapDataset.read(path)
    _compare(gp, gd)
    out = tmp_path / "gdask.fits"
    gd.write(out)
    _compare(GPMapDataset.read(out, name="x"), gd)  # Gammapy reads what gdask writes


def test_migra_edisp_vs_gammapy(tmp_path: Path) -> None:
    """A Gammapy EDispMap (migration form) becomes Gammapy's own kernel map in gdask."""
    e = MapAxis.from_energy_bounds(0.3, 30, 6, unit="TeV")
    et = MapAxis.from_energy_bounds(0.1, 100, 12, unit="TeV", name="energy_true")
    geom = GPWcsGeom.create(skydir=(83.6, 22.0), width=2.0, binsz=0.2, axes=[e])
    migra_axis = MapAxis.from_bounds(0.2, 5, 48, name="migra")
    gp = GPMapDataset.create(
        geom, energy_axis_true=et, binsz_irf=1.0, migra_axis=migra_axis, name="m"
    )
    migra = gp.edisp.edisp_map.geom.axes["migra"].center
    pdf = np.exp(-0.5 * ((migra - 1.0) / 0.15) ** 2)
    scale = np.linspace(0.8, 1.2, gp.edisp.edisp_map.data.shape[-1])
    gp.edisp.edisp_map.data[:] = pdf[None, :, None, None] * scale
    gp.edisp.edisp_map.normalize("migra")
    gp.counts.data[:] = 1
    gp.write(tmp_path / "m.fits")
    gd = MapDataset.read(tmp_path / "m.fits")
    ref = gp.edisp.to_edisp_kernel_map(e)
    np.testing.assert_allclose(gd.edisp.data, ref.edisp_map.data, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gd.edisp.data.sum(axis=1)[4], 1.0, atol=0.02)


@pytest.mark.realdata
def test_ogip_spectra_vs_gammapy(data_dir: Path, tmp_path: Path) -> None:
    files = sorted((data_dir / "joint-crab" / "spectra").glob("*/pha_*.fits"))
    assert len(files) == 10
    for pha in files:
        gp = GPSpectrumDatasetOnOff.read(pha)
        gd = SpectrumDatasetOnOff.read(pha)
        for gpd in (gp, GPSpectrumDatasetOnOff.read(gd.write(tmp_path / pha.parent.name))):
            assert gpd.counts.geom.axes["energy"].edges.to_value("TeV") == pytest.approx(
                gd.energy_axis.edges, rel=1e-12
            )
            np.testing.assert_array_equal(gpd.counts.data[:, 0, 0], gd.counts.values)
            np.testing.assert_array_equal(gpd.counts_off.data[:, 0, 0], gd.counts_off.values)
            np.testing.assert_allclose(gpd.alpha.data[:, 0, 0], gd.alpha.values, rtol=RTOL)
            np.testing.assert_allclose(
                gpd.exposure.quantity[:, 0, 0].to_value("cm2 s"), gd.exposure.values, rtol=RTOL
            )
            np.testing.assert_array_equal(gpd.mask_safe.data[:, 0, 0], gd.mask_safe.values)
            matrix = gpd.edisp.get_edisp_kernel().pdf_matrix
            np.testing.assert_allclose(matrix, gd.edisp.values, rtol=1e-7, atol=0)
            assert gpd.exposure.meta["livetime"].to_value("s") == pytest.approx(
                gd.livetime, rel=RTOL
            )


def test_gdask_energy_axis_matches() -> None:
    ax = EnergyAxis.from_bounds(0.1, 10, 4)
    np.testing.assert_allclose(
        MapAxis.from_energy_bounds(0.1, 10, 4, "TeV").edges.to_value(u.TeV), ax.edges
    )


@pytest.mark.realdata
def test_stacked_map_dataset_vs_gammapy(hess_dir: Path, tmp_path: Path) -> None:
    """A MapDataset stacked by Gammapy (META_TABLE with one row of OBS_ID vectors) reads in gdask.

    Regression: reading the multi-valued OBS_ID metadata raised a bare TypeError.
    """
    from gammapy.data import DataStore
    from gammapy.makers import MapDatasetMaker, SafeMaskMaker

    e = MapAxis.from_energy_bounds(0.7, 10, 3, unit="TeV")
    et = MapAxis.from_energy_bounds(0.5, 20, 5, unit="TeV", name="energy_true")
    geom = GPWcsGeom.create(
        skydir=(83.633, 22.014), width=1.0, binsz=0.1, frame="icrs", proj="CAR", axes=[e]
    )
    empty = GPMapDataset.create(geom, energy_axis_true=et, binsz_irf=0.5, name="empty")
    store = DataStore.from_dir(hess_dir)
    maker = MapDatasetMaker()
    safe = SafeMaskMaker(methods=["offset-max"], offset_max=2.5 * u.deg)
    stacked = empty.copy(name="stacked")
    for obs_id in (23523, 23526):
        obs = store.obs(obs_id)
        stacked.stack(safe.run(maker.run(empty.copy(name=str(obs_id)), obs), obs))
    path = tmp_path / "stacked.fits"
    stacked.write(path)
    gp = GPMapDataset.read(path, name="stacked")
    gd = MapDataset.read(path)
    # Gammapy writes float32 exposures in m2 s; gdask converts to cm2 s in float64, so do the
    # same to Gammapy's maps before comparing (else the float32 rounding of the conversion shows)
    for m in (gp.exposure, gp.psf.exposure_map, gp.edisp.exposure_map):
        m.data = m.data.astype(np.float64)
    _compare(gp, gd)
    assert np.asarray(gp.meta_table["OBS_ID"]).ravel().tolist() == [23523, 23526]
    assert gd.meta["obs_ids"] == [23523, 23526]
    out = tmp_path / "gdask.fits"
    gd.write(out)
    back = GPMapDataset.read(out, name="stacked")
    _compare(back, gd)  # Gammapy reads what gdask writes, META_TABLE included
    for col in gp.meta_table.colnames:
        np.testing.assert_array_equal(back.meta_table[col], gp.meta_table[col])


@pytest.mark.realdata
def test_gammapy_stacked_ogip_spectrum_and_gadf_layout(data_dir: Path, tmp_path: Path) -> None:
    """Gammapy's stacked OGIP spectrum reads in gdask; its default GADF layout is a clear error."""
    from gammapy.datasets import Datasets

    from gdask.errors import MissingHDUError

    src = data_dir / "joint-crab" / "spectra" / "hess"
    stacked = Datasets(
        [GPSpectrumDatasetOnOff.read(p) for p in sorted(src.glob("pha_*.fits"))]
    ).stack_reduce(name="stacked")
    stacked.write(tmp_path / "pha_obsstacked.fits", format="ogip")
    gp = GPSpectrumDatasetOnOff.read(tmp_path / "pha_obsstacked.fits")
    gd = SpectrumDatasetOnOff.read(tmp_path / "pha_obsstacked.fits")
    np.testing.assert_array_equal(gd.ds["counts"].values, gp.counts.data.ravel())
    np.testing.assert_array_equal(gd.ds["counts_off"].values, gp.counts_off.data.ravel())
    for ours, theirs in (("acceptance", gp.acceptance), ("acceptance_off", gp.acceptance_off)):
        np.testing.assert_allclose(gd.ds[ours].values, theirs.data.ravel(), rtol=1e-12)
    # Gammapy's alpha is float32 (its acceptance maps'), gdask's float64
    np.testing.assert_allclose(gd.alpha.values, gp.alpha.data.ravel(), rtol=1e-6)
    # exposure = ARF (float32 SPECRESP) x livetime: Gammapy multiplies in float32
    np.testing.assert_allclose(
        gd.exposure.values, gp.exposure.quantity.to_value("cm2 s").ravel(), rtol=1e-6
    )
    stacked.write(tmp_path / "gadf.fits")  # Gammapy's default layout
    with pytest.raises(MissingHDUError, match="format='ogip'"):
        SpectrumDatasetOnOff.read(tmp_path / "gadf.fits")

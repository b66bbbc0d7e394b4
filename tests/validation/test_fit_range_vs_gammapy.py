"""Fit ranges select the same reco bins as Gammapy 2.1's ``geom.energy_mask``.

Regression (issue 9, item 4): ``energy_mask(1 TeV, 10 TeV)`` kept 7 bins of an
OGIP spectrum in Gammapy and 8 in gdask, because Gammapy compares the edges of
its log-scaled axis (``exp(log(edge))``, in the file's keV) while gdask compared
its TeV edges. Ranges whose bounds fall exactly on edges decide it; every
bound below is one of the dataset's own edges or a round energy.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import gdask.models as gm
from gdask.datasets import MapDataset
from gdask.datasets.spectrum import SpectrumDatasetOnOff
from gdask.likelihood.map import MapTerm
from gdask.likelihood.spectrum import SpectrumOnOffTerm

pytestmark = [pytest.mark.validation, pytest.mark.realdata]

ROUND = (0.03, 0.08, 0.1, 0.15, 0.4, 0.5, 0.66, 0.7, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0)
CRAB_MODEL = """components:
- name: crab
  type: SkyModel
  spectral:
    type: PowerLawSpectralModel
    parameters:
    - {name: index, value: 2.5}
    - {name: amplitude, value: 3.0e-11, unit: cm-2 s-1 TeV-1}
    - {name: reference, value: 1.0, unit: TeV}
  spatial:
    type: PointSpatialModel
    frame: icrs
    parameters:
    - {name: lon_0, value: 83.633, unit: deg}
    - {name: lat_0, value: 22.014, unit: deg}
"""


def _ranges(edges_tev: np.ndarray) -> list[tuple[float | None, float | None]]:
    """Each edge and round energy once as the lower and once as the upper bound."""
    bounds = sorted({*ROUND, *map(float, edges_tev)})
    return [(b, None) for b in bounds] + [(None, b) for b in bounds] + [(1.0, 10.0)]


def _gammapy_mask(geom, lo: float | None, hi: float | None):
    import astropy.units as u

    return geom.energy_mask(
        None if lo is None else lo * u.TeV, None if hi is None else hi * u.TeV
    ).data


def test_joint_crab_ogip_same_bins(data_dir: Path) -> None:
    import astropy.units as u
    from gammapy.datasets import SpectrumDatasetOnOff as GSpectrum

    warnings.simplefilter("ignore")
    files = sorted((data_dir / "joint-crab" / "spectra").glob("*/pha_*.fits"))
    assert len(files) == 10
    models = gm.Models.from_yaml(CRAB_MODEL)
    n_cases = n_on_edge = 0
    for path in files:
        g = GSpectrum.read(path)
        ds = SpectrumDatasetOnOff.read(path)
        safe = g.mask_safe.data.ravel()
        tev = ds.energy_axis.quantity_edges.to_value("TeV")
        ranges = _ranges(tev)
        for lo, hi in ranges:
            want = safe & _gammapy_mask(g.counts.geom, lo, hi).ravel()
            term = SpectrumOnOffTerm(ds, models, energy_min=lo, energy_max=hi)
            assert np.array_equal(term.mask, want), (path.name, lo, hi)
            n_cases += 1
            n_on_edge += bool(np.isin([lo, hi], tev).any())
        # the case, with the bounds as strings
        want = safe & g.counts.geom.energy_mask(1 * u.TeV, 10 * u.TeV).data.ravel()
        term = SpectrumOnOffTerm(ds, models, energy_min="1 TeV", energy_max="10 TeV")
        assert term.mask.sum() == want.sum(), path.name
    assert n_on_edge > 500, n_on_edge
    print(f"joint-Crab: {n_cases} ranges, {n_on_edge} with a bound on an edge: same bins")


def _check_map(path: Path) -> int:
    """MapTerm masks of ``path`` vs Gammapy's; the number of bounds a plain comparison gets wrong."""
    from gammapy.datasets import MapDataset as GMapDataset

    warnings.simplefilter("ignore")
    g = GMapDataset.read(path)
    ds = MapDataset.read(path)
    models = gm.Models.from_yaml(CRAB_MODEL)
    tev = ds.energy_axis.to_unit("TeV").axis.edges
    safe = g.mask_safe.data
    n_naive_wrong = 0
    for lo, hi in _ranges(tev):
        want = safe & _gammapy_mask(g.counts.geom, lo, hi)
        term = MapTerm(ds, models, energy_min=lo, energy_max=hi)
        assert np.array_equal(term.mask, want), (path.name, lo, hi)
        naive = (tev[:-1] >= (lo or 0)) & (tev[1:] <= (hi or np.inf))
        n_naive_wrong += not np.array_equal(safe & naive[:, None, None], want)
    return n_naive_wrong


def test_fermi_3fhl_dl4_same_bins(data_dir: Path) -> None:
    """A Gammapy DL4 FITS with float32 edges: two of its edges, compared plainly, differ."""
    path = data_dir / "fermi-3fhl-crab" / "Fermi-LAT-3FHL_data_Fermi-LAT.fits"
    n_wrong = _check_map(path)
    assert n_wrong > 0  # the case exercises the rule
    print(f"Fermi-LAT 3FHL: same bins; a plain comparison of the edges is wrong {n_wrong}x")


@pytest.mark.slow
def test_hess_3d_same_bins(tmp_path: Path, gp_hess_crab) -> None:
    warnings.simplefilter("ignore")
    obs_id = next(iter(gp_hess_crab.datasets))
    path = tmp_path / f"{obs_id}.fits"
    gp_hess_crab.datasets[obs_id].write(path)
    n_wrong = _check_map(path)
    print(f"H.E.S.S. 3D: same bins; a plain comparison of the edges is wrong {n_wrong}x")


@pytest.mark.parametrize(
    "lo, hi, nbin", [(0.7, 10.0, 4), (0.1, 100.0, 15), (0.5, 20.0, 20), (1.0, 10.0, 7)]
)
def test_gdask_energy_axes_same_bins(lo: float, hi: float, nbin: int) -> None:
    """Axes made by gdask (a reduction's, a store's): Gammapy on the same edges."""
    import astropy.units as u
    from gammapy.maps import MapAxis, RegionGeom

    from gdask.geometry import EnergyAxis
    from gdask.likelihood.folding import energy_range_mask

    edges = EnergyAxis.from_bounds(lo, hi, nbin).edges
    geom = RegionGeom.create(None, axes=[MapAxis.from_energy_edges(edges * u.TeV)])
    for a, b in _ranges(edges):
        want = _gammapy_mask(geom, a, b).ravel()
        assert np.array_equal(energy_range_mask(edges, a, b), want), (a, b)

"""1D ON/OFF reduction (`gdask.reduce.spectrum`) against Gammapy 2.1.

Acceptance: the H.E.S.S. Crab configuration of bench_A_1d_crab.py (ON circle
0.11 deg, reflected regions with Gammapy's default finder and the joint-Crab
exclusion mask, containment correction, aeff-max 10 % safe mask): per run the
ON and OFF counts per bin are identical, alpha is identical, the exposure and
the edisp kernel agree to 1e-10 (measured: 1e-14). Point-like data (MAGIC
energy-dependent RAD_MAX with the wobble finder; VERITAS fixed RAD_MAX with the
reflected finder) are checked the same way.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from astropy.coordinates import Angle, SkyCoord
from regions import CircleSkyRegion, PointSkyRegion

from gdask.dl3 import DL3Index, read_observation
from gdask.geometry import EnergyAxis
from gdask.reduce.reflected import ReflectedRegionsFinder, WobbleRegionsFinder, read_exclusion_mask
from gdask.reduce.spectrum import make_spectrum_onoff

pytestmark = [pytest.mark.validation, pytest.mark.realdata]

warnings.filterwarnings("ignore", message=".*THETA.*")

HESS_RUNS = (23523, 23526, 23559, 23592)
TARGET = SkyCoord(83.633, 22.014, unit="deg")
EXPOSURE_RTOL = 1e-10


def _gammapy_onoff(obs, on_region, e_reco, e_true, exclusion=None, finder=None, containment=False):
    from gammapy.datasets import SpectrumDataset
    from gammapy.makers import ReflectedRegionsBackgroundMaker, SafeMaskMaker, SpectrumDatasetMaker
    from gammapy.maps import RegionGeom

    geom = RegionGeom.create(region=on_region, axes=[e_reco])
    empty = SpectrumDataset.create(geom=geom, energy_axis_true=e_true)
    maker = SpectrumDatasetMaker(
        selection=["counts", "exposure", "edisp"], containment_correction=containment
    )
    kwargs = {"exclusion_mask": exclusion} if exclusion is not None else {}
    if finder is not None:
        kwargs["region_finder"] = finder
    bkg = ReflectedRegionsBackgroundMaker(**kwargs)
    safe = SafeMaskMaker(methods=["aeff-max"], aeff_percent=10)
    ds = maker.run(empty.copy(name=str(obs.obs_id)), obs)
    return safe.run(bkg.run(ds, obs), obs)


def _compare(g, d):
    np.testing.assert_array_equal(d.counts.values, g.counts.data.ravel())
    np.testing.assert_array_equal(d.counts_off.values, g.counts_off.data.ravel())
    np.testing.assert_array_equal(1 / d.acceptance_off.values, g.alpha.data.ravel())
    ge = g.exposure.quantity.to_value("m2 s").ravel()
    np.testing.assert_allclose(d.exposure.values, ge, rtol=EXPOSURE_RTOL, atol=1e-12 * ge.max())
    assert float(d.livetime) == pytest.approx(g.exposure.meta["livetime"].to_value("s"), rel=1e-12)
    np.testing.assert_allclose(
        d.edisp.values, g.edisp.get_edisp_kernel().pdf_matrix, rtol=0, atol=1e-10
    )
    ge2 = g.edisp.exposure_map.quantity.to_value("m2 s").ravel()
    np.testing.assert_allclose(
        d.edisp_exposure.values, ge2, rtol=EXPOSURE_RTOL, atol=1e-12 * ge2.max()
    )
    np.testing.assert_array_equal(d.mask_safe.values, g.mask_safe.data.ravel())


@pytest.fixture(scope="module")
def hess_setup(data_dir):
    from gammapy.data import DataStore
    from gammapy.maps import Map, MapAxis

    excl_path = data_dir / "joint-crab/exclusion/exclusion_mask_crab.fits.gz"
    exclusion = Map.read(excl_path)
    exclusion.data = exclusion.data.astype(bool)
    return {
        "store": DataStore.from_dir(data_dir / "hess-dl3-dr1"),
        "index": DL3Index.read(data_dir / "hess-dl3-dr1"),
        "gp_exclusion": exclusion,
        "exclusion": read_exclusion_mask(excl_path),
        "gp_reco": MapAxis.from_edges(
            10 ** (np.arange(-24, 40) / 24.0), unit="TeV", name="energy", interp="log"
        ),
        "gp_true": MapAxis.from_edges(
            10 ** (np.arange(-36, 49) / 24.0), unit="TeV", name="energy_true", interp="log"
        ),
        "reco": EnergyAxis(10 ** (np.arange(-24, 40) / 24.0), name="energy"),
        "true": EnergyAxis(10 ** (np.arange(-36, 49) / 24.0), name="energy_true"),
    }


@pytest.mark.parametrize("obs_id", HESS_RUNS)
def test_hess_crab_1d(hess_setup, obs_id):
    s = hess_setup
    on = CircleSkyRegion(TARGET, Angle("0.11 deg"))
    t0 = time.perf_counter()
    g = _gammapy_onoff(
        s["store"].obs(obs_id), on, s["gp_reco"], s["gp_true"], s["gp_exclusion"], containment=True
    )
    t1 = time.perf_counter()
    d = make_spectrum_onoff(
        read_observation(s["index"], obs_id),
        on,
        s["reco"],
        s["true"],
        exclusion_mask=s["exclusion"],
        containment_correction=True,
    )
    t2 = time.perf_counter()
    print(f"run {obs_id}: gammapy {t1 - t0:.3f} s, gdask {t2 - t1:.3f} s (incl. reading)")
    _compare(g, d)
    assert d.attrs["n_off_regions"] == int(g.acceptance_off.data.ravel()[0])


def test_reflected_regions_identical(hess_setup):
    from gammapy.makers import ReflectedRegionsFinder as GPFinder

    s = hess_setup
    on = CircleSkyRegion(TARGET, Angle("0.11 deg"))
    for obs_id in HESS_RUNS[:2]:
        obs = s["store"].obs(obs_id)
        pointing = obs.get_pointing_icrs(obs.tmid)
        gp, gwcs = GPFinder().run(on, pointing, s["gp_exclusion"])
        gd, wcs = ReflectedRegionsFinder().run(on, pointing, s["exclusion"])
        assert len(gd) == len(gp)
        for a, b in zip(gp, gd, strict=True):
            assert a.center.separation(b.center).deg < 1e-10
            assert abs(a.radius.deg - b.radius.deg) < 1e-12
        assert wcs.to_header_string() == gwcs.to_header_string()


@pytest.fixture(scope="module")
def point_like_axes():
    from gammapy.maps import MapAxis

    return (
        MapAxis.from_energy_bounds(0.05, 50, 5, per_decade=True, unit="TeV", name="energy"),
        MapAxis.from_energy_bounds(0.01, 100, 10, per_decade=True, unit="TeV", name="energy_true"),
    )


def _axes(gp_reco, gp_true):
    return EnergyAxis(gp_reco.edges.to_value("TeV"), name="energy"), EnergyAxis(
        gp_true.edges.to_value("TeV"), name="energy_true"
    )


def test_magic_rad_max_wobble(data_dir, point_like_axes):
    from gammapy.data import DataStore
    from gammapy.makers import WobbleRegionsFinder as GPWobble

    path = data_dir / "magic/rad_max/data"
    store, index = DataStore.from_dir(path), DL3Index.read(path)
    er, et = _axes(*point_like_axes)
    on = PointSkyRegion(TARGET)
    obs_id = 5029747
    g = _gammapy_onoff(
        store.obs(obs_id, required_irf="point-like"),
        on,
        *point_like_axes,
        finder=GPWobble(n_off_regions=3),
    )
    d = make_spectrum_onoff(
        read_observation(index, obs_id), on, er, et, region_finder=WobbleRegionsFinder(3)
    )
    _compare(g, d)


def test_veritas_fixed_rad_max_reflected(data_dir, point_like_axes):
    from gammapy.data import DataStore

    path = data_dir / "joint-crab/dl3/veritas"
    store, index = DataStore.from_dir(path), DL3Index.read(path)
    er, et = _axes(*point_like_axes)
    on = CircleSkyRegion(TARGET, Angle("0.1 deg"))
    obs_id = 54809
    g = _gammapy_onoff(store.obs(obs_id, required_irf="point-like"), on, *point_like_axes)
    d = make_spectrum_onoff(read_observation(index, obs_id), on, er, et)
    _compare(g, d)


@pytest.mark.parametrize("method", ["aeff-default", "edisp-bias", "bkg-peak", "aeff-max"])
def test_hess_1d_safe_thresholds_match_gammapy(hess_dir, method):
    """Each 1D safe-mask method alone gives Gammapy's per-run energy threshold
    (``SafeMaskMaker`` on the ``SpectrumDataset`` of ``SpectrumDatasetMaker`` with the
    background IRF)."""
    import astropy.units as u
    from gammapy.data import DataStore
    from gammapy.datasets import SpectrumDataset
    from gammapy.makers import SafeMaskMaker, SpectrumDatasetMaker
    from gammapy.maps import MapAxis, RegionGeom

    warnings.simplefilter("ignore")
    on = CircleSkyRegion(TARGET, Angle(0.11, "deg"))
    ea = MapAxis.from_energy_bounds(0.3, 40, nbin=24, unit="TeV")
    et = MapAxis.from_energy_bounds(0.1, 100, nbin=40, unit="TeV", name="energy_true")
    empty = SpectrumDataset.create(
        geom=RegionGeom.create(region=on, axes=[ea]), energy_axis_true=et
    )
    maker = SpectrumDatasetMaker(selection=["counts", "exposure", "edisp", "background"])
    safe = SafeMaskMaker(methods=[method], aeff_percent=10, bias_percent=10)
    store = DataStore.from_dir(hess_dir)
    index = DL3Index.read(hess_dir)
    e_reco = EnergyAxis.from_bounds(0.3, 40, 24)
    e_true = EnergyAxis.from_bounds(0.1, 100, 40, name="energy_true")
    ours, theirs = [], []
    for obs_id in HESS_RUNS:
        obs = store.obs(obs_id)
        g = safe.run(maker.run(empty.copy(name=str(obs_id)), obs), obs)
        gm = g.mask_safe.data.ravel()
        d = make_spectrum_onoff(
            read_observation(index, obs_id),
            on,
            e_reco,
            e_true,
            safe_mask_methods=(method,),
            aeff_percent=10,
            bias_percent=10,
        )
        np.testing.assert_array_equal(d["mask_safe"].values, gm, err_msg=f"{method} {obs_id}")
        theirs.append(ea.edges[:-1][gm][0].to_value(u.TeV))
        ours.append(e_reco.edges[:-1][d["mask_safe"].values][0])
    # the thresholds are not trivially the first bin
    assert np.allclose(ours, theirs) and max(theirs) > e_reco.edges[0]

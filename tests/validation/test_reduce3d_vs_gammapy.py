"""gdask.reduce against Gammapy 2.1's MapDatasetMaker, SafeMaskMaker and FoVBackgroundMaker.

The acceptance configuration of bench_B_3d_crab.py: H.E.S.S. DR1 runs 23523,
23526, 23559, 23592; CAR grid at (83.633, 22.014) ICRS, 0.02 deg pixels,
3 x 3 deg; reco energy 0.7-10 TeV (10 log bins), true energy 0.5-20 TeV
(20 log bins); IRF maps on 0.2 deg pixels; safe mask offset-max 2.5 deg +
aeff-default; FoV background "scale" with the Crab excluded within 0.3 deg.

Required: counts and safe masks identical; exposure, background, PSF, edisp
(and their exposures) within ``RTOL`` per bin (inside the safe mask for the
sky maps; everywhere for the IRF maps) where Gammapy's value is above
``TINY`` times the map maximum, and within ``TINY`` times the maximum
absolutely below; FoV norms within 1e-4. Measured (this machine): 1e-13 or
better everywhere (edisp: 1e-14 absolute, 7e-7 relative on a 1e-8 entry).
"""

from __future__ import annotations

import time
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

pytestmark = [pytest.mark.validation, pytest.mark.realdata]

from gammapy.data import DataStore  # noqa: E402
from gammapy.irf import FoVAlignment  # noqa: E402
from gammapy.makers import SafeMaskMaker  # noqa: E402
from gammapy.makers.utils import make_map_background_irf  # noqa: E402
from gammapy.maps import MapAxis  # noqa: E402
from gammapy.maps import WcsGeom as GPWcsGeom  # noqa: E402

from gdask.dl3 import DL3Index, ObservationInfo, read_observation  # noqa: E402
from gdask.geometry import EnergyAxis, WcsGeom  # noqa: E402
from gdask.reduce import make_background, make_map_dataset, make_safe_mask  # noqa: E402
from tests.validation.gammapy_hess import OBS_IDS  # noqa: E402

TARGET = SkyCoord(83.633, 22.014, unit="deg", frame="icrs")
RTOL = 1e-9
TINY = 1e-9
NORM_RTOL = 1e-10


def _gd_config():
    geom = WcsGeom.create(
        skydir=(83.633, 22.014), binsz=0.02, width=(3, 3), frame="icrs", proj="CAR"
    )
    return (
        geom,
        EnergyAxis.from_bounds(0.7, 10, 10),
        EnergyAxis.from_bounds(0.5, 20, 20, name="energy_true"),
    )


@pytest.fixture(scope="module")
def reduced(hess_dir, gp_hess_crab):
    """Both reductions of the four runs, timed (gammapy includes its lazy IRF reads, gdask its FITS reads).

    Gammapy's is the session's shared one (`tests.validation.gammapy_hess`), timed when it was built.
    """
    warnings.simplefilter("ignore")
    exclusion = gp_hess_crab.exclusion
    gp, t_gp = gp_hess_crab.datasets, gp_hess_crab.seconds
    g, e, et = _gd_config()
    index = DL3Index.read(hess_dir)
    gd, t_gd = {}, {}
    for obs_id in OBS_IDS:
        t0 = time.perf_counter()
        obs = read_observation(index, obs_id)
        gd[obs_id] = make_map_dataset(
            obs,
            g,
            e,
            et,
            0.2,
            safe_mask=("offset-max", "aeff-default"),
            offset_max=2.5,
            fov_background="scale",
            exclusion_mask=exclusion.data,
        )
        t_gd[obs_id] = time.perf_counter() - t0
    print(
        f"\nper run: gammapy {np.median(list(t_gp.values())):.3f} s, gdask {np.median(list(t_gd.values())):.3f} s"
    )
    return gp, gd


def _deviation(ours, ref, mask=None):
    """(max relative deviation where ref is not tiny, max absolute deviation / max |ref| elsewhere)."""
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    if mask is not None:
        mask = np.broadcast_to(mask, ref.shape)
        ours, ref = ours[mask], ref[mask]
    scale = np.max(np.abs(ref))
    big = np.abs(ref) > TINY * scale
    rel = np.max(np.abs(ours[big] / ref[big] - 1)) if big.any() else 0.0
    small = np.max(np.abs(ours[~big] - ref[~big])) / scale if (~big).any() else 0.0
    return float(rel), float(small)


def _check(name, ours, ref, mask=None):
    rel, small = _deviation(ours, ref, mask)
    print(f"  {name}: max rel {rel:.2e}, tiny-bin abs/max {small:.2e}")
    assert rel < RTOL and small < TINY, name


@pytest.mark.parametrize("obs_id", OBS_IDS)
def test_counts_and_masks_identical(reduced, obs_id):
    gp, gd = reduced[0][obs_id], reduced[1][obs_id]
    np.testing.assert_array_equal(gd["counts"].values, gp.counts.data)
    np.testing.assert_array_equal(gd["mask_safe"].values, gp.mask_safe.data)
    assert gd["mask_safe"].values.any()


@pytest.mark.parametrize("obs_id", OBS_IDS)
def test_maps_agree(reduced, obs_id):
    gp, gd = reduced[0][obs_id], reduced[1][obs_id]
    safe = gd["mask_safe"].values
    _check(
        "exposure", gd["exposure"].values, gp.exposure.quantity.to_value("m2 s"), safe.any(axis=0)
    )
    _check("exposure (all pixels)", gd["exposure"].values, gp.exposure.quantity.to_value("m2 s"))
    _check("background", gd["background"].values, gp.background.data, safe)
    _check("background (all pixels)", gd["background"].values, gp.background.data)
    _check("psf", gd["psf"].values, gp.psf.psf_map.quantity.to_value("sr-1"))
    _check(
        "psf exposure",
        gd["psf_exposure"].values,
        gp.psf.exposure_map.quantity.to_value("cm2 s")[:, 0],
    )
    ours, ref = gd["edisp"].values, gp.edisp.edisp_map.data
    # kernel entries near the 1e-8 cut are compared absolutely (rounding: 1e-14)
    assert np.max(np.abs(ours - ref)) < 1e-12
    np.testing.assert_array_equal(ours > 0, ref > 0)
    _check(
        "edisp exposure",
        gd["edisp_exposure"].values,
        gp.edisp.exposure_map.quantity.to_value("cm2 s")[:, 0],
    )
    gp_norm = gp.background_model.spectral_model.norm
    assert gd.attrs["bkg_norm"] == pytest.approx(gp_norm.value, rel=NORM_RTOL)
    assert gd.attrs["bkg_norm_error"] == pytest.approx(gp_norm.error, rel=NORM_RTOL)
    assert gd.attrs["livetime"] == pytest.approx(
        gp.gti.time_sum.to_value("s") * (1 - 0.0625), rel=0.01
    )


def test_altaz_background(hess_dir):
    """An ALTAZ-aligned model (the DR1 model re-labelled): FoV rotation integrated in time steps."""
    warnings.simplefilter("ignore")
    energy_axis = MapAxis.from_energy_bounds(0.7, 10, nbin=10, unit="TeV")
    geom = GPWcsGeom.create(
        skydir=(83.633, 22.014),
        binsz=0.1,
        width=(3, 3),
        frame="icrs",
        proj="CAR",
        axes=[energy_axis],
    )
    obs = DataStore.from_dir(hess_dir).obs(23592)
    bkg = obs.bkg
    bkg.interp_missing_data(axis_name="energy")
    bkg._fov_alignment = FoVAlignment.ALTAZ
    ref = make_map_background_irf(
        pointing=obs.pointing,
        ontime=obs.observation_time_duration,
        bkg=bkg,
        geom=geom,
        time_start=obs.tstart,
        fov_rotation_step=0.5 * u.deg,
        location=obs.observatory_earth_location,
    )
    ours_obs = read_observation(DL3Index.read(hess_dir), 23592)
    info = ObservationInfo.from_observation(ours_obs)
    g = WcsGeom.create(skydir=(83.633, 22.014), binsz=0.1, width=(3, 3), frame="icrs", proj="CAR")
    ours = make_background(
        ours_obs.irfs["bkg"],
        info.pointing,
        info.ontime,
        g,
        EnergyAxis.from_bounds(0.7, 10, 10),
        "ALTAZ",
        time_start=info.time_start,
        location=info.location,
        fov_rotation_step=0.5,
    )
    _check("background ALTAZ", ours.values, ref.data)


@pytest.mark.parametrize(
    "methods,kwargs",
    [
        (["aeff-max"], {}),
        (["aeff-max"], {"aeff_percent": 30}),
        (["edisp-bias"], {}),
        (["edisp-bias"], {"fixed_offset": 1.0}),
        (["bkg-peak"], {}),
        (["aeff-max", "edisp-bias", "offset-max"], {"position": TARGET}),
    ],
)
def test_other_safe_masks(reduced, hess_dir, methods, kwargs):
    warnings.simplefilter("ignore")
    obs_id = 23592
    gp = reduced[0][obs_id]
    gkw = {k: (v * u.deg if k == "fixed_offset" else v) for k, v in kwargs.items()}
    ds = gp.copy()
    ds.mask_safe = None
    ref = (
        SafeMaskMaker(methods=methods, **gkw)
        .run(ds, DataStore.from_dir(hess_dir).obs(obs_id))
        .mask_safe.data
    )
    gd = reduced[1][obs_id].drop_vars("mask_safe")
    ours = make_safe_mask(gd, read_observation(DL3Index.read(hess_dir), obs_id), methods, **kwargs)
    np.testing.assert_array_equal(ours.values, ref)


@pytest.fixture(scope="module", params=[4.0, 4.2], ids=["4deg", "4.2deg"])
def wide(request, hess_dir):
    """Per-run maps of width 4 deg (the centre on an IRF pixel boundary with 0.2 deg IRF
    pixels) and 4.2 deg, with exposure and edisp, by Gammapy and by gdask."""
    from gammapy.datasets import MapDataset as GPMapDataset
    from gammapy.makers import MapDatasetMaker

    warnings.simplefilter("ignore")
    width = request.param
    ea = MapAxis.from_energy_bounds(0.1, 100, nbin=24, unit="TeV")
    et = MapAxis.from_energy_bounds(0.05, 200, nbin=36, unit="TeV", name="energy_true")
    gp_geom = GPWcsGeom.create(
        skydir=(83.633, 22.014), binsz=0.02, width=(width, width), frame="icrs", axes=[ea]
    )
    empty = GPMapDataset.create(geom=gp_geom, energy_axis_true=et, binsz_irf=0.2)
    maker = MapDatasetMaker(selection=["counts", "exposure", "edisp"])
    geom = WcsGeom.create(skydir=(83.633, 22.014), binsz=0.02, width=(width, width), frame="icrs")
    e_reco = EnergyAxis.from_bounds(0.1, 100, 24)
    e_true = EnergyAxis.from_bounds(0.05, 200, 36, name="energy_true")
    store, index = DataStore.from_dir(hess_dir), DL3Index.read(hess_dir)
    out = {}
    for obs_id in OBS_IDS:
        obs = store.obs(obs_id)
        gp = maker.run(empty.copy(name=str(obs_id)), obs)
        gd_obs = read_observation(index, obs_id)
        gd = make_map_dataset(
            gd_obs,
            geom,
            e_reco,
            e_true,
            0.2,
            selection=["counts", "exposure", "edisp"],
        )
        out[obs_id] = (gp, gd, obs, gd_obs)
    return out


def _gammapy_aeff_max_threshold(gp, percent=10.0):
    """Gammapy 2.1's own DL4 aeff-max threshold (the steps of SafeMaskMaker, on its objects)."""
    from gammapy.modeling.models import TemplateSpectralModel

    aeff = gp.exposure.get_spectrum(gp._geom.center_skydir) / gp.exposure.meta["livetime"]
    model = TemplateSpectralModel.from_region_map(aeff)
    e_min = model.energy[np.nonzero(model.values > 0)[0][0]]
    root = model.inverse(percent / 100 * aeff.quantity.max(), e_min, model.energy[-1])[0]
    return (e_min if np.isnan(root) else root).to_value("TeV")


@pytest.mark.parametrize("obs_id", OBS_IDS)
def test_thresholds_at_the_map_centre_match_gammapy(wide, obs_id):
    """edisp-bias and aeff-max read the IRF pixel Gammapy reads at the map centre, also when
    the centre lies on a pixel boundary (4 deg map): same thresholds for 4 and 4.2 deg."""
    from gdask.reduce.safe_mask import safe_energy_thresholds

    gp, gd, obs, gd_obs = wide[obs_id]
    ours = safe_energy_thresholds(gd, None, ["aeff-max", "edisp-bias"])
    kernel = gp.edisp.get_edisp_kernel(position=gp._geom.center_skydir)
    assert ours["edisp-bias"] == pytest.approx(
        kernel.get_bias_energy(0.1)[0].to_value("TeV"), rel=1e-6
    )
    assert ours["aeff-max"] == pytest.approx(_gammapy_aeff_max_threshold(gp), rel=1e-6)
    for methods in (["edisp-bias"], ["aeff-max"]):
        ref = SafeMaskMaker(methods=methods).run(gp.copy(), obs).mask_safe.data
        np.testing.assert_array_equal(make_safe_mask(gd, gd_obs, methods).values, ref)

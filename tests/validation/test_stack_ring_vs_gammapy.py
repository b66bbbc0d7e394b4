"""gdask.reduce.stack and gdask.reduce.ring against Gammapy 2.1.

3D: the four H.E.S.S. DR1 Crab runs reduced by Gammapy as in
bench_B_3d_crab.py (0.02 deg CAR 3 x 3 deg grid, 10 reco / 20 true energy
bins, IRF maps on 0.2 deg pixels, safe mask offset-max 2.5 deg +
aeff-default, FoV background scale), written to FITS (raw background, no
models), read back by gdask with Gammapy's fitted FoV norm in ``meta``, and
stacked; the reference is Gammapy's own ``stack_reduce`` of its in-memory
runs with their FoV background models (so the norms are applied by Gammapy).

The reference for the energy-dispersion kernel is Gammapy's stack with
``MapDataset.mask_safe_edisp`` using nearest-neighbour instead of linear
interpolation (the work-around of bench_B): Gammapy 2.1 interpolates the
boolean safe mask linearly and casts to bool, so a ~1e-16 contribution of
the neighbouring (safe) energy bin turns the bins just below each run's
energy threshold True and leaks them into the stacked kernel. Everything
else is compared with Gammapy's own stack. The leak itself is asserted (so
that a Gammapy fix shows up here).

1D: the four joint-Crab H.E.S.S. OGIP spectra stacked by both.

Ring: ``RingBackgroundMaker(r_in=0.5 deg, width=0.3 deg)`` with the Crab
excluded within 0.3 deg on Gammapy's stacked dataset, against
`ring_background` on gdask's.
"""

from __future__ import annotations

import copy
import json
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

pytestmark = [pytest.mark.validation, pytest.mark.realdata]

from gammapy.datasets import Datasets  # noqa: E402
from gammapy.datasets import MapDataset as GPMapDataset  # noqa: E402
from gammapy.datasets import SpectrumDatasetOnOff as GPSpectrumDatasetOnOff  # noqa: E402
from gammapy.makers import RingBackgroundMaker  # noqa: E402

from gdask.datasets import MapDataset, SpectrumDatasetOnOff  # noqa: E402
from gdask.geometry import WcsGeom  # noqa: E402
from gdask.reduce.ring import ring_background  # noqa: E402
from gdask.reduce.stack import stack_all, stack_pair  # noqa: E402
from tests.validation.gammapy_hess import OBS_IDS  # noqa: E402

RTOL = 1e-6
FFT_NOISE = 1e-7  # float32 FFT convolution noise relative to the map maximum


def _close(actual, desired, rtol=RTOL, floor=1e-9):
    """Relative agreement where ``desired`` is above ``floor`` x its maximum, absolute below."""
    a, d = np.asarray(actual, float), np.asarray(desired, float)
    assert a.shape == d.shape
    scale = np.nanmax(np.abs(d)) if d.size else 0.0
    big = np.abs(d) > floor * scale
    np.testing.assert_allclose(a[big], d[big], rtol=rtol, atol=0)
    np.testing.assert_allclose(a[~big], d[~big], rtol=0, atol=max(floor * scale, 1e-300))


def _nearest_mask_safe_edisp(self):
    """bench_B's work-around: Gammapy's mask_safe_edisp with nearest-neighbour interpolation."""
    if self.mask_safe is None or self.edisp is None:
        return None
    geom = self.edisp.edisp_map.geom.squash("energy_true")
    same = geom.to_image().to_cube(self.mask_safe.geom.axes)
    m = self.mask_safe.interp_to_geom(same, fill_value=None, method="nearest")
    return m.interp_to_geom(geom, method="nearest")


@pytest.fixture(scope="module")
def runs3d(gp_hess_crab, tmp_path_factory):
    """Per-run datasets written by Gammapy, read back by Gammapy and by gdask."""
    warnings.simplefilter("ignore")
    exclusion = gp_hess_crab.exclusion
    tmp = tmp_path_factory.mktemp("stack3d")
    gp, gd, live = [], [], []
    for obs_id in OBS_IDS:
        # shared by the session: change a deep copy (Gammapy's copy() renames and drops models)
        live.append(copy.deepcopy(gp_hess_crab.datasets[obs_id]))  # with its FoV model
        norm = live[-1].background_model.spectral_model.norm.value
        ds = copy.deepcopy(gp_hess_crab.datasets[obs_id])
        ds.models = None
        path = tmp / f"run{obs_id}.fits"
        ds.write(path)  # the raw background map (the file holds no models)
        gp.append(GPMapDataset.read(path, name=str(obs_id)))
        # gdask's per-run datasets carry Gammapy's fitted norm as a reduction would
        raw = MapDataset.read(path).ds
        raw.attrs["meta"] = json.dumps(dict(json.loads(raw.attrs["meta"]), bkg_norm=norm))
        gd.append(MapDataset.from_dataset(raw))
    # Gammapy's own stack of its FoV-normalised runs (it stacks npred_background())
    gp_stacked = Datasets(live).stack_reduce(name="stacked")
    orig = GPMapDataset.mask_safe_edisp
    GPMapDataset.mask_safe_edisp = property(_nearest_mask_safe_edisp)
    try:
        gp_fixed = Datasets(gp).stack_reduce(name="stacked")
    finally:
        GPMapDataset.mask_safe_edisp = orig
    return {"gp": gp, "gd": gd, "gp_stacked": gp_stacked, "gp_fixed": gp_fixed, "excl": exclusion}


@pytest.fixture(scope="module")
def gd_stacked(runs3d):
    return stack_all(runs3d["gd"], name="stacked")


def test_stack3d_sky_maps(runs3d, gd_stacked):
    ref = runs3d["gp_stacked"]
    np.testing.assert_array_equal(gd_stacked.counts.values, ref.counts.data)
    np.testing.assert_array_equal(gd_stacked.mask_safe.values, ref.mask_safe.data)
    _close(gd_stacked.background.values, ref.background.data)
    exposure_cm2s = ref.exposure.quantity.to_value("cm2 s")
    _close(gd_stacked.exposure.values, exposure_cm2s)


def test_stack3d_psf(runs3d, gd_stacked):
    ref = runs3d["gp_stacked"].psf
    psf = gd_stacked.psf
    _close(psf.exposure, ref.exposure_map.quantity.to_value("cm2 s")[:, 0])
    _close(psf.data, ref.psf_map.quantity.to_value("sr-1"))


def test_stack3d_edisp_vs_fixed_gammapy(runs3d, gd_stacked):
    ref = runs3d["gp_fixed"].edisp
    ed = gd_stacked.edisp
    _close(ed.exposure, ref.exposure_map.quantity.to_value("cm2 s")[:, 0])
    _close(ed.data, ref.edisp_map.data)


def test_gammapy_edisp_mask_leak_documented(runs3d, gd_stacked):
    """Gammapy's own stacked kernel differs from the correctly masked one (the 2.1 leak)."""
    leaky = runs3d["gp_stacked"].edisp.edisp_map.data
    fixed = runs3d["gp_fixed"].edisp.edisp_map.data
    assert not np.allclose(leaky, fixed, rtol=1e-3)
    # the leak sits in the reco bins just below a run's threshold: where the
    # leaky kernel has weight that the gdask kernel (and the fixed one) has not
    ed = gd_stacked.edisp.data
    assert np.any((leaky > 0) & (ed == 0)) or not np.allclose(leaky, ed, rtol=1e-3)


def test_stack3d_meta_gti(runs3d, gd_stacked):
    ref = runs3d["gp_stacked"]
    assert gd_stacked.meta["obs_ids"] == list(OBS_IDS)
    g = gd_stacked.gti
    np.testing.assert_allclose(g.time_sum, ref.gti.time_sum.to_value("s"), rtol=1e-9)


def test_stack3d_tree_equals_sequential(runs3d, gd_stacked):
    a, b, c, d = runs3d["gd"]
    tree = stack_pair(stack_pair(a, b), stack_pair(c, d))
    for key in ("counts", "background", "exposure", "psf", "edisp", "edisp_exposure"):
        np.testing.assert_allclose(tree.ds[key].values, gd_stacked.ds[key].values, rtol=1e-12)


# -- 1D ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spectra(data_dir):
    folder = data_dir / "joint-crab" / "spectra" / "hess"
    files = [folder / f"pha_obs{o}.fits" for o in OBS_IDS]
    gp = Datasets([GPSpectrumDatasetOnOff.read(f) for f in files]).stack_reduce(name="stacked")
    gd = stack_all([SpectrumDatasetOnOff.read(f) for f in files], name="stacked")
    return gp, gd


def test_stack1d_vs_gammapy(spectra):
    gp, gd = spectra
    np.testing.assert_array_equal(gd.counts.values, gp.counts.data.ravel())
    np.testing.assert_array_equal(gd.counts_off.values, gp.counts_off.data.ravel())
    np.testing.assert_array_equal(gd.mask_safe.values, gp.mask_safe.data.ravel())
    _close(gd.alpha.values, np.nan_to_num(gp.alpha.data.ravel()))
    _close(gd.acceptance.values, gp.acceptance.data.ravel())
    _close(gd.exposure.values, gp.exposure.quantity.to_value("cm2 s").ravel())
    _close(gd.livetime, gp.exposure.meta["livetime"].to_value("s"))
    kernel = gp.edisp.get_edisp_kernel().data
    _close(gd.edisp.transpose("energy_true", "energy").values, kernel)


# -- ring -------------------------------------------------------------------------------
def test_ring_vs_gammapy(runs3d, gd_stacked):
    ref_in = runs3d["gp_stacked"]
    excl = runs3d["excl"]
    ref = RingBackgroundMaker(r_in="0.5 deg", width="0.3 deg", exclusion_mask=excl).run(ref_in)
    geom = WcsGeom.from_dataset(gd_stacked.ds)
    gd = ring_background(gd_stacked, r_in=0.5, width=0.3, exclusion_mask=excl.data)
    assert geom.shape == excl.data.shape
    # Gammapy convolves in float32 by FFT: its noise is ~1e-8 of the map maximum
    for key in ("counts_off", "acceptance_off"):
        a, d = getattr(gd, key).values, getattr(ref, key).data.astype(float)
        np.testing.assert_allclose(a, d, rtol=1e-6, atol=FFT_NOISE * np.abs(d).max())
    np.testing.assert_allclose(gd.acceptance.values, ref.acceptance.data, rtol=1e-6)
    # alpha where Gammapy's OFF acceptance is well above its noise
    off = ref.acceptance_off.data
    good = off > 1e-3 * off.max()
    np.testing.assert_allclose(gd.alpha.values[good], ref.alpha.data[good], rtol=1e-5)
    np.testing.assert_array_equal(gd.mask_safe.values[good], ref.mask_safe.data[good])
    # gdask's empty rings are exactly zero (and masked), Gammapy's hold float32 noise
    empty = gd.acceptance_off.values == 0
    assert not gd.mask_safe.values[empty].any()
    assert np.all(np.abs(off[empty]) <= FFT_NOISE * off.max())


def test_stack_into_cutouts_vs_gammapy(runs3d, tmp_path):
    """Per-run 1.6 deg cutouts (Gammapy's ``MapDataset.cutout``) stacked into the full grid."""
    from gdask.reduce.stack import empty_like, stack_into

    gp_full = runs3d["gp"]
    position = SkyCoord(83.9, 22.2, unit="deg", frame="icrs")
    cuts = [d.cutout(position=position, width=1.6 * u.deg, name=d.name) for d in gp_full]
    orig = GPMapDataset.mask_safe_edisp
    GPMapDataset.mask_safe_edisp = property(_nearest_mask_safe_edisp)
    try:
        ref = GPMapDataset.from_geoms(**gp_full[0].geoms, name="ref")
        for c in cuts:
            ref.stack(c)
    finally:
        GPMapDataset.mask_safe_edisp = orig
    acc = empty_like(runs3d["gd"][0])
    for c in cuts:
        c.write(tmp_path / f"{c.name}.fits")
        acc = stack_into(acc, MapDataset.read(tmp_path / f"{c.name}.fits"))
    np.testing.assert_array_equal(acc.counts.values, ref.counts.data)
    np.testing.assert_array_equal(acc.mask_safe.values, ref.mask_safe.data)
    _close(acc.background.values, ref.background.data)
    _close(acc.exposure.values, ref.exposure.quantity.to_value("cm2 s"))
    _close(acc.psf.data, ref.psf.psf_map.quantity.to_value("sr-1"))
    _close(acc.edisp.data, ref.edisp.edisp_map.data)
    _close(acc.edisp.exposure, ref.edisp.exposure_map.quantity.to_value("cm2 s")[:, 0])

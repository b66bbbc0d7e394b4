"""`gdask reduce` (ingest + graph on a LocalCluster) against Gammapy 2.1, 3D acceptance configuration.

H.E.S.S. DR1 runs 23523, 23526, 23559, 23592; CAR (83.633, 22.014) ICRS, 0.02 deg,
3 x 3 deg; reco 0.7-10 TeV (10 log bins), true 0.5-20 TeV (20 log bins);
binsz_irf 0.2; safe mask offset-max 2.5 deg + aeff-default; FoV background
"scale" with the Crab excluded within 0.3 deg. Counts and safe masks
identical; exposure, background, PSF, edisp within 1e-3; FoV norm within 1e-6.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
from gammapy.datasets import Datasets

from gdask.archive.ingest import ingest
from gdask.config import AnalysisConfig
from gdask.datasets import DatasetStore
from gdask.reduce.graph import reduce
from tests.validation.gammapy_hess import OBS_IDS

pytestmark = [pytest.mark.validation, pytest.mark.realdata]


RUNS = list(OBS_IDS)
RTOL = 1e-3


def _config(tmp, **datasets) -> AnalysisConfig:
    return AnalysisConfig.from_dict(
        {
            "observations": {"store": "archive.zarr", "obs_ids": RUNS},
            "datasets": {
                "type": "3d",
                **datasets,
                "geom": {
                    "wcs": {
                        "skydir": {"lon": 83.633, "lat": 22.014},
                        "width": 3,
                        "binsz": 0.02,
                        "binsz_irf": 0.2,
                    },
                    "axes": {
                        "energy": {"min": 0.7, "max": 10, "nbin": 10},
                        "energy_true": {"min": 0.5, "max": 20, "nbin": 20},
                    },
                },
            },
            "makers": {
                "offset_max": 2.5,
                "safe_mask": {"methods": ["offset-max", "aeff-default"]},
                "background": {
                    "method": "fov",
                    "fov_method": "scale",
                    "exclusion": {"regions": ["icrs;circle(83.633,22.014,0.3)"]},
                },
            },
            "output": {"store": "stacked.zarr" if datasets.get("stack") else "datasets.zarr"},
        },
        tmp,
    )


@pytest.fixture(scope="module")
def archive(hess_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("graphval")
    assert ingest(
        hess_dir, tmp / "archive.zarr", obs_ids=RUNS, progress=False, n_workers=2, processes=False
    ).ok
    return tmp


@pytest.fixture(scope="module")
def both(archive, gp_hess_crab):
    tmp = archive
    assert reduce(_config(tmp), progress=False, n_workers=2).ok
    store = DatasetStore(tmp / "datasets.zarr")
    ours = {i: store.read(str(i), lazy=False) for i in RUNS}

    warnings.simplefilter("ignore")
    ref = {i: gp_hess_crab.datasets[i] for i in RUNS}  # Gammapy's, shared by the session
    return ours, ref


def _close(name, ours, ref):
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=RTOL * np.abs(ref).max(), err_msg=name)


@pytest.mark.parametrize("obs_id", RUNS)
def test_graph_datasets_match_gammapy(both, obs_id):
    ours, ref = both[0][obs_id], both[1][obs_id]
    np.testing.assert_array_equal(ours.counts.values, ref.counts.data)
    np.testing.assert_array_equal(ours.mask_safe.values, ref.mask_safe.data)
    _close("exposure", ours.exposure.values, ref.exposure.quantity.to_value("cm2 s"))
    _close("background", ours.background.values, ref.background.data)
    _close("psf", ours.ds["psf"].values, ref.psf.psf_map.quantity.to_value("sr-1"))
    _close(
        "psf_exposure",
        ours.ds["psf_exposure"].values,
        ref.psf.exposure_map.quantity.to_value("cm2 s")[:, 0],
    )
    _close("edisp", ours.ds["edisp"].values, ref.edisp.edisp_map.data)
    _close(
        "edisp_exposure",
        ours.ds["edisp_exposure"].values,
        ref.edisp.exposure_map.quantity.to_value("cm2 s")[:, 0],
    )
    assert ours.meta["bkg_norm"] == pytest.approx(
        ref.background_model.spectral_model.norm.value, rel=1e-6
    )
    assert ours.gti.time_sum == pytest.approx(ref.gti.time_sum.to_value("s"))


def test_stacked_background_is_gammapy_stack_of_fov_normed_runs(archive, gp_hess_crab):
    """``stack: true`` with the FoV background: the stacked background is Gammapy's own
    ``Datasets.stack_reduce`` of its FoV-normalised runs (it stacks ``npred_background()``)."""
    warnings.simplefilter("ignore")
    summary = reduce(_config(archive, stack=True), progress=False, n_workers=2)
    assert summary.ok and summary.stacked == "stacked"
    ours = DatasetStore(archive / "stacked.zarr").read("stacked", lazy=False)
    runs = [copy.deepcopy(gp_hess_crab.datasets[i]) for i in RUNS]
    norms = [ds.background_model.spectral_model.norm.value for ds in runs]
    assert not np.allclose(norms, 1.0, atol=0.01)  # the norms matter on these runs
    ref = Datasets(runs).stack_reduce(name="stacked")
    bkg, ref_bkg = np.asarray(ours.background.values, float), np.asarray(ref.background.data, float)
    np.testing.assert_array_equal(ours.mask_safe.values, ref.mask_safe.data)
    np.testing.assert_allclose(bkg.sum(), ref_bkg.sum(), rtol=1e-6)
    np.testing.assert_allclose(bkg, ref_bkg, rtol=1e-6, atol=1e-6 * ref_bkg.max())
    assert "bkg_norm" not in ours.meta

"""gdask.estimators.sensitivity against Gammapy 2.1's SensitivityEstimator.

1D: the H.E.S.S. joint-Crab OGIP spectrum of run 23523 (ON/OFF, WStat), read
by both tools; CTA convention (5 sigma, >= 10 excess counts, 5 % background
systematics), power law of index 2.  Also a stacked 1D dataset of the four
runs (Gammapy's stack written to OGIP, read by both).  Per bin within 1e-3.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytestmark = [pytest.mark.validation, pytest.mark.realdata]

from gammapy.datasets import Datasets  # noqa: E402
from gammapy.datasets import SpectrumDatasetOnOff as GPSpectrumDatasetOnOff  # noqa: E402
from gammapy.estimators import SensitivityEstimator as GPSensitivity  # noqa: E402

from gdask.datasets import SpectrumDatasetOnOff  # noqa: E402
from gdask.estimators.sensitivity import SensitivityEstimator  # noqa: E402

RUNS = (23523, 23526, 23559, 23592)


def _compare(gp_ds, path):
    warnings.simplefilter("ignore")
    gp = GPSensitivity().run(gp_ds)
    ours = SensitivityEstimator().run(SpectrumDatasetOnOff.read(path))
    finite = np.isfinite(np.asarray(gp["e2dnde"], float))
    assert finite.sum() >= 5
    np.testing.assert_array_equal(np.isfinite(np.asarray(ours["e2dnde"])), finite)
    for col in ("e_ref", "e_min", "e_max", "e2dnde", "excess", "background"):
        np.testing.assert_allclose(
            np.asarray(ours[col].quantity.to_value(gp[col].unit) if gp[col].unit else ours[col])[
                finite
            ],
            np.asarray(gp[col])[finite],
            rtol=1e-3,
        )
    assert list(np.asarray(ours["criterion"])[finite]) == list(np.asarray(gp["criterion"])[finite])
    return ours


def test_sensitivity_one_run_vs_gammapy(data_dir):
    path = data_dir / "joint-crab" / "spectra" / "hess" / "pha_obs23523.fits"
    ours = _compare(GPSpectrumDatasetOnOff.read(path), path)
    assert {"significance", "bkg", "gamma"} & set(ours["criterion"])


def test_sensitivity_stacked_vs_gammapy(data_dir, tmp_path):
    spec = data_dir / "joint-crab" / "spectra" / "hess"
    dss = Datasets([GPSpectrumDatasetOnOff.read(spec / f"pha_obs{r}.fits") for r in RUNS])
    stacked = dss.stack_reduce(name="stacked")
    path = tmp_path / "pha_stacked.fits"
    stacked.write(path, format="ogip")
    _compare(GPSpectrumDatasetOnOff.read(path), path)

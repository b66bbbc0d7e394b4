"""Acceptance: a circular Gaussian fitted to the four H.E.S.S. Crab runs, gdask vs Gammapy 2.1.

Issue 9 item 6: gdask's default fit ended near sigma -> 0, 1.6-2.9 above
Gammapy's minimum in -2 ln L (Gammapy: sigma ~ 0.0122 deg). Both fit
Gammapy's own reduction of the runs (written to GADF-DL4 FITS); Gammapy's fit
runs inside the test. gdask must reach Gammapy's minimum within
``STAT_TOL`` in -2 ln L and every value within ``MAX_SIGMA`` Gammapy errors.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pytest

from gdask.fit import Coordinator, Fit
from gdask.likelihood import TermSpec
from gdask.models import Models

pytestmark = [pytest.mark.validation, pytest.mark.realdata, pytest.mark.slow]

RUNS = (23523, 23526, 23559, 23592)
#: Gammapy's own MINUIT tolerance (EDM target 0.002 * tol * errordef = 0.002) sets this scale
STAT_TOL = 1e-2
MAX_SIGMA = 0.1
NAMES = ["index", "amplitude", "lon_0", "lat_0", "sigma"]


def _yaml() -> str:
    text = """components:
- name: crab
  type: SkyModel
  spectral:
    type: PowerLawSpectralModel
    parameters:
    - {name: index, value: 2.5}
    - {name: amplitude, value: 4.0e-11, unit: cm-2 s-1 TeV-1}
    - {name: reference, value: 1.0, unit: TeV}
  spatial:
    type: GaussianSpatialModel
    frame: icrs
    parameters:
    - {name: lon_0, value: 83.633, unit: deg}
    - {name: lat_0, value: 22.014, unit: deg}
    - {name: sigma, value: 0.02, unit: deg}
"""
    for run in RUNS:
        text += f"""- type: FoVBackgroundModel
  name: {run}-bkg
  datasets_names: ['{run}']
  spectral:
    type: PowerLawNormSpectralModel
    parameters:
    - {{name: norm, value: 1.0}}
    - {{name: tilt, value: 0.0, frozen: true}}
    - {{name: reference, value: 1.0, unit: TeV}}
"""
    return text


@pytest.fixture(scope="module")
def gammapy_fit(tmp_path_factory, gp_hess_crab: Any) -> dict[str, Any]:
    """Gammapy's reduction written to FITS and Gammapy's own fit of it."""
    from gammapy.datasets import Datasets
    from gammapy.modeling import Fit as GFit
    from gammapy.modeling.models import Models as GModels

    warnings.simplefilter("ignore")
    out = tmp_path_factory.mktemp("fit_ext")
    datasets = Datasets([copy.deepcopy(gp_hess_crab.datasets[run]) for run in RUNS])
    files: dict[int, Path] = {}
    for run, ds in zip(RUNS, datasets, strict=True):
        files[run] = out / f"gammapy_{run}.fits"
        ds.write(files[run])
    datasets.models = GModels.from_yaml(_yaml())
    result = GFit().run(datasets)
    assert result.success
    crab = datasets.models["crab"]
    pars = {p.name: p for p in crab.parameters}
    ref = {n: (pars[n].value, pars[n].error) for n in NAMES}
    print(f"\n  gammapy Gaussian fit: stat {result.total_stat:.4f}, ref {ref}")
    return {"files": files, "stat": result.total_stat, "ref": ref}


def test_gaussian_fit_reaches_gammapy_minimum(gammapy_fit):
    models = Models.from_yaml(_yaml())
    files = gammapy_fit["files"]
    specs = [TermSpec("map", str(run), str(files[run]), models.to_dict()) for run in RUNS]
    with Coordinator(specs, None) as coord:
        result = Fit(models, coord).run()
    assert result.success, result.message
    print(f"  gdask stat {result.total_stat:.4f} vs gammapy {gammapy_fit['stat']:.4f}")
    for name in NAMES:
        full = f"crab.{'spatial' if name in ('lon_0', 'lat_0', 'sigma') else 'spectral'}.{name}"
        value, error = gammapy_fit["ref"][name]
        print(f"  {name}: gdask {result[full]:.6g} gammapy {value:.6g} +- {error:.3g}")
    assert result.total_stat <= gammapy_fit["stat"] + STAT_TOL
    for name in NAMES:
        full = f"crab.{'spatial' if name in ('lon_0', 'lat_0', 'sigma') else 'spectral'}.{name}"
        value, error = gammapy_fit["ref"][name]
        assert abs(result[full] - value) < MAX_SIGMA * error, name

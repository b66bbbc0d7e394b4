"""`gdask fit` on existing dataset files (issue 9 item 10): OGIP PHA spectra and a
Gammapy DL4 FITS file, from a run config without any reduction key.

The OGIP case is compared with Gammapy 2.1's fit of the same files in the same
test (the values of the free parameters within 0.01 of Gammapy's errors).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

from gdask.cli import main
from gdask.run_config import RunConfig

pytestmark = pytest.mark.realdata

CRAB_LP = {
    "components": [
        {
            "name": "crab",
            "type": "SkyModel",
            "spectral": {
                "type": "LogParabolaSpectralModel",
                "parameters": [
                    {"name": "amplitude", "value": 3.8e-11, "unit": "cm-2 s-1 TeV-1"},
                    {"name": "reference", "value": 1.0, "unit": "TeV"},
                    {"name": "alpha", "value": 2.5},
                    {"name": "beta", "value": 0.1},
                ],
            },
        }
    ]
}
HAWC_POINT = {
    "components": [
        {
            "name": "crab",
            "type": "SkyModel",
            "spectral": {
                "type": "PowerLawSpectralModel",
                "parameters": [
                    {"name": "index", "value": 2.6},
                    {"name": "amplitude", "value": 2.0e-13, "unit": "cm-2 s-1 TeV-1"},
                    {"name": "reference", "value": 7.0, "unit": "TeV"},
                ],
            },
            "spatial": {
                "type": "PointSpatialModel",
                "frame": "icrs",
                "parameters": [
                    {"name": "lon_0", "value": 83.633, "unit": "deg"},
                    {"name": "lat_0", "value": 22.014, "unit": "deg"},
                ],
            },
        }
    ]
}


def _write(tmp_path: Path, run: dict, models: dict) -> Path:
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(models))
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run))
    return path


@pytest.mark.validation
def test_fit_ogip_spectra_from_the_cli(tmp_path: Path, data_dir: Path) -> None:
    import astropy.units as u
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling import Fit as GFit
    from gammapy.modeling.models import Models as GModels

    spectra = data_dir / "joint-crab" / "spectra"
    run = {
        "analyses": [
            {"name": "veritas", "files": [str(spectra / "veritas" / "pha_obs*.fits")]},
            {"name": "hess", "files": str(spectra / "hess" / "pha_obs*.fits")},
        ],
        "fit": {"models": "models.yaml", "fit_ranges": {"veritas": [0.15, 30], "hess": [0.66, 30]}},
        "output": "results",
    }
    path = _write(tmp_path, run, CRAB_LP)
    cfg = RunConfig.read(path)
    assert [a.config for a in cfg.analyses] == [None, None]
    assert [a.kind for a in cfg.analyses] == ["spectrum", "spectrum"]
    assert main(["fit", str(path)]) == 0
    out = tmp_path / "results"
    summary = yaml.safe_load((out / "fit_summary.yaml").read_text())
    assert summary["success"] and summary["covariance_success"]
    assert sorted(summary["datasets"]) == [
        "hess-23523",
        "hess-23526",
        "hess-23559",
        "hess-23592",
        "veritas-54809",
        "veritas-57993",
    ]
    # Gammapy on the same files and ranges
    warnings.simplefilter("ignore")
    gds = Datasets()
    for inst, (lo, hi) in (("veritas", (0.15, 30)), ("hess", (0.66, 30))):
        for pha in sorted((spectra / inst).glob("pha_obs*.fits")):
            g = SpectrumDatasetOnOff.read(pha)
            g.mask_fit = g.counts.geom.energy_mask(lo * u.TeV, hi * u.TeV)
            gds.append(g)
    gds.models = GModels.from_dict(CRAB_LP)
    gres = GFit().run(gds)
    assert gres.success
    assert summary["total_stat"] == pytest.approx(gres.total_stat, abs=1e-3)
    for name in ("amplitude", "alpha", "beta"):
        gp = gds.models.parameters[name]
        ours = summary["parameters"][f"crab.spectral.{name}"]
        assert abs(ours["value"] - gp.value) < 0.01 * gp.error, name


@pytest.mark.slow
def test_fit_gammapy_dl4_file_from_the_cli(tmp_path: Path, data_dir: Path) -> None:
    run = {
        "analyses": [
            {"name": "hawc", "files": [str(data_dir / "hawc" / "DL4" / "nHit-8.fits.gz")]}
        ],
        "fit": {"models": "models.yaml", "mode": "in-process"},
        "output": "results",
    }
    path = _write(tmp_path, run, HAWC_POINT)
    cfg = RunConfig.read(path)
    assert cfg.analyses[0].kind == "map" and cfg.analyses[0].config is None
    assert main(["fit", str(path)]) == 0
    summary = yaml.safe_load((tmp_path / "results" / "fit_summary.yaml").read_text())
    assert summary["success"]
    assert list(summary["datasets"]) == ["hawc-nHit-8"]
    assert "hawc-nHit-8-bkg.spectral.norm" in summary["parameters"]  # FoV background added
    pos = summary["parameters"]["crab.spatial.lat_0"]
    assert abs(pos["value"] - 22.014) < 5 * pos["error"]

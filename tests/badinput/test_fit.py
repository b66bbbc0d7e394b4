"""Bad inputs of `gdask fit`: fit ranges over nothing, fit-section errors, dataset files.

Every case runs the CLI on a run config over the joint-Crab OGIP spectra (no
reduction) and asserts exit code 2, the named key / dataset / file, no
traceback, and that nothing was written to the results folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.badinput.conftest import assert_clean_failure, run_cli

pytestmark = pytest.mark.realdata

MODELS = {
    "components": [
        {
            "name": "crab",
            "type": "SkyModel",
            "spectral": {
                "type": "PowerLawSpectralModel",
                "parameters": [
                    {"name": "index", "value": 2.5},
                    {"name": "amplitude", "value": 3.0e-11, "unit": "cm-2 s-1 TeV-1"},
                    {"name": "reference", "value": 1.0, "unit": "TeV"},
                ],
            },
        }
    ]
}


def _run(tmp_path: Path, data_dir: Path, **changes: Any) -> Path:
    spectra = data_dir / "joint-crab" / "spectra"
    run: dict[str, Any] = {
        "analyses": [{"name": "veritas", "files": [str(spectra / "veritas" / "pha_obs*.fits")]}],
        "fit": {"models": "models.yaml", "fit_ranges": {"veritas": [0.15, 30]}},
        "output": "results",
    }
    for key, value in changes.items():
        node = run
        *parents, last = key.split(".")
        for k in parents:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[last] = value
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(MODELS))
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run))
    return path


@pytest.mark.parametrize(
    "changes, names",
    [
        # a fit range with no bin: above the data, and between two edges
        (
            {"fit.fit_ranges": {"veritas": [1000, 2000]}},
            ["veritas-54809", "[1000, 2000] TeV", "fit.fit_ranges.veritas", "no energy bin"],
        ),
        (
            {"fit.fit_ranges": {"veritas": ["1.01 TeV", "1.02 TeV"]}},
            ["veritas-54809", "[1.01, 1.02] TeV", "no energy bin"],
        ),
        # the fit section
        ({"fit.strategy": 3}, ["fit.strategy", "0, 1 or 2"]),
        ({"fit.strategy": True}, ["fit.strategy"]),
        ({"fit.tol": -0.1}, ["fit.tol", "must be > 0"]),
        ({"fit.tol": "small"}, ["fit.tol", "must be a number"]),
        ({"fit.polish": "yes"}, ["fit.polish", "true or false"]),
        ({"fit.backend": "migrad"}, ["fit.backend"]),
        # the datasets of a fit-only analysis
        ({"analyses.0.files": ["nothing_here_*.fits"]}, ["analyses[0].files[0]", "no such file"]),
        ({"analyses.0.files": 3}, ["analyses[0].files", "must be a file name"]),
        ({"analyses.0.config": "hess.yaml"}, ["analyses[0].config", "exactly one of"]),
        ({"analyses.0.store": "nowhere.zarr"}, ["analyses[0]", "exactly one of"]),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_bad_fit_config(tmp_path: Path, data_dir: Path, changes: dict, names: list) -> None:
    path = _run(tmp_path, data_dir, **changes)
    result = run_cli(["fit", path])
    assert result.code == 2, result.text
    assert_clean_failure(result, *names)
    assert not (tmp_path / "results").exists()


def test_file_that_is_not_a_dataset(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "notes.fits"
    bad.write_text("not FITS")
    result = run_cli(["fit", _run(tmp_path, data_dir, **{"analyses.0.files": [str(bad)]})])
    assert result.code == 2
    assert_clean_failure(result, "notes.fits", "analyses[0].files")


def test_store_given_alone_must_exist(tmp_path: Path, data_dir: Path) -> None:
    path = _run(tmp_path, data_dir)
    run = yaml.safe_load(path.read_text())
    run["analyses"][0] = {"name": "veritas", "store": "nowhere.zarr"}
    path.write_text(yaml.safe_dump(run))
    result = run_cli(["fit", path])
    assert result.code == 2
    assert_clean_failure(result, "analyses[0].store", "nowhere.zarr")


def test_mixed_spectra_and_maps(tmp_path: Path, data_dir: Path) -> None:
    files = [
        str(data_dir / "joint-crab" / "spectra" / "veritas" / "pha_obs54809.fits"),
        str(data_dir / "hawc" / "DL4" / "nHit-8.fits.gz"),
    ]
    result = run_cli(["fit", _run(tmp_path, data_dir, **{"analyses.0.files": files})])
    assert result.code == 2
    assert_clean_failure(result, "analyses[0].files", "mixes spectra")

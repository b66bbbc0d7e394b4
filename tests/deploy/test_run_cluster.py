"""``gdask run`` (ingest -> reduce -> joint fit) on a real multi-process cluster.

A ``dask scheduler`` and two ``dask worker`` processes on loopback run a
real-data analysis (H.E.S.S. Crab, four runs, 1D ON/OFF spectra, a power-law
fit with the likelihood terms resident on the workers); the fitted values
equal those of the embedded LocalCluster run, also when one worker process is
killed in the middle of the run.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from gdask.models import Models, PowerLawSpectralModel, SkyModel
from tests.archive.dl3copy import CRAB_RUNS, copy_archive
from tests.deploy.conftest import ProcessCluster, clean_env, gdask_cmd

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _write_run_config(folder: Path, dl3: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    models = Models(
        [
            SkyModel(
                PowerLawSpectralModel(
                    index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV"
                ),
                name="crab",
            )
        ]
    )
    models.write(folder / "models.yaml", overwrite=True)
    analysis = {
        "observations": {"dl3": str(dl3), "store": "archive.zarr", "obs_ids": CRAB_RUNS},
        "datasets": {
            "type": "1d",
            "on_region": {"lon": 83.633, "lat": 22.014, "radius": 0.11, "frame": "icrs"},
            "containment_correction": True,
            "geom": {
                "axes": {
                    "energy": {"min": 0.5, "max": 40, "nbin": 12},
                    "energy_true": {"min": 0.3, "max": 60, "nbin": 30},
                }
            },
        },
        "makers": {
            "safe_mask": {"methods": ["aeff-max"], "aeff_percent": 10},
            "background": {"method": "reflected"},
        },
        "output": {"store": "datasets.zarr", "overwrite": True},
    }
    run = {
        "analyses": [{"name": "hess", "config": analysis}],
        "fit": {"models": "models.yaml", "fit_ranges": {"hess": [0.7, 30]}, "mode": "distributed"},
        "output": "results",
    }
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(run, sort_keys=False))
    return path


def _fitted(folder: Path) -> dict[str, float]:
    summary = yaml.safe_load((folder / "results" / "fit_summary.yaml").read_text())
    assert summary["success"] is True
    assert summary["mode"] == "distributed"
    pars = summary["parameters"]
    items = pars.items() if isinstance(pars, dict) else ((p["name"], p) for p in pars)
    out = {}
    for name, p in items:
        out[f"{name}.value"] = float(p["value"])
        out[f"{name}.error"] = float(p["error"])
    out["total_stat"] = float(summary["total_stat"])
    return out


def _assert_same(a: dict[str, float], b: dict[str, float]) -> None:
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=0, err_msg=key)


@pytest.fixture(scope="module")
def local_result(hess_dir, tmp_path_factory) -> dict[str, float]:
    folder = tmp_path_factory.mktemp("local")
    dl3 = copy_archive(hess_dir, folder / "dl3", CRAB_RUNS)
    config = _write_run_config(folder, dl3)
    r = subprocess.run(
        gdask_cmd("run", str(config), "--workers", "2", "--no-progress"),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return _fitted(folder)


def test_run_on_process_cluster_matches_localcluster(hess_dir, tmp_path, local_result):
    dl3 = copy_archive(hess_dir, tmp_path / "dl3", CRAB_RUNS)
    config = _write_run_config(tmp_path / "cluster-run", dl3)
    cluster = ProcessCluster(tmp_path / "dask")
    try:
        r = subprocess.run(
            gdask_cmd("run", str(config), "--scheduler", cluster.address, "--no-progress"),
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=config.parent,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        log = cluster.log("scheduler")
        assert "name: worker-0" in log and "name: worker-1" in log
    finally:
        cluster.close()
    _assert_same(_fitted(config.parent), local_result)


def test_run_survives_a_killed_worker(hess_dir, tmp_path, local_result):
    dl3 = copy_archive(hess_dir, tmp_path / "dl3", CRAB_RUNS)
    config = _write_run_config(tmp_path / "cluster-run", dl3)
    cluster = ProcessCluster(tmp_path / "dask")
    try:
        proc = subprocess.Popen(
            gdask_cmd("run", str(config), "--scheduler", cluster.address, "--no-progress"),
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=config.parent,
        )
        # kill a worker once the run is under way: the first observations are in the archive store
        obs_dir = config.parent / "archive.zarr" / "obs"
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if obs_dir.is_dir() and any(p.name.isdigit() for p in obs_dir.iterdir()):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before the worker could be killed"
        cluster.kill("worker-1")
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err
        log = cluster.log("scheduler")
        assert "Remove worker" in log and "name: worker-1" in log.split("Remove worker", 1)[1], log
    finally:
        cluster.close()
    _assert_same(_fitted(config.parent), local_result)

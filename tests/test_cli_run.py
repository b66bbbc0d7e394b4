"""End to end on simulated data: `gdask demo`, then `gdask run` and `gdask fit` on its archives.

The demo (3 instruments, 2 runs each, fixed seed) simulates, ingests,
reduces and fits on a 2-worker LocalCluster; the other tests reuse its
simulated archives and stores, so the three together stay well under CI's
time budget.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.table import Table

from gdask.analysis.demo import MAX_PULL, compare_to_injected
from gdask.cli import main
from gdask.models import Models

pytestmark = pytest.mark.slow

RESULTS = {
    "models.yaml",
    "models_covariance.dat",
    "models_parameters.ecsv",
    "datasets.ecsv",
    "fit_summary.txt",
    "fit_summary.yaml",
    "spectrum.png",
    "counts_hess.png",
    "counts_magic.png",
    "counts_cta.png",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, int, float]:
    out = tmp_path_factory.mktemp("demo")
    t0 = time.perf_counter()
    rc = main(["demo", "--out", str(out), "--runs", "2", "--workers", "2", "--no-progress"])
    return out, rc, time.perf_counter() - t0


def _covered(out: Path, injected: Path) -> Table:
    summary = yaml.safe_load((out / "fit_summary.yaml").read_text())
    assert summary["success"] and summary["covariance_success"]
    pars = summary["parameters"]

    class _R:  # the FitResult fields compare_to_injected reads
        names = list(pars)
        values = np.array([p["value"] for p in pars.values()])
        errors = np.array([p["error"] for p in pars.values()])
        units = [p["unit"] for p in pars.values()]

    table = compare_to_injected(_R, Models.read(injected))
    bad = [(r["parameter"], r["pull"]) for r in table if not r["covered"]]
    assert not bad, f"not within {MAX_PULL} sigma: {bad}"
    return table


def test_demo(demo) -> None:
    out, rc, seconds = demo
    assert rc == 0
    assert RESULTS | {"comparison.ecsv", "run.yaml", "start-models.yaml"} <= {
        p.name for p in out.iterdir()
    }
    table = Table.read(out / "comparison.ecsv")
    assert np.all(table["covered"]) and len(table) == 7
    assert {
        "crab-sim.spectral.index",
        "magic-energy-scale.energy_scale.s",
        "hess-stacked-bkg.spectral.norm",
        "cta-stacked-bkg.spectral.norm",
    } <= set(table["parameter"])
    summary = yaml.safe_load((out / "fit_summary.yaml").read_text())
    assert summary["mode"] == "distributed" and summary["n_workers"] == 2
    assert set(summary["datasets"]) == {
        "hess-stacked",
        "cta-stacked",
        "magic-200001",
        "magic-200002",
    }
    _covered(out, out / "sim" / "models.yaml")
    assert seconds < 180


def test_run_end_to_end(demo, tmp_path: Path) -> None:
    """`gdask run` on the demo's run config: re-ingest (nothing new), reduce, fit (auto mode)."""
    out, rc, _ = demo
    assert rc == 0
    res = tmp_path / "run"
    assert (
        main(
            [
                "run",
                str(out / "run.yaml"),
                "--out",
                str(res),
                "--mode",
                "auto",
                "--workers",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    assert RESULTS <= {p.name for p in res.iterdir()}
    summary = yaml.safe_load((res / "fit_summary.yaml").read_text())
    assert summary["mode"] == "in-process"  # 50k bins: below the auto rule's threshold
    table = _covered(res, out / "sim" / "models.yaml")
    demo_table = Table.read(out / "comparison.ecsv")
    # the same datasets (reduction is deterministic), fitted in-process instead of distributed:
    # two minimisations whose sums differ in the last bits (multi-threaded BLAS here, one thread
    # on workers) stop at the same minimum within MIGRAD's tolerance, a tiny fraction of an error
    assert np.all(np.abs(table["fitted"] - demo_table["fitted"]) <= 0.02 * demo_table["error"])
    np.testing.assert_allclose(table["error"], demo_table["error"], rtol=0.01)
    ecsv = Table.read(res / "models_parameters.ecsv")
    assert "crab-sim.spectral.index" in list(ecsv["name"]) and np.all(ecsv["error"] >= 0)


def test_fit_from_analysis_configs(demo, tmp_path: Path) -> None:
    """`gdask fit a.yaml b.yaml c.yaml`: one analysis per file (named by stem), joint fit."""
    out, rc, _ = demo
    assert rc == 0
    run = yaml.safe_load((out / "run.yaml").read_text())
    files = []
    for a in run["analyses"]:
        cfg = a["config"]
        lo, hi = run["fit"]["fit_ranges"][a["name"]]
        cfg["fit"] = {"models": "start-models.yaml", "fit_range": {"min": lo, "max": hi}}
        path = out / f"{a['name']}.yaml"  # relative paths resolve against the demo folder
        path.write_text(yaml.safe_dump(cfg))
        files.append(str(path))
    res = tmp_path / "fit"
    assert main(["fit", *files, "--out", str(res), "--mode", "in-process"]) == 0
    assert RESULTS <= {p.name for p in res.iterdir()}
    t = Table.read(res / "datasets.ecsv")
    assert list(t["name"]) == ["hess-stacked", "magic-200001", "magic-200002", "cta-stacked"]
    table = _covered(res, out / "sim" / "models.yaml")
    assert "magic-energy-scale.energy_scale.s" not in set(table["parameter"])

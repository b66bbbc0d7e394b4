"""Bad input to ``gdask reduce``: a selection matching nothing, a locked output store, a run
without OFF region. Each case asserts the exit code, the named file / OBS_ID / field, no
traceback, and that the datasets already stored are intact."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gdask.archive.ingest import ingest
from gdask.datasets import DatasetStore
from tests.badinput.conftest import assert_clean_failure, run_cli

pytestmark = pytest.mark.realdata

RUNS = [23523, 23526]
CRAB = {"lon": 83.633, "lat": 22.014}


@pytest.fixture(scope="module")
def archive(hess_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("badreduce") / "archive.zarr"
    assert ingest(hess_dir, path, obs_ids=RUNS, progress=False, n_workers=1, processes=False).ok
    return path


def _config(tmp: Path, archive: Path, *, observations=None, on_region=None) -> Path:
    cfg = {
        "observations": {"store": str(archive), **(observations or {"obs_ids": RUNS})},
        "datasets": {
            "type": "1d",
            "on_region": {**CRAB, "radius": 0.11, **(on_region or {})},
            "geom": {
                "axes": {
                    "energy": {"min": 0.7, "max": 30, "nbin": 6},
                    "energy_true": {"min": 0.3, "max": 60, "nbin": 12},
                }
            },
        },
        "makers": {"safe_mask": {"methods": ["aeff-max"]}, "background": {"method": "reflected"}},
        "output": {"store": str(tmp / "datasets.zarr"), "overwrite": True},
    }
    path = tmp / "reduce.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _reduce(config: Path):
    return run_cli(["reduce", config, "--threads", "--workers", "1", "--no-progress"])


@pytest.fixture(scope="module")
def good_store(archive, tmp_path_factory) -> Path:
    """A dataset store already holding the two runs (must survive every bad case)."""
    tmp = tmp_path_factory.mktemp("good")
    result = _reduce(_config(tmp, archive))
    assert result.code == 0, result.text
    return tmp


def _intact(tmp: Path) -> None:
    store = DatasetStore(tmp / "datasets.zarr")
    assert store.names() == [str(i) for i in RUNS]
    for name in store.names():
        assert store.read(name, lazy=False).counts.values.sum() > 0


CASES = {
    "string selection without match": (
        {"observations": {"columns": {"TARGET_NAME": "Crab Nebula"}}},
        2,
        ["observations.columns.TARGET_NAME", "'Crab Nebula'", "'Crab'", "archive.zarr"],
    ),
    "only run has no OFF region": (
        # the ON region on run 23523's pointing: the reflected finder has no room
        {
            "observations": {"obs_ids": [23523]},
            "on_region": {"lon": 83.63333, "lat": 21.514444},
        },
        1,
        ["OBS_ID 23523", "no OFF region", "makers.background", "0 runs reduced, 1 skipped"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_reduce_input(case, archive, good_store):
    changes, code, names = CASES[case]
    result = _reduce(_config(good_store, archive, **changes))
    assert_clean_failure(result, *names)
    assert result.code == code
    _intact(good_store)


def test_concurrent_reduce_into_one_store_is_refused(archive, good_store):
    """While another reduce holds the store's writer lock, a second one fails cleanly before
    touching it (its start-up clean-up would delete the other's staging)."""
    store = DatasetStore(good_store / "datasets.zarr")
    staging = store.path / "_staging" / "23523-inflight"
    staging.mkdir()
    try:
        with store.lock():
            result = _reduce(_config(good_store, archive))
        assert_clean_failure(result, "another reduce is writing", "output.store", "datasets.zarr")
        assert result.code == 2
        assert staging.is_dir()  # the other writer's staging was not cleaned up
    finally:
        staging.rmdir()
    _intact(good_store)
    assert _reduce(_config(good_store, archive)).code == 0  # the lock is released


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lost_scheduler_is_said_once_and_written_datasets_count(archive, tmp_path):
    """The scheduler dies mid-reduce: one line says so; datasets already written are kept and
    counted as reduced, not as per-run ``FutureCancelledError`` failures."""
    import subprocess
    import sys
    import time

    from tests.badinput.conftest import run_cli_subprocess

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    py = [sys.executable, "-m"]
    sched = subprocess.Popen(
        [*py, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [*py, "distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cli = None
    try:
        # 3D maps of both runs, each run several seconds: the scheduler dies after the first
        cfg = {
            "observations": {"store": str(archive), "obs_ids": RUNS},
            "datasets": {
                "type": "3d",
                "geom": {
                    "wcs": {"skydir": CRAB, "width": 3, "binsz": 0.02, "binsz_irf": 0.2},
                    "axes": {
                        "energy": {"min": 0.7, "max": 10, "nbin": 10},
                        "energy_true": {"min": 0.5, "max": 20, "nbin": 20},
                    },
                },
            },
            "makers": {"offset_max": 2.5, "safe_mask": {"methods": ["offset-max"]}},
            "output": {"store": str(tmp_path / "lost.zarr")},
        }
        path = tmp_path / "lost.yaml"
        path.write_text(yaml.safe_dump(cfg))
        datasets = tmp_path / "lost.zarr" / "datasets"
        import threading

        result: dict = {}

        def _run() -> None:
            result["r"] = run_cli_subprocess(
                ["reduce", path, "--scheduler", address, "--no-progress"], timeout=600
            )

        cli = threading.Thread(target=_run)
        cli.start()
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and not (datasets.is_dir() and any(datasets.iterdir())):
            time.sleep(0.2)
        assert datasets.is_dir() and any(datasets.iterdir()), "no run was written in time"
        sched.kill()
        cli.join(600)
        r = result["r"]
    finally:
        for p in (sched, worker):
            p.kill()
            p.wait()
    written = DatasetStore(tmp_path / "lost.zarr").names()
    assert_clean_failure(r, "the Dask scheduler was lost")
    assert r.code == 1
    assert r.text.count("scheduler was lost") == 1
    assert "FutureCancelledError" not in r.text.replace(r.text.split("lost (")[1][:200], "")
    # every run reported reduced is in the store (a worker left without scheduler may still
    # finish the run it holds after the summary: that one cannot be counted)
    import re

    n_done = int(re.search(r"(\d+) runs reduced", r.text).group(1))
    assert 1 <= n_done <= len(written)
    assert f"{len(RUNS) - n_done} failed" in r.text
    for name in written:
        assert store_is_readable(tmp_path / "lost.zarr", name)


def store_is_readable(path: Path, name: str) -> bool:
    return DatasetStore(path).read(name, lazy=False).counts.values.sum() > 0

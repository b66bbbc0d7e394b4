"""gdask.cluster.ClientSource: one way for library functions to get a client (issue 10, item 6).

The given client, else the current default client, else one cluster started on
first use and shared by the steps of a job; a script without a ``__main__``
guard is told so instead of failing inside the re-imported workers.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gdask.cluster
from gdask.cluster import ClientSource, current_client
from gdask.config import AnalysisConfig
from gdask.reduce.graph import reduce


def _no_cluster(*args, **kwargs):
    raise AssertionError("a cluster was started although a client exists")


def test_given_then_default_client(monkeypatch):
    from distributed import Client

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert current_client() is None
    with Client(processes=False, n_workers=1, dashboard_address="127.0.0.1:0") as client:
        monkeypatch.setattr(gdask.cluster, "get_client", _no_cluster)
        assert current_client() is client
        with ClientSource() as source:
            assert source.get() is client  # the script's own Client
        with ClientSource(client) as source:
            assert ClientSource.wrap(source) is source
            assert ClientSource(source).get() is client  # a shared source
        assert client.status == "running"  # a client not started here is left open
    assert current_client() is None


def test_reduce_with_a_dl3_path_starts_one_cluster(hess_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    real, started = gdask.cluster.get_client, []

    def counting(*args, **kwargs):
        started.append(kwargs)
        return real(*args, **{**kwargs, "processes": False})

    monkeypatch.setattr(gdask.cluster, "get_client", counting)
    config = AnalysisConfig.from_dict(
        {
            "observations": {
                "dl3": str(hess_dir),
                "store": str(tmp_path / "archive.zarr"),
                "obs_ids": [23523],
            },
            "datasets": {
                "type": "3d",
                "geom": {
                    "wcs": {
                        "skydir": {"lon": 83.633, "lat": 22.014},
                        "width": 1,
                        "binsz": 0.05,
                        "binsz_irf": 0.2,
                    },
                    "axes": {
                        "energy": {"min": 1, "max": 10, "nbin": 2},
                        "energy_true": {"min": 0.5, "max": 20, "nbin": 4},
                    },
                },
            },
            "makers": {"safe_mask": {"methods": ["offset-max"]}, "offset_max": 2.5},
            "output": {"store": str(tmp_path / "datasets.zarr")},
        },
        tmp_path,
    )
    summary = reduce(config, progress=False)
    assert summary.ok and summary.count("done") == 1
    assert len(started) == 1  # ingest and reduction share it (were two LocalClusters)
    assert started[0]["n_workers"] == 1  # sized for the one run of the selection


@pytest.mark.slow
def test_script_without_main_guard_gets_a_clear_message(hess_dir, tmp_path):
    script = tmp_path / "analysis.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from gdask.archive import ingest

            ingest({str(hess_dir)!r}, {str(tmp_path / "store.zarr")!r}, obs_ids=[23523],
                   progress=False)
            """
        )
    )
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode != 0
    assert 'if __name__ == "__main__":' in proc.stderr, proc.stderr[-2000:]
    assert str(script) in proc.stderr
    assert "another ingest" not in proc.stderr

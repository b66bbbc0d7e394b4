"""Fixtures of the fit tests: a shared 2-worker LocalCluster; helpers importable by name."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture(scope="module")
def client():
    """A LocalCluster with 2 worker processes (one thread each) that can import the toys."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    cl = Client(cluster)
    cl.register_worker_callbacks(lambda: sys.path.insert(0, HERE))
    yield cl
    cl.close()
    cluster.close()

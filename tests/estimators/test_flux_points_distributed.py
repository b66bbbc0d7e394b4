"""Flux point bins as tasks on a 2-worker cluster: equal to in-process, and a lost worker
mid-estimation does not change the result (the test has its own cluster)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from gdask.estimators.flux_points import FluxPointsEstimator
from gdask.fit import Coordinator
from gdask.likelihood.term import TermSpec, build_term
from gdask.models import Models, PowerLawSpectralModel, SkyModel

RUNS = (23523, 23526, 23559, 23592)
KEYS = ("norm", "norm_err", "norm_errn", "norm_errp", "norm_ul", "ts", "npred", "stat_scan")


@pytest.fixture()
def setup(data_dir):
    models = Models(
        [
            SkyModel(
                spectral_model=PowerLawSpectralModel(index=2.6, amplitude="3.5e-11 cm-2 s-1 TeV-1"),
                name="crab",
            )
        ]
    )
    hess = data_dir / "joint-crab/spectra/hess"
    specs = [
        TermSpec("spectrum", str(i), str(hess / f"pha_obs{i}.fits"), models.to_dict()) for i in RUNS
    ]
    est = FluxPointsEstimator("crab", np.geomspace(0.7, 30, 25), selection_optional="all")
    return models, specs, est, est.run([build_term(s) for s in specs], models)


def _kill_when_busy(client, stop, killed):
    """Kill a worker process as soon as it is running a bin task (recorded in ``killed``)."""
    while not stop.is_set():
        for addr, keys in client.processing().items():
            if any("_bin_task" in str(k) for k in keys):
                killed.append(addr)
                try:
                    client.run(os._exit, 1, workers=[addr])
                except Exception:  # noqa: BLE001 - the worker dies before answering
                    pass
                return
        time.sleep(0.005)


def test_cluster_equals_in_process_and_survives_a_lost_worker(setup):
    from gdask.cluster import get_client

    models, specs, est, local = setup
    with get_client(n_workers=2, threads_per_worker=1) as client:
        with Coordinator(specs, client) as coord:
            same = est.run(coord, models)
            for key in KEYS:
                np.testing.assert_array_equal(same.data[key], local.data[key], err_msg=key)
            stop = threading.Event()
            killed: list[str] = []
            killer = threading.Thread(target=_kill_when_busy, args=(client, stop, killed))
            killer.start()
            try:
                lost = est.run(coord, models)
            finally:
                stop.set()
                killer.join()
            # a worker running a bin task was killed (Dask recomputes its replica and tasks,
            # or the estimator resubmits them: est.n_resubmitted)
            assert killed
            for key in KEYS:
                np.testing.assert_array_equal(lost.data[key], local.data[key], err_msg=key)

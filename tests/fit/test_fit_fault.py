"""Fault tolerance: a worker dies mid-fit, the fit finishes with the undisturbed result."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fit_helpers import PRELOAD, make_models, make_specs

from gdask.fit import Coordinator, Fit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

N = 8


def _problem():
    models = make_models(N)
    models["src"].spectral_model.index.value = 2.0
    # ~10 ms per term and evaluation: a group evaluation takes ~40 ms, so a kill lands mid-task
    return models, make_specs(models, N, sleep=0.01)


@pytest.fixture(params=[3, 0], ids=["reschedule", "killedworker"])
def cluster_client(request):
    """A cluster of this test's own (tests kill its workers): 2 worker processes.

    With ``allowed-failures=0`` a task running on a killed worker fails with
    KilledWorker at once, so the coordinator's own rebuild path is exercised
    (with the default the scheduler recomputes the group transparently)."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": request.param}):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
    client = Client(cluster)
    client.wait_for_workers(2, timeout=60)
    here = str(Path(__file__).parent)
    client.register_worker_callbacks(lambda: sys.path.insert(0, here))  # restarted ones too
    yield client
    client.close()
    cluster.close()


def _killer(client, coord: Coordinator, after: int, state: dict) -> threading.Thread:
    """Kill (SIGKILL) the worker process holding group 0 after ``after`` evaluations."""
    pids = client.run(os.getpid)
    (addr,) = client.who_has(coord.groups[:1]).popitem()[1]
    state["addr"], state["pid"] = addr, pids[addr]

    def run() -> None:
        t0 = time.monotonic()
        while coord.n_evaluations < after and time.monotonic() - t0 < 30:
            time.sleep(0.002)
        time.sleep(0.015)  # inside the next evaluation's tasks
        os.kill(state["pid"], signal.SIGKILL)
        state["killed_at"] = coord.n_evaluations

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def test_worker_killed_mid_fit(cluster_client):
    client = cluster_client
    models, specs = _problem()
    with Coordinator(specs, client, n_groups=2, preload=PRELOAD) as coord:
        ref = Fit(models, coord).run()

    models, specs = _problem()
    state: dict = {}
    with Coordinator(specs, client, n_groups=2, preload=PRELOAD) as coord:
        th = _killer(client, coord, after=5, state=state)
        result = Fit(models, coord).run()
        th.join(5)
        assert "killed_at" in state, "the worker was not killed during the fit"
        assert state["killed_at"] < ref.n_evaluations
        # the lost group lives again elsewhere
        holders = {w for ws in client.who_has(coord.groups).values() for w in ws}
        assert state["addr"] not in holders
        print(
            f"killed after {state['killed_at']} evaluations; coordinator rebuilds: "
            f"{coord.n_rebuilds}"
        )
    assert result.success
    np.testing.assert_allclose(result.values, ref.values, rtol=1e-6)
    np.testing.assert_allclose(result.errors, ref.errors, rtol=1e-6)
    assert result.total_stat == pytest.approx(ref.total_stat, rel=1e-9)
    np.testing.assert_array_equal(result.values, ref.values)  # in fact bit-identical


def test_lost_group_is_rebuilt_from_specs(cluster_client):
    """A group future that errors/cancels (as after KilledWorker) is rebuilt by the coordinator."""
    client = cluster_client
    models, specs = _problem()
    with Coordinator(specs, client, n_groups=2, preload=PRELOAD) as coord:
        v = models.parameters.value
        ref = coord.evaluate(v)
        client.cancel(coord.groups[1])
        ev = coord.evaluate(v)
        assert coord.n_rebuilds == 1
        np.testing.assert_array_equal(ev.stats, ref.stats)
        np.testing.assert_array_equal(ev.grad, ref.grad)

"""gdask.estimators.tiles: tiled == untiled, in-process and on a 2-worker LocalCluster,
and a worker killed mid-run does not change the result (a cluster of its own)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import numpy as np
import pytest

from gdask.estimators.amplitude import fit_amplitudes
from gdask.estimators.tiles import map_tiles, tile_slices


def _inputs(n=40, h=4, seed=2):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-h : h + 1, -h : h + 1]
    kernel = np.exp(-(x**2 + y**2) / 4.0)
    kernel /= kernel.sum()
    bkg = rng.uniform(0.1, 0.5, (n, n))
    expo = rng.uniform(5.0, 10.0, (n, n))
    counts = rng.poisson(bkg + 0.3 * (np.hypot(*np.mgrid[:n, :n] - n / 2) < 3)).astype(float)
    valid = np.ones((n, n), bool)
    valid[:2] = False
    return counts, bkg, expo, kernel, h, valid


def _untiled(counts, bkg, expo, kernel, h, valid):
    return fit_amplitudes(*(np.pad(a, h) for a in (counts, bkg, expo)), kernel=kernel, valid=valid)


def _check(out, ref):
    for key in ref:
        np.testing.assert_allclose(out[key], ref[key], rtol=1e-10, atol=1e-12, equal_nan=True)


def test_tile_slices_cover_once():
    cover = np.zeros((37, 50), int)
    for sl in tile_slices(cover.shape, 16):
        cover[sl] += 1
    assert np.all(cover == 1)


@pytest.mark.parametrize("tile", [7, 16, 64])
def test_tiled_equals_untiled(tile):
    counts, bkg, expo, kernel, h, valid = _inputs()
    ref = _untiled(counts, bkg, expo, kernel, h, valid)
    out = map_tiles(fit_amplitudes, (counts, bkg, expo), h, valid, tile=tile, kernel=kernel)
    _check(out, ref)
    assert np.nanmax(ref["ts"]) > 4


def _cluster():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )
    client = Client(cluster)
    client.wait_for_workers(2, timeout=60)
    return cluster, client


def test_tiled_on_cluster_equals_untiled():
    counts, bkg, expo, kernel, h, valid = _inputs()
    ref = _untiled(counts, bkg, expo, kernel, h, valid)
    cluster, client = _cluster()
    try:
        out = map_tiles(
            fit_amplitudes, (counts, bkg, expo), h, valid, tile=10, client=client, kernel=kernel
        )
    finally:
        client.close()
        cluster.close()
    _check(out, ref)


def slow_fit(*args, **kwargs):
    """`fit_amplitudes` taking at least 0.3 s per tile (so that a kill lands mid-run)."""
    time.sleep(0.3)
    return fit_amplitudes(*args, **kwargs)


def test_worker_killed_mid_run_same_result():
    counts, bkg, expo, kernel, h, valid = _inputs()
    ref = _untiled(counts, bkg, expo, kernel, h, valid)
    cluster, client = _cluster()
    state: dict = {}
    try:
        pids = list(client.run(os.getpid).values())

        def kill() -> None:
            time.sleep(1.0)
            os.kill(pids[0], signal.SIGKILL)
            state["killed_at"] = time.monotonic()

        th = threading.Thread(target=kill, daemon=True)
        th.start()
        out = map_tiles(
            slow_fit, (counts, bkg, expo), h, valid, tile=8, client=client, kernel=kernel
        )
        state["done_at"] = time.monotonic()
        th.join(5)
    finally:
        client.close()
        cluster.close()
    assert "killed_at" in state and state["killed_at"] < state["done_at"], "kill after the run"
    _check(out, ref)

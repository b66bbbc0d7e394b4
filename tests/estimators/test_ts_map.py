"""gdask.estimators.ts_map on a toy MapDataset: the source is found, tiling and a cluster
do not change the maps, the flux is the norm times the reference integral."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gdask.estimators.ts_map import TSMapEstimator, energy_groups
from tests.estimators.test_excess_map import _datasets


def test_energy_groups():
    edges = np.array([0.7, 1.0, 2.0, 5.0, 10.0])
    assert energy_groups(edges, None) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert energy_groups(edges, [0.7, 2.1, 10]) == [(0, 2), (2, 4)]


def test_ts_map_toy_in_process_and_on_cluster():
    from distributed import Client, LocalCluster

    on, *_ = _datasets()
    est = TSMapEstimator(kernel_width=0.1, energy_edges=[1.0, 10.0])
    ref = est.run(on)
    peak = np.unravel_index(np.nanargmax(ref["sqrt_ts"][0]), ref["sqrt_ts"][0].shape)
    assert 17 <= peak[0] <= 22 and 17 <= peak[1] <= 22
    assert ref["sqrt_ts"][0][peak] > 5
    f_ref = est.kernel_model.spectral_model.integral(1.0, 10.0)
    np.testing.assert_allclose(ref["flux"], ref["norm"] * float(np.ravel(f_ref)[0]), rtol=1e-12)
    small = TSMapEstimator(kernel_width=0.1, energy_edges=[1.0, 10.0], tile=7).run(on)
    for key in ("ts", "norm", "norm_ul", "niter"):
        np.testing.assert_allclose(small[key], ref[key], rtol=1e-10, atol=1e-12, equal_nan=True)
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
    )
    client = Client(cluster)
    try:
        dist = est.run(on, client=client)
    finally:
        client.close()
        cluster.close()
    for key in ("ts", "norm", "norm_err", "norm_ul"):
        np.testing.assert_allclose(dist[key], ref[key], rtol=1e-10, atol=1e-12, equal_nan=True)
    assert dist["ts"][0][peak] == pytest.approx(ref["ts"][0][peak], rel=1e-12)

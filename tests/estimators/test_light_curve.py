"""LightCurveEstimator on small synthetic ON/OFF datasets: bin membership, layout, tasks."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.time import Time

from gdask.datasets import SpectrumDatasetOnOff
from gdask.dl3.gti import GTI
from gdask.errors import ConfigError
from gdask.estimators.light_curve import LightCurveEstimator, datasets_in_interval
from gdask.estimators.norm import estimate_norm, norm_positions
from gdask.geometry import EnergyAxis
from gdask.likelihood.spectrum import SpectrumOnOffTerm
from gdask.models import Models, PowerLawSpectralModel, SkyModel

MJDREF = 51910.0
REF = Time(MJDREF, format="mjd", scale="tt")


def _dataset(name: str, start: float, stop: float, seed: int) -> SpectrumDatasetOnOff:
    rng = np.random.default_rng(seed)
    reco = EnergyAxis(np.geomspace(0.5, 20, 7), name="energy")
    true = EnergyAxis(np.geomspace(0.3, 30, 13), name="energy_true")
    edisp = np.zeros((12, 6))
    for i in range(12):
        edisp[i, min(max((i - 1) // 2, 0), 5)] = 1.0
    livetime = stop - start
    return SpectrumDatasetOnOff(
        reco,
        true,
        counts=rng.poisson(30, 6),
        counts_off=rng.poisson(40, 6),
        acceptance_off=np.full(6, 4.0),
        exposure=np.full(12, 1e9) * livetime / 600.0,
        edisp=edisp,
        livetime=livetime,
        name=name,
        gti=GTI.create([start], [stop], mjdref=MJDREF),
    )


def _models() -> Models:
    spec = PowerLawSpectralModel(index=2.5, amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    return Models([SkyModel(spec, name="src")])


def _intervals(edges_s):
    return [
        Time([REF + a * u.s, REF + b * u.s]) for a, b in zip(edges_s[:-1], edges_s[1:], strict=True)
    ]


@pytest.fixture(scope="module")
def setup():
    datasets = [
        _dataset("a", 0.0, 600.0, 1),
        _dataset("b", 600.0, 1000.0, 2),
        _dataset("c", 1000.0, 1200.0, 3),  # same bin as b
        _dataset("d", 2400.0, 3000.0, 4),
    ]
    # bins [0,600) [600,1200) [1200,1800) (empty: dropped) [1800,3000)
    return datasets, _intervals([0.0, 600.0, 1200.0, 1800.0, 3000.0])


def test_membership(setup):
    datasets, intervals = setup
    gtis = [d.gti for d in datasets]
    assert [datasets_in_interval(gtis, *iv) for iv in intervals] == [[0], [1, 2], [], [3]]


def test_bins_equal_direct_estimate(setup):
    datasets, intervals = setup
    models = _models()
    lc = LightCurveEstimator(intervals, "src", [0.5, 20], selection_optional="all").run(
        datasets, models
    )
    assert len(lc) == 3  # the empty bin is dropped, as Gammapy does
    np.testing.assert_allclose(
        lc.time_min.tt.mjd, [iv[0].tt.mjd for iv in (intervals[0], intervals[1], intervals[3])]
    )
    assert lc.data["counts"].shape == (3, 1, 4)
    assert np.isnan(lc.data["counts"][0, 0, 1:]).all()
    assert lc.data["counts"][1, 0, 1] == datasets[1].counts.values.sum()
    pos = norm_positions(models, "src")
    terms = [SpectrumOnOffTerm(d, models) for d in datasets[1:3]]
    direct = estimate_norm(terms, models.parameters.value, pos, selection_optional="all")
    for key in ("norm", "norm_err", "norm_errn", "norm_errp", "norm_ul", "ts"):
        assert lc.data[key][1, 0] == direct[key]
    assert lc.quantity("flux")[1, 0] == pytest.approx(direct["norm"] * lc.data["ref_flux"][1, 0])


def test_tasks_on_a_cluster_equal_in_process(setup):
    from distributed import Client, LocalCluster

    datasets, intervals = setup
    est = LightCurveEstimator(intervals, "src", [0.5, 20], selection_optional=["ul"])
    local = est.run(datasets, _models())
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        with Client(cluster) as client:
            remote = est.run(datasets, _models(), client=client)
    for key in ("norm", "norm_ul", "ts", "counts", "npred"):
        np.testing.assert_array_equal(remote.data[key], local.data[key])


def test_no_dataset_in_any_bin(setup):
    datasets, _ = setup
    with pytest.raises(ConfigError, match="time_intervals"):
        LightCurveEstimator(_intervals([5000.0, 6000.0]), "src", [0.5, 20]).run(datasets, _models())
    with pytest.raises(ConfigError, match="source"):
        LightCurveEstimator(_intervals([0.0, 600.0]), "nope", [0.5, 20]).run(datasets, _models())


def slow_time_bin(*args, **kwargs):
    """`estimate_time_bin` taking at least 0.3 s (so that a kill lands mid-run).

    Runs on the workers only, where `estimate_time_bin` is not patched.
    """
    import time

    from gdask.estimators.light_curve import estimate_time_bin

    time.sleep(0.3)
    return estimate_time_bin(*args, **kwargs)


def test_worker_killed_mid_run_same_result(monkeypatch):
    import logging
    import os
    import signal
    import threading
    import time

    from distributed import Client, LocalCluster

    from gdask.estimators import light_curve

    datasets = [_dataset(f"r{i}", 600.0 * i, 600.0 * i + 500.0, 10 + i) for i in range(12)]
    intervals = _intervals(600.0 * np.arange(13))
    est = LightCurveEstimator(intervals, "src", [0.5, 20], selection_optional="all")
    ref = est.run(datasets, _models())
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )
    client = Client(cluster)
    state: dict = {}
    try:
        client.wait_for_workers(2, timeout=60)
        # patched in this process only: run() submits slow_time_bin to the workers
        monkeypatch.setattr(light_curve, "estimate_time_bin", slow_time_bin)
        pids = list(client.run(os.getpid).values())

        def kill() -> None:
            time.sleep(0.8)
            os.kill(pids[0], signal.SIGKILL)
            state["killed_at"] = time.monotonic()

        th = threading.Thread(target=kill, daemon=True)
        th.start()
        out = est.run(datasets, _models(), client=client)
        state["done_at"] = time.monotonic()
        th.join(5)
    finally:
        client.close()
        cluster.close()
    assert "killed_at" in state and state["killed_at"] < state["done_at"], "kill after the run"
    assert len(out) == len(ref) == 12
    for key in ("norm", "norm_err", "norm_errn", "norm_errp", "norm_ul", "ts", "counts", "npred"):
        np.testing.assert_array_equal(out.data[key], ref.data[key], err_msg=key)

"""Fits on a 2-worker LocalCluster: same results as in-process, few round trips,
parallel profiles (threads and replicas), errors of terms propagate."""

from __future__ import annotations

import numpy as np
import pytest
from fit_helpers import PRELOAD, make_models, make_specs

from gdask.fit import Coordinator, Fit

pytestmark = pytest.mark.slow

N = 6


def _problem():
    models = make_models(N)
    models["src"].spectral_model.index.value = 2.1
    return models, make_specs(models, N)


@pytest.fixture(scope="module")
def reference():
    """In-process fits: one group, and two groups (the cluster's partition)."""
    models, specs = _problem()
    with Coordinator(specs) as coord:
        fit = Fit(models, coord)
        r1 = fit.run()
        prof = fit.stat_profile("index", n_values=4)
    with Coordinator(specs, n_groups=2) as coord:
        r2 = Fit(_problem()[0], coord).run()
    return r1, r2, prof


def test_cluster_matches_in_process(client, reference):
    r1, r2, _ = reference
    models, specs = _problem()
    with Coordinator(specs, client, preload=PRELOAD) as coord:
        assert coord.n_groups == 2
        who = client.who_has(coord.groups)
        assert len({w for ws in who.values() for w in ws}) == 2  # one group per worker
        r = Fit(models, coord).run()
    # same partition -> bit-identical; other partition -> identical to rounding
    np.testing.assert_array_equal(r.values, r2.values)
    np.testing.assert_array_equal(r.covariance, r2.covariance)
    assert r.total_stat == r2.total_stat
    np.testing.assert_allclose(r.values, r1.values, rtol=1e-9)
    np.testing.assert_allclose(r.errors, r1.errors, rtol=1e-6)
    assert r.stats == pytest.approx(r1.stats, rel=1e-9)
    # analytic gradient + gradient-difference Hessian: few round trips (MIGRAD, the
    # polishing MIGRAD at strategy 1, HESSE)
    assert r.n_round_trips < 70


def test_evaluate_many_is_one_round_trip(client):
    models, specs = _problem()
    with Coordinator(specs, client, preload=PRELOAD) as coord, Coordinator(specs) as local:
        v = np.tile(models.parameters.value, (5, 1))
        v[:, 0] = np.linspace(2.0, 2.4, 5)
        n0 = coord.n_round_trips
        evs = coord.evaluate_many(v)
        assert coord.n_round_trips == n0 + 1
        for row, ev in zip(v, evs, strict=True):
            ref = local.evaluate(row)
            np.testing.assert_array_equal(ev.stats, ref.stats)
            np.testing.assert_allclose(ev.grad, ref.grad, rtol=1e-12)
        infos = coord.infos()
        assert [i["name"] for i in infos] == coord.names


@pytest.mark.parametrize("parallel", ["threads", "replicas"])
def test_parallel_profile(client, reference, parallel):
    _, _, prof_ref = reference
    models, specs = _problem()
    with Coordinator(specs, client, preload=PRELOAD) as coord:
        fit = Fit(models, coord)
        fit.run()
        prof = fit.stat_profile("index", n_values=4, parallel=parallel)
    np.testing.assert_allclose(
        prof["src.spectral.index_scan"], prof_ref["src.spectral.index_scan"], rtol=1e-8
    )
    np.testing.assert_allclose(prof["stat_scan"], prof_ref["stat_scan"], rtol=1e-8)
    assert prof["success"]


def test_term_error_propagates_without_retry(client):
    models = make_models(2)
    specs = make_specs(models, 2, kind="toy-linear")
    specs[1] = type(specs[1])(specs[1].kind, specs[1].name, "", specs[1].models, {"fail": True})
    with Coordinator(specs, client, preload=PRELOAD) as coord:
        with pytest.raises(FloatingPointError, match="on purpose"):
            Fit(models, coord).run()
        assert coord.n_rebuilds == 0


def test_one_evaluation_is_one_graph_update(client):
    """All groups' tasks of an evaluation reach the scheduler in one graph update (a
    ``client.submit`` per group costs one scheduler message each)."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Updates(SchedulerPlugin):
        def __init__(self) -> None:
            self.tasks: list[list] = []

        def update_graph(self, scheduler, *, tasks, **kwargs) -> None:  # noqa: ANN001
            self.tasks.append([str(k) for k in tasks if "gdask-eval" in str(k)])

    models, specs = _problem()
    scheduler = client.cluster.scheduler
    with Coordinator(specs, client, preload=PRELOAD) as coord:
        coord.evaluate(models.parameters.value)
        plugin = Updates()
        scheduler.add_plugin(plugin, name="count-updates")
        try:
            for k in range(3):
                coord.evaluate(models.parameters.value * (1 + 1e-3 * (k + 1)))
        finally:
            scheduler.remove_plugin(name="count-updates")
    evals = [t for t in plugin.tasks if t]
    assert len(evals) == 3, plugin.tasks
    assert all(len(t) == coord.n_groups == 2 for t in evals)

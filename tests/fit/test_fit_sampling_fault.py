"""A worker lost mid-sampling does not change the (seeded) emcee chain (own cluster)."""

from __future__ import annotations

import numpy as np
import pytest
from fit_helpers import PRELOAD
from test_fit_fault import _killer, _problem, cluster_client  # noqa: F401 (fixture)

from gdask.fit import Coordinator
from gdask.fit.sampling import sample_emcee
from gdask.models import UniformPrior

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _sampling_problem():
    models, specs = _problem()
    widths = []
    for p in models.parameters.free_parameters:
        half = 0.5 * abs(p.value) if p.value else 1.0
        p.prior = UniformPrior(min=p.value - half, max=p.value + half)
        widths.append(0.01 * half)
    return models, specs, np.array(widths)


def _chain(client, kill: bool, state: dict):
    models, specs, widths = _sampling_problem()
    with Coordinator(specs, client, n_groups=2, preload=PRELOAD) as coord:
        th = _killer(client, coord, after=40, state=state) if kill else None
        res = sample_emcee(
            models,
            coord,
            n_walkers=2 * len(widths) + 2,
            n_steps=15,
            n_burn=0,
            seed=7,
            start_errors=widths,
        )
        if th is not None:
            th.join(5)
    return res


def test_worker_killed_mid_sampling(cluster_client):  # noqa: F811
    ref = _chain(cluster_client, False, {})
    state: dict = {}
    res = _chain(cluster_client, True, state)
    assert "killed_at" in state, "the worker was not killed during sampling"
    # killed before the last round trip (the killer counts evaluated vectors)
    assert state["killed_at"] < ref.n_evaluations * ref.samples.shape[1]
    np.testing.assert_array_equal(res.samples, ref.samples)

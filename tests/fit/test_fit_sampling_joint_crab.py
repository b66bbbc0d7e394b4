"""Posterior sampling on the joint-Crab fit (10 OGIP spectra, WSTAT, log-parabola):
posterior medians and 68 % intervals against the profile-likelihood (MINOS) errors."""

from __future__ import annotations

import time

import pytest
from test_fit_joint_crab import _models, _specs

from gdask.fit import Coordinator, Fit
from gdask.fit.sampling import sample_emcee
from gdask.models import UniformPrior

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def test_posterior_agrees_with_profile_errors(data_dir):
    models = _models()
    with Coordinator(_specs(data_dir, models)) as coord:
        fit = Fit(models, coord)
        result = fit.run()
        assert result.success, result.message
        best = dict(
            zip(
                [p.name for p in models.parameters.free_parameters],
                result.values,
                strict=True,
            )
        )
        confs = {p.name: fit.confidence(p.name) for p in models.parameters.free_parameters}
        for p in models.parameters.free_parameters:
            p.prior = UniformPrior(min=p.value - 30 * p.error, max=p.value + 30 * p.error)
        t0 = time.perf_counter()
        res = sample_emcee(
            models,
            coord,
            n_walkers=24,
            n_steps=1000,
            n_burn=200,
            seed=1,
            start_errors=result.errors,
        )
        elapsed = time.perf_counter() - t0
    print(f"emcee joint-Crab: {elapsed:.1f} s, acceptance {res.acceptance:.2f}")
    tab = res.table()
    for full, row in tab.items():
        conf = confs[full.rsplit(".", 1)[-1]]
        name = full.rsplit(".", 1)[-1]
        print(full, row, best[name], conf["errn"], conf["errp"])
        assert abs(row["median"] - best[name]) < 0.1 * (conf["errp"] + conf["errn"])
        assert row["hi"] - row["lo"] == pytest.approx(conf["errp"] + conf["errn"], rel=0.05)

"""Posterior sampling (emcee, walkers in one round trip) on the toy linear terms:
the posterior of a linear-Gaussian model is Gaussian with the fit's covariance."""

from __future__ import annotations

import numpy as np
import pytest
from fit_helpers import make_models, make_specs

from gdask.errors import GdaskError
from gdask.fit import Coordinator, Fit
from gdask.fit.sampling import sample_emcee, write_posterior
from gdask.models import UniformPrior


def _setup():
    models = make_models(1, bkg=False)
    specs = make_specs(models, 1, kind="toy-linear")
    return models, specs


def _with_priors(models, result):
    for p in models.parameters.free_parameters:
        p.prior = UniformPrior(min=p.value - 50 * p.error, max=p.value + 50 * p.error)


def test_missing_prior_is_a_clear_error():
    models, specs = _setup()
    with Coordinator(specs) as coord, pytest.raises(GdaskError, match="prior"):
        sample_emcee(models, coord, n_steps=5, n_burn=0)


def test_posterior_matches_linear_errors_and_is_seeded():
    models, specs = _setup()
    with Coordinator(specs) as coord:
        result = Fit(models, coord).run()
        _with_priors(models, result)
        res = sample_emcee(
            models,
            coord,
            n_walkers=16,
            n_steps=1500,
            n_burn=300,
            seed=3,
            start_errors=result.errors,
        )
        again = sample_emcee(
            models, coord, n_walkers=16, n_steps=50, n_burn=0, seed=3, start_errors=result.errors
        )
        first = sample_emcee(
            models, coord, n_walkers=16, n_steps=50, n_burn=0, seed=3, start_errors=result.errors
        )
    # the stretch move updates the two half-ensembles in turn: 2 round trips a step (+ start)
    assert res.n_evaluations == 2 * 1500 + 1
    tab = res.table()
    err = result.errors
    for i, name in enumerate(res.names):
        half = 0.5 * (tab[name]["hi"] - tab[name]["lo"])
        assert half == pytest.approx(err[i], rel=0.15)
        assert abs(tab[name]["median"] - result.values[i]) < 0.2 * err[i]
    np.testing.assert_array_equal(again.samples, first.samples)


def test_write_posterior_table_and_corner(tmp_path):
    models, specs = _setup()
    with Coordinator(specs) as coord:
        result = Fit(models, coord).run()
        _with_priors(models, result)
        res = sample_emcee(models, coord, n_steps=60, n_burn=10, start_errors=result.errors)
    table, plot = write_posterior(res, tmp_path / "results")
    rows = table.read_text().splitlines()
    assert rows[0] == "name,median,lo68,hi68" and len(rows) == 1 + len(res.names)
    name, med, lo, hi = rows[1].split(",")
    assert name == res.names[0] and float(lo) < float(med) < float(hi)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""Fits in-process: analytic optimum and covariance, backends, links, priors, MINOS,
profiles, contours and result output."""

from __future__ import annotations

import numpy as np
import pytest
from fit_analytic import linear_solution
from fit_helpers import make_models, make_specs
from scipy.stats import chi2

from gdask.fit import Coordinator, Fit, FitProblem
from gdask.models import GaussianPrior, Models, link_parameters


def _linear(n: int = 3, **kw):
    models = make_models(n)
    specs = make_specs(models, n, kind="toy-linear", **kw)
    return models, specs


@pytest.mark.parametrize(
    "backend,hessian", [("minuit", "gradient"), ("minuit", "numerical"), ("scipy", "gradient")]
)
def test_linear_optimum_and_covariance(backend, hessian):
    models, specs = _linear()
    best, cov = linear_solution(models, specs)
    with Coordinator(specs) as coord:
        result = Fit(models, coord, backend=backend, hessian=hessian, tol=0.001).run()
    assert result.success, result.message
    sig = np.sqrt(np.diag(cov))
    np.testing.assert_allclose((result.values - best) / sig, 0, atol=1e-3)
    np.testing.assert_allclose(
        result.covariance, cov, rtol=1e-5 if hessian == "gradient" else 1e-3, atol=0
    )
    np.testing.assert_allclose(result.errors, sig, rtol=1e-5 if hessian == "gradient" else 1e-3)
    assert result.covariance_success
    # models updated: values, errors, covariance over all unique slots (Gammapy layout)
    prob = FitProblem(models)
    np.testing.assert_allclose(prob.values[prob.free], result.values)
    assert models.covariance.shape == (len(prob.values),) * 2
    assert models["src"].spectral_model.index.error == pytest.approx(result.errors[0])
    assert result.stats.keys() == {"d0", "d1", "d2"}
    assert sum(result.stats.values()) == pytest.approx(result.total_stat)
    assert result.n_evaluations > 0 and result.n_fcn > 0 and result.n_grad > 0


def test_fewer_evaluations_with_gradient_hessian():
    """The gradient-difference Hessian replaces ~n^2/2 sequential HESSE calls by one batch."""
    models, specs = _linear(6)
    with Coordinator(specs) as coord:
        r_grad = Fit(models, coord).run()
        n_rt_grad = r_grad.n_round_trips
        r_num = Fit(_linear(6)[0], coord, hessian="numerical").run()
    assert n_rt_grad < r_num.n_round_trips / 3
    np.testing.assert_allclose(r_grad.values, r_num.values, rtol=1e-3)


def test_links_priors_penalties():
    models, _ = _linear(3)
    from gdask.models import PowerLawSpectralModel, SkyModel

    src2 = SkyModel(
        PowerLawSpectralModel(index=2.3, amplitude="1e-12 cm-2 s-1 TeV-1"),
        name="src2",
        datasets_names=["d0", "d1"],
    )
    link_parameters(models["src"].spectral_model.index, src2.spectral_model.index)
    models = Models([*models, src2])
    models["d1-bkg"].spectral_model.norm.prior = GaussianPrior(mu=1.05, sigma=0.02)
    penalties = {"src2.spectral.amplitude": (1.2e-12, 0.1e-12)}
    specs = make_specs(models, 3, kind="toy-linear")
    best, cov = linear_solution(models, specs, penalties=penalties)
    with Coordinator(specs) as coord:
        fit = Fit(models, coord, penalties=penalties, tol=0.001)
        result = fit.run()
    assert "src2.spectral.index" not in result.names  # linked: one slot
    sig = np.sqrt(np.diag(cov))
    np.testing.assert_allclose((result.values - best) / sig, 0, atol=1e-3)
    np.testing.assert_allclose(result.covariance, cov, rtol=1e-5)
    assert result.prior_stat != 0
    assert result.total_stat == pytest.approx(sum(result.stats.values()) + result.prior_stat)
    assert src2.spectral_model.index.value == models["src"].spectral_model.index.value


def test_nonlinear_backends_agree_and_minos():
    models = make_models(4)
    specs = make_specs(models, 4)
    models["src"].spectral_model.index.value = 2.0
    with Coordinator(specs) as coord:
        r1 = Fit(models, coord).run()
        fit2 = Fit(make_models(4), coord, backend="scipy")
        r2 = fit2.run()
        fit3 = Fit(make_models(4), coord, hessian="numerical")
        r3 = fit3.run()
        conf = fit3.confidence("index")
    sig = r1.errors
    np.testing.assert_allclose((r1.values - r2.values) / sig, 0, atol=0.02)
    np.testing.assert_allclose(r1.errors, r2.errors, rtol=0.01)
    np.testing.assert_allclose(r1.errors, r3.errors, rtol=0.01)
    assert r1.total_stat == pytest.approx(r2.total_stat, abs=1e-3)
    assert conf["success"]
    assert conf["errp"] == pytest.approx(r1.error("index"), rel=0.05)
    assert conf["errn"] == pytest.approx(r1.error("index"), rel=0.05)


def test_profile_and_slice_are_parabolas_for_linear_model():
    models, specs = _linear(2)
    best, cov = linear_solution(models, specs)
    with Coordinator(specs) as coord:
        fit = Fit(models, coord, tol=0.001)
        r = fit.run()
        prof = fit.stat_profile("src.spectral.index", n_values=5)
        sl = fit.stat_profile("src.spectral.index", n_values=5, reoptimize=False)
        surf = fit.stat_surface(
            "index", "amplitude", [2.2, 2.3], [1.8e-12, 2e-12, 2.2e-12], reoptimize=True
        )
    x = prof["src.spectral.index_scan"]
    np.testing.assert_allclose(x, r["index"] + r.errors[0] * np.linspace(-2, 2, 5), rtol=1e-12)
    np.testing.assert_allclose(
        prof["stat_scan"] - r.total_stat, (x - best[0]) ** 2 / cov[0, 0], atol=2e-3
    )
    assert len(prof["fit_results"]) == 5 and prof["success"]
    # slice: others fixed at the best fit -> curvature from the inverse of the Hessian block
    h00 = np.linalg.inv(cov)[0, 0]
    np.testing.assert_allclose(sl["stat_scan"] - r.total_stat, h00 * (x - best[0]) ** 2, atol=2e-3)
    assert surf["stat_scan"].shape == (2, 3)


def test_contour_on_linear_model():
    models, specs = _linear(2)
    _, cov = linear_solution(models, specs)
    with Coordinator(specs) as coord:
        fit = Fit(models, coord, tol=0.001)
        r = fit.run()
        cont = fit.stat_contour("index", "amplitude", numpoints=8, sigma=1.0)
    assert cont["success"]
    d = np.array(
        [cont["src.spectral.index"] - r["index"], cont["src.spectral.amplitude"] - r["amplitude"]]
    )
    c2 = np.linalg.inv(cov[:2, :2])
    q = np.einsum("in,ij,jn->n", d, c2, d)
    np.testing.assert_allclose(q, chi2(2).ppf(chi2(2).cdf(1.0)), rtol=1e-3)


def test_result_output(tmp_path):
    models, specs = _linear(2)
    with Coordinator(specs) as coord:
        result = Fit(models, coord).run()
    text = result.to_yaml()
    assert "OptimizeResult" in text and "components" in text
    path = tmp_path / "fit.yaml"
    result.write(path)
    assert (tmp_path / "fit_covariance.dat").exists()
    back = Models.read(path)
    np.testing.assert_allclose(back.parameters.value, result.models.parameters.value)
    prob = FitProblem(back)
    np.testing.assert_allclose(
        back.covariance[np.ix_(prob.free, prob.free)], result.covariance, rtol=1e-6
    )
    assert back["src"].spectral_model.index.error == pytest.approx(result.errors[0])
    from astropy.table import Table

    table = Table.read(tmp_path / "fit_parameters.ecsv")
    assert list(table["name"]) == result.models.parameters_unique_names
    assert np.count_nonzero(~table["frozen"]) == len(result.names)
    with pytest.raises(FileExistsError):
        result.write(path)
    assert "src.spectral.index" in str(result)


def test_term_errors_propagate():
    models, specs = _linear(1)
    bad = [type(specs[0])("toy-unknown", "d0", "", specs[0].models)]
    from gdask.errors import ConfigError

    with pytest.raises(ConfigError):
        Coordinator(bad).start()
    with pytest.raises(ValueError):
        Coordinator(specs + specs)


def test_non_finite_parameters_are_an_invalid_point_not_a_term_input():
    """A minimiser stepping to NaN gets an invalid point back (+inf for MIGRAD, NaN
    gradient); the terms are never called with it."""
    from gdask.fit.backends import Objective

    class Boom:
        def evaluate(self, values):
            raise AssertionError("a term was evaluated at a non-finite point")

        def evaluate_many(self, stack):
            raise AssertionError("a term was evaluated at a non-finite point")

    class Problem:
        pass

    obj = Objective(Problem(), Boom())
    stat, grad, _ = obj.evaluate([1.0, np.nan])
    assert not np.isfinite(stat) and np.all(np.isnan(grad))
    assert not np.isfinite(obj.fcn([np.inf, 0.0]))
    assert obj.n_invalid == 2


@pytest.mark.parametrize("backend", ["minuit", "scipy"])
def test_a_fit_wandering_outside_the_model_domain_ends_with_a_status(backend):
    """Issue 9 item 5: a term raising at a point the minimiser tried (the elliptical disk's
    ValueError after MIGRAD moved lon_0 far away) is an invalid point, not a crash."""
    models, specs = _linear(2)
    best, _ = linear_solution(models, specs)
    index = models.parameters.unique_parameters.names.index("index")
    start = models.parameters.unique_parameters[index].value
    # the model is undefined beyond the middle of the way to the unconstrained optimum
    edge = start + 0.5 * (best[index] - start)
    lo, hi = (-np.inf, edge) if best[index] > start else (edge, np.inf)
    slot = [p.name for p in models.parameters].index("index")
    specs = make_specs(models, 2, kind="toy-linear", domain=(slot, lo, hi))
    with Coordinator(specs) as coord:
        result = Fit(models, coord, backend=backend).run()
    assert "could not evaluate" in result.message
    assert "outside the domain" in result.message
    assert np.isfinite(result.total_stat)  # it ends at a point the terms evaluate
    assert lo <= result.values[result.names.index("src.spectral.index")] <= hi
    bad = make_specs(models, 2, kind="toy-linear", domain=(slot, start + 1, np.inf))
    with Coordinator(bad) as coord, pytest.raises(ValueError, match="outside the domain"):
        Fit(models, coord).run()  # an invalid start is an error, not a status

"""Temporal models: values, integrals (vs quad), gradients, YAML and template IO."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import yaml

from gdask.models import model_from_dict
from gdask.models.temporal import (
    T_REF_DEFAULT,
    ConstantTemporalModel,
    ExpDecayTemporalModel,
    GaussianTemporalModel,
    LightCurveTemplateTemporalModel,
    LinearTemporalModel,
    PowerLawTemporalModel,
    SineTemporalModel,
)

TR = 55000.25
T_MIN = np.array([55000.5, 55001.7, 55003.0])
T_MAX = np.array([55001.1, 55002.9, 55004.2])
TIMES = np.linspace(55000.4, 55004.3, 41)

CASES = {
    "linear": (LinearTemporalModel, dict(alpha=1.3, beta=0.2, t_ref=TR)),
    "expdecay": (ExpDecayTemporalModel, dict(t0=1.7, t_ref=TR)),
    "gauss": (GaussianTemporalModel, dict(t_ref=55002.1, sigma=0.8)),
    "powerlaw": (PowerLawTemporalModel, dict(alpha=-1.4, t_ref=TR - 0.1, t0=0.5)),
    "powerlaw-log": (PowerLawTemporalModel, dict(alpha=-1.0, t_ref=TR - 0.1, t0=0.5)),
    "sine": (SineTemporalModel, dict(amp=0.6, omega=2.3, t_ref=TR)),
}

FORMULAS = {
    "linear": lambda t, alpha, beta, t_ref: alpha + beta * (t - t_ref),
    "expdecay": lambda t, t0, t_ref: np.exp(-(t - t_ref) / t0),
    "gauss": lambda t, t_ref, sigma: np.exp(-0.5 * ((t - t_ref) / sigma) ** 2),
    "powerlaw": lambda t, alpha, t_ref, t0: ((t - t_ref) / t0) ** alpha,
    "powerlaw-log": lambda t, alpha, t_ref, t0: ((t - t_ref) / t0) ** alpha,
    "sine": lambda t, amp, omega, t_ref: 1 + amp * np.sin(omega * (t - t_ref)),
}


def _quad_integral(fun, t_min, t_max):
    total = np.sum(t_max - t_min)
    return (
        np.array(
            [
                scipy.integrate.quad(fun, a, b, epsabs=0, epsrel=1e-12, limit=200)[0]
                for a, b in zip(t_min, t_max, strict=True)
            ]
        )
        / total
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_integrals(name):
    cls, pars = CASES[name]
    np.testing.assert_allclose(
        cls.evaluate(TIMES, **pars), FORMULAS[name](TIMES, **pars), rtol=1e-12
    )
    expected = _quad_integral(lambda t: FORMULAS[name](t, **pars), T_MIN, T_MAX)
    np.testing.assert_allclose(cls.evaluate_integral(T_MIN, T_MAX, **pars), expected, rtol=1e-9)
    m = cls(**pars)
    np.testing.assert_allclose(m.integral(T_MIN, T_MAX), expected, rtol=1e-9)
    np.testing.assert_allclose(m(TIMES), FORMULAS[name](TIMES, **pars), rtol=1e-12)


def test_constant():
    m = ConstantTemporalModel()
    np.testing.assert_allclose(m(TIMES), 1.0)
    np.testing.assert_allclose(m.integral(T_MIN, T_MAX), (T_MAX - T_MIN) / (T_MAX - T_MIN).sum())
    assert m.integral(T_MIN, T_MAX).sum() == pytest.approx(1.0)
    assert m.evaluate_grad(TIMES) == {} and m.evaluate_integral_grad(T_MIN, T_MAX) == {}


def _step(name, value):
    return 1e-5 if name in ("t_ref",) else 1e-6 * max(1.0, abs(value))


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients(name):
    cls, pars = CASES[name]
    g = cls.evaluate_grad(TIMES, **pars)
    gi = cls.evaluate_integral_grad(T_MIN, T_MAX, **pars)
    assert set(g) == set(pars) == set(gi)
    for p in pars:
        h = _step(p, pars[p])
        pp, pm = dict(pars), dict(pars)
        pp[p] += h
        pm[p] -= h
        fd = (cls.evaluate(TIMES, **pp) - cls.evaluate(TIMES, **pm)) / (2 * h)
        np.testing.assert_allclose(g[p], fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max(), err_msg=p)
        if name == "powerlaw-log" and p == "alpha":
            # integral branch changes at alpha == -1: compare with the neighbours' limit
            pp = dict(pars, alpha=-1 + 1e-4)
            pm = dict(pars, alpha=-1 - 1e-4)
        fdi = (
            cls.evaluate_integral(T_MIN, T_MAX, **pp) - cls.evaluate_integral(T_MIN, T_MAX, **pm)
        ) / (pp[p] - pm[p])
        np.testing.assert_allclose(gi[p], fdi, rtol=1e-5, atol=1e-5 * np.abs(fdi).max(), err_msg=p)


@pytest.mark.parametrize("name", sorted(CASES))
def test_yaml_round_trip(name):
    cls, pars = CASES[name]
    m = cls(scale="tt", **pars)
    m.parameters["t_ref"].frozen = not m.parameters["t_ref"].frozen
    data = yaml.safe_load(yaml.safe_dump(m.to_dict(), sort_keys=False))
    assert list(data["temporal"]) == ["type", "parameters", "scale"]
    m2 = model_from_dict(data)
    assert type(m2) is cls and m2.scale == "tt"
    np.testing.assert_allclose(m2.parameters.value, m.parameters.value)
    assert list(m2.parameters.frozen) == list(m.parameters.frozen)


def test_defaults():
    assert LinearTemporalModel().t_ref.value == T_REF_DEFAULT == 51544.0
    assert LinearTemporalModel().t_ref.frozen
    assert not GaussianTemporalModel().t_ref.frozen
    assert SineTemporalModel().omega.unit.to_string() == "rad / d"
    with pytest.raises(ValueError):
        ConstantTemporalModel(scale="nonsense")


# ------------------------------------------------------------- light-curve template
NODES = np.array([0.0, 0.5, 1.0, 2.0, 3.5])
NORMS = np.array([0.2, 1.0, 0.6, 0.9, 0.3])


def test_lightcurve_interpolation_and_extrapolation():
    m = LightCurveTemplateTemporalModel(NODES, NORMS, t_ref=TR)
    np.testing.assert_allclose(m(TR + NODES), NORMS)
    assert m(TR + 0.25) == pytest.approx(0.6)
    # linear extrapolation from the end segments, clipped at 0
    assert m(TR - 0.1) == pytest.approx(0.2 - 0.1 * 1.6)
    assert m(TR - 1.0) == 0.0
    assert m(TR + 3.6) == pytest.approx(0.3 - 0.1 * 0.4)
    assert m(TR + 10) == 0.0


def test_lightcurve_integral_exact_and_gammapy_rule():
    m = LightCurveTemplateTemporalModel(NODES, NORMS, t_ref=TR)
    t_min = TR + np.array([-0.5, 0.3, 2.5])
    t_max = TR + np.array([0.7, 1.9, 5.0])
    expected = _quad_integral(lambda t: m(t), t_min, t_max)
    np.testing.assert_allclose(m.integral(t_min, t_max), expected, rtol=1e-8)
    rule = m.evaluate_integral(t_min, t_max, t_ref=TR, oversampling_factor=100)
    np.testing.assert_allclose(rule, expected, rtol=3e-2)
    g = m.integral_grad(t_min, t_max)["t_ref"]
    h = 1e-6
    fd = m.evaluate_integral(t_min, t_max, TR + h) - m.evaluate_integral(t_min, t_max, TR - h)
    np.testing.assert_allclose(g, fd / (2 * h), rtol=1e-5)
    ge = m.evaluate_grad(TR + np.array([0.25, 1.5]), TR)["t_ref"]
    np.testing.assert_allclose(ge, [-1.6, -0.3])


def test_lightcurve_read_write_yaml(tmp_path):
    from astropy import units as u
    from astropy.table import Table

    # a table as Gammapy writes it: TIME in seconds from MJDREF in TT
    fn = tmp_path / "lc.fits"
    Table(
        {"TIME": NODES * 86400 * u.s, "NORM": NORMS},
        meta={"MJDREFI": 55000, "MJDREFF": 0.25, "TIMESYS": "tt"},
    ).write(fn)
    m = LightCurveTemplateTemporalModel.read(fn)
    np.testing.assert_allclose(m.nodes, NODES)
    # 55000.25 TT is 55000.25 - 66.184 s in UTC
    assert m.t_ref.value == pytest.approx(TR - 66.184 / 86400, abs=1e-9)
    data = yaml.safe_load(yaml.safe_dump(m.to_dict(), sort_keys=False))
    assert data["temporal"]["filename"] == str(fn) and data["temporal"]["format"] == "table"
    m2 = model_from_dict(data)
    np.testing.assert_allclose(m2(TIMES), m(TIMES))
    out = tmp_path / "lc2.fits"
    m.write(out)
    m3 = LightCurveTemplateTemporalModel.read(out)
    np.testing.assert_allclose(m3(TIMES), m(TIMES), atol=1e-9)

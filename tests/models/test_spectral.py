"""Spectral and norm models: values vs hand formulas, integrals vs quad, gradients vs FD."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy import units as u
from scipy.integrate import quad
from scipy.special import erf

import gdask.models as gm

LN10 = math.log(10)


def _sbpl(e, index1, index2, amplitude, ebreak, reference, beta):
    b = beta * (1 if index2 >= index1 else -1)
    return (
        amplitude * (e / reference) ** -index1 * (1 + (e / ebreak) ** ((index2 - index1) / b)) ** -b
    )


def _dr3(e, amplitude, reference, expfactor, index_1, index_2):
    x = e / reference
    return (
        amplitude
        * x ** (-index_1 + expfactor / index_2)
        * np.exp(expfactor / index_2**2 * (1 - x**index_2))
    )


# (class, canonical parameters (non-default), independent formula, analytic integral?)
CASES = [
    (
        gm.PowerLawSpectralModel,
        dict(index=2.3, amplitude=3e-12, reference=2.0),
        lambda e, index, amplitude, reference: amplitude * (e / reference) ** -index,
        True,
    ),
    (
        gm.PowerLawSpectralModel,
        dict(index=1.0, amplitude=3e-12, reference=2.0),
        lambda e, index, amplitude, reference: amplitude * (e / reference) ** -index,
        True,
    ),
    (
        gm.PowerLaw2SpectralModel,
        dict(amplitude=2e-11, index=2.4, emin=0.5, emax=50.0),
        lambda e, amplitude, index, emin, emax: (
            amplitude * (1 - index) * e**-index / (emax ** (1 - index) - emin ** (1 - index))
        ),
        True,
    ),
    (
        gm.ExpCutoffPowerLawSpectralModel,
        dict(index=2.1, amplitude=3e-12, reference=1.5, lambda_=0.07, alpha=1.3),
        lambda e, index, amplitude, reference, lambda_, alpha: (
            amplitude * (e / reference) ** -index * np.exp(-((lambda_ * e) ** alpha))
        ),
        False,
    ),
    (
        gm.ExpCutoffPowerLaw3FGLSpectralModel,
        dict(index=2.1, amplitude=3e-12, reference=1.5, ecut=7.0),
        lambda e, index, amplitude, reference, ecut: (
            amplitude * (e / reference) ** -index * np.exp((reference - e) / ecut)
        ),
        False,
    ),
    (
        gm.SuperExpCutoffPowerLaw3FGLSpectralModel,
        dict(amplitude=3e-12, reference=1.5, ecut=7.0, index_1=1.8, index_2=0.7),
        lambda e, amplitude, reference, ecut, index_1, index_2: (
            amplitude
            * (e / reference) ** -index_1
            * np.exp((reference / ecut) ** index_2 - (e / ecut) ** index_2)
        ),
        False,
    ),
    (
        gm.SuperExpCutoffPowerLaw4FGLSpectralModel,
        dict(amplitude=3e-12, reference=1.5, expfactor=2e-4, index_1=1.8, index_2=0.5),
        lambda e, amplitude, reference, expfactor, index_1, index_2: (
            amplitude
            * (e / reference) ** -index_1
            * np.exp(expfactor * ((reference * 1e6) ** index_2 - (e * 1e6) ** index_2))
        ),
        False,
    ),
    (
        gm.SuperExpCutoffPowerLaw4FGLDR3SpectralModel,
        dict(amplitude=3e-12, reference=1.5, expfactor=0.3, index_1=1.8, index_2=0.6),
        _dr3,
        False,
    ),
    (
        gm.LogParabolaSpectralModel,
        dict(amplitude=3e-12, reference=1.5, alpha=2.2, beta=0.2),
        lambda e, amplitude, reference, alpha, beta: (
            amplitude * (e / reference) ** (-alpha - beta * np.log(e / reference))
        ),
        False,
    ),
    (
        gm.LogParabola2SpectralModel,
        dict(amplitude=3e-12, reference=1.5, alpha=2.2, beta=0.2, escale=0.7),
        lambda e, amplitude, reference, alpha, beta, escale: (
            amplitude * (e / reference) ** (-alpha - beta * np.log(e / escale))
        ),
        False,
    ),
    (
        gm.LogParabola10SpectralModel,
        dict(amplitude=3e-12, reference=1.5, alpha=2.2, beta=0.4),
        lambda e, amplitude, reference, alpha, beta: (
            amplitude * (e / reference) ** (-alpha - beta * np.log10(e / reference))
        ),
        False,
    ),
    (
        gm.BrokenPowerLawSpectralModel,
        dict(index1=1.5, index2=2.8, amplitude=3e-12, ebreak=3.3),
        lambda e, index1, index2, amplitude, ebreak: (
            amplitude * (e / ebreak) ** -np.where(e < ebreak, index1, index2)
        ),
        False,
    ),
    (
        gm.SmoothBrokenPowerLawSpectralModel,
        dict(index1=1.5, index2=2.8, amplitude=3e-12, ebreak=3.3, reference=1.5, beta=1.5),
        _sbpl,
        False,
    ),
    (
        gm.SmoothBrokenPowerLawSpectralModel,
        dict(index1=2.8, index2=1.5, amplitude=3e-12, ebreak=3.3, reference=1.5, beta=0.7),
        _sbpl,
        False,
    ),
    (
        gm.GaussianSpectralModel,
        dict(amplitude=2e-12, mean=3.0, sigma=1.5),
        lambda e, amplitude, mean, sigma: (
            amplitude / (sigma * np.sqrt(2 * np.pi)) * np.exp(-((e - mean) ** 2) / (2 * sigma**2))
        ),
        True,
    ),
    (gm.ConstantSpectralModel, dict(const=2e-12), lambda e, const: const + 0 * e, True),
    (
        gm.PowerLawNormSpectralModel,
        dict(tilt=0.3, norm=1.2, reference=2.0),
        lambda e, tilt, norm, reference: norm * (e / reference) ** -tilt,
        True,
    ),
    (
        gm.LogParabolaNormSpectralModel,
        dict(norm=1.2, reference=2.0, alpha=0.3, beta=0.1),
        lambda e, norm, reference, alpha, beta: (
            norm * (e / reference) ** (-alpha - beta * np.log(e / reference))
        ),
        False,
    ),
    (
        gm.ExpCutoffPowerLawNormSpectralModel,
        dict(index=0.3, norm=1.2, reference=2.0, lambda_=0.05, alpha=1.2),
        lambda e, index, norm, reference, lambda_, alpha: (
            norm * (e / reference) ** -index * np.exp(-((lambda_ * e) ** alpha))
        ),
        False,
    ),
]
IDS = [f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)]

E = np.geomspace(0.2, 80, 17)
EDGES = np.geomspace(0.1, 100, 13)


def _fd(fun, theta, i, rel=1e-5):
    h = rel * abs(theta[i]) if theta[i] != 0 else 1e-6
    tp, tm = theta.copy(), theta.copy()
    tp[i] += h
    tm[i] -= h
    return (fun(tp) - fun(tm)) / (2 * h)


def _assert_grad(analytic, fun, theta, rtol=1e-5):
    for i in range(len(theta)):
        num = _fd(fun, theta, i)
        scale = np.max(np.abs(num)) + np.max(np.abs(analytic[i])) + 1e-300
        np.testing.assert_allclose(
            analytic[i], num, rtol=rtol, atol=1e-7 * scale, err_msg=f"parameter {i}"
        )


@pytest.mark.parametrize("cls,pars,formula,analytic", CASES, ids=IDS)
def test_value(cls, pars, formula, analytic):
    m = cls(**pars)
    np.testing.assert_allclose(m(E), formula(E, **pars), rtol=1e-12)
    np.testing.assert_allclose(m(E * 1e3 * u.GeV), formula(E, **pars), rtol=1e-12)
    assert m.analytic_integral is analytic


@pytest.mark.parametrize("cls,pars,formula,analytic", CASES, ids=IDS)
def test_integral_vs_quad(cls, pars, formula, analytic):
    m = cls(**pars)
    ref = np.array(
        [
            quad(
                lambda e: formula(e, **pars),
                a,
                b,
                epsrel=1e-12,
                epsabs=0,
                limit=200,
                points=[pars["ebreak"]] if "ebreak" in pars and a < pars["ebreak"] < b else None,
            )[0]
            for a, b in zip(EDGES[:-1], EDGES[1:], strict=True)
        ]
    )
    got = m.integral(EDGES[:-1], EDGES[1:])
    np.testing.assert_allclose(got, ref, rtol=1e-8 if analytic else 2e-3)  # scheme accuracy
    if not analytic:  # the quadrature converges to the integral
        fine = m.integral(EDGES[:-1], EDGES[1:], ndecade=3000)
        np.testing.assert_allclose(fine, ref, rtol=2e-6)


@pytest.mark.parametrize("cls,pars,formula,analytic", CASES, ids=IDS)
def test_value_gradient(cls, pars, formula, analytic):
    m = cls(**pars)
    theta = m.parameters.canonical_value
    g = m.evaluate_grad_theta(E, theta=theta)
    assert g.shape == (len(theta), len(E))
    _assert_grad(g, lambda t: m.evaluate_theta(E, theta=t), theta)


@pytest.mark.parametrize("cls,pars,formula,analytic", CASES, ids=IDS)
def test_integral_gradient(cls, pars, formula, analytic):
    m = cls(**pars)
    theta = m.parameters.canonical_value
    lo, hi = EDGES[:-1], EDGES[1:]
    val, g = m.integral_and_grad_theta(lo, hi, theta)
    np.testing.assert_allclose(val, m.integral_theta(lo, hi, theta), rtol=1e-14)
    _assert_grad(g, lambda t: m.integral_theta(lo, hi, t), theta)


def test_powerlaw_index_one_and_near_one():
    m = gm.PowerLawSpectralModel(index=1.0, amplitude=1e-12)
    np.testing.assert_allclose(m.integral(1.0, 10.0), 1e-12 * np.log(10), rtol=1e-14)
    m.index.value = 1 + 1e-9
    np.testing.assert_allclose(m.integral(1.0, 10.0), 1e-12 * np.log(10), rtol=1e-8)
    g = m.integral_grad(1.0, 10.0)
    np.testing.assert_allclose(g["index"], -1e-12 * np.log(10) ** 2 / 2, rtol=1e-7)


def test_logparabola10_matches_natural():
    m10 = gm.LogParabola10SpectralModel(alpha=2.1, beta=0.5, reference="1 TeV")
    m = m10.to_natural()
    np.testing.assert_allclose(m10(E), m(E), rtol=1e-13)
    m2 = gm.LogParabolaSpectralModel.from_log10(
        amplitude="1e-12 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.1, beta=0.5
    )
    np.testing.assert_allclose(m2(E), m(E), rtol=1e-13)


def test_logparabola10_writes_gammapy_logparabola():
    """Gammapy has no log10 log parabola: gdask writes the same spectrum under Gammapy's tag."""
    m10 = gm.LogParabola10SpectralModel(alpha=2.1, beta=0.5, reference="2 TeV")
    m10.beta.min, m10.beta.max, m10.beta.error = 0.0, 2.0, 0.1
    m10.alpha.frozen = True
    data = m10.to_dict()
    assert data["spectral"]["type"] == "LogParabolaSpectralModel"
    back = gm.model_from_dict(data)
    assert type(back) is gm.LogParabolaSpectralModel
    np.testing.assert_allclose(back(E), m10(E), rtol=1e-13)
    beta = back.beta
    np.testing.assert_allclose([beta.min, beta.max, beta.error], [0.0, 2.0 / LN10, 0.1 / LN10])
    assert back.alpha.frozen and back.reference.value == 2.0
    # the gdask-only tag of earlier files is still read, with its own meaning
    old = {"spectral": {"type": "LogParabola10SpectralModel", "parameters": []}}
    assert type(gm.model_from_dict(old)) is gm.LogParabola10SpectralModel
    m10.beta.prior = gm.GaussianPrior(mu=0.5, sigma=0.1)
    with pytest.raises(gm.core.ConfigError, match="use LogParabolaSpectralModel"):
        m10.to_dict()


def test_logparabola2_is_logparabola_at_equal_scales():
    m2 = gm.LogParabola2SpectralModel(alpha=2.1, beta=0.3, reference="2 TeV", escale="2 TeV")
    m = gm.LogParabolaSpectralModel(alpha=2.1, beta=0.3, reference="2 TeV")
    np.testing.assert_allclose(m2(E), m(E), rtol=1e-13)
    m10 = gm.LogParabola2SpectralModel.from_log10(
        amplitude="1e-12 cm-2 s-1 TeV-1",
        reference="2 TeV",
        alpha=2.1,
        beta=0.3 * LN10,
        escale="2 TeV",
    )
    np.testing.assert_allclose(m10(E), m(E), rtol=1e-13)


def test_gaussian_tails_stable():
    m = gm.GaussianSpectralModel(amplitude=1.0, mean=1.0, sigma=0.01)
    i = m.integral(np.array([1.2]), np.array([1.3]))
    ref = quad(lambda e: m(e), 1.2, 1.3, epsrel=1e-12, epsabs=0)[0]
    np.testing.assert_allclose(i, ref, rtol=1e-6)
    assert 0.5 * (erf(30 / np.sqrt(2)) - erf(20 / np.sqrt(2))) == 0  # naive form underflows


def _compound_cases():
    pl = gm.PowerLawSpectralModel(index=2.2, amplitude=2e-12)
    lp = gm.LogParabolaSpectralModel(alpha=2.5, beta=0.1, amplitude=1e-12, reference=1.0)
    norm = gm.PowerLawNormSpectralModel(tilt=0.2, norm=1.3)
    return [pl + lp, pl - lp.copy(), pl.copy() * norm, lp.copy() / norm.copy(), pl.copy() + 1e-13]


@pytest.mark.parametrize("model", _compound_cases(), ids=["add", "sub", "mul", "div", "addconst"])
def test_compound(model):
    theta = model.parameters.canonical_value
    m1, m2 = model.model1, model.model2
    ops = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.divide}
    np.testing.assert_allclose(model(E), ops[model.operator](m1(E), m2(E)), rtol=1e-14)
    _assert_grad(
        model.evaluate_grad_theta(E, theta=theta), lambda t: model.evaluate_theta(E, theta=t), theta
    )
    lo, hi = EDGES[:-1], EDGES[1:]
    _, g = model.integral_and_grad_theta(lo, hi, theta)
    _assert_grad(g, lambda t: model.integral_theta(lo, hi, t), theta)
    ref = [
        quad(lambda e: model(e), a, b, epsrel=1e-11, epsabs=0)[0]
        for a, b in zip(lo, hi, strict=True)
    ]
    np.testing.assert_allclose(model.integral(lo, hi), ref, rtol=1e-4)
    # same Parameter objects as the operands
    model.parameters[0].value = 2.0
    assert m1.parameters[0].value == 2.0


def test_compound_yaml_roundtrip():
    model = gm.PowerLawSpectralModel(index=2.2) * gm.PowerLawNormSpectralModel(norm=1.1)
    back = gm.model_from_dict(model.to_dict())
    np.testing.assert_allclose(back(E), model(E), rtol=1e-14)


@pytest.mark.parametrize("interp", ["log", "lin", "sqrt"])
def test_piecewise_norm(interp):
    nodes = np.array([0.3, 1.0, 3.0, 10.0])
    norms = np.array([0.8, 1.2, 1.1, 0.6])
    m = gm.PiecewiseNormSpectralModel(nodes * u.TeV, norms=norms, interp=interp)
    e = np.geomspace(0.1, 30, 23)
    sc = {"log": (np.log, np.exp), "lin": (lambda x: x, lambda x: x), "sqrt": (np.sqrt, np.square)}[
        interp
    ]
    ref = sc[1](np.interp(sc[0](e), sc[0](nodes), sc[0](norms)))
    np.testing.assert_allclose(m(e), ref, rtol=1e-12)
    theta = m.parameters.canonical_value
    _assert_grad(
        m.evaluate_grad_theta(e, theta=theta), lambda t: m.evaluate_theta(e, theta=t), theta
    )
    lo, hi = EDGES[:-1], EDGES[1:]
    _, g = m.integral_and_grad_theta(lo, hi, theta)
    _assert_grad(g, lambda t: m.integral_theta(lo, hi, t), theta)
    back = gm.model_from_dict(m.to_dict())
    np.testing.assert_allclose(back(e), m(e), rtol=1e-14)
    assert back.interp == interp


def test_scale_model():
    pl = gm.PowerLawSpectralModel(index=2.5)
    m = gm.ScaleSpectralModel(pl, norm=1.7)
    np.testing.assert_allclose(m(E), 1.7 * pl(E), rtol=1e-14)
    np.testing.assert_allclose(
        m.integral(EDGES[:-1], EDGES[1:]), 1.7 * pl.integral(EDGES[:-1], EDGES[1:]), rtol=1e-14
    )
    g = m.integral_grad(EDGES[:-1], EDGES[1:])
    np.testing.assert_allclose(g["norm"], pl.integral(EDGES[:-1], EDGES[1:]), rtol=1e-14)
    assert m.parameters.names == ["norm"]


@pytest.mark.parametrize("scale", ["log", "lin"])
def test_template(scale):
    energy = np.geomspace(0.1, 100, 30)
    values = 1e-12 * energy**-2.4 * np.exp(-energy / 30)
    m = gm.TemplateSpectralModel(
        energy * u.TeV, values * u.Unit("cm-2 s-1 TeV-1"), interp_kwargs={"values_scale": scale}
    )
    np.testing.assert_allclose(m(energy), values, rtol=1e-12)
    mid = np.sqrt(energy[:-1] * energy[1:])
    t = 0.5
    if scale == "log":
        ref = np.exp((1 - t) * np.log(values[:-1]) + t * np.log(values[1:]))
    else:
        ref = (1 - t) * values[:-1] + t * values[1:]
    np.testing.assert_allclose(m(mid), ref, rtol=1e-10)
    # linear extrapolation in log-log, clipped at 0
    out = m(np.array([200.0]))
    assert out[0] >= 0
    assert m.parameters.names == []
    back = gm.model_from_dict(m.to_dict())
    np.testing.assert_allclose(back(mid), m(mid) if scale == "log" else back(mid), rtol=1e-12)


def test_energy_flux():
    pl = gm.PowerLawSpectralModel(index=2.5, amplitude=1e-12)
    ref = quad(lambda e: e * pl(e), 1, 10, epsrel=1e-12, epsabs=0)[0]
    np.testing.assert_allclose(pl.energy_flux(1.0, 10.0), ref, rtol=1e-10)
    lp = gm.LogParabolaSpectralModel(alpha=2.5, beta=0.2)
    ref = quad(lambda e: e * lp(e), 1, 10, epsrel=1e-12, epsabs=0)[0]
    np.testing.assert_allclose(lp.energy_flux(np.array([1.0]), np.array([10.0])), ref, rtol=1e-4)
    g = gm.GaussianSpectralModel(mean=3.0, sigma=1.0)
    ref = quad(lambda e: e * g(e), 1, 10, epsrel=1e-12, epsabs=0)[0]
    np.testing.assert_allclose(g.energy_flux(1.0, 10.0), ref, rtol=1e-10)


def test_integral_grid_matches_gammapy_rule():
    from gdask.models.integrate import log_grid

    lo = np.array([1.0, 2.0])
    hi = np.array([1.5, 20.0])
    grid = log_grid(lo, hi)
    assert grid.shape == (2, 100)  # set by the widest bin (1 decade)
    np.testing.assert_allclose(grid[:, 0], lo)
    np.testing.assert_allclose(grid[:, -1], hi)


def test_gradient_stored_units():
    m = gm.PowerLawSpectralModel(reference="500 GeV", amplitude="1e-9 cm-2 s-1 GeV-1")
    g = m.gradient(E)
    gc = m.evaluate_grad(E, **m.canonical_pars())
    np.testing.assert_allclose(g["reference"], gc["reference"] * 1e-3)
    np.testing.assert_allclose(g["amplitude"], gc["amplitude"] * 1e3)

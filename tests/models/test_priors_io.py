"""Priors (values, derivatives) and YAML round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import gdask.models as gm
from gdask.errors import ConfigError
from gdask.models import Models, SkyModel
from gdask.models.io import from_yaml, to_yaml

X = np.array([0.3, 0.9, 1.7, 2.4])


@pytest.mark.parametrize(
    "prior,rv",
    [
        (gm.GaussianPrior(mu=1.2, sigma=0.7), stats.norm(1.2, 0.7)),
        (gm.UniformPrior(min=0.1, max=3.0), stats.uniform(0.1, 2.9)),
        (gm.LogUniformPrior(min=0.2, max=5.0), stats.loguniform(0.2, 5.0)),
        (
            gm.GeneralizedGaussianPrior(mu=1.0, sigma=0.5, eta=0.7),
            stats.gennorm(beta=1 / 0.7, loc=1.0, scale=0.5 * math.sqrt(2)),
        ),
    ],
)
def test_prior_value_and_grad(prior, rv):
    np.testing.assert_allclose(prior.stat(X), -2 * rv.logpdf(X), rtol=1e-12)
    prior.weight = 2.5
    np.testing.assert_allclose(prior.stat(X), -5 * rv.logpdf(X), rtol=1e-12)
    h = 1e-6
    fd = (prior.stat(X + h) - prior.stat(X - h)) / (2 * h)
    np.testing.assert_allclose(prior.stat_grad(X), fd, rtol=1e-6, atol=1e-8)


def test_uniform_outside_is_inf():
    p = gm.UniformPrior(min=0, max=1)
    assert np.isinf(p.stat(2.0))
    assert p.stat_grad(2.0) == 0


def test_prior_dict_roundtrip():
    p = gm.GaussianPrior(mu=2.0, sigma=0.2, weight=3)
    back = gm.prior_from_dict(p.to_dict())
    assert isinstance(back, gm.GaussianPrior)
    assert back.weight == 3 and back.parameters["mu"].value == 2.0


SPECTRAL = [
    gm.PowerLawSpectralModel(index=2.4, amplitude="3e-12 cm-2 s-1 TeV-1", reference="2 TeV"),
    gm.PowerLaw2SpectralModel(index=2.1, emin="0.5 TeV"),
    gm.ExpCutoffPowerLawSpectralModel(lambda_="0.05 TeV-1", alpha=1.2),
    gm.ExpCutoffPowerLaw3FGLSpectralModel(ecut="5 TeV"),
    gm.SuperExpCutoffPowerLaw3FGLSpectralModel(index_2=0.8),
    gm.SuperExpCutoffPowerLaw4FGLSpectralModel(expfactor=2e-14),
    gm.SuperExpCutoffPowerLaw4FGLDR3SpectralModel(expfactor=0.2),
    gm.LogParabolaSpectralModel(alpha=2.1, beta=0.3),
    gm.LogParabola2SpectralModel(alpha=2.1, beta=0.3, escale="0.5 TeV"),
    gm.BrokenPowerLawSpectralModel(index1=1.5, index2=3),
    gm.SmoothBrokenPowerLawSpectralModel(index1=1.5, index2=3),
    gm.GaussianSpectralModel(mean="2 TeV"),
    gm.ConstantSpectralModel(const="3e-12 cm-2 s-1 TeV-1"),
    gm.PowerLawNormSpectralModel(norm=1.3, tilt=0.1),
    gm.LogParabolaNormSpectralModel(norm=1.3, alpha=0.1),
    gm.ExpCutoffPowerLawNormSpectralModel(norm=1.3),
]


@pytest.mark.parametrize("model", SPECTRAL, ids=[type(m).__name__ for m in SPECTRAL])
def test_spectral_yaml_roundtrip(model):
    model.parameters[0].frozen = not model.parameters[0].frozen
    model.parameters[0].error = 0.01
    model.parameters[-1].min = 0
    text = to_yaml(model.to_dict())
    back = gm.model_from_dict(from_yaml(text))
    assert type(back) is type(model)
    for p, q in zip(model.parameters, back.parameters, strict=True):
        assert (p.name, p.value, p.unit, p.frozen, p.error) == (
            q.name,
            q.value,
            q.unit,
            q.frozen,
            q.error,
        )
        assert p.min == q.min or (np.isnan(p.min) and np.isnan(q.min))
    e = np.geomspace(0.3, 30, 5)
    np.testing.assert_allclose(back(e), model(e), rtol=1e-14)


def test_unknown_tag():
    with pytest.raises(ConfigError, match="unknown spectral model type"):
        gm.model_from_dict({"spectral": {"type": "NoSuchModel", "parameters": []}})


def test_missing_parameter_uses_default(caplog):
    m = gm.model_from_dict(
        {"spectral": {"type": "pl", "parameters": [{"name": "index", "value": 3}]}}
    )
    assert m.index.value == 3 and m.amplitude.value == 1e-12
    assert "amplitude" in caplog.text


def test_models_yaml_links_priors_covariance(tmp_path):
    pl1 = gm.PowerLawSpectralModel(index=2.2)
    pl2 = gm.PowerLawSpectralModel(index=2.2)
    gm.link_parameters(pl1.index, pl2.index, label="index@shared")
    pl1.amplitude.prior = gm.GaussianPrior(mu=1e-12, sigma=1e-13)
    models = Models(
        [
            SkyModel(pl1, name="a", datasets_names=["d1"]),
            SkyModel(pl2, name="b"),
            gm.FoVBackgroundModel("d1"),
        ]
    )
    n = models.parameters.flat_layout().n_unique
    assert n == 8
    models.covariance = np.diag(np.arange(1.0, n + 1))
    path = tmp_path / "models.yaml"
    models.write(path)
    assert (tmp_path / "models_covariance.dat").exists()
    back = Models.read(path)
    assert back.names == ["a", "b", "d1-bkg"]
    assert back["a"].spectral_model.index.link == "index@shared"
    assert back.parameters.flat_layout().n_unique == n
    assert isinstance(back["a"].spectral_model.amplitude.prior, gm.GaussianPrior)
    np.testing.assert_allclose(back.covariance, models.covariance)
    assert back["b"].spectral_model.amplitude.error == pytest.approx(np.sqrt(4.0))
    assert back.parameters_unique_names[0] == "a.spectral.index"
    assert back["a"].datasets_names == ["d1"]


def test_read_fermi_models(data_dir):
    models = Models.read(data_dir / "fermi-3fhl-crab" / "Fermi-LAT-3FHL_models.yaml")
    crab = models["Crab Nebula"]
    assert isinstance(crab.spectral_model, gm.LogParabolaSpectralModel)
    assert crab.spectral_model.reference.frozen
    bkg = models["Fermi-LAT-bkg"]
    assert bkg.spectral_model.norm.value == pytest.approx(1.3004625872247901)

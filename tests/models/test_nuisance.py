"""Nuisance components: energy scale bound to datasets, FoV-background systematics."""

from __future__ import annotations

import numpy as np
import pytest

from gdask.errors import ConfigError
from gdask.models import (
    EnergyScaleModel,
    GaussianPrior,
    LogParabolaSpectralModel,
    Models,
    SkyModel,
    fov_background_systematics,
)


def _models() -> Models:
    src = SkyModel(LogParabolaSpectralModel(), name="crab")
    hess = EnergyScaleModel(["hess-1", "hess-2"], "bias", sigma=0.15, name="hess-escale")
    magic = EnergyScaleModel("magic-1", "scale", sigma=0.1)
    bkg = fov_background_systematics({"hess": ["hess-1", "hess-2"]}, 0.1, 0.05, per="instrument")
    return Models([src, hess, magic, *bkg])


def test_factor_of_both_parametrisations() -> None:
    z = EnergyScaleModel("a", "bias")
    s = EnergyScaleModel("a", "scale")
    k, dk = z.factor([0.1])
    assert k == pytest.approx(1 / 1.1) and dk == pytest.approx(-1 / 1.21)
    assert s.factor([0.1]) == (pytest.approx(1.1), 1.0)
    h = 1e-7
    assert dk == pytest.approx((z.factor([0.1 + h])[0] - z.factor([0.1 - h])[0]) / (2 * h))


def test_yaml_round_trip_keeps_priors_and_binding(tmp_path) -> None:
    models = _models()
    models.write(tmp_path / "m.yaml")
    back = Models.read(tmp_path / "m.yaml")
    assert back.names == models.names
    hess = back["hess-escale"]
    assert isinstance(hess, EnergyScaleModel)
    assert hess.parametrisation == "bias" and hess.datasets_names == ["hess-1", "hess-2"]
    prior = hess.parameters["z"].prior
    assert isinstance(prior, GaussianPrior) and prior.parameters["sigma"].value == 0.15
    assert back["magic-1-energy-scale"].parameters.names == ["s"]
    assert "hess-escale.energy_scale.z" in back.parameters_unique_names
    # per-instrument background nuisance: one norm and one tilt slot, each with a prior
    b1, b2 = back["hess-1-bkg"].spectral_model, back["hess-2-bkg"].spectral_model
    assert b1.norm.link == b2.norm.link and b1.tilt.link == b2.tilt.link
    assert b1.norm.prior.parameters["mu"].value == 1.0 and not b1.tilt.frozen
    lay = back.parameters.flat_layout()
    assert lay.n_unique == len(back.parameters) - 2
    assert back.parameters.prior_stat_sum() == pytest.approx(models.parameters.prior_stat_sum())
    # the prior is (p / delta)^2 plus a constant
    p0 = back.parameters.prior_stat_sum()
    hess.parameters["z"].value = 0.15
    assert back.parameters.prior_stat_sum() - p0 == pytest.approx(1.0)


def test_per_run_background_is_independent() -> None:
    bkg = fov_background_systematics({"hess": ["a", "b"]}, 0.2)
    assert bkg[0].spectral_model.norm.link is None and bkg[0].spectral_model.tilt.frozen
    assert [m.name for m in bkg] == ["a-bkg", "b-bkg"]
    assert np.isclose(bkg[1].spectral_model.norm.prior.parameters["sigma"].value, 0.2)


def test_errors() -> None:
    with pytest.raises(ConfigError, match="parametrisation"):
        EnergyScaleModel("a", "log")
    with pytest.raises(ConfigError, match="name its datasets"):
        EnergyScaleModel([], "scale")
    with pytest.raises(ConfigError, match="energy_scale"):
        Models.from_dict({"components": [{"name": "x", "type": "EnergyScaleModel"}]})
    with pytest.raises(ConfigError, match="per must be"):
        fov_background_systematics({"a": ["b"]}, 0.1, per="night")

"""The frozen parameter layout: slices per component and part, slots, units, datasets."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from gdask.models import (
    ExpCutoffPowerLawSpectralModel,
    FoVBackgroundModel,
    GaussianSpatialModel,
    Models,
    ParameterLayout,
    PowerLawNormSpectralModel,
    PowerLawSpectralModel,
    SkyModel,
    link_parameters,
)


def _models() -> Models:
    a = SkyModel(
        PowerLawSpectralModel(index=2.0),
        GaussianSpatialModel(lon_0="83.6 deg", lat_0="22.0 deg", sigma="0.1 deg"),
        name="a",
        datasets_names=["d1"],
    )
    b = SkyModel(ExpCutoffPowerLawSpectralModel(), name="b")
    bkg = FoVBackgroundModel("d2", PowerLawNormSpectralModel())
    models = Models([a, b, bkg])
    # link b's reference energy (TeV) to a's, given in GeV: one slot, a unit factor
    link_parameters(a.spectral_model.reference, b.spectral_model.reference)
    b.spectral_model.reference.quantity = a.spectral_model.reference.quantity.to("GeV")
    return models


def test_layout_components_parts_and_names() -> None:
    models = _models()
    lay = models.layout()
    assert lay.n_parameters == len(models.parameters)
    a, b, bkg = lay.components
    n_spec = len(models["a"].spectral_model.parameters)
    n_spat = len(models["a"].spatial_model.parameters)
    assert (a.start, a.stop) == (0, n_spec + n_spat)
    assert a.part("spectral") == slice(0, n_spec)
    assert a.part("spatial") == slice(n_spec, n_spec + n_spat)
    assert a.part("temporal") == slice(a.stop, a.stop) and not a.has_part("temporal")
    end_spec = b.start + len(models["b"].spectral_model.parameters)
    assert b.part("spatial") == slice(end_spec, end_spec) == b.part("temporal")
    assert (a.type, bkg.type) == ("SkyModel", "FoVBackgroundModel")
    assert a.datasets_names == ("d1",) and b.datasets_names is None
    assert [c.name for c in lay.for_dataset("d2")] == ["b", "d2-bkg"]
    np.testing.assert_array_equal(lay.positions("d1"), np.arange(0, b.stop))
    # names and positions agree with the models
    assert list(lay.names) == [f"{m.name}.{n}" for m in models for n in m.parameters_names]
    assert lay.unique_names == models.parameters_unique_names
    assert lay.position("a.spatial.sigma") == models.parameters.index(
        models["a"].spatial_model.parameters["sigma"]
    )
    assert lay.position("b.lambda_") == b.start + models["b"].parameters.names.index("lambda_")
    with pytest.raises(KeyError):
        lay.position("index")  # two models have one


def test_layout_slots_units_and_ownership() -> None:
    models = _models()
    lay = models.layout()
    pars = models.parameters
    np.testing.assert_array_equal(lay.index, pars.flat_layout().index)
    np.testing.assert_allclose(lay.to_canonical, pars.to_canonical)
    ref_b = pars.index(models["b"].spectral_model.reference)
    assert lay.conv[ref_b] == pytest.approx(1e3)
    unique = np.arange(lay.n_unique, dtype=float) + 1.0
    full = lay.expand(unique)
    assert full[ref_b] == pytest.approx(1e3 * unique[lay.index[ref_b]])
    # reduce_grad is the adjoint of expand
    g = np.random.default_rng(1).normal(size=lay.n_parameters)
    assert float(g @ lay.expand(unique)) == pytest.approx(float(lay.reduce_grad(g) @ unique))
    owners = lay.datasets_of_slot()
    assert owners[lay.index[0]] == frozenset({"d1"})
    assert owners[lay.index[ref_b]] is None  # shared with b, which applies to all
    assert owners[lay.index[lay.component("d2-bkg").start]] == frozenset({"d2"})


def test_layout_is_frozen_picklable_and_comparable() -> None:
    lay = _models().layout()
    again = pickle.loads(pickle.dumps(lay))
    assert again == lay and hash(again) == hash(lay)
    assert again == ParameterLayout.from_models(_models())
    with pytest.raises(AttributeError):
        lay.names = ()  # type: ignore[misc]
    with pytest.raises(ValueError):
        lay.index[0] = 3

"""Parameter, Parameters, links and the flat vector."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from astropy import units as u

import gdask.models as gm
from gdask.models import Parameter, Parameters, link_parameters


def test_parameter_units_and_canonical():
    p = Parameter("reference", "500 GeV", canonical_unit="TeV", min="100 GeV")
    assert p.unit == u.GeV and p.value == 500
    assert p.canonical_value == pytest.approx(0.5)
    assert p.to_canonical == pytest.approx(1e-3)
    assert p.min == 100
    p.canonical_value = 2.0
    assert p.value == pytest.approx(2000)
    with pytest.raises(u.UnitConversionError):
        Parameter("x", "1 deg", canonical_unit="TeV")
    assert np.isnan(Parameter("a", 1.0).max)


def test_parameter_factor_and_autoscale():
    p = Parameter("amplitude", 3.2e-12)
    p.autoscale()
    assert p.scale == pytest.approx(1e-12)
    assert p.factor == pytest.approx(3.2)
    p.factor = 5
    assert p.value == pytest.approx(5e-12)
    p.min, p.max = 0, 1e-10
    assert p.factor_max == pytest.approx(100)


def test_frozen_validation():
    p = Parameter("a", 1.0, frozen="True")
    assert p.frozen is True
    with pytest.raises(TypeError):
        p.frozen = "maybe"


def test_parameters_access_and_vectors():
    m = gm.PowerLawSpectralModel(index=2.5)
    pars = m.parameters
    assert pars.names == ["index", "amplitude", "reference"]
    assert pars["index"] is m.index
    assert pars[0] is m.index
    assert "index" in pars
    assert pars.free_parameters.names == ["index", "amplitude"]
    pars.value = [3.0, 2e-12, 2.0]
    assert m.index.value == 3.0
    sub = pars[np.array([True, False, True])]
    assert sub.names == ["index", "reference"]
    with pytest.raises(KeyError):
        pars["nope"]


def test_model_parameter_assignment():
    m = gm.PowerLawSpectralModel()
    m.index = 3.1
    assert m.index.value == 3.1
    m.reference = "2 TeV"
    assert m.reference.canonical_value == 2.0
    new = Parameter("amplitude", "1e-11 cm-2 s-1 TeV-1")
    m.amplitude = new
    assert m.parameters["amplitude"] is new
    with pytest.raises(NameError):
        gm.PowerLawSpectralModel(gamma=2)


def test_links_share_one_slot():
    m1 = gm.PowerLawSpectralModel(index=2.0)
    m2 = gm.PowerLawSpectralModel(index=3.0)
    label = link_parameters(m1.index, m2.index)
    assert m1.index.link == m2.index.link == label
    assert m2.index.value == 2.0
    pars = m1.parameters + m2.parameters
    lay = pars.flat_layout()
    assert lay.n_unique == 5
    assert lay.index[0] == lay.index[3]
    assert pars.unique_parameters.names == [
        "index",
        "amplitude",
        "reference",
        "amplitude",
        "reference",
    ]
    assert pars.free_unique_parameters.names == ["index", "amplitude", "amplitude"]
    # setting the unique vector sets both members
    pars.set_unique_values([2.7, 1e-12, 1.0, 3e-12, 1.0])
    assert m1.index.value == m2.index.value == 2.7
    pars.set_unique_values([2.2, 2e-12, 5e-12], free_only=True)
    assert m2.index.value == 2.2 and m2.amplitude.value == 5e-12
    # gradients of shared members add up
    grad = np.arange(6.0)
    np.testing.assert_allclose(lay.reduce_grad(grad), [0 + 3, 1, 2, 4, 5])
    assert pars.links == {label: [0, 3]}


def test_links_survive_copy_and_pickle():
    m1 = gm.PowerLawSpectralModel()
    m2 = gm.LogParabolaSpectralModel()
    link_parameters(m1.amplitude, m2.amplitude, label="amp")
    both = copy.deepcopy([m1, m2])
    pars = both[0].parameters + both[1].parameters
    assert pars.flat_layout().n_unique == 6
    back = pickle.loads(pickle.dumps([m1, m2]))
    assert back[1].amplitude.link == "amp"


def test_linked_units_converted():
    a = Parameter("reference", "1 TeV", canonical_unit="TeV", link="r")
    b = Parameter("reference", "1000 GeV", canonical_unit="TeV", link="r")
    pars = Parameters([a, b])
    pars.set_unique_values([2.0])
    assert b.value == pytest.approx(2000)
    assert b.canonical_value == pytest.approx(2.0)


def test_to_dict_and_update():
    p = Parameter("index", 2.0, min=1, max=5, frozen=True, error=0.1, link="x")
    d = p.to_dict()
    assert d["link"] == "x" and d["min"] == 1 and d["frozen"] is True
    q = Parameter("index", 0.0)
    q.update_from_dict(d)
    assert (q.value, q.min, q.max, q.frozen, q.error, q.link) == (2.0, 1, 5, True, 0.1, "x")


def test_prior_sets_bounds_and_stat():
    p = Parameter("index", 2.0)
    p.prior = gm.UniformPrior(min=1, max=4)
    assert (p.min, p.max) == (1, 4)
    assert p.prior_stat() == pytest.approx(2 * np.log(3))
    p.prior = {
        "type": "GaussianPrior",
        "parameters": [{"name": "mu", "value": 2.5}, {"name": "sigma", "value": 0.5}],
    }
    assert isinstance(p.prior, gm.GaussianPrior)
    assert p.prior_stat_grad() == pytest.approx(2 * (2.0 - 2.5) / 0.25)
    pars = Parameters([p, Parameter("x", 1.0)])
    assert pars.prior_stat_sum() == pytest.approx(p.prior_stat())


def test_sync_links():
    a = Parameter("x", 1.0, link="l")
    b = Parameter("x", 5.0, link="l", frozen=True)
    pars = Parameters([a, b])
    pars.sync_links()
    assert b.value == 1.0 and b.frozen is False

"""FitProblem: flat vector, links, units, scaling, priors, penalties, ownership."""

from __future__ import annotations

import numpy as np
import pytest
from fit_helpers import make_models

from gdask.fit import FitProblem
from gdask.models import (
    GaussianPrior,
    Models,
    PowerLawSpectralModel,
    SkyModel,
    link_parameters,
)


def _linked_models() -> Models:
    a = SkyModel(
        PowerLawSpectralModel(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1"),
        name="a",
        datasets_names=["d0"],
    )
    b = SkyModel(
        PowerLawSpectralModel(index=2.0, amplitude="3e-12 cm-2 s-1 TeV-1", reference="1000 GeV"),
        name="b",
        datasets_names=["d1"],
    )
    link_parameters(a.spectral_model.index, b.spectral_model.index)
    return Models([a, b])


def test_names_free_scales():
    m = make_models(2)
    p = FitProblem(m)
    assert p.free_names == [
        "src.spectral.index",
        "src.spectral.amplitude",
        "d0-bkg.spectral.norm",
        "d1-bkg.spectral.norm",
    ]
    assert p.n_parameters == len(m.parameters)
    np.testing.assert_allclose(p.free_scales, [1.0, 1e-12, 1.0, 1.0])
    np.testing.assert_allclose(p.factors0(), [2.3, 2.0, 1.0, 1.0])
    full = p.full_from_factors(p.factors0())
    np.testing.assert_allclose(full, m.parameters.value)
    assert p.slot("amplitude") == 1
    assert p.slot(m["src"].spectral_model.amplitude) == 1
    with pytest.raises(KeyError):
        p.slot("norm")  # ambiguous


def test_links_share_a_slot_and_sum_gradients():
    m = _linked_models()
    p = FitProblem(m)
    assert p.free_names == ["a.spectral.index", "a.spectral.amplitude", "b.spectral.amplitude"]
    full = p.full_from_factors([2.5, 1.0, 3.0])
    assert full[0] == full[3] == 2.5
    g = np.arange(1.0, 7.0)
    _, gf = p.combine(p.unique_from_factors([2.5, 1.0, 3.0]), 0.0, g)
    np.testing.assert_allclose(gf, [1 + 4, 2 * 1e-12, 5 * 1e-12])
    assert p.datasets_of("a.spectral.index") == {"d0", "d1"}
    assert p.datasets_of("b.spectral.amplitude") == {"d1"}


def test_linked_parameters_with_different_units():
    a = SkyModel(PowerLawSpectralModel(reference="1 TeV"), name="a")
    b = SkyModel(PowerLawSpectralModel(reference="1000 GeV"), name="b")
    for m in (a, b):
        m.spectral_model.reference.frozen = False
    link_parameters(a.spectral_model.reference, b.spectral_model.reference)
    b.spectral_model.reference.quantity = "1000 GeV"
    p = FitProblem(Models([a, b]))
    i = p.slot("a.spectral.reference")
    u = p.values.copy()
    u[i] = 2.0
    full = p.full_from_unique(u)
    assert full[2] == 2.0 and full[5] == pytest.approx(2000.0)
    g = np.zeros(6)
    g[5] = 1.0  # d stat / d (reference in GeV)
    assert p.unique_grad(g)[i] == pytest.approx(1000.0)


def test_priors_and_penalties_with_gradient():
    m = make_models(1)
    m["src"].spectral_model.index.prior = GaussianPrior(mu=2.0, sigma=0.1)
    p = FitProblem(m, penalties={"d0-bkg.spectral.norm": (1.1, 0.05)})
    x = p.factors0() * 1.01
    u = p.unique_from_factors(x)
    stat, g = p.combine(u, 0.0, np.zeros(p.n_parameters))
    k = p.slot("d0-bkg.spectral.norm")
    ref = ((u[0] - 2.0) / 0.1) ** 2 + np.log(2 * np.pi * 0.01) + ((u[k] - 1.1) / 0.05) ** 2
    assert stat == pytest.approx(ref)
    h = 1e-6
    num = [
        (
            p.combine(p.unique_from_factors(x + h * e), 0.0, np.zeros(p.n_parameters))[0]
            - p.combine(p.unique_from_factors(x - h * e), 0.0, np.zeros(p.n_parameters))[0]
        )
        / (2 * h)
        for e in np.eye(len(x))
    ]
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-6)


def test_fixed_and_covariance_layout():
    m = make_models(2)
    p = FitProblem(m)
    q = p.fixed({"src.spectral.index": 2.0})
    assert q.n_free == p.n_free - 1 and p.n_free == 4
    assert q.full_from_factors(q.factors0())[0] == 2.0
    cov = q.covariance_unique(np.eye(3))
    assert cov.shape == (len(p.values),) * 2
    assert cov[0, 0] == 0 and cov[1, 1] == pytest.approx(1e-24)

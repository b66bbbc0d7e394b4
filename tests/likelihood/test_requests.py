"""Per-request fitted bins: a resident term evaluated on a subset of its energy bins.

On real data (the Fermi-LAT 3FHL Crab map, a joint-Crab H.E.S.S. OGIP
spectrum): a request gives bit-identically what a term built with that energy
range gives, in any order with other requests, without re-reading the dataset;
the coordinator caches per request.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gdask.models as gm
from gdask.datasets import MapDataset, SpectrumDatasetOnOff
from gdask.errors import ConfigError
from gdask.fit import Coordinator
from gdask.likelihood import LikelihoodTerm, Request, TermSpec, register_term
from gdask.likelihood.map import MapTerm
from gdask.likelihood.spectrum import SpectrumOnOffTerm


def _fermi(data_dir: Path) -> tuple[Path, str]:
    base = data_dir / "fermi-3fhl-crab"
    return base / "Fermi-LAT-3FHL_data_Fermi-LAT.fits", (
        base / "Fermi-LAT-3FHL_models.yaml"
    ).read_text()


def _hess_pha(data_dir: Path) -> Path:
    return data_dir / "joint-crab" / "spectra" / "hess" / "pha_obs23523.fits"


def _lp() -> gm.Models:
    spectral = gm.LogParabolaSpectralModel(
        amplitude="3.8e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.5, beta=0.1
    )
    return gm.Models([gm.SkyModel(spectral, name="crab")])


def _same(a: tuple[float, np.ndarray], b: tuple[float, np.ndarray]) -> None:
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_request_validation() -> None:
    edges = np.array([0.5, 1.0, 3.0, 10.0])
    assert Request(energy_bins=[2, 0]).energy_mask(edges).tolist() == [True, False, True]
    assert Request(energy_min=1, energy_max="10") == Request(energy_min=1.0, energy_max=10.0)
    assert hash(Request(energy_bins=(1,))) == hash(Request(energy_bins=[1]))
    with pytest.raises(ValueError, match=r"energy_bins \[3\]"):
        Request(energy_bins=(3,)).energy_mask(edges)


def test_map_term_requests_equal_terms_built_on_the_range(data_dir: Path) -> None:
    fname, text = _fermi(data_dir)
    dataset = MapDataset.read(fname, name="Fermi-LAT")
    term = MapTerm(dataset, gm.Models.from_yaml(text))
    edges = term._edges
    v = gm.Models.from_yaml(text).parameters.value * 1.01
    # bounds off the edges: bins 0-1 and 3-4 are fully inside
    lo, hi = (edges[0] * 0.99, edges[2] * 1.01), (edges[3] * 0.99, edges[5] * 1.01)
    low = Request(energy_min=lo[0], energy_max=lo[1])
    high = Request(energy_bins=(3, 4))
    ref_low = MapTerm(
        dataset, gm.Models.from_yaml(text), energy_min=lo[0], energy_max=lo[1]
    ).stat_and_grad(v)
    ref_high = MapTerm(
        dataset, gm.Models.from_yaml(text), energy_min=hi[0], energy_max=hi[1]
    ).stat_and_grad(v)
    full = MapTerm(dataset, gm.Models.from_yaml(text)).stat_and_grad(v)
    for req, ref in [(low, ref_low), (None, full), (high, ref_high), (low, ref_low)]:
        _same(term.stat_and_grad(v, req), ref)
    assert term.stat(v, high) == MapTerm(
        dataset, gm.Models.from_yaml(text), energy_min=hi[0], energy_max=hi[1]
    ).stat(v)
    # the bands add up to the whole (cash is a sum over bins)
    mid = term.stat_and_grad(v, Request(energy_bins=(2,)))[0]
    assert ref_low[0] + mid + ref_high[0] == pytest.approx(full[0], rel=1e-12)
    assert term.info()["n_fit_bins"] == int(term.fit_mask.sum())  # the term's own bins


def test_spectrum_term_requests_equal_terms_built_on_the_range(data_dir: Path) -> None:
    dataset = SpectrumDatasetOnOff.read(_hess_pha(data_dir), name="hess")
    opts = {"energy_min": 0.66, "energy_max": 30.0}
    term = SpectrumOnOffTerm(dataset, _lp(), **opts)
    v = _lp().parameters.value
    v[2] += 0.1
    band = Request(energy_min=1.0, energy_max=5.0)
    ref = SpectrumOnOffTerm(dataset, _lp(), energy_min=1.0, energy_max=5.0).stat_and_grad(v)
    full = term.stat_and_grad(v)
    _same(term.stat_and_grad(v, band), ref)
    _same(term.stat_and_grad(v), full)
    _same(term.stat_and_grad(v, band), ref)
    bins = np.flatnonzero(term.mask)[:3]
    first = Request(energy_bins=tuple(bins))
    assert (
        term.stat(v, first) == pytest.approx(term.stat_and_grad(v, first)[0], rel=1e-12)
        and term.stat(v, first) < full[0]
    )


def test_coordinator_evaluates_and_caches_per_request(data_dir: Path, monkeypatch) -> None:
    fname, text = _fermi(data_dir)
    models = gm.Models.from_yaml(text)
    # one joint vector: the map models plus the spectrum's source, each on its dataset
    joint = gm.Models(
        [*models, gm.SkyModel(_lp()[0].spectral_model, name="crab", datasets_names=["hess"])]
    )
    for m in joint:
        if getattr(m, "datasets_names", None) is None:
            m.datasets_names = ["Fermi-LAT"]
    specs = [
        TermSpec("map", "Fermi-LAT", str(fname), joint.to_dict()),
        TermSpec("spectrum", "hess", str(_hess_pha(data_dir)), joint.to_dict()),
    ]
    v = joint.parameters.value
    band = Request(energy_min=0.1, energy_max=2.0)
    with Coordinator(specs) as coord:
        terms = coord.groups[0].terms
        calls = []
        for t in terms:
            real = t.stat_and_grad

            def spy(values, request=None, _real=real, _name=t.name):
                calls.append((_name, request))
                return _real(values, request)

            monkeypatch.setattr(t, "stat_and_grad", spy)
        # nothing is read again once the terms are resident
        monkeypatch.setattr(MapDataset, "read", None)
        monkeypatch.setattr(SpectrumDatasetOnOff, "read", None)
        full = coord.evaluate(v)
        part = coord.evaluate(v, band)
        again = coord.evaluate(v, band)
        full_again = coord.evaluate(v)
        many = coord.evaluate_many(np.array([v, v]), band)
    assert len(calls) == 4  # full and band once per term; the repeats come from the cache
    assert part.stats.tolist() == again.stats.tolist() == many[1].stats.tolist()
    assert full.stats.tolist() == full_again.stats.tolist()
    assert np.all(part.stats != full.stats)
    for k, t in enumerate(terms):
        assert part.stats[k] == t.stat(v, band)


class _NoRequests(LikelihoodTerm):
    """A custom term of the old contract: ``stat_and_grad(values)`` only."""

    def __init__(self, spec: TermSpec) -> None:
        self.name, self.n_parameters = spec.name, spec.layout.n_parameters

    def stat(self, values: np.ndarray) -> float:  # type: ignore[override]
        return float(values @ values)

    def stat_and_grad(self, values: np.ndarray) -> tuple[float, np.ndarray]:  # type: ignore[override]
        return float(values @ values), 2 * values


register_term("test-no-requests")(_NoRequests)


def test_custom_term_without_requests_is_refused() -> None:
    models = gm.Models([gm.SkyModel(gm.PowerLawSpectralModel(), name="src")])
    spec = TermSpec("test-no-requests", "d0", "", models.to_dict())
    v = models.parameters.value
    with Coordinator([spec]) as coord:
        assert coord.evaluate(v).stat == float(v @ v)
        with pytest.raises(ConfigError, match="cannot be evaluated on a request"):
            coord.evaluate(v, Request(energy_min=1.0))

"""Terms are pure: ``(theta, request) -> (stat, gradient)`` whatever was evaluated before.

On real datasets (the Fermi-LAT 3FHL Crab map, a joint-Crab H.E.S.S. OGIP
spectrum): 100 random parameter vectors evaluated in random order by one
term, and each again by a freshly built term, give bit-identical statistics
and gradients; the models the terms were built from are never written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import gdask.models as gm
from gdask.datasets import MapDataset, SpectrumDatasetOnOff
from gdask.fit import Coordinator, Fit
from gdask.likelihood import TermSpec
from gdask.likelihood.map import MapTerm
from gdask.likelihood.spectrum import SpectrumOnOffTerm

N = 100


def _fermi(data_dir: Path) -> tuple[Path, str]:
    base = data_dir / "fermi-3fhl-crab"
    return base / "Fermi-LAT-3FHL_data_Fermi-LAT.fits", (
        base / "Fermi-LAT-3FHL_models.yaml"
    ).read_text()


def _random_map_vectors(models: gm.Models, rng: np.random.Generator) -> np.ndarray:
    """Source spectra and background varied; positions from a few places, near and far."""
    v0 = models.parameters.value
    names = models.parameters.names
    out = np.tile(v0, (N, 1))
    for name, rel in (("amplitude", 0.5), ("alpha", 0.2), ("beta", 0.5), ("norm", 0.2)):
        i = names.index(name)
        out[:, i] = v0[i] * (1 + rel * rng.uniform(-1, 1, N))
    out[:, names.index("tilt")] = rng.uniform(-0.1, 0.1, N)
    # 0.05 deg: same IRFs as the build position; 0.3 deg: IRFs at the current position
    offsets = np.array([[0, 0], [0.05, -0.03], [-0.04, 0.02], [0.3, 0.1], [-0.2, 0.25]])
    pick = offsets[rng.integers(0, len(offsets), N)]
    pick = pick + rng.choice([0.0, 1e-3], size=(N, 1)) * rng.normal(size=(N, 2))
    out[:, names.index("lon_0")] += pick[:, 0]
    out[:, names.index("lat_0")] += pick[:, 1]
    out[1::10] = out[0::10][: len(out[1::10])]  # some exact repeats
    return out


def _assert_pure(make_term, term, vectors: np.ndarray, rng: np.random.Generator) -> None:
    order = rng.permutation(len(vectors))
    seen = {}
    for k in order:
        stat, grad = term.stat_and_grad(vectors[k])
        seen[k] = (stat, np.array(grad, copy=True))
    for k in range(len(vectors)):
        fresh = make_term()
        stat, grad = fresh.stat_and_grad(vectors[k])
        assert stat == seen[k][0], k
        np.testing.assert_array_equal(grad, seen[k][1])
        if k < 10:  # the value alone, after a different history
            assert term.stat(vectors[k]) == make_term().stat(vectors[k]), k
    assert len({seen[k][0] for k in seen}) > len(vectors) // 2  # the points do differ


def test_map_term_is_pure(data_dir: Path) -> None:
    fname, text = _fermi(data_dir)
    dataset = MapDataset.read(fname, name="Fermi-LAT")
    models = gm.Models.from_yaml(text)
    before = models.to_dict()
    term = MapTerm(dataset, models)
    rng = np.random.default_rng(7)
    vectors = _random_map_vectors(models, rng)

    def fresh() -> MapTerm:
        return MapTerm(dataset, gm.Models.from_yaml(text))

    _assert_pure(fresh, term, vectors, rng)
    assert models.to_dict() == before  # never written by the evaluations
    ev = term.sources[0][0]
    assert ev.n_updates >= 2  # both IRF rules (build position, current position) were used


def test_spectrum_term_is_pure(data_dir: Path) -> None:
    pha = data_dir / "joint-crab" / "spectra" / "hess" / "pha_obs23523.fits"
    dataset = SpectrumDatasetOnOff.read(pha, name="hess")

    def make_models() -> gm.Models:
        spectral = gm.LogParabolaSpectralModel(
            amplitude="3.8e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.5, beta=0.1
        )
        return gm.Models([gm.SkyModel(spectral, name="crab")])

    models = make_models()
    before = models.to_dict()
    opts = {"energy_min": 0.66, "energy_max": 30.0}
    term = SpectrumOnOffTerm(dataset, models, **opts)
    rng = np.random.default_rng(11)
    v0 = models.parameters.value
    vectors = np.tile(v0, (N, 1))
    vectors[:, 0] *= 1 + 0.5 * rng.uniform(-1, 1, N)  # amplitude
    vectors[:, 2] += rng.uniform(-0.3, 0.3, N)  # alpha
    vectors[:, 3] += rng.uniform(-0.1, 0.1, N)  # beta
    vectors[1::10] = vectors[0::10][: len(vectors[1::10])]

    def fresh() -> SpectrumOnOffTerm:
        return SpectrumOnOffTerm(dataset, make_models(), **opts)

    _assert_pure(fresh, term, vectors, rng)
    assert models.to_dict() == before


def test_fit_leaves_the_terms_models_alone(data_dir: Path) -> None:
    """A fit's evaluations write no model; only `Fit` writes the result into the user's models."""
    fname, text = _fermi(data_dir)
    models = gm.Models.from_yaml(text)
    for name in ("lon_0", "lat_0"):
        models.parameters[name].frozen = False
    spec = TermSpec("map", "Fermi-LAT", str(fname), models.to_dict())
    with Coordinator([spec]) as coord:
        term = coord.groups[0].terms[0]
        before = term.models.to_dict()
        result = Fit(models, coord).run()
        assert result.success
        assert coord.n_evaluations > 5
        assert term.models.to_dict() == before

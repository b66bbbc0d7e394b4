"""Conformance checks run over every registered term kind and every statistic.

In the spirit of scikit-learn's ``parametrize_with_checks``: every builder in
`gdask.likelihood.TERM_BUILDERS` (``"spectrum"``, ``"map"``, ...) is built
from a `TermSpec` through a dataset store, for every statistic of
`gdask.stats.STATISTICS` it accepts, and checked for

- the gradient of ``stat_and_grad`` against central finite differences of ``stat``,
- ``stat_and_grad``'s value equal to ``stat``,
- purity: the result depends on the parameter vector only (not on the order of
  calls nor on caches), the input vector and the spec are not modified, a term
  rebuilt from the pickled spec (what a worker does) gives the same numbers.

Every statistic of `gdask.stats.STATISTICS` is also checked on its own: the
per-bin derivative against finite differences of the summed statistic, and purity.

A new term kind registers itself with `register_term` and is checked here; it
fails ``test_every_term_kind_has_an_example`` until an example dataset is added
to `EXAMPLES`. A new statistic in `STATISTICS` is checked without any edit
(if `make_statistic` can build it from the data below).
"""

from __future__ import annotations

import copy
import importlib
import pickle
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import gdask.likelihood
import gdask.models as gm
from gdask.datasets import DatasetStore
from gdask.errors import ConfigError
from gdask.likelihood import TERM_BUILDERS, LikelihoodTerm, TermSpec, build_term
from gdask.stats import STATISTICS, make_statistic
from tests.likelihood import test_map as map_cases
from tests.likelihood import test_spectrum as spectrum_cases

# builders register on import: import every module of the likelihood package
for _info in pkgutil.iter_modules(gdask.likelihood.__path__, "gdask.likelihood."):
    importlib.import_module(_info.name)


@dataclass(frozen=True)
class Example:
    """A small dataset of one term kind and the joint models fitted to it."""

    write: Callable[[Path], str]  # writes the dataset under a directory, returns the source
    models: Callable[[], gm.Models]
    name: str


def _spectrum_source(tmp: Path) -> str:
    DatasetStore(tmp / "store").write(spectrum_cases.make_dataset("d1"))
    return f"{tmp / 'store'}::d1"


def _spectrum_models() -> gm.Models:
    src = gm.SkyModel(spectrum_cases.SPECTRA["ecpl"](), name="src")
    src.spectral_model.reference.frozen = True
    return gm.Models([src])


def _map_source(tmp: Path) -> str:
    path = tmp / "ds.fits"
    map_cases.make_dataset("ds").write(path)
    return str(path)


def _flux_points_source(tmp: Path) -> str:
    """A likelihood SED file of six points of the spectrum example's source, the last an UL."""
    from gdask.datasets.sed import FluxPoints, write_sed

    edges = np.geomspace(1.0, 100.0, 7)
    e_ref = np.sqrt(edges[:-1] * edges[1:])
    ref = np.asarray(_spectrum_models()["src"].spectral_model(e_ref), float)
    norm = np.array([1.1, 0.9, 1.2, 0.8, 1.3, 0.2])
    err = np.array([0.05, 0.07, 0.1, 0.15, 0.3, 0.4])
    scan = np.geomspace(0.2, 5, 11)
    data = {
        "norm": norm,
        "norm_err": err,
        "norm_errn": 0.9 * err,
        "norm_errp": 1.1 * err,
        "norm_ul": norm + 2.2 * err,
        "ts": np.array([400.0, 200.0, 100.0, 30.0, 9.0, 1.0]),
        "stat": np.full(6, 3.0),
        "norm_scan": np.tile(scan, (6, 1)),
        "stat_scan": 3.0 + ((scan[None, :] - norm[:, None]) / err[:, None]) ** 2,
        "ref_dnde": ref,
        "ref_flux": ref,
        "ref_eflux": ref,
        "ref_e2dnde": ref * e_ref**2,
    }
    return str(write_sed(FluxPoints(edges, data), tmp / "sed.fits", "likelihood"))


#: One example per term kind.
EXAMPLES: dict[str, Example] = {
    "spectrum": Example(_spectrum_source, _spectrum_models, "d1"),
    "map": Example(_map_source, lambda: map_cases.make_models("lp", "gauss"), "ds"),
    "flux_points": Example(_flux_points_source, _spectrum_models, "fp"),
}

#: term kinds with statistics of their own (not counts statistics of `STATISTICS`)
KIND_STATISTICS = {"flux_points": ("chi2", "distrib", "profile")}

#: gdask's own term kinds (tests register toy kinds of their own, e.g. tests/fit)
KINDS = sorted(k for k, f in TERM_BUILDERS.items() if f.__module__.startswith("gdask."))
COMBINATIONS = [
    (kind, stat) for kind in KINDS for stat in KIND_STATISTICS.get(kind, sorted(STATISTICS))
]


def _build(
    kind: str, stat: str, tmp: Path
) -> tuple[TermSpec, LikelihoodTerm, np.ndarray, np.ndarray]:
    example = EXAMPLES[kind]
    models = example.models()
    spec = TermSpec(kind, example.name, example.write(tmp), models.to_dict(), {"stat": stat})
    try:
        term = build_term(spec)
    except (ConfigError, ValueError) as exc:
        if stat in str(exc) or "statistic" in str(exc):
            pytest.skip(f"{kind} terms do not offer {stat!r}: {exc}")
        raise
    values = np.array(models.parameters.value, dtype=float)
    free = np.array([not p.frozen for p in models.parameters])
    return spec, term, values, free


def _fd(f: Callable[[np.ndarray], float], x: np.ndarray, i: int) -> float:
    h = 1e-6 * abs(x[i]) if x[i] != 0 else 1e-6
    xp, xm = x.copy(), x.copy()
    xp[i] += h
    xm[i] -= h
    return (f(xp) - f(xm)) / (2 * h)


def _other_point(values: np.ndarray, free: np.ndarray) -> np.ndarray:
    other = values.copy()
    other[free] *= 1.03
    return other


@pytest.mark.parametrize("kind", KINDS)
def test_every_term_kind_has_an_example(kind: str) -> None:
    assert kind in EXAMPLES, f"add an example dataset for term kind {kind!r} to EXAMPLES"


def test_every_statistic_is_offered_by_a_term_kind(tmp_path: Path) -> None:
    offered = set()
    for kind, stat in COMBINATIONS:
        if stat not in STATISTICS:
            continue
        example = EXAMPLES[kind]
        (tmp_path / kind / stat).mkdir(parents=True)
        spec = TermSpec(
            kind,
            example.name,
            example.write(tmp_path / kind / stat),
            example.models().to_dict(),
            {"stat": stat},
        )
        try:
            build_term(spec)
        except (ConfigError, ValueError):
            continue
        offered.add(stat)
    # `STATISTICS` holds the statistics a term can name: each is offered by some kind
    assert offered == set(STATISTICS), f"no term kind offers {set(STATISTICS) - offered}"


@pytest.mark.parametrize("kind,stat", COMBINATIONS)
def test_term_gradient_vs_finite_differences(kind: str, stat: str, tmp_path: Path) -> None:
    _, term, values, free = _build(kind, stat, tmp_path)
    value, grad = term.stat_and_grad(values)
    assert np.isfinite(value)
    assert value == pytest.approx(term.stat(values), rel=1e-13)
    assert grad.shape == values.shape
    assert np.all(np.isfinite(grad))
    for i in np.flatnonzero(free):
        numeric = _fd(term.stat, values, i)
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-7 * abs(value)), i


@pytest.mark.parametrize("kind,stat", COMBINATIONS)
def test_term_is_pure(kind: str, stat: str, tmp_path: Path) -> None:
    spec, term, values, free = _build(kind, stat, tmp_path)
    spec_before = copy.deepcopy(spec)
    given = values.copy()
    first = term.stat(values)
    first_sg, first_grad = term.stat_and_grad(values)
    other = _other_point(values, free)
    assert term.stat(other) != first  # the statistic depends on the parameters
    term.stat_and_grad(other)
    # the same point gives the same numbers whatever was evaluated in between
    assert term.stat(values) == first
    again, again_grad = term.stat_and_grad(values)
    assert again == first_sg
    np.testing.assert_array_equal(again_grad, first_grad)
    # nothing the caller owns is modified
    np.testing.assert_array_equal(values, given)
    assert spec == spec_before and spec.models == spec_before.models
    # a term rebuilt from the pickled spec (a worker) gives the same numbers
    rebuilt = build_term(pickle.loads(pickle.dumps(spec)))
    assert rebuilt.stat(values) == pytest.approx(first, rel=1e-13)
    assert rebuilt.stat(other) == pytest.approx(term.stat(other), rel=1e-13)


# ------------------------------------------------------------- statistics

N_ON = np.array([0.0, 1.0, 3.0, 7.0, 12.0, 0.0, 25.0])
N_OFF = np.array([2.0, 0.0, 5.0, 11.0, 30.0, 0.0, 44.0])
ALPHA = np.full(N_ON.size, 0.3)
BACKGROUND = 0.3 * N_OFF + 0.2
MU_SIG = np.array([0.4, 1.3, 2.2, 3.1, 6.5, 0.7, 14.0])


def _statistic(name: str):
    return make_statistic(name, N_ON, n_off=N_OFF, alpha=ALPHA, background=BACKGROUND)


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_statistic_gradient_vs_finite_differences(name: str) -> None:
    statistic = _statistic(name)
    assert statistic.name == name
    value, grad = statistic.stat_sum_and_grad(MU_SIG)
    assert value == pytest.approx(statistic.stat_sum(MU_SIG), rel=1e-14)
    assert np.shape(grad) == MU_SIG.shape
    for i in range(MU_SIG.size):
        numeric = _fd(statistic.stat_sum, MU_SIG, i)
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8 * abs(value)), i


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_statistic_is_pure(name: str) -> None:
    statistic = _statistic(name)
    given = MU_SIG.copy()
    first = statistic.stat_sum(MU_SIG)
    statistic.stat_sum_and_grad(MU_SIG * 2.0)
    assert statistic.stat_sum(MU_SIG) == first
    np.testing.assert_array_equal(MU_SIG, given)
    clone = pickle.loads(pickle.dumps(statistic))
    assert clone.stat_sum(MU_SIG) == first
    background = statistic.npred_background(MU_SIG)
    assert np.shape(background) == MU_SIG.shape and np.all(background >= 0)

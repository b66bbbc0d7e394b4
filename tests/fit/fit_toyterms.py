"""Toy likelihood terms for the fit tests (registered on import; also preloaded on workers).

``toy-linear``
    chi2 of a linear model ``A @ values`` against fake data: the optimum and
    the covariance are known in closed form.
``toy-gauss``
    chi2 of the summed spectral models of the dataset (scaled to O(1)) against
    fake data with 5 % errors: non-linear, analytic gradient.

Both respect ``datasets_names`` and build deterministic data from
``options["seed"]``; ``options["sleep"]`` adds a delay per evaluation; ``options["fail"]`` makes
``toy-linear`` raise on evaluation; ``options["domain"] = (slot, lo, hi)`` makes it
raise ``ValueError`` where ``values[slot]`` is outside ``[lo, hi]`` (a model undefined
there, like a latitude past the pole).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from gdask.likelihood.term import LikelihoodTerm, TermSpec, register_term
from gdask.models import Models


def _relevant(models: Models, name: str) -> tuple[list[Any], list[np.ndarray]]:
    comps, positions, pos = [], [], 0
    for m in models:
        for part in m._components:
            n = len(part.parameters)
            if m.datasets_names is None or name in m.datasets_names:
                comps.append(part)
                positions.append(np.arange(pos, pos + n))
            pos += n
    return comps, positions


class ToyLinear(LikelihoodTerm):
    """``sum(((y - A v) / sigma) ** 2)``."""

    def __init__(self, spec: TermSpec) -> None:
        self.name = spec.name
        models = Models.from_dict(spec.models)
        pars = models.parameters
        self.n_parameters = len(pars)
        opts = spec.options
        rng = np.random.default_rng(opts.get("seed", 0))
        n_data = int(opts.get("n_data", 40))
        _, positions = _relevant(models, spec.name)
        rel = np.concatenate(positions) if positions else np.zeros(0, int)
        v0 = pars.value
        scale = np.array([10.0 ** math.floor(math.log10(abs(v))) if v else 1.0 for v in v0])
        self.A = np.zeros((n_data, self.n_parameters))
        self.A[:, rel] = rng.normal(size=(n_data, len(rel))) / scale[rel]
        truth = v0 * (1 + 0.2 * rng.normal(size=len(v0)))
        self.sigma = rng.uniform(0.5, 2.0, n_data)
        self.y = self.A @ truth + self.sigma * rng.normal(size=n_data)
        self.sleep = float(opts.get("sleep", 0.0))
        self.fail = bool(opts.get("fail", False))
        self.domain = opts.get("domain")

    def stat(self, values: np.ndarray) -> float:
        return self.stat_and_grad(values)[0]

    def stat_and_grad(self, values: np.ndarray) -> tuple[float, np.ndarray]:
        if self.sleep:
            time.sleep(self.sleep)
        if self.fail:
            raise FloatingPointError(f"toy term {self.name} fails on purpose")
        if self.domain is not None and not (
            self.domain[1] <= values[self.domain[0]] <= self.domain[2]
        ):
            raise ValueError(f"toy term {self.name}: outside the domain")
        r = (self.y - self.A @ values) / self.sigma
        return float(r @ r), -2.0 * self.A.T @ (r / self.sigma)


class ToyGauss(LikelihoodTerm):
    """chi2 of ``1e12 E^2 sum(source dN/dE) + 0.5 sum(norms)`` against fake data (5 % errors)."""

    def __init__(self, spec: TermSpec) -> None:
        self.name = spec.name
        models = Models.from_dict(spec.models)
        pars = models.parameters
        self.n_parameters = len(pars)
        self.to_canonical = pars.to_canonical
        opts = spec.options
        rng = np.random.default_rng(opts.get("seed", 0))
        n_data = int(opts.get("n_data", 30))
        self.energy = np.geomspace(0.3, 30.0, n_data)
        self.factor = 1e12 * self.energy**2
        self.comps, self.positions = _relevant(models, spec.name)
        # norm models (backgrounds) add 0.5 * norm, sources 1e12 E^2 dN/dE
        self.weights = [
            0.5 * np.ones_like(self.energy) if c.is_norm_spectral_model else self.factor
            for c in self.comps
        ]
        truth = np.asarray(opts.get("truth", pars.value), dtype=float)
        mu = self._mu(truth)
        self.sigma = 0.05 * np.abs(mu) + 1e-3
        self.y = mu + self.sigma * rng.normal(size=n_data)
        self.sleep = float(opts.get("sleep", 0.0))

    def _mu(self, values: np.ndarray) -> np.ndarray:
        theta = values * self.to_canonical
        mu = np.zeros_like(self.energy)
        for comp, pos, wt in zip(self.comps, self.positions, self.weights, strict=True):
            mu += comp.evaluate_theta(self.energy, theta=theta[pos]) * wt
        return mu

    def stat(self, values: np.ndarray) -> float:
        return self.stat_and_grad(values)[0]

    def stat_and_grad(self, values: np.ndarray) -> tuple[float, np.ndarray]:
        if self.sleep:
            time.sleep(self.sleep)
        values = np.asarray(values, dtype=float)
        theta = values * self.to_canonical
        r = (self.y - self._mu(values)) / self.sigma
        w = -2.0 * r / self.sigma
        grad = np.zeros(self.n_parameters)
        for comp, pos, wt in zip(self.comps, self.positions, self.weights, strict=True):
            g = comp.evaluate_grad_theta(self.energy, theta=theta[pos])
            grad[pos] += (g @ (w * wt)) * self.to_canonical[pos]
        return float(r @ r), grad


@register_term("toy-linear")
def build_toy_linear(spec: TermSpec) -> LikelihoodTerm:
    return ToyLinear(spec)


@register_term("toy-gauss")
def build_toy_gauss(spec: TermSpec) -> LikelihoodTerm:
    return ToyGauss(spec)

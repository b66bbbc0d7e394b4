"""The coordinator's per-term cache is keyed on what a term declares it depends on.

Regression: the cache used to infer a term's dependencies from the models'
``datasets_names``; a custom term reading a parameter of a model applying to
no dataset (a shared nuisance, like an energy scale) was then served stale
cached values whenever only that parameter changed, and the fit's numerical
Hessian came out 2-4x too flat (errors 2-4x too large).
"""

from __future__ import annotations

import numpy as np

from gdask.fit.coordinator import Coordinator
from gdask.likelihood.term import LikelihoodTerm, TermSpec, register_term
from gdask.models import Models, PowerLawNormSpectralModel, PowerLawSpectralModel, SkyModel


class _NuisanceReader(LikelihoodTerm):
    """``(index - 2)^2 + (tilt - 0.1)^2`` with ``tilt`` from a model applying to no dataset."""

    def __init__(self, spec: TermSpec) -> None:
        models = Models.from_dict(spec.models)  # a custom term parses what it likes
        self.name = spec.name
        self.n_parameters = len(models.parameters)
        self.i = models.parameter_index("src.spectral.index")
        self.k = models.parameter_index("nuisance.spectral.tilt")
        self.calls = 0

    def stat(self, values: np.ndarray) -> float:
        return self.stat_and_grad(values)[0]

    def stat_and_grad(self, values: np.ndarray) -> tuple[float, np.ndarray]:
        self.calls += 1
        g = np.zeros(self.n_parameters)
        g[self.i] = 2 * (values[self.i] - 2.0)
        g[self.k] = 2 * (values[self.k] - 0.1)
        return float((values[self.i] - 2.0) ** 2 + (values[self.k] - 0.1) ** 2), g


register_term("test-nuisance-reader")(_NuisanceReader)


def test_custom_term_is_not_served_stale_cache() -> None:
    models = Models(
        [
            SkyModel(PowerLawSpectralModel(index=2.5), name="src"),
            SkyModel(PowerLawNormSpectralModel(tilt=0.0), name="nuisance", datasets_names=[]),
        ]
    )
    spec = TermSpec("test-nuisance-reader", "d1", "", models.to_dict())
    k = models.parameter_index("nuisance.spectral.tilt")
    with Coordinator([spec], cache=True) as coord:
        v = models.parameters.value
        first = coord.evaluate(v)
        w = v.copy()
        w[k] = 0.3  # only the nuisance parameter moves
        second = coord.evaluate(w)
        again = coord.evaluate(w)  # an exact repeat may come from the cache
        term = coord._groups[0].terms[0]
    assert first.stat == 0.25 + 0.01
    assert second.stat == 0.25 + (0.3 - 0.1) ** 2
    assert second.grad[k] == 2 * (0.3 - 0.1)
    assert again.stat == second.stat and term.calls == 2

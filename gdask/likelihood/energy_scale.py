"""Energy-scale nuisance in map terms: a source's spectrum seen as ``k phi(k E)``.

A map term whose dataset is named by an `~gdask.models.EnergyScaleModel`
hands its `~gdask.likelihood.evaluator.SourceEvaluator` s a source whose
spectral model is `ScaledSpectrum`: the integral over each true-energy bin
``[E1, E2]`` is the photon number of ``k phi(k E)``, i.e. the integral of
``phi`` over ``[k E1, k E2]`` (`gdask.likelihood.folding.scaled_integral_and_grads`),
with ``k`` an extra, last spectral parameter. The evaluator's caches key on
``k`` with the other parameters, and its gradient has a ``d/dk`` entry that
`EnergyScaleBinding` maps to the nuisance parameter (``dk/dp``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gdask.errors import ConfigError
from gdask.likelihood.folding import scaled_integral_and_grads
from gdask.models import EnergyScaleModel, Models, ParameterLayout

__all__ = ["ScaledSpectrum", "ScaledSource", "EnergyScaleBinding", "bind_energy_scale"]

Array = NDArray[np.float64]


class ScaledSpectrum:
    """``k phi(k E)`` of ``spectral``: ``theta`` is its canonical parameters, then ``k``.

    Examples
    --------
    >>> from gdask.models import PowerLawSpectralModel
    >>> pl = PowerLawSpectralModel(index=2.0)
    >>> theta = np.r_[pl.parameters.canonical_value, 1.0]
    >>> bool(np.isclose(ScaledSpectrum(pl).integral_theta([1.0], [2.0], theta)[0],
    ...                 pl.integral_theta([1.0], [2.0], theta[:-1])[0]))
    True
    """

    def __init__(self, spectral: Any) -> None:
        self.base = spectral
        self.output_unit = spectral.output_unit
        self.parameters = [*spectral.parameters, "k"]  # the evaluator only counts them

    def integral_theta(self, emin: Any, emax: Any, theta: Any) -> Array:
        """Integral of ``k phi(k E)`` over each ``[emin, emax]``."""
        theta = np.asarray(theta, float)
        f, _, _ = scaled_integral_and_grads(
            self.base, np.asarray(emin), np.asarray(emax), theta[:-1], float(theta[-1]), grad=False
        )
        return f

    def integral_and_grad_theta(self, emin: Any, emax: Any, theta: Any) -> tuple[Array, Array]:
        """Integrals and their gradient, ``(n_parameters + 1, n)`` (last row: ``d/dk``)."""
        theta = np.asarray(theta, float)
        f, g, dk = scaled_integral_and_grads(
            self.base,
            np.asarray(emin),
            np.asarray(emax),
            theta[:-1],
            float(theta[-1]),
            grad=True,
            grad_scale=True,
        )
        assert g is not None and dk is not None  # grad=True, grad_scale=True return both
        return f, np.vstack([g, dk[None, :]])


@dataclass
class ScaledSource:
    """What a `SourceEvaluator` reads of a `SkyModel`, with the spectrum scaled."""

    spectral_model: ScaledSpectrum
    spatial_model: Any
    temporal_model: Any
    apply_irf: dict[str, bool]
    name: str

    @classmethod
    def of(cls, model: Any) -> ScaledSource:
        """The scaled view of a `SkyModel`."""
        return cls(
            ScaledSpectrum(model.spectral_model),
            model.spatial_model,
            model.temporal_model,
            dict(model.apply_irf),
            model.name,
        )


@dataclass(frozen=True)
class EnergyScaleBinding:
    """Where a dataset's energy-scale parameter sits and how ``k`` follows from it."""

    position: int
    model: EnergyScaleModel

    def factor(self, theta: Array) -> tuple[float, float]:
        """``(k, dk/dp)`` at the canonical joint vector ``theta``."""
        return self.model.energy_scale.factor(float(theta[self.position]))

    def source_theta(self, theta_source: Array, n_spec: int, k: float) -> Array:
        """A source's parameters with ``k`` inserted after its spectral ones."""
        return np.concatenate([theta_source[:n_spec], [k], theta_source[n_spec:]])

    def split_grad(self, grad: Array, n_spec: int) -> tuple[Array, float]:
        """A scaled source's gradient as (its own parameters, ``d/dk``)."""
        return np.delete(grad, n_spec), float(grad[n_spec])


def bind_energy_scale(
    models: Models, dataset_name: str, layout: ParameterLayout | None = None
) -> EnergyScaleBinding | None:
    """The `EnergyScaleModel` naming ``dataset_name`` (None without one).

    Its position comes from ``layout`` (default: ``models.layout()``).

    Raises
    ------
    ConfigError
        Two of them name the dataset.
    """
    layout = layout if layout is not None else models.layout()
    found = None
    for comp in layout.for_dataset(dataset_name):
        m = models[comp.name]
        if isinstance(m, EnergyScaleModel):
            if found is not None:
                raise ConfigError(
                    f"two EnergyScaleModels apply to dataset {dataset_name!r}", field="models"
                )
            found = EnergyScaleBinding(comp.start, m)
    return found

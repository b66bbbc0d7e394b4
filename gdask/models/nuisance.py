"""Nuisance components: an energy scale bound to datasets, and FoV-background systematics.

`EnergyScaleModel` is a top-level component like `~gdask.models.FoVBackgroundModel`:
it applies to the datasets its ``datasets_names`` lists (one run, or all runs
of one instrument) and holds one parameter, constrained by a prior of
`gdask.models.priors` (a `~gdask.models.GaussianPrior` of width ``delta`` adds
``(p / delta)**2`` to the statistic). Two parametrisations are offered, both
photon-number conserving; with ``phi`` the physical spectrum and ``E`` the
energy the instrument reports:

`EnergyScale` (parameter ``s``)
    the instrument sees ``(1 + s) phi((1 + s) E)``: reported energies are
    ``1 + s`` times too low.
`EnergyBias` (parameter ``z``)
    the instrument sees ``phi(E / (1 + z)) / (1 + z)``: reported energies are
    ``1 + z`` times too high; the convention of the joint-Crab paper (Nigro
    et al. 2019, A&A 625, A10), whose penalty is ``(z / delta)**2``.

Either way a term folds ``k phi(k E)`` with the factor ``k`` of `EnergyScaleModel.factor`.
Models YAML (the prior written and read with the parameter)::

    - name: hess-energy-scale
      type: EnergyScaleModel
      datasets_names: [hess-23523, hess-23526]
      energy_scale:
        type: EnergyBias
        parameters:
        - name: z
          value: 0.0
          prior: {type: GaussianPrior, parameters: [{name: mu, value: 0.0},
                                                    {name: sigma, value: 0.15}]}

Gammapy 2.1 has no such component: it refuses a file holding one (unknown
type) instead of misreading it.

`fov_background_systematics` builds the background-systematics nuisances:
a `FoVBackgroundModel` per dataset whose norm and tilt carry Gaussian priors,
free per run or shared (linked) by the runs of one instrument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from gdask.errors import ConfigError

from .core import ModelBase
from .io import model_from_dict, register_component
from .parameters import ParameterSpec as P
from .parameters import link_parameters
from .priors import GaussianPrior
from .sky import FoVBackgroundModel, _Component
from .spectral_norm import PowerLawNormSpectralModel

__all__ = [
    "EnergyScale",
    "EnergyBias",
    "EnergyScaleModel",
    "fov_background_systematics",
    "PARAMETRISATIONS",
]

#: bounds of the energy-scale parameter (``1 + p`` stays well away from 0)
BOUNDS = (-0.5, 0.5)


class _EnergyScaleBase(ModelBase):
    """One dimensionless parameter and the factor ``k`` it implies.

    As a model, the value is the physical energy ``k E`` of a reported energy ``E``.
    """

    type: ClassVar[str | None] = "energy_scale"
    gdask_only = True  # Gammapy 2.1 has no energy-scale nuisance (docs/models.md)
    input_units = ("TeV",)
    output_unit = "TeV"

    @staticmethod
    def factor(value: float) -> tuple[float, float]:
        """``(k, dk/dvalue)`` of the folded ``k phi(k E)``."""
        raise NotImplementedError

    @classmethod
    def _physical(cls, energy: Any, value: float) -> tuple[Any, Any]:
        k, dk = cls.factor(value)
        e = np.asarray(energy, dtype=float)
        return k * e, dk * e


class EnergyScale(_EnergyScaleBase):
    """The instrument sees ``(1 + s) phi((1 + s) E)``: ``k = 1 + s``."""

    tag = ("EnergyScale",)
    _defaults = (P("s", 0.0, min=BOUNDS[0], max=BOUNDS[1]),)

    @staticmethod
    def factor(value: float) -> tuple[float, float]:
        return 1.0 + value, 1.0

    @classmethod
    def evaluate(cls, energy: Any, s: float) -> Any:  # type: ignore[override]
        return cls._physical(energy, s)[0]

    @classmethod
    def evaluate_grad(cls, energy: Any, s: float) -> dict[str, Any]:  # type: ignore[override]
        return {"s": cls._physical(energy, s)[1]}


class EnergyBias(_EnergyScaleBase):
    """The instrument sees ``phi(E / (1 + z)) / (1 + z)``: ``k = 1 / (1 + z)``."""

    tag = ("EnergyBias",)
    _defaults = (P("z", 0.0, min=BOUNDS[0], max=BOUNDS[1]),)

    @staticmethod
    def factor(value: float) -> tuple[float, float]:
        return 1.0 / (1.0 + value), -1.0 / (1.0 + value) ** 2

    @classmethod
    def evaluate(cls, energy: Any, z: float) -> Any:  # type: ignore[override]
        return cls._physical(energy, z)[0]

    @classmethod
    def evaluate_grad(cls, energy: Any, z: float) -> dict[str, Any]:  # type: ignore[override]
        return {"z": cls._physical(energy, z)[1]}


#: parametrisation name -> class
PARAMETRISATIONS: dict[str, type[_EnergyScaleBase]] = {"scale": EnergyScale, "bias": EnergyBias}


@register_component
class EnergyScaleModel(_Component):
    """Energy-scale nuisance of the datasets it names, with a prior.

    Parameters
    ----------
    datasets_names : str or list of str
        The datasets it applies to.
    parametrisation : {"scale", "bias"} or EnergyScale or EnergyBias
        ``"scale"``: ``(1+s) phi((1+s)E)``; ``"bias"``: ``phi(E/(1+z))/(1+z)``.
    sigma : float, optional
        Width of a Gaussian prior (mean 0) set on the parameter.
    name : str, optional
        Default ``<first dataset>-energy-scale``.

    Examples
    --------
    >>> m = EnergyScaleModel(["hess-1", "hess-2"], "bias", sigma=0.15, name="hess-escale")
    >>> m.parameters.names, m.factor(m.parameters.value)[0]
    (['z'], 1.0)
    """

    tag = ("EnergyScaleModel",)
    spectral_model = None
    spatial_model = None

    def __init__(
        self,
        datasets_names: str | Sequence[str],
        parametrisation: str | _EnergyScaleBase = "scale",
        sigma: float | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(parametrisation, str):
            if parametrisation not in PARAMETRISATIONS:
                raise ConfigError(
                    f"unknown energy-scale parametrisation {parametrisation!r}; "
                    f"use one of {sorted(PARAMETRISATIONS)}",
                    field="parametrisation",
                )
            parametrisation = PARAMETRISATIONS[parametrisation]()
        self.energy_scale = parametrisation
        names = [datasets_names] if isinstance(datasets_names, str) else list(datasets_names)
        if not names:
            raise ConfigError("an EnergyScaleModel must name its datasets", field="datasets_names")
        self.datasets_names = names
        self.name = name or f"{names[0]}-energy-scale"
        if sigma is not None:
            self.energy_scale.parameters[0].prior = GaussianPrior(mu=0.0, sigma=float(sigma))

    @property
    def _components(self) -> list[ModelBase]:
        return [self.energy_scale]

    @property
    def parametrisation(self) -> str:
        """``"scale"`` or ``"bias"``."""
        return {v: k for k, v in PARAMETRISATIONS.items()}[type(self.energy_scale)]

    def factor(self, values: Any) -> tuple[float, float]:
        """``(k, dk/dp)`` at the parameter value ``values[0]`` (canonical, dimensionless)."""
        return self.energy_scale.factor(float(values[0]))

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.tag[0],
            "datasets_names": self.datasets_names,
        }
        data.update(self.energy_scale.to_dict(full_output))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnergyScaleModel:
        if "energy_scale" not in data:
            raise ConfigError(
                "an EnergyScaleModel needs an 'energy_scale' model (EnergyScale or EnergyBias)",
                field="energy_scale",
            )
        model = model_from_dict(data["energy_scale"], "energy_scale")
        if not isinstance(model, _EnergyScaleBase):
            raise ConfigError(
                f"the 'energy_scale' model of an EnergyScaleModel must be EnergyScale or EnergyBias, not {type(model).__name__}",
                field="energy_scale",
            )
        return cls(data.get("datasets_names") or [], model, name=data.get("name"))

    def __repr__(self) -> str:
        return (
            f"EnergyScaleModel(name={self.name!r}, datasets={self.datasets_names}, "
            f"{self.parametrisation}={self.parameters.value[0]:.4g})"
        )


def fov_background_systematics(
    groups: Mapping[str, Sequence[str]],
    norm_sigma: float,
    tilt_sigma: float | None = None,
    per: str = "run",
) -> list[FoVBackgroundModel]:
    """FoV background models whose norm (and tilt) carry Gaussian priors.

    Parameters
    ----------
    groups : mapping
        Instrument -> names of its datasets.
    norm_sigma : float
        Width of the prior on the norm (mean 1).
    tilt_sigma : float, optional
        Width of the prior on the tilt (mean 0); None keeps the tilt frozen at 0.
    per : {"run", "instrument"}
        Free norm/tilt per dataset, or one norm/tilt shared (linked) by the
        datasets of an instrument.

    Returns
    -------
    list of FoVBackgroundModel
        One per dataset (``<dataset>-bkg``).

    Examples
    --------
    >>> bkg = fov_background_systematics({"hess": ["a", "b"]}, 0.1, 0.05, per="instrument")
    >>> bkg[0].spectral_model.norm.link == bkg[1].spectral_model.norm.link == "hess-bkg-norm"
    True
    """
    if per not in ("run", "instrument"):
        raise ConfigError(f"per must be 'run' or 'instrument', got {per!r}", field="per")
    out = []
    for instrument, names in groups.items():
        models = []
        for n in names:
            sm = PowerLawNormSpectralModel()
            sm.norm.prior = GaussianPrior(mu=1.0, sigma=float(norm_sigma))
            sm.tilt.frozen = tilt_sigma is None
            if tilt_sigma is not None:
                sm.tilt.prior = GaussianPrior(mu=0.0, sigma=float(tilt_sigma))
            models.append(FoVBackgroundModel(n, spectral_model=sm))
        if per == "instrument" and len(models) > 1:
            for par in ("norm", "tilt"):
                pars = [getattr(m.spectral_model, par) for m in models]
                link_parameters(*pars, label=f"{instrument}-bkg-{par}")
        out.extend(models)
    return out

"""Priors on model parameters: their contribution to the fit statistic.

As in Gammapy 2.1 a prior adds ``weight * (-2 ln pdf(value))`` to the
statistic, where ``value`` is the parameter value in the parameter's own unit
(the prior's parameters are assumed to be in that unit).  Each prior also
gives the derivative of that term with respect to the value, for the
analytic gradient of the joint statistic.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy.special import gammaln

from .core import ModelBase
from .parameters import Parameter, Parameters
from .parameters import ParameterSpec as P

__all__ = [
    "Prior",
    "GaussianPrior",
    "GeneralizedGaussianPrior",
    "UniformPrior",
    "LogUniformPrior",
    "prior_from_dict",
]

_LN_2PI = math.log(2 * math.pi)


class Prior(ModelBase):
    """Base class: ``stat(value) = weight * evaluate(value, **pars)``.

    Parameters
    ----------
    weight : float, optional
        Factor applied to the prior term (default 1).
    **kwargs
        Prior parameters (floats, Quantities or `Parameter`).
    """

    type: ClassVar[str | None] = "prior"

    def __init__(self, weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        object.__setattr__(self, "weight", float(weight))

    def _pars(self) -> dict[str, float]:
        return {p.name: p.value for p in self.parameters}

    def stat(self, value: Any) -> Any:
        """Prior term ``weight * (-2 ln pdf(value))``."""
        return self.weight * self.evaluate(np.asarray(value, dtype=float), **self._pars())

    def stat_grad(self, value: Any) -> Any:
        """Derivative of :meth:`stat` with respect to ``value``."""
        return self.weight * self.evaluate_value_grad(
            np.asarray(value, dtype=float), **self._pars()
        )

    def __call__(self, value: Any) -> Any:  # type: ignore[override]
        """Same as :meth:`stat` (accepts a `Parameter`, as Gammapy's priors do)."""
        if isinstance(value, Parameter):
            value = value.value
        return self.stat(value)

    @staticmethod
    def evaluate_value_grad(value: Any, **pars: float) -> Any:
        """Derivative of ``evaluate`` with respect to the value."""
        raise NotImplementedError

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        """Gammapy layout ``{prior: {type, parameters, weight}}``."""
        params = []
        for p in self.parameters:
            d = {
                "name": p.name,
                "value": p.value,
                "unit": p.unit.to_string("fits"),
                "error": p.error,
                "min": p.min,
                "max": p.max,
            }
            if not full_output:
                for key in ("min", "max"):
                    if np.isnan(d[key]):
                        del d[key]
                if d["error"] == 0:
                    del d["error"]
            params.append(d)
        return {"prior": {"type": self.tag[0], "parameters": params, "weight": self.weight}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Prior:
        data = cls._unwrap(data)
        pars = cls._parameters_from_dict(data.get("parameters", []), cls._defaults)
        return cls(weight=data.get("weight", 1.0), **pars)

    def __repr__(self) -> str:
        body = ", ".join(f"{p.name}={p.value:.4g}" for p in self.parameters)
        return f"{type(self).__name__}({body}, weight={self.weight:g})"


class GaussianPrior(Prior):
    r"""Gaussian: :math:`((x-\mu)/\sigma)^2 + \ln(2\pi\sigma^2)`."""

    tag = ("GaussianPrior",)
    _defaults = (P("mu", 0.0), P("sigma", 1.0))

    @staticmethod
    def evaluate(value: Any, mu: float, sigma: float) -> Any:  # type: ignore[override]
        return ((value - mu) / sigma) ** 2 + _LN_2PI + 2 * math.log(sigma)

    @staticmethod
    def evaluate_value_grad(value: Any, mu: float, sigma: float) -> Any:
        return 2 * (value - mu) / sigma**2


class GeneralizedGaussianPrior(Prior):
    r"""Generalised Gaussian (scipy ``gennorm``, ``beta = 1/eta``, scale ``sigma*sqrt(2)``)."""

    tag = ("GeneralizedGaussianPrior",)
    _defaults = (P("mu", 0.0), P("sigma", 1.0), P("eta", 0.5))

    @staticmethod
    def evaluate(value: Any, mu: float, sigma: float, eta: float) -> Any:  # type: ignore[override]
        beta, s = 1.0 / eta, sigma * math.sqrt(2)
        logpdf = math.log(beta / (2 * s)) - gammaln(1.0 / beta) - np.abs((value - mu) / s) ** beta
        return -2 * logpdf

    @staticmethod
    def evaluate_value_grad(value: Any, mu: float, sigma: float, eta: float) -> Any:
        beta, s = 1.0 / eta, sigma * math.sqrt(2)
        z = (value - mu) / s
        return 2 * beta * np.abs(z) ** (beta - 1) * np.sign(z) / s


class _BoundedPrior(Prior):
    """A prior with parameters ``min`` and ``max`` that also bound the parameter it is set on."""

    @property
    def bounds(self) -> tuple[float, float]:
        """(min, max) imposed on the parameter."""
        return self.parameters["min"].value, self.parameters["max"].value

    @staticmethod
    def _inside(value: Any, min: float, max: float) -> Any:
        return (value >= min) & (value <= max)


class UniformPrior(_BoundedPrior):
    """Uniform on ``[min, max]``: ``2 ln(max - min)`` inside, ``inf`` outside.

    Also bounds the parameter it is set on (as Gammapy does).
    """

    tag = ("UniformPrior",)
    _defaults = (P("min", 0.0), P("max", 1.0))

    @staticmethod
    def evaluate(value: Any, min: float, max: float) -> Any:  # type: ignore[override]
        inside = _BoundedPrior._inside(value, min, max)
        return np.where(inside, 2 * math.log(max - min), np.inf)

    @staticmethod
    def evaluate_value_grad(value: Any, min: float, max: float) -> Any:
        return np.zeros(np.shape(value))


class LogUniformPrior(_BoundedPrior):
    """Log-uniform on ``[min, max]``: ``2 ln(x) + 2 ln(ln(max/min))`` inside, ``inf`` outside."""

    tag = ("LogUniformPrior",)
    _defaults = (P("min", 1e-14), P("max", 1e-10))

    @staticmethod
    def evaluate(value: Any, min: float, max: float) -> Any:  # type: ignore[override]
        inside = _BoundedPrior._inside(value, min, max)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = 2 * np.log(value) + 2 * math.log(math.log(max / min))
        return np.where(inside, v, np.inf)

    @staticmethod
    def evaluate_value_grad(value: Any, min: float, max: float) -> Any:
        inside = _BoundedPrior._inside(value, min, max)
        with np.errstate(divide="ignore"):
            return np.where(inside, 2 / value, 0.0)


def prior_from_dict(data: dict[str, Any]) -> Prior:
    """Prior from ``{"type": ..., "parameters": [...], "weight": ...}`` (or wrapped in ``prior``)."""
    from .io import model_from_dict

    if "prior" in data and "type" not in data:
        data = data["prior"]
    return model_from_dict(data, "prior")


def priors_stat_sum(parameters: Parameters) -> float:
    """Sum of the prior terms of the (unique) parameters."""
    return parameters.prior_stat_sum()

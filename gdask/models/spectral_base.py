"""Spectral model base class: values, integrals and their gradients.

Canonical units: energy in TeV, differential flux in cm-2 s-1 TeV-1 (norm
models: dimensionless), integrals in cm-2 s-1.

Integration (`SpectralModel.integral`) follows Gammapy 2.1 model by model:
classes defining ``evaluate_integral`` (PowerLaw, PowerLaw2, PowerLawNorm,
Gaussian, Constant and Scale of those) integrate analytically; all others use
the log-log trapezoid on ``ndecade = 100`` points per decade of
`gdask.models.integrate` -- Gammapy's ``integrate_spectrum`` -- and their
gradient is the exact derivative of that same quadrature.  Note the grid size
is set by the widest bin of the call: pass all bins of a dataset at once to
reproduce Gammapy's numbers.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from astropy import units as u

from .core import ModelBase, _stack_grads
from .integrate import DEFAULT_NDECADE, log_grid, trapz_loglog, trapz_loglog_weights

__all__ = ["SpectralModel", "CompoundSpectralModel", "OPERATORS"]

ENERGY_UNIT = "TeV"
DNDE_UNIT = "cm-2 s-1 TeV-1"

#: operator name (as written in Gammapy YAML) -> function
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
}


def _energy(x: Any) -> np.ndarray:
    if isinstance(x, u.Quantity):
        return x.to_value(ENERGY_UNIT)
    return np.asarray(x, dtype=float)


class SpectralModel(ModelBase):
    """Base class of spectral models (functions of true energy in TeV)."""

    type: ClassVar[str | None] = "spectral"
    input_units: ClassVar[tuple[str, ...]] = (ENERGY_UNIT,)
    output_unit: ClassVar[str] = DNDE_UNIT
    #: whether `evaluate_integral` is used by `integral` (as in Gammapy)
    analytic_integral: ClassVar[bool] = False

    @property
    def is_norm_spectral_model(self) -> bool:
        """True for dimensionless multiplicative models (Gammapy: "Norm" in the name)."""
        return "Norm" in type(self).__name__ or self.output_unit == ""

    # ---------------------------------------------------------- integrals
    def _integral_analytic(
        self, emin: np.ndarray, emax: np.ndarray, theta: Sequence[float]
    ) -> np.ndarray:
        return self.evaluate_integral(emin, emax, **self._pars_from_theta(theta))

    def _integral_grad_analytic(
        self, emin: np.ndarray, emax: np.ndarray, theta: Sequence[float]
    ) -> np.ndarray:
        g = self.evaluate_integral_grad(emin, emax, **self._pars_from_theta(theta))
        return _stack_grads([g[n] for n in self.parameters.names], (emin, emax))

    def integral_theta(
        self, emin: Any, emax: Any, theta: Sequence[float], ndecade: float = DEFAULT_NDECADE
    ) -> np.ndarray:
        """Integral of the model over ``[emin, emax]`` (TeV), parameters positional/canonical."""
        emin, emax = _energy(emin), _energy(emax)
        if self.analytic_integral:
            return self._integral_analytic(emin, emax, theta)
        x = log_grid(emin, emax, ndecade)
        return trapz_loglog(self.evaluate_theta(x, theta=theta), x)

    def integral_grad_theta(
        self, emin: Any, emax: Any, theta: Sequence[float], ndecade: float = DEFAULT_NDECADE
    ) -> np.ndarray:
        """Gradient of `integral_theta`, shape ``(n_parameters,) + emin.shape``."""
        return self.integral_and_grad_theta(emin, emax, theta, ndecade)[1]

    def integral_and_grad_theta(
        self, emin: Any, emax: Any, theta: Sequence[float], ndecade: float = DEFAULT_NDECADE
    ) -> tuple[np.ndarray, np.ndarray]:
        """Integral and its gradient in one pass (the likelihood's hot path)."""
        emin, emax = _energy(emin), _energy(emax)
        if self.analytic_integral:
            return (
                self._integral_analytic(emin, emax, theta),
                self._integral_grad_analytic(emin, emax, theta),
            )
        x = log_grid(emin, emax, ndecade)
        y = self.evaluate_theta(x, theta=theta)
        value, w = trapz_loglog_weights(y, x)
        g = self.evaluate_grad_theta(x, theta=theta)
        return value, np.einsum("p...n,...n->p...", g, w)

    def _theta(self, pars: dict[str, float]) -> np.ndarray:
        theta = self.parameters.canonical_value
        names = self.parameters.names
        for k, v in pars.items():
            theta[names.index(k)] = v
        return theta

    def integral(
        self, emin: Any, emax: Any, ndecade: float = DEFAULT_NDECADE, **pars: float
    ) -> np.ndarray:
        """Integral flux over ``[emin, emax]`` (Quantity or TeV floats).

        ``pars`` (canonical floats) override the current parameter values.
        """
        return self.integral_theta(emin, emax, self._theta(pars), ndecade)

    def integral_grad(
        self, emin: Any, emax: Any, ndecade: float = DEFAULT_NDECADE, **pars: float
    ) -> dict[str, np.ndarray]:
        """Gradient of `integral` with respect to each canonical parameter, by name."""
        g = self.integral_grad_theta(emin, emax, self._theta(pars), ndecade)
        return dict(zip(self.parameters.names, g, strict=False))

    def energy_flux(self, emin: Any, emax: Any, ndecade: float = DEFAULT_NDECADE) -> np.ndarray:
        """Energy flux ``int E dN/dE dE`` in TeV cm-2 s-1 (analytic where Gammapy is)."""
        emin, emax = _energy(emin), _energy(emax)
        if hasattr(self, "evaluate_energy_flux"):
            return self.evaluate_energy_flux(emin, emax, **self.canonical_pars())
        x = log_grid(emin, emax, ndecade)
        theta = self.parameters.canonical_value
        return trapz_loglog(self.evaluate_theta(x, theta=theta) * x, x)

    def flux(self, emin: Any, emax: Any, ndecade: float = DEFAULT_NDECADE) -> np.ndarray:
        """Integral flux at the current parameters (alias of `integral`)."""
        return self.integral(emin, emax, ndecade)

    # ---------------------------------------------------------- algebra
    def __add__(self, other: Any) -> CompoundSpectralModel:
        return CompoundSpectralModel(self, _as_model(other), "add")

    def __radd__(self, other: Any) -> CompoundSpectralModel:
        return self.__add__(other)

    def __sub__(self, other: Any) -> CompoundSpectralModel:
        return CompoundSpectralModel(self, _as_model(other), "sub")

    def __mul__(self, other: Any) -> CompoundSpectralModel:
        if not isinstance(other, SpectralModel):
            raise TypeError(f"cannot multiply a spectral model by {other!r}")
        return CompoundSpectralModel(self, other, "mul")

    def __truediv__(self, other: Any) -> CompoundSpectralModel:
        if not isinstance(other, SpectralModel):
            raise TypeError(f"cannot divide a spectral model by {other!r}")
        return CompoundSpectralModel(self, other, "truediv")


def _as_model(other: Any) -> SpectralModel:
    if isinstance(other, SpectralModel):
        return other
    from .spectral import ConstantSpectralModel

    return ConstantSpectralModel(const=other)


class CompoundSpectralModel(SpectralModel):
    """Sum, difference, product or ratio of two spectral models.

    Parameters
    ----------
    model1, model2 : SpectralModel
        Operands; the compound's parameters are ``model1``'s then ``model2``'s
        (the same objects).
    operator : {"add", "sub", "mul", "truediv"} or callable
        Operation (``operator.add`` etc. are accepted).
    """

    tag = ("CompoundSpectralModel", "compound")

    def __init__(
        self,
        model1: SpectralModel,
        model2: SpectralModel,
        operator: str | Callable[[Any, Any], Any],
    ) -> None:
        if callable(operator):
            operator = operator.__name__
        if operator not in OPERATORS:
            raise ValueError(f"unsupported operator {operator!r}; use {list(OPERATORS)}")
        object.__setattr__(self, "model1", model1)
        object.__setattr__(self, "model2", model2)
        object.__setattr__(self, "operator", operator)
        object.__setattr__(self, "_parameters", None)

    @property
    def parameters(self):  # type: ignore[override]
        """``model1.parameters + model2.parameters``."""
        return self.model1.parameters + self.model2.parameters

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)

    @property
    def output_unit(self) -> str:  # type: ignore[override]
        u1, u2 = u.Unit(self.model1.output_unit), u.Unit(self.model2.output_unit)
        if self.operator == "mul":
            return (u1 * u2).to_string()
        if self.operator == "truediv":
            return (u1 / u2).to_string()
        return u1.to_string()

    @property
    def _defaults(self):  # type: ignore[override]
        return tuple(self.model1._defaults) + tuple(self.model2._defaults)

    def _split(self, theta: Sequence[float]) -> tuple[Sequence[float], Sequence[float]]:
        n1 = len(self.model1.parameters)
        theta = np.asarray(theta, dtype=float)
        return theta[:n1], theta[n1:]

    def evaluate_theta(self, *x: Any, theta: Sequence[float]) -> np.ndarray:
        t1, t2 = self._split(theta)
        return OPERATORS[self.operator](
            self.model1.evaluate_theta(*x, theta=t1), self.model2.evaluate_theta(*x, theta=t2)
        )

    def evaluate_grad_theta(self, *x: Any, theta: Sequence[float]) -> np.ndarray:
        t1, t2 = self._split(theta)
        v1 = self.model1.evaluate_theta(*x, theta=t1)
        v2 = self.model2.evaluate_theta(*x, theta=t2)
        g1 = self.model1.evaluate_grad_theta(*x, theta=t1)
        g2 = self.model2.evaluate_grad_theta(*x, theta=t2)
        op = self.operator
        if op == "add":
            parts = [g1, g2]
        elif op == "sub":
            parts = [g1, -g2]
        elif op == "mul":
            parts = [g1 * v2, v1 * g2]
        else:
            parts = [g1 / v2, -g2 * v1 / v2**2]
        shape = np.broadcast_shapes(np.shape(v1), np.shape(v2))
        return np.concatenate([np.broadcast_to(p, p.shape[:1] + shape) for p in parts])

    def __call__(self, energy: Any) -> np.ndarray:  # type: ignore[override]
        return self.evaluate_theta(_energy(energy), theta=self.parameters.canonical_value)

    def canonical_pars(self) -> dict[str, float]:
        raise TypeError("compound models have non-unique parameter names; use theta")

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        """Gammapy layout: ``{spectral: {type, model1, model2, operator}}``."""
        return {
            "spectral": {
                "type": self.tag[0],
                "model1": self.model1.to_dict(full_output)["spectral"],
                "model2": self.model2.to_dict(full_output)["spectral"],
                "operator": self.operator,
            }
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> CompoundSpectralModel:
        from .core import model_from_dict

        data = cls._unwrap(data)
        m1 = model_from_dict(data["model1"], "spectral")
        m2 = model_from_dict(data["model2"], "spectral")
        return cls(m1, m2, data["operator"])

    def __repr__(self) -> str:
        return f"CompoundSpectralModel({self.model1!r} {self.operator} {self.model2!r})"

"""Dimensionless (norm) spectral models: multiplicative corrections.

Used e.g. as the spectral part of a background model or multiplied onto a
source spectrum.  Names, parameters and formulas follow Gammapy 2.1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy import units as u

from .core import _stack_grads, parameter_items, update_parameter
from .parameters import Parameter, Parameters
from .parameters import ParameterSpec as P
from .spectral import (
    ENERGY_UNIT,
    ExpCutoffPowerLawSpectralModel,
    LogParabolaSpectralModel,
    PowerLawSpectralModel,
    _scale_fwd,
    _scale_inv,
)
from .spectral_base import SpectralModel, _energy

__all__ = [
    "ExpCutoffPowerLawNormSpectralModel",
    "LogParabolaNormSpectralModel",
    "PiecewiseNormSpectralModel",
    "PowerLawNormSpectralModel",
    "ScaleSpectralModel",
]

_NORM = P("norm", 1.0, "", interp="log", is_norm=True)


class PowerLawNormSpectralModel(SpectralModel):
    r""":math:`n (E/E_0)^{-t}` with ``tilt`` frozen at 0 by default (analytic integral)."""

    tag = ("PowerLawNormSpectralModel", "pl-norm")
    _defaults = (P("tilt", 0.0, frozen=True), _NORM, P("reference", 1.0, ENERGY_UNIT, frozen=True))
    output_unit = ""
    analytic_integral = True

    # the power law's formulas, with (tilt, norm, reference) for (index, amplitude, reference)

    @staticmethod
    def evaluate(energy: Any, tilt: float, norm: float, reference: float) -> np.ndarray:
        return PowerLawSpectralModel.evaluate(energy, tilt, norm, reference)

    @staticmethod
    def evaluate_grad(energy: Any, tilt: float, norm: float, reference: float) -> dict[str, Any]:
        return _from_power_law(PowerLawSpectralModel.evaluate_grad(energy, tilt, norm, reference))

    @staticmethod
    def evaluate_integral(
        emin: Any, emax: Any, tilt: float, norm: float, reference: float
    ) -> np.ndarray:
        return PowerLawSpectralModel.evaluate_integral(emin, emax, tilt, norm, reference)

    @staticmethod
    def evaluate_integral_grad(
        emin: Any, emax: Any, tilt: float, norm: float, reference: float
    ) -> dict[str, Any]:
        return _from_power_law(
            PowerLawSpectralModel.evaluate_integral_grad(emin, emax, tilt, norm, reference)
        )


def _from_power_law(grads: dict[str, Any]) -> dict[str, Any]:
    """Power-law gradients keyed by PowerLawNorm's parameter names."""
    return {"tilt": grads["index"], "norm": grads["amplitude"], "reference": grads["reference"]}


class LogParabolaNormSpectralModel(SpectralModel):
    r""":math:`n x^{-\alpha - \beta \ln x}`, ``x = E/E_0`` (defaults: E0 = 10 TeV, alpha = beta = 0)."""

    tag = ("LogParabolaNormSpectralModel", "lp-norm")
    _defaults = (
        _NORM,
        P("reference", 10.0, ENERGY_UNIT, frozen=True),
        P("alpha", 0.0),
        P("beta", 0.0),
    )
    output_unit = ""

    @classmethod
    def from_log10(cls, norm: float, reference: Any, alpha: float, beta: float) -> Any:
        """Build from the log10 parametrisation."""
        return cls(norm=norm, reference=reference, alpha=alpha, beta=beta / np.log(10))

    @staticmethod
    def evaluate(
        energy: Any, norm: float, reference: float, alpha: float, beta: float
    ) -> np.ndarray:
        return LogParabolaSpectralModel.evaluate(energy, norm, reference, alpha, beta)

    @staticmethod
    def evaluate_grad(
        energy: Any, norm: float, reference: float, alpha: float, beta: float
    ) -> dict[str, Any]:
        g = LogParabolaSpectralModel.evaluate_grad(energy, norm, reference, alpha, beta)
        g["norm"] = g.pop("amplitude")
        return g


class ExpCutoffPowerLawNormSpectralModel(SpectralModel):
    r""":math:`n (E/E_0)^{-\Gamma} \exp(-(\lambda E)^{\alpha})` (index default 0)."""

    tag = ("ExpCutoffPowerLawNormSpectralModel", "ecpl-norm")
    _defaults = (
        P("index", 0.0),
        _NORM,
        P("reference", 1.0, ENERGY_UNIT, frozen=True),
        P("lambda_", 0.1, "TeV-1"),
        P("alpha", 1.0, frozen=True),
    )
    output_unit = ""

    @staticmethod
    def evaluate(
        energy: Any, index: float, norm: float, reference: float, lambda_: float, alpha: float
    ) -> np.ndarray:
        return ExpCutoffPowerLawSpectralModel.evaluate(
            energy, index, norm, reference, lambda_, alpha
        )

    @staticmethod
    def evaluate_grad(
        energy: Any, index: float, norm: float, reference: float, lambda_: float, alpha: float
    ) -> dict[str, Any]:
        g = ExpCutoffPowerLawSpectralModel.evaluate_grad(
            energy, index, norm, reference, lambda_, alpha
        )
        g["norm"] = g.pop("amplitude")
        return g


class PiecewiseNormSpectralModel(SpectralModel):
    """Norm interpolated between fixed energy nodes, one free ``norm_k`` per node.

    Interpolation of ``scale(norm)`` against ``scale(energy)`` with ``numpy.interp``
    (constant beyond the end nodes), ``scale`` = ``interp`` ("log" default, "lin").

    Parameters
    ----------
    energy : Quantity or array (TeV)
        Node energies (at least 2, increasing).
    norms : array or list of Parameter, optional
        Initial norms (default 1).
    interp : {"log", "lin", "sqrt"}
        Interpolation scale.
    """

    tag = ("PiecewiseNormSpectralModel", "piecewise-norm")
    output_unit = ""

    def __init__(self, energy: Any, norms: Any = None, interp: str = "log") -> None:
        e = energy if isinstance(energy, u.Quantity) else u.Quantity(energy, ENERGY_UNIT)
        if norms is None:
            norms = np.ones(len(e))
        if len(norms) != len(e):
            raise ValueError("energy and norms must have the same length")
        if len(norms) < 2:
            raise ValueError("a piecewise norm needs at least 2 nodes")
        specs = tuple(P(f"norm_{k}", 1.0, "", is_norm=True) for k in range(len(e)))
        pars = []
        for spec, n in zip(specs, norms, strict=False):
            pars.append(self._make_parameter(spec, n))
        object.__setattr__(self, "_defaults", specs)
        object.__setattr__(self, "_parameters", Parameters(pars))
        object.__setattr__(self, "_energy", e)
        object.__setattr__(self, "_interp", interp)
        object.__setattr__(self, "_xnodes", _scale_fwd(interp, e.to_value(ENERGY_UNIT)))

    @property
    def energy(self) -> u.Quantity:
        """Node energies."""
        return self._energy

    @property
    def interp(self) -> str:
        """Interpolation scale."""
        return self._interp

    def _weights(self, energy: Any) -> tuple[Any, Any, Any]:
        xe = _scale_fwd(self._interp, _energy(energy))
        xn = self._xnodes
        i = np.clip(np.searchsorted(xn, xe, side="right") - 1, 0, len(xn) - 2)
        t = np.clip((xe - xn[i]) / (xn[i + 1] - xn[i]), 0.0, 1.0)
        return i, t, xe

    def _values(self, pars: dict[str, float]) -> np.ndarray:
        return np.array([pars[f"norm_{k}"] for k in range(len(self._xnodes))])

    def evaluate(self, energy: Any, **norms: float) -> np.ndarray:  # type: ignore[override]
        v = _scale_fwd(self._interp, self._values(norms))
        xe = _scale_fwd(self._interp, _energy(energy))
        return _scale_inv(self._interp, np.interp(xe, self._xnodes, v))

    def evaluate_grad(self, energy: Any, **norms: float) -> dict[str, Any]:  # type: ignore[override]
        n = self._values(norms)
        v = _scale_fwd(self._interp, n)
        i, t, xe = self._weights(energy)
        s = v[i] * (1 - t) + v[i + 1] * t
        out = _scale_inv(self._interp, s)
        # d out / d s
        if self._interp == "log":
            dout = out
            dv = 1.0 / n
        elif self._interp == "sqrt":
            dout = 2.0 * s
            dv = 0.5 / np.sqrt(np.abs(n))
        else:
            dout = np.ones_like(s)
            dv = np.ones_like(n)
        grads = {}
        for k in range(len(n)):
            wk = np.where(i == k, 1 - t, 0.0) + np.where(i + 1 == k, t, 0.0)
            grads[f"norm_{k}"] = dout * wk * dv[k]
        return grads

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        data = {
            "type": self.tag[0],
            "parameters": self.parameters.to_dict(),
            "energy": {"data": self._energy.value.tolist(), "unit": str(self._energy.unit)},
            "interp": self._interp,
        }
        return {"spectral": data}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> PiecewiseNormSpectralModel:
        data = cls._unwrap(data)
        energy = u.Quantity(data["energy"]["data"], data["energy"]["unit"])
        norms = []
        for name, d in parameter_items(data["parameters"], cls.__name__).items():
            p = Parameter(name, 1.0)
            update_parameter(p, d, cls.__name__)
            norms.append(p)
        return cls(energy=energy, norms=norms, interp=data.get("interp", "log"))


class ScaleSpectralModel(SpectralModel):
    """``norm`` times another spectral model (whose parameters stay fixed here).

    As in Gammapy, only ``norm`` is a parameter; the wrapped model is evaluated
    at its current values and its own integral scheme is used.
    """

    tag = ("ScaleSpectralModel", "scale")
    _defaults = (_NORM,)

    def __init__(self, model: SpectralModel, norm: Any = 1.0) -> None:
        super().__init__(norm=norm)
        object.__setattr__(self, "model", model)

    @property
    def output_unit(self) -> str:  # type: ignore[override]
        return self.model.output_unit

    @property
    def analytic_integral(self) -> bool:  # type: ignore[override]
        return True

    def evaluate(self, energy: Any, norm: float) -> np.ndarray:  # type: ignore[override]
        return norm * self.model(energy)

    def evaluate_grad(self, energy: Any, norm: float) -> dict[str, Any]:  # type: ignore[override]
        return {"norm": self.model(energy)}

    def _integral_analytic(self, emin: Any, emax: Any, theta: Any) -> np.ndarray:
        return float(theta[0]) * self.model.integral(emin, emax)

    def _integral_grad_analytic(self, emin: Any, emax: Any, theta: Any) -> np.ndarray:
        return _stack_grads([self.model.integral(emin, emax)], (emin, emax))

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        data = super().to_dict(full_output)
        data["spectral"]["model"] = self.model.to_dict(full_output)["spectral"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> ScaleSpectralModel:
        from .core import model_from_dict

        data = cls._unwrap(data)
        pars = cls._parameters_from_dict(data.get("parameters", []), cls._defaults)
        return cls(model_from_dict(data["model"], "spectral"), norm=pars["norm"])

"""Spectral models (Gammapy 2.1 names, parameters, defaults and formulas).

All ``evaluate``/``evaluate_grad`` functions take energies in TeV and
parameters in canonical units (energies TeV, fluxes cm-2 s-1 TeV-1 or
cm-2 s-1, ``lambda_`` TeV-1).  Gradients are analytic.  See
`gdask.models.spectral_base` for the integration schemes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import erf, erfc, expit

from .integrate import powerlaw_integral_factor
from .parameters import ParameterSpec as P
from .spectral_base import DNDE_UNIT, ENERGY_UNIT, CompoundSpectralModel, SpectralModel
from .spectral_logparabola import (
    _AMPL,  # the amplitude spec shared by the dN/dE models
    LogParabola2SpectralModel,
    LogParabola10SpectralModel,
    LogParabolaSpectralModel,
)

__all__ = [
    "BrokenPowerLawSpectralModel",
    "CompoundSpectralModel",
    "ConstantSpectralModel",
    "ExpCutoffPowerLaw3FGLSpectralModel",
    "ExpCutoffPowerLawSpectralModel",
    "GaussianSpectralModel",
    "LogParabola10SpectralModel",
    "LogParabola2SpectralModel",
    "LogParabolaSpectralModel",
    "PowerLaw2SpectralModel",
    "PowerLawSpectralModel",
    "SmoothBrokenPowerLawSpectralModel",
    "SpectralModel",
    "SuperExpCutoffPowerLaw3FGLSpectralModel",
    "SuperExpCutoffPowerLaw4FGLDR3SpectralModel",
    "SuperExpCutoffPowerLaw4FGLSpectralModel",
    "TemplateSpectralModel",
]

_REF1 = P("reference", 1.0, ENERGY_UNIT, frozen=True)


class ConstantSpectralModel(SpectralModel):
    """Constant ``dN/dE = const``."""

    tag = ("ConstantSpectralModel", "const")
    _defaults = (P("const", 1e-12, DNDE_UNIT),)
    analytic_integral = True

    @staticmethod
    def evaluate(energy: Any, const: float) -> np.ndarray:
        return np.ones(np.shape(energy)) * const

    @staticmethod
    def evaluate_grad(energy: Any, const: float) -> dict[str, Any]:
        return {"const": np.ones(np.shape(energy))}

    @staticmethod
    def evaluate_integral(emin: Any, emax: Any, const: float) -> np.ndarray:
        # exact; equals Gammapy's log-log trapezoid to rounding
        return const * (np.asarray(emax) - np.asarray(emin))

    @staticmethod
    def evaluate_integral_grad(emin: Any, emax: Any, const: float) -> dict[str, Any]:
        return {"const": np.asarray(emax) - np.asarray(emin)}


class PowerLawSpectralModel(SpectralModel):
    r"""Power law :math:`\phi_0 (E/E_0)^{-\Gamma}` (analytic integral)."""

    tag = ("PowerLawSpectralModel", "pl")
    _defaults = (P("index", 2.0), _AMPL, _REF1)
    analytic_integral = True

    @staticmethod
    def evaluate(energy: Any, index: float, amplitude: float, reference: float) -> np.ndarray:
        return amplitude * np.power(energy / reference, -index)

    @staticmethod
    def evaluate_grad(
        energy: Any, index: float, amplitude: float, reference: float
    ) -> dict[str, Any]:
        x = energy / reference
        pw = np.power(x, -index)
        f = amplitude * pw
        return {"index": -f * np.log(x), "amplitude": pw, "reference": f * index / reference}

    @staticmethod
    def evaluate_integral(
        emin: Any, emax: Any, index: float, amplitude: float, reference: float
    ) -> np.ndarray:
        f, _ = powerlaw_integral_factor(
            np.log(emin / reference), np.log(emax / reference), 1.0 - index
        )
        return amplitude * reference * f

    @staticmethod
    def evaluate_integral_grad(
        emin: Any, emax: Any, index: float, amplitude: float, reference: float
    ) -> dict[str, Any]:
        f, df = powerlaw_integral_factor(
            np.log(emin / reference), np.log(emax / reference), 1.0 - index
        )
        integral = amplitude * reference * f
        return {
            "index": -amplitude * reference * df,
            "amplitude": reference * f,
            "reference": integral * index / reference,
        }

    @staticmethod
    def evaluate_energy_flux(
        emin: Any, emax: Any, index: float, amplitude: float, reference: float
    ) -> np.ndarray:
        f, _ = powerlaw_integral_factor(
            np.log(emin / reference), np.log(emax / reference), 2.0 - index
        )
        return amplitude * reference**2 * f


class PowerLaw2SpectralModel(SpectralModel):
    r"""Power law normalised by its integral flux ``amplitude`` over ``[emin, emax]``."""

    tag = ("PowerLaw2SpectralModel", "pl-2")
    _defaults = (
        P("amplitude", 1e-12, "cm-2 s-1", interp="log"),
        P("index", 2.0),
        P("emin", 0.1, ENERGY_UNIT, frozen=True),
        P("emax", 100.0, ENERGY_UNIT, frozen=True),
    )
    analytic_integral = True

    @staticmethod
    def _norm(index: float, emin: float, emax: float) -> tuple[Any, Any, Any]:
        # K = int_emin^emax (E/emax)^-index dE = emax * F, F' = dF/dv, v = 1 - index
        f, df = powerlaw_integral_factor(np.log(emin / emax), 0.0, 1.0 - index)
        return emax * f, f, df

    @classmethod
    def evaluate(
        cls, energy: Any, amplitude: float, index: float, emin: float, emax: float
    ) -> np.ndarray:
        k, _, _ = cls._norm(index, emin, emax)
        return amplitude * np.power(energy / emax, -index) / k

    @classmethod
    def evaluate_grad(
        cls, energy: Any, amplitude: float, index: float, emin: float, emax: float
    ) -> dict[str, Any]:
        k, f, df = cls._norm(index, emin, emax)
        shape = np.power(energy / emax, -index) / k
        val = amplitude * shape
        r = np.power(emin / emax, -index)
        return {
            "amplitude": shape,
            "index": val * (-np.log(energy / emax) + df / f),
            "emin": val * r / k,
            "emax": -val / k,
        }

    @classmethod
    def evaluate_integral(
        cls, emin_: Any, emax_: Any, amplitude: float, index: float, emin: float, emax: float
    ) -> np.ndarray:
        k, _, _ = cls._norm(index, emin, emax)
        fi, _ = powerlaw_integral_factor(np.log(emin_ / emax), np.log(emax_ / emax), 1.0 - index)
        return amplitude * emax * fi / k

    @classmethod
    def evaluate_integral_grad(
        cls, emin_: Any, emax_: Any, amplitude: float, index: float, emin: float, emax: float
    ) -> dict[str, Any]:
        k, f, df = cls._norm(index, emin, emax)
        fi, dfi = powerlaw_integral_factor(np.log(emin_ / emax), np.log(emax_ / emax), 1.0 - index)
        shape = emax * fi / k
        val = amplitude * shape
        r = np.power(emin / emax, -index)
        return {
            "amplitude": shape,
            "index": val * (-dfi / fi + df / f),
            "emin": val * r / k,
            "emax": -val / k,
        }

    def _integral_analytic(self, emin, emax, theta):  # positional: names clash with edges
        a, i, e1, e2 = (float(t) for t in theta)
        return self.evaluate_integral(emin, emax, a, i, e1, e2)

    def _integral_grad_analytic(self, emin, emax, theta):
        a, i, e1, e2 = (float(t) for t in theta)
        g = self.evaluate_integral_grad(emin, emax, a, i, e1, e2)
        from .core import _stack_grads

        return _stack_grads([g[n] for n in ("amplitude", "index", "emin", "emax")], (emin, emax))


class ExpCutoffPowerLawSpectralModel(SpectralModel):
    r""":math:`\phi_0 (E/E_0)^{-\Gamma} \exp(-(\lambda E)^{\alpha})` (numerical integral)."""

    tag = ("ExpCutoffPowerLawSpectralModel", "ecpl")
    _defaults = (
        P("index", 1.5),
        _AMPL,
        _REF1,
        P("lambda_", 0.1, "TeV-1"),
        P("alpha", 1.0, frozen=True),
    )

    @staticmethod
    def evaluate(
        energy: Any, index: float, amplitude: float, reference: float, lambda_: float, alpha: float
    ) -> np.ndarray:
        pwl = amplitude * np.power(energy / reference, -index)
        return pwl * np.exp(-np.power(energy * lambda_, alpha))

    @staticmethod
    def evaluate_grad(
        energy: Any, index: float, amplitude: float, reference: float, lambda_: float, alpha: float
    ) -> dict[str, Any]:
        x = energy / reference
        le = energy * lambda_
        lea = np.power(le, alpha)
        shape = np.power(x, -index) * np.exp(-lea)
        f = amplitude * shape
        with np.errstate(divide="ignore", invalid="ignore"):
            dlam = -f * alpha * np.power(le, alpha - 1.0) * energy
            dalpha = np.where(le > 0, -f * lea * np.log(np.where(le > 0, le, 1.0)), 0.0)
        return {
            "index": -f * np.log(x),
            "amplitude": shape,
            "reference": f * index / reference,
            "lambda_": dlam,
            "alpha": dalpha,
        }


class ExpCutoffPowerLaw3FGLSpectralModel(SpectralModel):
    r""":math:`\phi_0 (E/E_0)^{-\Gamma} \exp((E_0 - E)/E_c)` (numerical integral)."""

    tag = ("ExpCutoffPowerLaw3FGLSpectralModel", "ecpl-3fgl")
    _defaults = (P("index", 1.5), _AMPL, _REF1, P("ecut", 10.0, ENERGY_UNIT))

    @staticmethod
    def evaluate(
        energy: Any, index: float, amplitude: float, reference: float, ecut: float
    ) -> np.ndarray:
        pwl = amplitude * np.power(energy / reference, -index)
        return pwl * np.exp((reference - energy) / ecut)

    @staticmethod
    def evaluate_grad(
        energy: Any, index: float, amplitude: float, reference: float, ecut: float
    ) -> dict[str, Any]:
        x = energy / reference
        shape = np.power(x, -index) * np.exp((reference - energy) / ecut)
        f = amplitude * shape
        return {
            "index": -f * np.log(x),
            "amplitude": shape,
            "reference": f * (index / reference + 1.0 / ecut),
            "ecut": f * (energy - reference) / ecut**2,
        }


class SuperExpCutoffPowerLaw3FGLSpectralModel(SpectralModel):
    r""":math:`\phi_0 (E/E_0)^{-\Gamma_1} \exp((E_0/E_c)^{\Gamma_2} - (E/E_c)^{\Gamma_2})`."""

    tag = ("SuperExpCutoffPowerLaw3FGLSpectralModel", "secpl-3fgl")
    _defaults = (_AMPL, _REF1, P("ecut", 10.0, ENERGY_UNIT), P("index_1", 1.5), P("index_2", 2.0))

    @staticmethod
    def evaluate(
        energy: Any, amplitude: float, reference: float, ecut: float, index_1: float, index_2: float
    ) -> np.ndarray:
        pwl = amplitude * np.power(energy / reference, -index_1)
        return pwl * np.exp((reference / ecut) ** index_2 - np.power(energy / ecut, index_2))

    @staticmethod
    def evaluate_grad(
        energy: Any, amplitude: float, reference: float, ecut: float, index_1: float, index_2: float
    ) -> dict[str, Any]:
        x = energy / reference
        r0, re = reference / ecut, energy / ecut
        p0, pe = r0**index_2, np.power(re, index_2)
        shape = np.power(x, -index_1) * np.exp(p0 - pe)
        f = amplitude * shape
        return {
            "amplitude": shape,
            "reference": f * (index_1 + index_2 * p0) / reference,
            "ecut": f * index_2 * (pe - p0) / ecut,
            "index_1": -f * np.log(x),
            "index_2": f * (p0 * math.log(r0) - pe * np.log(re)),
        }


class SuperExpCutoffPowerLaw4FGLSpectralModel(SpectralModel):
    r"""4FGL-DR1 form: :math:`\phi_0 (E/E_0)^{-\Gamma_1} \exp(a (E_0^{\Gamma_2} - E^{\Gamma_2}))`.

    ``expfactor`` ``a`` is in MeV^-index_2 (energies inside the exponent in MeV).
    """

    tag = ("SuperExpCutoffPowerLaw4FGLSpectralModel", "secpl-4fgl")
    _defaults = (_AMPL, _REF1, P("expfactor", 1e-14), P("index_1", 1.5), P("index_2", 2.0))
    _MEV = 1e6  # TeV -> MeV

    @classmethod
    def evaluate(
        cls,
        energy: Any,
        amplitude: float,
        reference: float,
        expfactor: float,
        index_1: float,
        index_2: float,
    ) -> np.ndarray:
        pwl = amplitude * np.power(energy / reference, -index_1)
        e0, e = reference * cls._MEV, energy * cls._MEV
        return pwl * np.exp(expfactor * (e0**index_2 - np.power(e, index_2)))

    @classmethod
    def evaluate_grad(
        cls,
        energy: Any,
        amplitude: float,
        reference: float,
        expfactor: float,
        index_1: float,
        index_2: float,
    ) -> dict[str, Any]:
        x = energy / reference
        e0, e = reference * cls._MEV, energy * cls._MEV
        p0, pe = e0**index_2, np.power(e, index_2)
        shape = np.power(x, -index_1) * np.exp(expfactor * (p0 - pe))
        f = amplitude * shape
        return {
            "amplitude": shape,
            "reference": f * (index_1 + expfactor * index_2 * p0) / reference,
            "expfactor": f * (p0 - pe),
            "index_1": -f * np.log(x),
            "index_2": f * expfactor * (p0 * math.log(e0) - pe * np.log(e)),
        }


def _h_dr3(z: Any) -> tuple[Any, Any]:
    """``H(z) = (e^z - 1 - z)/z^2`` and ``H'(z)``, with Gammapy's 3-term series for |z|<1e-2."""
    small = np.abs(z) < 1e-2
    zs = np.where(small, 1.0, z)
    em1 = np.expm1(zs)
    h_big = (em1 - zs) / zs**2
    dh_big = (em1 * zs - 2.0 * (em1 - zs)) / zs**3
    return (
        np.where(small, 0.5 + z / 6.0 + z**2 / 24.0, h_big),
        np.where(small, 1.0 / 6.0 + z / 12.0, dh_big),
    )


class SuperExpCutoffPowerLaw4FGLDR3SpectralModel(SpectralModel):
    r"""4FGL-DR3 form (PLSuperExpCutoff4):

    :math:`\phi_0 x^{-\Gamma_1 + d/\Gamma_2} \exp(d/\Gamma_2^2 (1 - x^{\Gamma_2}))`, ``x = E/E_0``,
    ``d = expfactor``; for ``|Gamma_2 ln x| < 1e-2`` the same series as Gammapy.
    """

    tag = ("SuperExpCutoffPowerLaw4FGLDR3SpectralModel", "secpl-4fgl-dr3")
    _defaults = (_AMPL, _REF1, P("expfactor", 1e-2), P("index_1", 1.5), P("index_2", 2.0))

    @staticmethod
    def evaluate(
        energy: Any,
        amplitude: float,
        reference: float,
        expfactor: float,
        index_1: float,
        index_2: float,
    ) -> np.ndarray:
        ln_ = np.log(energy / reference)
        h, _ = _h_dr3(index_2 * ln_)
        return amplitude * np.exp(-index_1 * ln_ - expfactor * ln_**2 * h)

    @staticmethod
    def evaluate_grad(
        energy: Any,
        amplitude: float,
        reference: float,
        expfactor: float,
        index_1: float,
        index_2: float,
    ) -> dict[str, Any]:
        ln_ = np.log(energy / reference)
        h, dh = _h_dr3(index_2 * ln_)
        shape = np.exp(-index_1 * ln_ - expfactor * ln_**2 * h)
        f = amplitude * shape
        dlogf_dln = -index_1 - expfactor * (2.0 * ln_ * h + ln_**2 * dh * index_2)
        return {
            "amplitude": shape,
            "reference": -f * dlogf_dln / reference,
            "expfactor": -f * ln_**2 * h,
            "index_1": -f * ln_,
            "index_2": -f * expfactor * ln_**3 * dh,
        }


class BrokenPowerLawSpectralModel(SpectralModel):
    r"""Broken power law, :math:`\phi_0 (E/E_b)^{-\Gamma_1}` below ``ebreak``, ``-Gamma_2`` above.

    Integrated numerically as in Gammapy (log-log trapezoid).
    """

    tag = ("BrokenPowerLawSpectralModel", "bpl")
    _defaults = (P("index1", 2.0), P("index2", 2.0), _AMPL, P("ebreak", 1.0, ENERGY_UNIT))

    @staticmethod
    def evaluate(
        energy: Any, index1: float, index2: float, amplitude: float, ebreak: float
    ) -> np.ndarray:
        x = energy / ebreak
        return amplitude * np.power(x, -np.where(energy < ebreak, index1, index2))

    @staticmethod
    def evaluate_grad(
        energy: Any, index1: float, index2: float, amplitude: float, ebreak: float
    ) -> dict[str, Any]:
        x = energy / ebreak
        below = energy < ebreak
        idx = np.where(below, index1, index2)
        shape = np.power(x, -idx)
        f = amplitude * shape
        dlog = -f * np.log(x)
        return {
            "index1": np.where(below, dlog, 0.0),
            "index2": np.where(below, 0.0, dlog),
            "amplitude": shape,
            "ebreak": f * idx / ebreak,
        }


class SmoothBrokenPowerLawSpectralModel(SpectralModel):
    r""":math:`\phi_0 (E/E_0)^{-\Gamma_1} (1 + (E/E_b)^{(\Gamma_2-\Gamma_1)/\beta'})^{-\beta'}`.

    ``beta' = beta * sign(index2 - index1)`` as in Gammapy; where the indices are
    equal gdask takes the sign as +1 (Gammapy returns NaN there).
    """

    tag = ("SmoothBrokenPowerLawSpectralModel", "sbpl")
    _defaults = (
        P("index1", 2.0),
        P("index2", 2.0),
        _AMPL,
        P("ebreak", 1.0, ENERGY_UNIT),
        _REF1,
        P("beta", 1.0, frozen=True),
    )

    @staticmethod
    def _parts(
        energy: Any, index1: float, index2: float, ebreak: float, beta: float
    ) -> tuple[Any, ...]:
        s = 1.0 if index2 >= index1 else -1.0
        b = beta * s
        p = (index2 - index1) / b
        lb = np.log(energy / ebreak)
        q = p * lb
        return s, b, p, lb, np.logaddexp(0.0, q), expit(q)

    @classmethod
    def evaluate(
        cls,
        energy: Any,
        index1: float,
        index2: float,
        amplitude: float,
        ebreak: float,
        reference: float,
        beta: float,
    ) -> np.ndarray:
        _, b, _, _, log1py, _ = cls._parts(energy, index1, index2, ebreak, beta)
        return amplitude * np.exp(-index1 * np.log(energy / reference) - b * log1py)

    @classmethod
    def evaluate_grad(
        cls,
        energy: Any,
        index1: float,
        index2: float,
        amplitude: float,
        ebreak: float,
        reference: float,
        beta: float,
    ) -> dict[str, Any]:
        s, b, p, lb, log1py, yfrac = cls._parts(energy, index1, index2, ebreak, beta)
        l0 = np.log(energy / reference)
        shape = np.exp(-index1 * l0 - b * log1py)
        f = amplitude * shape
        d = index2 - index1
        return {
            "index1": f * (-l0 + yfrac * lb),
            "index2": -f * yfrac * lb,
            "amplitude": shape,
            "ebreak": f * d * yfrac / ebreak,
            "reference": f * index1 / reference,
            "beta": f * (-s * log1py + d * yfrac * lb / beta),
        }


class GaussianSpectralModel(SpectralModel):
    r"""Gaussian line :math:`N_0/(\sigma\sqrt{2\pi}) \exp(-(E-\bar E)^2/2\sigma^2)` (analytic)."""

    tag = ("GaussianSpectralModel", "gauss")
    _defaults = (
        P("amplitude", 1e-12, "cm-2 s-1", interp="log"),
        P("mean", 1.0, ENERGY_UNIT),
        P("sigma", 2.0, ENERGY_UNIT),
    )
    analytic_integral = True

    @staticmethod
    def evaluate(energy: Any, amplitude: float, mean: float, sigma: float) -> np.ndarray:
        return (
            amplitude
            / (sigma * math.sqrt(2 * math.pi))
            * np.exp(-((energy - mean) ** 2) / (2 * sigma**2))
        )

    @staticmethod
    def evaluate_grad(energy: Any, amplitude: float, mean: float, sigma: float) -> dict[str, Any]:
        dx = energy - mean
        shape = np.exp(-(dx**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
        f = amplitude * shape
        return {
            "amplitude": shape,
            "mean": f * dx / sigma**2,
            "sigma": f * (dx**2 / sigma**3 - 1.0 / sigma),
        }

    @staticmethod
    def _erf_diff(u1: Any, u2: Any) -> Any:
        """``erf(u2) - erf(u1)`` without cancellation in the tails."""
        pos, neg = u1 >= 0, u2 <= 0
        return np.where(
            pos, erfc(u1) - erfc(u2), np.where(neg, erfc(-u2) - erfc(-u1), erf(u2) - erf(u1))
        )

    @classmethod
    def evaluate_integral(
        cls, emin: Any, emax: Any, amplitude: float, mean: float, sigma: float
    ) -> np.ndarray:
        c = math.sqrt(2) * sigma
        return amplitude / 2 * cls._erf_diff((emin - mean) / c, (emax - mean) / c)

    @classmethod
    def evaluate_integral_grad(
        cls, emin: Any, emax: Any, amplitude: float, mean: float, sigma: float
    ) -> dict[str, Any]:
        c = math.sqrt(2) * sigma
        u1, u2 = (emin - mean) / c, (emax - mean) / c
        g1, g2 = np.exp(-(u1**2)), np.exp(-(u2**2))
        k = amplitude / math.sqrt(math.pi)  # d/du (N/2 erf u) = N/sqrt(pi) e^-u^2
        return {
            "amplitude": cls._erf_diff(u1, u2) / 2,
            "mean": -k * (g2 - g1) / c,
            "sigma": -k * (g2 * u2 - g1 * u1) / sigma,
        }

    @staticmethod
    def evaluate_energy_flux(
        emin: Any, emax: Any, amplitude: float, mean: float, sigma: float
    ) -> np.ndarray:
        c = math.sqrt(2) * sigma
        u1, u2 = (emin - mean) / c, (emax - mean) / c
        a = amplitude * sigma / math.sqrt(2 * math.pi)
        return a * (np.exp(-(u1**2)) - np.exp(-(u2**2))) + amplitude * mean / 2 * (
            erf(u2) - erf(u1)
        )


from .spectral_template import TemplateSpectralModel, _scale_fwd, _scale_inv  # noqa: E402,F401

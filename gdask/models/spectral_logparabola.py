"""Log-parabola spectral models: Gammapy's two (``lp``, ``lp2``) and gdask's base-10 form.

* `LogParabolaSpectralModel` (Gammapy ``LogParabolaSpectralModel``):
  :math:`\\phi_0 x^{-\\alpha - \\beta \\ln x}`, ``x = E/E_0``.
* `LogParabola2SpectralModel` (Gammapy ``LogParabola2SpectralModel``): the
  curvature is measured from its own energy scale ``escale`` :math:`E_s`,
  :math:`\\phi_0 (E/E_0)^{-\\alpha - \\beta \\ln(E/E_s)}`.
* `LogParabola10SpectralModel` (gdask only): ``beta`` multiplies
  :math:`\\log_{10} x`. Gammapy has no such model, so gdask *writes* it as a
  Gammapy ``LogParabolaSpectralModel`` with ``beta / ln 10`` (value, bounds
  and error); the gdask-only tag is still read (files of earlier gdask).

None has an analytic integral (as in Gammapy): integrals use the log-log
trapezoid of `gdask.models.spectral_base`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from gdask.errors import ConfigError

from .parameters import ParameterSpec as P
from .spectral_base import DNDE_UNIT, ENERGY_UNIT, SpectralModel

__all__ = ["LogParabolaSpectralModel", "LogParabola2SpectralModel", "LogParabola10SpectralModel"]

_AMPL = P("amplitude", 1e-12, DNDE_UNIT, interp="log")
_LN10 = math.log(10.0)


class LogParabolaSpectralModel(SpectralModel):
    r"""Log parabola, natural log: :math:`\phi_0 x^{-\alpha - \beta \ln x}`, ``x = E/E_0``."""

    tag = ("LogParabolaSpectralModel", "lp")
    _defaults = (
        _AMPL,
        P("reference", 10.0, ENERGY_UNIT, frozen=True),
        P("alpha", 2.0),
        P("beta", 1.0),
    )
    _beta_factor: ClassVar[float] = 1.0  # ln x = _beta_factor * (log used by beta)

    @classmethod
    def from_log10(cls, amplitude: Any, reference: Any, alpha: float, beta: float) -> Any:
        """Build from the log10 parametrisation (``beta_ln = beta_log10 / ln 10``)."""
        return cls(amplitude=amplitude, reference=reference, alpha=alpha, beta=beta / _LN10)

    @classmethod
    def evaluate(
        cls, energy: Any, amplitude: float, reference: float, alpha: float, beta: float
    ) -> np.ndarray:
        ln_ = np.log(energy / reference)
        return amplitude * np.exp(-ln_ * (alpha + beta * ln_ / cls._beta_factor))

    @classmethod
    def evaluate_grad(
        cls, energy: Any, amplitude: float, reference: float, alpha: float, beta: float
    ) -> dict[str, Any]:
        ln_ = np.log(energy / reference)
        c = 1.0 / cls._beta_factor
        shape = np.exp(-ln_ * (alpha + beta * ln_ * c))
        f = amplitude * shape
        return {
            "amplitude": shape,
            "reference": f * (alpha + 2.0 * beta * c * ln_) / reference,
            "alpha": -f * ln_,
            "beta": -f * ln_**2 * c,
        }


class LogParabola2SpectralModel(SpectralModel):
    r"""Log parabola with its own curvature scale (Gammapy 2.1's ``LogParabola2SpectralModel``).

    :math:`\phi_0 (E/E_0)^{-\alpha - \beta \ln(E/E_s)}`: ``reference``
    :math:`E_0` (default 10 TeV) and ``escale`` :math:`E_s` (default 1 TeV)
    are both frozen by default. With ``escale == reference`` it is
    `LogParabolaSpectralModel`.

    Examples
    --------
    >>> m = LogParabola2SpectralModel(alpha=2.3, beta=0.1, escale="1 TeV")
    >>> float(m(10.0) / m.amplitude.value)  # at E = E_0 the power is 1
    1.0
    """

    tag = ("LogParabola2SpectralModel", "lp2")
    _defaults = (
        _AMPL,
        P("reference", 10.0, ENERGY_UNIT, frozen=True),
        P("alpha", 2.0),
        P("beta", 1.0),
        P("escale", 1.0, ENERGY_UNIT, frozen=True),
    )

    @classmethod
    def from_log10(
        cls, amplitude: Any, reference: Any, alpha: float, beta: float, escale: Any
    ) -> LogParabola2SpectralModel:
        """Build from the log10 parametrisation (``beta_ln = beta_log10 / ln 10``)."""
        return cls(
            amplitude=amplitude, reference=reference, alpha=alpha, beta=beta / _LN10, escale=escale
        )

    @staticmethod
    def evaluate(
        energy: Any, amplitude: float, reference: float, alpha: float, beta: float, escale: float
    ) -> np.ndarray:
        ln0 = np.log(energy / reference)
        return amplitude * np.exp(-ln0 * (alpha + beta * np.log(energy / escale)))

    @staticmethod
    def evaluate_grad(
        energy: Any, amplitude: float, reference: float, alpha: float, beta: float, escale: float
    ) -> dict[str, Any]:
        ln0, lns = np.log(energy / reference), np.log(energy / escale)
        shape = np.exp(-ln0 * (alpha + beta * lns))
        f = amplitude * shape
        return {
            "amplitude": shape,
            "reference": f * (alpha + beta * lns) / reference,
            "alpha": -f * ln0,
            "beta": -f * ln0 * lns,
            "escale": f * beta * ln0 / escale,
        }


class LogParabola10SpectralModel(LogParabolaSpectralModel):
    r"""Log parabola with base-10 log: :math:`\phi_0 x^{-\alpha - \beta \log_{10} x}` (gdask only).

    Written in Gammapy's terms: `to_dict` gives the equivalent Gammapy
    ``LogParabolaSpectralModel`` (``beta / ln 10``), so models files stay
    readable by Gammapy; reading such a file gives a
    `LogParabolaSpectralModel` (the same spectrum).
    """

    tag = ("LogParabola10SpectralModel", "lp10")
    _beta_factor = _LN10

    def to_natural(self) -> LogParabolaSpectralModel:
        """Equivalent natural-log `LogParabolaSpectralModel` (bounds, errors, flags kept).

        Raises
        ------
        ConfigError
            If ``beta`` has a prior or a link: converting it would change
            what the prior or the linked parameters mean.
        """
        beta = self.beta.copy()
        if beta.prior is not None or beta.link:
            raise ConfigError(
                "LogParabola10SpectralModel: Gammapy has no log10 log parabola, gdask writes it "
                "as a LogParabolaSpectralModel with beta / ln 10, which would change the prior "
                "or link of 'beta'; use LogParabolaSpectralModel instead",
                field="beta",
            )
        for key in ("value", "min", "max", "error"):
            setattr(beta, key, getattr(beta, key) / _LN10)
        return LogParabolaSpectralModel(
            amplitude=self.amplitude.copy(),
            reference=self.reference.copy(),
            alpha=self.alpha.copy(),
            beta=beta,
        )

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        """Gammapy's ``LogParabolaSpectralModel`` dictionary of the same spectrum."""
        return self.to_natural().to_dict(full_output)

"""Tabulated spectral model, interpolated as Gammapy's ``TemplateSpectralModel``."""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy import units as u

from gdask.interp import locate, scale_forward, scale_inverse

from .spectral_base import DNDE_UNIT, ENERGY_UNIT, SpectralModel

__all__ = ["TemplateSpectralModel"]


def _scale_fwd(scale: str, v: Any) -> Any:
    return scale_forward(np.asarray(v, dtype=float), scale)


def _scale_inv(scale: str, v: Any) -> Any:
    return scale_inverse(v, scale)


class TemplateSpectralModel(SpectralModel):
    """Tabulated spectrum, interpolated like Gammapy's template.

    Linear interpolation of ``values_scale(values)`` (default log) against
    ``log(energy)``, linear extrapolation beyond the table, result clipped at
    zero.  No parameters; integrated numerically.

    Parameters
    ----------
    energy : Quantity or array (TeV)
        Node energies (increasing).
    values : Quantity or array
        Values at the nodes: a differential flux (converted to cm-2 s-1 TeV-1)
        or dimensionless (then the model is norm-like).
    interp_kwargs : dict, optional
        ``values_scale`` ("log", "lin", "sqrt"); ``method`` "nearest" for a single node.
    meta : dict, optional
        Free metadata (``filename`` is used by Gammapy when serialising).
    """

    tag = ("TemplateSpectralModel", "template")
    _defaults = ()

    def __init__(
        self, energy: Any, values: Any, interp_kwargs: dict | None = None, meta: dict | None = None
    ) -> None:
        super().__init__()
        e = u.Quantity(energy, ENERGY_UNIT) if not isinstance(energy, u.Quantity) else energy
        v = u.Quantity(values)
        if v.unit.is_equivalent(DNDE_UNIT):
            out_unit = DNDE_UNIT
        else:
            out_unit = v.unit.to_string()
        object.__setattr__(self, "energy", e)
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "output_unit", out_unit)
        object.__setattr__(self, "meta", dict(meta or {}))
        kw = dict(interp_kwargs or {})
        object.__setattr__(self, "interp_kwargs", kw)
        self._values_scale = kw.get("values_scale", "log")
        self._x = np.log(e.to_value(ENERGY_UNIT))
        self._y = _scale_fwd(self._values_scale, v.to_value(out_unit))

    def evaluate(self, energy: Any) -> np.ndarray:  # type: ignore[override]
        le = np.log(np.asarray(energy, dtype=float))
        if len(self._x) == 1:
            val = np.broadcast_to(self._y[0], le.shape)
        else:
            i, t = locate(self._x, le)
            val = self._y[i] * (1 - t) + self._y[i + 1] * t
        return np.clip(_scale_inv(self._values_scale, val), 0, np.inf)

    def evaluate_grad(self, energy: Any) -> dict[str, Any]:  # type: ignore[override]
        return {}

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        data = super().to_dict(full_output)
        data["spectral"]["energy"] = {
            "data": self.energy.value.tolist(),
            "unit": str(self.energy.unit),
        }
        data["spectral"]["values"] = {
            "data": self.values.value.tolist(),
            "unit": str(self.values.unit),
        }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> TemplateSpectralModel:
        data = cls._unwrap(data)
        energy = u.Quantity(data["energy"]["data"], data["energy"]["unit"])
        values = u.Quantity(data["values"]["data"], data["values"]["unit"])
        return cls(energy=energy, values=values, **kwargs)

    def __repr__(self) -> str:
        return f"TemplateSpectralModel(n_nodes={len(self._x)}, scale={self._values_scale!r})"

"""Model parameters and the flat parameter vector.

A :class:`Parameter` holds a value in the unit the user chose; the model it
belongs to fixes a *canonical unit* (e.g. TeV for energies) in which the pure
numpy ``evaluate`` functions take their arguments.  :attr:`Parameter.canonical_value`
does the conversion and :attr:`Parameter.to_canonical` is the (linear) factor,
so a gradient with respect to the canonical value ``g`` becomes a gradient with
respect to the stored value as ``g * to_canonical``.

Sharing parameters between models is done by *link labels*, never by object
identity: parameters carrying the same ``link`` string occupy one slot of the
flat vector built by :meth:`Parameters.flat_layout`.  This is what Gammapy's
models YAML writes as ``link: <label>``.
"""

from __future__ import annotations

import collections.abc
import copy
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy import units as u

__all__ = [
    "Parameter",
    "ParameterSpec",
    "Parameters",
    "FlatLayout",
    "link_parameters",
]

_SCALE_METHODS = ("scale10", "factor1", None)
_TRANSFORMS = ("lin", "log", "sqrt")


def _to_float(value: Any, unit: u.UnitBase) -> float:
    """Convert a float, Quantity or quantity string to a float in ``unit``."""
    if value is None or isinstance(value, np.ma.core.MaskedConstant):
        return math.nan
    if isinstance(value, str):
        value = u.Quantity(value)
    if isinstance(value, u.Quantity):
        return float(value.to_value(unit))
    return float(value)


@dataclass(frozen=True)
class ParameterSpec:
    """Default of one model parameter (class level).

    ``unit`` is both the default unit and the canonical unit in which the
    model's ``evaluate`` receives the value.
    """

    name: str
    value: float
    unit: str = ""
    min: float = math.nan
    max: float = math.nan
    frozen: bool = False
    is_norm: bool = False
    interp: str = "lin"
    scale_method: str | None = "scale10"
    scale_transform: str = "lin"

    def create(self) -> Parameter:
        """Build a fresh `Parameter` from this spec."""
        return Parameter(
            self.name,
            self.value,
            unit=self.unit,
            min=self.min,
            max=self.max,
            frozen=self.frozen,
            is_norm=self.is_norm,
            canonical_unit=self.unit,
            interp=self.interp,
            scale_method=self.scale_method,
            scale_transform=self.scale_transform,
        )


class Parameter:
    """One model parameter.

    Parameters
    ----------
    name : str
        Parameter name (as in Gammapy, e.g. ``"amplitude"``).
    value : float, Quantity or str
        Value; a Quantity (or string such as ``"1e-12 cm-2 s-1 TeV-1"``) also
        sets the unit.
    unit : str or Unit, optional
        Unit of ``value``, ``min``, ``max`` and ``error``.
    min, max : float, optional
        Bounds in ``unit``; NaN means unbounded.
    frozen : bool, optional
        Excluded from fits when True.
    error : float, optional
        1-sigma error in ``unit``.
    scale : float, optional
        Scale so that the minimiser sees ``factor = value / scale``.
    is_norm : bool, optional
        True for multiplicative normalisation parameters.
    prior : Prior or dict, optional
        Prior contributing to the fit statistic (see `gdask.models.priors`).
    link : str, optional
        Link label; parameters with equal labels share one slot of the flat vector.
    canonical_unit : str or Unit, optional
        Unit of the value passed to the model's ``evaluate``; defaults to ``unit``.
    interp, scale_method, scale_transform : str, optional
        Kept for Gammapy YAML compatibility (scan interpolation and scaling).
    """

    def __init__(
        self,
        name: str,
        value: float | u.Quantity | str,
        unit: str | u.UnitBase = "",
        min: float | u.Quantity | str | None = math.nan,
        max: float | u.Quantity | str | None = math.nan,
        frozen: bool = False,
        error: float = 0.0,
        scale: float = 1.0,
        is_norm: bool = False,
        prior: Any = None,
        link: str | None = None,
        canonical_unit: str | u.UnitBase | None = None,
        interp: str = "lin",
        scale_method: str | None = "scale10",
        scale_transform: str = "lin",
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"parameter name must be a string, got {type(name)}")
        self.name = name
        if isinstance(value, (u.Quantity, str)):
            q = u.Quantity(value)
            self._unit = q.unit
            self.value = float(q.value)
        else:
            self._unit = u.Unit(unit)
            self.value = float(value)
        self._canonical_unit = self._unit if canonical_unit is None else u.Unit(canonical_unit)
        self._check_unit()
        self.min = min
        self.max = max
        self.frozen = frozen
        self.error = error
        self.scale = float(scale)
        self.is_norm = bool(is_norm)
        self.link = link
        self.interp = interp
        if scale_method not in _SCALE_METHODS:
            raise ValueError(f"invalid scale_method {scale_method!r}")
        if scale_transform not in _TRANSFORMS:
            raise ValueError(f"invalid scale_transform {scale_transform!r}")
        self.scale_method = scale_method
        self.scale_transform = scale_transform
        self.prior = prior

    # ----------------------------------------------------------------- values
    @property
    def value(self) -> float:
        """Value in :attr:`unit` (float)."""
        return self._value

    @value.setter
    def value(self, val: float) -> None:
        self._value = float(val)

    @property
    def unit(self) -> u.UnitBase:
        """Unit of value, min, max and error."""
        return self._unit

    @unit.setter
    def unit(self, val: str | u.UnitBase) -> None:
        self._unit = u.Unit(val)
        self._check_unit()

    def _check_unit(self) -> None:
        if not self._unit.is_equivalent(self._canonical_unit):
            raise u.UnitConversionError(
                f"parameter {self.name!r}: unit {self._unit} is not convertible to "
                f"{self._canonical_unit}"
            )

    @property
    def canonical_unit(self) -> u.UnitBase:
        """Unit in which the owning model's ``evaluate`` expects the value."""
        return self._canonical_unit

    @property
    def to_canonical(self) -> float:
        """Factor converting a value in :attr:`unit` into :attr:`canonical_unit`."""
        if self._unit == self._canonical_unit:
            return 1.0
        return float(self._unit.to(self._canonical_unit))

    @property
    def canonical_value(self) -> float:
        """Value in :attr:`canonical_unit`."""
        return self._value * self.to_canonical

    @canonical_value.setter
    def canonical_value(self, val: float) -> None:
        self._value = float(val) / self.to_canonical

    @property
    def quantity(self) -> u.Quantity:
        """Value with unit."""
        return self._value * self._unit

    @quantity.setter
    def quantity(self, val: u.Quantity | str) -> None:
        q = u.Quantity(val)
        if not q.unit.is_equivalent(self._canonical_unit):
            raise u.UnitConversionError(
                f"parameter {self.name!r}: unit {q.unit} is not convertible to "
                f"{self._canonical_unit}"
            )
        self._unit = q.unit
        self._value = float(q.value)

    @property
    def min(self) -> float:
        """Lower bound in :attr:`unit` (NaN: none); a uniform prior's bound wins."""
        pmin = getattr(self.prior, "bounds", None)
        if pmin is not None:
            return pmin[0]
        return self._min

    @min.setter
    def min(self, val: Any) -> None:
        self._min = _to_float(val, self._unit)

    @property
    def max(self) -> float:
        """Upper bound in :attr:`unit` (NaN: none); a uniform prior's bound wins."""
        pmax = getattr(self.prior, "bounds", None)
        if pmax is not None:
            return pmax[1]
        return self._max

    @max.setter
    def max(self, val: Any) -> None:
        self._max = _to_float(val, self._unit)

    @property
    def error(self) -> float:
        """1-sigma error in :attr:`unit`."""
        return self._error

    @error.setter
    def error(self, val: Any) -> None:
        self._error = _to_float(val, self._unit)

    @property
    def frozen(self) -> bool:
        """Excluded from fits when True."""
        return self._frozen

    @frozen.setter
    def frozen(self, val: Any) -> None:
        if isinstance(val, str):
            if val not in ("True", "False", "true", "false"):
                raise TypeError(f"invalid frozen flag {val!r}")
            val = val.lower() == "true"
        if not isinstance(val, (bool, np.bool_)):
            raise TypeError(f"invalid frozen flag {val!r}")
        self._frozen = bool(val)

    @property
    def prior(self) -> Any:
        """Prior object or None."""
        return self._prior

    @prior.setter
    def prior(self, val: Any) -> None:
        if isinstance(val, dict):
            from .priors import prior_from_dict

            val = prior_from_dict(val)
        if val == "":
            val = None
        self._prior = val

    # ----------------------------------------------------------- minimiser
    @property
    def factor(self) -> float:
        """Value seen by the minimiser: ``value / scale``."""
        return self._value / self.scale

    @factor.setter
    def factor(self, val: float) -> None:
        self._value = float(val) * self.scale

    @property
    def factor_min(self) -> float:
        """Lower bound in factor space."""
        return self.min / self.scale

    @property
    def factor_max(self) -> float:
        """Upper bound in factor space."""
        return self.max / self.scale

    def autoscale(self) -> None:
        """Choose :attr:`scale` from the value (``scale10``: power of ten, ``factor1``: value)."""
        v = self._value
        if self.scale_method == "scale10" and v != 0:
            self.scale = 10.0 ** math.floor(math.log10(abs(v)))
        elif self.scale_method == "factor1" and v != 0:
            self.scale = abs(v)
        else:
            self.scale = 1.0

    # --------------------------------------------------------------- misc
    def copy(self) -> Parameter:
        """Deep copy."""
        return copy.deepcopy(self)

    def prior_stat(self) -> float:
        """Contribution of the prior to the statistic (0 without prior)."""
        if self.prior is None:
            return 0.0
        return float(self.prior.stat(self._value))

    def prior_stat_grad(self) -> float:
        """Derivative of :meth:`prior_stat` with respect to :attr:`value`."""
        if self.prior is None:
            return 0.0
        return float(self.prior.stat_grad(self._value))

    def to_dict(self) -> dict[str, Any]:
        """Gammapy-YAML dictionary (``link`` and ``prior`` only when set)."""
        out: dict[str, Any] = {
            "name": self.name,
            "value": self._value,
            "unit": self._unit.to_string("fits"),
            "error": self._error,
            "min": self._min,
            "max": self._max,
            "frozen": self._frozen,
            "interp": self.interp,
            "scale_method": self.scale_method,
            "scale_transform": self.scale_transform,
        }
        if self.link is not None:
            out["link"] = self.link
        if self.prior is not None:
            out["prior"] = self.prior.to_dict()["prior"]
        return out

    def update_from_dict(self, data: dict[str, Any]) -> None:
        """Update from a Gammapy-YAML parameter dictionary (unknown keys ignored)."""
        data = dict(data)
        if "unit" in data:
            self.unit = data["unit"] or ""
        if "value" in data:
            self.value = data["value"]
        for key in (
            "min",
            "max",
            "error",
            "frozen",
            "interp",
            "scale_method",
            "scale_transform",
            "link",
            "prior",
        ):
            if key in data:
                setattr(self, key, data[key])

    def __repr__(self) -> str:
        extra = f", link={self.link!r}" if self.link else ""
        return (
            f"Parameter(name={self.name!r}, value={self._value!r}, unit={self._unit.to_string()!r}, "
            f"min={self.min!r}, max={self.max!r}, frozen={self._frozen!r}{extra})"
        )


@dataclass(frozen=True)
class FlatLayout:
    """Mapping of a parameter list onto a flat vector of unique parameters.

    Attributes
    ----------
    index : ndarray of int
        For each parameter of the list, its slot in the unique vector.
    first : ndarray of int
        For each slot, the position (in the list) of its representative parameter.
    free : ndarray of bool
        For each slot, whether it is free (representative not frozen).
    """

    index: np.ndarray
    first: np.ndarray
    free: np.ndarray

    @property
    def n_unique(self) -> int:
        """Number of unique slots."""
        return len(self.first)

    def reduce_grad(self, grad: np.ndarray) -> np.ndarray:
        """Sum a per-parameter gradient (length of the list) into unique slots."""
        out = np.zeros(self.n_unique)
        np.add.at(out, self.index, grad)
        return out

    def expand(self, unique_values: np.ndarray) -> np.ndarray:
        """Per-parameter values from unique-slot values."""
        return np.asarray(unique_values)[self.index]


class Parameters(collections.abc.Sequence):
    """Ordered list of `Parameter` with access by name, index or boolean mask.

    Names need not be unique (a compound model holds two ``index``);
    string access returns the first match.
    """

    def __init__(self, parameters: Iterable[Parameter] | None = None) -> None:
        self._parameters: list[Parameter] = list(parameters or [])

    # ------------------------------------------------------------ sequence
    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters)

    def __getitem__(self, key: int | str | slice | np.ndarray) -> Any:
        if isinstance(key, np.ndarray) and key.dtype == bool:
            return Parameters(p for p, k in zip(self._parameters, key, strict=False) if k)
        if isinstance(key, slice):
            return Parameters(self._parameters[key])
        return self._parameters[self.index(key)]

    def __add__(self, other: Parameters) -> Parameters:
        return Parameters(list(self) + list(other))

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self.names
        return any(p is item for p in self._parameters)

    def index(self, key: int | str | Parameter) -> int:  # type: ignore[override]
        """Position of a parameter given by index, name or object."""
        if isinstance(key, (int, np.integer)):
            return int(key)
        if isinstance(key, str):
            for i, p in enumerate(self._parameters):
                if p.name == key:
                    return i
            raise KeyError(f"no parameter {key!r}; have {self.names}")
        if isinstance(key, Parameter):
            for i, p in enumerate(self._parameters):
                if p is key:
                    return i
            raise KeyError(f"parameter {key.name!r} not in list")
        raise TypeError(f"invalid key type {type(key)}")

    @classmethod
    def from_stack(cls, lists: Sequence[Iterable[Parameter]]) -> Parameters:
        """Concatenate several parameter lists."""
        return cls(p for pars in lists for p in pars)

    def copy(self) -> Parameters:
        """Deep copy."""
        return copy.deepcopy(self)

    # ------------------------------------------------------------- vectors
    @property
    def names(self) -> list[str]:
        """Parameter names in order."""
        return [p.name for p in self._parameters]

    @property
    def free_parameters(self) -> Parameters:
        """Parameters that are not frozen."""
        return Parameters(p for p in self._parameters if not p.frozen)

    @property
    def value(self) -> np.ndarray:
        """Values in each parameter's unit."""
        return np.array([p.value for p in self._parameters], dtype=float)

    @value.setter
    def value(self, values: Sequence[float]) -> None:
        if len(values) != len(self):
            raise ValueError(f"expected {len(self)} values, got {len(values)}")
        for p, v in zip(self._parameters, values, strict=False):
            p.value = v

    @property
    def canonical_value(self) -> np.ndarray:
        """Values in canonical units."""
        return np.array([p.canonical_value for p in self._parameters], dtype=float)

    @property
    def to_canonical(self) -> np.ndarray:
        """Per-parameter factors from stored unit to canonical unit."""
        return np.array([p.to_canonical for p in self._parameters], dtype=float)

    @property
    def min(self) -> np.ndarray:
        """Lower bounds (NaN: none)."""
        return np.array([p.min for p in self._parameters], dtype=float)

    @property
    def max(self) -> np.ndarray:
        """Upper bounds (NaN: none)."""
        return np.array([p.max for p in self._parameters], dtype=float)

    @property
    def frozen(self) -> np.ndarray:
        """Frozen flags."""
        return np.array([p.frozen for p in self._parameters], dtype=bool)

    @property
    def error(self) -> np.ndarray:
        """Errors."""
        return np.array([p.error for p in self._parameters], dtype=float)

    def freeze_all(self) -> None:
        """Freeze every parameter."""
        for p in self._parameters:
            p.frozen = True

    def unfreeze_all(self) -> None:
        """Free every parameter."""
        for p in self._parameters:
            p.frozen = False

    def autoscale(self) -> None:
        """Autoscale every parameter (see `Parameter.autoscale`)."""
        for p in self._parameters:
            p.autoscale()

    # --------------------------------------------------------------- links
    @property
    def links(self) -> dict[str, list[int]]:
        """Link label -> positions of the parameters carrying it."""
        out: dict[str, list[int]] = {}
        for i, p in enumerate(self._parameters):
            if p.link is not None:
                out.setdefault(p.link, []).append(i)
        return out

    def flat_layout(self) -> FlatLayout:
        """Slots of the flat vector: linked parameters share one slot.

        The representative of a slot is its first parameter (its value, bounds,
        frozen flag and unit define the slot).
        """
        index = np.empty(len(self), dtype=int)
        first: list[int] = []
        seen: dict[str, int] = {}
        for i, p in enumerate(self._parameters):
            if p.link is not None and p.link in seen:
                index[i] = seen[p.link]
                continue
            slot = len(first)
            first.append(i)
            index[i] = slot
            if p.link is not None:
                seen[p.link] = slot
        first_arr = np.array(first, dtype=int)
        free = np.array([not self._parameters[i].frozen for i in first], dtype=bool)
        return FlatLayout(index=index, first=first_arr, free=free)

    @property
    def unique_parameters(self) -> Parameters:
        """Representatives of the slots of :meth:`flat_layout`."""
        lay = self.flat_layout()
        return Parameters(self._parameters[i] for i in lay.first)

    @property
    def free_unique_parameters(self) -> Parameters:
        """Representatives of the free slots."""
        return self.unique_parameters.free_parameters

    def set_unique_values(self, values: Sequence[float], free_only: bool = False) -> None:
        """Set values from a unique-slot vector, propagating to linked parameters.

        Values are in the unit of each slot's representative; linked members
        with a different unit are converted.
        """
        lay = self.flat_layout()
        slots = np.flatnonzero(lay.free) if free_only else np.arange(lay.n_unique)
        if len(values) != len(slots):
            raise ValueError(f"expected {len(slots)} values, got {len(values)}")
        full = np.full(lay.n_unique, np.nan)
        full[slots] = values
        for i, p in enumerate(self._parameters):
            v = full[lay.index[i]]
            if np.isnan(v):
                continue
            rep = self._parameters[lay.first[lay.index[i]]]
            p.value = v if rep.unit == p.unit else v * float(rep.unit.to(p.unit))

    def sync_links(self) -> None:
        """Copy each slot representative's value and frozen flag to linked members."""
        lay = self.flat_layout()
        vals = np.array([self._parameters[i].value for i in lay.first])
        self.set_unique_values(vals)
        for i, p in enumerate(self._parameters):
            p.frozen = self._parameters[lay.first[lay.index[i]]].frozen

    # ---------------------------------------------------------------- prior
    def prior_stat_sum(self) -> float:
        """Sum of the prior contributions of the unique parameters."""
        return float(sum(p.prior_stat() for p in self.unique_parameters))

    # ------------------------------------------------------------------ io
    def to_dict(self) -> list[dict[str, Any]]:
        """List of Gammapy-YAML parameter dictionaries."""
        return [p.to_dict() for p in self._parameters]

    def __repr__(self) -> str:
        lines = [
            f"{p.name:>16s} = {p.value:.6g} {p.unit.to_string()}"
            + (" (frozen)" if p.frozen else "")
            + (f" [link {p.link}]" if p.link else "")
            for p in self._parameters
        ]
        return "Parameters(\n" + "\n".join(lines) + "\n)"


def link_parameters(*parameters: Parameter, label: str | None = None) -> str:
    """Make parameters share one slot of the flat vector.

    All get the same link label (``label``, an existing label of the first one,
    or ``"<name>@<id>"``) and take the first one's value, bounds and frozen flag.

    Returns
    -------
    label : str
        The link label used.
    """
    if not parameters:
        raise ValueError("nothing to link")
    ref = parameters[0]
    label = label or ref.link or f"{ref.name}@{_new_label_id()}"
    for p in parameters:
        p.link = label
        if p is ref:
            continue
        if not ref.unit.is_equivalent(p.canonical_unit):
            raise u.UnitConversionError(f"cannot link {ref.name!r} ({ref.unit}) and {p.name!r}")
        p.quantity = ref.quantity
        p.min, p.max, p.frozen = ref.min * ref.unit, ref.max * ref.unit, ref.frozen
    return label


def _new_label_id() -> str:
    import uuid

    return uuid.uuid4().hex[:8]

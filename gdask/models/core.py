"""Model base class and the tag registry.

Every model is a pure numpy function of coordinates and parameter values
given as floats in the model's canonical units.  Subclasses declare:

``tag``
    ``(long_name, short_name)`` as in Gammapy's YAML ``type`` field.
``type``
    ``"spectral"``, ``"spatial"``, ``"temporal"`` or ``"prior"`` -- the key of
    the registry and of the YAML wrapper (``{type: {...}}``).
``_defaults``
    tuple of :class:`~gdask.models.parameters.ParameterSpec`; each spec's unit is
    the canonical unit of that parameter.
``input_units`` / ``output_unit``
    canonical units of the coordinates passed to ``evaluate`` and of its result.
``evaluate(*x, **pars)``
    staticmethod (or classmethod): value from coordinates and canonical floats.
``evaluate_grad(*x, **pars)``
    staticmethod: ``{parameter name: d value / d canonical parameter}``, each
    broadcastable to the value's shape.

The likelihood's hot loop uses the positional forms :meth:`ModelBase.evaluate_theta`
and :meth:`ModelBase.evaluate_grad_theta`, where ``theta`` is aligned with
``model.parameters`` (canonical units).  Models whose parameter names are not
unique (compound models) override those two.

Subclasses with keyword-only constructor arguments besides parameters (e.g.
a template's table) override ``to_dict`` / ``from_dict``.
"""

from __future__ import annotations

import copy
import logging
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from astropy import units as u

from gdask.errors import ConfigError, GdaskError

from .parameters import Parameter, Parameters, ParameterSpec

__all__ = [
    "ModelBase",
    "MODEL_REGISTRY",
    "register_model",
    "get_model_class",
    "model_from_dict",
    "parameter_items",
    "update_parameter",
]

log = logging.getLogger(__name__)

#: ``{model type: {tag: class}}``; filled by :meth:`ModelBase.__init_subclass__`.
MODEL_REGISTRY: dict[str, dict[str, type]] = {}

_DEFAULT_ONLY_KEYS = ("min", "max", "error", "interp", "scale_method", "scale_transform")


def register_model(cls: type) -> type:
    """Register ``cls`` under each of its tags for its ``type`` (usable as decorator)."""
    mtype = getattr(cls, "type", None)
    tags = getattr(cls, "tag", ())
    if mtype is None or not tags:
        return cls
    reg = MODEL_REGISTRY.setdefault(mtype, {})
    for tag in tags:
        reg[tag] = cls
    return cls


def get_model_class(model_type: str, tag: str) -> type:
    """Class registered for ``tag`` among models of ``model_type``.

    Raises
    ------
    KeyError
        If the tag is unknown (the message lists the known tags).
    """
    reg = MODEL_REGISTRY.get(model_type, {})
    if tag not in reg:
        known = sorted({c.tag[0] for c in reg.values()})
        raise KeyError(f"unknown {model_type} model type {tag!r}; known: {known}")
    return reg[tag]


def model_from_dict(data: Mapping[str, Any], model_type: str | None = None) -> ModelBase:
    """Build a model from a Gammapy-YAML dictionary (see `gdask.models.io.model_from_dict`).

    ``data`` is either ``{model_type: {"type": tag, ...}}`` or the inner
    dictionary together with ``model_type``.
    """
    from .io import model_from_dict as _model_from_dict

    return _model_from_dict(data, model_type)


def _as_float_array(x: Any, unit: str | None) -> np.ndarray:
    if isinstance(x, u.Quantity):
        return x.to_value(unit if unit is not None else u.dimensionless_unscaled)
    return np.asarray(x, dtype=float)


_NUMBER_KEYS = ("value", "min", "max", "error")


def parameter_items(
    items: Any, owner: str, names: Sequence[str] | None = None
) -> dict[str, Mapping[str, Any]]:
    """The YAML ``parameters`` list of a model as ``{name: item}``, checked.

    Parameters
    ----------
    items : list of dict
        ``[{name, value, unit, min, max, frozen, ...}, ...]``.
    owner : str
        Model class name, for the messages.
    names : list of str, optional
        The model's parameter names; any other name is an error.

    Raises
    ------
    ConfigError
        Not a list, an item that is not a mapping or has no name, a name
        given twice or not one of ``names`` (``field`` is the parameter).

    Examples
    --------
    >>> parameter_items([{"name": "index", "value": 2.0}], "PowerLawSpectralModel")
    {'index': {'name': 'index', 'value': 2.0}}
    """
    if items is None:
        return {}
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise ConfigError(
            f"{owner}: 'parameters' must be a list of {{name, value, ...}}, got {items!r}",
            field="parameters",
        )
    out: dict[str, Mapping[str, Any]] = {}
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"{owner}: parameter #{i + 1} is not a {{name: ..., value: ...}} mapping: {item!r}",
                field=f"parameters[{i}]",
            )
        if name in out:
            raise ConfigError(f"{owner}: parameter {name!r} is given twice", field=name)
        if names is not None and name not in names:
            raise ConfigError(
                f"{owner}: unknown parameter {name!r} (its parameters are: {', '.join(names)})",
                field=name,
            )
        out[name] = item
    return out


def update_parameter(par: Parameter, item: Mapping[str, Any], owner: str) -> None:
    """Update ``par`` from its YAML item and check the result.

    Raises
    ------
    ConfigError
        A value of the wrong type (``value``/``min``/``max``/``error`` not a
        number or quantity string, ``frozen`` not a boolean), a unit not
        convertible to the parameter's, ``min > max``, or a value outside
        ``[min, max]``; ``field`` is the parameter (``name.key`` for a key).

    Examples
    --------
    >>> from gdask.models import Parameter
    >>> p = Parameter("index", 2.0)
    >>> update_parameter(p, {"name": "index", "value": 2.5, "min": 1, "max": 4}, "PL")
    >>> p.value
    2.5
    """
    name = par.name
    for key in _NUMBER_KEYS:
        v = item.get(key)
        if v is not None and (
            isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, str, u.Quantity))
        ):
            raise ConfigError(
                f"{owner}: parameter {name!r}: {key} must be a number, got {v!r}",
                field=f"{name}.{key}",
            )
    frozen = item.get("frozen")
    if frozen is not None and not (
        isinstance(frozen, (bool, np.bool_)) or frozen in ("True", "False", "true", "false")
    ):
        raise ConfigError(
            f"{owner}: parameter {name!r}: frozen must be true or false, got {frozen!r}",
            field=f"{name}.frozen",
        )
    try:
        par.update_from_dict(dict(item))
    except GdaskError as exc:  # from the prior
        raise ConfigError(
            f"{owner}: parameter {name!r}: prior: {exc.message}", field=f"{name}.prior"
        ) from exc
    except (ValueError, TypeError, KeyError, u.UnitsError) as exc:
        raise ConfigError(f"{owner}: parameter {name!r}: {exc}", field=name) from exc
    lo, hi, value = par.min, par.max, par.value
    if not math.isfinite(value):
        raise ConfigError(f"{owner}: parameter {name!r}: value {value} is not finite", field=name)
    if not math.isnan(lo) and not math.isnan(hi) and lo > hi:
        raise ConfigError(f"{owner}: parameter {name!r}: min {lo:g} > max {hi:g}", field=name)
    if (not math.isnan(lo) and value < lo) or (not math.isnan(hi) and value > hi):
        raise ConfigError(
            f"{owner}: parameter {name!r}: value {value:g} is outside its bounds [{lo:g}, {hi:g}]",
            field=name,
        )


class ModelBase:
    """Base class of all gdask models.

    Parameters
    ----------
    **kwargs
        Parameter values by name: a float (in the default unit), a Quantity or
        quantity string, or a `Parameter` (taken as is).
    """

    tag: ClassVar[tuple[str, ...]] = ()
    type: ClassVar[str | None] = None
    #: True for a model Gammapy 2.1 cannot read (listed in docs/models.md; writing it warns)
    gdask_only: ClassVar[bool] = False
    _defaults: ClassVar[tuple[ParameterSpec, ...]] = ()
    input_units: ClassVar[tuple[str, ...]] = ()
    output_unit: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "tag" in cls.__dict__:
            register_model(cls)

    def __init__(self, **kwargs: Any) -> None:
        names = [s.name for s in self._defaults]
        unknown = set(kwargs) - set(names)
        if unknown:
            raise NameError(f"{type(self).__name__}: unknown parameter(s) {sorted(unknown)}")
        pars = []
        for spec in self._defaults:
            pars.append(self._make_parameter(spec, kwargs.get(spec.name)))
        object.__setattr__(self, "_parameters", Parameters(pars))

    @staticmethod
    def _make_parameter(spec: ParameterSpec, value: Any) -> Parameter:
        if isinstance(value, Parameter):
            if not value.unit.is_equivalent(spec.unit):
                raise u.UnitConversionError(
                    f"parameter {spec.name!r}: unit {value.unit} not convertible to {spec.unit}"
                )
            value._canonical_unit = u.Unit(spec.unit)
            value.is_norm = spec.is_norm
            return value
        par = spec.create()
        if value is not None:
            if isinstance(value, (u.Quantity, str)):
                par.quantity = u.Quantity(value)
            else:
                par.value = float(value)
        return par

    # ----------------------------------------------------------- parameters
    @property
    def parameters(self) -> Parameters:
        """The model's parameters, in declaration order."""
        return self._parameters

    @classmethod
    def default_parameters(cls) -> Parameters:
        """Fresh parameters with the class defaults."""
        return Parameters(s.create() for s in cls._defaults)

    @property
    def canonical_units(self) -> dict[str, str]:
        """Canonical unit of each parameter."""
        return {p.name: p.canonical_unit.to_string() for p in self.parameters}

    def __getattr__(self, name: str) -> Parameter:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            pars = object.__getattribute__(self, "_parameters")
        except AttributeError:
            raise AttributeError(name) from None
        for p in pars:
            if p.name == name:
                return p
        raise AttributeError(f"{type(self).__name__} has no attribute or parameter {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        pars = self.__dict__.get("_parameters")
        if (
            pars is not None
            and not name.startswith("_")
            and name in pars.names
            and name not in type(self).__dict__
        ):
            idx = pars.index(name)
            if isinstance(value, Parameter):
                spec = {s.name: s for s in self._defaults}.get(name)
                if spec is not None:
                    value = self._make_parameter(spec, value)
                pars._parameters[idx] = value
            elif isinstance(value, (u.Quantity, str)):
                pars[idx].quantity = u.Quantity(value)
            else:
                pars[idx].value = float(value)
            return
        object.__setattr__(self, name, value)

    def canonical_pars(self) -> dict[str, float]:
        """Current parameter values in canonical units, by name."""
        return {p.name: p.canonical_value for p in self.parameters}

    @property
    def frozen(self) -> bool:
        """True if every parameter is frozen."""
        return bool(np.all(self.parameters.frozen))

    def freeze(self) -> None:
        """Freeze all parameters."""
        self.parameters.freeze_all()

    def unfreeze(self) -> None:
        """Restore the default frozen flags."""
        specs = {s.name: s for s in self._defaults}
        for p in self.parameters:
            p.frozen = specs[p.name].frozen if p.name in specs else False

    # ------------------------------------------------------------ evaluation
    @staticmethod
    def evaluate(*x: Any, **pars: Any) -> np.ndarray:
        """Model value from coordinates and canonical parameter values."""
        raise NotImplementedError

    @staticmethod
    def evaluate_grad(*x: Any, **pars: Any) -> dict[str, np.ndarray]:
        """Derivative of :meth:`evaluate` with respect to each canonical parameter."""
        raise NotImplementedError

    def _pars_from_theta(self, theta: Sequence[float]) -> dict[str, float]:
        names = self.parameters.names
        if len(theta) != len(names):
            raise ValueError(f"theta has {len(theta)} values, model has {len(names)} parameters")
        return dict(zip(names, (float(t) for t in theta), strict=False))

    def evaluate_theta(self, *x: Any, theta: Sequence[float]) -> np.ndarray:
        """Value with parameters given positionally (canonical, aligned with `parameters`)."""
        return self.evaluate(*x, **self._pars_from_theta(theta))

    def evaluate_grad_theta(self, *x: Any, theta: Sequence[float]) -> np.ndarray:
        """Gradient, shape ``(n_parameters,) + value shape``, aligned with `parameters`."""
        pars = self._pars_from_theta(theta)
        grads = self.evaluate_grad(*x, **pars)
        return _stack_grads([grads[n] for n in self.parameters.names], x)

    def _input(self, x: Sequence[Any]) -> list[np.ndarray]:
        units = self.input_units or (None,) * len(x)
        return [_as_float_array(xi, un) for xi, un in zip(x, units, strict=False)]

    def __call__(self, *x: Any) -> np.ndarray:
        """Value at the current parameters; Quantities are converted to `input_units`.

        Returns a float array in `output_unit`.
        """
        return self.evaluate(*self._input(x), **self.canonical_pars())

    def gradient(self, *x: Any) -> dict[str, np.ndarray]:
        """Gradient at the current parameters with respect to each *stored* value.

        Unlike :meth:`evaluate_grad` the derivatives are per unit of each
        parameter's own unit (canonical derivative times `Parameter.to_canonical`).
        """
        xs = self._input(x)
        g = self.evaluate_grad_theta(*xs, theta=self.parameters.canonical_value)
        return {p.name: gi * p.to_canonical for p, gi in zip(self.parameters, g, strict=False)}

    # -------------------------------------------------------------------- io
    def copy(self) -> ModelBase:
        """Deep copy."""
        return copy.deepcopy(self)

    def _parameters_to_dict(self, full_output: bool = False) -> list[dict[str, Any]]:
        specs = {s.name: s for s in self._defaults}
        out = []
        for par in self.parameters:
            d = par.to_dict()
            spec = specs.get(par.name)
            if not full_output and spec is not None:
                init = spec.create().to_dict()
                for key in _DEFAULT_ONLY_KEYS:
                    a, b = d[key], init[key]
                    if a == b or (
                        isinstance(a, float)
                        and isinstance(b, float)
                        and np.isnan(a)
                        and np.isnan(b)
                    ):
                        del d[key]
                if d["frozen"] == init["frozen"]:
                    del d["frozen"]
                if init["unit"] == "" and d["unit"] == "":
                    del d["unit"]
            out.append(d)
        return out

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        """Gammapy-YAML dictionary ``{type: {"type": tag, "parameters": [...]}}``."""
        data = {"type": self.tag[0], "parameters": self._parameters_to_dict(full_output)}
        return {self.type: data} if self.type else data

    @classmethod
    def _unwrap(cls, data: Mapping[str, Any]) -> Mapping[str, Any]:
        if cls.type is not None and cls.type in data and "type" not in data:
            data = data[cls.type]
        if data.get("type") not in cls.tag:
            raise ValueError(f"invalid model type {data.get('type')!r} for {cls.__name__}")
        return data

    @classmethod
    def _parameters_from_dict(
        cls, items: Sequence[Mapping[str, Any]], defaults: Sequence[ParameterSpec]
    ) -> dict[str, Parameter]:
        """Parameters from their YAML items, checked (see `update_parameter`).

        Raises
        ------
        ConfigError
            An item without a name, a duplicated or unknown name (a misspelt
            parameter would otherwise be dropped with its value and bounds),
            or a bad value (see `update_parameter`); ``field`` is the parameter.
        """
        names = [spec.name for spec in defaults]
        by_name = parameter_items(items, cls.__name__, names)
        out = {}
        for spec in defaults:
            par = spec.create()
            if spec.name in by_name:
                update_parameter(par, by_name[spec.name], cls.__name__)
            else:
                log.warning(
                    "parameter %r not in model dictionary, using default %s %s",
                    spec.name,
                    spec.value,
                    spec.unit,
                )
            out[spec.name] = par
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **kwargs: Any) -> ModelBase:
        """Build from a Gammapy-YAML dictionary (wrapped or not)."""
        data = cls._unwrap(data)
        pars = cls._parameters_from_dict(data.get("parameters", []), cls._defaults)
        return cls(**pars, **kwargs)

    def __repr__(self) -> str:
        body = ", ".join(
            f"{p.name}={p.value:.4g}" + (f" {p.unit}" if p.unit.to_string() else "")
            for p in self.parameters
        )
        return f"{type(self).__name__}({body})"


def _stack_grads(grads: Sequence[Any], x: Sequence[Any]) -> np.ndarray:
    """Stack gradients broadcast to a common shape (that of the inputs and grads)."""
    arrays = [np.asarray(g, dtype=float) for g in grads]
    shape = (
        np.broadcast_shapes(*(np.shape(xi) for xi in x), *(a.shape for a in arrays))
        if arrays or x
        else ()
    )
    if not arrays:
        return np.zeros((0,) + shape)
    return np.stack([np.broadcast_to(a, shape) for a in arrays])

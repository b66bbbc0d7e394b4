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
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from astropy import units as u

from .parameters import Parameter, Parameters, ParameterSpec

__all__ = [
    "ModelBase",
    "MODEL_REGISTRY",
    "register_model",
    "get_model_class",
    "model_from_dict",
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
    """Build a model from a Gammapy-YAML dictionary.

    ``data`` is either ``{model_type: {"type": tag, ...}}`` or the inner
    dictionary together with ``model_type``.
    """
    if model_type is None:
        if len(data) != 1:
            raise ValueError(
                "model dictionary needs a single key (spectral, spatial...) "
                "or an explicit model_type"
            )
        model_type, data = next(iter(data.items()))
    cls = get_model_class(model_type, data["type"])
    return cls.from_dict(data)


def _as_float_array(x: Any, unit: str | None) -> np.ndarray:
    if isinstance(x, u.Quantity):
        return x.to_value(unit if unit is not None else u.dimensionless_unscaled)
    return np.asarray(x, dtype=float)


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
    def evaluate(*x: Any, **pars: float) -> np.ndarray:
        """Model value from coordinates and canonical parameter values."""
        raise NotImplementedError

    @staticmethod
    def evaluate_grad(*x: Any, **pars: float) -> dict[str, np.ndarray]:
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

    @staticmethod
    def _parameters_from_dict(
        items: Sequence[Mapping[str, Any]], defaults: Sequence[ParameterSpec]
    ) -> dict[str, Parameter]:
        by_name = {d["name"]: d for d in items}
        out = {}
        for spec in defaults:
            par = spec.create()
            if spec.name in by_name:
                par.update_from_dict(by_name[spec.name])
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

"""Gammapy-compatible models YAML: text <-> dictionaries <-> model objects.

Layout (Gammapy 2.1)::

    components:
    -   name: Crab
        type: SkyModel
        spectral: {type: <tag>, parameters: [{name, value, unit, min, max,
                                              frozen, error, link, prior}, ...]}
        spatial:  {type: <tag>, frame: icrs, parameters: [...]}
        temporal: {type: <tag>, parameters: [...]}
        datasets_names: [...]
    -   type: FoVBackgroundModel
        datasets_names: [dataset]
        spectral: {type: PowerLawNormSpectralModel, parameters: [...]}
    covariance: <stem>_covariance.dat

Component models are found through `gdask.models.core.MODEL_REGISTRY`,
keyed by type ("spectral", "spatial", "temporal", "prior") and tag.  Spatial
and temporal classes plug in simply by subclassing `ModelBase` with ``type``
and ``tag`` set and being imported: :func:`load_plugins` imports the optional
``gdask.models.spatial`` and ``gdask.models.temporal`` modules.  Top-level
components (SkyModel, FoVBackgroundModel, later TemplateNPredModel) register
in :data:`COMPONENT_REGISTRY` by their ``type`` string.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from astropy import units as u

from gdask.errors import ConfigError, GdaskError

from .core import MODEL_REGISTRY, ModelBase, get_model_class

__all__ = [
    "COMPONENT_REGISTRY",
    "YAML_FORMAT",
    "register_component",
    "load_plugins",
    "to_yaml",
    "from_yaml",
    "read_yaml",
    "read_models_file",
    "parse_models_yaml",
    "GAMMAPY_ONLY",
    "write_yaml",
    "model_from_dict",
    "model_to_dict",
]

#: yaml.safe_dump options used by Gammapy
YAML_FORMAT: dict[str, Any] = dict(sort_keys=False, indent=4, width=80, default_flow_style=False)

#: top-level component ``type`` -> class with ``from_dict``/``to_dict``
COMPONENT_REGISTRY: dict[str, type] = {}

_PLUGINS = ("gdask.models.spatial", "gdask.models.temporal")


def register_component(cls: type) -> type:
    """Register a top-level component class under ``cls.tag`` (str or tuple)."""
    tags = cls.tag if isinstance(cls.tag, (tuple, list)) else (cls.tag,)
    for t in tags:
        COMPONENT_REGISTRY[t] = cls
    return cls


def load_plugins() -> None:
    """Import optional model modules so their classes register (missing ones are skipped)."""
    for name in _PLUGINS:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def _clean(obj: Any) -> Any:
    """Convert numpy scalars/arrays to plain Python for safe_dump."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


def to_yaml(data: dict[str, Any]) -> str:
    """Dictionary to YAML text with Gammapy's formatting."""
    return yaml.safe_dump(_clean(data), **YAML_FORMAT)


def from_yaml(text: str) -> dict[str, Any]:
    """YAML text to dictionary (a Gammapy ``checksum`` entry is dropped)."""
    data = yaml.safe_load(text) or {}
    data.pop("checksum", None)
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file into a dictionary."""
    return from_yaml(Path(path).read_text())


def read_models_file(path: str | Path) -> dict[str, Any]:
    """Read a models YAML file into its dictionary, checking its layout.

    Raises
    ------
    ConfigError
        The file is missing or unreadable, or `parse_models_yaml` fails;
        ``file`` is the path.

    Examples
    --------
    >>> read_models_file("models.yaml")["components"][0]["name"]  # doctest: +SKIP
    'crab'
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError("models file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the models file: {exc}", file=str(path)) from exc
    return parse_models_yaml(text, file=str(path))


def parse_models_yaml(text: str, file: str | None = None) -> dict[str, Any]:
    """Models YAML text to its dictionary, checking its layout (a ``checksum`` is dropped).

    Raises
    ------
    ConfigError
        Not valid YAML (the message gives the line), or not a models file:
        no top-level ``components`` list, an empty one, or a component that
        is not a mapping.

    Examples
    --------
    >>> parse_models_yaml("components: [{name: a, type: SkyModel}]")["components"][0]["name"]
    'a'
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"malformed YAML{where}: {problem}", file=file) from exc
    if not isinstance(data, dict) or "components" not in data:
        found = (
            f"top-level keys: {', '.join(map(str, data))}"
            if isinstance(data, dict)
            else f"a {type(data).__name__}"
        )
        raise ConfigError(
            f"not a models file: no top-level 'components' list ({found})",
            file=file,
            field="components",
        )
    comps = data["components"]
    if not isinstance(comps, list) or not comps:
        raise ConfigError(
            "the models file has no components (need a non-empty list of SkyModel / "
            "FoVBackgroundModel mappings)",
            file=file,
            field="components",
        )
    for i, comp in enumerate(comps):
        if not isinstance(comp, dict):
            raise ConfigError(
                f"component #{i + 1} is not a mapping {{name, type, spectral, ...}}: {comp!r}",
                file=file,
                field=f"components[{i}]",
            )
    data.pop("checksum", None)
    return data


def write_yaml(data: dict[str, Any], path: str | Path, overwrite: bool = False) -> None:
    """Write a dictionary as YAML."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"file exists already: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(data))


#: Gammapy 2.1 model tags gdask does not implement, for a message in Gammapy's terms
GAMMAPY_ONLY: dict[str, tuple[str, ...]] = {
    "spectral": (
        "EBLAbsorptionNormSpectralModel",
        "NaimaSpectralModel",
        "TemplateNDSpectralModel",
        "ebl-norm",
        "naima",
        "templateND",
    ),
    "spatial": ("PiecewiseNormSpatialModel", "TemplateNDSpatialModel", "piecewise-norm"),
    "temporal": (
        "GeneralizedGaussianTemporalModel",
        "TemplatePhaseCurveTemporalModel",
        "gengauss",
        "template-phase",
    ),
}


def _model_class(model_type: str, tag: Any) -> type:
    try:
        return get_model_class(model_type, tag)
    except KeyError:
        load_plugins()
    try:
        return get_model_class(model_type, tag)
    except KeyError:
        known = sorted({c.tag[0] for c in MODEL_REGISTRY.get(model_type, {}).values()})
        what = (
            "a Gammapy 2.1 model that gdask does not implement"
            if tag in GAMMAPY_ONLY.get(model_type, ())
            else "not a model type of Gammapy 2.1 or gdask"
        )
        raise ConfigError(
            f"unknown {model_type} model type {tag!r}: {what} (gdask reads: {', '.join(known)})",
            field=f"{model_type}.type",
        ) from None


def model_from_dict(data: dict[str, Any], model_type: str | None = None) -> ModelBase:
    """Component model (spectral, spatial, temporal, prior) from its dictionary.

    ``data`` is ``{model_type: {...}}`` or the inner dictionary with ``model_type``.

    Raises
    ------
    ConfigError
        An unknown model type, or a bad parameter; ``field`` is
        ``<model_type>.<parameter>`` (or ``<model_type>.type``).
    """
    if model_type is None:
        if not isinstance(data, Mapping) or len(data) != 1:
            raise ConfigError(
                "a model dictionary needs a single key (spectral, spatial, ...) "
                f"or an explicit model type, got {data!r}"
            )
        model_type, data = next(iter(data.items()))
    if not isinstance(data, Mapping) or "type" not in data:
        raise ConfigError(
            f"the {model_type} model must be a mapping {{type: ..., parameters: [...]}}, "
            f"got {data!r}",
            field=model_type,
        )
    cls = _model_class(model_type, data["type"])
    try:
        return cls.from_dict(data)
    except GdaskError as exc:
        field = model_type if exc.field is None else f"{model_type}.{exc.field}"
        raise ConfigError(exc.message, file=exc.file, field=field) from exc
    except KeyError as exc:
        raise ConfigError(f"{cls.__name__}: missing key {exc.args[0]!r}", field=model_type) from exc
    except OSError as exc:  # a template's file
        raise ConfigError(f"{cls.__name__}: cannot read its file: {exc}", field=model_type) from exc
    except (ValueError, TypeError, u.UnitsError) as exc:
        text = str(exc)
        prefix = "" if text.startswith(cls.__name__) else f"{cls.__name__}: "
        raise ConfigError(prefix + text, field=model_type) from exc


def model_to_dict(model: ModelBase, full_output: bool = False) -> dict[str, Any]:
    """``{model.type: {...}}`` dictionary of a component model."""
    return model.to_dict(full_output)


def nan_equal(a: float, b: float) -> bool:
    """Equality treating two NaNs as equal."""
    return a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )

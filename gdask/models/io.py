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
from pathlib import Path
from typing import Any

import yaml

from .core import ModelBase, get_model_class

__all__ = [
    "COMPONENT_REGISTRY",
    "YAML_FORMAT",
    "register_component",
    "load_plugins",
    "to_yaml",
    "from_yaml",
    "read_yaml",
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


def write_yaml(data: dict[str, Any], path: str | Path, overwrite: bool = False) -> None:
    """Write a dictionary as YAML."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"file exists already: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(data))


def model_from_dict(data: dict[str, Any], model_type: str | None = None) -> ModelBase:
    """Component model (spectral, spatial, temporal, prior) from its dictionary.

    ``data`` is ``{model_type: {...}}`` or the inner dictionary with ``model_type``.
    """
    if model_type is None:
        if len(data) != 1:
            raise ValueError("need {type: {...}} or an explicit model_type")
        model_type, data = next(iter(data.items()))
    try:
        cls = get_model_class(model_type, data["type"])
    except KeyError:
        load_plugins()
        cls = get_model_class(model_type, data["type"])
    return cls.from_dict(data)


def model_to_dict(model: ModelBase, full_output: bool = False) -> dict[str, Any]:
    """``{model.type: {...}}`` dictionary of a component model."""
    return model.to_dict(full_output)


def nan_equal(a: float, b: float) -> bool:
    """Equality treating two NaNs as equal."""
    return a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )

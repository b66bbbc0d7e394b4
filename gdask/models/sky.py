"""Model containers: SkyModel, FoVBackgroundModel and the Models list (YAML IO).

The flat parameter vector of a fit is ``Models.parameters`` mapped through
`Parameters.flat_layout` (linked parameters share a slot).  Covariance files
use Gammapy's layout: an ``ascii.fixed_width`` table (``|`` delimiter) with a
``Parameters`` column of ``<model>.<type>.<name>`` and one column per unique
parameter.
"""

from __future__ import annotations

import collections.abc
import logging
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gdask.errors import ConfigError, GdaskError

from .core import ModelBase
from .io import (
    COMPONENT_REGISTRY,
    model_from_dict,
    parse_models_yaml,
    read_models_file,
    register_component,
    to_yaml,
)
from .layout import ParameterLayout
from .parameters import Parameters
from .spectral_base import SpectralModel
from .spectral_norm import PowerLawNormSpectralModel

__all__ = ["SkyModel", "FoVBackgroundModel", "Models"]

log = logging.getLogger(__name__)

_APPLY_IRF_DEFAULT = {"exposure": True, "psf": True, "edisp": True}


def _make_name() -> str:
    return uuid.uuid4().hex[:8]


class _Component:
    """Shared behaviour of top-level components."""

    tag: tuple[str, ...] = ()
    name: str
    spectral_model: SpectralModel | None
    spatial_model: ModelBase | None
    temporal_model: ModelBase | None = None
    datasets_names: list[str] | None

    @property
    def _components(self) -> list[ModelBase]:
        return [
            m
            for m in (self.spectral_model, self.spatial_model, self.temporal_model)
            if m is not None
        ]

    @property
    def parameters(self) -> Parameters:
        """Spectral, then spatial, then temporal parameters (same objects)."""
        return Parameters.from_stack([m.parameters for m in self._components])

    @property
    def parameters_names(self) -> list[str]:
        """``<type>.<name>`` for each parameter, in order (Gammapy's unique names)."""
        return [f"{m.type}.{p.name}" for m in self._components for p in m.parameters]

    def freeze(self, model_type: str | None = None) -> None:
        """Freeze all parameters (or those of one component type)."""
        for m in self._components:
            if model_type is None or m.type == model_type:
                m.freeze()

    def copy(self, name: str | None = None) -> Any:
        import copy

        out = copy.deepcopy(self)
        if name is not None:
            out.name = name
        return out


@register_component
class SkyModel(_Component):
    """Source model: spectral x spatial x temporal.

    Parameters
    ----------
    spectral_model : SpectralModel
    spatial_model, temporal_model : ModelBase, optional
    name : str, optional
        Unique name (random if omitted).
    apply_irf : dict, optional
        Which IRFs to apply ({"exposure", "psf", "edisp"}: bool).
    datasets_names : list of str, optional
        Datasets the model applies to (None: all).
    """

    tag = ("SkyModel", "sky-model")

    def __init__(
        self,
        spectral_model: SpectralModel,
        spatial_model: ModelBase | None = None,
        temporal_model: ModelBase | None = None,
        name: str | None = None,
        apply_irf: dict[str, bool] | None = None,
        datasets_names: list[str] | None = None,
    ) -> None:
        self.spectral_model = spectral_model
        self.spatial_model = spatial_model
        self.temporal_model = temporal_model
        self.name = name or _make_name()
        self.apply_irf = dict(_APPLY_IRF_DEFAULT if apply_irf is None else apply_irf)
        if isinstance(datasets_names, str):
            datasets_names = [datasets_names]
        self.datasets_names = None if datasets_names is None else list(datasets_names)

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "type": self.tag[0]}
        if self.apply_irf != _APPLY_IRF_DEFAULT:
            data["apply_irf"] = self.apply_irf
        if self.datasets_names is not None:
            data["datasets_names"] = self.datasets_names
        for m in self._components:
            data.update(m.to_dict(full_output))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkyModel:
        if data.get("spectral") is None:
            raise ConfigError("a SkyModel needs a spectral model", field="spectral")
        names = data.get("datasets_names")
        if names is not None and not (
            isinstance(names, str)
            or (isinstance(names, list) and all(isinstance(n, str) for n in names))
        ):
            raise ConfigError(
                f"datasets_names must be a list of dataset names, got {names!r}",
                field="datasets_names",
            )
        irf = data.get("apply_irf")
        if irf is not None and not (
            isinstance(irf, dict)
            and set(irf) <= set(_APPLY_IRF_DEFAULT)
            and all(isinstance(v, bool) for v in irf.values())
        ):
            raise ConfigError(
                f"apply_irf must map {', '.join(_APPLY_IRF_DEFAULT)} to true/false, got {irf!r}",
                field="apply_irf",
            )
        parts = {
            k: model_from_dict(data[k], k) if data.get(k) is not None else None
            for k in ("spectral", "spatial", "temporal")
        }
        return cls(
            spectral_model=parts["spectral"],
            spatial_model=parts["spatial"],
            temporal_model=parts["temporal"],
            name=data.get("name"),
            apply_irf=data.get("apply_irf"),
            datasets_names=data.get("datasets_names"),
        )

    def __repr__(self) -> str:
        return (
            f"SkyModel(name={self.name!r}, spectral={self.spectral_model!r}, "
            f"spatial={self.spatial_model!r}, temporal={self.temporal_model!r})"
        )


@register_component
class FoVBackgroundModel(_Component):
    """Field-of-view background model of one dataset: norm spectral x optional spatial.

    Parameters
    ----------
    dataset_name : str
        The dataset it belongs to.
    spectral_model : SpectralModel, optional
        A norm model; default `PowerLawNormSpectralModel`.
    spatial_model : ModelBase, optional
    name : str, optional
        Default ``<dataset_name>-bkg``.
    """

    tag = ("FoVBackgroundModel", "fov-bkg")

    def __init__(
        self,
        dataset_name: str,
        spectral_model: SpectralModel | None = None,
        spatial_model: ModelBase | None = None,
        name: str | None = None,
    ) -> None:
        if spectral_model is None:
            spectral_model = PowerLawNormSpectralModel()
        if not spectral_model.is_norm_spectral_model:
            raise ValueError("a FoVBackgroundModel needs a norm spectral model")
        self.spectral_model = spectral_model
        self.spatial_model = spatial_model
        self.datasets_names = [dataset_name]
        self.name = name or f"{dataset_name}-bkg"

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.tag[0], "datasets_names": self.datasets_names}
        for m in self._components:
            data.update(m.to_dict(full_output))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FoVBackgroundModel:
        names = data.get("datasets_names")
        if not names or len(names) != 1:
            raise ValueError("a FoVBackgroundModel must name exactly one dataset")
        spectral = model_from_dict(data["spectral"], "spectral") if "spectral" in data else None
        spatial = model_from_dict(data["spatial"], "spatial") if "spatial" in data else None
        return cls(names[0], spectral_model=spectral, spatial_model=spatial, name=data.get("name"))

    def __repr__(self) -> str:
        return f"FoVBackgroundModel(dataset={self.datasets_names[0]!r}, {self.spectral_model!r})"


def _component_from_dict(comp: Any, i: int) -> Any:
    """One top-level component of a models dictionary; errors name the model."""
    label = f"components[{i}]"
    if not isinstance(comp, dict):
        raise ConfigError(f"{label} is not a mapping {{name, type, spectral, ...}}", field=label)
    name = comp.get("name")
    if name is None and comp.get("datasets_names"):
        name = f"{comp['datasets_names'][0]}-bkg"
    label = str(name) if name is not None else label
    ctype = comp.get("type")
    if ctype not in COMPONENT_REGISTRY:
        raise ConfigError(
            f"model {label!r}: unknown component type {ctype!r} "
            f"(known: {', '.join(sorted(COMPONENT_REGISTRY))})",
            field=f"{label}.type",
        )
    try:
        return COMPONENT_REGISTRY[ctype].from_dict(comp)
    except GdaskError as exc:
        field = label if exc.field is None else f"{label}.{exc.field}"
        raise ConfigError(f"model {label!r}: {exc.message}", file=exc.file, field=field) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"model {label!r}: {exc}", field=label) from exc


class Models(collections.abc.Sequence):
    """Ordered list of named top-level models with YAML and covariance IO.

    Parameters
    ----------
    models : iterable of SkyModel / FoVBackgroundModel
    covariance_data : ndarray, optional
        Covariance of the unique parameters (order of `Parameters.unique_parameters`).
    """

    def __init__(self, models: Iterable[Any] = (), covariance_data: np.ndarray | None = None):
        self._models = list(models.models if isinstance(models, Models) else models)
        names = [m.name for m in self._models]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"model names must be unique; duplicated: {sorted(dup)}")
        self.covariance = covariance_data
        self._covar_file: str | None = None

    @property
    def models(self) -> list[Any]:
        return list(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._models)

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            for m in self._models:
                if m.name == key:
                    return m
            raise KeyError(f"no model {key!r}; have {self.names}")
        return self._models[key]

    @property
    def names(self) -> list[str]:
        return [m.name for m in self._models]

    @property
    def parameters(self) -> Parameters:
        """All parameters in model order (linked ones appear once per use)."""
        return Parameters.from_stack([m.parameters for m in self._models])

    @property
    def parameters_unique_names(self) -> list[str]:
        """``<model>.<type>.<name>`` of the unique parameters (covariance labels)."""
        return self.layout().unique_names

    def layout(self) -> ParameterLayout:
        """The frozen `~gdask.models.ParameterLayout` of ``parameters`` (offsets, slots, units)."""
        return ParameterLayout.from_models(self._models)

    def parameter_index(self, name: str) -> int:
        """Position in ``parameters`` of ``<model>.<type>.<name>``, ``<model>.<name>`` or a unique ``<name>``.

        Raises
        ------
        KeyError
            If no parameter, or more than one, has that name.
        """
        return self.layout().position(name)

    def sync_links(self) -> None:
        """Make linked parameters consistent (the first occurrence wins)."""
        self.parameters.sync_links()

    # ------------------------------------------------------------------ io
    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"components": [m.to_dict(full_output) for m in self._models]}
        if self._covar_file is not None:
            data["covariance"] = self._covar_file
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | Path = "") -> Models:
        """Models from a Gammapy models dictionary ``{components: [...], covariance: ...}``.

        Raises
        ------
        ConfigError
            An unknown component or model type, or a bad parameter; the
            message names the model, ``field`` is ``<model>.<type>.<parameter>``.
        """
        models = [
            _component_from_dict(comp, i) for i, comp in enumerate(data.get("components", []))
        ]
        try:
            out = cls(models)
        except ValueError as exc:
            raise ConfigError(str(exc), field="components") from exc
        out.sync_links()
        if "covariance" in data:
            cov = Path(path) / data["covariance"]
            if not cov.exists():
                cov = Path(data["covariance"])
            if cov.exists():
                try:
                    out.read_covariance(cov)
                except (ValueError, KeyError, TypeError, IndexError) as exc:
                    raise ConfigError(
                        f"cannot read the covariance file {cov}: {exc}", field="covariance"
                    ) from exc
            out._covar_file = str(data["covariance"])
        return out

    def to_yaml(self, full_output: bool = False) -> str:
        return to_yaml(self.to_dict(full_output))

    @classmethod
    def from_yaml(cls, text: str, path: str | Path = "") -> Models:
        """Models from YAML text (checked as `gdask.models.io.parse_models_yaml` does)."""
        return cls.from_dict(parse_models_yaml(text), path=path)

    @classmethod
    def read(cls, filename: str | Path, require_free: bool = False) -> Models:
        """Read a Gammapy models YAML file (and its covariance file if referenced).

        Parameters
        ----------
        filename : str or Path
        require_free : bool
            Fail if no parameter is free (a models file to fit).

        Raises
        ------
        ConfigError
            The file is missing, not YAML, not a models file, or a model or
            parameter in it is bad (see `from_dict`); ``file`` is the path.

        Examples
        --------
        >>> Models.read("models.yaml", require_free=True)  # doctest: +SKIP
        """
        filename = Path(filename)
        data = read_models_file(filename)
        try:
            out = cls.from_dict(data, path=filename.parent)
        except GdaskError as exc:
            raise exc.with_context(file=str(filename)) from exc
        if require_free and not any(not p.frozen for p in out.parameters):
            raise ConfigError(
                f"no free parameter in the models ({', '.join(out.names)}): a fit needs at "
                "least one (set frozen: false on some parameter)",
                file=str(filename),
                field="frozen",
            )
        return out

    def write(
        self,
        filename: str | Path,
        overwrite: bool = False,
        full_output: bool = False,
        write_covariance: bool = True,
    ) -> None:
        """Write YAML (and ``<stem>_covariance.dat`` when a covariance is set)."""
        filename = Path(filename)
        if filename.exists() and not overwrite:
            raise FileExistsError(f"file exists already: {filename}")
        if write_covariance and self.covariance is not None and len(self.parameters):
            cov_name = filename.stem + "_covariance.dat"
            self.write_covariance(filename.parent / cov_name, overwrite=overwrite)
            self._covar_file = cov_name
        only = sorted(
            {
                c.tag[0]
                for m in self._models
                for c in (m._components + [p.prior for p in m.parameters if p.prior is not None])
                if c.gdask_only
            }
        )
        if only:
            log.warning(
                "%s: %s gdask-only (see docs/models.md): Gammapy 2.1 cannot read this file",
                filename,
                ", ".join(only),
            )
        filename.parent.mkdir(parents=True, exist_ok=True)
        filename.write_text(self.to_yaml(full_output))

    def write_covariance(self, filename: str | Path, overwrite: bool = False) -> None:
        """Write the covariance table in Gammapy's ascii.fixed_width layout."""
        from astropy.table import Table

        names = self.parameters_unique_names
        cov = np.asarray(self.covariance, dtype=float)
        table = Table()
        table["Parameters"] = names
        for i in range(len(names)):
            table[str(i)] = cov[i]
        table.write(str(filename), format="ascii.fixed_width", delimiter="|", overwrite=overwrite)

    def read_covariance(self, filename: str | Path) -> None:
        """Read a covariance table written by Gammapy or gdask; sets parameter errors."""
        from astropy.table import Table

        t = Table.read(str(filename), format="ascii.fixed_width", delimiter="|")
        t.remove_column("Parameters")
        cov = np.array([[float(v) for v in row] for row in t])
        self.covariance = cov
        uniq = self.parameters.unique_parameters
        if cov.shape == (len(uniq), len(uniq)):
            for p, var in zip(uniq, np.diag(cov), strict=False):
                p.error = float(np.sqrt(var)) if var >= 0 else float("nan")

    def __repr__(self) -> str:
        return "Models(\n" + "\n".join(f"  {m!r}" for m in self._models) + "\n)"

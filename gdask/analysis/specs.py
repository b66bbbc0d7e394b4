"""From dataset stores to a joint fit: dataset selection, joint models, TermSpecs, fit mode.

Dataset names in the joint fit are ``<analysis name>-<dataset name>``
(``hess-stacked``, ``magic-200001``); `FoVBackgroundModel` and
``datasets_names`` in the models YAML refer to those names.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gdask.errors import ConfigError
from gdask.likelihood import TermSpec
from gdask.models import (
    EnergyScaleModel,
    FoVBackgroundModel,
    Models,
    fov_background_systematics,
)
from gdask.run_config import InstrumentRun, RunConfig

__all__ = [
    "JointProblem",
    "store_datasets",
    "joint_models",
    "build_term_specs",
    "choose_mode",
    "energy_scale_name",
    "read_models",
    "INPROCESS_MAX_BINS",
    "STACKED",
]

STACKED = "stacked"
#: the auto mode fits in-process when all datasets together have at most this many
#: fitted bins (3d: energy x lat x lon; 1d: energy): one evaluation then costs a few
#: ms here, less than one ~20 ms scheduler round trip, and the data fit in memory
INPROCESS_MAX_BINS = 500_000
_KINDS = {"MapDataset": "map", "MapDatasetOnOff": "map", "SpectrumDatasetOnOff": "spectrum"}


@dataclass
class JointProblem:
    """Everything a joint fit needs: the specs, the joint models, penalties and bookkeeping.

    Attributes
    ----------
    specs : list of TermSpec
        One per dataset, in analysis order.
    models : Models
        Joint models (the input models plus FoV backgrounds and energy-scale nuisances).
    penalties : dict
        ``{energy-scale parameter: (0, sigma)}``.
    analysis_of : dict
        Joint dataset name -> analysis name.
    n_bins : dict
        Joint dataset name -> number of bins of the dataset (before masks).
    energy_edges : dict
        Joint dataset name -> reconstructed-energy edges (TeV).
    """

    specs: list[TermSpec]
    models: Models
    penalties: dict[str, tuple[float, float]] = field(default_factory=dict)
    analysis_of: dict[str, str] = field(default_factory=dict)
    n_bins: dict[str, int] = field(default_factory=dict)
    energy_edges: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bins(self) -> int:
        """Bins of all datasets together."""
        return int(sum(self.n_bins.values()))


def read_models(path: str | Path) -> Models:
    """`Models.read` with a `ConfigError` naming the file."""
    try:
        return Models.read(path, require_free=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"cannot read the models: {exc}", file=str(path), field="fit.models"
        ) from exc


def energy_scale_name(analysis: str) -> str:
    """Unique name of the energy-scale parameter of ``analysis``."""
    return f"{analysis}-energy-scale.energy_scale.s"


def store_datasets(run: InstrumentRun) -> list[str]:
    """Names of the datasets of ``run``'s store to fit.

    ``run.datasets`` if given; else ``stacked`` when the config stacks and the
    store has it; else every per-run dataset of the store.

    Raises
    ------
    ConfigError
        No store, a requested dataset is missing, or nothing to fit.
    """
    from gdask.datasets import DatasetStore

    path = run.store_path
    if path is None:
        raise ConfigError(f"analysis {run.name!r} fits dataset files, not a store", field="files")
    if not (path / "datasets").is_dir():
        raise ConfigError(
            f"analysis {run.name!r}: no dataset store at {path}; reduce first "
            "(gdask reduce CONFIG, or gdask run)",
            field="output.store",
        )
    have = DatasetStore(path).names()
    if run.datasets is not None:
        missing = [n for n in run.datasets if n not in have]
        if missing:
            raise ConfigError(
                f"analysis {run.name!r}: datasets {missing} not in {path} "
                f"(it has: {', '.join(have) or 'none'})",
                field="datasets",
            )
        return list(run.datasets)
    if run.stacks and STACKED in have:
        return [STACKED]
    names = [n for n in have if n != STACKED]
    if not names:
        raise ConfigError(
            f"analysis {run.name!r}: the dataset store {path} is empty", field="output.store"
        )
    return names


def _dataset_facts(source: str) -> tuple[str, int, Any, Any, str]:
    """Kind, number of bins, reco energy edges (TeV), a fitted-bins counter and the type.

    ``source`` is ``"<store>::<name>"`` (metadata only) or a dataset file.
    """
    from gdask.likelihood.folding import energy_range_mask

    ds = _read_dataset(source)
    dataset_type = str(ds.ds.attrs.get("dataset_type"))
    kind = _KINDS.get(dataset_type, "?")
    n = int(ds.ds["counts"].size)
    axis = ds.energy_axis
    edges = getattr(axis, "axis", axis).to_unit("TeV").edges  # BandAxis (maps) or Axis
    safe = np.ones(len(edges) - 1, bool)
    for key in ("mask_safe", "mask_fit"):
        if key in ds.ds:
            m = np.asarray(ds.ds[key].values, bool)
            safe &= m.reshape(m.shape[0], -1).any(axis=1)
    file_edges, unit = (
        ds.energy_edges_as_read() if hasattr(ds, "energy_edges_as_read") else (edges, "TeV")
    )

    def fitted_bins(lo: float | None, hi: float | None) -> int:
        return int((safe & energy_range_mask(file_edges, lo, hi, unit=unit)).sum())

    return kind, n, edges, fitted_bins, dataset_type


def _read_dataset(source: str) -> Any:
    from gdask.datasets import DatasetStore, SpectrumDatasetOnOff
    from gdask.datasets.store import split_store_source
    from gdask.likelihood.map import read_map_dataset

    parts = split_store_source(source)
    if parts is not None:
        return DatasetStore(parts[0]).read(parts[1], lazy=True)
    from astropy.io import fits

    with fits.open(source) as hdul:
        spectrum = "SPECTRUM" in hdul
    return SpectrumDatasetOnOff.read(source) if spectrum else read_map_dataset(source)


def _file_dataset_name(path: Path, kind: str) -> str:
    """A dataset file's name in the fit: the OGIP spectrum's (its OBS_ID), else the file stem."""
    if kind == "spectrum":
        from gdask.datasets import SpectrumDatasetOnOff

        return str(SpectrumDatasetOnOff.read(path).name)
    return path.name.split(".")[0]


def _sources(a: InstrumentRun) -> list[tuple[str, str]]:
    """``(dataset name, TermSpec source)`` of every dataset ``a`` fits."""
    if a.files is not None:
        out = [(_file_dataset_name(p, a.kind), str(p.resolve())) for p in a.files]
        names = [n for n, _ in out]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(
                f"analysis {a.name!r}: several files give the dataset names {dup}",
                field="files",
            )
        return out
    from gdask.datasets.store import store_source

    store = Path(str(a.store_path))
    return [(n, store_source(store.resolve(), n)) for n in store_datasets(a)]


def joint_models(
    run: RunConfig,
    models: Models,
    datasets: dict[str, list[str]],
    on_off: frozenset[str] = frozenset(),
) -> Models:
    """The input models plus a FoV background per 3d dataset and the energy-scale nuisances.

    Parameters
    ----------
    run : RunConfig
    models : Models
        Input models (not modified).
    datasets : dict
        Analysis name -> joint dataset names.
    on_off : set of str, optional
        Joint names of ON/OFF map datasets (ring background): fitted with wstat,
        which profiles the background, so they get no FoV background model.

    Raises
    ------
    ConfigError
        A model names a dataset that is not fitted.
    """
    comps = [copy.deepcopy(m) for m in models]
    known = {n for names in datasets.values() for n in names}
    for m in comps:
        for n in m.datasets_names or []:
            if n not in known:
                raise ConfigError(
                    f"model {m.name!r} refers to dataset {n!r}, which is not "
                    f"fitted (datasets: {', '.join(sorted(known))})",
                    field="fit.models",
                )
    have_bkg = {m.datasets_names[0] for m in comps if isinstance(m, FoVBackgroundModel)}
    names = {m.name for m in comps}
    for a in run.analyses:
        if a.kind == "map" and (run.fit.fov_background or a.background_systematics):
            todo = [n for n in datasets[a.name] if n not in have_bkg and n not in on_off]
            if a.background_systematics is not None:
                norm, tilt, per = a.background_systematics
                comps += fov_background_systematics({a.name: todo}, norm, tilt, per=per)
            else:
                comps += [FoVBackgroundModel(n) for n in todo]
        if a.energy_scale is not None:
            name = f"{a.name}-energy-scale"
            if name in names:
                continue
            # bound to every dataset of the analysis, constrained by its prior
            comps.append(
                EnergyScaleModel(datasets[a.name], "scale", sigma=float(a.energy_scale), name=name)
            )
    return Models(comps)


def build_term_specs(run: RunConfig, models: Models | None = None) -> JointProblem:
    """Term specs of every dataset of every analysis, with the joint models and penalties.

    Parameters
    ----------
    run : RunConfig
    models : Models, optional
        Input models (default: read ``run.fit.models``).
    """
    if models is None:
        if run.fit.models is None:
            raise ConfigError(
                "fit.models: required to fit (a Gammapy models YAML, in the run "
                "config's fit section or an analysis config's fit.models)",
                field="fit.models",
            )
        models = read_models(run.fit.models)
    datasets: dict[str, list[str]] = {}
    facts: dict[str, tuple[str, str, int, Any]] = {}
    on_off: set[str] = set()
    for a in run.analyses:
        joint = []
        for n, source in _sources(a):
            kind, nbin, edges, fitted_bins, dataset_type = _dataset_facts(source)
            if kind != a.kind:
                raise ConfigError(
                    f"analysis {a.name!r}: dataset {n!r} ({source}) is a {kind} "
                    f"dataset, the config makes {a.kind} datasets",
                    field="datasets.type",
                )
            jn = f"{a.name}-{n}"
            lo, hi = a.fit_range if a.fit_range is not None else (None, None)
            if fitted_bins(lo, hi) == 0:
                rng = "all energies" if a.fit_range is None else f"[{lo:g}, {hi:g}] TeV"
                raise ConfigError(
                    f"dataset {jn!r}: no energy bin to fit in the fit range {rng} "
                    f"(reco edges {edges[0]:.4g}-{edges[-1]:.4g} TeV; bins must lie fully "
                    "inside the range and in the safe mask)",
                    field=f"fit.fit_ranges.{a.name}",
                )
            joint.append(jn)
            if dataset_type == "MapDatasetOnOff":
                on_off.add(jn)
            facts[jn] = (source, a.name, nbin, edges)
        datasets[a.name] = joint
    joint_m = joint_models(run, models, datasets, frozenset(on_off))
    data = joint_m.to_dict()
    specs, penalties = [], {}
    for a in run.analyses:
        opts: dict[str, Any] = {}
        if a.fit_range is not None:
            opts.update(energy_min=a.fit_range[0], energy_max=a.fit_range[1])
        for jn in datasets[a.name]:
            specs.append(TermSpec(a.kind, jn, facts[jn][0], data, dict(opts)))
    return JointProblem(
        specs,
        joint_m,
        penalties,
        analysis_of={jn: f[1] for jn, f in facts.items()},
        n_bins={jn: f[2] for jn, f in facts.items()},
        energy_edges={jn: f[3] for jn, f in facts.items()},
    )


def choose_mode(mode: str, problem: JointProblem, scheduler: str | None = None) -> str:
    """``"distributed"`` or ``"in-process"`` for ``mode`` (``auto`` decides).

    The auto rule: distributed when a scheduler is given (``--scheduler`` or
    ``DASK_SCHEDULER_ADDRESS``) or the datasets have more than
    `INPROCESS_MAX_BINS` bins together; in-process otherwise (no cluster
    start-up, no ~20 ms round trip per evaluation).
    """
    if mode != "auto":
        return mode
    from gdask.cluster import scheduler_address

    if scheduler_address(scheduler):
        return "distributed"
    return "distributed" if problem.total_bins > INPROCESS_MAX_BINS else "in-process"

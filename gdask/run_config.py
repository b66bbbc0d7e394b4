"""The joint run configuration: several instruments' analyses, one joint fit.

A run config composes one `~gdask.config.AnalysisConfig` per instrument
(inline or as a file) with a ``fit`` section shared by all of them::

    analyses:
      - name: hess                      # prefixes its dataset names: hess-stacked
        config: hess.yaml               # an AnalysisConfig file, or the mapping inline
        datasets: [stacked]             # optional: which datasets of its store to fit
      - name: magic
        config: {observations: ..., datasets: ..., makers: ..., output: ...}
    fit:
      models: models.yaml               # Gammapy models YAML (the starting point; none: reduce only)
      fit_ranges: {hess: [0.7, 30], magic: ["80 GeV", "30 TeV"]}
      energy_scale: {magic: 0.1}        # Gaussian prior sigma of an energy-scale nuisance
      fov_background: true              # a FoVBackgroundModel (free norm) per 3d dataset
      background_systematics:           # Gaussian priors on the FoV norm (mean 1) and tilt (mean 0)
        hess: {norm: 0.05, tilt: 0.1, per: instrument}   # per: run (default) | instrument (linked)
      mode: auto                        # auto | distributed | in-process
      backend: minuit                   # minuit | scipy
      strategy: 0                       # MIGRAD strategy 0 | 1 | 2
      tol: 0.1                          # MIGRAD tolerance
      polish: true                      # a final MIGRAD (strategy >= 1, tol / 10): end on the minimum
    output: results/run                 # the results folder

`load_run_config` also turns one or several plain AnalysisConfig files into
a run config (``gdask fit a.yaml b.yaml``): each is an analysis named after
its file stem, with its own ``fit.fit_range``; the models come from the
first ``fit.models``. Without any models file there is nothing to fit:
``gdask run`` then only ingests and reduces.  Every problem is a `~gdask.errors.ConfigError` whose
message starts with the key path (``fit.fit_ranges.hess: ...``).
"""

from __future__ import annotations

import dataclasses
import glob
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gdask.config import (
    AnalysisConfig,
    _energy,
    _fail,
    _number,
    _path,
    _read_yaml,
    _Section,
    _str,
)
from gdask.errors import ConfigError

__all__ = [
    "InstrumentRun",
    "JointFitConfig",
    "RunConfig",
    "load_run_config",
    "FIT_MODES",
    "is_run_config",
]

FIT_MODES = ("auto", "distributed", "in-process")
FIT_BACKENDS = ("minuit", "scipy")
_NAME = re.compile(r"^[A-Za-z0-9_]+(?:[.\-][A-Za-z0-9_]+)*$")


@dataclass(frozen=True)
class InstrumentRun:
    """One instrument's analysis in a joint run.

    Attributes
    ----------
    name : str
        Prefix of its dataset names in the joint fit (``<name>-<dataset>``).
    config : AnalysisConfig
        Reduction (and dataset store) of this instrument.
    datasets : tuple of str or None
        Datasets of the store to fit (None: ``stacked`` if the config stacks, else all).
    fit_range : (float, float) or None
        Fit energy range in TeV (reco bins fully inside are fitted).
    energy_scale : float or None
        Sigma of the Gaussian prior on this instrument's energy-scale nuisance
        (an `~gdask.models.EnergyScaleModel` bound to all its datasets).
    background_systematics : (float, float or None, str) or None
        Prior widths of the FoV background norm and tilt (None: tilt frozen) and
        ``"run"`` or ``"instrument"`` (see `gdask.models.fov_background_systematics`).
    """

    name: str
    config: AnalysisConfig | None
    datasets: tuple[str, ...] | None = None
    fit_range: tuple[float, float] | None = None
    energy_scale: float | None = None
    background_systematics: tuple[float, float | None, str] | None = None
    files: tuple[Path, ...] | None = None
    store: Path | None = None
    data_kind: str | None = None

    @property
    def kind(self) -> str:
        """``"map"`` for 3d analyses, ``"spectrum"`` for 1d."""
        if self.config is None:
            return str(self.data_kind)
        return "map" if self.config.datasets.type == "3d" else "spectrum"

    @property
    def store_path(self) -> Path | None:
        """The dataset store fitted (None: dataset files)."""
        if self.config is not None:
            return Path(self.config.output.store)
        return self.store

    @property
    def stacks(self) -> bool:
        """Whether ``stacked`` is the default dataset of the store (a config that stacks;
        a store given alone: when it has one)."""
        return True if self.config is None else bool(self.config.datasets.stack)


@dataclass(frozen=True)
class JointFitConfig:
    """The ``fit`` section: models (None: nothing to fit), where to fit, how.

    The defaults here are the run config's (every key of the section is a field).
    ``strategy``, ``tol`` and ``polish`` are MIGRAD's settings (`gdask.fit.Fit`):
    strategy 0 and tol 0.1 (Gammapy's tol), then a polishing MIGRAD (strategy 1,
    tol / 10) so the fit ends on the minimum.
    """

    models: Path | None
    mode: str = "auto"
    backend: str = "minuit"
    fov_background: bool = True
    strategy: int = 0
    tol: float = 0.1
    polish: bool = True


@dataclass(frozen=True)
class RunConfig:
    """A validated joint run configuration (build with `read`, `from_dict` or `load_run_config`)."""

    analyses: tuple[InstrumentRun, ...]
    fit: JointFitConfig
    output: Path | None = None

    def analysis(self, name: str) -> InstrumentRun:
        """The analysis called ``name``."""
        for a in self.analyses:
            if a.name == name:
                return a
        raise KeyError(f"no analysis {name!r}; have {[a.name for a in self.analyses]}")

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | Path = ".") -> RunConfig:
        """Validate a parsed run-config document; relative paths are taken from ``base_dir``."""
        base = Path(base_dir).resolve()
        top = _Section(data, "")
        items = top.take("analyses")
        if not isinstance(items, list) or not items:
            _fail("analyses", "must be a non-empty list of {name, config[, datasets]}")
        analyses = [
            _parse_analysis(_Section(item, f"analyses[{i}]"), base) for i, item in enumerate(items)
        ]
        names = [a.name for a in analyses]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            _fail("analyses", f"names must be unique, repeated: {dup}")
        stores = [
            str(a.store_path.resolve()) if a.store_path else f"#{i}" for i, a in enumerate(analyses)
        ]
        for i, s in enumerate(stores):
            if stores.index(s) != i:
                key = "config.output.store" if analyses[i].config is not None else "store"
                _fail(
                    f"analyses[{i}].{key}",
                    f"same dataset store as analysis {names[stores.index(s)]!r}: {s}",
                )
        fit = top.section("fit")
        models = fit.take("models", None)
        if models is None:
            models = next(
                (
                    a.config.fit.models
                    for a in analyses
                    if a.config is not None
                    and a.config.fit is not None
                    and a.config.fit.models is not None
                ),
                None,
            )
        else:
            models = _path(models, fit.key("models"), base)
        ranges = _per_analysis(fit, "fit_ranges", names, _range)
        scales = _per_analysis(
            fit, "energy_scale", names, lambda v, p: _number(v, p, positive=True)
        )
        bkg_sys = _per_analysis(fit, "background_systematics", names, _background_systematics)
        for name in bkg_sys:
            if analyses[names.index(name)].kind != "map":
                _fail(
                    f"{fit.key('background_systematics')}.{name}",
                    "background systematics apply to the FoV background of 3d (map) datasets",
                )
        d = JointFitConfig
        mode = _str(fit.take("mode", d.mode), fit.key("mode"), FIT_MODES)
        backend = _str(fit.take("backend", d.backend), fit.key("backend"), FIT_BACKENDS)
        fov = _bool(fit.take("fov_background", d.fov_background), fit.key("fov_background"))
        strategy = fit.take("strategy", d.strategy)
        if isinstance(strategy, bool) or strategy not in (0, 1, 2):
            _fail(fit.key("strategy"), f"must be 0, 1 or 2 (MIGRAD's strategy), got {strategy!r}")
        tol = _number(fit.take("tol", d.tol), fit.key("tol"), positive=True)
        polish = _bool(fit.take("polish", d.polish), fit.key("polish"))
        fit.done()
        out = top.take("output", None)
        output = None if out is None else _path(out, "output", base)
        top.done()
        final = []
        for a in analyses:
            rng = ranges.get(a.name, a.fit_range)
            final.append(
                dataclasses.replace(
                    a,
                    fit_range=rng,
                    energy_scale=scales.get(a.name),
                    background_systematics=bkg_sys.get(a.name),
                )
            )
        fit_cfg = JointFitConfig(models, mode, backend, fov, int(strategy), float(tol), polish)
        return cls(tuple(final), fit_cfg, output)

    @classmethod
    def read(cls, path: str | Path) -> RunConfig:
        """Read and validate a run-config YAML file."""
        p = Path(path)
        try:
            return cls.from_dict(_read_yaml(p), p.parent)
        except ConfigError as exc:
            raise exc.with_context(file=str(p)) from exc

    @classmethod
    def from_analysis_configs(cls, paths: Sequence[str | Path]) -> RunConfig:
        """A run config from plain AnalysisConfig files (one analysis per file, named by stem)."""
        analyses, models = [], None
        for p in map(Path, paths):
            cfg = AnalysisConfig.read(p)
            rng = None
            if cfg.fit is not None:
                if cfg.fit.energy_min is not None:
                    rng = (cfg.fit.energy_min, cfg.fit.energy_max)
                if models is None and cfg.fit.models is not None:
                    models = cfg.fit.models
            name = re.sub(r"[^A-Za-z0-9_.\-]", "_", p.stem)
            analyses.append(InstrumentRun(name, cfg, None, rng))
        names = [a.name for a in analyses]
        if len(set(names)) != len(names):
            raise ConfigError(
                f"configs need distinct file names (their analysis names): {names}", field="config"
            )
        return cls(tuple(analyses), JointFitConfig(None if models is None else Path(models)), None)


def is_run_config(path: str | Path) -> bool:
    """True when the YAML file has a top-level ``analyses`` key."""
    data = _read_yaml(Path(path))
    return isinstance(data, dict) and "analyses" in data


def load_run_config(paths: Sequence[str | Path]) -> RunConfig:
    """One run-config file, or one or several AnalysisConfig files, as a `RunConfig`."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("no configuration given", field="config")
    run_files = [p for p in paths if is_run_config(p)]
    if run_files:
        if len(paths) > 1:
            raise ConfigError(
                "a run config (with 'analyses') must be given alone",
                file=str(run_files[0]),
                field="analyses",
            )
        return RunConfig.read(paths[0])
    return RunConfig.from_analysis_configs(paths)


# ----------------------------------------------------------------------------- helpers


def _parse_analysis(sec: _Section, base: Path) -> InstrumentRun:
    name = _str(sec.take("name"), sec.key("name"))
    if not _NAME.match(name):
        _fail(sec.key("name"), f"letters, digits and _ (joined by - or .) only, got {name!r}")
    given = [k for k in ("config", "files", "store") if k in sec.data]
    if len(given) != 1:
        _fail(
            sec.key("config"),
            "give exactly one of config (an analysis to reduce), files (OGIP PHA or DL4 FITS "
            f"dataset files) or store (a dataset store); got {given or 'none'}",
        )
    if given[0] != "config":
        return _parse_fit_only(sec, name, given[0], base)
    raw = sec.take("config")
    key = sec.key("config")
    if isinstance(raw, str):
        path = _path(raw, key, base)
        try:
            cfg = AnalysisConfig.read(path)
        except ConfigError as exc:
            raise ConfigError(
                f"{key} ({path}): {exc.message}",
                file=str(path),
                field=key if exc.field is None else f"{key}.{exc.field}",
            ) from exc
    elif isinstance(raw, dict):
        try:
            cfg = AnalysisConfig.from_dict(raw, base)
        except ConfigError as exc:
            raise ConfigError(
                f"{key}.{exc.message}", field=key if exc.field is None else f"{key}.{exc.field}"
            ) from exc
    else:
        _fail(key, f"must be a file name or an analysis config mapping, got {type(raw).__name__}")
    datasets = _dataset_names(sec)
    sec.done()
    rng = None
    if cfg.fit is not None and cfg.fit.energy_min is not None:
        rng = (cfg.fit.energy_min, cfg.fit.energy_max)
    return InstrumentRun(name, cfg, datasets, rng)


def _dataset_names(sec: _Section) -> tuple[str, ...] | None:
    ds = sec.take("datasets", None)
    if ds is None:
        return None
    if not isinstance(ds, list) or not ds:
        _fail(sec.key("datasets"), "must be a non-empty list of dataset names")
    return tuple(str(d) for d in ds)


def _parse_fit_only(sec: _Section, name: str, what: str, base: Path) -> InstrumentRun:
    """An analysis of existing datasets: ``files`` (globs allowed) or a ``store``."""
    key = sec.key(what)
    if what == "store":
        store = _path(sec.take("store"), key, base)
        datasets = _dataset_names(sec)
        sec.done()
        if not (store / "datasets").is_dir():
            _fail(key, f"no dataset store at {store}")
        return InstrumentRun(name, None, datasets, store=store, data_kind=_store_kind(store, key))
    raw = sec.take("files")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(f, str) for f in raw):
        _fail(key, f"must be a file name or a non-empty list of them (globs allowed), got {raw!r}")
    sec.done()
    files: list[Path] = []
    for i, pattern in enumerate(raw):
        full = Path(pattern).expanduser()
        full = full if full.is_absolute() else base / full
        found = sorted(Path(p) for p in glob.glob(str(full)))
        if not found:
            _fail(f"{key}[{i}]", f"no such file: {full}")
        files += [p for p in found if p not in files]
    kinds = {p: _file_kind(p, key) for p in files}
    if len(set(kinds.values())) > 1:
        _fail(key, "mixes spectra (OGIP PHA) and map datasets (DL4); use one analysis for each")
    return InstrumentRun(name, None, None, files=tuple(files), data_kind=next(iter(kinds.values())))


def _file_kind(path: Path, key: str) -> str:
    """``"spectrum"`` for an OGIP PHA file, ``"map"`` for a DL4 FITS file."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            names = {h.name for h in hdul}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{key}: cannot read {path} as FITS: {exc}", file=str(path), field=key
        ) from exc
    if "SPECTRUM" in names:
        return "spectrum"
    if "COUNTS" in names:
        return "map"
    raise ConfigError(
        f"{key}: {path} is neither an OGIP PHA spectrum (SPECTRUM HDU) nor a DL4 map "
        "dataset (COUNTS HDU)",
        file=str(path),
        field=key,
    )


def _store_kind(store: Path, key: str) -> str:
    """The kind of the datasets of a store (from the first one's attrs)."""
    from gdask.datasets import DatasetStore

    names = DatasetStore(store).names()
    if not names:
        _fail(key, f"the dataset store {store} is empty")
    ds = DatasetStore(store).read(names[0], lazy=True)
    kind = str(ds.ds.attrs.get("dataset_type"))
    return "spectrum" if kind.startswith("Spectrum") else "map"


def _per_analysis(fit: _Section, key: str, names: list[str], item) -> dict[str, Any]:
    raw = fit.take(key, None)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        _fail(fit.key(key), f"must be a mapping {{analysis name: value}}, got {raw!r}")
    out = {}
    for name, value in raw.items():
        path = f"{fit.key(key)}.{name}"
        if name not in names:
            _fail(path, f"no analysis named {name!r} (have: {', '.join(names)})")
        out[str(name)] = item(value, path)
    return out


def _background_systematics(value: Any, path: str) -> tuple[float, float | None, str]:
    if not isinstance(value, dict):
        _fail(path, f"must be a mapping {{norm, tilt, per}}, got {value!r}")
    sec = _Section(value, path)
    norm = _number(sec.take("norm"), sec.key("norm"), positive=True)
    tilt = sec.take("tilt", None)
    tilt = None if tilt is None else _number(tilt, sec.key("tilt"), positive=True)
    per = _str(sec.take("per", "run"), sec.key("per"), ("run", "instrument"))
    sec.done()
    return float(norm), None if tilt is None else float(tilt), per


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, f"must be true or false, got {value!r}")
    return value


def _range(value: Any, path: str) -> tuple[float, float]:
    if isinstance(value, dict):
        sec = _Section(value, path)
        unit = _str(sec.take("unit", "TeV"), sec.key("unit"))
        lo = _energy(sec.take("min"), sec.key("min"), unit)
        hi = _energy(sec.take("max"), sec.key("max"), unit)
        sec.done()
    elif isinstance(value, list | tuple) and len(value) == 2:
        lo = _energy(value[0], f"{path}[0]", "TeV")
        hi = _energy(value[1], f"{path}[1]", "TeV")
    else:
        _fail(
            path,
            f"must be [min, max] (TeV or strings with units) or {{min, max, unit}}, got {value!r}",
        )
    if hi <= lo:
        _fail(path, f"max must be > min, got [{lo}, {hi}] TeV")
    return lo, hi

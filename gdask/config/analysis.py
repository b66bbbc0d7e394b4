"""The analysis configuration: a YAML file read into frozen dataclasses and validated.

Sections (see ``docs/reduction.md`` for the full reference and an example):
``observations`` (where and which runs), ``datasets`` (3d/1d, geometry,
stacking), ``makers`` (maps, safe mask, background), ``output`` (dataset
store, FITS/OGIP export) and ``fit`` (consumed by ``gdask fit``).

Every problem is a `gdask.errors.ConfigError` whose message starts with the
key path, e.g. ``datasets.geom.wcs.binsz: must be > 0``. Unknown keys are
errors. Relative paths are resolved against the folder of the config file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gdask.config.makers import (
    MAP_SELECTION,
    SAFE_MASK_METHODS_1D,
    SAFE_MASK_METHODS_3D,
    BackgroundConfig,
    ExclusionConfig,
    MakersConfig,
    SafeMaskConfig,
)
from gdask.config.parse import (
    MAX_NBIN,
    Section,
    as_bool,
    as_energy,
    as_int,
    as_list,
    as_number,
    as_path,
    as_store_path,
    as_str,
    check_nbin,
    fail,
    read_yaml,
)
from gdask.errors import ConfigError

__all__ = [
    "AnalysisConfig",
    "ObservationsConfig",
    "ConeConfig",
    "TimeConfig",
    "DatasetsConfig",
    "GeomConfig",
    "WcsConfig",
    "EnergyAxisConfig",
    "RegionConfig",
    "MakersConfig",
    "SafeMaskConfig",
    "BackgroundConfig",
    "ExclusionConfig",
    "OutputConfig",
    "FitConfig",
    "MAP_SELECTION",
    "SAFE_MASK_METHODS_3D",
    "SAFE_MASK_METHODS_1D",
    "MAX_NBIN",
    "MAX_SKY_PIXELS",
    "MAX_MAP_CELLS",
]

#: most pixels of a sky grid (10^4 x 10^4: 400 MB per float32 plane)
MAX_SKY_PIXELS = 10**8
#: most cells of one map cube (sky pixels x energy bins: 4 GB as float32)
MAX_MAP_CELLS = 10**9


def _lonlat(sec: Section) -> tuple[float, float, str]:
    lon = as_number(sec.take("lon"), sec.key("lon"))
    lat = as_number(sec.take("lat"), sec.key("lat"))
    if not -90 <= lat <= 90:
        fail(sec.key("lat"), f"must be within [-90, 90], got {lat}")
    frame = as_str(sec.take("frame", "icrs"), sec.key("frame"), ("icrs", "galactic"))
    return lon, lat, frame


# ----------------------------------------------------------------------------- observations


@dataclass(frozen=True)
class ConeConfig:
    """Pointings within ``radius`` deg of (lon, lat)."""

    lon: float
    lat: float
    radius: float
    frame: str = "icrs"


@dataclass(frozen=True)
class TimeConfig:
    """Runs inside ``[start, stop]`` (ISO strings or MJD numbers, UTC)."""

    start: str | float | None = None
    stop: str | float | None = None


@dataclass(frozen=True)
class ObservationsConfig:
    """Where the runs are and which ones to use.

    ``store`` is the archive store; with ``dl3`` the DL3 folder is ingested into
    it first (incremental). The selections combine with AND.
    """

    store: Path
    dl3: Path | None = None
    obs_ids: tuple[int, ...] | None = None
    cone: ConeConfig | None = None
    time: TimeConfig | None = None
    columns: tuple[tuple[str, tuple], ...] = ()

    @classmethod
    def parse(cls, sec: Section, base: Path) -> ObservationsConfig:
        store = as_store_path(sec.take("store"), sec.key("store"), base)
        dl3 = sec.take("dl3", None)
        dl3 = None if dl3 is None else as_path(dl3, sec.key("dl3"), base)
        obs_ids = sec.take("obs_ids", None)
        if obs_ids is not None:
            obs_ids = as_list(obs_ids, sec.key("obs_ids"), lambda v, p: as_int(v, p))
            if not obs_ids:
                fail(sec.key("obs_ids"), "must not be empty (omit it to select all)")
        cone = None
        if sec.data.get("cone") is not None:
            c = sec.section("cone")
            lon, lat, frame = _lonlat(c)
            cone = ConeConfig(
                lon, lat, as_number(c.take("radius"), c.key("radius"), positive=True), frame
            )
            c.done()
        else:
            sec.take("cone", None)
        time = None
        if sec.data.get("time") is not None:
            t = sec.section("time")
            bounds = []
            for k in ("start", "stop"):
                v = t.take(k, None)
                if v is not None and not isinstance(v, str):
                    v = as_number(v, t.key(k))
                bounds.append(v)
            t.done()
            _check_time(bounds, t.key("start"))
            time = TimeConfig(*bounds)
        else:
            sec.take("time", None)
        columns = []
        col = sec.section("columns")
        for name in list(col.data):
            columns.append((str(name), _column_rule(col.take(name), col.key(str(name)))))
        sec.done()
        return cls(store, dl3, obs_ids, cone, time, tuple(columns))


def _check_time(bounds: list, path: str) -> None:
    from astropy.time import Time

    times: list[Any] = []
    for v in bounds:
        if v is None:
            times.append(None)
            continue
        try:
            times.append(
                Time(v, format="mjd", scale="utc") if isinstance(v, float) else Time(v, scale="utc")
            )
        except ValueError as exc:
            fail(path, f"not a time: {v!r} ({exc})")
    if times[0] is not None and times[1] is not None and times[1] <= times[0]:
        fail(path.rsplit(".", 1)[0], "stop must be after start")


def _column_rule(value: Any, path: str) -> tuple:
    """``[min, max]`` (numbers, null for open) -> ("range", lo, hi); a string, a number or a list
    holding any string -> ("in", values) (equality with any of the values)."""
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return ("in", (value,))
    if isinstance(value, list) and value and any(isinstance(v, str) for v in value):
        for i, v in enumerate(value):
            if not isinstance(v, str | int | float) or isinstance(v, bool):
                fail(f"{path}[{i}]", f"must be a string or a number, got {v!r}")
        return ("in", tuple(value))
    if isinstance(value, list) and len(value) == 2:
        lo, hi = (None if v is None else as_number(v, f"{path}[{i}]") for i, v in enumerate(value))
        if lo is not None and hi is not None and hi < lo:
            fail(path, f"max {hi} < min {lo}")
        return ("range", lo, hi)
    fail(path, f"must be [min, max] or a string / list of strings, got {value!r}")
    raise AssertionError  # unreachable


# ----------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class EnergyAxisConfig:
    """Energy bin edges in TeV (from ``edges`` or ``min``/``max``/``nbin`` log-spaced)."""

    edges: tuple[float, ...]

    @classmethod
    def parse(cls, sec: Section) -> EnergyAxisConfig:
        unit = as_str(sec.take("unit", "TeV"), sec.key("unit"))
        import numpy as np

        if "edges" in sec.data:
            for k in ("min", "max", "nbin"):
                if k in sec.data:
                    fail(sec.key(k), "give either edges or min/max/nbin, not both")
            edges = as_list(sec.take("edges"), sec.key("edges"), lambda v, p: as_energy(v, p, unit))
            if len(edges) < 2:
                fail(sec.key("edges"), "needs at least two edges")
            if any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
                fail(sec.key("edges"), "must increase strictly")
            check_nbin(len(edges) - 1, sec.key("edges"))
        else:
            lo = as_energy(sec.take("min"), sec.key("min"), unit)
            hi = as_energy(sec.take("max"), sec.key("max"), unit)
            nbin = check_nbin(
                as_int(sec.take("nbin"), sec.key("nbin"), positive=True), sec.key("nbin")
            )
            if hi <= lo:
                fail(sec.key("max"), f"must be > min ({hi} <= {lo} TeV)")
            edges = tuple(float(e) for e in np.geomspace(lo, hi, nbin + 1))
        sec.done()
        return cls(tuple(edges))

    def to_axis(self, name: str = "energy"):
        """The `gdask.geometry.EnergyAxis` (TeV)."""
        from gdask.geometry import EnergyAxis

        return EnergyAxis(list(self.edges), name=name, unit="TeV")


@dataclass(frozen=True)
class WcsConfig:
    """A WCS sky grid; ``skydir=None`` means one grid per run centred on its pointing."""

    skydir: tuple[float, float] | None
    frame: str
    width: tuple[float, float]
    binsz: float
    proj: str = "CAR"
    binsz_irf: float = 0.2

    @classmethod
    def parse(cls, sec: Section) -> WcsConfig:
        raw = sec.take("skydir")
        frame = "icrs"
        if raw == "pointing":
            skydir = None
            frame = as_str(sec.take("frame", "icrs"), sec.key("frame"), ("icrs", "galactic"))
        elif isinstance(raw, dict):
            sd = Section(raw, sec.key("skydir"))
            lon, lat, frame = _lonlat(sd)
            sd.done()
            skydir = (lon, lat)
            if "frame" in sec.data:
                fail(sec.key("frame"), "give the frame inside skydir")
        else:
            fail(sec.key("skydir"), f"must be {{lon, lat, frame}} or 'pointing', got {raw!r}")
        width = sec.take("width")
        if isinstance(width, list | tuple):
            if len(width) != 2:
                fail(sec.key("width"), f"must be a number or [lon, lat], got {width!r}")
            w = tuple(
                as_number(v, f"{sec.key('width')}[{i}]", positive=True) for i, v in enumerate(width)
            )
        else:
            w = (as_number(width, sec.key("width"), positive=True),) * 2
        binsz = as_number(sec.take("binsz"), sec.key("binsz"), positive=True)
        proj = as_str(sec.take("proj", cls.proj), sec.key("proj"))
        if len(proj) != 3 or not proj.isalpha():
            fail(sec.key("proj"), f"must be a 3-letter FITS projection code, got {proj!r}")
        binsz_irf = as_number(
            sec.take("binsz_irf", cls.binsz_irf), sec.key("binsz_irf"), positive=True
        )
        for i, wi in enumerate(w):
            if wi < binsz:
                fail(
                    sec.key("width"), f"{wi} deg (axis {i}) is smaller than one pixel ({binsz} deg)"
                )
        npix = round(w[0] / binsz) * round(w[1] / binsz)
        if npix > MAX_SKY_PIXELS:
            fail(
                sec.key("binsz"),
                f"a {w[0]} x {w[1]} deg grid of {binsz} deg pixels has {npix:.3g} pixels, "
                f"more than the maximum of {MAX_SKY_PIXELS:.0e} (larger binsz or smaller width)",
            )
        sec.done()
        return cls(skydir, frame, (w[0], w[1]), binsz, proj.upper(), binsz_irf)

    def to_geom(self, skydir: tuple[float, float] | None = None):
        """The `gdask.geometry.WcsGeom` (centred on ``skydir``, in this frame, if given)."""
        from gdask.geometry import WcsGeom

        center = skydir if skydir is not None else self.skydir
        return WcsGeom.create(
            skydir=center, width=self.width, binsz=self.binsz, frame=self.frame, proj=self.proj
        )


@dataclass(frozen=True)
class GeomConfig:
    """Sky grid, energy axes and the optional per-run cutout width (deg)."""

    wcs: WcsConfig | None
    energy: EnergyAxisConfig
    energy_true: EnergyAxisConfig
    cutout_width: float | None = None
    cutout_mode: str = "trim"

    @classmethod
    def parse(cls, sec: Section, kind: str) -> GeomConfig:
        wcs = None
        if sec.data.get("wcs") is not None or kind == "3d":
            wcs = WcsConfig.parse(sec.section("wcs"))
        else:
            sec.take("wcs", None)
        axes = sec.section("axes")
        energy = EnergyAxisConfig.parse(axes.section("energy"))
        energy_true = (
            EnergyAxisConfig.parse(axes.section("energy_true"))
            if axes.data.get("energy_true") is not None
            else energy
        )
        axes.take("energy_true", None)
        axes.done()
        if wcs is not None:
            npix = round(wcs.width[0] / wcs.binsz) * round(wcs.width[1] / wcs.binsz)
            nbin = max(len(energy.edges), len(energy_true.edges)) - 1
            if npix * nbin > MAX_MAP_CELLS:
                fail(
                    sec.key("wcs.binsz"),
                    f"{npix} pixels x {nbin} energy bins = {npix * nbin:.3g} map cells, "
                    f"more than the maximum of {MAX_MAP_CELLS:.0e}",
                )
        cutout_width, cutout_mode = None, "trim"
        if sec.data.get("cutout") is not None:
            c = sec.section("cutout")
            cutout_width = as_number(c.take("width"), c.key("width"), positive=True)
            cutout_mode = as_str(
                c.take("mode", cls.cutout_mode), c.key("mode"), ("trim", "partial", "strict")
            )
            c.done()
            if kind != "3d":
                fail(sec.key("cutout"), "only for 3d datasets")
            if wcs is not None and wcs.skydir is None:
                fail(sec.key("cutout"), "not with skydir: pointing (the grid is already per run)")
        else:
            sec.take("cutout", None)
        sec.done()
        return cls(wcs, energy, energy_true, cutout_width, cutout_mode)


@dataclass(frozen=True)
class RegionConfig:
    """A circle (deg), or a point (``radius: null``: the RAD_MAX cut of point-like IRFs)."""

    lon: float
    lat: float
    radius: float | None
    frame: str = "icrs"

    @classmethod
    def parse(cls, sec: Section) -> RegionConfig:
        lon, lat, frame = _lonlat(sec)
        radius = sec.take("radius")
        radius = None if radius is None else as_number(radius, sec.key("radius"), positive=True)
        sec.done()
        return cls(lon, lat, radius, frame)

    def to_region(self):
        """A `regions.CircleSkyRegion`, or a `regions.PointSkyRegion` without radius."""
        if self.radius is None:
            from astropy.coordinates import SkyCoord
            from regions import PointSkyRegion

            return PointSkyRegion(SkyCoord(self.lon, self.lat, unit="deg", frame=self.frame))
        from gdask.geometry import circle_region

        return circle_region(self.lon, self.lat, self.radius, frame=self.frame)


@dataclass(frozen=True)
class DatasetsConfig:
    """Dataset type, geometry, stacking, and the ON region of 1d datasets."""

    type: str
    geom: GeomConfig
    stack: bool = False
    on_region: RegionConfig | None = None
    containment_correction: bool = False

    @classmethod
    def parse(cls, sec: Section) -> DatasetsConfig:
        kind = as_str(sec.take("type", "3d"), sec.key("type"), ("3d", "1d"))
        geom = GeomConfig.parse(sec.section("geom"), kind)
        stack = as_bool(sec.take("stack", cls.stack), sec.key("stack"))
        on_region = None
        if kind == "1d":
            if sec.data.get("on_region") is None:
                fail(sec.key("on_region"), "required for 1d datasets ({lon, lat, radius, frame})")
            on_region = RegionConfig.parse(sec.section("on_region"))
        elif sec.data.get("on_region") is not None:
            fail(sec.key("on_region"), "only for 1d datasets")
        else:
            sec.take("on_region", None)
        cc = as_bool(
            sec.take("containment_correction", cls.containment_correction),
            sec.key("containment_correction"),
        )
        if cc and kind != "1d":
            fail(sec.key("containment_correction"), "only for 1d datasets")
        sec.done()
        return cls(kind, geom, stack, on_region, cc)


# ----------------------------------------------------------------------------- output and fit


@dataclass(frozen=True)
class OutputConfig:
    """Where the datasets go: the dataset store, optional FITS (GADF-DL4 / OGIP) export."""

    store: Path
    overwrite: bool = False
    per_run: bool | None = None
    fits: Path | None = None

    @classmethod
    def parse(cls, sec: Section, base: Path) -> OutputConfig:
        store = as_store_path(sec.take("store"), sec.key("store"), base)
        overwrite = as_bool(sec.take("overwrite", cls.overwrite), sec.key("overwrite"))
        per_run = sec.take("per_run", None)
        per_run = None if per_run is None else as_bool(per_run, sec.key("per_run"))
        f = sec.take("fits", None)
        f = None if f is None else as_path(f, sec.key("fits"), base)
        sec.done()
        return cls(store, overwrite, per_run, f)


@dataclass(frozen=True)
class FitConfig:
    """Placeholder consumed by ``gdask fit``: the models file and the fit energy range (TeV)."""

    models: Path | None = None
    energy_min: float | None = None
    energy_max: float | None = None

    @classmethod
    def parse(cls, sec: Section, base: Path) -> FitConfig:
        m = sec.take("models", None)
        m = None if m is None else as_path(m, sec.key("models"), base)
        lo = hi = None
        if sec.data.get("fit_range") is not None:
            r = sec.section("fit_range")
            unit = as_str(r.take("unit", "TeV"), r.key("unit"))
            lo = as_energy(r.take("min"), r.key("min"), unit)
            hi = as_energy(r.take("max"), r.key("max"), unit)
            r.done()
            if hi <= lo:
                fail(sec.key("fit_range.max"), "must be > min")
        else:
            sec.take("fit_range", None)
        sec.done()
        return cls(m, lo, hi)


# ----------------------------------------------------------------------------- the whole


@dataclass(frozen=True)
class AnalysisConfig:
    """A validated analysis configuration (build with `read` or `from_dict`)."""

    observations: ObservationsConfig
    datasets: DatasetsConfig
    makers: MakersConfig
    output: OutputConfig
    fit: FitConfig | None = None

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | Path = ".") -> AnalysisConfig:
        """Validate a parsed YAML document; relative paths are taken from ``base_dir``."""
        base = Path(base_dir).resolve()
        top = Section(data, "")
        obs = ObservationsConfig.parse(top.section("observations"), base)
        datasets = DatasetsConfig.parse(top.section("datasets"))
        makers = MakersConfig.parse(top.section("makers"), datasets.type, base)
        output = OutputConfig.parse(top.section("output"), base)
        fit = FitConfig.parse(top.section("fit"), base) if top.data.get("fit") is not None else None
        top.take("fit", None)
        top.done()
        cfg = cls(obs, datasets, makers, output, fit)
        cfg._check_consistency()
        return cfg

    @classmethod
    def read(cls, path: str | Path) -> AnalysisConfig:
        """Read and validate a YAML config file."""
        p = Path(path)
        data = read_yaml(p)
        try:
            return cls.from_dict(data, p.parent)
        except ConfigError as exc:
            raise exc.with_context(file=str(p)) from exc

    def _check_consistency(self) -> None:
        d, m = self.datasets, self.makers
        if d.type == "3d" and d.stack and d.geom.wcs is not None and d.geom.wcs.skydir is None:
            fail(
                "datasets.stack",
                "per-run grids (skydir: pointing) cannot be stacked; "
                "use a fixed skydir (with geom.cutout for per-run cutouts)",
            )
        if d.type == "1d" and d.on_region is not None and d.on_region.radius is None:
            if m.background.method != "wobble":
                fail(
                    "makers.background.method",
                    "a point ON region (on_region.radius: null) "
                    "needs method: wobble (point OFF regions of the same RAD_MAX)",
                )
            if d.containment_correction:
                fail(
                    "datasets.containment_correction", "not for a point ON region (point-like IRFs)"
                )
        if (
            d.type == "1d"
            and m.background.method in ("reflected", "wobble")
            and m.background.exclusion is not None
        ):
            ex = m.background.exclusion
            if ex.regions and d.geom.wcs is None:
                fail(
                    "makers.background.exclusion.regions",
                    "1d exclusion regions need datasets.geom.wcs (the mask grid)",
                )

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (paths as strings) for logging and provenance."""

        def clean(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [clean(x) for x in v]
            return str(v) if isinstance(v, Path) else v

        return clean(asdict(self))

"""The ``makers`` section of the analysis configuration: maps, safe mask, background."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gdask.config.parse import (
    Section,
    as_int,
    as_list,
    as_number,
    as_path,
    as_str,
    fail,
)

__all__ = [
    "MakersConfig",
    "SafeMaskConfig",
    "BackgroundConfig",
    "ExclusionConfig",
    "MAP_SELECTION",
    "SAFE_MASK_METHODS_3D",
    "SAFE_MASK_METHODS_1D",
]

MAP_SELECTION = ("counts", "exposure", "background", "psf", "edisp")
SAFE_MASK_METHODS_3D = ("aeff-default", "aeff-max", "edisp-bias", "offset-max", "bkg-peak")
SAFE_MASK_METHODS_1D = ("aeff-default", "aeff-max", "edisp-bias", "offset-max", "bkg-peak")


@dataclass(frozen=True)
class SafeMaskConfig:
    """Safe-mask methods and their parameters."""

    methods: tuple[str, ...] = ()
    aeff_percent: float = 10.0
    bias_percent: float = 10.0
    fixed_offset: float | None = None

    @classmethod
    def parse(cls, sec: Section, kind: str) -> SafeMaskConfig:
        allowed = SAFE_MASK_METHODS_3D if kind == "3d" else SAFE_MASK_METHODS_1D
        methods = as_list(
            sec.take("methods", []), sec.key("methods"), lambda v, p: as_str(v, p, allowed)
        )
        aeff = as_number(
            sec.take("aeff_percent", cls.aeff_percent), sec.key("aeff_percent"), positive=True
        )
        bias = as_number(
            sec.take("bias_percent", cls.bias_percent), sec.key("bias_percent"), positive=True
        )
        fixed = sec.take("fixed_offset", None)
        fixed = None if fixed is None else as_number(fixed, sec.key("fixed_offset"), nonneg=True)
        sec.done()
        return cls(tuple(methods), aeff, bias, fixed)


@dataclass(frozen=True)
class ExclusionConfig:
    """Excluded sky: ds9 region strings and/or a FITS exclusion-mask image / ds9 file."""

    regions: tuple[str, ...] = ()
    file: Path | None = None

    @classmethod
    def parse(cls, sec: Section, base: Path) -> ExclusionConfig:
        regions = as_list(sec.take("regions", []), sec.key("regions"), as_str)
        import warnings

        from gdask.geometry import parse_regions

        for i, r in enumerate(regions):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    parsed = parse_regions(r)
            except Exception as exc:  # regions raises many types
                fail(f"{sec.key('regions')}[{i}]", f"not a ds9 region: {r!r} ({exc})")
            if not parsed:
                fail(f"{sec.key('regions')}[{i}]", f"not a ds9 region (with its frame): {r!r}")
        f = sec.take("file", None)
        f = None if f is None else as_path(f, sec.key("file"), base)
        sec.done()
        return cls(tuple(regions), f)


@dataclass(frozen=True)
class BackgroundConfig:
    """Background estimate: ``fov`` (3d), ``reflected`` or ``wobble`` (1d), ``ring`` (3d) or none."""

    method: str | None = None
    fov_method: str = "scale"
    exclusion: ExclusionConfig | None = None
    r_in: float | None = None
    width: float | None = None
    n_off_regions: int | None = None

    @classmethod
    def parse(cls, sec: Section, kind: str, base: Path) -> BackgroundConfig:
        method = sec.take("method", None)
        if method is not None:
            method = as_str(method, sec.key("method"), ("fov", "reflected", "ring", "wobble"))
            if kind == "3d" and method in ("reflected", "wobble"):
                fail(sec.key("method"), f"{method!r} is for 1d datasets (use fov or ring)")
            if kind == "1d" and method in ("fov", "ring"):
                fail(sec.key("method"), f"{method!r} is for 3d datasets (use reflected or wobble)")
        elif kind == "1d":
            method = "reflected"
        fov_method = as_str(
            sec.take("fov_method", cls.fov_method), sec.key("fov_method"), ("scale", "fit")
        )
        exclusion = (
            ExclusionConfig.parse(sec.section("exclusion"), base)
            if sec.data.get("exclusion") is not None
            else None
        )
        sec.take("exclusion", None)
        r_in = width = None
        if method == "ring":
            r_in = as_number(sec.take("r_in"), sec.key("r_in"), positive=True)
            width = as_number(sec.take("width"), sec.key("width"), positive=True)
        n_off = None
        if method == "wobble":
            n_off = as_int(sec.take("n_off_regions", 3), sec.key("n_off_regions"), positive=True)
        sec.done()
        return cls(method, fov_method, exclusion, r_in, width, n_off)


@dataclass(frozen=True)
class MakersConfig:
    """Which maps to make, the safe mask and the background estimate."""

    selection: tuple[str, ...] = MAP_SELECTION
    offset_max: float = 2.5
    safe_mask: SafeMaskConfig = field(default_factory=SafeMaskConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    fov_rotation_step: float = 1.0
    background_oversampling: int | None = None

    @classmethod
    def parse(cls, sec: Section, kind: str, base: Path) -> MakersConfig:
        sel = sec.take("selection", list(cls.selection))
        selection = as_list(sel, sec.key("selection"), lambda v, p: as_str(v, p, MAP_SELECTION))
        if not selection:
            fail(sec.key("selection"), "must not be empty")
        offset_max = as_number(
            sec.take("offset_max", cls.offset_max), sec.key("offset_max"), positive=True
        )
        safe = SafeMaskConfig.parse(sec.section("safe_mask"), kind)
        bkg = BackgroundConfig.parse(sec.section("background"), kind, base)
        step = as_number(
            sec.take("fov_rotation_step", cls.fov_rotation_step),
            sec.key("fov_rotation_step"),
            positive=True,
        )
        ovs = sec.take("background_oversampling", None)
        ovs = (
            None if ovs is None else as_int(ovs, sec.key("background_oversampling"), positive=True)
        )
        sec.done()
        if kind == "3d" and bkg.method in ("fov", "ring"):
            for need in ("counts", "background"):
                if need not in selection:
                    fail(sec.key("selection"), f"background method {bkg.method!r} needs {need!r}")
        if kind == "3d" and "bkg-peak" in safe.methods and "background" not in selection:
            fail(sec.key("safe_mask.methods"), "'bkg-peak' needs 'background' in makers.selection")
        if kind == "3d" and "edisp-bias" in safe.methods and "edisp" not in selection:
            fail(sec.key("safe_mask.methods"), "'edisp-bias' needs 'edisp' in makers.selection")
        if kind == "3d" and "aeff-max" in safe.methods and "exposure" not in selection:
            fail(sec.key("safe_mask.methods"), "'aeff-max' needs 'exposure' in makers.selection")
        return cls(tuple(selection), offset_max, safe, bkg, step, ovs)

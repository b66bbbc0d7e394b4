"""Planning of a reduction: the runs to reduce, their checks and the picklable task spec.

:func:`plan_reduction` (coordinator, cheap: index and per-run metadata only)
selects the runs, checks that each has the IRFs the requested maps need and
that the geometry overlaps its field of view, and builds a :class:`ReductionSpec`
for the run tasks of `gdask.reduce.graph`. A run task receives the maker
parameters as a `MakerPlan` (taken from the configuration once), never the
whole `~gdask.config.AnalysisConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gdask.config import AnalysisConfig, ExclusionConfig, WcsConfig
from gdask.errors import SelectionError
from gdask.geometry.axes import EnergyAxis
from gdask.reduce.selection import select_obs_ids

__all__ = [
    "MakerPlan",
    "ReductionSpec",
    "RunReport",
    "required_irfs",
    "exclusion_image",
    "plan_reduction",
]

_MAP_IRFS = {"exposure": "aeff", "background": "bkg", "psf": "psf", "edisp": "edisp"}


@dataclass(frozen=True)
class MakerPlan:
    """The maker parameters a run task applies, taken from the configuration once.

    3d-only and 1d-only fields keep their defaults in the other kind.

    Examples
    --------
    >>> import yaml
    >>> from gdask.config.template import default_config
    >>> config = AnalysisConfig.from_dict(yaml.safe_load(default_config()))
    >>> plan = MakerPlan.from_config(config)
    >>> plan.kind, plan.offset_max, plan.energy.nbin
    ('3d', 2.5, 10)
    """

    kind: str  # "3d" | "1d"
    energy: EnergyAxis
    energy_true: EnergyAxis
    offset_max: float
    safe_methods: tuple[str, ...]
    aeff_percent: float
    bias_percent: float
    background_method: str | None
    store: str
    fits: Path | None
    stack: bool
    # 3d
    wcs: WcsConfig | None = None  # the grid of per-run geometries (skydir: pointing)
    selection: tuple[str, ...] = ()
    cutout_width: float | None = None
    cutout_mode: str = "trim"
    fixed_offset: float | None = None
    fov_method: str | None = None  # the FoV normalisation, when the background method is fov
    exclusion: ExclusionConfig | None = None  # for per-run exclusion images
    background_oversampling: int | None = None
    fov_rotation_step: float = 1.0
    ring: tuple[float | None, float | None] = (None, None)  # (r_in, width)
    # 1d
    on_region: Any = None  # a regions SkyRegion
    containment_correction: bool = False
    n_off_regions: int | None = None

    @classmethod
    def from_config(cls, config: AnalysisConfig) -> MakerPlan:
        """The plan of ``config`` (built on the driver, once)."""
        d, m, out = config.datasets, config.makers, config.output
        g, safe, bkg = d.geom, m.safe_mask, m.background
        common: dict[str, Any] = dict(
            kind=d.type,
            energy=g.energy.to_axis("energy"),
            energy_true=g.energy_true.to_axis("energy_true"),
            offset_max=m.offset_max,
            safe_methods=tuple(safe.methods),
            aeff_percent=safe.aeff_percent,
            bias_percent=safe.bias_percent,
            background_method=bkg.method,
            store=str(out.store),
            fits=out.fits,
            stack=d.stack,
        )
        if d.type == "3d":
            return cls(
                **common,
                wcs=g.wcs,
                selection=tuple(m.selection),
                cutout_width=g.cutout_width,
                cutout_mode=g.cutout_mode,
                fixed_offset=safe.fixed_offset,
                fov_method=bkg.fov_method if bkg.method == "fov" else None,
                exclusion=bkg.exclusion,
                background_oversampling=m.background_oversampling,
                fov_rotation_step=m.fov_rotation_step,
                ring=(bkg.r_in, bkg.width),
            )
        return cls(
            **common,
            on_region=d.on_region.to_region() if d.on_region is not None else None,
            containment_correction=d.containment_correction,
            n_off_regions=bkg.n_off_regions,
        )


@dataclass(frozen=True)
class ReductionSpec:
    """Everything a run task needs (picklable, built once by `plan_reduction`)."""

    kind: str  # "3d" | "1d"
    archive: str
    plan: MakerPlan  # the maker parameters (not the whole config)
    irfs: tuple[str, ...]
    geom: Any = None  # WcsGeom, None for per-run grids
    exclusion: Any = None  # 3d: bool image on geom; 1d: exclusion DataArray
    write: bool = True
    keep: bool = False


@dataclass
class RunReport:
    """Outcome of one run: ``done``, ``failed`` or ``skipped`` (with the reason)."""

    obs_id: int
    status: str
    name: str = ""
    seconds: float = 0.0
    n_counts: float = 0.0
    error: str | None = None
    field: str | None = None


def required_irfs(config: AnalysisConfig) -> tuple[str, ...]:
    """HDU types each run needs for the configured maps."""
    if config.datasets.type == "1d":
        need = ["aeff", "edisp"] + (["psf"] if config.datasets.containment_correction else [])
        if "bkg-peak" in config.makers.safe_mask.methods:
            need.append("bkg")
        on = config.datasets.on_region
        if on is not None and on.radius is None:
            need.append("rad_max")  # a point ON region: the RAD_MAX cut
    else:
        need = [_MAP_IRFS[m] for m in config.makers.selection if m in _MAP_IRFS]
        if "psf" in config.makers.selection or "edisp" in config.makers.selection:
            need.append("aeff")  # the IRF maps carry their exposure
    return tuple(sorted(set(need)))


def _distance_to_geom(geom, lon: float, lat: float) -> float:
    """Angular distance (deg) from an ICRS position to the sky grid (0 inside; approximate)."""
    from astropy.coordinates import SkyCoord

    pos = SkyCoord(lon, lat, unit="deg", frame="icrs")
    x, y = geom.coord_to_pix(pos)
    x, y = float(np.ravel(x)[0]), float(np.ravel(y)[0])
    nx, ny = geom.npix
    if not (np.isfinite(x) and np.isfinite(y)):
        half = 0.5 * float(np.hypot(*geom.width))
        return max(float(geom.center_skydir.separation(pos).deg) - half, 0.0)
    cx, cy = np.clip(x, -0.5, nx - 0.5), np.clip(y, -0.5, ny - 0.5)
    if (cx, cy) == (x, y):
        return 0.0
    clon, clat = geom.pix_to_coord(np.array([cx]), np.array([cy]))
    edge = SkyCoord(float(clon[0]), float(clat[0]), unit="deg", frame=geom.frame)
    return float(edge.separation(pos).deg)


def exclusion_image(geom, excl: ExclusionConfig | None) -> np.ndarray | None:
    """Exclusion image on ``geom`` (True = usable) from regions and/or a mask file (nearest pixel)."""
    if excl is None:
        return None
    from gdask.reduce.reflected import make_exclusion_mask, read_exclusion_mask

    image = np.ones(geom.shape, dtype=bool)
    if excl.regions:
        image &= make_exclusion_mask(geom, "\n".join(excl.regions)).values
    if excl.file is not None:
        from gdask.geometry import WcsGeom

        mask = read_exclusion_mask(excl.file)
        mgeom = WcsGeom.from_dataset(mask)
        lon, lat = geom.get_coord()
        if mgeom.frame != geom.frame:
            from astropy.coordinates import SkyCoord

            sky = SkyCoord(lon, lat, unit="deg", frame=geom.frame).transform_to(mgeom.frame)
            lon, lat = sky.spherical.lon.deg, sky.spherical.lat.deg
        ix, iy = mgeom.coord_to_idx(lon, lat)
        ok = (ix >= 0) & (iy >= 0)
        image &= np.where(ok, mask.values[np.where(ok, iy, 0), np.where(ok, ix, 0)], True)
    return image


def plan_reduction(
    config: AnalysisConfig, *, keep: bool = False
) -> tuple[ReductionSpec, list[int], list[RunReport]]:
    """Select and check the runs; return the spec, the OBS_IDs to reduce and skipped-run reports.

    Raises
    ------
    SelectionError
        Nothing selected, a run lacks an IRF the maps need, or no run overlaps the geometry.
    ConfigError
        The configuration asks for something gdask cannot do.
    """
    from gdask.archive.store import ArchiveStore

    store = ArchiveStore.open(config.observations.store)
    obs_ids = select_obs_ids(config, store)
    need = required_irfs(config)
    for obs_id in obs_ids:
        rec = store.record(obs_id)
        have = set(rec.attrs.get("irf_classes", {})) if rec is not None else set()
        missing = [t for t in need if t not in have]
        if missing:
            raise SelectionError(
                f"observation has no {', '.join(missing)} IRF, needed for "
                f"{'the 1d spectrum' if config.datasets.type == '1d' else 'makers.selection'} "
                f"(it has: {', '.join(sorted(have)) or 'none'})",
                obs_id=obs_id,
                field="makers.selection" if config.datasets.type == "3d" else "irfs",
            )
    index = store.index().sel(obs=obs_ids)
    ra, dec = index["RA_PNT"].values.astype(float), index["DEC_PNT"].values.astype(float)
    d, m = config.datasets, config.makers
    geom = exclusion = None
    skipped: list[RunReport] = []
    todo = list(obs_ids)
    if d.type == "3d":
        if d.geom.wcs.skydir is not None:
            geom = d.geom.wcs.to_geom()
            reach = m.offset_max
            if d.geom.cutout_width is not None:
                reach = min(reach, 0.5 * d.geom.cutout_width)
            dist = {
                i: _distance_to_geom(geom, r, de) for i, r, de in zip(obs_ids, ra, dec, strict=True)
            }
            todo = [i for i in obs_ids if dist[i] < reach]
            if not todo:
                nearest = min(dist.values())
                raise SelectionError(
                    f"the geometry does not overlap any of the {len(obs_ids)} selected observations "
                    f"(nearest pointing {nearest:.2f} deg from the grid, field of view {reach} deg)",
                    field="datasets.geom.wcs",
                )
            skipped = [
                RunReport(
                    i,
                    "skipped",
                    str(i),
                    error=f"no overlap with the geometry "
                    f"(pointing {dist[i]:.2f} deg from the grid)",
                )
                for i in obs_ids
                if i not in todo
            ]
            exclusion = exclusion_image(geom, m.background.exclusion)
    else:
        from astropy.coordinates import SkyCoord

        on = d.on_region
        center = SkyCoord(on.lon, on.lat, unit="deg", frame=on.frame)
        sep = SkyCoord(ra, dec, unit="deg", frame="icrs").separation(center).deg
        todo = [i for i, s in zip(obs_ids, sep, strict=True) if s < m.offset_max]
        if not todo:
            raise SelectionError(
                f"the ON region is not within makers.offset_max = {m.offset_max} deg of any of the "
                f"{len(obs_ids)} selected pointings (nearest {float(sep.min()):.2f} deg)",
                field="datasets.on_region",
            )
        skipped = [
            RunReport(i, "skipped", str(i), error=f"ON region {s:.2f} deg from the pointing")
            for i, s in zip(obs_ids, sep, strict=True)
            if i not in todo
        ]
        exclusion = _exclusion_1d(config)
    per_run = config.output.per_run if config.output.per_run is not None else not d.stack
    spec = ReductionSpec(
        d.type,
        str(store.path.resolve()),
        MakerPlan.from_config(config),
        need,
        geom,
        exclusion,
        write=per_run,
        keep=keep,
    )
    return spec, todo, skipped


def _exclusion_1d(config: AnalysisConfig):
    excl = config.makers.background.exclusion
    if excl is None:
        return None
    from gdask.reduce.reflected import read_exclusion_mask

    if not excl.regions:
        return read_exclusion_mask(excl.file)
    import xarray as xr

    geom = config.datasets.geom.wcs.to_geom()
    image = exclusion_image(geom, excl)
    return xr.DataArray(image, dims=("lat", "lon"), attrs=geom.to_attrs(), name="exclusion_mask")

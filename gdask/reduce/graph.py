"""The reduction as a Dask graph: one task per observation, stacking as a tree reduction.

:func:`plan_reduction` (coordinator, cheap: index and per-run metadata only)
selects the runs, checks that each has the IRFs the requested maps need and
that the geometry overlaps its field of view, and builds a picklable
:class:`ReductionSpec`. :func:`reduce_run` (one task per run, on a worker)
opens the run from the archive store -- only the event columns and IRFs it
needs --, runs the makers, and writes the dataset atomically into the
dataset store (or returns it). With ``datasets.stack`` the per-run datasets
stay on the workers and are combined pairwise (`gdask.reduce.stack`) in a
binary tree of tasks. :func:`reduce` drives it all with a progress bar.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gdask.config import AnalysisConfig, ExclusionConfig
from gdask.errors import ConfigError, GdaskError, SelectionError

__all__ = [
    "ReductionSpec",
    "RunReport",
    "ReduceSummary",
    "select_obs_ids",
    "column_matches",
    "plan_reduction",
    "reduce_run",
    "reduce",
    "write_dataset",
    "STACKED_NAME",
    "SCHEDULER_LOST",
]

STACKED_NAME = "stacked"
#: error of the runs left unreduced when the scheduler was lost (summarised once)
SCHEDULER_LOST = "not reduced: the Dask scheduler was lost"
_EVENT_COLUMNS = ("TIME", "RA", "DEC", "ENERGY")
_MAP_IRFS = {"exposure": "aeff", "background": "bkg", "psf": "psf", "edisp": "edisp"}


@dataclass(frozen=True)
class ReductionSpec:
    """Everything a run task needs (picklable, built once by `plan_reduction`)."""

    kind: str  # "3d" | "1d"
    archive: str
    config: AnalysisConfig
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


@dataclass
class ReduceSummary:
    """Reports of all runs, the stacked dataset's name, timings and where things went."""

    reports: list[RunReport]
    seconds: float
    store: str
    stacked: str | None = None
    datasets: dict[str, Any] = field(default_factory=dict, repr=False)
    #: why the Dask scheduler was lost during the reduction (None if it was not)
    scheduler_lost: str | None = None

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.reports)

    @property
    def failed(self) -> list[RunReport]:
        return [r for r in self.reports if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def format(self) -> str:
        """A human summary with one line per failed or skipped run."""
        done = self.count("done")
        rate = done / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"reduce into {self.store}: {done} runs reduced, {self.count('skipped')} skipped, "
            f"{len(self.failed)} failed in {self.seconds:.2f} s ({rate:.1f} runs/s)"
            + (f"; stacked dataset {self.stacked!r}" if self.stacked else "")
        ]
        lost = [r.obs_id for r in self.reports if r.error == SCHEDULER_LOST]
        if self.scheduler_lost is not None:
            ids = ", ".join(str(i) for i in lost[:10]) + (", ..." if len(lost) > 10 else "")
            lines.append(
                f"  the Dask scheduler was lost ({self.scheduler_lost}): {len(lost)} runs not "
                f"reduced{f' (OBS_IDs {ids})' if lost else ''}; datasets written before the "
                "loss are kept and counted as reduced"
            )
        for r in self.reports:
            if r.status in ("failed", "skipped") and r.error != SCHEDULER_LOST:
                where = f" [field {r.field}]" if r.field else ""
                lines.append(f"  {r.status.upper()} OBS_ID {r.obs_id}: {r.error}{where}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- selection


def _index_times(index, prefix: str):
    from astropy.time import Time

    dates = [str(d) for d in index[f"DATE-{prefix}"].values]
    clocks = [str(t) for t in index[f"TIME-{prefix}"].values]
    return Time([f"{d}T{t}" for d, t in zip(dates, clocks, strict=True)], scale="utc")


def _as_time(value: str | float):
    from astropy.time import Time

    return (
        Time(value, format="mjd", scale="utc")
        if isinstance(value, float)
        else Time(value, scale="utc")
    )


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    return str(value).strip()


def column_matches(values: np.ndarray, wanted: Sequence[str | float]) -> np.ndarray:
    """Rows of an index column equal to any of ``wanted`` (strings compared as trimmed text,
    numbers numerically where the column is numeric, else as text).

    Works for every dtype an index column can have (numpy ``StringDType``, fixed-width
    unicode or bytes, object, numbers).

    Examples
    --------
    >>> column_matches(np.array(["Crab", "Off data"]), ["Crab"]).tolist()
    [True, False]
    >>> column_matches(np.array([23523, 23526]), ["23526", 23523]).tolist()
    [True, True]
    """
    values = np.asarray(values)
    text = np.array([_as_text(v) for v in values.ravel()], dtype=object).reshape(values.shape)
    keep = np.zeros(values.shape, dtype=bool)
    numeric = values.dtype.kind in "iuf"
    for w in wanted:
        if numeric and not isinstance(w, str):
            keep |= values == w
        else:
            keep |= text == _as_text(w)
    return keep


def select_obs_ids(config: AnalysisConfig, store) -> list[int]:
    """OBS_IDs of the archive store matching ``config.observations`` (sorted).

    Raises
    ------
    SelectionError
        Unknown OBS_IDs, missing index columns, or nothing selected.
    """
    from astropy.coordinates import SkyCoord

    sel = config.observations
    index = store.index()
    ids = np.asarray(index["obs"].values, dtype=np.int64)
    keep = np.ones(ids.size, dtype=bool)
    if sel.obs_ids is not None:
        missing = sorted(set(sel.obs_ids) - set(ids.tolist()))
        if missing:
            raise SelectionError(
                f"OBS_IDs not in the archive store: {missing}",
                file=str(store.path),
                field="observations.obs_ids",
            )
        keep &= np.isin(ids, sel.obs_ids)
    if sel.cone is not None:
        c = sel.cone
        for col in ("RA_PNT", "DEC_PNT"):
            if col not in index:
                raise SelectionError(
                    f"the index has no {col} column",
                    file=str(store.path),
                    field="observations.cone",
                )
        pnt = SkyCoord(index["RA_PNT"].values, index["DEC_PNT"].values, unit="deg", frame="icrs")
        center = SkyCoord(c.lon, c.lat, unit="deg", frame=c.frame)
        keep &= pnt.separation(center).deg < c.radius
    if sel.time is not None:
        for col in ("DATE-OBS", "TIME-OBS", "DATE-END", "TIME-END"):
            if col not in index:
                raise SelectionError(
                    f"the index has no {col} column",
                    file=str(store.path),
                    field="observations.time",
                )
        if sel.time.start is not None:
            keep &= np.asarray(_index_times(index, "OBS") >= _as_time(sel.time.start))
        if sel.time.stop is not None:
            keep &= np.asarray(_index_times(index, "END") <= _as_time(sel.time.stop))
    for name, rule in sel.columns:
        if name not in index:
            raise SelectionError(
                f"the index has no column {name!r}; it has {sorted(index.data_vars)}",
                file=str(store.path),
                field=f"observations.columns.{name}",
            )
        values = index[name].values
        if rule[0] == "in":
            keep &= column_matches(values, rule[1])
        else:
            try:
                v = values.astype(float)
            except (TypeError, ValueError) as exc:
                raise SelectionError(
                    f"column {name!r} is not numeric; select it by value(s)",
                    file=str(store.path),
                    field=f"observations.columns.{name}",
                ) from exc
            if rule[1] is not None:
                keep &= v >= rule[1]
            if rule[2] is not None:
                keep &= v <= rule[2]
    if not keep.any():
        raise SelectionError(
            f"the selection matches none of the {ids.size} observations in the store",
            file=str(store.path),
            field="observations",
        )
    return sorted(int(i) for i in ids[keep])


# ----------------------------------------------------------------------------- planning


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


def _exclusion_image(geom, excl: ExclusionConfig | None) -> np.ndarray | None:
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
            exclusion = _exclusion_image(geom, m.background.exclusion)
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
        d.type, str(store.path.resolve()), config, need, geom, exclusion, write=per_run, keep=keep
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
    image = _exclusion_image(geom, excl)
    return xr.DataArray(image, dims=("lat", "lon"), attrs=geom.to_attrs(), name="exclusion_mask")


# ----------------------------------------------------------------------------- the run task


def _open(spec: ReductionSpec, obs_id: int):
    """The observation with only the needed IRFs and event columns, loaded (no Dask inside)."""
    from gdask.archive.store import ArchiveStore
    from gdask.dl3 import EventList

    obs = ArchiveStore(spec.archive).open_observation(obs_id, irfs=spec.irfs, lazy=False)
    ds = obs.events.ds
    obs.events = EventList(ds[[c for c in _EVENT_COLUMNS if c in ds]].load(), obs_id=obs_id)
    return obs


def _make_3d(spec: ReductionSpec, obs):
    from gdask.reduce.convert import to_map_dataset
    from gdask.reduce.maps import make_map_dataset

    cfg = spec.config
    g, m = cfg.datasets.geom, cfg.makers
    geom, exclusion = spec.geom, spec.exclusion
    if geom is None:
        row = obs.meta
        geom = g.wcs.to_geom(_pointing_in(g.wcs.frame, float(row["RA_PNT"]), float(row["DEC_PNT"])))
        exclusion = _exclusion_image(geom, m.background.exclusion)
    safe = m.safe_mask
    kwargs: dict[str, Any] = {"aeff_percent": safe.aeff_percent, "bias_percent": safe.bias_percent}
    if safe.fixed_offset is not None:
        kwargs["fixed_offset"] = safe.fixed_offset
    fov = m.background.fov_method if m.background.method == "fov" else None
    ds = make_map_dataset(
        obs,
        geom,
        g.energy.to_axis("energy"),
        g.energy_true.to_axis("energy_true"),
        g.wcs.binsz_irf,
        selection=m.selection,
        cutout_width=g.cutout_width,
        cutout_mode=g.cutout_mode,
        safe_mask=safe.methods or None,
        offset_max=m.offset_max,
        safe_mask_kwargs=kwargs,
        fov_background=fov,
        exclusion_mask=exclusion if fov else None,
        background_oversampling=m.background_oversampling,
        fov_rotation_step=m.fov_rotation_step,
        name=str(obs.obs_id),
    )
    dataset = to_map_dataset(ds, gti=obs.gti)
    if m.background.method == "ring":
        from gdask.reduce.ring import ring_background

        image = None if exclusion is None else np.asarray(exclusion, dtype=bool)
        egeom = geom if image is not None else None
        dataset = ring_background(dataset, m.background.r_in, m.background.width, image, egeom)
    return dataset


def _pointing_in(frame: str, ra: float, dec: float) -> tuple[float, float]:
    if frame == "icrs":
        return ra, dec
    from astropy.coordinates import SkyCoord

    c = SkyCoord(ra, dec, unit="deg", frame="icrs").transform_to(frame)
    return float(c.spherical.lon.deg), float(c.spherical.lat.deg)


def _make_1d(spec: ReductionSpec, obs):
    from gdask.reduce.convert import to_spectrum_dataset
    from gdask.reduce.spectrum import make_spectrum_onoff

    cfg = spec.config
    g, m = cfg.datasets.geom, cfg.makers
    finder = None
    if m.background.method == "wobble":
        from gdask.reduce.reflected import WobbleRegionsFinder

        finder = WobbleRegionsFinder(m.background.n_off_regions or 3)
    ds = make_spectrum_onoff(
        obs,
        cfg.datasets.on_region.to_region(),
        g.energy.to_axis("energy"),
        g.energy_true.to_axis("energy_true"),
        exclusion_mask=spec.exclusion,
        containment_correction=cfg.datasets.containment_correction,
        region_finder=finder,
        safe_mask_methods=m.safe_mask.methods,
        aeff_percent=m.safe_mask.aeff_percent,
        offset_max=m.offset_max,
        bias_percent=m.safe_mask.bias_percent,
    )
    return to_spectrum_dataset(ds, gti=obs.gti, name=str(obs.obs_id))


def write_dataset(store_path: str | Path, dataset, name: str | None = None) -> str:
    """Write ``dataset`` into the `DatasetStore` at ``store_path`` atomically, replacing any old one."""
    from gdask.datasets import DatasetStore

    return DatasetStore(store_path).write(dataset, name=name, overwrite=True)


def _export_fits(dataset, outdir: Path, overwrite: bool) -> None:
    from gdask.datasets import SpectrumDatasetOnOff

    outdir.mkdir(parents=True, exist_ok=True)
    if isinstance(dataset, SpectrumDatasetOnOff):
        dataset.write(outdir, overwrite=overwrite)
    else:
        dataset.write(outdir / f"{dataset.name}.fits.gz", overwrite=overwrite)


def _unusable(spec: ReductionSpec, dataset) -> str | None:
    """Why a made dataset holds nothing usable (a 1D run without OFF regions), else None."""
    if spec.kind != "1d" or int(dataset.meta.get("n_off_regions", 1)) > 0:
        return None
    method = spec.config.makers.background.method
    offset = float(dataset.meta.get("offset", float("nan")))
    return (
        f"no OFF region: the {method} region finder found none (ON region {offset:.2f} deg "
        "from the pointing); the run would be fully masked"
    )


def reduce_run(spec: ReductionSpec, obs_id: int) -> tuple[RunReport, Any]:
    """Reduce one run (a Dask task): open, make, write atomically; return (report, dataset or None).

    The dataset is returned when the spec asks to keep it or to stack; any
    error becomes a ``failed`` report naming the OBS_ID. A run without anything
    usable (1D: no OFF region found) is ``skipped`` with the reason, and not written.
    """
    t0 = time.perf_counter()
    try:
        obs = _open(spec, obs_id)
        dataset = _make_3d(spec, obs) if spec.kind == "3d" else _make_1d(spec, obs)
        reason = _unusable(spec, dataset)
        if reason is not None:  # nothing usable: not written, not stacked
            return RunReport(
                obs_id,
                "skipped",
                str(obs_id),
                time.perf_counter() - t0,
                error=reason,
                field="makers.background",
            ), None
        if spec.write:
            out = spec.config.output
            write_dataset(out.store, dataset)
            if out.fits is not None:
                _export_fits(dataset, out.fits, overwrite=True)
        n = float(
            np.asarray(dataset.counts.values)[np.asarray(dataset.mask_safe.values, bool)].sum()
        )
    except GdaskError as exc:
        exc = exc.with_context(obs_id=obs_id)
        return RunReport(
            obs_id,
            "failed",
            str(obs_id),
            time.perf_counter() - t0,
            error=exc.message,
            field=exc.field,
        ), None
    except Exception as exc:  # a bug or bad data must not lose the other runs
        return RunReport(
            obs_id,
            "failed",
            str(obs_id),
            time.perf_counter() - t0,
            error=f"{type(exc).__name__}: {exc}",
        ), None
    report = RunReport(obs_id, "done", dataset.name, time.perf_counter() - t0, n_counts=n)
    keep = spec.keep or spec.config.datasets.stack
    return report, (dataset if keep else None)


# ----------------------------------------------------------------------------- stacking


def _empty_parent(spec: ReductionSpec):
    """An empty stacked dataset on the full grid (the accumulator of cutout stacking)."""
    from gdask.datasets import MapDataset
    from gdask.reduce.stack import empty_like

    g = spec.config.datasets.geom
    full = MapDataset.create(
        spec.geom,
        g.energy.to_axis("energy"),
        g.energy_true.to_axis("energy_true"),
        binsz_irf=g.wcs.binsz_irf,
        name=STACKED_NAME,
    )
    return empty_like(full, name=STACKED_NAME)


def _leaf(result: tuple[RunReport, Any], parent=None):
    dataset = result[1]
    if dataset is None or parent is None:
        return dataset
    from gdask.reduce.stack import stack_into

    return stack_into(parent, dataset)


def _stack2(a, b):
    """`stack_pair` tolerating failed runs (None)."""
    if a is None or b is None:
        return b if a is None else a
    from gdask.reduce.stack import stack_pair

    return stack_pair(a, b)


def _finish_stacked(spec: ReductionSpec, dataset):
    """Name, write and export the stacked dataset (a task); return it if kept."""
    if dataset is None:
        return None
    dataset.ds.attrs["name"] = STACKED_NAME
    out = spec.config.output
    write_dataset(out.store, dataset, STACKED_NAME)
    if out.fits is not None:
        _export_fits(dataset, out.fits, overwrite=True)
    return dataset if spec.keep else True


def _report_only(result: tuple[RunReport, Any]) -> tuple[RunReport, None]:
    return result[0], None


def _tree(client, leaves: Sequence, fn, tag: str):
    """Pairwise reduction of futures in a binary tree of tasks."""
    level = list(leaves)
    depth = 0
    while len(level) > 1:
        nxt = [
            client.submit(fn, level[i], level[i + 1], key=f"stack-{depth}-{i // 2}-{tag}")
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    return level[0]


# ----------------------------------------------------------------------------- driver


def reduce(
    config: AnalysisConfig | str | Path,
    client=None,
    scheduler: str | None = None,
    progress: bool = True,
    *,
    n_workers: int | None = None,
    processes: bool = True,
    keep: bool = False,
    security=None,
) -> ReduceSummary:
    """Run the reduction of ``config`` on Dask; return a summary.

    ``security`` (a `distributed.Security`) is used when a client is made here
    for a remote scheduler (see `gdask.cluster.get_client`).

    Parameters
    ----------
    config : AnalysisConfig or path of a YAML file
    client : distributed.Client or gdask.cluster.ClientSource, optional
        Use this client; else one for ``scheduler``, else the current default
        client, else one for ``DASK_SCHEDULER_ADDRESS`` / an embedded LocalCluster
        of ``n_workers`` (processes or threads), shared by the ingest of a DL3 path
        and the reduction (`gdask.cluster.ClientSource`).
    progress : bool
        Show a progress bar over the runs.
    keep : bool
        Also return the datasets (``summary.datasets``, by name).

    Raises
    ------
    ConfigError, SelectionError
        Before any task runs, naming the config key, the run or the IRF at fault.
    """
    from gdask.cluster import ClientSource

    if not isinstance(config, AnalysisConfig):
        config = AnalysisConfig.read(config)
    # one source of the client for the ingest and the reduction: at most one cluster, sized
    # for the reduction (the ingest may have fewer new runs than there are runs to reduce)
    if config.observations.dl3 is not None and n_workers is None:
        ids = config.observations.obs_ids
        n_workers = min(len(ids), os.cpu_count() or 1) if ids else (os.cpu_count() or 1)
    source = ClientSource.wrap(
        client, scheduler, n_workers=n_workers, processes=processes, security=security
    )
    # the filter also covers closing a client whose scheduler was lost
    with _LossFilter.installed() as loss:
        try:
            return _reduce(config, source, progress, keep, loss)
        finally:
            if source is not client:
                source.close()


def _reduce(
    config: AnalysisConfig, source, progress: bool, keep: bool, loss: _LossFilter
) -> ReduceSummary:
    t0 = time.perf_counter()
    if config.observations.dl3 is not None:
        from gdask.archive.ingest import ingest

        # an explicit OBS_ID list is ingested alone; other selections need the index of all runs
        # (ingest is incremental, so only the first run of a config pays for that)
        ids = config.observations.obs_ids
        summary = ingest(
            config.observations.dl3,
            config.observations.store,
            client=source,
            progress=progress,
            obs_ids=None if ids is None else list(ids),
        )
        if not summary.ok:
            raise SelectionError("ingest failed:\n" + summary.format(), field="observations.dl3")
    spec, todo, skipped = plan_reduction(config, keep=keep)
    from gdask.datasets import DatasetStore

    store = DatasetStore(config.output.store)
    with store.lock():  # one reduce per output store: its clean-up would hit another's staging
        if not config.output.overwrite:
            names = {str(i) for i in todo} if spec.write else set()
            names |= {STACKED_NAME} if config.datasets.stack else set()
            clash = sorted(set(store.names()) & names)
            if clash:
                raise ConfigError(
                    f"the dataset store already holds {clash[:5]}"
                    f"{'...' if len(clash) > 5 else ''}; set output.overwrite: true",
                    field="output.overwrite",
                    file=str(config.output.store),
                )
        reports, stacked, datasets, lost = _run(
            source.get(n_tasks=len(todo)), spec, todo, progress, loss
        )
    reports = sorted(reports + skipped, key=lambda r: r.obs_id)
    return ReduceSummary(
        reports, time.perf_counter() - t0, str(config.output.store), stacked, datasets, lost
    )


class _LossFilter(logging.Filter):
    """Once the scheduler is known lost, drops distributed's warnings and errors (its
    reconnection attempts log tracebacks) so that the loss is said once, in the summary."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.lost and record.levelno >= logging.WARNING)

    @classmethod
    @contextlib.contextmanager
    def installed(cls) -> Iterator[_LossFilter]:
        """The filter on the ``distributed`` loggers for the duration of the block."""
        f = cls()
        loggers = [logging.getLogger(n) for n in ("distributed", "distributed.client")]
        for lg in loggers:
            lg.addFilter(f)
        handlers = [h for lg in loggers for h in lg.handlers]
        for h in handlers:
            h.addFilter(f)
        try:
            yield f
        finally:
            for lg in loggers:
                lg.removeFilter(f)
            for h in handlers:
                h.removeFilter(f)


def _scheduler_lost(client, exc: BaseException) -> bool:
    """Whether a task's failure is the loss of the scheduler (not an error of the task)."""
    if "scheduler-connection-lost" in str(exc):
        return True
    from asyncio import CancelledError

    from distributed.comm.core import CommClosedError

    return isinstance(exc, CancelledError | CommClosedError | OSError) and (
        getattr(client, "status", "running") != "running"
    )


def _written_since(store, name: str, t_wall: float) -> bool:
    """Whether the dataset ``name`` was (re)written into ``store`` since ``t_wall``."""
    path = store.path / "datasets" / name
    try:
        return path.is_dir() and path.stat().st_mtime >= t_wall
    except OSError:
        return False


def _run(client, spec: ReductionSpec, todo: list[int], progress: bool, loss: _LossFilter):
    from distributed import as_completed
    from tqdm import tqdm

    from gdask.datasets import DatasetStore

    store = DatasetStore(spec.config.output.store)
    store.cleanup()
    t_wall = time.time() - 1.0  # directory mtimes may be coarse
    tag = uuid.uuid4().hex[:12]
    runs = {
        client.submit(reduce_run, spec, obs_id, key=f"reduce-{obs_id}-{tag}"): obs_id
        for obs_id in todo
    }
    # the client waits on reports only: datasets to be stacked stay on the workers
    watch = (
        runs
        if spec.keep
        else {client.submit(_report_only, f, key=f"report-{i}-{tag}"): i for f, i in runs.items()}
    )
    stacked_fut = None
    if spec.config.datasets.stack:
        parent = None
        if spec.kind == "3d" and spec.config.datasets.geom.cutout_width is not None:
            parent = client.submit(_empty_parent, spec, pure=False)
        leaves = [client.submit(_leaf, f, parent, pure=False) for f in runs]
        stacked_fut = client.submit(
            _finish_stacked, spec, _tree(client, leaves, _stack2, tag), pure=False
        )
    if not spec.keep:
        runs = {}  # drop our references: each run's dataset is freed once its leaf has used it
    reports: list[RunReport] = []
    datasets: dict[str, Any] = {}
    lost: str | None = None
    bar = tqdm(total=len(watch), desc="reduce", unit="run", disable=not progress)
    try:
        for fut in as_completed(list(watch)):
            obs_id = watch[fut]
            try:
                report, dataset = fut.result()
            except Exception as exc:  # the worker died or the task raised outside its guard
                dataset = None
                if lost is not None or _scheduler_lost(client, exc):
                    lost = lost or f"{type(exc).__name__}: {exc}"
                    loss.lost = True
                    report = _after_loss(spec, store, obs_id, t_wall)
                else:
                    report = RunReport(
                        obs_id,
                        "failed",
                        str(obs_id),
                        error=f"task failed: {type(exc).__name__}: {exc}",
                    )
            reports.append(report)
            if dataset is not None and spec.keep:
                datasets[dataset.name] = dataset
            bar.update(1)
            fut.release()
        stacked = None
        if stacked_fut is not None:
            bar.set_description("stack")
            try:
                result = stacked_fut.result()
            except Exception as exc:
                if lost is None and not _scheduler_lost(client, exc):
                    raise
                lost = lost or f"{type(exc).__name__}: {exc}"
                loss.lost = True
                result = True if _written_since(store, STACKED_NAME, t_wall) else None
            if result is not None:
                stacked = STACKED_NAME
                if spec.keep and result is not True:
                    datasets[STACKED_NAME] = result
    finally:
        bar.close()
    if lost is not None:  # a worker may have finished writing since the loss was seen
        reports = [
            _after_loss(spec, store, r.obs_id, t_wall) if r.error == SCHEDULER_LOST else r
            for r in reports
        ]
    return reports, stacked, datasets, lost


def _after_loss(spec: ReductionSpec, store, obs_id: int, t_wall: float) -> RunReport:
    """The report of a run whose result was lost with the scheduler: ``done`` if its dataset
    reached the store during this reduction, else failed with `SCHEDULER_LOST`."""
    if spec.write and _written_since(store, str(obs_id), t_wall):
        return RunReport(obs_id, "done", str(obs_id))
    return RunReport(obs_id, "failed", str(obs_id), error=SCHEDULER_LOST)

"""The reduction as a Dask graph: one task per observation, stacking as a tree reduction.

:func:`plan_reduction` (`gdask.reduce.plan`; coordinator, cheap: index and per-run metadata)
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

from gdask.config import AnalysisConfig
from gdask.errors import ConfigError, GdaskError, SelectionError
from gdask.reduce.plan import ReductionSpec, RunReport, exclusion_image, plan_reduction
from gdask.reduce.selection import column_matches, select_obs_ids

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

    p = spec.plan
    geom, exclusion = spec.geom, spec.exclusion
    if geom is None:
        row = obs.meta
        geom = p.wcs.to_geom(_pointing_in(p.wcs.frame, float(row["RA_PNT"]), float(row["DEC_PNT"])))
        exclusion = exclusion_image(geom, p.exclusion)
    kwargs: dict[str, Any] = {"aeff_percent": p.aeff_percent, "bias_percent": p.bias_percent}
    if p.fixed_offset is not None:
        kwargs["fixed_offset"] = p.fixed_offset
    fov = p.fov_method
    ds = make_map_dataset(
        obs,
        geom,
        p.energy,
        p.energy_true,
        p.wcs.binsz_irf,
        selection=p.selection,
        cutout_width=p.cutout_width,
        cutout_mode=p.cutout_mode,
        safe_mask=p.safe_methods or None,
        offset_max=p.offset_max,
        safe_mask_kwargs=kwargs,
        fov_background=fov,
        exclusion_mask=exclusion if fov else None,
        background_oversampling=p.background_oversampling,
        fov_rotation_step=p.fov_rotation_step,
        name=str(obs.obs_id),
    )
    dataset = to_map_dataset(ds, gti=obs.gti)
    if p.background_method == "ring":
        from gdask.reduce.ring import ring_background

        image = None if exclusion is None else np.asarray(exclusion, dtype=bool)
        egeom = geom if image is not None else None
        dataset = ring_background(dataset, p.ring[0], p.ring[1], image, egeom)
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

    p = spec.plan
    finder = None
    if p.background_method == "wobble":
        from gdask.reduce.reflected import WobbleRegionsFinder

        finder = WobbleRegionsFinder(p.n_off_regions or 3)
    ds = make_spectrum_onoff(
        obs,
        p.on_region,
        p.energy,
        p.energy_true,
        exclusion_mask=spec.exclusion,
        containment_correction=p.containment_correction,
        region_finder=finder,
        safe_mask_methods=p.safe_methods,
        aeff_percent=p.aeff_percent,
        offset_max=p.offset_max,
        bias_percent=p.bias_percent,
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
    method = spec.plan.background_method
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
            write_dataset(spec.plan.store, dataset)
            if spec.plan.fits is not None:
                _export_fits(dataset, spec.plan.fits, overwrite=True)
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
    keep = spec.keep or spec.plan.stack
    return report, (dataset if keep else None)


# ----------------------------------------------------------------------------- stacking


def _empty_parent(spec: ReductionSpec):
    """An empty stacked dataset on the full grid (the accumulator of cutout stacking)."""
    from gdask.datasets import MapDataset
    from gdask.reduce.stack import empty_like

    p = spec.plan
    full = MapDataset.create(
        spec.geom,
        p.energy,
        p.energy_true,
        binsz_irf=p.wcs.binsz_irf,
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
    write_dataset(spec.plan.store, dataset, STACKED_NAME)
    if spec.plan.fits is not None:
        _export_fits(dataset, spec.plan.fits, overwrite=True)
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

    store = DatasetStore(spec.plan.store)
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
    if spec.plan.stack:
        parent = None
        if spec.kind == "3d" and spec.plan.cutout_width is not None:
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

"""Incremental, crash-safe, parallel ingest of a GADF DL3 archive into an archive store.

The work splits in three:

1. :func:`plan_ingest` (coordinator, cheap): resolve each observation's source
   files from the DL3 index and compare them with the store's provenance
   (size and mtime first, SHA-256 when those differ). Up-to-date observations
   are skipped without opening their FITS files.
2. :func:`ingest_one` (one Dask task per observation, pure): read and
   validate the observation, write it under ``_staging/`` and commit it with
   an atomic rename. Errors come back as a report, never as a lost batch.
3. :func:`ingest` drives both, shows a progress bar and rewrites the index.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import numbers
import os
import shutil
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gdask import __version__
from gdask.archive.store import STORE_FORMAT, ArchiveStore
from gdask.errors import ArchiveError, ConfigError, FileReadError, GdaskError

__all__ = [
    "ObservationPlan",
    "IngestReport",
    "IngestSummary",
    "plan_ingest",
    "ingest_one",
    "ingest",
    "file_fingerprint",
    "sha256_file",
]

DEFAULT_CHUNK_EVENTS = 1_000_000


def sha256_file(path: str | Path, blocksize: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(blocksize):
            h.update(chunk)
    return h.hexdigest()


def check_source_file(path: str | Path, obs_id: int | None = None) -> os.stat_result:
    """``stat`` a source file; a `FileReadError` unless it is a readable regular file.

    Catches what would otherwise hang or abort a whole ingest: a missing file,
    a symlink loop, a directory or FIFO where a file is expected (reading a
    FIFO blocks forever) and a file the process may not read.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        why = {
            errno.ENOENT: "file not found",
            errno.ELOOP: "symlink loop",
            errno.EACCES: "permission denied",
            errno.ENOTDIR: "file not found (a path component is not a folder)",
        }.get(exc.errno or -1, f"cannot stat file: {exc.strerror or exc}")
        raise FileReadError(why, file=str(path), obs_id=obs_id) from exc
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "not a regular file"
        )
        raise FileReadError(f"expected a FITS file, found {kind}", file=str(path), obs_id=obs_id)
    if not os.access(path, os.R_OK):
        raise FileReadError("permission denied (not readable)", file=str(path), obs_id=obs_id)
    return st


def file_fingerprint(path: str | Path, obs_id: int | None = None) -> dict[str, Any]:
    """Cheap identity of a file: absolute path, size and mtime (ns).

    Raises `FileReadError` if it is not a readable regular file (`check_source_file`).
    """
    st = check_source_file(path, obs_id)
    p = Path(path).resolve()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class ObservationPlan:
    """What to do with one observation: ``new``, ``changed``, ``unchanged`` or ``error``."""

    obs_id: int
    action: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    file: str | None = None
    field: str | None = None
    index_entry: str = ""


@dataclass
class IngestReport:
    """The outcome of one observation's ingest task."""

    obs_id: int | None  # None: an index row without a usable OBS_ID
    status: str  # "ingested", "replaced", "unchanged", "failed"
    n_events: int = 0
    n_bytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    file: str | None = None
    field: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def from_error(cls, obs_id: int | None, exc: GdaskError, **kw: Any) -> IngestReport:
        """A ``failed`` report carrying a gdask error's message, file and field."""
        return cls(
            obs_id if obs_id is not None else exc.obs_id,
            "failed",
            error=exc.message,
            file=exc.file,
            field=exc.field,
            **kw,
        )


@dataclass
class IngestSummary:
    """All reports of one ingest, with totals."""

    reports: list[IngestReport]
    seconds: float
    store: str
    #: store-level failures (e.g. the index could not be rewritten)
    errors: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.reports)

    @property
    def failed(self) -> list[IngestReport]:
        return [r for r in self.reports if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors

    @property
    def n_bytes(self) -> int:
        return sum(r.n_bytes for r in self.reports if r.status in ("ingested", "replaced"))

    def format(self) -> str:
        """A human summary: counts, throughput, and one line per failure."""
        done = self.count("ingested") + self.count("replaced")
        rate = done / self.seconds if self.seconds > 0 else 0.0
        mb = self.n_bytes / 1e6
        lines = [
            f"ingest into {self.store}: {self.count('ingested')} new, {self.count('replaced')} replaced, "
            f"{self.count('unchanged')} unchanged, {len(self.failed)} failed "
            f"in {self.seconds:.2f} s ({rate:.1f} runs/s, {mb / self.seconds if self.seconds else 0:.1f} MB/s)"
        ]
        for r in self.failed:
            where = ", ".join(
                x
                for x in (f"file {r.file}" if r.file else "", f"field {r.field}" if r.field else "")
                if x
            )
            who = f"OBS_ID {r.obs_id}" if r.obs_id is not None else "index row"
            lines.append(f"  FAILED {who}: {r.error}" + (f" [{where}]" if where else ""))
        for r in self.reports:
            for w in r.warnings:
                lines.append(f"  WARNING OBS_ID {r.obs_id}: {w}")
        for e in self.errors:
            lines.append(f"  STORE ERROR: {e}")
        return "\n".join(lines)


def _source_files(index, obs_id: int) -> list[Path]:
    files = []
    for hdu_type in index.hdu_types(obs_id):
        loc = index.hdu_location(obs_id, hdu_type)
        if loc.path not in files:
            files.append(loc.path)
    return files


def index_entry_hash(index, obs_id: int) -> str:
    """SHA-256 of an observation's own index entries (its obs-index row and HDU locations).

    Appending runs to an archive rewrites its index files; hashing only the
    observation's entries keeps the other observations "unchanged".
    """
    import json

    entry = {
        "row": index.obs_row(obs_id),
        "hdus": {
            t: [str(loc.path), loc.hdu_name, loc.hdu_class]
            for t in sorted(index.hdu_types(obs_id))
            for loc in [index.hdu_location(obs_id, t)]
        },
    }
    blob = json.dumps(entry, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def plan_ingest(
    index, store: ArchiveStore, *, checksum: bool = False, obs_ids: Sequence[int] | None = None
) -> list[ObservationPlan]:
    """Decide, per observation, whether it must be (re)written.

    Parameters
    ----------
    index : `~gdask.dl3.DL3Index`
        The DL3 archive.
    store : ArchiveStore
        The target store.
    checksum : bool
        Verify SHA-256 of every source even when size and mtime match.
    obs_ids : sequence of int, optional
        Restrict to these observations.
    """
    hashes: dict[str, str] = {}

    def sha(path: str) -> str:
        if path not in hashes:
            hashes[path] = sha256_file(path)
        return hashes[path]

    plans = []
    for obs_id in obs_ids if obs_ids is not None else index.obs_ids:
        obs_id = int(obs_id)
        try:
            fps = [file_fingerprint(p, obs_id) for p in _source_files(index, obs_id)]
            entry = index_entry_hash(index, obs_id)
        except GdaskError as exc:
            plans.append(
                ObservationPlan(obs_id, "error", error=exc.message, file=exc.file, field=exc.field)
            )
            continue
        rec = store.record(obs_id)
        if rec is None:
            plans.append(ObservationPlan(obs_id, "new", fps, index_entry=entry))
            continue
        stored = {s["path"]: s for s in rec.sources}
        prov = rec.attrs.get("provenance", {})
        same = (
            prov.get("store_format") == STORE_FORMAT
            and prov.get("index_entry") == entry
            and set(stored) == {f["path"] for f in fps}
        )
        if same:
            for fp in fps:
                old = stored[fp["path"]]
                if checksum or (old["size"], old["mtime_ns"]) != (fp["size"], fp["mtime_ns"]):
                    if old["size"] != fp["size"] or old["sha256"] != sha(fp["path"]):
                        same = False
                        break
        plans.append(
            ObservationPlan(obs_id, "unchanged" if same else "changed", fps, index_entry=entry)
        )
    for plan in plans:
        if plan.action in ("new", "changed"):
            for fp in plan.sources:
                try:
                    fp["sha256"] = sha(fp["path"])
                except OSError as exc:  # unreadable although stat-able
                    plan.action, plan.file = "error", fp["path"]
                    plan.error = f"cannot read file: {exc.strerror or exc}"
                    break
    return plans


def ingest_one(
    index,
    obs_id: int,
    store_path: str,
    sources: list[dict[str, Any]],
    replace: bool,
    index_entry: str = "",
    chunk_events: int = DEFAULT_CHUNK_EVENTS,
) -> IngestReport:
    """Read, validate and commit one observation to the store; a Dask task (pure, no shared state).

    Content that cannot be physically right (`gdask.dl3.validate`) fails the
    run; what may be legitimate (a few NaN events) is a warning in the report.
    Any gdask error becomes a ``failed`` report naming file, observation and field.
    """
    from gdask.dl3 import read_observation
    from gdask.dl3.validate import raise_for_errors, validate_observation

    t0 = time.perf_counter()
    store = ArchiveStore(store_path)
    staging = None
    try:
        obs = read_observation(index, obs_id)
        files = {t: str(index.hdu_location(obs_id, t).path) for t in obs.irfs}
        issues = validate_observation(
            obs,
            files=files,
            index_file=None if index.obs_file is None else str(index.obs_file),
            obs_row=index.obs_values(obs_id),
        )
        warnings = raise_for_errors(issues)  # physically impossible content: a failed run
        attrs = {
            "obs_id": int(obs_id),
            "index_row": index.obs_row(obs_id),
            "n_events": int(obs.events.n_events),
            "provenance": {
                "sources": sources,
                "index_entry": index_entry,
                "gdask_version": __version__,
                "store_format": STORE_FORMAT,
            },
        }
        staging = store.write_observation_staged(obs, attrs, chunk_events=chunk_events)
        store.commit_observation(obs_id, staging)
        staging = None
    except GdaskError as exc:
        return IngestReport.from_error(obs_id, exc, seconds=time.perf_counter() - t0)
    except OSError as exc:  # the store's disk: full, read-only, quota...
        return IngestReport(
            obs_id,
            "failed",
            error=f"cannot write the store: {exc.strerror or exc}",
            file=str(store.path),
            seconds=time.perf_counter() - t0,
        )
    except Exception as exc:  # an unexpected bug must not lose the other observations
        return IngestReport(
            obs_id,
            "failed",
            error=f"unexpected {type(exc).__name__}: {exc}",
            seconds=time.perf_counter() - t0,
        )
    finally:
        if staging is not None:  # a failed write leaves nothing behind
            shutil.rmtree(staging, ignore_errors=True)
    return IngestReport(
        obs_id,
        "replaced" if replace else "ingested",
        n_events=int(obs.events.n_events),
        n_bytes=sum(s["size"] for s in sources),
        seconds=time.perf_counter() - t0,
        warnings=warnings,
    )


def ingest(
    source: str | Path,
    store_path: str | Path,
    *,
    scheduler: str | None = None,
    client=None,
    checksum: bool = False,
    obs_ids: Sequence[int] | None = None,
    progress: bool = True,
    n_workers: int | None = None,
    processes: bool = True,
    chunk_events: int = DEFAULT_CHUNK_EVENTS,
    on_report: Callable[[IngestReport], None] | None = None,
    security=None,
) -> IngestSummary:
    """Ingest a DL3 archive (directory or index file) into the store at ``store_path``.

    Only new or changed observations are read, each in its own Dask task on
    ``client`` (a `distributed.Client` or a `gdask.cluster.ClientSource`), else
    a client for ``scheduler``, else the current default client, else one for
    ``DASK_SCHEDULER_ADDRESS`` / an embedded LocalCluster, started only if there
    is work to do (see `gdask.cluster.ClientSource`).

    Returns
    -------
    IngestSummary
        Reports of every observation; ``summary.ok`` is False if any failed.
    """
    from gdask.dl3.index import DL3Index

    if (
        isinstance(chunk_events, bool)
        or not isinstance(chunk_events, numbers.Integral)
        or chunk_events < 1
    ):
        raise ConfigError(
            f"chunk_events must be a positive integer, not {chunk_events!r}",
            field="--chunk-events",
        )
    t0 = time.perf_counter()
    index = DL3Index.read(source)
    # index rows without a usable OBS_ID (or a duplicated one) are reported, not fatal
    rejected = [
        e for e in index.rejected if obs_ids is None or e.obs_id is None or e.obs_id in obs_ids
    ]
    if obs_ids is not None:
        bad = {e.obs_id for e in rejected}
        index = index.select(obs_ids=[o for o in obs_ids if o not in bad])
    reports: list[IngestReport] = [IngestReport.from_error(None, e) for e in rejected]
    try:
        store = ArchiveStore.create(store_path)
        with store.lock():
            try:
                errors = _ingest_locked(
                    index,
                    store,
                    reports,
                    checksum,
                    lambda todo: _run_tasks(
                        index,
                        todo,
                        store,
                        scheduler,
                        client,
                        progress,
                        n_workers,
                        processes,
                        chunk_events,
                        on_report,
                        security,
                    ),
                )
            finally:
                store.clean_staging()  # leftovers of failed writes and of tasks lost with a worker
    except OSError as exc:  # store-level I/O (its folder, lock, metadata): no traceback
        raise ArchiveError(
            f"cannot write the store: {exc.strerror or exc}", file=str(exc.filename or store_path)
        ) from exc
    reports.sort(key=lambda r: (r.obs_id is not None, r.obs_id or 0))
    return IngestSummary(reports, time.perf_counter() - t0, str(store.path), errors)


def _ingest_locked(
    index, store, reports: list[IngestReport], checksum: bool, run_tasks: Callable
) -> list[str]:
    """Plan, run the tasks and rewrite the index (lock held); append to ``reports``.

    Returns the store-level errors.
    """
    errors: list[str] = []
    store.clean_staging()
    plans = plan_ingest(index, store, checksum=checksum)
    for p in plans:
        if p.action == "unchanged":
            reports.append(IngestReport(p.obs_id, "unchanged"))
        elif p.action == "error":
            reports.append(
                IngestReport(p.obs_id, "failed", error=p.error, file=p.file, field=p.field)
            )
    todo = [p for p in plans if p.action in ("new", "changed")]
    if todo:
        reports.extend(run_tasks(todo))
    if todo or not store.index_is_current():
        store.clean_staging()  # leftovers of tasks lost with a worker: free their space first
        try:
            store.write_index()
        except OSError as exc:  # the observations' own records still list them
            errors.append(
                f"the store index was not rewritten ({exc.strerror or exc}); it is rebuilt "
                f"from the observations when read, re-run ingest to rewrite it [file {store.path}]"
            )
    return errors


def _run_tasks(
    index,
    todo,
    store,
    scheduler,
    client,
    progress,
    n_workers,
    processes,
    chunk_events,
    on_report,
    security,
):
    from gdask.cluster import ClientSource

    source = ClientSource.wrap(
        client, scheduler, n_workers=n_workers, processes=processes, security=security
    )
    try:
        c = source.get(n_tasks=len(todo))
        return _submit_all(c, index, todo, store, progress, chunk_events, on_report)
    finally:
        if source is not client:  # a ClientSource passed in is closed by its owner
            source.close()


def _submit_all(client, index, todo, store, progress, chunk_events, on_report):
    from distributed import as_completed
    from tqdm import tqdm

    futures = []
    for plan in todo:
        sub = index.select(obs_ids=[plan.obs_id])
        futures.append(
            client.submit(
                ingest_one,
                sub,
                plan.obs_id,
                str(store.path.resolve()),
                plan.sources,
                plan.action == "changed",
                plan.index_entry,
                chunk_events,
                key=f"ingest-{plan.obs_id}-{plan.sources[0].get('sha256', '')[:12]}",
                pure=False,
            )
        )
    reports = []
    bar = tqdm(total=len(futures), desc="ingest", unit="run", disable=not progress)
    try:
        for fut in as_completed(futures):
            try:
                rep = fut.result()
            except Exception as exc:  # worker died or task raised outside ingest_one's guard
                obs_id = int(fut.key.split("-")[1])
                rep = IngestReport(
                    obs_id, "failed", error=f"task failed: {type(exc).__name__}: {exc}"
                )
            reports.append(rep)
            if on_report:
                on_report(rep)
            bar.update(1)
    finally:
        bar.close()
    return reports

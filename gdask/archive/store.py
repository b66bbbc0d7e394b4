"""The zarr archive store: layout, atomic writes, provenance and lazy reads.

See ``docs/data-model.md`` for the layout. The store is a zarr v3 hierarchy on
a filesystem path. An observation becomes visible by one atomic directory
rename, so readers see every observation either complete or not at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gdask import __version__
from gdask.archive.staging import StagedWrites
from gdask.errors import ArchiveError

__all__ = [
    "STORE_FORMAT",
    "ArchiveStore",
    "ObservationRecord",
    "read_json_attrs",
    "exclusive_lock",
]

#: Version of the on-disk layout; bump when the layout changes incompatibly.
STORE_FORMAT = 1

_OBS = "obs"
_INDEX = "index"
_LOCK = ".ingest.lock"
_COMPONENTS = ("events", "gti")


@contextlib.contextmanager
def exclusive_lock(
    folder: Path, lock_name: str, busy: str, field: str | None = None
) -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``folder/lock_name`` (created if missing).

    The lock is released on exit and by the OS if the process dies, so a killed
    writer never leaves a store locked.

    Raises
    ------
    ArchiveError
        Another process holds the lock (message ``busy``, naming ``folder`` and ``field``).

    Examples
    --------
    >>> import tempfile
    >>> with exclusive_lock(Path(tempfile.mkdtemp()), ".lock", "busy"):
    ...     pass
    """
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fh = open(folder / lock_name, "w")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ArchiveError(busy, file=str(folder), field=field) from exc
        yield
    finally:
        fh.close()


def read_json_attrs(group_dir: Path) -> dict[str, Any]:
    """Read the attributes of a zarr v3 group directly from its ``zarr.json``.

    This avoids importing zarr/xarray for the cheap metadata look-ups that an
    up-to-date re-ingest consists of.
    """
    with open(group_dir / "zarr.json", encoding="utf-8") as fh:
        return json.load(fh).get("attributes", {})


def _write_group_json(group_dir: Path, attrs: dict[str, Any]) -> None:
    """Write (or overwrite) a zarr v3 group's metadata document with ``attrs``."""
    group_dir.mkdir(parents=True, exist_ok=True)
    doc = {"attributes": attrs, "zarr_format": 3, "node_type": "group"}
    tmp = group_dir / f".zarr.json.{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=_json_default))
    os.replace(tmp, group_dir / "zarr.json")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _to_zarr_safe(ds):
    """Return ``ds`` with fixed-width unicode/bytes variables as variable-length strings.

    Zarr v3 has a specification for variable-length UTF-8 strings only.
    """
    import xarray as xr

    out = {}
    for name, var in ds.variables.items():
        if var.dtype.kind in "US":
            values = var.values.astype(str).astype(object)
            out[name] = xr.Variable(var.dims, values, var.attrs)
    return ds.assign(out) if out else ds


@dataclass
class ObservationRecord:
    """What the store knows of one observation without reading its arrays."""

    obs_id: int
    path: Path
    attrs: dict[str, Any] = field(repr=False)

    @property
    def sources(self) -> list[dict[str, Any]]:
        """Provenance of the source files: path, size, mtime_ns, sha256."""
        return self.attrs.get("provenance", {}).get("sources", [])

    @property
    def index_row(self) -> dict[str, Any]:
        return self.attrs.get("index_row", {})

    @property
    def components(self) -> list[str]:
        return self.attrs.get("components", [])


class ArchiveStore:
    """A gdask archive store at a filesystem path.

    Parameters
    ----------
    path : str or Path
        The store folder (conventionally ``*.zarr``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, path: str | Path) -> ArchiveStore:
        """Open the store at ``path``, creating an empty one if nothing is there."""
        store = cls(path)
        store._check_folder()
        root = store.path / "zarr.json"
        if root.exists():
            store._check_root()
        else:
            if store.path.exists() and any(store.path.iterdir()):
                raise ArchiveError(
                    "folder exists, is not empty and is not a gdask store", file=str(store.path)
                )
            _write_group_json(store.path, store._root_attrs())
            _write_group_json(store.path / _OBS, {})
        return store

    @classmethod
    def open(cls, path: str | Path) -> ArchiveStore:
        """Open an existing store (error if absent or not a gdask store)."""
        store = cls(path)
        store._check_folder()
        if not (store.path / "zarr.json").exists():
            raise ArchiveError("no gdask archive store here", file=str(store.path))
        store._check_root()
        return store

    def _check_folder(self) -> None:
        """An `ArchiveError` if the store path exists but is not a folder."""
        if self.path.exists() and not self.path.is_dir():
            raise ArchiveError(
                "the store path is a file, not a folder (a gdask store is a folder)",
                file=str(self.path),
            )

    @staticmethod
    def _root_attrs() -> dict[str, Any]:
        return {"gdask_store": "archive", "store_format": STORE_FORMAT}

    def _check_root(self) -> None:
        try:
            attrs = read_json_attrs(self.path)
        except (OSError, ValueError) as exc:
            raise ArchiveError(f"unreadable store metadata: {exc}", file=str(self.path)) from exc
        if attrs.get("gdask_store") != "archive":
            raise ArchiveError("not a gdask archive store", file=str(self.path))
        if attrs.get("store_format") != STORE_FORMAT:
            raise ArchiveError(
                f"store format {attrs.get('store_format')} is not {STORE_FORMAT}; re-ingest",
                file=str(self.path),
            )

    # ------------------------------------------------------------------ listing
    def obs_dir(self, obs_id: int) -> Path:
        return self.path / _OBS / str(int(obs_id))

    def obs_ids(self) -> list[int]:
        """Observations present (complete) in the store, sorted."""
        base = self.path / _OBS
        if not base.is_dir():
            return []
        ids = [
            int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / "zarr.json").exists()
        ]
        return sorted(ids)

    def __contains__(self, obs_id: int) -> bool:
        return (self.obs_dir(obs_id) / "zarr.json").exists()

    def __len__(self) -> int:
        return len(self.obs_ids())

    def record(self, obs_id: int) -> ObservationRecord | None:
        """The stored record (attrs) of an observation, or None if absent."""
        path = self.obs_dir(obs_id)
        try:
            attrs = read_json_attrs(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ArchiveError(
                f"unreadable observation metadata: {exc}", file=str(path), obs_id=obs_id
            ) from exc
        return ObservationRecord(int(obs_id), path, attrs)

    def records(self) -> dict[int, ObservationRecord]:
        return {i: r for i in self.obs_ids() if (r := self.record(i)) is not None}

    # ------------------------------------------------------------------ writing
    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the store's exclusive ingest lock (released even if the process dies)."""
        return exclusive_lock(self.path, _LOCK, "another ingest is writing this store")

    def clean_staging(self) -> int:
        """Remove leftovers of interrupted writes; return how many were removed.

        Call only while holding :meth:`lock`.
        """
        return StagedWrites(self.path).clean()

    def staging_dir(self, name: str) -> Path:
        """A fresh, unique folder under ``_staging/`` for one write."""
        return StagedWrites(self.path).new(name)

    def write_observation_staged(self, obs, attrs: dict[str, Any], *, chunk_events: int) -> Path:
        """Write an `~gdask.dl3.Observation` completely under ``_staging/``; return that folder.

        A failed write (a full disk) removes its folder at once, so that the
        space is free again for what follows (the index).
        """
        staging = self.staging_dir(str(obs.obs_id))
        try:
            return self._write_staged(obs, attrs, staging, chunk_events)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _write_staged(self, obs, attrs: dict[str, Any], staging: Path, chunk_events: int) -> Path:
        components = []
        _write_dataset(obs.events.to_dataset(), staging, "events", chunk={"event": chunk_events})
        components.append("events")
        _write_dataset(obs.gti.to_dataset(), staging, "gti")
        components.append("gti")
        irf_classes = {}
        for hdu_type, irf in sorted(obs.irfs.items()):
            _write_dataset(irf.to_dataset(), staging / "irf", hdu_type)
            components.append(f"irf/{hdu_type}")
            irf_classes[hdu_type] = irf.hdu_class
        _write_group_json(staging / "irf", {"irf_classes": irf_classes})
        attrs = dict(attrs, components=components, irf_classes=irf_classes)
        _write_group_json(staging, attrs)
        return staging

    def commit_observation(self, obs_id: int, staging: Path) -> None:
        """Make a staged observation visible, replacing an older version.

        Between the two renames of a replacement the observation is absent,
        never half-written; the next ingest re-creates it.
        """
        StagedWrites(self.path).swap_in(staging, self.obs_dir(obs_id), str(obs_id))

    def remove_observation(self, obs_id: int) -> None:
        """Remove an observation (atomically invisible first, then deleted)."""
        StagedWrites(self.path).remove(self.obs_dir(obs_id), str(obs_id))

    # ------------------------------------------------------------------ index
    def write_index(self, records: Iterable[ObservationRecord] | None = None) -> None:
        """Rewrite the index table from the observation records (staged, then swapped in)."""
        recs = sorted((records or self.records().values()), key=lambda r: r.obs_id)
        ds = _index_dataset(recs)
        staging = self.staging_dir("index")
        _write_dataset(ds, staging, None)
        StagedWrites(self.path).swap_in(staging, self.path / _INDEX, "index")

    def index_obs_ids(self) -> list[int] | None:
        """OBS_IDs listed by the stored index, or None if there is no index."""
        path = self.path / _INDEX
        if not (path / "zarr.json").exists():
            return None
        return [int(i) for i in read_json_attrs(path).get("obs_ids", [])]

    def index_is_current(self) -> bool:
        return self.index_obs_ids() == self.obs_ids()

    def index(self):
        """The observation index as an `xarray.Dataset` with dim ``obs``.

        If the stored index disagrees with the observations present (a crash
        between an observation commit and the index write) it is rebuilt from
        the observations' own records, so it never lists a missing observation.
        """
        from gdask.zarrio import read_dataset

        if self.index_is_current():
            return read_dataset(self.path / _INDEX)  # checksummed, as xarray would read it
        return _index_dataset(sorted(self.records().values(), key=lambda r: r.obs_id))

    # ------------------------------------------------------------------ reading
    def open_dataset(self, obs_id: int, component: str, *, lazy: bool = True):
        """Open one component (``events``, ``gti``, ``irf/aeff`` ...).

        Lazily as a dask-backed Dataset (default), or with ``lazy=False`` as
        plain numpy-backed variables read on first access (cheaper inside a
        task that needs the whole component anyway).
        """
        import xarray as xr

        if obs_id not in self:
            raise ArchiveError("observation not in store", file=str(self.path), obs_id=obs_id)
        group = f"{_OBS}/{int(obs_id)}/{component}"
        if not (self.path / group / "zarr.json").exists():
            raise ArchiveError(
                f"observation has no {component!r}",
                file=str(self.path),
                obs_id=obs_id,
                field=component,
            )
        if not lazy:
            from gdask.zarrio import read_dataset

            return read_dataset(self.path / group)
        from gdask.zarrio import CHECKSUM_ATTR, verify_group

        verify_group(self.path / group, full=False)  # read_dataset checksums as it reads
        ds = xr.open_zarr(self.path, group=group, consolidated=False, chunks={})
        ds.attrs.pop(CHECKSUM_ATTR, None)
        return ds

    def open_observation(
        self, obs_id: int, *, irfs: Iterable[str] | None = None, lazy: bool = True
    ):
        """Open an observation as an `~gdask.dl3.Observation`.

        Parameters
        ----------
        irfs : iterable of str, optional
            Only these IRF types (``aeff``, ``psf``...); default all.
        lazy : bool
            Events as dask arrays (default; selecting reads only the chunks
            needed), or numpy arrays read on access (``lazy=False``, for tasks).
        """
        from gdask.dl3 import GTI, EventList, Observation
        from gdask.dl3.irf import IRF_CLASSES

        rec = self.record(obs_id)
        if rec is None:
            raise ArchiveError("observation not in store", file=str(self.path), obs_id=obs_id)
        events = EventList.from_dataset(self.open_dataset(obs_id, "events", lazy=lazy))
        gti = GTI.from_dataset(self.open_dataset(obs_id, "gti", lazy=False).load())
        irf_classes = rec.attrs.get("irf_classes", {})
        wanted = (
            irf_classes if irfs is None else {k: irf_classes[k] for k in irfs if k in irf_classes}
        )
        loaded = {
            hdu_type: IRF_CLASSES[cls].from_dataset(
                self.open_dataset(obs_id, f"irf/{hdu_type}", lazy=False).load()
            )
            for hdu_type, cls in wanted.items()
        }
        sources = [Path(s["path"]) for s in rec.sources]
        return Observation(
            obs_id=int(obs_id),
            events=events,
            gti=gti,
            irfs=loaded,
            meta=rec.index_row,
            sources=sources,
        )


def _write_dataset(ds, root: Path, group: str | None, chunk: dict[str, int] | None = None) -> None:
    """Write a Dataset as the zarr v3 group ``root/group`` (``root`` itself if group is None).

    Same files as ``ds.to_zarr(root, group=group, mode="w", zarr_format=3)`` with
    ``chunk`` as the data variables' chunk encoding, by the lean `gdask.zarrio` writer.
    """
    from gdask.zarrio import write_dataset

    ds = _to_zarr_safe(ds)
    target = root / group if group else root
    write_dataset(ds, target, chunks=chunk, chunk_data_vars_only=True, checksums=True)


def _index_dataset(records: list[ObservationRecord]):
    """Build the index table (dim ``obs``) from observation records."""
    import xarray as xr

    obs_ids = [r.obs_id for r in records]
    columns: dict[str, list] = {}
    for r in records:
        for key in r.index_row:
            columns.setdefault(key, [])
    data_vars = {}
    for key in columns:
        values = [r.index_row.get(key) for r in records]
        data_vars[key] = ("obs", _column_array(values))
    ds = xr.Dataset(data_vars, coords={"obs": np.asarray(obs_ids, dtype=np.int64)})
    ds.attrs = {"obs_ids": obs_ids, "gdask_version": __version__}
    return ds


def _column_array(values: list) -> np.ndarray:
    """A column of mixed python scalars as a typed array (missing -> NaN or '')."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return np.array([bool(v) if v is not None else False for v in values])
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        if all(isinstance(v, int) for v in present) and len(present) == len(values):
            return np.array(values, dtype=np.int64)
        return np.array([np.nan if v is None else float(v) for v in values])
    return np.array(["" if v is None else str(v) for v in values], dtype=object)

"""A zarr store of DL4 datasets, one group per dataset, written atomically.

Layout::

    store.zarr/
      datasets/<name>/     one zarr group per dataset (its xarray.Dataset)
      _staging/            datasets being written (invisible to readers)
      _trash/              replaced datasets awaiting removal

A dataset is written completely under ``_staging/`` and moved into
``datasets/`` with one directory rename, so readers never see half a dataset;
a killed writer leaves at most junk under ``_staging/``, removed by the next
writer. Reading is lazy (``xarray.open_zarr``: Dask arrays), so workers load
only what they touch.

Integrity: every group carries a checksum manifest (`gdask.zarrio`). A
damaged dataset -- a deleted chunk or array, a flipped byte, an array the
dataset type requires missing -- is an `~gdask.errors.ArchiveError` naming the
store, the dataset and the array, never data read silently as zeros. Eager
reads (``lazy=False``, what the fit uses) checksum every file; lazy reads check
that every array and file is present with its recorded size.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import xarray as xr

from gdask.archive.staging import STAGING, TRASH, StagedWrites
from gdask.datasets.map import MapDataset
from gdask.datasets.spectrum import SpectrumDatasetOnOff
from gdask.errors import ArchiveError

__all__ = ["DatasetStore", "STORE_SEPARATOR", "store_source", "split_store_source"]

Dataset = MapDataset | SpectrumDatasetOnOff
#: arrays every stored dataset has (the others are optional, the manifest lists them)
REQUIRED_VARIABLES = ("counts",)
_NAME = re.compile(r"^[A-Za-z0-9_.+\-=]+$")


def _check_name(name: str) -> str:
    if not name or not _NAME.match(name) or name.startswith("."):
        raise ArchiveError(
            f"invalid dataset name {name!r} (letters, digits, _ . + - = only)", field="name"
        )
    return name


class DatasetStore:
    """Directory of zarr groups, one per dataset.

    Parameters
    ----------
    path : str or Path
        Root folder (created if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ArchiveError(
                "the dataset store path exists and is not a directory", file=str(self.path)
            )
        try:
            for sub in ("datasets", STAGING, TRASH):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(
                f"cannot create the dataset store: {exc.strerror or exc}", file=str(self.path)
            ) from exc

    def _group(self, name: str) -> Path:
        return self.path / "datasets" / _check_name(name)

    def names(self) -> list[str]:
        """Names of the complete datasets, sorted."""
        return sorted(p.name for p in (self.path / "datasets").iterdir() if p.is_dir())

    def __contains__(self, name: str) -> bool:
        return self._group(name).is_dir()

    def __len__(self) -> int:
        return len(self.names())

    def lock(self):
        """Hold the store's exclusive writer lock (`gdask.archive.store.exclusive_lock`): one
        ``gdask reduce`` at a time writes a store (its start-up `cleanup` would remove another
        writer's staging)."""
        from gdask.archive.store import exclusive_lock

        return exclusive_lock(
            self.path, ".write.lock", "another reduce is writing this dataset store", "output.store"
        )

    def cleanup(self) -> None:
        """Remove leftovers of interrupted writes (staging and trash)."""
        StagedWrites(self.path).clean()

    def write(self, dataset: Dataset, name: str | None = None, overwrite: bool = False) -> str:
        """Store a dataset under ``name`` (its own name by default); return the name.

        The group is written under ``_staging/`` and renamed into place; an
        existing dataset of that name is replaced only with ``overwrite``.
        Safe with concurrent writers of different names (the leftovers of
        interrupted writes are removed by `cleanup`, called once by the driver).
        """
        name = _check_name(name or dataset.name)
        target = self._group(name)
        if target.exists() and not overwrite:
            raise ArchiveError(f"dataset {name!r} exists (use overwrite=True)", file=str(target))
        from gdask.zarrio import write_dataset

        writes = StagedWrites(self.path)
        staging = writes.path(name)
        ds = dataset.to_dataset()
        try:
            # = ds.to_zarr(staging, mode="w", consolidated=False, zarr_format=3,
            #             encoding={k: {"_FillValue": None} for k in ds.variables})  (no masking on read)
            write_dataset(ds, staging, fill_value_attr=False, checksums=True)
        except Exception as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ArchiveError(f"cannot write dataset {name!r}: {exc}", file=str(staging)) from exc
        writes.swap_in(staging, target, name)
        return name

    def read(self, name: str, lazy: bool = True) -> Dataset:
        """Open dataset ``name``: lazy Dask arrays, or loaded with ``lazy=False``."""
        group = self._group(name)
        if not group.is_dir():
            raise ArchiveError(f"no dataset {name!r} in the store", file=str(self.path), field=name)
        from gdask.zarrio import CHECKSUM_ATTR, read_dataset, verify_group

        try:
            if not verify_group(group, full=False):  # cheap: every array and file is there
                raise ArchiveError(
                    "no checksum manifest (damaged, or written by an older gdask: reduce again)",
                    field=CHECKSUM_ATTR,
                )
            if lazy:
                ds = xr.open_zarr(group, consolidated=False)
                ds.attrs.pop(CHECKSUM_ATTR, None)
            else:
                ds = read_dataset(group)  # checksums every file it reads
            for var in REQUIRED_VARIABLES:
                if var not in ds.variables:
                    raise ArchiveError(f"required array {var!r} is missing", field=var)
        except ArchiveError as exc:
            raise ArchiveError(
                f"dataset {name!r} in the store {self.path}: {exc.message}",
                file=str(group),
                field=exc.field,
            ) from exc
        return self.wrap(ds)

    @staticmethod
    def wrap(ds: xr.Dataset) -> Dataset:
        """The dataset class matching ``attrs["dataset_type"]``."""
        kind = ds.attrs.get("dataset_type")
        if kind == SpectrumDatasetOnOff.tag:
            return SpectrumDatasetOnOff.from_dataset(ds)
        if kind in ("MapDataset", "MapDatasetOnOff"):
            return MapDataset.from_dataset(ds)
        raise ArchiveError(f"unknown dataset type {kind!r}", field="dataset_type")

    def delete(self, name: str) -> None:
        """Remove dataset ``name`` (moved to ``_trash`` first, then deleted)."""
        group = self._group(name)
        if not group.is_dir():
            raise ArchiveError(f"no dataset {name!r} in the store", file=str(self.path), field=name)
        StagedWrites(self.path).remove(group, name)


#: separates a dataset-store path from a dataset name in a source string
STORE_SEPARATOR = "::"


def store_source(store: str | Path, name: str) -> str:
    """The source string ``"<store path>::<name>"`` naming one dataset of a store.

    Examples
    --------
    >>> store_source("out/datasets.zarr", "23523")
    'out/datasets.zarr::23523'
    """
    return f"{store}{STORE_SEPARATOR}{name}"


def split_store_source(source: str) -> tuple[str, str] | None:
    """``(store path, dataset name)`` of a ``"<store>::<name>"`` source; None for a file.

    The name may be empty (``"store::"``); the caller decides its default.

    Examples
    --------
    >>> split_store_source("out/datasets.zarr::23523")
    ('out/datasets.zarr', '23523')
    >>> split_store_source("pha_obs23523.fits") is None
    True
    """
    if STORE_SEPARATOR not in source:
        return None
    path, name = source.split(STORE_SEPARATOR, 1)
    return path, name

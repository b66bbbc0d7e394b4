"""The observation and HDU index tables of a GADF DL3 archive.

`DL3Index` holds the obs-index (one row per observation: pointing, times,
quality...) and the hdu-index (one row per HDU: where each observation's
EVENTS, GTI and IRFs live). It selects observations and resolves HDU
locations; reading the HDUs themselves is `gdask.dl3.observation`'s job.

Mismatches between the two tables are tolerated and reported:

- an observation in the obs-index without any hdu-index row cannot be read,
  so it is left out of `DL3Index.obs_ids` (and of every selection);
- an observation in the hdu-index without an obs-index row cannot be selected
  by pointing, time or column value, so it is also left out of `obs_ids`, but
  its HDUs can still be located (`hdu_location`) and read.

Both lists are available as `DL3Index.obs_only_ids` / `DL3Index.hdu_only_ids`
and a warning is emitted when an index is read with such mismatches.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord, angular_separation
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from gdask.dl3.fits_utils import open_fits
from gdask.dl3.obs_ids import parse_obs_ids
from gdask.errors import (
    FileReadError,
    FormatError,
    GdaskError,
    MissingHDUError,
    SelectionError,
)

__all__ = ["DL3Index", "HDULocation", "python_scalar"]

_HDU_INDEX_NAMES = ("hdu-index.fits.gz", "hdu-index.fits")
_OBS_INDEX_NAMES = ("obs-index.fits.gz", "obs-index.fits")
_HDU_COLUMNS = ("OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME")
_STR_COLUMNS = ("HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME")


@dataclass(frozen=True)
class HDULocation:
    """Where one HDU of one observation lives.

    Attributes
    ----------
    path : Path
        The FITS file (absolute, resolved against the index directory).
    hdu_name : str
        The HDU's EXTNAME.
    hdu_class : str
        The GADF HDU class (``events``, ``gti``, ``aeff_2d``...).
    hdu_type : str
        The GADF HDU type (``events``, ``gti``, ``aeff``...).
    obs_id : int
        The observation.
    """

    path: Path
    hdu_name: str
    hdu_class: str
    hdu_type: str = ""
    obs_id: int | None = None


def python_scalar(value: Any) -> Any:
    """Convert a table cell to a JSON-serialisable python value.

    Strings are stripped, NaN and masked values become None, arrays lists.
    """
    if value is np.ma.masked:
        return None
    if isinstance(value, np.ma.MaskedArray):
        value = value.filled(np.nan) if value.dtype.kind == "f" else value.data
    if isinstance(value, bytes | np.bytes_):
        return value.decode("ascii", errors="replace").strip()
    if isinstance(value, str | np.str_):
        return str(value).strip()
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return [python_scalar(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    if isinstance(value, np.floating | float):
        value = float(value)
        return None if not np.isfinite(value) else value
    if isinstance(value, np.ndarray):  # 0-d
        return python_scalar(value.item())
    return value


def _read_table(hdu) -> Table:
    table = Table.read(hdu, mask_invalid=False)
    for name in table.colnames:
        if table[name].dtype.kind == "S":
            table[name] = np.char.decode(np.asarray(table[name]), "ascii")
    return table


def _index_tables(path: Path) -> list[tuple[Path, Table]]:
    """Read every index-like table HDU of one file (by its columns, not its EXTNAME)."""
    hdulist = open_fits(path)
    tables = []
    for hdu in hdulist[1:]:
        if isinstance(hdu, fits.BinTableHDU) and "OBS_ID" in [c.upper() for c in hdu.columns.names]:
            tables.append((path, _read_table(hdu)))
    return tables


def _is_hdu_table(table: Table) -> bool:
    return "HDU_TYPE" in table.colnames


class DL3Index:
    """The obs-index and hdu-index tables of a GADF DL3 archive.

    Parameters
    ----------
    obs_table : `~astropy.table.Table`
        One row per observation; ``meta`` holds the header keywords (MJDREF...).
    hdu_table : `~astropy.table.Table`
        One row per HDU (OBS_ID, HDU_TYPE, HDU_CLASS, FILE_DIR, FILE_NAME, HDU_NAME).
    base_dir : Path
        The directory FILE_DIR is relative to (that of the hdu-index file).
    hdu_file, obs_file : Path, optional
        The index files read, for error messages.
    """

    def __init__(
        self,
        obs_table: Table,
        hdu_table: Table,
        base_dir: str | Path,
        *,
        hdu_file: Path | None = None,
        obs_file: Path | None = None,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.hdu_file = hdu_file
        self.obs_file = obs_file
        for name in _HDU_COLUMNS:
            if name not in hdu_table.colnames:
                raise FormatError(f"hdu-index lacks column {name!r}", file=_s(hdu_file), field=name)
        if "OBS_ID" not in obs_table.colnames:
            raise FormatError("obs-index lacks column 'OBS_ID'", file=_s(obs_file), field="OBS_ID")
        hdu_table = hdu_table.copy()
        for name in _STR_COLUMNS:
            col = np.asarray(hdu_table[name]).astype(str)
            hdu_table[name] = np.char.strip(col)
        hdu_table["HDU_TYPE"] = np.char.lower(np.asarray(hdu_table["HDU_TYPE"]))
        hdu_table["HDU_CLASS"] = np.char.lower(np.asarray(hdu_table["HDU_CLASS"]))
        #: rows that cannot be used (bad or duplicated OBS_ID), one error each; left out
        self.rejected: list[GdaskError] = []
        obs_table, obs = self._usable_rows(obs_table, "obs-index", obs_file)
        hdu_table, hdu_obs = self._usable_rows(hdu_table, "hdu-index", hdu_file)
        uniq, counts = np.unique(obs, return_counts=True)
        dups = uniq[counts > 1]
        if dups.size:
            for dup in dups:
                rows = (np.flatnonzero(obs == dup) + 1).tolist()
                self.rejected.append(
                    FormatError(
                        f"obs-index lists OBS_ID {int(dup)} {len(rows)} times (rows {rows}); "
                        "the observation is ambiguous and is left out",
                        file=_s(obs_file),
                        obs_id=int(dup),
                        field="OBS_ID",
                    )
                )
            obs_keep = ~np.isin(obs, dups)
            hdu_keep = ~np.isin(hdu_obs, dups)
            obs_table, obs = obs_table[obs_keep], obs[obs_keep]
            hdu_table, hdu_obs = hdu_table[hdu_keep], hdu_obs[hdu_keep]
        self.obs_table = obs_table
        self.hdu_table = hdu_table
        in_hdu = np.isin(obs, hdu_obs)
        self._obs_ids = [int(x) for x in obs[in_hdu]]
        self.obs_only_ids = [int(x) for x in obs[~in_hdu]]
        self.hdu_only_ids = [int(x) for x in np.unique(hdu_obs[~np.isin(hdu_obs, obs)])]
        self._obs_row_index = {int(o): i for i, o in enumerate(obs)}
        self._hdu_rows: dict[int, list[int]] = {}
        for i, o in enumerate(hdu_obs):
            self._hdu_rows.setdefault(int(o), []).append(i)

    def _usable_rows(self, table: Table, what: str, file: Path | None) -> tuple[Table, np.ndarray]:
        """``table`` without the rows whose OBS_ID is not an integer (recorded in `rejected`).

        Integer-valued strings and floats are read as integers (with a warning).
        """
        ids, ok, errors = parse_obs_ids(table["OBS_ID"], what=what, file=_s(file))
        if ok.all() and np.asarray(table["OBS_ID"]).dtype.kind in "iu":
            return table, ids
        self.rejected += errors
        if ok.any():
            warnings.warn(
                f"{file}: the {what} OBS_ID column holds "
                f"{np.asarray(table['OBS_ID']).dtype.name} values, read as integers",
                stacklevel=3,
            )
        table = table[ok]
        table["OBS_ID"] = ids[ok]
        return table, ids[ok]

    # -- reading -----------------------------------------------------------------

    @classmethod
    def read(cls, path: str | Path) -> DL3Index:
        """Read an index from a directory, an hdu-index file or an obs-index file.

        A directory must hold ``hdu-index.fits[.gz]`` and ``obs-index.fits[.gz]``.
        Given one file, the other index is looked for in the same file (a file
        with both tables) and then beside it under its standard name. Tables are
        told apart by their columns (an hdu-index has HDU_TYPE), not by EXTNAME.
        FILE_DIR is resolved against the hdu-index file's directory.
        """
        path = Path(path)
        if path.is_dir():
            hdu_path = _find(path, _HDU_INDEX_NAMES, "hdu-index")
            obs_path = _find(path, _OBS_INDEX_NAMES, "obs-index")
            files = [hdu_path, obs_path]
        elif path.exists():
            files = [path]
        else:
            raise FileReadError("index file or directory not found", file=str(path))
        tables = [t for f in files for t in _index_tables(f)]
        hdu = [(f, t) for f, t in tables if _is_hdu_table(t)]
        obs = [(f, t) for f, t in tables if not _is_hdu_table(t)]
        if not hdu:
            if len(files) > 1:
                raise FormatError(
                    "no hdu-index table found (no HDU_TYPE column)", file=str(files[0])
                )
            hdu = _index_tables(_find(path.parent, _HDU_INDEX_NAMES, "hdu-index"))
            hdu = [(f, t) for f, t in hdu if _is_hdu_table(t)]
            if not hdu:
                raise FormatError("no hdu-index table found (no HDU_TYPE column)", file=str(path))
        if not obs:
            obs = _index_tables(_find(path.parent, _OBS_INDEX_NAMES, "obs-index"))
            obs = [(f, t) for f, t in obs if not _is_hdu_table(t)]
            if not obs:
                raise FormatError("no obs-index table found", file=str(path))
        (hdu_file, hdu_table), (obs_file, obs_table) = hdu[0], obs[0]
        index = cls(obs_table, hdu_table, hdu_file.parent, hdu_file=hdu_file, obs_file=obs_file)
        for err in index.rejected:
            warnings.warn(f"DL3 index: {err}", stacklevel=2)
        if index.obs_only_ids or index.hdu_only_ids:
            warnings.warn(
                f"DL3 index {hdu_file.parent}: {len(index.obs_only_ids)} observation(s) of the "
                f"obs-index have no HDUs {index.obs_only_ids[:5]}, {len(index.hdu_only_ids)} of "
                f"the hdu-index are not in the obs-index {index.hdu_only_ids[:5]}; "
                "both are left out of obs_ids",
                stacklevel=2,
            )
        return index

    # -- content -----------------------------------------------------------------

    @property
    def obs_ids(self) -> list[int]:
        """Observations present in both tables, in obs-index order."""
        return list(self._obs_ids)

    def __len__(self) -> int:
        return len(self._obs_ids)

    def __contains__(self, obs_id: object) -> bool:
        return int(obs_id) in self._hdu_rows  # type: ignore[call-overload]

    def __repr__(self) -> str:
        return f"DL3Index({len(self)} observations, base_dir={str(self.base_dir)!r})"

    @property
    def meta(self) -> dict[str, Any]:
        """The obs-index header keywords (MJDREFI, MJDREFF, TIMESYS...)."""
        return {k: v for k, v in self.obs_table.meta.items() if k != "comments"}

    @property
    def obs_units(self) -> dict[str, str]:
        """The unit of each obs-index column that has one."""
        return {
            c: str(self.obs_table[c].unit)
            for c in self.obs_table.colnames
            if self.obs_table[c].unit
        }

    def time_reference(self) -> Time:
        """The obs-index MJDREF as an astropy Time in the index TIMESYS scale."""
        return time_reference_from_header(self.obs_table.meta, file=_s(self.obs_file))

    def obs_row(self, obs_id: int) -> dict[str, Any]:
        """The obs-index row of ``obs_id`` as a dict of JSON-serialisable python values."""
        i = self._obs_row_index.get(int(obs_id))
        if i is None:
            raise SelectionError(
                "observation not in the obs-index", file=_s(self.obs_file), obs_id=obs_id
            )
        row = self.obs_table[i]
        return {name: python_scalar(row[name]) for name in self.obs_table.colnames}

    def obs_values(self, obs_id: int) -> dict[str, Any]:
        """Like `obs_row`, but infinite floats are kept (a 1e300 stored as float32 is inf).

        For validation: `obs_row` turns every non-finite value into None (missing).
        """
        row = self.obs_row(obs_id)
        table_row = self.obs_table[self._obs_row_index[int(obs_id)]]
        for name, value in row.items():
            raw = table_row[name]
            if value is None and isinstance(raw, np.floating | float) and np.isinf(raw):
                row[name] = float(raw)
        return row

    def _rows(self, obs_id: int) -> list[int]:
        rows = self._hdu_rows.get(int(obs_id))
        if rows is None:
            raise SelectionError(
                "observation not in the hdu-index", file=_s(self.hdu_file), obs_id=obs_id
            )
        return rows

    def hdu_types(self, obs_id: int) -> list[str]:
        """The HDU types listed for ``obs_id`` (``events``, ``gti``, ``aeff``...)."""
        seen: list[str] = []
        for i in self._rows(obs_id):
            t = str(self.hdu_table["HDU_TYPE"][i])
            if t not in seen:
                seen.append(t)
        return seen

    def hdu_location(self, obs_id: int, hdu_type: str) -> HDULocation:
        """Resolve the file and HDU name of one HDU of one observation.

        FILE_DIR is relative to the index directory; an empty, ``.``, ``./`` or
        ``--`` FILE_DIR means the index directory itself. With several rows for
        one HDU type, the first is used (with a warning).
        """
        hdu_type = hdu_type.lower()
        rows = [i for i in self._rows(obs_id) if self.hdu_table["HDU_TYPE"][i] == hdu_type]
        if not rows:
            raise MissingHDUError(
                f"no {hdu_type!r} HDU in the hdu-index; it lists {self.hdu_types(obs_id)}",
                file=_s(self.hdu_file),
                obs_id=obs_id,
                field=hdu_type,
            )
        if len(rows) > 1:
            warnings.warn(
                f"OBS_ID {obs_id}: {len(rows)} hdu-index rows of type {hdu_type!r}; using the first",
                stacklevel=2,
            )
        row = self.hdu_table[rows[0]]
        return HDULocation(
            path=self._resolve(str(row["FILE_DIR"]), str(row["FILE_NAME"])),
            hdu_name=str(row["HDU_NAME"]),
            hdu_class=str(row["HDU_CLASS"]),
            hdu_type=hdu_type,
            obs_id=int(obs_id),
        )

    def _resolve(self, file_dir: str, file_name: str) -> Path:
        file_dir = file_dir.strip()
        if file_dir in ("", ".", "./", "--"):
            directory = self.base_dir
        else:
            directory = self.base_dir / file_dir
        return Path(os.path.normpath(directory / file_name.strip()))

    def file_paths(self, obs_id: int) -> list[Path]:
        """The distinct files holding ``obs_id``'s HDUs."""
        paths: list[Path] = []
        for i in self._rows(obs_id):
            row = self.hdu_table[i]
            p = self._resolve(str(row["FILE_DIR"]), str(row["FILE_NAME"]))
            if p not in paths:
                paths.append(p)
        return paths

    # -- selection ---------------------------------------------------------------

    def select(
        self,
        obs_ids: Iterable[int] | None = None,
        cone: Sequence[Any] | None = None,
        time_range: Sequence[Any] | None = None,
        *,
        partial_overlap: bool = False,
        **column_ranges: Any,
    ) -> DL3Index:
        """Return a new index restricted to the selected observations.

        All criteria combine with AND.

        Parameters
        ----------
        obs_ids : iterable of int, optional
            Keep these observations, in this order; unknown ids are an error.
        cone : tuple, optional
            ``(ra, dec, radius)`` in deg (floats or angle Quantities), or
            ``(SkyCoord, radius)``: keep pointings (RA_PNT, DEC_PNT) strictly
            closer than ``radius`` to the centre.
        time_range : tuple, optional
            ``(start, stop)`` as astropy Times or MET seconds (relative to the
            obs-index MJDREF). Observations [TSTART, TSTOP] must lie within it,
            or just overlap it with ``partial_overlap=True``.
        **column_ranges
            ``COLUMN=(low, high)`` keeps ``low <= value < high`` (``low == high``:
            equality); Quantities are converted to the column unit. A scalar
            (e.g. a string) keeps rows equal to it.
        """
        obs = self.obs_table
        ids = np.asarray(obs["OBS_ID"]).astype(np.int64)
        mask = np.isin(ids, np.asarray(self._obs_ids, dtype=np.int64))
        order = None
        if obs_ids is not None:
            wanted = list(dict.fromkeys(int(o) for o in np.atleast_1d(np.asarray(list(obs_ids)))))
            missing = [o for o in wanted if o not in self._obs_ids]
            if missing:
                raise SelectionError(
                    f"observations {missing[:10]} not in the index",
                    file=_s(self.obs_file),
                    obs_id=missing[0],
                    field="OBS_ID",
                )
            mask &= np.isin(ids, wanted)
            order = [self._obs_row_index[o] for o in wanted]
        if cone is not None:
            mask &= self._cone_mask(cone)
        if time_range is not None:
            mask &= self._time_mask(time_range, partial_overlap)
        for name, value in column_ranges.items():
            mask &= self._column_mask(name, value)
        if order is None:
            rows = np.flatnonzero(mask)
        else:
            rows = np.asarray([i for i in order if mask[i]], dtype=int)
        kept = ids[rows]
        hdu_rows = np.flatnonzero(
            np.isin(np.asarray(self.hdu_table["OBS_ID"]).astype(np.int64), kept)
        )
        return DL3Index(
            obs[rows],
            self.hdu_table[hdu_rows],
            self.base_dir,
            hdu_file=self.hdu_file,
            obs_file=self.obs_file,
        )

    def _column(self, name: str, unit: u.UnitBase | None = None) -> np.ndarray:
        if name not in self.obs_table.colnames:
            raise SelectionError(
                f"column {name!r} not in the obs-index; it has {self.obs_table.colnames}",
                file=_s(self.obs_file),
                field=name,
            )
        col = self.obs_table[name]
        values = np.asarray(col)
        if unit is not None and values.dtype.kind in "fiu" and col.unit is not None:
            # a column without unit is taken to be in the unit asked for (GADF's)
            col_unit = col.unit
            try:
                values = (values * col_unit).to_value(unit)
            except u.UnitsError as exc:
                raise SelectionError(
                    f"column {name!r} in {col_unit} cannot be compared with {unit}",
                    file=_s(self.obs_file),
                    field=name,
                ) from exc
        return values

    def _cone_mask(self, cone: Sequence[Any]) -> np.ndarray:
        if len(cone) == 2 and isinstance(cone[0], SkyCoord):
            icrs = cone[0].icrs
            ra, dec, radius = icrs.ra.deg, icrs.dec.deg, cone[1]
        elif len(cone) == 3:
            ra, dec, radius = cone
        else:
            raise SelectionError(
                "cone must be (ra, dec, radius) or (SkyCoord, radius)", field="cone"
            )
        ra, dec, radius = (u.Quantity(v, u.deg).to_value(u.rad) for v in (ra, dec, radius))
        ra_pnt = np.radians(self._column("RA_PNT", u.deg).astype(float))
        dec_pnt = np.radians(self._column("DEC_PNT", u.deg).astype(float))
        return np.asarray(angular_separation(ra, dec, ra_pnt, dec_pnt)) < radius

    def _time_mask(self, time_range: Sequence[Any], partial_overlap: bool) -> np.ndarray:
        if len(time_range) != 2:
            raise SelectionError("time_range must be a (start, stop) pair", field="time_range")
        start, stop = time_range
        if isinstance(start, Time) or isinstance(stop, Time):
            ref = self.time_reference()
            start, stop = ((Time(t) - ref).to_value(u.s) for t in (start, stop))
        else:
            start, stop = (u.Quantity(t, u.s).to_value(u.s) for t in (start, stop))
        tstart = self._column("TSTART", u.s).astype(float)
        tstop = self._column("TSTOP", u.s).astype(float)
        if partial_overlap:
            return (start <= tstop) & (stop >= tstart)
        return (start <= tstart) & (stop >= tstop)

    def _column_mask(self, name: str, value: Any) -> np.ndarray:
        if isinstance(value, tuple | list) and len(value) == 2:
            low, high = value
            unit = None
            if isinstance(low, u.Quantity) or isinstance(high, u.Quantity):
                unit = (low if isinstance(low, u.Quantity) else high).unit
                low, high = u.Quantity(low, unit).value, u.Quantity(high, unit).value
            values = self._column(name, unit)
            if np.isclose(low, high):
                return values == low
            return (low <= values) & (values < high)
        values = self._column(name)
        if isinstance(value, u.Quantity):
            values = self._column(name, value.unit)
            value = value.value
        if values.dtype.kind == "U":
            values = np.char.strip(values)
            value = str(value).strip()
        return values == value

    # -- writing -----------------------------------------------------------------

    def to_fits(self, directory: str | Path, *, overwrite: bool = False) -> tuple[Path, Path]:
        """Write ``obs-index.fits.gz`` and ``hdu-index.fits.gz`` into ``directory``.

        FILE_DIR values are rewritten relative to ``directory`` so that every
        location still resolves to the same file.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        hdu_table = self.hdu_table.copy()
        dirs = []
        for row in hdu_table:
            target = self._resolve(str(row["FILE_DIR"]), "x").parent
            rel = os.path.relpath(target, directory.resolve())
            dirs.append("." if rel == "." else rel)
        hdu_table["FILE_DIR"] = dirs
        hdu_table.meta.setdefault("EXTNAME", "HDU_INDEX")
        obs_path = directory / "obs-index.fits.gz"
        hdu_path = directory / "hdu-index.fits.gz"
        write_index_table(self.obs_table, obs_path, "OBS_INDEX", "OBS", overwrite=overwrite)
        write_index_table(hdu_table, hdu_path, "HDU_INDEX", "HDU", overwrite=overwrite)
        return obs_path, hdu_path


def write_index_table(
    table: Table, path: Path, extname: str, hduclas2: str, *, overwrite: bool = False
) -> None:
    """Write an index table with GADF class keywords (kept meta wins)."""
    table = table.copy(copy_data=False)
    meta = dict(table.meta)
    meta["EXTNAME"] = extname
    meta.setdefault("HDUCLASS", "GADF")
    meta.setdefault("HDUCLAS1", "INDEX")
    meta["HDUCLAS2"] = hduclas2
    table.meta = meta
    table.write(path, format="fits", overwrite=overwrite)


def _s(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _find(directory: Path, names: Sequence[str], what: str) -> Path:
    for name in names:
        if (directory / name).exists():
            return directory / name
    raise FileReadError(
        f"{what} file not found (looked for {list(names)})", file=str(directory / names[0])
    )


_TIME_SCALES = ("tt", "utc", "tai", "tdb", "tcg", "tcb", "ut1")


def time_reference_from_header(
    header: Any, *, file: str | None = None, obs_id: int | None = None
) -> Time:
    """MJDREF (MJDREFI + MJDREFF, or MJDREF) of a header or dict as a Time in its TIMESYS scale.

    A missing TIMESYS means TT (the GADF default).
    """
    scale = str(header.get("TIMESYS", "tt")).strip().lower() or "tt"
    if scale not in _TIME_SCALES:
        raise FormatError(f"unknown TIMESYS {scale!r}", file=file, obs_id=obs_id, field="TIMESYS")
    try:
        if "MJDREFI" in header:
            return Time(
                float(header["MJDREFI"]),
                float(header.get("MJDREFF", 0.0)),
                format="mjd",
                scale=scale,
            )
        if "MJDREF" in header:
            return Time(float(header["MJDREF"]), format="mjd", scale=scale)
    except (TypeError, ValueError) as exc:
        raise FormatError(
            f"invalid MJDREF: {exc}", file=file, obs_id=obs_id, field="MJDREFI"
        ) from exc
    raise FormatError(
        "no MJDREFI/MJDREFF or MJDREF keyword", file=file, obs_id=obs_id, field="MJDREFI"
    )

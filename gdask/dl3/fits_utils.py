"""Low-level FITS helpers shared by the DL3 readers.

They turn astropy's many failure modes (missing file, truncated gzip, absent
HDU or column, unconvertible unit) into gdask errors that name the file, the
observation and the field.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from gdask.errors import FileReadError, FormatError, MissingColumnError, MissingHDUError, UnitError

__all__ = ["open_fits", "get_hdu", "read_column", "header_quantity", "to_unit"]

_DECODE_ERRORS = (OSError, EOFError, ValueError, TypeError, zlib.error, gzip.BadGzipFile)


def open_fits(path: str | Path, obs_id: int | None = None) -> fits.HDUList:
    """Open a FITS file fully into memory, with a clear error if it is missing or corrupt.

    The data of every HDU are read at once so that truncation is detected here
    rather than later at first access.
    """
    path = Path(path)
    if not path.exists():
        raise FileReadError("file not found", file=str(path), obs_id=obs_id)
    if not path.is_file():  # a directory, or a FIFO that would block forever
        raise FileReadError("not a regular file", file=str(path), obs_id=obs_id)
    try:
        hdulist = fits.open(path, memmap=False, lazy_load_hdus=False)
        for hdu in hdulist:
            _ = hdu.data  # force decoding of every HDU
    except _DECODE_ERRORS as exc:
        raise FileReadError(
            f"cannot read FITS file: {type(exc).__name__}: {exc}", file=str(path), obs_id=obs_id
        ) from exc
    _check_gzip_complete(path, hdulist, obs_id)
    return hdulist


def _check_gzip_complete(path: Path, hdulist: fits.HDUList, obs_id: int | None) -> None:
    """Raise if a gzip file ended early.

    astropy silently drops the HDUs after the point where a gzip stream ends;
    the gzip trailer (uncompressed size modulo 2**32) tells whether all was read.
    """
    with open(path, "rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            return
        fh.seek(-4, os.SEEK_END)
        isize = struct.unpack("<I", fh.read(4))[0]
    info = hdulist[-1].fileinfo() or hdulist.fileinfo(len(hdulist) - 1)
    end = int(info["datLoc"]) + int(info["datSpan"])
    if end % 2**32 == isize:
        return
    try:  # a multi-member gzip file records the size of its last member only: decompress to be sure
        with gzip.open(path, "rb") as g:
            while g.read(1 << 24):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        hdulist.close()
        raise FileReadError(
            f"truncated or corrupt gzip file: {type(exc).__name__}: {exc}",
            file=str(path),
            obs_id=obs_id,
        ) from exc


def get_hdu(
    hdulist: fits.HDUList, name: str | int, *, file: str | None = None, obs_id: int | None = None
):
    """Return an HDU by name (case-insensitive) or index, or raise `MissingHDUError`."""
    try:
        return hdulist[name]
    except (KeyError, IndexError) as exc:
        names = [h.name for h in hdulist]
        raise MissingHDUError(
            f"HDU {name!r} not found; the file has {names}",
            file=file,
            obs_id=obs_id,
            field=str(name),
        ) from exc


def to_unit(
    values,
    unit_str: str | None,
    target: str | u.UnitBase,
    *,
    default: str | None = None,
    file: str | None = None,
    obs_id: int | None = None,
    field: str | None = None,
) -> np.ndarray:
    """Convert ``values`` given in ``unit_str`` to ``target``; return a plain float array.

    An empty or missing unit takes ``default`` (when given) or is an error.
    """
    unit_str = (unit_str or "").strip()
    if not unit_str:
        if default is None:
            raise UnitError(
                f"no unit given, expected {target}", file=file, obs_id=obs_id, field=field
            )
        unit_str = default
    try:
        unit = u.Unit(unit_str, parse_strict="raise")
        factor = unit.to(target)
    except (ValueError, u.UnitsError, TypeError) as exc:
        raise UnitError(
            f"unit {unit_str!r} cannot be converted to {target}",
            file=file,
            obs_id=obs_id,
            field=field,
        ) from exc
    arr = np.asarray(values, dtype=float)
    return arr * factor if factor != 1 else arr


def read_column(
    hdu,
    name: str,
    unit: str | u.UnitBase | None = None,
    *,
    default_unit: str | None = None,
    required: bool = True,
    file: str | None = None,
    obs_id: int | None = None,
) -> np.ndarray | None:
    """Read a table column (case-insensitive name), optionally converted to ``unit``.

    Returns None for an absent optional column.
    """
    cols = {c.name.upper(): c for c in hdu.columns}
    col = cols.get(name.upper())
    field = f"{hdu.name}.{name}"
    if col is None:
        if not required:
            return None
        raise MissingColumnError(
            f"column {name!r} not found in HDU {hdu.name!r}; it has {list(cols)}",
            file=file,
            obs_id=obs_id,
            field=field,
        )
    data = hdu.data[col.name]
    if unit is None:
        return np.asarray(data)
    return to_unit(
        data, col.unit, unit, default=default_unit, file=file, obs_id=obs_id, field=field
    )


def header_quantity(
    header,
    key: str,
    unit: str | u.UnitBase,
    *,
    default: float | None = None,
    default_unit: str | None = None,
    file: str | None = None,
    obs_id: int | None = None,
    hdu_name: str = "",
) -> float:
    """Read a numeric header keyword as a float in ``unit``.

    The keyword's unit is taken from a ``[unit]`` prefix of its comment if any,
    else ``default_unit`` (else ``unit`` itself).
    """
    field = f"{hdu_name}.{key}" if hdu_name else key
    if key not in header:
        if default is not None:
            return float(default)
        raise FormatError(f"header keyword {key!r} missing", file=file, obs_id=obs_id, field=field)
    value = header[key]
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise FormatError(
            f"header keyword {key!r} is not a number: {value!r}",
            file=file,
            obs_id=obs_id,
            field=field,
        ) from exc
    comment = header.comments[key] or ""
    unit_str = default_unit or str(unit)
    if comment.startswith("[") and "]" in comment:
        unit_str = comment[1 : comment.index("]")]
    return float(to_unit(value, unit_str, unit, file=file, obs_id=obs_id, field=field))

"""Reading an index table's OBS_ID column, row by row.

GADF's OBS_ID is an integer. Index files in the wild also hold strings of
digits or integral floats, which are read as integers; anything else (a word,
a fraction, a masked cell) makes only its own row unusable, reported as a
`FormatError` naming the file, the row and the field, so that one bad row
does not cost the other observations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gdask.errors import FormatError

__all__ = ["as_obs_id", "parse_obs_ids"]


def as_obs_id(value: Any) -> int | None:
    """An OBS_ID cell as an int, or None if it is not an integer.

    >>> as_obs_id(b" 23523 "), as_obs_id(23523.0), as_obs_id("run-1")
    (23523, 23523, None)
    """
    if isinstance(value, bytes | np.bytes_):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return int(value) if np.isfinite(value) and float(value).is_integer() else None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def parse_obs_ids(
    column: Any, *, what: str, file: str | None = None
) -> tuple[np.ndarray, np.ndarray, list[FormatError]]:
    """Parse an OBS_ID column.

    Parameters
    ----------
    column : array-like or masked column
        The OBS_ID cells.
    what : str
        The table, for messages (``"obs-index"``).
    file : str, optional
        The index file, for messages.

    Returns
    -------
    ids : ndarray of int64
        The parsed ids (0 where unusable).
    ok : ndarray of bool
        Which rows are usable.
    errors : list of FormatError
        One per unusable row (``field="OBS_ID"``).
    """
    values = np.asarray(column)
    mask = np.ma.getmaskarray(column)
    if values.dtype.kind in "iu" and not mask.any():
        return values.astype(np.int64), np.ones(len(values), dtype=bool), []
    ids = np.zeros(len(values), dtype=np.int64)
    ok = np.ones(len(values), dtype=bool)
    errors = []
    for i, value in enumerate(values):
        parsed = None if mask[i] else as_obs_id(value)
        if parsed is None:
            ok[i] = False
            shown = "a masked value" if mask[i] else repr(_shown(value))
            errors.append(
                FormatError(
                    f"{what} row {i + 1}: OBS_ID {shown} is not an integer; the row is left out",
                    file=file,
                    field="OBS_ID",
                )
            )
        else:
            ids[i] = parsed
    return ids, ok, errors


def _shown(value: Any) -> Any:
    if isinstance(value, bytes | np.bytes_):
        return value.decode("ascii", errors="replace").strip()
    if isinstance(value, np.generic):
        value = value.item()
    return value.strip() if isinstance(value, str) else value

"""The exception hierarchy of gdask.

Every error raised on bad input names *where* the problem is: the file, the
observation and the field (HDU, column, keyword or config key), so that a
user reading a summary of a thousand-run ingest knows what to fix.
"""

from __future__ import annotations

__all__ = [
    "GdaskError",
    "DL3Error",
    "FileReadError",
    "MissingHDUError",
    "MissingColumnError",
    "UnitError",
    "FormatError",
    "ArchiveError",
    "ConfigError",
    "SelectionError",
]


class GdaskError(Exception):
    """Base class of gdask's errors.

    Parameters
    ----------
    message : str
        What is wrong.
    file : str, optional
        The file concerned.
    obs_id : int, optional
        The observation concerned.
    field : str, optional
        The HDU, column, keyword or configuration key concerned.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        obs_id: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.obs_id = None if obs_id is None else int(obs_id)
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if self.obs_id is not None:
            where.append(f"OBS_ID {self.obs_id}")
        if self.field is not None:
            where.append(f"field {self.field}")
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def with_context(
        self, *, file: str | None = None, obs_id: int | None = None, field: str | None = None
    ) -> GdaskError:
        """Return a copy with missing context (file, observation, field) filled in."""
        return type(self)(
            self.message,
            file=self.file if self.file is not None else file,
            obs_id=self.obs_id if self.obs_id is not None else obs_id,
            field=self.field if self.field is not None else field,
        )

    def __reduce__(self):
        # keep context across pickling (errors travel back from Dask workers)
        return (_rebuild, (type(self), self.message, self.file, self.obs_id, self.field))


def _rebuild(cls, message, file, obs_id, field):
    return cls(message, file=file, obs_id=obs_id, field=field)


class DL3Error(GdaskError):
    """A DL3 file or index does not follow GADF as gdask needs it."""


class FileReadError(DL3Error):
    """A file cannot be opened or decoded (missing, corrupt, truncated)."""


class MissingHDUError(DL3Error):
    """A required HDU is absent."""


class MissingColumnError(DL3Error):
    """A required column is absent from a table HDU."""


class UnitError(DL3Error):
    """A column or keyword has a unit that cannot be converted to the expected one."""


class FormatError(DL3Error):
    """Values are present but malformed (shapes, NaN edges, unknown HDU class...)."""


class ArchiveError(GdaskError):
    """The zarr archive store is missing, unreadable or inconsistent."""


class SelectionError(GdaskError):
    """An observation selection is invalid or selects nothing where something is needed."""


class ConfigError(GdaskError):
    """An analysis configuration is invalid."""

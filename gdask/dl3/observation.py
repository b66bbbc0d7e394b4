"""One observation's DL3 data (events, GTI, IRFs) read from or written to GADF FITS.

`read_observation` opens each distinct source file once per observation;
`read_observations` also keeps files shared by several observations (FACT's
single IRF file) open across the whole selection. `write_observations` writes
a GADF archive (one file per observation plus obs-index and hdu-index) that
reads back to identical data.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import MaskedColumn, Table

from gdask.dl3.events import EventList
from gdask.dl3.fits_utils import get_hdu, open_fits
from gdask.dl3.gti import GTI
from gdask.dl3.index import DL3Index, write_index_table
from gdask.errors import FormatError, GdaskError, MissingHDUError, SelectionError

__all__ = [
    "Observation",
    "read_observation",
    "read_observations",
    "write_observations",
    "IRF_TYPES",
]

IRF_TYPES = ("aeff", "edisp", "psf", "bkg", "rad_max")
"""The IRF HDU types an `Observation` can hold, in the order they are written."""

_KNOWN_TYPES = ("events", "gti", *IRF_TYPES)


@dataclass
class Observation:
    """The DL3 data of one observation.

    Attributes
    ----------
    obs_id : int
        The observation id.
    events : EventList or None
        The event list (None only if not required and absent).
    gti : GTI or None
        The good time intervals.
    irfs : dict
        IRF objects keyed by HDU type (``aeff``, ``edisp``, ``psf``, ``bkg``, ``rad_max``).
    meta : dict
        The obs-index row (JSON-serialisable python values).
    sources : list of Path
        The files read, in order of first use.
    """

    obs_id: int
    events: EventList | None = None
    gti: GTI | None = None
    irfs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)

    @property
    def hdu_types(self) -> list[str]:
        """The HDU types present."""
        out = [t for t, v in (("events", self.events), ("gti", self.gti)) if v is not None]
        return out + [t for t in IRF_TYPES if t in self.irfs]

    @property
    def background_fov_alignment(self) -> str | None:
        """How the background IRF's FoV axes are aligned: ``RADEC``, ``ALTAZ`` or ``REVERSE_LON_RADEC``.

        The H.E.S.S. DL3 DR1 files (EVENTS ``CREATOR = "SASH FITS::EventListWriter"``,
        ``HDUVERS = "0.2"``) store the background with reversed FoV longitudes;
        Gammapy reads them so, and gdask does the same. Otherwise the value is
        the background IRF's own FOVALIGN (None without a background IRF).
        """
        if self.events is not None:
            header = self.events.header
            if (
                str(header.get("CREATOR", "")).strip() == "SASH FITS::EventListWriter"
                and str(header.get("HDUVERS", "")).strip() == "0.2"
            ):
                return "REVERSE_LON_RADEC"
        bkg = self.irfs.get("bkg")
        return None if bkg is None else bkg.ds.attrs.get("fov_alignment")

    def to_hdulist(self) -> fits.HDUList:
        """A FITS HDU list: PRIMARY, EVENTS, GTI, then the IRFs (aeff, edisp, psf, bkg, rad_max)."""
        hdus: list[Any] = [fits.PrimaryHDU()]
        if self.events is not None:
            hdus.append(self.events.to_hdu())
        if self.gti is not None:
            hdus.append(self.gti.to_hdu())
        for hdu_type in IRF_TYPES:
            if hdu_type in self.irfs:
                hdus.append(self.irfs[hdu_type].to_hdu())
        _unique_names(hdus[1:])
        return fits.HDUList(hdus)


def _unique_names(hdus: Sequence[Any]) -> None:
    seen: set[str] = set()
    for hdu in hdus:
        name = hdu.name.upper()
        if name in seen:  # two HDUs with one EXTNAME: use EXTVER to tell them apart
            hdu.header["EXTVER"] = int(hdu.header.get("EXTVER", 1)) + 1
        seen.add(name)


class _Files:
    """Opened FITS files: each opened once, shared ones kept across observations."""

    def __init__(self, keep: Iterable[Path] = ()) -> None:
        self.keep = set(keep)
        self.open: dict[Path, fits.HDUList] = {}

    def get(self, path: Path, obs_id: int) -> fits.HDUList:
        if path not in self.open:
            self.open[path] = open_fits(path, obs_id=obs_id)
        return self.open[path]

    def release(self, everything: bool = False) -> None:
        for path in list(self.open):
            if everything or path not in self.keep:
                self.open.pop(path).close()


def _read_irf(hdu: Any, hdu_class: str, file: str, obs_id: int) -> Any:
    from gdask.dl3.irf import read_irf  # imported late: written in parallel, avoids cycles

    return read_irf(hdu, hdu_class, file=file, obs_id=obs_id)


def _read(
    index: DL3Index,
    obs_id: int,
    require: Sequence[str],
    hdu_types: Sequence[str] | None,
    files: _Files,
) -> Observation:
    obs_id = int(obs_id)
    require = [t.lower() for t in require]
    listed = index.hdu_types(obs_id)
    wanted = [t for t in listed if t in _KNOWN_TYPES and (hdu_types is None or t in hdu_types)]
    for t in require:
        if t not in listed:
            raise MissingHDUError(
                f"required HDU type {t!r} not in the hdu-index; it lists {listed}",
                file=str(index.hdu_file),
                obs_id=obs_id,
                field=t,
            )
        if t not in wanted:
            wanted.append(t)
    try:
        meta = index.obs_row(obs_id)
    except SelectionError:  # listed in the hdu-index only: no obs-index row to carry
        meta = {"OBS_ID": obs_id}
    obs = Observation(obs_id=obs_id, meta=meta)
    for hdu_type in wanted:
        loc = index.hdu_location(obs_id, hdu_type)
        hdulist = files.get(loc.path, obs_id)
        if loc.path not in obs.sources:
            obs.sources.append(loc.path)
        hdu = get_hdu(hdulist, loc.hdu_name, file=str(loc.path), obs_id=obs_id)
        file = str(loc.path)
        try:
            if hdu_type == "events":
                obs.events = EventList.from_hdu(hdu, file=file, obs_id=obs_id)
                if obs.events.obs_id is not None and obs.events.obs_id != obs_id:
                    warnings.warn(
                        f"{file}: EVENTS OBS_ID {obs.events.obs_id} differs from the index's {obs_id}",
                        stacklevel=3,
                    )
            elif hdu_type == "gti":
                obs.gti = GTI.from_hdu(hdu, file=file, obs_id=obs_id)
            else:
                obs.irfs[hdu_type] = _read_irf(hdu, loc.hdu_class, file, obs_id)
        except GdaskError as exc:
            raise exc.with_context(file=file, obs_id=obs_id, field=loc.hdu_name) from exc
    return obs


def read_observation(
    index: DL3Index,
    obs_id: int,
    *,
    require: Sequence[str] = ("events", "gti"),
    hdu_types: Sequence[str] | None = None,
) -> Observation:
    """Read one observation's events, GTI and IRFs.

    Parameters
    ----------
    index : DL3Index
        The archive index.
    obs_id : int
        The observation.
    require : sequence of str
        HDU types that must be present (a `MissingHDUError` otherwise); other
        types are read when the hdu-index lists them.
    hdu_types : sequence of str, optional
        Read only these types (plus ``require``); default all known types.
    """
    files = _Files()
    try:
        return _read(index, obs_id, require, hdu_types, files)
    finally:
        files.release(everything=True)


def read_observations(
    index: DL3Index,
    obs_ids: Iterable[int] | None = None,
    *,
    require: Sequence[str] = ("events", "gti"),
    hdu_types: Sequence[str] | None = None,
) -> Iterator[Observation]:
    """Read several observations, opening files shared between them only once."""
    obs_ids = index.obs_ids if obs_ids is None else [int(o) for o in obs_ids]
    counts = Counter(p for o in obs_ids for p in index.file_paths(o))
    files = _Files(keep=[p for p, n in counts.items() if n > 1])
    try:
        for obs_id in obs_ids:
            yield _read(index, obs_id, require, hdu_types, files)
            files.release()
    finally:
        files.release(everything=True)


# -- writing -----------------------------------------------------------------------

_TIME_KEYS = ("MJDREFI", "MJDREFF", "MJDREF", "TIMEUNIT", "TIMESYS", "TIMEREF")


def _default_row(obs: Observation) -> dict[str, Any]:
    """An obs-index row: the observation's meta completed from its events and GTI."""
    row: dict[str, Any] = {"OBS_ID": int(obs.obs_id)}
    if obs.events is not None:
        a = obs.events.ds.attrs
        for key, name in (
            ("RA_PNT", "ra_pnt"),
            ("DEC_PNT", "dec_pnt"),
            ("ONTIME", "ontime"),
            ("LIVETIME", "livetime"),
            ("DEADC", "deadc"),
        ):
            if name in a:
                row[key] = a[name]
        row["EVENT_COUNT"] = obs.events.n_events
    if obs.gti is not None and len(obs.gti):
        row["TSTART"], row["TSTOP"] = obs.gti.met_start, obs.gti.met_stop
    for key, value in obs.meta.items():
        row[key] = value
    return row


def _rows_to_table(rows: list[dict[str, Any]], units: dict[str, str]) -> Table:
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    table = Table()
    for name in names:
        values = [row.get(name) for row in rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            col = MaskedColumn(
                [bool(v) if v is not None else False for v in values],
                mask=[v is None for v in values],
            )
        elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            col = MaskedColumn(
                [v if v is not None else 0 for v in values],
                dtype=np.int64,
                mask=[v is None for v in values],
            )
        elif present and all(isinstance(v, int | float) for v in present):
            col = MaskedColumn(
                [np.nan if v is None else float(v) for v in values], dtype=np.float64
            )
        else:
            col = MaskedColumn(["" if v is None else str(v) for v in values])
        if not np.any(col.mask):
            col = col.data if hasattr(col, "data") else col
        table[name] = col
        if name in units:
            table[name].unit = units[name]
    return table


def write_observations(
    observations: Iterable[Observation],
    directory: str | Path,
    *,
    index: DL3Index | None = None,
    index_meta: dict[str, Any] | None = None,
    column_units: dict[str, str] | None = None,
    file_template: str = "obs_{obs_id}.fits",
    overwrite: bool = False,
) -> DL3Index:
    """Write observations as a GADF archive: one FITS file each, obs-index and hdu-index.

    Every file holds EVENTS, GTI and the IRF HDUs (shared IRFs, e.g. FACT's,
    are copied into each file), so reading the archive back gives identical data.

    Parameters
    ----------
    observations : iterable of Observation
        What to write.
    directory : str or Path
        The archive directory (created if needed).
    index : DL3Index, optional
        The index the observations came from: its obs-index rows are written
        unchanged (dtypes, units and header keywords).
    index_meta : dict, optional
        Obs-index header keywords (MJDREFI, MJDREFF, TIMESYS...) when no
        ``index`` is given; defaults to the first event list's time keywords.
    column_units : dict, optional
        Units of obs-index columns built from ``Observation.meta`` (default:
        deg for pointings, s for times).
    file_template : str
        File name of each observation, formatted with ``obs_id``.
    overwrite : bool
        Overwrite existing files.

    Returns
    -------
    DL3Index
        The index of the written archive.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hdu_rows: list[tuple[Any, ...]] = []
    obs_rows: list[dict[str, Any]] = []
    obs_ids: list[int] = []
    first_header: fits.Header | None = None
    for obs in observations:
        name = file_template.format(obs_id=obs.obs_id)
        hdulist = obs.to_hdulist()
        hdulist.writeto(directory / name, overwrite=overwrite)
        types = obs.hdu_types
        for hdu_type, hdu in zip(types, hdulist[1:], strict=True):
            if hdu_type in ("events", "gti"):
                hdu_class = hdu_type
            else:
                hdu_class = getattr(obs.irfs[hdu_type], "hdu_class", "")
            hdu_rows.append((int(obs.obs_id), hdu_type, hdu_class, ".", name, hdu.name))
        obs_rows.append(_default_row(obs))
        obs_ids.append(int(obs.obs_id))
        if first_header is None and obs.events is not None:
            first_header = obs.events.header
    if len(set(obs_ids)) != len(obs_ids):
        dup = [o for o, n in Counter(obs_ids).items() if n > 1]
        raise FormatError(f"observations {dup} given more than once", obs_id=dup[0], field="OBS_ID")
    hdu_table = (
        Table(
            rows=hdu_rows,
            names=["OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME"],
            dtype=[np.int64, str, str, str, str, str],
        )
        if hdu_rows
        else Table(
            names=["OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME"],
            dtype=[np.int64, str, str, str, str, str],
        )
    )
    pos = (
        {}
        if index is None
        else {int(o): i for i, o in enumerate(np.asarray(index.obs_table["OBS_ID"]))}
    )
    if index is not None and all(o in pos for o in obs_ids):
        obs_table = index.obs_table[[pos[o] for o in obs_ids]]
    else:
        units = {
            "RA_PNT": "deg",
            "DEC_PNT": "deg",
            "TSTART": "s",
            "TSTOP": "s",
            "ONTIME": "s",
            "LIVETIME": "s",
        }
        units.update(column_units or {})
        obs_table = _rows_to_table(obs_rows, units)
        meta = (
            dict(index_meta)
            if index_meta is not None
            else (
                index.meta
                if index is not None
                else {
                    k: first_header[k]
                    for k in _TIME_KEYS
                    if first_header is not None and k in first_header
                }
            )
        )
        obs_table.meta.update(meta)
    write_index_table(
        obs_table, directory / "obs-index.fits.gz", "OBS_INDEX", "OBS", overwrite=overwrite
    )
    write_index_table(
        hdu_table, directory / "hdu-index.fits.gz", "HDU_INDEX", "HDU", overwrite=overwrite
    )
    return DL3Index.read(directory)

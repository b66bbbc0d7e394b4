"""Event lists: the EVENTS HDU of a GADF observation as an xarray Dataset.

The dataset holds the file's columns unchanged (names, values, dtype kind and
size; byte order is made native), one variable per column along dim
``event``; a vector column gets an extra dim ``<NAME>_dim_<i>``. Each variable
carries ``attrs["units"]`` (the TUNIT, "" when absent) and ``fits_format``
(the TFORM). The header travels as ``attrs["fits_header"]`` so that
``to_hdu()`` writes back the same columns and keywords.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.time import Time

from gdask.dl3.fits_utils import to_unit
from gdask.dl3.index import python_scalar, time_reference_from_header
from gdask.errors import FormatError, MissingColumnError

__all__ = [
    "EventList",
    "hdu_to_dataset",
    "dataset_to_hdu",
    "header_attrs",
    "time_header_defaults",
]

# header keyword -> dataset attribute, copied when present
_HEADER_ATTRS = {
    "OBS_ID": "obs_id",
    "RA_PNT": "ra_pnt",
    "DEC_PNT": "dec_pnt",
    "TIMESYS": "timesys",
    "TIMEREF": "timeref",
    "ONTIME": "ontime",
    "LIVETIME": "livetime",
    "DEADC": "deadc",
    "TSTART": "tstart",
    "TSTOP": "tstop",
}
_STRUCTURAL = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|THEAP|"
    r"(TTYPE|TFORM|TUNIT|TDIM|TNULL|TSCAL|TZERO|TDISP)\d+)$"
)


def _context(file: str | Path | None) -> str | None:
    return None if file is None else str(file)


def header_attrs(
    header: fits.Header, *, file: str | None = None, obs_id: int | None = None
) -> dict[str, Any]:
    """Parsed header values of interest as JSON-serialisable dataset attrs.

    Includes ``mjdref`` (float MJD) when MJDREFI/MJDREFF or MJDREF is present.
    """
    attrs: dict[str, Any] = {}
    for key, name in _HEADER_ATTRS.items():
        if key in header:
            value = python_scalar(header[key])
            if isinstance(value, str) and name not in ("timesys", "timeref"):
                try:
                    value = float(value)
                except ValueError as exc:
                    raise FormatError(
                        f"header keyword {key} is not a number: {value!r}",
                        file=file,
                        obs_id=obs_id,
                        field=key,
                    ) from exc
            if value is not None:
                attrs[name] = value
    if "obs_id" in attrs:
        attrs["obs_id"] = int(attrs["obs_id"])
    try:
        if "MJDREFI" in header:
            attrs["mjdref"] = float(header["MJDREFI"]) + float(header.get("MJDREFF", 0.0))
        elif "MJDREF" in header:
            attrs["mjdref"] = float(header["MJDREF"])
    except (TypeError, ValueError) as exc:
        raise FormatError(
            f"invalid MJDREF: {exc}", file=file, obs_id=obs_id, field="MJDREFI"
        ) from exc
    return attrs


def hdu_to_dataset(
    hdu: fits.BinTableHDU, dim: str, *, file: str | None = None, obs_id: int | None = None
) -> xr.Dataset:
    """Turn a binary table HDU into a Dataset with one variable per column along ``dim``."""
    if not isinstance(hdu, fits.BinTableHDU):
        raise FormatError(
            f"HDU {hdu.name!r} is not a binary table", file=file, obs_id=obs_id, field=hdu.name
        )
    data_vars = {}
    for col in hdu.columns:
        if "P" in str(col.format).upper() or "Q" in str(col.format).upper():
            raise FormatError(
                f"variable-length column {col.name!r} is not supported",
                file=file,
                obs_id=obs_id,
                field=f"{hdu.name}.{col.name}",
            )
        values = np.asarray(hdu.data[col.name]) if hdu.data is not None else np.zeros(0)
        if values.dtype.kind not in "SUb" and not values.dtype.isnative:
            values = values.astype(values.dtype.newbyteorder("="))
        dims = (dim,) + tuple(f"{col.name}_dim_{i}" for i in range(values.ndim - 1))
        attrs = {"units": str(col.unit or "").strip(), "fits_format": str(col.format)}
        data_vars[col.name] = xr.Variable(dims, values, attrs=attrs)
    ds = xr.Dataset(data_vars)
    ds.attrs["fits_header"] = hdu.header.tostring()
    return ds


def _default_format(values: np.ndarray) -> str:
    kind, size = values.dtype.kind, values.dtype.itemsize
    n = int(np.prod(values.shape[1:])) if values.ndim > 1 else 1
    codes = {
        ("f", 4): "E",
        ("f", 8): "D",
        ("i", 1): "B",
        ("i", 2): "I",
        ("i", 4): "J",
        ("i", 8): "K",
        ("u", 1): "B",
        ("u", 2): "I",
        ("u", 4): "J",
        ("u", 8): "K",
        ("b", 1): "L",
    }
    if kind == "S":
        return f"{size * n}A"
    if kind == "U":
        return f"{size // 4 * n}A"
    if (kind, size) not in codes:
        raise FormatError(f"cannot write dtype {values.dtype} to FITS")
    return f"{n}{codes[(kind, size)]}"


def time_header_defaults(attrs: dict[str, Any]) -> dict[str, Any]:
    """Default time keywords of a GADF table HDU from dataset attrs (None where unknown).

    ``MJDREFI``/``MJDREFF`` are the integer and fractional parts of ``attrs["mjdref"]``;
    then ``TIMEUNIT`` (s), ``TIMESYS`` and ``TIMEREF``.
    """
    mjdref = attrs.get("mjdref")
    return {
        "MJDREFI": None if mjdref is None else int(np.floor(mjdref)),
        "MJDREFF": None if mjdref is None else float(mjdref - np.floor(mjdref)),
        "TIMEUNIT": "s",
        "TIMESYS": attrs.get("timesys"),
        "TIMEREF": attrs.get("timeref"),
    }


def dataset_to_hdu(ds: xr.Dataset, dim: str, default_header: dict[str, Any]) -> fits.BinTableHDU:
    """Write a Dataset made by `hdu_to_dataset` back to a binary table HDU.

    Uses ``attrs["fits_header"]`` when present (its column keywords are
    regenerated from the variables), else ``default_header``.
    """
    header_str = ds.attrs.get("fits_header")
    if header_str:
        header = fits.Header.fromstring(header_str)
    else:
        header = fits.Header()
        for key, value in default_header.items():
            if value is not None:
                header[key] = value
    old = {
        str(header[f"TTYPE{i}"]).strip(): i
        for i in range(1, int(header.get("TFIELDS", 0)) + 1)
        if f"TTYPE{i}" in header
    }
    columns = []
    for name, var in ds.data_vars.items():
        if var.dims[0] != dim:
            continue
        values = np.asarray(var.values)
        kwargs: dict[str, Any] = {}
        i = old.get(str(name))
        if i is not None:
            for key, arg in (
                ("TNULL", "null"),
                ("TSCAL", "bscale"),
                ("TZERO", "bzero"),
                ("TDISP", "disp"),
            ):
                if f"{key}{i}" in header:
                    kwargs[arg] = header[f"{key}{i}"]
        fmt = (
            var.attrs.get("fits_format")
            or (header.get(f"TFORM{i}") if i else None)
            or _default_format(values)
        )
        dim_str = None
        if values.ndim > 2:
            dim_str = "(" + ",".join(str(s) for s in values.shape[:0:-1]) + ")"
        columns.append(
            fits.Column(
                name=str(name),
                format=fmt,
                unit=var.attrs.get("units") or None,
                dim=dim_str,
                array=values,
                **kwargs,
            )
        )
    if not header_str:
        return fits.BinTableHDU.from_columns(columns, header=header)
    # start from astropy's structural and column cards, then restore the original
    # comments and put every other card back where it was relative to them
    hdu = fits.BinTableHDU.from_columns(columns)
    generated = hdu.header
    pos = 0
    for card in header.cards:
        key = card.keyword
        if _STRUCTURAL.match(key):
            if key in generated:
                if card.comment:
                    generated.comments[key] = card.comment
                pos = generated.index(key) + 1
        else:
            generated.insert(pos, card)
            pos += 1
    return hdu
    # restore the original card order and comments; structural and column
    # keywords take the values astropy computed for the data written
    generated = hdu.header
    final = fits.Header()
    for card in header.cards:
        key = card.keyword
        if _STRUCTURAL.match(key):
            if key in generated and key not in final:
                final.append(
                    fits.Card(key, generated[key], card.comment or generated.comments[key])
                )
        else:
            final.append(card)
    for card in generated.cards:
        if _STRUCTURAL.match(card.keyword) and card.keyword not in final:
            final.append(card)
    generated.clear()
    generated.extend(final.cards)
    return hdu


def _check_unit(
    ds: xr.Dataset, name: str, target: str, default: str, file: str | None, obs_id: int | None
) -> None:
    unit = ds[name].attrs.get("units", "")
    to_unit(0.0, unit, target, default=default, file=file, obs_id=obs_id, field=f"EVENTS.{name}")


class EventList:
    """A GADF event list held as an `xarray.Dataset` (dim ``event``).

    Parameters
    ----------
    ds : `xarray.Dataset`
        One variable per EVENTS column; attrs per ``docs/data-model.md``.
    file : str, optional
        The source file, for error messages.
    """

    hdu_class = "events"
    REQUIRED_COLUMNS = {"TIME": "s", "RA": "deg", "DEC": "deg", "ENERGY": "TeV"}

    def __init__(
        self, ds: xr.Dataset, *, file: str | Path | None = None, obs_id: int | None = None
    ) -> None:
        self.ds = ds
        self.file = _context(file)
        # the observation named in errors: the caller's (index) id, else the file's
        self._context_obs_id = obs_id if obs_id is not None else ds.attrs.get("obs_id")
        self.validate()

    def validate(self) -> None:
        """Check the required columns (TIME, RA, DEC, ENERGY) and their units."""
        obs_id = self._context_obs_id
        for name, unit in self.REQUIRED_COLUMNS.items():
            if name not in self.ds.data_vars:
                raise MissingColumnError(
                    f"required column {name!r} not found; the event list has {list(self.ds.data_vars)}",
                    file=self.file,
                    obs_id=obs_id,
                    field=f"EVENTS.{name}",
                )
            if "event" not in self.ds[name].dims:
                raise FormatError(
                    f"column {name!r} is not along dim 'event'",
                    file=self.file,
                    obs_id=obs_id,
                    field=f"EVENTS.{name}",
                )
            _check_unit(self.ds, name, unit, self._default_unit(name), self.file, obs_id)

    def _default_unit(self, name: str) -> str:
        if name == "ENERGY" and self.ds.attrs.get("fits_header"):
            header = fits.Header.fromstring(self.ds.attrs["fits_header"])
            return str(header.get("EUNIT", "TeV")).strip() or "TeV"
        return self.REQUIRED_COLUMNS[name]

    # -- IO ----------------------------------------------------------------------

    @classmethod
    def from_hdu(
        cls, hdu: fits.BinTableHDU, *, file: str | Path | None = None, obs_id: int | None = None
    ) -> EventList:
        """Read an EVENTS HDU; values are stored exactly as in the file."""
        file = _context(file)
        if obs_id is None and "OBS_ID" in hdu.header:
            obs_id = python_scalar(hdu.header["OBS_ID"])
        ds = hdu_to_dataset(hdu, "event", file=file, obs_id=obs_id)
        ds.attrs.update(header_attrs(hdu.header, file=file, obs_id=obs_id))
        if obs_id is not None:
            ds.attrs.setdefault("obs_id", int(obs_id))
        return cls(ds, file=file, obs_id=obs_id)

    @classmethod
    def read(cls, path: str | Path, hdu: str = "EVENTS") -> EventList:
        """Read the EVENTS HDU of a FITS file."""
        from gdask.dl3.fits_utils import get_hdu, open_fits

        hdulist = open_fits(path)
        return cls.from_hdu(get_hdu(hdulist, hdu, file=str(path)), file=path)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> EventList:
        """Wrap a dataset made by `to_dataset` (e.g. read back from zarr)."""
        return cls(ds)

    def to_dataset(self) -> xr.Dataset:
        """The underlying dataset (not a copy)."""
        return self.ds

    def to_hdu(self) -> fits.BinTableHDU:
        """The EVENTS binary table HDU: same columns, formats, units and header keywords."""
        a = self.ds.attrs
        default = {
            "EXTNAME": "EVENTS",
            "HDUCLASS": "GADF",
            "HDUCLAS1": "EVENTS",
            "OBS_ID": a.get("obs_id"),
            "RA_PNT": a.get("ra_pnt"),
            "DEC_PNT": a.get("dec_pnt"),
            **time_header_defaults(a),
            "TSTART": a.get("tstart"),
            "TSTOP": a.get("tstop"),
            "ONTIME": a.get("ontime"),
            "LIVETIME": a.get("livetime"),
            "DEADC": a.get("deadc"),
        }
        return dataset_to_hdu(self.ds, "event", default)

    # -- content -----------------------------------------------------------------

    @property
    def n_events(self) -> int:
        """Number of events."""
        return int(self.ds.sizes.get("event", 0))

    def __len__(self) -> int:
        return self.n_events

    def __repr__(self) -> str:
        return f"EventList(obs_id={self.obs_id}, n_events={self.n_events}, columns={list(self.ds.data_vars)})"

    @property
    def obs_id(self) -> int | None:
        """The OBS_ID, when known."""
        return self.ds.attrs.get("obs_id")

    @property
    def header(self) -> fits.Header:
        """The stored FITS header (empty if there is none)."""
        s = self.ds.attrs.get("fits_header")
        return fits.Header.fromstring(s) if s else fits.Header()

    @property
    def pointing(self) -> tuple[float, float]:
        """The nominal pointing (RA_PNT, DEC_PNT) in deg."""
        a = self.ds.attrs
        if "ra_pnt" not in a or "dec_pnt" not in a:
            raise FormatError(
                "no RA_PNT/DEC_PNT in the EVENTS header",
                file=self.file,
                obs_id=self._context_obs_id,
                field="EVENTS.RA_PNT",
            )
        return float(a["ra_pnt"]), float(a["dec_pnt"])

    @property
    def time_reference(self) -> Time:
        """MJDREF as an astropy Time in the TIMESYS scale (TT if absent)."""
        header = self.header
        if "MJDREFI" not in header and "MJDREF" not in header and "mjdref" in self.ds.attrs:
            header = {
                "MJDREF": self.ds.attrs["mjdref"],
                "TIMESYS": self.ds.attrs.get("timesys", "tt"),
            }
        return time_reference_from_header(header, file=self.file, obs_id=self._context_obs_id)

    def _converted(self, name: str, unit: str) -> np.ndarray:
        return to_unit(
            self.ds[name].values,
            self.ds[name].attrs.get("units"),
            unit,
            default=self._default_unit(name),
            file=self.file,
            obs_id=self._context_obs_id,
            field=f"EVENTS.{name}",
        )

    @property
    def energy(self) -> u.Quantity:
        """Reconstructed energies in TeV (a converted copy)."""
        return self._converted("ENERGY", "TeV") * u.TeV

    @property
    def radec(self) -> tuple[np.ndarray, np.ndarray]:
        """(RA, DEC) in deg as float arrays (converted copies)."""
        return self._converted("RA", "deg"), self._converted("DEC", "deg")

    @property
    def met(self) -> np.ndarray:
        """Event times in seconds since MJDREF."""
        return self._converted("TIME", "s")

    @property
    def time(self) -> Time:
        """Event times as astropy Time."""
        return self.time_reference + self.met * u.s

    def select_mask(self, mask: np.ndarray) -> EventList:
        """A new event list with the events where ``mask`` is true."""
        return EventList(
            self.ds.isel(event=np.asarray(mask, dtype=bool)),
            file=self.file,
            obs_id=self._context_obs_id,
        )

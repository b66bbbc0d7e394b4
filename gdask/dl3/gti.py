"""Good time intervals: the GTI HDU of a GADF observation as an xarray Dataset.

Variables ``START`` and ``STOP`` (dim ``gti``) hold the file's values, in
seconds since MJDREF; other columns of the HDU are kept as they are.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.time import Time

from gdask.dl3.events import dataset_to_hdu, hdu_to_dataset, header_attrs, time_header_defaults
from gdask.dl3.fits_utils import to_unit
from gdask.dl3.index import python_scalar, time_reference_from_header
from gdask.errors import FormatError, MissingColumnError

__all__ = ["GTI"]


class GTI:
    """Good time intervals held as an `xarray.Dataset` (dim ``gti``).

    Parameters
    ----------
    ds : `xarray.Dataset`
        Variables START and STOP (seconds since MJDREF); attrs as for events.
    file : str, optional
        The source file, for error messages.
    """

    hdu_class = "gti"

    def __init__(self, ds: xr.Dataset, *, file: str | Path | None = None) -> None:
        self.ds = ds
        self.file = None if file is None else str(file)
        self.validate()

    def validate(self) -> None:
        """Check START and STOP exist, are times and are ordered."""
        obs_id = self.ds.attrs.get("obs_id")
        for name in ("START", "STOP"):
            if name not in self.ds.data_vars:
                raise MissingColumnError(
                    f"required column {name!r} not found; the GTI has {list(self.ds.data_vars)}",
                    file=self.file,
                    obs_id=obs_id,
                    field=f"GTI.{name}",
                )
        start, stop = self.start, self.stop
        if np.any(stop < start):
            raise FormatError(
                "GTI with STOP before START", file=self.file, obs_id=obs_id, field="GTI.STOP"
            )

    # -- IO ----------------------------------------------------------------------

    @classmethod
    def from_hdu(
        cls, hdu: fits.BinTableHDU, *, file: str | Path | None = None, obs_id: int | None = None
    ) -> GTI:
        """Read a GTI HDU; values are stored exactly as in the file."""
        file = None if file is None else str(file)
        ds = hdu_to_dataset(hdu, "gti", file=file, obs_id=obs_id)
        ds.attrs.update(header_attrs(hdu.header, file=file, obs_id=obs_id))
        if obs_id is not None:
            ds.attrs["obs_id"] = int(obs_id)
        return cls(ds, file=file)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> GTI:
        """Wrap a dataset made by `to_dataset` (e.g. read back from zarr)."""
        return cls(ds)

    @classmethod
    def create(cls, start, stop, *, mjdref: float | None = None, timesys: str = "tt") -> GTI:
        """Make a GTI from MET start/stop arrays (seconds)."""
        start = np.atleast_1d(np.asarray(start, dtype=float))
        stop = np.atleast_1d(np.asarray(stop, dtype=float))
        ds = xr.Dataset(
            {
                "START": ("gti", start, {"units": "s", "fits_format": "1D"}),
                "STOP": ("gti", stop, {"units": "s", "fits_format": "1D"}),
            }
        )
        ds.attrs["timesys"] = timesys
        if mjdref is not None:
            ds.attrs["mjdref"] = float(mjdref)
        return cls(ds)

    def to_dataset(self) -> xr.Dataset:
        """The underlying dataset (not a copy)."""
        return self.ds

    def to_hdu(self) -> fits.BinTableHDU:
        """The GTI binary table HDU: same columns, formats, units and header keywords."""
        default = {
            "EXTNAME": "GTI",
            "HDUCLASS": "GADF",
            "HDUCLAS1": "GTI",
            **time_header_defaults(self.ds.attrs),
        }
        return dataset_to_hdu(self.ds, "gti", default)

    # -- content -----------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.ds.sizes.get("gti", 0))

    def __repr__(self) -> str:
        return f"GTI(n={len(self)}, time_sum={self.time_sum:.1f} s)"

    def _seconds(self, name: str) -> np.ndarray:
        var = self.ds[name]
        return to_unit(
            var.values,
            var.attrs.get("units"),
            "s",
            default="s",
            file=self.file,
            obs_id=self.ds.attrs.get("obs_id"),
            field=f"GTI.{name}",
        )

    @property
    def start(self) -> np.ndarray:
        """Interval starts in seconds since MJDREF."""
        return self._seconds("START")

    @property
    def stop(self) -> np.ndarray:
        """Interval stops in seconds since MJDREF."""
        return self._seconds("STOP")

    @property
    def time_sum(self) -> float:
        """Summed duration of the intervals in seconds."""
        return float(np.sum(self.stop - self.start))

    @property
    def time_reference(self) -> Time:
        """MJDREF as an astropy Time in the TIMESYS scale (TT if absent)."""
        s = self.ds.attrs.get("fits_header")
        header = fits.Header.fromstring(s) if s else fits.Header()
        if "MJDREFI" not in header and "MJDREF" not in header and "mjdref" in self.ds.attrs:
            header = {
                "MJDREF": self.ds.attrs["mjdref"],
                "TIMESYS": self.ds.attrs.get("timesys", "tt"),
            }
        return time_reference_from_header(
            header, file=self.file, obs_id=self.ds.attrs.get("obs_id")
        )

    def _nonempty(self) -> None:
        if len(self) == 0:
            raise FormatError(
                "the GTI table is empty",
                file=self.file,
                obs_id=self.ds.attrs.get("obs_id"),
                field="GTI",
            )

    @property
    def met_start(self) -> float:
        """Earliest start in seconds since MJDREF."""
        self._nonempty()
        return float(np.min(self.start))

    @property
    def met_stop(self) -> float:
        """Latest stop in seconds since MJDREF."""
        self._nonempty()
        return float(np.max(self.stop))

    @property
    def time_start(self) -> Time:
        """Earliest start as astropy Time."""
        return self.time_reference + self.met_start * u.s

    @property
    def time_stop(self) -> Time:
        """Latest stop as astropy Time."""
        return self.time_reference + self.met_stop * u.s

    @property
    def obs_id(self) -> int | None:
        """The OBS_ID, when known."""
        value = self.ds.attrs.get("obs_id")
        return None if value is None else python_scalar(value)

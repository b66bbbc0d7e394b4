"""The base class of IRFs stored as GADF one-row binary tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import xarray as xr
from astropy.io import fits

from gdask.dl3.fits_utils import header_quantity
from gdask.dl3.irf.table import (
    AxisSpec,
    ColumnSpec,
    axis_edges,
    axis_fill_edges,
    axis_nodes,
    make_dataset,
    read_table_hdu,
    write_table_hdu,
)
from gdask.errors import FormatError
from gdask.interp import GridInterpolator

__all__ = ["TableIRF", "GADF_IRF_KEYWORDS", "ENERGY_TRUE_AXIS", "OFFSET_AXIS", "point_like_attrs"]

#: The true-energy axis of GADF IRF tables (``ENERG_LO``/``ENERG_HI``, or ``ETRUE_*``).
ENERGY_TRUE_AXIS = AxisSpec("ENERG", "energy_true", "TeV", log=True, aliases=("ETRUE",))
#: The field-of-view offset axis of GADF IRF tables (``THETA_LO``/``THETA_HI``).
OFFSET_AXIS = AxisSpec("THETA", "offset", "deg")


def point_like_attrs(point_like: bool, rad_max: float | None) -> dict:
    """The ``create`` attrs of an IRF that may be point-like with a constant ``rad_max`` (deg)."""
    attrs: dict = {"point_like": bool(point_like)}
    if rad_max is not None:
        attrs["rad_max"] = float(rad_max)
    return attrs


def _header_flags(header: fits.Header, *, file, obs_id, hdu_name) -> dict:
    """Point-like flag and constant RAD_MAX (deg) from a GADF IRF header."""
    attrs: dict = {"point_like": str(header.get("HDUCLAS3", "")).strip().upper() == "POINT-LIKE"}
    if "RAD_MAX" in header:
        attrs["rad_max"] = header_quantity(
            header,
            "RAD_MAX",
            "deg",
            default_unit="deg",
            file=file,
            obs_id=obs_id,
            hdu_name=hdu_name,
        )
    return attrs


class TableIRF:
    """Base class of IRFs stored as GADF one-row tables.

    Subclasses declare ``hdu_class``, ``extname``, ``axes``, ``columns`` and
    ``keywords`` (mandatory header keywords written when absent); they get
    ``from_hdu``, ``from_dataset``, ``to_hdu`` and ``to_dataset``.

    Parameters
    ----------
    ds : `xarray.Dataset`
        Dataset with the axes' coordinates and bounds and the data variables.
    """

    hdu_class: ClassVar[str] = ""
    extname: ClassVar[str] = ""
    axes: ClassVar[tuple[AxisSpec, ...]] = ()
    columns: ClassVar[tuple[ColumnSpec, ...]] = ()
    keywords: ClassVar[dict[str, str]] = {}

    def __init__(self, ds: xr.Dataset) -> None:
        for spec in self.axes:
            for name in (spec.dim, f"{spec.dim}_bounds"):
                if name not in ds.variables:
                    raise FormatError(f"{type(self).__name__} dataset lacks {name!r}", field=name)
        for cspec in self.columns:
            if cspec.required and cspec.var not in ds:
                raise FormatError(
                    f"{type(self).__name__} dataset lacks {cspec.var!r}", field=cspec.var
                )
        dims = tuple(s.dim for s in self.axes)
        self.ds = (
            ds.transpose(*dims, ...)
            if any(ds[c.var].dims != dims for c in self.columns if c.var in ds)
            else ds
        )

    # -- construction
    @classmethod
    def _tdim_order(cls, header: fits.Header):
        """TDIM order of the data columns (default: the axes order)."""
        return None

    @classmethod
    def _extra_attrs(cls, header: fits.Header, *, file, obs_id, hdu_name) -> dict:
        """Attributes parsed from the header (point_like, rad_max; subclasses add more)."""
        return _header_flags(header, file=file, obs_id=obs_id, hdu_name=hdu_name)

    @classmethod
    def from_hdu(cls, hdu: fits.BinTableHDU, *, file: str | None = None, obs_id: int | None = None):
        """Read from a GADF binary table HDU; errors name ``file``, ``obs_id`` and the field."""
        if obs_id is None and "OBS_ID" in hdu.header:
            try:
                obs_id = int(hdu.header["OBS_ID"])
            except (TypeError, ValueError):
                obs_id = None
        ds = read_table_hdu(
            hdu,
            cls.axes,
            cls.columns,
            tdim_order=cls._tdim_order(hdu.header),
            file=file,
            obs_id=obs_id,
        )
        ds.attrs.update(cls._extra_attrs(hdu.header, file=file, obs_id=obs_id, hdu_name=hdu.name))
        ds.attrs["hdu_class"] = cls.hdu_class
        if obs_id is not None:
            ds.attrs.setdefault("obs_id", int(obs_id))
        return cls(ds)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset):
        """Wrap a dataset (e.g. read from the archive store)."""
        return cls(ds)

    @classmethod
    def _create(cls, edges: Mapping, data: Mapping, attrs: Mapping | None = None):
        units = {c.var: c.unit for c in cls.columns}
        all_attrs = {"hdu_class": cls.hdu_class, **(attrs or {})}
        return cls(make_dataset(cls.axes, edges, data, units=units, attrs=all_attrs))

    # -- output
    def to_dataset(self) -> xr.Dataset:
        """The underlying dataset (a shallow copy)."""
        return self.ds.copy()

    def _keywords(self) -> dict:
        kw: dict[str, Any] = dict(self.keywords)
        if self.ds.attrs.get("point_like"):
            kw["HDUCLAS3"] = "POINT-LIKE"
        if "rad_max" in self.ds.attrs:
            kw["RAD_MAX"] = float(self.ds.attrs["rad_max"])
        return kw

    def to_hdu(self) -> fits.BinTableHDU:
        """Write as a GADF binary table HDU (original header keywords kept)."""
        return write_table_hdu(
            self.ds,
            self.axes,
            self.columns,
            extname=self.ds.attrs.get("extname", self.extname),
            keywords=self._keywords(),
        )

    # -- helpers
    def edges(self, dim: str) -> np.ndarray:
        """Bin edges of an axis (float64, in internal units)."""
        return axis_edges(self.ds, dim)

    def fill_edges(self, dim: str) -> np.ndarray:
        """Edges bounding the evaluation domain (see `axis_fill_edges`)."""
        return axis_fill_edges(self.ds, dim)

    def nodes(self, dim: str) -> np.ndarray:
        """Bin centres (interpolation nodes) of an axis (float64)."""
        return axis_nodes(self.ds, dim)

    def _grid_interpolator(self, var: str, scales: list[str], **kwargs: Any) -> GridInterpolator:
        """Interpolator of ``var`` over all axes (nodes at bin centres, 0 outside the fill edges).

        ``kwargs`` go to `GridInterpolator` (``values_scale``, ``outside_mode``...).
        """
        dims = [s.dim for s in self.axes]
        return GridInterpolator(
            [self.nodes(d) for d in dims],
            self.ds[var].values,
            scales=scales,
            edges=[self.fill_edges(d) for d in dims],
            fill_value=0.0,
            **kwargs,
        )

    @property
    def point_like(self) -> bool:
        """Whether the IRF is point-like (a directional cut was applied)."""
        return bool(self.ds.attrs.get("point_like", False))

    @property
    def rad_max(self) -> float | None:
        """Constant directional cut (deg) from the header, if any."""
        value = self.ds.attrs.get("rad_max")
        return None if value is None else float(value)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s.dim}: {self.ds.sizes[s.dim]}" for s in self.axes)
        return f"{type(self).__name__}({sizes})"


#: Keywords common to all GADF IRF HDUs.
GADF_IRF_KEYWORDS = {
    "HDUCLASS": "GADF",
    "HDUDOC": "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats",
    "HDUVERS": "0.2",
    "HDUCLAS1": "RESPONSE",
}

"""GADF-DL4 map HDUs (Gammapy's layout) to and from numpy arrays.

A map HDU named ``NAME`` is either an image (WCS sky grid; the WCS in the
header, ``WCSSHAPE = '(nx,ny,n1,n2,...)'``) or, for a map on a single sky
region, a binary table with columns ``CHANNEL`` and ``DATA`` (the data
flattened in C order). Its non-spatial axes are described by the table HDU
``NAME_BANDS`` (named in ``BANDSHDU``): one row per channel, columns
``E_MIN/E_MAX/ENERGY`` for reconstructed energy and ``X, X_MIN, X_MAX`` for
any other axis ``x``; the header keys ``AXCOLSi`` name the columns that define
axis ``i`` (two columns: edges; one column: nodes) and ``INTERPi`` its scale.
Gammapy numbers the axes from the fastest varying one, so axis 1 is the last
non-spatial numpy dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from gdask.datasets.axes import AXIS_UNITS, BandAxis, make_axis
from gdask.dl3.fits_utils import open_fits
from gdask.errors import FileReadError, FormatError, MissingColumnError, MissingHDUError
from gdask.geometry.wcs import WcsGeom

__all__ = ["GadfMap", "open_dataset_fits", "read_gadf_map", "gadf_map_hdus"]


def open_dataset_fits(path: str | Path) -> fits.HDUList:
    """Open a DL4/OGIP FITS file fully into memory, refusing a truncated one.

    `gdask.dl3.fits_utils.open_fits` (missing file, undecodable data, cut
    gzip stream), and for a plain file: it must end where its last HDU ends.
    astropy silently drops an HDU whose header was cut; this says so instead.

    Raises
    ------
    FileReadError
        Missing, unreadable, corrupt or truncated file (``file`` is the path).

    Examples
    --------
    >>> with open_dataset_fits("pha_obs23523.fits") as hdulist:  # doctest: +SKIP
    ...     hdulist.info()
    """
    path = Path(path)
    try:
        hdulist = open_fits(path)
    except FileReadError as exc:
        bad = _first_unreadable_hdu(path)
        if bad is None:
            raise
        raise FileReadError(
            f"truncated or corrupt FITS file: HDU {bad!r} cannot be read ({exc.message})",
            file=str(path),
            field=bad,
        ) from exc
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    if not gzipped:
        # the HDU's own fileinfo: HDUList.fileinfo also serialises every header card to
        # tell whether the file was resized (a third of the read time of an OGIP spectrum)
        info = hdulist[-1].fileinfo() or hdulist.fileinfo(len(hdulist) - 1)
        end, size = int(info["datLoc"]) + int(info["datSpan"]), path.stat().st_size
        if size != end:
            last = hdulist[-1].name or "PRIMARY"
            n_hdus = len(hdulist)
            hdulist.close()
            where = (
                f"{size - end} bytes after the last complete HDU {last!r} (an HDU cut short)"
                if size > end
                else f"it ends {end - size} bytes before the end of its last HDU {last!r}"
            )
            field = f"HDU {n_hdus}" if size > end else last
            raise FileReadError(
                f"truncated or corrupt FITS file: {where}", file=str(path), field=field
            )
    return hdulist


@dataclass
class GadfMap:
    """A map read from a GADF-DL4 HDU.

    Attributes
    ----------
    data : ndarray
        Values, numpy order ``(axis_n, ..., axis_1, lat, lon)``.
    axes : list of `BandAxis`
        Non-spatial axes in numpy order (outermost first), in gdask units.
    geom : `WcsGeom` or None
        Sky grid; None for a region map (one spatial pixel, no WCS).
    unit : str
        Unit of the values (``BUNIT`` or the ``DATA`` column unit).
    meta : str or None
        Gammapy's ``META`` header card (a JSON string), if any.
    """

    data: NDArray
    axes: list[BandAxis]
    geom: WcsGeom | None
    unit: str
    meta: str | None = None


def _band_axis(table: fits.FITS_rec, header: fits.Header, idx: int, file: str | None) -> BandAxis:
    """Axis ``idx`` (1-based, Gammapy order) of a BANDS table."""
    axcols = header.get(f"AXCOLS{idx}")
    if axcols is None:
        raise FormatError(f"no AXCOLS{idx} keyword", file=file, field="BANDS")
    colnames = [c.strip() for c in str(axcols).split(",")]
    if colnames[0] == "E_MIN":
        name = "energy"
    else:
        name = colnames[0].replace("_MIN", "").lower()
        if name == "theta":  # old name of the PSF offset axis
            name = "rad"
    interp = str(header.get(f"INTERP{idx}", "lin")).strip()
    cols = {c.name: c for c in table.columns}
    for col in colnames:
        if col not in cols:
            raise MissingColumnError(f"no column {col!r}", file=file, field=f"BANDS.{col}")
    file_unit = cols[colnames[0]].unit or ""
    unit = AXIS_UNITS.get(name, file_unit)

    def values(col: str) -> NDArray[np.float64]:
        v = np.unique(np.asarray(table[col], dtype=float))
        return u.Quantity(v, file_unit).to_value(unit) if unit != file_unit else v

    if len(colnames) == 1:
        return BandAxis.from_nodes(values(colnames[0]), name, interp, unit)
    lo, hi = values(colnames[0]), values(colnames[1])
    return BandAxis(make_axis(np.append(lo, hi[-1]), name, interp, unit))


def _read_axes(hdu_bands: fits.BinTableHDU | None, file: str | None) -> list[BandAxis]:
    """Axes of a BANDS HDU in numpy order (outermost first)."""
    if hdu_bands is None:
        return []
    header = hdu_bands.header
    axes = []
    idx = 1
    while f"AXCOLS{idx}" in header:
        axes.append(_band_axis(hdu_bands.data, header, idx, file))
        idx += 1
    return axes[::-1]


def _first_unreadable_hdu(path: Path) -> str | None:
    """Name of the first HDU whose data cannot be decoded (None if that is not the problem)."""
    try:
        with fits.open(path, memmap=False) as hdulist:
            for i, hdu in enumerate(hdulist):
                try:
                    _ = hdu.data
                except (OSError, ValueError, TypeError, EOFError):
                    return hdu.name or ("PRIMARY" if i == 0 else str(i))
    except (OSError, ValueError, TypeError, EOFError):
        return None
    return None


def read_gadf_map(hdulist: fits.HDUList, hdu: str, file: str | None = None) -> GadfMap:
    """Read map HDU ``hdu`` and its BANDS table from a GADF-DL4 file."""
    if hdu not in hdulist:
        raise MissingHDUError(f"no HDU {hdu!r}", file=file, field=hdu)
    h = hdulist[hdu]
    header = h.header
    bands_name = header.get("BANDSHDU", f"{hdu}_BANDS")
    hdu_bands = hdulist[bands_name] if bands_name in hdulist else None
    if hdu_bands is None and f"{hdu}_BANDS" in hdulist:
        hdu_bands = hdulist[f"{hdu}_BANDS"]
    n_values = len(h.data) if isinstance(h, fits.BinTableHDU) else int(header.get("NAXIS", 0))
    if hdu_bands is None and n_values > (1 if isinstance(h, fits.BinTableHDU) else 2):
        raise MissingHDUError(
            f"no HDU {bands_name!r}: the non-spatial axes of {hdu} are undefined",
            file=file,
            field=bands_name,
        )
    axes = _read_axes(hdu_bands, file)
    shape_axes = tuple(a.nbin for a in axes)
    meta = header.get("META")
    if isinstance(h, fits.BinTableHDU):
        if f"{hdu}_REGION" in hdulist:
            raise FormatError(
                "region maps with a REGION HDU are not supported", file=file, field=hdu
            )
        names = h.columns.names
        if "DATA" not in names:
            raise FormatError(
                "sparse or HEALPix map tables are not supported", file=file, field=hdu
            )
        unit = h.columns["DATA"].unit or ""
        data = np.asarray(h.data["DATA"]).reshape(shape_axes + (1, 1))
        geom = None
    else:
        if "CTYPE1" not in header:
            raise FormatError("map image without a WCS", file=file, field=hdu)
        geom = WcsGeom.from_header(header)
        data = np.asarray(h.data)
        unit = str(header.get("BUNIT", "")).strip()
        expected = shape_axes + geom.shape
        if data.shape != expected:
            raise FormatError(
                f"data shape {data.shape} != {expected} from the axes", file=file, field=hdu
            )
    data = data.astype(data.dtype.newbyteorder("="))
    try:
        unit = u.Unit(unit).to_string() if unit else ""
    except ValueError as exc:
        raise FormatError(f"invalid unit {unit!r}", file=file, field=f"{hdu}.BUNIT") from exc
    return GadfMap(data, axes, geom, unit, meta)


def _bands_hdu(name: str, axes: list[BandAxis]) -> fits.BinTableHDU:
    """BANDS table of ``axes`` (numpy order); rows in C order of the data."""
    grids = np.meshgrid(*[np.arange(a.nbin) for a in axes], indexing="ij")
    cols = [fits.Column("CHANNEL", "K", array=np.arange(int(np.prod([a.nbin for a in axes]))))]
    header = fits.Header()
    for idx, ax in enumerate(axes[::-1], start=1):
        grid = grids[len(axes) - idx].ravel()
        upper = ax.name.upper()
        cnames = (
            ["ENERGY", "E_MIN", "E_MAX"]
            if ax.name == "energy"
            else [upper, f"{upper}_MIN", f"{upper}_MAX"]
        )
        vals = [ax.center, ax.axis.edges_min, ax.axis.edges_max]
        for cname, v in zip(cnames, vals, strict=True):
            cols.append(
                fits.Column(cname, "D", unit=ax.axis.unit or None, array=np.asarray(v)[grid])
            )
        header[f"AXCOLS{idx}"] = cnames[0] if ax.nodes is not None else f"{cnames[1]},{cnames[2]}"
        header[f"INTERP{idx}"] = ax.axis.interp
    hdu = fits.BinTableHDU.from_columns(cols, header=header, name=name)
    return hdu


def gadf_map_hdus(
    name: str,
    data: NDArray,
    axes: list[BandAxis],
    geom: WcsGeom | None,
    unit: str = "",
    meta: str | None = None,
) -> list[fits.hdu.base.ExtensionHDU]:
    """Map HDU ``name`` and its ``name_BANDS`` table, as Gammapy writes them.

    ``geom=None`` writes a region map (binary table ``CHANNEL, DATA``).
    """
    data = np.asarray(data)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    bands = _bands_hdu(f"{name}_BANDS", axes)
    axes_header = fits.Header(
        [c for c in bands.header.cards if c.keyword.startswith(("AXCOLS", "INTERP"))]
    )
    if geom is None:
        flat = data.reshape(-1)
        fmt = {
            np.dtype("float32"): "E",
            np.dtype("float64"): "D",
            np.dtype("int32"): "J",
            np.dtype("int64"): "K",
            np.dtype("int16"): "I",
            np.dtype("uint8"): "B",
        }
        cols = [
            fits.Column("CHANNEL", "K", array=np.arange(flat.size)),
            fits.Column("DATA", fmt.get(flat.dtype, "D"), unit=unit or None, array=flat),
        ]
        hdu = fits.BinTableHDU.from_columns(cols, header=axes_header, name=name)
    else:
        header = geom.to_header()
        shape = [geom.npix[0], geom.npix[1]] + [a.nbin for a in axes[::-1]]
        header["WCSSHAPE"] = "(" + ",".join(str(n) for n in shape) + ")"
        header.update(axes_header)
        header["BANDSHDU"] = f"{name}_BANDS"
        hdu = fits.ImageHDU(data, header=header, name=name)
        hdu.header["META"] = meta if meta is not None else "{}"
        hdu.header["BUNIT"] = u.Unit(unit).to_string("fits") if unit else ""
    return [hdu, bands]

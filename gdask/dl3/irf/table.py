"""Shared reading and writing of GADF "one-row bintable" IRF HDUs.

GADF stores an IRF as a binary table with a single row: every axis is a pair
of array columns ``<PREFIX>_LO`` / ``<PREFIX>_HI`` (bin edges) and every data
column is an n-dimensional array whose FITS ``TDIM`` lists the axes fastest
first (so numpy sees them reversed).

This module turns such an HDU into the `xarray.Dataset` layout of
``docs/data-model.md`` and back:

- each axis ``dim`` becomes a coordinate ``dim`` (bin centres: geometric mean
  of the edges for log axes, arithmetic mean otherwise, float64; the edges
  are the ``_LO`` values and the last ``_HI``; when ``_LO == _HI`` the values
  are nodes and the centres are these values) plus a CF
  bounds coordinate ``dim_bounds`` with dims ``(dim, "bound")`` holding the
  file's ``_LO``/``_HI`` values in the file's dtype (exact);
- each data column becomes a variable with dims in the axis order given by the
  caller, in the file's dtype when no unit conversion is needed;
- the header travels in ``attrs["fits_header"]`` and the TDIM order of each
  data column in the variable's ``attrs["gadf_tdim"]``, so that
  `write_table_hdu` reproduces the original column values and keywords.

Public API (stable; also used by ``psf.py``):

- `AxisSpec`, `ColumnSpec`: declarative description of an IRF table;
- `read_table_hdu(hdu, axes, columns, *, tdim_order=None, file=None, obs_id=None)`;
- `write_table_hdu(ds, axes, columns, *, extname, keywords=None)`;
- `make_dataset(axes, edges, data, *, attrs=None)`: build the same layout from arrays;
- `axis_edges(ds, dim)`, `axis_nodes(ds, dim)`: edges / centres as float64 arrays;
- `header_from_string(text)`, `header_to_string(header)`;

The base class built on these, `gdask.dl3.irf.base.TableIRF`, gives an IRF class
``from_hdu``/``to_hdu``/``from_dataset``/``to_dataset`` from class-level specs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.io import fits

from gdask.dl3.fits_utils import to_unit
from gdask.errors import FormatError, MissingColumnError

__all__ = [
    "AxisSpec",
    "ColumnSpec",
    "read_table_hdu",
    "write_table_hdu",
    "make_dataset",
    "axis_edges",
    "axis_nodes",
    "axis_is_nodes",
    "axis_fill_edges",
    "header_from_string",
    "header_to_string",
    "STRUCTURAL_KEYWORDS",
]

#: Header keywords that describe the table layout; they are regenerated on write.
STRUCTURAL_KEYWORDS = (
    "XTENSION",
    "BITPIX",
    "NAXIS",
    "PCOUNT",
    "GCOUNT",
    "TFIELDS",
    "THEAP",
)
_STRUCTURAL_PREFIXES = (
    "NAXIS",
    "TTYPE",
    "TFORM",
    "TUNIT",
    "TDIM",
    "TNULL",
    "TSCAL",
    "TZERO",
    "TDISP",
)


@dataclass(frozen=True)
class AxisSpec:
    """One binned axis of an IRF table.

    Parameters
    ----------
    column : str
        Column prefix in the file (``"ENERG"`` for ``ENERG_LO``/``ENERG_HI``).
    dim : str
        Dataset dimension name (``"energy_true"``).
    unit : str
        Internal unit the edges are converted to (``"TeV"``; ``""`` if dimensionless).
    log : bool
        Log axis: centres are geometric means and interpolation is in log.
    default_unit : str, optional
        Unit assumed when the file gives none (None: a missing unit is an error,
        except for dimensionless axes).
    aliases : tuple of str
        Other accepted column prefixes (``("ETRUE",)``).
    """

    column: str
    dim: str
    unit: str
    log: bool = False
    default_unit: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnSpec:
    """One data column of an IRF table.

    Parameters
    ----------
    column : str
        Column name in the file (``"EFFAREA"``).
    var : str
        Dataset variable name (``"effective_area"``).
    unit : str
        Internal unit (``"m2"``; ``""`` for dimensionless).
    default_unit : str, optional
        Unit assumed when the file gives none (None: error unless dimensionless).
    aliases : tuple of str
        Other accepted column names (``("BGD",)``).
    required : bool
        A missing optional column is skipped.
    """

    column: str
    var: str
    unit: str
    default_unit: str | None = None
    aliases: tuple[str, ...] = ()
    required: bool = True


# ---------------------------------------------------------------- headers


def header_to_string(header: fits.Header) -> str:
    """Serialise a FITS header to a string (80-character cards)."""
    return header.tostring(sep="", endcard=False, padding=False)


def header_from_string(text: str | None) -> fits.Header:
    """Parse a header produced by `header_to_string` (empty header for None/"")."""
    if not text:
        return fits.Header()
    return fits.Header.fromstring(text)


def _is_structural(key: str) -> bool:
    return key in STRUCTURAL_KEYWORDS or key.startswith(_STRUCTURAL_PREFIXES)


def _column_meta(header: fits.Header) -> dict[str, dict[str, str]]:
    """Map column name -> {"index", "unit", "dim", "form"} from the TTYPEn cards."""
    out: dict[str, dict[str, str]] = {}
    for i in range(1, int(header.get("TFIELDS", 0)) + 1):
        name = header.get(f"TTYPE{i}")
        if name is None:
            continue
        out[str(name).strip().upper()] = {
            "index": str(i),
            "unit": str(header.get(f"TUNIT{i}", "")).strip(),
            "dim": str(header.get(f"TDIM{i}", "")).strip(),
            "form": str(header.get(f"TFORM{i}", "")).strip(),
        }
    return out


# ---------------------------------------------------------------- axes


def _centres(lo: np.ndarray, hi: np.ndarray, log: bool) -> np.ndarray:
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    return np.sqrt(lo * hi) if log else 0.5 * (lo + hi)


def _native(arr: np.ndarray) -> np.ndarray:
    """Return a contiguous copy in native byte order (lossless)."""
    arr = np.asarray(arr)
    return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("=")))


def _find(cols: Mapping[str, str], names: Sequence[str]) -> str | None:
    for name in names:
        if name.upper() in cols:
            return cols[name.upper()]
    return None


def _convert(values, unit_str, target, default, *, file, obs_id, field) -> np.ndarray:
    """Convert to the internal unit, keeping dtype and exact values when the factor is 1.

    A dimensionless target accepts a missing unit; otherwise a missing unit
    takes ``default`` or is a `UnitError`.
    """
    unit_str = (unit_str or "").strip()
    target_unit = u.Unit(target) if target else u.dimensionless_unscaled
    if not unit_str:
        if target_unit == u.dimensionless_unscaled:
            return _native(values)
        if default is None:
            return to_unit(values, None, target_unit, file=file, obs_id=obs_id, field=field)
        unit_str = default
    factor = float(to_unit(1.0, unit_str, target_unit, file=file, obs_id=obs_id, field=field))
    if factor == 1.0:
        return _native(values)
    return to_unit(values, unit_str, target_unit, file=file, obs_id=obs_id, field=field)


def _read_axis(hdu, spec: AxisSpec, cols, *, file, obs_id) -> tuple[np.ndarray, np.ndarray]:
    values = []
    for suffix in ("_LO", "_HI"):
        names = [p + suffix for p in (spec.column, *spec.aliases)]
        name = _find(cols, names)
        if name is None:
            raise MissingColumnError(
                f"axis column {names[0]!r} not found in HDU {hdu.name!r}; it has {list(cols)}",
                file=file,
                obs_id=obs_id,
                field=f"{hdu.name}.{names[0]}",
            )
        raw = np.asarray(hdu.data[name])
        if raw.ndim == 0 or raw.shape[0] < 1:
            raise FormatError(
                "table has no rows", file=file, obs_id=obs_id, field=f"{hdu.name}.{name}"
            )
        arr = np.atleast_1d(raw[0]).ravel()
        unit_str = hdu.columns[name].unit
        arr = _convert(
            arr,
            unit_str,
            spec.unit,
            spec.default_unit,
            file=file,
            obs_id=obs_id,
            field=f"{hdu.name}.{name}",
        )
        if not np.all(np.isfinite(arr)):
            raise FormatError(
                "axis edges are not finite", file=file, obs_id=obs_id, field=f"{hdu.name}.{name}"
            )
        values.append(arr)
    lo, hi = values
    if lo.shape != hi.shape:
        raise FormatError(
            f"{spec.column}_LO and {spec.column}_HI have different lengths {lo.size} and {hi.size}",
            file=file,
            obs_id=obs_id,
            field=f"{hdu.name}.{spec.column}_LO",
        )
    if lo.size > 1 and not (np.all(np.diff(lo.astype(float)) > 0)):
        raise FormatError(
            "axis edges are not increasing",
            file=file,
            obs_id=obs_id,
            field=f"{hdu.name}.{spec.column}_LO",
        )
    return lo, hi


def _axis_coords(spec: AxisSpec, lo: np.ndarray, hi: np.ndarray) -> dict[str, xr.Variable]:
    dim = spec.dim
    is_nodes = bool(np.allclose(np.asarray(hi, float), np.asarray(lo, float)))
    if is_nodes:
        centres = np.asarray(hi, dtype=float).copy()
    else:
        # edges are the _LO values and the last _HI (as Gammapy), so that
        # float32 files whose _HI[i] != _LO[i+1] by rounding give the same nodes
        edges = np.append(np.asarray(lo, dtype=float), float(hi[-1]))
        centres = _centres(edges[:-1], edges[1:], spec.log)
    bounds = np.stack([lo, hi], axis=-1)
    attrs = {"units": spec.unit, "bounds": f"{dim}_bounds", "scale": "log" if spec.log else "lin"}
    if is_nodes:
        attrs["node_type"] = "center"
    return {
        dim: xr.Variable(dim, centres, attrs=attrs),
        f"{dim}_bounds": xr.Variable((dim, "bound"), bounds, attrs={"units": spec.unit}),
    }


def axis_is_nodes(ds: xr.Dataset, dim: str) -> bool:
    """True when the axis was given as nodes (``_LO == _HI``) rather than bins."""
    return ds[dim].attrs.get("node_type") == "center"


def axis_nodes(ds: xr.Dataset, dim: str) -> np.ndarray:
    """The interpolation nodes of an axis (its coordinate values) as float64."""
    return np.asarray(ds[dim].values, dtype=float)


def axis_edges(ds: xr.Dataset, dim: str) -> np.ndarray:
    """The ``n + 1`` bin edges of an axis as float64 (``_LO`` values and the last ``_HI``).

    For node axes (``_LO == _HI``) the edges lie half way between nodes (in the
    axis scale) and are extrapolated by half a step at both ends.
    """
    bounds = np.asarray(ds[f"{dim}_bounds"].values, dtype=float)
    if not axis_is_nodes(ds, dim):
        return np.append(bounds[:, 0], bounds[-1, 1])
    nodes = axis_nodes(ds, dim)
    if nodes.size == 1:
        return np.array([nodes[0], nodes[0]])
    log = ds[dim].attrs.get("scale") == "log"
    x = np.log(nodes) if log else nodes
    mid = 0.5 * (x[1:] + x[:-1])
    edges = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
    return np.exp(edges) if log else edges


def axis_fill_edges(ds: xr.Dataset, dim: str) -> np.ndarray:
    """Axis edges as used to decide "outside the table" (the fill region).

    These are `axis_edges` passed through the axis scale the way Gammapy 2.1
    computes its ``MapAxis.edges`` (piecewise-linear interpolation of the
    scaled nodes at half-integer pixels, then back), so that coordinates lying
    exactly on an outer edge are classified as Gammapy does. They differ
    from the stored edges by at most one or two ulp.
    """
    log = ds[dim].attrs.get("scale") == "log"
    fwd, inv = (np.log, np.exp) if log else ((lambda v: v), (lambda v: v))
    if axis_is_nodes(ds, dim):
        y = fwd(axis_nodes(ds, dim))
        if y.size == 1:
            return inv(np.array([y[0], y[0]]))
        pix = np.arange(y.size + 1, dtype=float) - 0.5
    else:
        y = fwd(axis_edges(ds, dim))
        pix = np.arange(y.size, dtype=float)
    x = np.arange(y.size, dtype=float)
    hi = np.clip(np.searchsorted(x, pix), 1, y.size - 1)
    lo = hi - 1
    slope = (y[hi] - y[lo]) / (x[hi] - x[lo])
    return inv(slope * (pix - x[lo]) + y[lo])


# ---------------------------------------------------------------- reading


def _data_shape_for(tdim_dims: Sequence[str], sizes: Mapping[str, int]) -> tuple[int, ...]:
    """numpy shape of a column whose TDIM lists ``tdim_dims`` fastest first."""
    return tuple(sizes[d] for d in reversed(tdim_dims))


def read_table_hdu(
    hdu: fits.BinTableHDU,
    axes: Sequence[AxisSpec],
    columns: Sequence[ColumnSpec],
    *,
    tdim_order: Sequence[str]
    | Callable[[tuple[int, ...], Mapping[str, int]], Sequence[str]]
    | None = None,
    file: str | None = None,
    obs_id: int | None = None,
) -> xr.Dataset:
    """Read a GADF one-row IRF table into a dataset.

    Parameters
    ----------
    hdu : `~astropy.io.fits.BinTableHDU`
        The IRF HDU.
    axes : sequence of `AxisSpec`
        The axes; their order is the dims order of every data variable.
    columns : sequence of `ColumnSpec`
        The data columns.
    tdim_order : sequence of str or callable, optional
        Dims of the data columns as listed by TDIM (fastest first). Default:
        the order of ``axes`` (GADF's axis order). A callable receives the
        column's numpy shape (row removed) and the axis sizes and returns it.
    file, obs_id : optional
        Context for error messages.

    Returns
    -------
    `xarray.Dataset`
        With the layout described in the module docstring.
    """
    if hdu.data is None or not isinstance(hdu, fits.BinTableHDU):
        raise FormatError(
            "HDU is not a binary table with data", file=file, obs_id=obs_id, field=hdu.name
        )
    cols = {c.name.upper(): c.name for c in hdu.columns}
    if len(hdu.data) < 1:
        raise FormatError("IRF table has no rows", file=file, obs_id=obs_id, field=hdu.name)

    coords: dict[str, xr.Variable] = {}
    sizes: dict[str, int] = {}
    for spec in axes:
        lo, hi = _read_axis(hdu, spec, cols, file=file, obs_id=obs_id)
        coords.update(_axis_coords(spec, lo, hi))
        sizes[spec.dim] = lo.size
    dims = tuple(spec.dim for spec in axes)

    data_vars: dict[str, xr.Variable] = {}
    for cspec in columns:
        name = _find(cols, [cspec.column, *cspec.aliases])
        field = f"{hdu.name}.{cspec.column}"
        if name is None:
            if not cspec.required:
                continue
            raise MissingColumnError(
                f"column {cspec.column!r} not found in HDU {hdu.name!r}; it has {list(cols)}",
                file=file,
                obs_id=obs_id,
                field=field,
            )
        field = f"{hdu.name}.{name}"
        raw = np.asarray(hdu.data[name][0])
        order = tdim_order(raw.shape, sizes) if callable(tdim_order) else (tdim_order or dims)
        order = tuple(order)
        expected = _data_shape_for(order, sizes)
        if raw.shape != expected:
            if raw.size == int(np.prod(expected)) and raw.ndim <= 1:
                raw = raw.reshape(expected)  # no TDIM given: FITS order is fastest-first
            else:
                raise FormatError(
                    f"data shape {raw.shape} does not match the axes {dict(sizes)} (TDIM order {order})",
                    file=file,
                    obs_id=obs_id,
                    field=field,
                )
        values = _convert(
            raw,
            hdu.columns[name].unit,
            cspec.unit,
            cspec.default_unit,
            file=file,
            obs_id=obs_id,
            field=field,
        )
        # numpy axes are TDIM reversed; bring them to the requested dims order
        np_dims = tuple(reversed(order))
        values = np.transpose(values, [np_dims.index(d) for d in dims])
        data_vars[cspec.var] = xr.Variable(
            dims,
            np.ascontiguousarray(values),
            attrs={"units": cspec.unit, "fits_column": name, "gadf_tdim": ",".join(order)},
        )

    header = hdu.header
    attrs = {"fits_header": header_to_string(header), "extname": hdu.name}
    if "OBS_ID" in header:
        try:
            attrs["obs_id"] = int(header["OBS_ID"])
        except (TypeError, ValueError):
            pass
    return xr.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)


# ---------------------------------------------------------------- creating


def make_dataset(
    axes: Sequence[AxisSpec],
    edges: Mapping[str, np.ndarray | tuple[np.ndarray, np.ndarray]],
    data: Mapping[str, np.ndarray],
    *,
    units: Mapping[str, str] | None = None,
    attrs: Mapping | None = None,
) -> xr.Dataset:
    """Build an IRF dataset from plain arrays.

    Parameters
    ----------
    axes : sequence of `AxisSpec`
        Axes in dims order; edges are taken to be in ``spec.unit``.
    edges : mapping dim -> array or (lo, hi)
        ``n + 1`` contiguous edges, or a pair of ``_LO`` and ``_HI`` arrays.
    data : mapping variable -> array
        Arrays of shape given by the axes (dims order).
    units : mapping variable -> unit string, optional
    attrs : mapping, optional
        Dataset attributes.
    """
    coords: dict[str, xr.Variable] = {}
    shape = []
    for spec in axes:
        e = edges[spec.dim]
        if isinstance(e, tuple):
            lo, hi = (np.atleast_1d(np.asarray(x)) for x in e)
        else:
            e = np.atleast_1d(np.asarray(e))
            lo, hi = e[:-1], e[1:]
        coords.update(_axis_coords(spec, lo, hi))
        shape.append(lo.size)
    dims = tuple(spec.dim for spec in axes)
    data_vars = {}
    for var, arr in data.items():
        arr = np.asarray(arr)
        if arr.shape != tuple(shape):
            raise FormatError(
                f"data shape {arr.shape} does not match the axes shape {tuple(shape)}", field=var
            )
        data_vars[var] = xr.Variable(
            dims, arr, attrs={"units": (units or {}).get(var, ""), "gadf_tdim": ",".join(dims)}
        )
    return xr.Dataset(data_vars=data_vars, coords=coords, attrs=dict(attrs or {}))


# ---------------------------------------------------------------- writing


def _tform(arr: np.ndarray) -> str:
    code = {"f4": "E", "f8": "D", "i2": "I", "i4": "J", "i8": "K", "u1": "B"}.get(
        arr.dtype.newbyteorder("=").str[1:], "D"
    )
    return f"{arr.size}{code}"


def write_table_hdu(
    ds: xr.Dataset,
    axes: Sequence[AxisSpec],
    columns: Sequence[ColumnSpec],
    *,
    extname: str,
    keywords: Mapping[str, object] | None = None,
) -> fits.BinTableHDU:
    """Write a dataset of `read_table_hdu`/`make_dataset` layout as a GADF one-row table.

    The original header (``ds.attrs["fits_header"]``) gives the column order,
    the unit strings (when equivalent to the internal unit with factor 1), the
    TDIM strings of axis columns and all non-structural keywords; ``keywords``
    are added when absent from it. Data columns are written in the TDIM order
    recorded in ``attrs["gadf_tdim"]`` (default: axes order).
    """
    header_in = header_from_string(ds.attrs.get("fits_header"))
    meta = _column_meta(header_in)

    new_cols: dict[str, fits.Column] = {}
    for spec in axes:
        bounds = np.asarray(ds[f"{spec.dim}_bounds"].values)
        for k, suffix in enumerate(("_LO", "_HI")):
            name = _pick_name(meta, [p + suffix for p in (spec.column, *spec.aliases)])
            arr = bounds[:, k]
            m = meta.get(name.upper(), {})
            new_cols[name.upper()] = fits.Column(
                name=name,
                format=_tform(arr),
                array=arr[np.newaxis],
                unit=_unit_string(m.get("unit"), spec.unit),
                dim=m.get("dim") or None,
            )
    dims = tuple(spec.dim for spec in axes)
    for cspec in columns:
        if cspec.var not in ds:
            if cspec.required:
                raise MissingColumnError(
                    f"dataset has no variable {cspec.var!r}", field=cspec.column
                )
            continue
        var = ds[cspec.var]
        name = var.attrs.get("fits_column") or _pick_name(meta, [cspec.column, *cspec.aliases])
        order = tuple(var.attrs.get("gadf_tdim", ",".join(dims)).split(","))
        arr = np.asarray(var.transpose(*reversed(order)).values)
        m = meta.get(name.upper(), {})
        new_cols[name.upper()] = fits.Column(
            name=name,
            format=_tform(arr),
            array=arr[np.newaxis],
            unit=_unit_string(m.get("unit"), cspec.unit),
            dim="(" + ",".join(str(ds.sizes[d]) for d in order) + ")",
        )

    ordered = sorted(new_cols, key=lambda n: int(meta[n]["index"]) if n in meta else 10_000)
    hdu = fits.BinTableHDU.from_columns([new_cols[n] for n in ordered], name=extname)
    for card in header_in.cards:
        key = card.keyword
        if key == "COMMENT":
            hdu.header.add_comment(card.value)
        elif key == "HISTORY":
            hdu.header.add_history(card.value)
        elif key == "EXTNAME":
            hdu.header["EXTNAME"] = (card.value, card.comment)
        elif key and not _is_structural(key):
            hdu.header.append((key, card.value, card.comment))
    for key, value in (keywords or {}).items():
        if key not in hdu.header:
            hdu.header[key] = value
    return hdu


def _pick_name(meta: Mapping[str, dict], names: Sequence[str]) -> str:
    for n in names:
        if n.upper() in meta:
            return n.upper()
    return names[0]


def _unit_string(original: str | None, internal: str) -> str | None:
    """The file's unit string if it equals the internal unit exactly (factor 1), else the internal one."""
    if original:
        try:
            if (
                u.Unit(original).to(u.Unit(internal) if internal else u.dimensionless_unscaled)
                == 1.0
            ):
                return original
        except (ValueError, u.UnitsError, TypeError):
            pass
    return internal or None


# ---------------------------------------------------------------- base class

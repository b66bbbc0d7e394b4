"""Point spread functions: the tabulated GADF ``psf_table`` and the shared PSF machinery.

The analytic PSFs (``psf_3gauss``, ``psf_king``) live in `gdask.dl3.irf.psf_analytic`.

Every PSF evaluates, at true energy (TeV), field-of-view offset (deg) and
angular distance ``rad`` (deg), with numpy broadcasting:

- ``evaluate``: the density dP/dOmega in sr^-1;
- ``containment``: the fraction of events within ``rad``;
- ``containment_radius``: the radius containing a given fraction.

The schemes reproduce Gammapy 2.1 (``PSF3D``, ``EnergyDependentMultiGaussPSF``,
``PSFKing``) to rounding:

- values are interpolated multi-linearly on the axis nodes (bin centres, or
  the values themselves for a GADF axis with ``_LO == _HI``) in log(energy),
  linear offset and linear rad; extrapolated linearly beyond the outermost
  nodes, clipped at zero; an axis with a single node is ignored;
- a table PSF is zero outside the bin edges of its axes (a node axis reaches
  half a node spacing beyond its outer nodes) and where it is not finite;
- the containment of a table PSF is the running sum over rad bins of
  ``2 pi r_centre dr psf``, interpolated like the PSF on rad nodes at the bin
  upper edges (so it too is zero beyond the last rad bin plus half a step);
- a containment radius is the centre, on a grid of ``factor`` sub-bins per rad
  bin, whose containment is closest to the fraction. Where the containment
  never reaches the fraction (plateau) gdask returns the first radius of the
  plateau; Gammapy's choice there depends on rounding noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import ClassVar

import numpy as np
import xarray as xr
from astropy.io import fits

from gdask.dl3.irf.base import ENERGY_TRUE_AXIS, GADF_IRF_KEYWORDS, OFFSET_AXIS
from gdask.dl3.irf.table import (
    AxisSpec,
    ColumnSpec,
    axis_edges,
    axis_nodes,
    make_dataset,
    read_table_hdu,
    write_table_hdu,
)
from gdask.errors import FormatError, GdaskError
from gdask.interp import GridInterpolator

__all__ = [
    "PSFTable",
    "DEG2_TO_SR",
    "node_edges",
    "table_density",
    "table_cumulative",
    "table_containment",
    "upsampled_centers",
    "pick_radius",
]

#: one square degree in steradian
DEG2_TO_SR = (np.pi / 180.0) ** 2

_GADF_KEYWORDS = {**GADF_IRF_KEYWORDS, "HDUCLAS2": "RPSF", "HDUCLAS3": "FULL-ENCLOSURE"}

ENERGY_AXIS = ENERGY_TRUE_AXIS
RAD_AXIS = AxisSpec("RAD", "rad", "deg")


# ------------------------------------------------------------------ numerics


def _to_scale(x, scale: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if scale == "log":
        return np.log(np.clip(x, np.finfo(float).tiny, np.inf))
    return x


def _from_scale(x: np.ndarray, scale: str) -> np.ndarray:
    return np.exp(x) if scale == "log" else x


def node_edges(nodes: np.ndarray, scale: str = "lin") -> np.ndarray:
    """Bin edges of a node axis: half way between nodes, half a step beyond the outer ones."""
    s = _to_scale(nodes, scale)
    if s.size == 1:
        return _from_scale(np.array([s[0], s[0]]), scale)
    mid = 0.5 * (s[1:] + s[:-1])
    edges = np.concatenate([[s[0] - (mid[0] - s[0])], mid, [s[-1] + (s[-1] - mid[-1])]])
    return _from_scale(edges, scale)


def _table_interpolator(nodes, edges, values) -> GridInterpolator:
    """Interpolator of a (energy_true, offset, rad) table that is zero outside its edges."""
    return GridInterpolator(
        nodes, values, scales=("log", "lin", "lin"), edges=edges, fill_value=0.0
    )


def table_density(nodes, edges, psf: np.ndarray, energy_true, offset, rad) -> np.ndarray:
    """Density (sr^-1) of a tabulated PSF; zero outside the table.

    Parameters
    ----------
    nodes, edges : sequence of 3 ndarray
        Nodes and edges of the energy_true (TeV), offset and rad (deg) axes.
    psf : ndarray
        Density on the nodes (sr^-1), shape (n_energy, n_offset, n_rad).
    energy_true, offset, rad : array_like
        Evaluation points (TeV, deg, deg), broadcast together.
    """
    return _table_interpolator(nodes, edges, psf)(energy_true, offset, rad)


def table_cumulative(psf: np.ndarray, rad_edges: np.ndarray, rad_centres: np.ndarray) -> np.ndarray:
    """Running sum over rad bins (last axis) of ``2 pi r dr psf``: containment at each upper edge."""
    ring = 2 * np.pi * np.asarray(rad_centres, float) * np.diff(np.asarray(rad_edges, float))
    return np.cumsum(np.asarray(psf, dtype=float) * ring * DEG2_TO_SR, axis=-1)


def table_containment(nodes, edges, psf: np.ndarray, energy_true, offset, rad) -> np.ndarray:
    """Containment fraction of a tabulated PSF within ``rad`` (deg); zero outside the table."""
    return _cumulative_interpolator(nodes, edges, psf)(energy_true, offset, rad)


def _cumulative_interpolator(nodes, edges, psf) -> GridInterpolator:
    cum = table_cumulative(psf, edges[2], nodes[2])
    rad_nodes = np.asarray(edges[2], dtype=float)[1:]
    return _table_interpolator(
        (nodes[0], nodes[1], rad_nodes), (edges[0], edges[1], node_edges(rad_nodes)), cum
    )


def upsampled_centres(edges: np.ndarray, factor: int, scale: str = "lin") -> np.ndarray:
    """Centres of the bins made by splitting every bin of ``edges`` into ``factor`` sub-bins."""
    s = _to_scale(edges, scale)
    n = s.size - 1
    fine = np.interp(np.linspace(0.0, n, int(n * factor) + 1), np.arange(n + 1), s)
    return _from_scale(0.5 * (fine[:-1] + fine[1:]), scale)


upsampled_centers = upsampled_centres


def pick_radius(rad_grid: np.ndarray, containment: np.ndarray, fraction) -> np.ndarray:
    """Grid radius whose containment is closest to ``fraction``.

    ``containment`` has the grid along axis 0 and ``fraction`` broadcasts with
    the other axes. Among values within 1e-12 of the best distance (a plateau)
    the first radius is taken.
    """
    dist = np.abs(containment - np.asarray(fraction, dtype=float))
    best = np.nanmin(dist, axis=0) if np.isfinite(dist).any() else np.zeros(dist.shape[1:])
    idx = np.argmax(dist <= best + 1e-12, axis=0)
    return np.asarray(rad_grid, dtype=float)[idx]


# ------------------------------------------------------------------ shared class machinery


def _context(ds: xr.Dataset) -> dict:
    obs_id = ds.attrs.get("obs_id")
    return {
        "file": ds.attrs.get("file"),
        "obs_id": obs_id if isinstance(obs_id, int | np.integer) else None,
    }


class _PSFBase:
    """Dataset wrapper shared by the PSF classes (IO, validation)."""

    hdu_class: ClassVar[str]
    _hduclas4: ClassVar[str]
    _extname: ClassVar[str]
    _axes: ClassVar[tuple[AxisSpec, ...]]
    _columns: ClassVar[tuple[ColumnSpec, ...]]

    def __init__(self, ds: xr.Dataset) -> None:
        dims = tuple(a.dim for a in self._axes)
        ctx = _context(ds)
        for spec in self._axes:
            for name in (spec.dim, f"{spec.dim}_bounds"):
                if name not in ds.variables:
                    raise FormatError(f"dataset has no coordinate {name!r}", field=name, **ctx)
        for col in self._columns:
            if col.var not in ds:
                raise FormatError(f"dataset has no variable {col.var!r}", field=col.var, **ctx)
            if ds[col.var].dims != dims:
                raise FormatError(
                    f"variable {col.var!r} has dims {ds[col.var].dims}, expected {dims}",
                    field=col.var,
                    **ctx,
                )
        self.ds = ds

    # -- construction and IO

    @classmethod
    def _column_specs(cls, hdu: fits.BinTableHDU) -> tuple[ColumnSpec, ...]:
        return cls._columns

    @classmethod
    def from_hdu(cls, hdu: fits.BinTableHDU, *, file: str | None = None, obs_id: int | None = None):
        """Read a GADF table HDU.

        Raises `~gdask.errors.MissingColumnError`, `~gdask.errors.UnitError` or
        `~gdask.errors.FormatError` naming file, OBS_ID and field.
        """
        name = getattr(hdu, "name", "")
        clas4 = str(hdu.header.get("HDUCLAS4", "")).strip().upper()
        if clas4 and clas4 != cls._hduclas4:
            raise FormatError(
                f"HDUCLAS4 is {clas4!r}, expected {cls._hduclas4!r} for {cls.__name__}",
                file=file,
                obs_id=obs_id,
                field=f"{name}.HDUCLAS4",
            )
        try:
            ds = read_table_hdu(hdu, cls._axes, cls._column_specs(hdu), file=file, obs_id=obs_id)
        except GdaskError as exc:
            raise exc.with_context(file=file, obs_id=obs_id) from exc
        if obs_id is not None:
            ds.attrs["obs_id"] = int(obs_id)
        if file is not None:
            ds.attrs["file"] = str(file)
        ds.attrs["hdu_class"] = cls.hdu_class
        return cls(ds)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset):
        """Wrap a dataset of the layout produced by `to_dataset` (e.g. read from zarr)."""
        return cls(ds)

    @classmethod
    def _create(cls, edges: Mapping, data: Mapping, meta: Mapping | None):
        units = {c.var: c.unit for c in cls._columns}
        attrs = {"hdu_class": cls.hdu_class, **dict(meta or {})}
        return cls(make_dataset(cls._axes, edges, data, units=units, attrs=attrs))

    def to_dataset(self) -> xr.Dataset:
        """The underlying dataset."""
        return self.ds

    def to_hdu(self) -> fits.BinTableHDU:
        """GADF binary table HDU (the original columns and keywords when read from FITS)."""
        keywords = None
        if not self.ds.attrs.get("fits_header"):
            keywords = {**_GADF_KEYWORDS, "HDUCLAS4": self._hduclas4}
        extname = self.ds.attrs.get("extname", self._extname)
        return write_table_hdu(
            self.ds, self._axes, self._columns, extname=extname, keywords=keywords
        )

    # -- axes

    def _nodes(self, dim: str) -> np.ndarray:
        return axis_nodes(self.ds, dim)

    def _edges(self, dim: str) -> np.ndarray:
        return axis_edges(self.ds, dim)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{a.dim}: {self.ds.sizes[a.dim]}" for a in self._axes)
        return f"{type(self).__name__}({sizes})"


class PSFTable(_PSFBase):
    """Tabulated radial PSF (GADF ``psf_table``): ``psf(energy_true, offset, rad)`` in sr^-1.

    Parameters
    ----------
    ds : `xarray.Dataset`
        Variable ``psf`` with dims (energy_true, offset, rad) and the axes'
        coordinates and CF bounds (see ``docs/data-model.md``).
    """

    hdu_class: ClassVar[str] = "psf_table"
    _hduclas4: ClassVar[str] = "PSF_TABLE"
    _extname: ClassVar[str] = "PSF"
    _axes: ClassVar[tuple[AxisSpec, ...]] = (ENERGY_AXIS, OFFSET_AXIS, RAD_AXIS)
    _columns: ClassVar[tuple[ColumnSpec, ...]] = (ColumnSpec("RPSF", "psf", "sr^-1"),)

    @classmethod
    def create(
        cls,
        energy_true_edges,
        offset_edges,
        rad_edges,
        psf: np.ndarray,
        *,
        meta: Mapping | None = None,
    ) -> PSFTable:
        """Build from arrays.

        Parameters
        ----------
        energy_true_edges, offset_edges, rad_edges : array_like or (lo, hi)
            ``n + 1`` edges (TeV, deg, deg), or a pair of ``_LO``/``_HI``
            arrays (equal arrays make a node axis, as the H.E.S.S. offsets).
        psf : ndarray
            Density in sr^-1, shape (n_energy, n_offset, n_rad); its dtype is kept.
        meta : mapping, optional
            Extra dataset attributes.
        """
        edges = {"energy_true": energy_true_edges, "offset": offset_edges, "rad": rad_edges}
        return cls._create(edges, {"psf": psf}, meta)

    @cached_property
    def grid(self) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """(nodes, edges, values) over (energy_true, offset, rad), float64 (cached)."""
        dims = ("energy_true", "offset", "rad")
        nodes = [self._nodes(d) for d in dims]
        edges = [self._edges(d) for d in dims]
        values = np.asarray(self.ds["psf"].transpose(*dims).values, dtype=float)
        return nodes, edges, values

    @cached_property
    def _density_interp(self) -> GridInterpolator:
        return _table_interpolator(*self.grid)

    @cached_property
    def _containment_interp(self) -> GridInterpolator:
        return _cumulative_interpolator(*self.grid)

    def evaluate(self, energy_true, offset, rad) -> np.ndarray:
        """PSF density in sr^-1 at true energy (TeV), offset (deg) and rad (deg), broadcast."""
        return self._density_interp(energy_true, offset, rad)

    def containment(self, energy_true, offset, rad) -> np.ndarray:
        """Fraction of the PSF within ``rad`` (deg) at true energy (TeV) and offset (deg)."""
        return self._containment_interp(energy_true, offset, rad)

    def containment_radius(self, fraction, energy_true, offset, *, factor: int = 20) -> np.ndarray:
        """Radius (deg) containing ``fraction``, on a grid of ``factor`` sub-bins per rad bin."""
        rad = upsampled_centres(self.grid[1][2], factor)
        return _radius_on_grid(self.containment, rad, fraction, energy_true, offset)

    def cumulative(self) -> xr.DataArray:
        """The containment at each rad bin's upper edge, dims (energy_true, offset, rad)."""
        nodes, edges, values = self.grid
        cum = table_cumulative(values, edges[2], nodes[2])
        dims = ("energy_true", "offset", "rad")
        coords = {d: self.ds[d] for d in dims[:2]} | {
            "rad": ("rad", edges[2][1:], {"units": "deg"})
        }
        return xr.DataArray(cum, dims=dims, coords=coords, name="containment")


def _radius_on_grid(containment, rad_grid, fraction, energy_true, offset) -> np.ndarray:
    """Shared containment-radius search: containment on the grid, then `pick_radius`."""
    shape = np.broadcast_shapes(np.shape(energy_true), np.shape(offset), np.shape(fraction))
    ndim = len(shape)
    rad = np.asarray(rad_grid, dtype=float).reshape((-1,) + (1,) * ndim)
    cont = containment(energy_true=energy_true, offset=offset, rad=rad)
    cont = np.broadcast_to(cont, (rad.shape[0],) + shape)
    return pick_radius(rad_grid, cont, fraction).reshape(shape)

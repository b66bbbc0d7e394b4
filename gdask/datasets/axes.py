"""Axes of DL4 maps: edge axes and node ("centre") axes, and their xarray coordinates.

Gammapy's DL4 files store an axis either by its bin edges or by its nodes
(bin centres; e.g. Fermi-LAT exposure cubes are sampled at energies). A
`BandAxis` wraps a gdask `Axis` (always defined by edges) and, for a node
axis, the exact nodes. The edges of a node axis are derived as Gammapy does:
midpoints of the nodes in the axis scale, extrapolated by half a step at both
ends. In xarray a band axis on dimension ``dim`` is the coordinate ``dim``
(centres, or the nodes exactly) plus CF bounds ``dim_bounds``; its attrs carry
``axis_name`` (the physical name, e.g. ``energy_true`` for ``psf_energy_true``)
and ``node_type`` (``"edges"`` or ``"center"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from gdask.errors import FormatError
from gdask.geometry.axes import ENERGY_AXIS_NAMES, Axis, EnergyAxis

__all__ = ["BandAxis", "edges_from_nodes", "make_axis"]

#: internal units of axes by physical name
AXIS_UNITS = {"energy": "TeV", "energy_true": "TeV", "rad": "deg", "migra": ""}


def edges_from_nodes(nodes: ArrayLike, interp: str = "lin") -> NDArray[np.float64]:
    """Bin edges around ``nodes``: midpoints in the axis scale, half a step beyond the ends."""
    x = np.asarray(nodes, dtype=float)
    if x.size < 2:
        raise FormatError("a node axis needs at least two nodes")
    s = np.log(x) if interp == "log" else x
    mid = 0.5 * (s[1:] + s[:-1])
    edges = np.concatenate([[s[0] - (s[1] - s[0]) / 2], mid, [s[-1] + (s[-1] - s[-2]) / 2]])
    return np.exp(edges) if interp == "log" else edges


def make_axis(edges: ArrayLike, name: str, interp: str, unit: str) -> Axis:
    """`EnergyAxis` for energy names, `Axis` otherwise."""
    if name in ENERGY_AXIS_NAMES:
        return EnergyAxis(edges, name=name, unit=unit)
    return Axis(edges, name=name, interp=interp, unit=unit)


@dataclass(frozen=True)
class BandAxis:
    """An axis of a DL4 map: a gdask `Axis` plus its nodes if stored as nodes.

    Parameters
    ----------
    axis : `~gdask.geometry.Axis`
        The axis (edges; for a node axis the derived edges).
    nodes : ndarray, optional
        Exact nodes of a node axis (``node_type == "center"``).
    """

    axis: Axis
    nodes: NDArray[np.float64] | None = None

    @classmethod
    def from_nodes(cls, nodes: ArrayLike, name: str, interp: str, unit: str) -> BandAxis:
        """Node axis (bin centres given)."""
        nodes = np.asarray(nodes, dtype=float)
        return cls(make_axis(edges_from_nodes(nodes, interp), name, interp, unit), nodes)

    @classmethod
    def wrap(cls, axis: Axis | BandAxis) -> BandAxis:
        """A `BandAxis` from an `Axis` (edge type) or a `BandAxis`."""
        return axis if isinstance(axis, BandAxis) else cls(axis)

    @property
    def name(self) -> str:
        """Physical axis name (``energy``, ``energy_true``, ``rad``, ``migra``...)."""
        return self.axis.name

    @property
    def node_type(self) -> str:
        """``"center"`` for node axes, ``"edges"`` otherwise."""
        return "edges" if self.nodes is None else "center"

    @property
    def nbin(self) -> int:
        """Number of bins."""
        return self.axis.nbin

    @property
    def center(self) -> NDArray[np.float64]:
        """The nodes of a node axis, the axis bin centres otherwise."""
        return self.axis.center if self.nodes is None else self.nodes

    @property
    def edges(self) -> NDArray[np.float64]:
        """Bin edges (for a node axis the derived ones), in `unit`."""
        return self.axis.edges

    @property
    def quantity_edges(self) -> u.Quantity:
        """Bin edges as a Quantity."""
        return self.axis.quantity_edges

    @property
    def unit(self) -> str:
        """Unit of edges and nodes."""
        return self.axis.unit

    @property
    def interp(self) -> str:
        """Interpolation scale of the axis (``"log"``, ``"lin"``...)."""
        return self.axis.interp

    def to_unit(self, unit: str) -> BandAxis:
        """Same axis in another unit."""
        if u.Unit(unit) == u.Unit(self.axis.unit):
            return self
        nodes = None
        if self.nodes is not None:
            nodes = u.Quantity(self.nodes, self.axis.unit).to_value(unit)
        return BandAxis(self.axis.to_unit(unit), nodes)

    def renamed(self, name: str) -> BandAxis:
        """Same axis with another physical name."""
        ax = self.axis
        return BandAxis(make_axis(ax.edges, name, ax.interp, ax.unit), self.nodes)

    def squash(self) -> BandAxis:
        """One bin spanning the whole axis (edge type)."""
        return BandAxis(self.axis.squash())

    def equal(self, other: BandAxis) -> bool:
        """Exactly equal edges, nodes, names, scale and unit."""
        if self.nodes is None or other.nodes is None:
            same_nodes = self.nodes is None and other.nodes is None
        else:
            same_nodes = np.array_equal(self.nodes, other.nodes)
        return (
            same_nodes
            and self.name == other.name
            and self.axis.interp == other.axis.interp
            and u.Unit(self.axis.unit) == u.Unit(other.axis.unit)
            and np.array_equal(self.axis.edges, other.axis.edges)
        )

    # -- xarray ------------------------------------------------------------
    def to_coords(self, dim: str | None = None) -> dict[str, xr.DataArray]:
        """Centre coordinate ``dim`` and CF bounds ``dim_bounds``."""
        dim = dim or self.name
        bname = f"{dim}_bounds"
        attrs = {
            "units": self.axis.unit,
            "bounds": bname,
            "interp": self.axis.interp,
            "axis_name": self.name,
            "node_type": self.node_type,
        }
        centre = xr.DataArray(np.array(self.center, dtype=float), dims=(dim,), attrs=attrs)
        bounds = xr.DataArray(
            self.axis.bounds, dims=(dim, "bound"), attrs={"units": self.axis.unit}
        )
        return {dim: centre, bname: bounds.assign_coords({dim: centre})}

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, dim: str) -> BandAxis:
        """Read back an axis written by `to_coords`."""
        if dim not in ds.coords:
            raise FormatError(f"no coordinate {dim!r}", field=dim)
        coord = ds[dim]
        bname = coord.attrs.get("bounds", f"{dim}_bounds")
        if bname not in ds:
            raise FormatError(f"no bounds variable {bname!r} for axis {dim!r}", field=bname)
        bounds = np.asarray(ds[bname].transpose(dim, "bound").values, dtype=float)
        edges = np.append(bounds[:, 0], bounds[-1, 1])
        name = coord.attrs.get("axis_name", dim)
        interp = coord.attrs.get("interp", "log" if name in ENERGY_AXIS_NAMES else "lin")
        axis = make_axis(edges, name, interp, coord.attrs.get("units", ""))
        nodes = None
        if coord.attrs.get("node_type", "edges") == "center":
            nodes = np.asarray(coord.values, dtype=float)
        return cls(axis, nodes)

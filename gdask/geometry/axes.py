"""Binned axes (energy, offset, migra, rad, ...) and their xarray coordinates.

An axis is a strictly increasing array of bin edges with a name (the xarray
dimension), a unit and an interpolation scale: ``"log"`` for energies (bin
centres are geometric means of the edges) and ``"lin"`` otherwise
(arithmetic means). In xarray an axis ``X`` is the coordinate ``X`` (centres)
plus the CF bounds variable ``X_bounds`` with dims ``(X, "bound")``.
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from gdask.errors import FormatError

__all__ = ["Axis", "EnergyAxis", "ENERGY_AXIS_NAMES"]

ENERGY_AXIS_NAMES = ("energy", "energy_true")
_INTERPS = ("lin", "log")


def _values_in_unit(values: ArrayLike | u.Quantity, unit: str | None) -> tuple[NDArray, str]:
    """Plain float array and unit string from an array or a Quantity."""
    if isinstance(values, u.Quantity):
        if unit is None:
            return np.asarray(values.value, dtype=float), values.unit.to_string()
        return np.asarray(values.to_value(unit), dtype=float), u.Unit(unit).to_string()
    return np.asarray(values, dtype=float), "" if unit is None else u.Unit(unit).to_string()


class Axis:
    """A binned axis defined by its edges.

    Parameters
    ----------
    edges : array_like or `~astropy.units.Quantity`
        Bin edges, strictly increasing, at least two.
    name : str
        Axis (dimension) name, e.g. ``"offset"``, ``"migra"``, ``"rad"``.
    interp : {"lin", "log"}
        Scale of the axis: sets the bin centres and the pixel transform.
    unit : str, optional
        Unit of the edges (taken from a Quantity if not given).
    """

    def __init__(
        self,
        edges: ArrayLike | u.Quantity,
        name: str,
        interp: str = "lin",
        unit: str | None = None,
    ) -> None:
        values, unit_str = _values_in_unit(edges, unit)
        if values.ndim != 1 or values.size < 2:
            raise FormatError(f"axis {name!r} needs a 1D array of at least two edges", field=name)
        if not np.all(np.isfinite(values)) or np.any(np.diff(values) <= 0):
            raise FormatError(f"edges of axis {name!r} must be finite and increasing", field=name)
        if interp not in _INTERPS:
            raise ValueError(f"interp must be one of {_INTERPS}, got {interp!r}")
        if interp == "log" and values[0] <= 0:
            raise FormatError(f"log axis {name!r} needs positive edges", field=name)
        self._edges = values
        self._edges.setflags(write=False)
        self.name = name
        self.interp = interp
        self.unit = unit_str

    # -- construction ------------------------------------------------------
    @classmethod
    def from_edges(
        cls, edges: ArrayLike | u.Quantity, name: str, interp: str = "lin", unit: str | None = None
    ) -> Axis:
        """Axis from bin edges."""
        return cls(edges, name=name, interp=interp, unit=unit)

    @classmethod
    def from_bounds(
        cls,
        lo: float,
        hi: float,
        nbin: int,
        name: str,
        interp: str = "lin",
        unit: str | None = None,
    ) -> Axis:
        """``nbin`` bins between ``lo`` and ``hi``, equal in linear or log scale."""
        nbin = int(nbin)
        if interp == "log":
            edges = np.geomspace(lo, hi, nbin + 1)
        else:
            edges = np.linspace(lo, hi, nbin + 1)
        return cls(edges, name=name, interp=interp, unit=unit)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset | xr.DataArray, name: str) -> Axis:
        """Read an axis back from its coordinate and CF bounds variable."""
        if name not in ds.coords and (not isinstance(ds, xr.Dataset) or name not in ds):
            raise FormatError(f"no coordinate {name!r}", field=name)
        coord = ds[name]
        bname = coord.attrs.get("bounds", f"{name}_bounds")
        try:
            bounds = np.asarray(ds[bname].transpose(name, "bound").values, dtype=float)
        except KeyError as exc:
            raise FormatError(
                f"no bounds variable {bname!r} for axis {name!r}", field=bname
            ) from exc
        if bounds.shape[0] > 1 and not np.array_equal(bounds[1:, 0], bounds[:-1, 1]):
            raise FormatError(f"bounds of axis {name!r} are not contiguous", field=bname)
        edges = np.append(bounds[:, 0], bounds[-1, 1])
        interp = coord.attrs.get("interp", "log" if name in ENERGY_AXIS_NAMES else "lin")
        unit = coord.attrs.get("units", "")
        if name in ENERGY_AXIS_NAMES and cls is Axis:
            return EnergyAxis(edges, name=name, unit=unit or "TeV")
        return cls(edges, name=name, interp=interp, unit=unit)

    # -- properties --------------------------------------------------------
    @property
    def edges(self) -> NDArray[np.float64]:
        """Bin edges (read-only array, ``nbin + 1``)."""
        return self._edges

    @property
    def nbin(self) -> int:
        """Number of bins."""
        return self._edges.size - 1

    @property
    def edges_min(self) -> NDArray[np.float64]:
        """Lower bin edges."""
        return self._edges[:-1]

    @property
    def edges_max(self) -> NDArray[np.float64]:
        """Upper bin edges."""
        return self._edges[1:]

    @property
    def center(self) -> NDArray[np.float64]:
        """Bin centres: geometric mean for log axes, arithmetic mean otherwise."""
        if self.interp == "log":
            return np.sqrt(self.edges_min * self.edges_max)
        return 0.5 * (self.edges_min + self.edges_max)

    @property
    def widths(self) -> NDArray[np.float64]:
        """Bin widths."""
        return np.diff(self._edges)

    @property
    def bounds(self) -> NDArray[np.float64]:
        """CF bounds array of shape ``(nbin, 2)``: low and high edge of each bin."""
        return np.stack([self.edges_min, self.edges_max], axis=-1)

    @property
    def quantity_edges(self) -> u.Quantity:
        """Edges as a Quantity."""
        return u.Quantity(self._edges, self.unit)

    def to_unit(self, unit: str) -> Axis:
        """The same axis with edges converted to ``unit``."""
        return self._copy(u.Quantity(self._edges, self.unit).to_value(unit), unit=unit)

    def _copy(self, edges: ArrayLike, unit: str | None = None) -> Axis:
        return type(self)(edges, name=self.name, interp=self.interp, unit=unit or self.unit)

    # -- xarray ------------------------------------------------------------
    def to_coords(self) -> dict[str, xr.DataArray]:
        """xarray coordinates: centres ``name`` and CF bounds ``name_bounds``."""
        bname = f"{self.name}_bounds"
        attrs = {"units": self.unit, "bounds": bname, "interp": self.interp}
        centre = xr.DataArray(self.center, dims=(self.name,), attrs=attrs)
        bounds = xr.DataArray(self.bounds, dims=(self.name, "bound"), attrs={"units": self.unit})
        return {self.name: centre, bname: bounds.assign_coords({self.name: centre})}

    # -- selections --------------------------------------------------------
    def slice(self, idx: slice) -> Axis:
        """Sub-axis of the bins selected by a slice (step 1)."""
        if not isinstance(idx, slice) or idx.step not in (None, 1):
            raise ValueError("slice() takes a slice with step 1")
        start, stop, _ = idx.indices(self.nbin)
        if stop <= start:
            raise ValueError("slice selects no bins")
        return self._copy(self._edges[start : stop + 1])

    def downsample(self, factor: int, strict: bool = True) -> Axis:
        """Keep every ``factor``-th edge (and the last one).

        With ``strict`` the number of bins must be divisible by ``factor``;
        otherwise the remainder bins are merged into the last bin.
        """
        edges = self._edges[::factor]
        if edges[-1] != self._edges[-1]:
            if strict:
                raise ValueError(f"{self.nbin} bins of {self.name!r} not divisible by {factor}")
            edges = np.append(edges, self._edges[-1])
        return self._copy(edges)

    def upsample(self, factor: int) -> Axis:
        """Split every bin into ``factor`` bins equal in the axis scale."""
        pix = np.linspace(-0.5, self.nbin - 0.5, self.nbin * int(factor) + 1)
        edges = self.pix_to_coord(pix)
        edges[::factor] = self._edges  # keep the original edges exactly
        return self._copy(edges)

    def squash(self) -> Axis:
        """One bin spanning the whole axis."""
        return self._copy(self._edges[[0, -1]])

    # -- coordinate transforms --------------------------------------------
    def _scale(self, x: ArrayLike) -> NDArray:
        x = np.asarray(x, dtype=float)
        if self.interp == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(x)
        return x

    def _unscale(self, x: NDArray) -> NDArray:
        return np.exp(x) if self.interp == "log" else x

    def coord_to_pix(self, coord: ArrayLike) -> NDArray[np.float64]:
        """Fractional pixel coordinate (bin ``i`` spans ``i - 0.5 .. i + 0.5``).

        Linear in the axis scale between edges, extrapolated outside.
        """
        x = self._scale(coord)
        xe = self._scale(self._edges)
        k = np.clip(np.searchsorted(xe, x, side="right") - 1, 0, self.nbin - 1)
        with np.errstate(invalid="ignore"):
            return k - 0.5 + (x - xe[k]) / (xe[k + 1] - xe[k])

    def pix_to_coord(self, pix: ArrayLike) -> NDArray[np.float64]:
        """Axis coordinate at fractional pixel ``pix`` (inverse of `coord_to_pix`)."""
        p = np.asarray(pix, dtype=float) + 0.5
        xe = self._scale(self._edges)
        k = np.clip(np.nan_to_num(np.floor(p)), 0, self.nbin - 1).astype(int)
        return self._unscale(xe[k] + (p - k) * (xe[k + 1] - xe[k]))

    def coord_to_idx(self, coord: ArrayLike, clip: bool = False) -> NDArray[np.int64]:
        """Bin index of each value (bins are ``[lo, hi)``); -1 outside unless ``clip``."""
        c = np.asarray(coord, dtype=float)
        idx = np.searchsorted(self._edges, c, side="right") - 1
        if clip:
            idx = np.clip(idx, 0, self.nbin - 1)
        else:
            idx = np.where((idx < 0) | (idx >= self.nbin), -1, idx)
        return np.where(np.isfinite(c), idx, -1)

    # -- comparison ----------------------------------------------------------
    def is_allclose(self, other: Axis, rtol: float = 1e-6, atol: float = 1e-6) -> bool:
        """Same name, scale, unit and number of bins, and edges close."""
        return (
            isinstance(other, Axis)
            and self.name == other.name
            and self.interp == other.interp
            and self.nbin == other.nbin
            and u.Unit(self.unit) == u.Unit(other.unit)
            and bool(np.allclose(self._edges, other._edges, rtol=rtol, atol=atol))
        )

    def __eq__(self, other: Any) -> bool:
        return self.is_allclose(other)

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return self.nbin

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, nbin={self.nbin}, interp={self.interp!r}, "
            f"range=[{self._edges[0]:.4g}, {self._edges[-1]:.4g}] {self.unit})"
        )


class EnergyAxis(Axis):
    """A log-scaled energy axis, reconstructed (``energy``) or true (``energy_true``).

    Parameters
    ----------
    edges : array_like or `~astropy.units.Quantity`
        Energy bin edges.
    name : {"energy", "energy_true"}
        Axis name.
    unit : str
        Energy unit (default TeV, or the unit of a Quantity).
    interp : str
        Must be ``"log"``; present for signature compatibility with `Axis`.
    """

    def __init__(
        self,
        edges: ArrayLike | u.Quantity,
        name: str = "energy",
        interp: str = "log",
        unit: str | None = None,
    ) -> None:
        if name not in ENERGY_AXIS_NAMES:
            raise ValueError(f"energy axis name must be one of {ENERGY_AXIS_NAMES}, got {name!r}")
        if interp != "log":
            raise ValueError("energy axes are log-scaled")
        if unit is None and not isinstance(edges, u.Quantity):
            unit = "TeV"
        if unit is not None and not u.Unit(unit).is_equivalent(u.TeV):
            raise FormatError(f"{unit!r} is not an energy unit", field=name)
        if isinstance(edges, u.Quantity) and not edges.unit.is_equivalent(u.TeV):
            raise FormatError(f"{edges.unit} is not an energy unit", field=name)
        super().__init__(edges, name=name, interp="log", unit=unit)

    @classmethod
    def from_edges(  # type: ignore[override]
        cls, edges: ArrayLike | u.Quantity, name: str = "energy", unit: str | None = None
    ) -> EnergyAxis:
        """Energy axis from bin edges."""
        return cls(edges, name=name, unit=unit)

    @classmethod
    def from_bounds(  # type: ignore[override]
        cls,
        emin: float | u.Quantity,
        emax: float | u.Quantity,
        nbin: int,
        per_decade: bool = False,
        unit: str | None = "TeV",
        name: str = "energy",
        strict_bounds: bool = True,
    ) -> EnergyAxis:
        """Log-spaced energy axis between ``emin`` and ``emax``.

        Parameters
        ----------
        emin, emax : float or Quantity
            Energy range (floats are in ``unit``).
        nbin : int
            Number of bins, or bins per decade if ``per_decade``.
        per_decade : bool
            Interpret ``nbin`` per decade. With ``strict_bounds`` the total is
            ``ceil(decades * nbin)`` and ``emax`` is kept; otherwise the total
            is ``floor(decades * nbin)`` and ``emax`` is lowered so the bins
            are exactly ``1 / nbin`` decade wide.
        unit : str
            Unit of the axis (the unit of ``emax`` if None).
        name : {"energy", "energy_true"}
            Axis name.
        strict_bounds : bool
            See ``per_decade``.
        """
        qmin = u.Quantity(emin, unit)
        qmax = u.Quantity(emax, unit)
        unit = qmax.unit.to_string() if unit is None else unit
        lo, hi = qmin.to_value(unit), qmax.to_value(unit)
        if per_decade:
            decades = np.log10(hi / lo)
            if strict_bounds:
                nbin = int(np.ceil(decades * nbin))
            else:
                per = nbin
                nbin = int(np.floor(decades * per))
                if decades % (1 / per) != 0:
                    hi = lo * 10 ** (nbin / per)
        return cls(np.geomspace(lo, hi, int(nbin) + 1), name=name, unit=unit)

    def _copy(self, edges: ArrayLike, unit: str | None = None) -> EnergyAxis:
        return type(self)(edges, name=self.name, unit=unit or self.unit)

    def copy(self, name: str | None = None) -> EnergyAxis:
        """Copy, optionally renamed (e.g. reco -> true energy)."""
        return type(self)(self._edges.copy(), name=name or self.name, unit=self.unit)

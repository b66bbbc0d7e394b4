"""IRF maps of DL4 map datasets: PSF maps and energy-dispersion kernel maps.

Both live on their own coarse sky grid (often not the counts grid; in
Fermi-LAT files the PSF grid is 2 x 1 all-sky pixels and the EDISP grid is
0.2 deg) or on a single region (no WCS: one spatial pixel), and carry an
exposure map (the stacking weights).

In a gdask dataset they are stored with prefixed dimensions, because their
energy axes and sky grids differ from those of counts and exposure:

- ``psf(psf_energy_true, rad, psf_lat, psf_lon)`` in sr^-1 (``psf_energy`` for a
  PSF in reconstructed energy, as HAWC's), ``psf_exposure(psf_energy_true,
  psf_lat, psf_lon)`` in cm2 s; the WCS in ``attrs["psf_wcs_header"]``;
- ``edisp(edisp_energy_true, edisp_energy, edisp_lat, edisp_lon)`` (probability
  of each reconstructed-energy bin per true energy), ``edisp_exposure(
  edisp_energy_true, edisp_lat, edisp_lon)`` in cm2 s.

A region grid is flagged by ``attrs["<prefix>_geom"] = "region"``. The edges of
the squashed axis of an exposure map (``rad`` or ``energy``) are kept in the
exposure variable's attrs so that files round-trip exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.io import fits
from numpy.typing import NDArray

from gdask.datasets._fits import GadfMap, gadf_map_hdus, read_gadf_map
from gdask.datasets.axes import BandAxis, make_axis
from gdask.errors import FormatError
from gdask.geometry.wcs import SKY_COORDS, SKY_DIMS, WCS_ATTR, WcsGeom

__all__ = ["PSFMap", "EDispKernelMap", "migra_to_kernel"]

EXPOSURE_UNIT = "cm2 s"


def _sky_coords(geom: WcsGeom | None, prefix: str) -> tuple[dict, dict]:
    """(coords, attrs) of an IRF sky grid with prefixed names."""
    if geom is None:
        return {}, {f"{prefix}_geom": "region"}
    coords = {
        f"{prefix}_{name}": c.rename({d: f"{prefix}_{d}" for d in SKY_DIMS})
        for name, c in geom.to_coords().items()
    }
    return coords, {f"{prefix}_geom": "wcs", f"{prefix}_{WCS_ATTR}": geom.to_header_string()}


def _sky_geom(ds: xr.Dataset, prefix: str) -> WcsGeom | None:
    if ds.attrs.get(f"{prefix}_geom", "wcs") == "region":
        return None
    return WcsGeom.from_header(ds.attrs[f"{prefix}_{WCS_ATTR}"])


def _squashed_attrs(axis: BandAxis) -> dict[str, str]:
    ax = axis.axis
    spec = {
        "name": ax.name,
        "edges": [float(e) for e in ax.edges],
        "unit": ax.unit,
        "interp": ax.interp,
    }
    return {"squashed_axis": json.dumps(spec)}


def _squashed_axis(attrs: dict, default: BandAxis) -> BandAxis:
    if "squashed_axis" not in attrs:
        return default.squash()
    spec = json.loads(attrs["squashed_axis"])
    return BandAxis(make_axis(spec["edges"], spec["name"], spec["interp"], spec["unit"]))


def _read_exposure(
    hdulist: fits.HDUList, hdu: str, file: str | None
) -> tuple[NDArray | None, BandAxis | None]:
    """IRF exposure map without its squashed axis (in cm2 s), and that axis."""
    if hdu not in hdulist:
        return None, None
    m = read_gadf_map(hdulist, hdu, file)
    if len(m.axes) != 2 or m.axes[1].nbin != 1:
        raise FormatError("IRF exposure must have a squashed second axis", file=file, field=hdu)
    data = m.data[:, 0]
    if m.unit and u.Unit(m.unit) != u.Unit(EXPOSURE_UNIT):
        data = u.Quantity(data, m.unit, dtype=float).to_value(EXPOSURE_UNIT)
    return data, m.axes[1]


@dataclass
class PSFMap:
    """PSF map: ``data(energy, rad, lat, lon)`` in sr^-1 on an IRF sky grid.

    Parameters
    ----------
    data : ndarray
        PSF density per energy, offset ``rad`` from the source and sky pixel.
    energy_axis : BandAxis
        True energy (``energy_true``), or reconstructed energy for a reco PSF.
    rad_axis : BandAxis
        Offset axis (deg).
    geom : WcsGeom or None
        IRF sky grid; None for a single region.
    exposure : ndarray, optional
        Exposure ``(energy, lat, lon)`` in cm2 s (stacking weights).
    exposure_rad : BandAxis, optional
        The squashed ``rad`` axis of the exposure map as stored in files.
    """

    data: NDArray
    energy_axis: BandAxis
    rad_axis: BandAxis
    geom: WcsGeom | None
    exposure: NDArray | None = None
    exposure_rad: BandAxis | None = None
    prefix = "psf"

    @property
    def is_reco(self) -> bool:
        """True for a PSF in reconstructed energy."""
        return self.energy_axis.name == "energy"

    @property
    def energy_dim(self) -> str:
        return f"{self.prefix}_{self.energy_axis.name}"

    def to_dataset(self) -> xr.Dataset:
        """Variables ``psf`` and ``psf_exposure`` with prefixed dims."""
        p = self.prefix
        sky = (f"{p}_lat", f"{p}_lon")
        coords, attrs = _sky_coords(self.geom, p)
        coords.update(self.energy_axis.to_coords(self.energy_dim))
        coords.update(self.rad_axis.to_coords("rad"))
        data_vars = {p: ((self.energy_dim, "rad") + sky, self.data, {"units": "sr-1"})}
        if self.exposure is not None:
            ex_attrs = {"units": EXPOSURE_UNIT}
            ex_attrs.update(_squashed_attrs(self.exposure_rad or self.rad_axis.squash()))
            data_vars[f"{p}_exposure"] = ((self.energy_dim,) + sky, self.exposure, ex_attrs)
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> PSFMap | None:
        """Read back from a dataset made by `to_dataset` (None if absent)."""
        p = cls.prefix
        if p not in ds:
            return None
        da = ds[p]
        edim = da.dims[0]
        rad = BandAxis.from_dataset(ds, "rad")
        exposure, ex_rad = None, None
        if f"{p}_exposure" in ds:
            exposure = ds[f"{p}_exposure"].values
            ex_rad = _squashed_axis(ds[f"{p}_exposure"].attrs, rad)
        return cls(
            da.values, BandAxis.from_dataset(ds, edim), rad, _sky_geom(ds, p), exposure, ex_rad
        )

    @classmethod
    def from_hdulist(cls, hdulist: fits.HDUList, file: str | None = None) -> PSFMap:
        """Read HDUs ``PSF`` (+ ``PSF_BANDS``) and ``PSF_EXPOSURE`` if present."""
        m = read_gadf_map(hdulist, "PSF", file)
        if len(m.axes) != 2 or m.axes[1].name != "rad":
            raise FormatError(
                f"PSF axes {[a.name for a in m.axes]} are not (energy, rad)", file=file, field="PSF"
            )
        data = m.data
        if m.unit and u.Unit(m.unit) != u.Unit("sr-1"):
            data = u.Quantity(data, m.unit, dtype=float).to_value("sr-1")
        exposure, ex_rad = _read_exposure(hdulist, "PSF_EXPOSURE", file)
        return cls(data, m.axes[0], m.axes[1], m.geom, exposure, ex_rad)

    def to_hdus(self) -> list:
        """``PSF``, ``PSF_BANDS`` (and ``PSF_EXPOSURE``, ``PSF_EXPOSURE_BANDS``)."""
        hdus = gadf_map_hdus("PSF", self.data, [self.energy_axis, self.rad_axis], self.geom, "sr-1")
        if self.exposure is not None:
            ex_rad = self.exposure_rad or self.rad_axis.squash()
            hdus += gadf_map_hdus(
                "PSF_EXPOSURE",
                self.exposure[:, None],
                [self.energy_axis, ex_rad],
                self.geom,
                EXPOSURE_UNIT,
            )
        return hdus


def migra_to_kernel(
    data: NDArray,
    energy_axis_true: BandAxis,
    migra_axis: BandAxis,
    energy_axis: BandAxis,
    threshold: float = 1e-8,
) -> NDArray[np.float64]:
    """Energy-dispersion kernel from a migration-pdf map, as Gammapy does.

    The cumulative integral of the pdf over migration is interpolated
    (linearly in the migra scale, constant beyond the edges) at
    ``E_reco_edges / E_true`` for every true-energy node; the kernel is its
    difference across each reconstructed-energy bin, clipped at zero, with
    values below ``threshold`` set to zero.

    Parameters
    ----------
    data : ndarray
        ``(energy_true, migra, lat, lon)`` migration pdf.
    energy_axis_true, migra_axis, energy_axis : BandAxis
        Axes of the map and the reconstructed-energy axis of the kernel.
    threshold : float
        Values below it are set to zero.

    Returns
    -------
    kernel : ndarray
        ``(energy_true, energy, lat, lon)``.
    """
    medges = migra_axis.axis.edges
    cum = np.cumsum(data * migra_axis.axis.widths[None, :, None, None], axis=1)
    cum = np.concatenate([np.zeros_like(cum[:, :1]), cum], axis=1)
    log = migra_axis.axis.interp == "log"
    x_nodes = np.log(medges) if log else medges
    e_true = u.Quantity(energy_axis_true.center, energy_axis_true.axis.unit)
    e_reco = u.Quantity(energy_axis.axis.edges, energy_axis.axis.unit)
    out = np.empty((data.shape[0], energy_axis.nbin) + data.shape[2:])
    for i in range(data.shape[0]):
        m = (e_reco / e_true[i]).to_value("")
        x = np.log(m) if log else m
        k = np.clip(np.searchsorted(x_nodes, x, side="right") - 1, 0, len(x_nodes) - 2)
        w = np.clip((x - x_nodes[k]) / (x_nodes[k + 1] - x_nodes[k]), 0.0, 1.0)
        vals = cum[i, k] * (1 - w)[:, None, None] + cum[i, k + 1] * w[:, None, None]
        out[i] = np.clip(np.diff(vals, axis=0), 0, np.inf)
    out[out < threshold] = 0
    return out


@dataclass
class EDispKernelMap:
    """Energy-dispersion kernel map ``data(energy_true, energy, lat, lon)``.

    Parameters
    ----------
    data : ndarray
        Probability of each reconstructed-energy bin per true energy and pixel.
    energy_axis_true, energy_axis : BandAxis
        True and reconstructed energy axes.
    geom : WcsGeom or None
        IRF sky grid; None for a single region.
    exposure : ndarray, optional
        Exposure ``(energy_true, lat, lon)`` in cm2 s (stacking weights).
    exposure_energy : BandAxis, optional
        The squashed second axis of the exposure map as stored in files.
    """

    data: NDArray
    energy_axis_true: BandAxis
    energy_axis: BandAxis
    geom: WcsGeom | None
    exposure: NDArray | None = None
    exposure_energy: BandAxis | None = None
    prefix = "edisp"

    def to_dataset(self) -> xr.Dataset:
        """Variables ``edisp`` and ``edisp_exposure`` with prefixed dims."""
        p = self.prefix
        sky = (f"{p}_lat", f"{p}_lon")
        et, er = f"{p}_energy_true", f"{p}_energy"
        coords, attrs = _sky_coords(self.geom, p)
        coords.update(self.energy_axis_true.to_coords(et))
        coords.update(self.energy_axis.to_coords(er))
        data_vars = {p: ((et, er) + sky, self.data, {"units": ""})}
        if self.exposure is not None:
            ex_attrs = {"units": EXPOSURE_UNIT}
            ex_attrs.update(_squashed_attrs(self.exposure_energy or self.energy_axis.squash()))
            data_vars[f"{p}_exposure"] = ((et,) + sky, self.exposure, ex_attrs)
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> EDispKernelMap | None:
        """Read back from a dataset made by `to_dataset` (None if absent)."""
        p = cls.prefix
        if p not in ds:
            return None
        er = BandAxis.from_dataset(ds, f"{p}_energy")
        exposure, ex_e = None, None
        if f"{p}_exposure" in ds:
            exposure = ds[f"{p}_exposure"].values
            ex_e = _squashed_axis(ds[f"{p}_exposure"].attrs, er)
        et = BandAxis.from_dataset(ds, f"{p}_energy_true")
        return cls(ds[p].values, et, er, _sky_geom(ds, p), exposure, ex_e)

    @classmethod
    def from_hdulist(
        cls, hdulist: fits.HDUList, energy_axis: BandAxis | None = None, file: str | None = None
    ) -> EDispKernelMap:
        """Read ``EDISP`` (+ bands) and ``EDISP_EXPOSURE``: a kernel map, or a
        migration map (``EDispMap``) converted to a kernel on ``energy_axis``."""
        m: GadfMap = read_gadf_map(hdulist, "EDISP", file)
        names = [a.name for a in m.axes]
        exposure, ex_axis = _read_exposure(hdulist, "EDISP_EXPOSURE", file)
        if names == ["energy_true", "energy"]:
            return cls(m.data, m.axes[0], m.axes[1], m.geom, exposure, ex_axis)
        if names == ["energy_true", "migra"]:
            if energy_axis is None:
                raise FormatError(
                    "a migration EDISP map needs the counts energy axis", file=file, field="EDISP"
                )
            kernel = migra_to_kernel(m.data.astype(float), m.axes[0], m.axes[1], energy_axis)
            return cls(kernel, m.axes[0], energy_axis, m.geom, exposure, None)
        raise FormatError(
            f"EDISP axes {names} are neither (energy_true, energy) nor migra",
            file=file,
            field="EDISP",
        )

    def to_hdus(self) -> list:
        """``EDISP``, ``EDISP_BANDS`` (and ``EDISP_EXPOSURE``, ``EDISP_EXPOSURE_BANDS``)."""
        hdus = gadf_map_hdus(
            "EDISP", self.data, [self.energy_axis_true, self.energy_axis], self.geom, ""
        )
        if self.exposure is not None:
            ex_e = self.exposure_energy or self.energy_axis.squash()
            hdus += gadf_map_hdus(
                "EDISP_EXPOSURE",
                self.exposure[:, None],
                [self.energy_axis_true, ex_e],
                self.geom,
                EXPOSURE_UNIT,
            )
        return hdus


# names of the sky coordinates of an IRF grid, for reference
IRF_SKY_COORDS = {p: tuple(f"{p}_{c}" for c in SKY_COORDS) for p in ("psf", "edisp")}

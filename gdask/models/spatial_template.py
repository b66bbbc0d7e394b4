"""WCS-pixel spatial pieces: the template model and point-source pixel weights.

Template: a WCS sky map, optionally with a true-energy axis.

The map is kept as a numpy array (``(energy, lat, lon)`` or ``(lat, lon)``)
plus a FITS WCS header string, as everywhere in gdask.  Interpolation follows
Gammapy 2.1 (``TemplateSpatialModel``): multilinear interpolation of
``log(value)`` in pixel coordinates (energy pixels are linear in
``log(energy)`` between the axis nodes), linear extrapolation within half a
pixel of the map border, 0 beyond it, negative results clipped to 0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS

from .parameters import ParameterSpec
from .spatial import SpatialModel, sky_geometry

__all__ = [
    "TemplateSpatialModel",
    "read_wcs_map",
    "wcs_pixel_solid_angle",
    "interp_log_multilinear",
    "point_pixel_weights",
]

log = logging.getLogger(__name__)

_ENERGY_COLUMNS = (
    ("ENERGY_TRUE_MIN", "ENERGY_TRUE_MAX"),
    ("E_MIN", "E_MAX"),
    ("ENERGY_MIN", "ENERGY_MAX"),
)


def _celestial_wcs(header: str) -> WCS:
    return WCS(fits.Header.fromstring(header), naxis=2)


def _frame_of(header: str) -> str:
    ctype = fits.Header.fromstring(header).get("CTYPE1", "RA---CAR")
    return "galactic" if ctype.startswith("GLON") else "icrs"


def read_wcs_map(filename: str | Path, hdu: str | int | None = None) -> dict[str, Any]:
    """Read a WCS map in Gammapy's layout (image or cube with a bands table).

    Returns
    -------
    out : dict
        ``data`` (array as stored), ``header`` (2-D celestial WCS header string),
        ``unit`` (str, ``""`` if absent), ``energy_nodes`` (TeV) and
        ``energy_pix_offset`` (-0.5 for bin edges, 0 for node centres), both None
        for an image.
    """
    with fits.open(filename) as hdul:
        if hdu is None:
            hdu = next(i for i, h in enumerate(hdul) if h.is_image and h.data is not None)
        img = hdul[hdu]
        data = np.asarray(img.data)
        hdr = img.header
        wcs = WCS(hdr, naxis=2)
        out: dict[str, Any] = {
            "data": data,
            "header": wcs.to_header().tostring(),
            "unit": hdr.get("BUNIT", ""),
            "energy_nodes": None,
            "energy_pix_offset": None,
        }
        if data.ndim == 3:
            bands_name = hdr.get("BANDSHDU", "EBOUNDS")
            bands = hdul[bands_name if bands_name in hdul else "ENERGIES"].data
            names = [n.upper() for n in bands.columns.names]
            for lo, hi in _ENERGY_COLUMNS:
                if lo in names:
                    col_lo = bands.columns[names.index(lo)]
                    unit = u.Unit(col_lo.unit or "MeV")
                    edges = np.append(bands[lo], bands[hi][-1]).astype(float)
                    out["energy_nodes"] = (edges * unit).to_value("TeV")
                    out["energy_pix_offset"] = -0.5
                    break
            else:
                col = (
                    bands.columns[0]
                    if "ENERGY" not in names
                    else bands.columns[names.index("ENERGY")]
                )
                unit = u.Unit(col.unit or "MeV")
                out["energy_nodes"] = (np.asarray(bands[col.name], float) * unit).to_value("TeV")
                out["energy_pix_offset"] = 0.0
    return out


def wcs_pixel_solid_angle(header: str, shape: tuple[int, int]) -> np.ndarray:
    """Pixel solid angles (sr) as Gammapy computes them.

    Each pixel is split along a diagonal into two planar triangles whose sides
    are the great-circle distances between its corners and whose angles are
    differences of position angles.
    """
    ny, nx = shape
    wcs = _celestial_wcs(header)
    py, px = np.meshgrid(np.arange(-0.5, ny), np.arange(-0.5, nx), indexing="ij")
    lon, lat = wcs.wcs_pix2world(px, py, 0)

    def corner(sl_y: slice, sl_x: slice) -> tuple[np.ndarray, np.ndarray]:
        return lon[sl_y, sl_x], lat[sl_y, sl_x]

    a = corner(slice(None, -1), slice(None, -1))
    b = corner(slice(1, None), slice(None, -1))
    c = corner(slice(None, -1), slice(1, None))
    d = corner(slice(1, None), slice(1, None))

    def sep(p, q):
        return sky_geometry(q[0], q[1], p[0], p[1])["sep"]

    def pa(p, q):
        return sky_geometry(q[0], q[1], p[0], p[1])["pa"]

    area = 0.5 * sep(a, b) * sep(b, d) * np.sin(pa(b, d) - pa(b, a))
    area += 0.5 * sep(c, d) * sep(a, c) * np.sin(pa(c, d) - pa(a, c))
    return np.abs(area)


def interp_log_multilinear(
    log_values: np.ndarray, pix: list[np.ndarray], grad: bool = False
) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Multilinear interpolation (with edge-cell extrapolation) on an integer grid.

    Parameters
    ----------
    log_values : ndarray
        Grid values, axis ``k`` sampled at pixels ``0 .. n_k - 1``.
    pix : list of ndarray
        Broadcastable pixel coordinates, one per axis of ``log_values``.
        Axes of length 1 are ignored (index 0).
    grad : bool
        Also return the derivative with respect to each pixel coordinate.

    Returns
    -------
    value, grads : ndarray, list of ndarray or None
    """
    pix = np.broadcast_arrays(*[np.asarray(p, dtype=float) for p in pix])
    i0, t = [], []
    for n, p in zip(log_values.shape, pix, strict=True):
        if n == 1:
            i0.append(np.zeros(p.shape, dtype=int))
            t.append(None)
            continue
        pf = np.where(np.isfinite(p), p, 0.0)
        lo = np.clip(np.floor(pf).astype(int), 0, n - 2)
        i0.append(lo)
        t.append(pf - lo)
    active = [k for k, tk in enumerate(t) if tk is not None]
    value = np.zeros(pix[0].shape)
    grads = [np.zeros(pix[0].shape) for _ in pix] if grad else None
    for corner in product((0, 1), repeat=len(active)):
        idx = list(i0)
        weights = []
        for k, c in zip(active, corner, strict=True):
            idx[k] = i0[k] + c
            weights.append(t[k] if c else 1.0 - t[k])
        vals = log_values[tuple(idx)].astype(float)
        w = np.prod(weights, axis=0) if weights else 1.0
        value += w * vals
        if grad:
            for j, (k, c) in enumerate(zip(active, corner, strict=True)):
                others = [wt for i, wt in enumerate(weights) if i != j]
                wo = np.prod(others, axis=0) if others else 1.0
                grads[k] += (1.0 if c else -1.0) * wo * vals
    return value, grads


def point_pixel_weights(
    wcs_header: str, shape: tuple[int, int], lon_0: float, lat_0: float, grad: bool = False
):
    """Bilinear 4-pixel weights of a point source on a WCS image (centroid preserved).

    This is how a point source is integrated on pixels when no PSF is applied
    (Gammapy's scheme).  Weights are dimensionless (they sum to 1 inside the
    image).  With ``grad``, also returns ``d weights / d lon_0`` and
    ``/ d lat_0`` (per deg): the weights are piecewise linear in the pixel
    position, whose Jacobian with respect to the sky position is taken from the
    WCS by a central difference of 1e-6 deg (the projection is smooth).
    The header must be in the model's frame.
    """
    wcs = _celestial_wcs(wcs_header)
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx].astype(float)

    def pix(lon, lat):
        return np.array(wcs.wcs_world2pix(lon, lat, 0), dtype=float)

    x0, y0 = pix(lon_0, lat_0)
    dx, dy = np.abs(x - x0), np.abs(y - y0)
    wx, wy = np.where(dx < 1, 1 - dx, 0.0), np.where(dy < 1, 1 - dy, 0.0)
    weights = wx * wy
    if not grad:
        return weights
    h = 1e-6
    jac_lon = (pix(lon_0 + h, lat_0) - pix(lon_0 - h, lat_0)) / (2 * h)
    jac_lat = (pix(lon_0, lat_0 + h) - pix(lon_0, lat_0 - h)) / (2 * h)
    dwx_dx0 = np.where(dx < 1, np.sign(x - x0), 0.0)
    dwy_dy0 = np.where(dy < 1, np.sign(y - y0), 0.0)
    dw_dx0, dw_dy0 = dwx_dx0 * wy, wx * dwy_dy0
    return (
        weights,
        dw_dx0 * jac_lon[0] + dw_dy0 * jac_lon[1],
        dw_dx0 * jac_lat[0] + dw_dy0 * jac_lat[1],
    )


def _axis_pix(x: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Piecewise-linear map from ``x`` onto node indices, linearly extrapolated."""
    if len(nodes) == 1:
        return np.zeros_like(x)
    i = np.clip(np.searchsorted(nodes, x) - 1, 0, len(nodes) - 2)
    return i + (x - nodes[i]) / (nodes[i + 1] - nodes[i])


class TemplateSpatialModel(SpatialModel):
    """Sky map template (WCS), optionally energy dependent (``energy_true``, TeV).

    Parameters
    ----------
    data : ndarray
        Map values, shape ``(n_lat, n_lon)`` or ``(n_energy, n_lat, n_lon)``.
    wcs_header : str
        FITS header string of the celestial WCS; its frame is the model's frame.
    unit : str
        Unit of ``data``; ``""`` is taken as sr^-1.  With ``normalize`` the
        unit becomes sr^-1.
    energy_nodes : ndarray, optional
        Energy axis nodes (TeV): bin edges (``energy_pix_offset=-0.5``) or bin
        centres (``energy_pix_offset=0``).
    normalize : bool
        Rescale each energy plane to integrate to 1 over the map (pixel solid
        angles as `wcs_pixel_solid_angle`).
    filename : str, optional
        Written to YAML and used by `from_dict`.
    lon_0, lat_0
        Shift of the template: every coordinate is offset in lon and lat by
        ``(lon_0, lat_0) - map centre`` (planar offsets, valid near the centre).
        NaN (default) means the map centre.
    """

    tag = ("TemplateSpatialModel", "template")
    _defaults = (
        ParameterSpec("lon_0", np.nan, "deg", frozen=True),
        ParameterSpec("lat_0", np.nan, "deg", min=-90.0, max=90.0, frozen=True),
    )

    def __init__(
        self,
        data: np.ndarray,
        wcs_header: str,
        unit: str = "",
        energy_nodes: np.ndarray | None = None,
        energy_pix_offset: float = -0.5,
        normalize: bool = True,
        filename: str | None = None,
        **kwargs: Any,
    ) -> None:
        data = np.asarray(data)
        self.wcs_header = wcs_header
        self.filename = None if filename is None else str(filename)
        self.normalize = bool(normalize)
        self.energy_nodes = None if energy_nodes is None else np.asarray(energy_nodes, float)
        self.energy_pix_offset = float(energy_pix_offset)
        if data.ndim == 3 and self.energy_nodes is None:
            raise ValueError("a 3-D template needs energy_nodes")
        if np.any(data < 0):
            log.warning("template %s has negative values", filename)
        if np.isnan(data).any():
            log.warning("template %s has NaN values", filename)
        self._wcs = _celestial_wcs(wcs_header)
        if normalize:
            data = data.astype(float)
            spatial_sum = data.sum(axis=(-2, -1), keepdims=True)
            data = np.divide(data, spatial_sum, out=np.zeros(data.shape), where=spatial_sum != 0)
            data /= wcs_pixel_solid_angle(wcs_header, data.shape[-2:])
            unit = "sr-1"
        if u.Unit(unit).is_equivalent(""):
            unit = "sr-1"
        self.data = data
        self.unit = u.Unit(unit).to_string("fits")
        self.output_unit = self.unit
        self.input_units = ("deg", "deg", "TeV") if self.is_energy_dependent else ("deg", "deg")
        clean = np.where(np.isfinite(data), data, 0)
        tiny = (
            np.finfo(data.dtype).tiny
            if np.issubdtype(data.dtype, np.floating)
            else np.finfo(np.float32).tiny
        )
        # log in the stored precision, as Gammapy does
        self._log_data = np.log(np.clip(clean, tiny, np.inf))
        ny, nx = data.shape[-2:]
        lon_c, lat_c = self._wcs.wcs_pix2world((nx - 1) / 2.0, (ny - 1) / 2.0, 0)
        self.map_center = (float(lon_c), float(lat_c))
        super().__init__(frame=_frame_of(wcs_header), **kwargs)
        for name, centre in zip(("lon_0", "lat_0"), self.map_center, strict=True):
            if np.isnan(self.parameters[name].value):
                self.parameters[name].quantity = centre * u.deg

    @classmethod
    def read(
        cls, filename: str | Path, normalize: bool = True, **kwargs: Any
    ) -> TemplateSpatialModel:
        """Read a template from a FITS map (Gammapy's WCS image/cube layout)."""
        m = read_wcs_map(filename)
        return cls(
            m["data"],
            m["header"],
            unit=m["unit"],
            energy_nodes=m["energy_nodes"],
            energy_pix_offset=m["energy_pix_offset"] or -0.5,
            normalize=normalize,
            filename=str(filename),
            **kwargs,
        )

    @property
    def is_energy_dependent(self) -> bool:
        """True for a cube with an energy axis."""
        return self.data.ndim == 3

    @property
    def evaluation_radius(self) -> float:
        """Half the largest map width (deg)."""
        hdr = fits.Header.fromstring(self.wcs_header)
        ny, nx = self.data.shape[-2:]
        return 0.5 * max(abs(hdr["CDELT1"]) * nx, abs(hdr["CDELT2"]) * ny)

    def _pix(self, lon, lat, energy, lon_0, lat_0):
        dlon, dlat = lon_0 - self.map_center[0], lat_0 - self.map_center[1]
        lon_s = np.asarray(lon, float) - dlon
        lat_s = np.asarray(lat, float) - dlat
        lon_s, lat_s = np.broadcast_arrays(lon_s, lat_s)
        px, py = self._wcs.wcs_world2pix(lon_s, lat_s, 0)
        pix = [np.asarray(py), np.asarray(px)]
        if self.is_energy_dependent:
            if energy is None:
                raise ValueError("energy-dependent template: energy (TeV) is required")
            pe = _axis_pix(np.log(np.asarray(energy, float)), np.log(self.energy_nodes))
            pix.insert(0, pe + self.energy_pix_offset)
        return pix, (lon_s, lat_s)

    def _invalid(self, pix: list[np.ndarray]) -> np.ndarray:
        bad = np.zeros(np.broadcast_shapes(*[p.shape for p in pix]), dtype=bool)
        for n, p in zip(self.data.shape, pix, strict=True):
            with np.errstate(invalid="ignore"):
                idx = np.floor(p + 0.5)
                bad = bad | ~np.isfinite(p) | (idx < 0) | (idx >= n)
        return bad

    def evaluate(self, lon, lat, energy=None, *, lon_0: float, lat_0: float) -> np.ndarray:
        """Interpolated value (in :attr:`unit`) at ``lon, lat`` (deg) and ``energy`` (TeV)."""
        return self._evaluate(lon, lat, energy, lon_0, lat_0, grad=False)[0]

    def evaluate_grad(
        self, lon, lat, energy=None, *, lon_0: float, lat_0: float
    ) -> dict[str, np.ndarray]:
        """Derivatives with respect to ``lon_0``/``lat_0`` (per deg).

        Exact derivative of the interpolant inside a cell; the WCS Jacobian
        (pixel per deg) comes from a 1e-6 deg central difference of the projection.
        """
        return self._evaluate(lon, lat, energy, lon_0, lat_0, grad=True)[1]

    def _evaluate(self, lon, lat, energy, lon_0, lat_0, grad):
        pix, (lon_s, lat_s) = self._pix(lon, lat, energy, lon_0, lat_0)
        logv, dlog = interp_log_multilinear(self._log_data, pix, grad=grad)
        value = np.exp(logv)
        tiny = np.finfo(value.dtype).tiny
        zero = (np.abs(value) - tiny <= tiny) | self._invalid(pix) | ~np.isfinite(value)
        value = np.clip(np.where(zero, 0.0, value), 0, None)
        if not grad:
            return value, None
        h = 1e-6
        d_lon = [
            (a - b) / (2 * h)
            for a, b in zip(
                self._wcs.wcs_world2pix(lon_s + h, lat_s, 0),
                self._wcs.wcs_world2pix(lon_s - h, lat_s, 0),
                strict=True,
            )
        ]
        d_lat = [
            (a - b) / (2 * h)
            for a, b in zip(
                self._wcs.wcs_world2pix(lon_s, lat_s + h, 0),
                self._wcs.wcs_world2pix(lon_s, lat_s - h, 0),
                strict=True,
            )
        ]
        k = 1 if self.is_energy_dependent else 0
        dl_dpx, dl_dpy = dlog[k + 1], dlog[k]
        # shifting the centre by +d moves every sampled coordinate by -d
        g_lon = -value * (dl_dpx * d_lon[0] + dl_dpy * d_lon[1])
        g_lat = -value * (dl_dpx * d_lat[0] + dl_dpy * d_lat[1])
        return value, {"lon_0": g_lon, "lat_0": g_lat}

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        """Gammapy layout: type, frame, parameters, filename, normalize, unit."""
        data = super().to_dict(full_output)
        data["spatial"].update(filename=self.filename, normalize=self.normalize, unit=self.unit)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **kwargs: Any) -> TemplateSpatialModel:
        """Read the template file named in the dictionary."""
        inner = cls._unwrap(data)
        pars = (
            cls._parameters_from_dict(inner.get("parameters") or [], cls._defaults)
            if inner.get("parameters")
            else {}
        )
        return cls.read(inner["filename"], normalize=inner.get("normalize", True), **pars, **kwargs)

"""Spatial models integrated over the pixels of a WCS grid, with gradients.

Follows Gammapy 2.1's ``SpatialModel.integrate_geom``:

* point sources get bilinear 4-pixel weights (centroid preserving) at the
  source's pixel position;
* other models are evaluated at pixel centres and multiplied by the pixel
  solid angle; when ``evaluation_bin_size_min`` is smaller than the pixel,
  the model is evaluated on a grid oversampled by
  ``min(ceil(binsz / bin_size_min), 200)`` inside a cutout of width
  ``2 max(evaluation_radius, binsz)`` around the model, averaged per pixel,
  then multiplied by the (coarse) pixel solid angle.

Gradients are exact derivatives of these same numbers (the cutout and the
oversampling factor are treated as constants, as they are piecewise constant).
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.nddata.utils import NoOverlapError, overlap_slices
from numpy.typing import NDArray

from gdask.geometry.wcs import WcsGeom
from gdask.models.spatial import PointSpatialModel, SpatialModel

__all__ = [
    "SpatialIntegral",
    "SpatialIntegrator",
    "MAX_OVERSAMPLING",
    "cutout_slices",
    "spatial_geometry_at",
]

Array = NDArray[np.float64]
#: Gammapy's ``MAX_OVERSAMPLING`` of spatial model integration
MAX_OVERSAMPLING = 200
_H = 1e-6


def cutout_slices(
    shape: tuple[int, int],
    x: float,
    y: float,
    size: tuple[float, float],
) -> tuple[slice, slice]:
    """Slices ``(y, x)`` of a trimmed cutout of ``size`` pixels ``(ny, nx)`` at pixel ``(x, y)``.

    Same as `astropy.nddata.Cutout2D` with ``mode="trim"``; raises
    `~astropy.nddata.utils.NoOverlapError` when the cutout misses the grid.
    """
    small = (int(np.round(size[0])), int(np.round(size[1])))
    large, _ = overlap_slices(shape, small, (y, x), mode="trim")
    return large


class _ParameterAt:
    """A parameter's value at ``theta`` (what the models' geometry properties read)."""

    __slots__ = ("value", "canonical_value")

    def __init__(self, canonical_value: float, to_canonical: float) -> None:
        self.canonical_value = canonical_value
        self.value = canonical_value / to_canonical


class _ModelAt:
    """Read-only view of a model whose parameters take the canonical values ``theta``.

    Properties and methods of the model's class run on the view (so they see
    ``theta``); other attributes (frame, template data) come from the model.
    """

    def __init__(self, model: Any, theta: Array) -> None:
        pars = model.parameters
        self._model = model
        self.parameters = {
            p.name: _ParameterAt(float(t), p.to_canonical)
            for p, t in zip(pars, np.asarray(theta, float), strict=True)
        }

    def __getattr__(self, name: str) -> Any:
        attr = getattr(type(self._model), name, None)
        if isinstance(attr, property):
            return attr.fget(self)
        if callable(attr) and not isinstance(attr, (staticmethod, classmethod, type)):
            return types.MethodType(attr, self)
        return getattr(self._model, name)


def spatial_geometry_at(
    model: SpatialModel | None, theta: Array
) -> tuple[tuple[float, float] | None, float | None, float | None]:
    """``(position, evaluation_radius, evaluation_bin_size_min)`` of ``model`` at ``theta``.

    A pure function of the canonical parameters ``theta``: the model's own
    values are neither read nor changed (its properties are evaluated on a
    view holding ``theta``).

    Examples
    --------
    >>> from gdask.models import GaussianSpatialModel
    >>> m = GaussianSpatialModel(lon_0="1 deg", lat_0="2 deg", sigma="0.1 deg")
    >>> pos, radius, _ = spatial_geometry_at(m, np.array([3.0, 4.0, 0.2, 0.0, 0.0]))
    >>> pos, round(radius, 6), m.position
    ((3.0, 4.0), 1.0, (1.0, 2.0))
    """
    if model is None:
        return None, None, None
    view = _ModelAt(model, theta)
    pos = view.position
    radius = view.evaluation_radius
    bin_min = view.evaluation_bin_size_min
    return (
        None if pos is None else (float(pos[0]), float(pos[1])),
        None if radius is None else float(radius),
        None if bin_min is None else float(bin_min),
    )


@dataclass
class SpatialIntegral:
    """Integrated spatial model on a grid.

    Attributes
    ----------
    value : ndarray
        ``(ny, nx)`` (or ``(n_energy, ny, nx)`` for energy-dependent models),
        dimensionless (model integral per pixel).
    grad : ndarray or None
        ``(n_par,) + value.shape`` derivatives per canonical parameter.
    sparse : tuple or None
        For point sources ``(iy, ix, w, dw)``: the non-zero pixels, their
        weights and ``dw`` of shape ``(n_par, n_pixels)``.
    """

    value: Array
    grad: Array | None = None
    sparse: tuple | None = None


class SpatialIntegrator:
    """Integrates one spatial model over a fixed WCS grid (an exposure cutout).

    Parameters
    ----------
    model : SpatialModel
    geom : WcsGeom
        The grid (the model's evaluation cutout of the dataset).
    energy_true : ndarray, optional
        True-energy bin centres (TeV) for energy-dependent models.
    """

    def __init__(
        self, model: SpatialModel, geom: WcsGeom, energy_true: Array | None = None
    ) -> None:
        self.model = model
        self.geom = geom
        self.wcs = geom.wcs
        self.shape = geom.shape
        self.solid_angle = geom.solid_angle()
        self.pix_scale = float(np.max(geom.pixel_scales))
        self.binsz = np.asarray(geom.pixel_scales, float)
        self.energy_true = energy_true
        self.is_point = isinstance(model, PointSpatialModel)
        self.energy_dependent = bool(getattr(model, "is_energy_dependent", False))
        self._coords: dict[tuple, tuple[Array, Array]] = {}
        self._center = None

    # -------------------------------------------------------------- helpers
    def _to_pix(self, lon: float, lat: float) -> tuple[float, float]:
        if self.model.frame != self.geom.frame:
            c = SkyCoord(lon, lat, unit="deg", frame=self.model.frame).transform_to(self.geom.frame)
            lon, lat = float(c.spherical.lon.deg), float(c.spherical.lat.deg)
        x, y = self.wcs.wcs_world2pix(lon, lat, 0)
        return float(x), float(y)

    def _coords_in_frame(
        self, key: tuple, sly: slice, slx: slice, factor: int
    ) -> tuple[Array, Array]:
        if key not in self._coords:
            ny, nx = sly.stop - sly.start, slx.stop - slx.start
            # pixel centres of the sub-grid upsampled by ``factor``
            sub = (np.arange(factor * ny) + 0.5) / factor - 0.5 + sly.start
            sxb = (np.arange(factor * nx) + 0.5) / factor - 0.5 + slx.start
            xx, yy = np.meshgrid(sxb, sub)
            lon, lat = self.wcs.wcs_pix2world(xx, yy, 0)
            lon, lat = self.model.lonlat_in_frame(lon, lat, self.geom.frame)
            self._coords[key] = (np.asarray(lon, float), np.asarray(lat, float))
        return self._coords[key]

    # ---------------------------------------------------------- integration
    def integrate(self, theta: Array, grad: bool = False) -> SpatialIntegral:
        """Integrate at canonical parameters ``theta`` (aligned with the model's parameters).

        A pure function of ``theta``: the evaluation radius, bin size and
        position come from `spatial_geometry_at`, not from the model's values.
        """
        if self.is_point:
            return self._point(theta, grad)
        return self._extended(theta, grad)

    def _point(self, theta: Array, grad: bool) -> SpatialIntegral:
        lon0, lat0 = float(theta[0]), float(theta[1])
        x0, y0 = self._to_pix(lon0, lat0)
        ny, nx = self.shape
        fx, fy = int(np.floor(x0)), int(np.floor(y0))
        ix = np.array([fx, fx + 1, fx, fx + 1])
        iy = np.array([fy, fy, fy + 1, fy + 1])
        dx, dy = np.abs(ix - x0), np.abs(iy - y0)
        wx, wy = np.where(dx < 1, 1 - dx, 0.0), np.where(dy < 1, 1 - dy, 0.0)
        keep = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        w = (wx * wy)[keep]
        value = np.zeros(self.shape)
        value[iy[keep], ix[keep]] = w
        dw = None
        if grad:
            jl = (np.array(self._to_pix(lon0 + _H, lat0)) - self._to_pix(lon0 - _H, lat0)) / (
                2 * _H
            )
            jb = (np.array(self._to_pix(lon0, lat0 + _H)) - self._to_pix(lon0, lat0 - _H)) / (
                2 * _H
            )
            dwdx = (np.where(dx < 1, np.sign(ix - x0), 0.0) * wy)[keep]
            dwdy = (wx * np.where(dy < 1, np.sign(iy - y0), 0.0))[keep]
            dw = np.stack([dwdx * jl[0] + dwdy * jl[1], dwdx * jb[0] + dwdy * jb[1]])
        return SpatialIntegral(value, None, (iy[keep], ix[keep], w, dw))

    def _extended(self, theta: Array, grad: bool) -> SpatialIntegral:
        model = self.model
        ny, nx = self.shape
        factor = 1
        sl = (slice(0, ny), slice(0, nx))
        position, radius, bin_min = spatial_geometry_at(model, theta)
        if radius is not None and position is not None:
            width = 2 * max(float(radius), self.pix_scale)
            x0, y0 = self._to_pix(*position)
            size = tuple(np.clip(width / self.binsz[::-1], 1, None))
            try:
                sl = cutout_slices(self.shape, x0, y0, size)
                if bin_min is not None:
                    res = float(bin_min)
                    factor = (
                        min(int(np.ceil(self.pix_scale / res)), MAX_OVERSAMPLING)
                        if res > 0
                        else MAX_OVERSAMPLING
                    )
            except (NoOverlapError, ValueError):
                factor = 1
                sl = (slice(0, ny), slice(0, nx))
        if factor == 1:
            sl = (slice(0, ny), slice(0, nx))
        key = (sl[0].start, sl[0].stop, sl[1].start, sl[1].stop, factor)
        lon, lat = self._coords_in_frame(key, sl[0], sl[1], factor)
        args: tuple = (lon, lat)
        if self.energy_dependent:
            e = np.asarray(self.energy_true, float)[:, None, None]
            args = (lon[None], lat[None], e)
        vals = model.evaluate_theta(*args, theta=theta)
        g = model.evaluate_grad_theta(*args, theta=theta) if grad else None
        omega = self.solid_angle[sl]

        def block(a: Array) -> Array:
            if factor == 1:
                return a * omega
            shp = a.shape[:-2] + (a.shape[-2] // factor, factor, a.shape[-1] // factor, factor)
            return a.reshape(shp).sum(axis=(-3, -1)) / factor**2 * omega

        lead = (len(self.energy_true),) if self.energy_dependent else ()
        value = np.zeros(lead + self.shape)
        value[(...,) + sl] = block(vals)
        gout = None
        if grad:
            gout = np.zeros((g.shape[0],) + lead + self.shape)
            gout[(slice(None), ...) + sl] = block(g)
        return SpatialIntegral(value, gout)

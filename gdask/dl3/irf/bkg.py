"""Background rate models (GADF ``bkg_3d`` and ``bkg_2d``).

Rates are in s^-1 MeV^-1 sr^-1 (GADF's unit) versus *reconstructed* energy.
Evaluation follows Gammapy 2.1's background IRFs: interpolation in
log(rate) (the logarithm taken in the stored precision, e.g. float32),
log(energy) and linear field-of-view coordinates between bin centres, linear
extrapolation up to the outer bin edges, 0 outside the edges.

The integral over reconstructed-energy bins is the one Gammapy's map maker
uses (``integrate_project_irf_on_geom``): the rate is evaluated at the bin
edges and each bin is integrated as a power law through its two end points
(log-log trapezoid, `trapz_loglog`), optionally on ``oversampling`` log-even
sub-bins per bin that are then summed.
"""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

import numpy as np

from gdask.dl3.irf.base import GADF_IRF_KEYWORDS, OFFSET_AXIS, TableIRF
from gdask.dl3.irf.table import AxisSpec, ColumnSpec
from gdask.interp import GridInterpolator

__all__ = ["Background3D", "Background2D", "integrate_bins", "trapz_loglog", "upsample_log_edges"]

BKG_UNIT = "s-1 MeV-1 sr-1"
_MEV_PER_TEV = 1e6
_TINY64 = np.finfo(np.float64).tiny


def _log_clipped(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(np.clip(x, _TINY64, np.inf))


def trapz_loglog(y: np.ndarray, x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Integrate ``y(x)`` bin by bin as a power law through the bin's end points.

    Parameters
    ----------
    y : ndarray
        Values at the ``n + 1`` points ``x`` along ``axis``.
    x : ndarray, shape (n + 1,) or broadcastable to ``y``
        Positive abscissae (increasing).
    axis : int
        Axis of ``y`` along which to integrate.

    Returns
    -------
    ndarray
        ``n`` integrals along ``axis``. Bins where the power-law index is
        undefined (both ends 0) or steeper than representable give 0;
        a flat index (|1 - index| ~ 0) uses ``y0 x0 log(x1 / x0)``.
    """
    y = np.moveaxis(np.asarray(y, dtype=float), axis, 0)
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x.reshape((-1,) + (1,) * (y.ndim - 1))
    else:
        x = np.moveaxis(x, axis, 0)
    x0, x1 = x[:-1], x[1:]
    y0, y1 = y[:-1], y[1:]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        index = -_log_clipped(y0 / y1) / _log_clipped(x0 / x1)
        index = np.where(np.isnan(index), np.inf, index)
        val = 1.0 - index
        integral = y0 * x0 / val * (np.power(x1 / x0, val) - 1.0)
        flat = np.isclose(val, 0.0)
        integral = np.where(flat, y0 * x0 * np.log(x1 / x0), integral)
    integral = np.where(np.isfinite(integral), integral, 0.0)
    return np.moveaxis(integral, 0, axis)


def upsample_log_edges(edges: np.ndarray, factor: int) -> np.ndarray:
    """Split each bin of ``edges`` into ``factor`` bins even in log."""
    edges = np.asarray(edges, dtype=float)
    n = edges.size - 1
    pix = np.linspace(0.0, n, n * int(factor) + 1)
    return np.exp(np.interp(pix, np.arange(n + 1), np.log(edges)))


def integrate_bins(evaluate, energy_edges, spatial, oversampling: int | None) -> np.ndarray:
    """Integral (s^-1 sr^-1) of ``evaluate(energy, *spatial)`` over energy bins, energy first."""
    edges = np.asarray(energy_edges, dtype=float)
    factor = int(oversampling) if oversampling else 1
    fine = upsample_log_edges(edges, factor) if factor > 1 else edges
    spatial = np.broadcast_arrays(*[np.asarray(s, dtype=float) for s in spatial])
    shape = spatial[0].shape
    e = fine.reshape((-1,) + (1,) * len(shape))
    rate = evaluate(e, *[s[np.newaxis] for s in spatial])
    rate = np.broadcast_to(rate, (fine.size,) + shape)
    integral = trapz_loglog(rate, fine, axis=0) * _MEV_PER_TEV
    if factor > 1:
        integral = integral.reshape((edges.size - 1, factor) + shape).sum(axis=1)
    return integral


def _tdim_rule(gadf_order: tuple[str, ...]):
    """Gammapy's rule: TDIM lists ``gadf_order`` when the shape fits, else its reverse."""

    def order(shape: tuple[int, ...], sizes) -> tuple[str, ...]:
        if tuple(reversed(shape)) == tuple(sizes[d] for d in gadf_order):
            return gadf_order
        return tuple(reversed(gadf_order))

    return order


class _BackgroundBase(TableIRF):
    keywords: ClassVar[dict[str, str]] = {}
    _spatial_scales: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _tdim_order(cls, header):
        return _tdim_rule(tuple(s.dim for s in cls.axes))

    @cached_property
    def interpolator(self) -> GridInterpolator:
        """The table interpolator behind `evaluate` (nodes, scaled values, edges; cached)."""
        return self._grid_interpolator(
            "background", ["log", *self._spatial_scales], values_scale="log"
        )


class Background3D(_BackgroundBase):
    """Background rate ``background(energy, fov_lon, fov_lat)`` in s^-1 MeV^-1 sr^-1.

    ``fov_lon``/``fov_lat`` come from the DETX/DETY columns; ``attrs["fov_alignment"]``
    from FOVALIGN (default RADEC). The BKG column's dims are read as Gammapy 2.1
    does: TDIM (ENERG, DETX, DETY) when the shape fits, else the reverse
    (DETY, DETX, ENERG) -- the layout of the H.E.S.S. DR1 files.
    """

    hdu_class: ClassVar[str] = "bkg_3d"
    extname: ClassVar[str] = "BACKGROUND"
    axes: ClassVar[tuple[AxisSpec, ...]] = (
        AxisSpec("ENERG", "energy", "TeV", log=True),
        AxisSpec("DETX", "fov_lon", "deg"),
        AxisSpec("DETY", "fov_lat", "deg"),
    )
    columns: ClassVar[tuple[ColumnSpec, ...]] = (
        ColumnSpec("BKG", "background", BKG_UNIT, default_unit=BKG_UNIT, aliases=("BGD",)),
    )
    keywords: ClassVar[dict[str, str]] = {
        **GADF_IRF_KEYWORDS,
        "HDUCLAS2": "BKG",
        "HDUCLAS3": "FULL-ENCLOSURE",
        "HDUCLAS4": "BKG_3D",
    }
    _spatial_scales: ClassVar[tuple[str, ...]] = ("lin", "lin")

    @classmethod
    def _extra_attrs(cls, header, *, file, obs_id, hdu_name) -> dict:
        attrs = super()._extra_attrs(header, file=file, obs_id=obs_id, hdu_name=hdu_name)
        attrs["fov_alignment"] = str(header.get("FOVALIGN", "RADEC")).strip().upper() or "RADEC"
        return attrs

    def _keywords(self) -> dict:
        return {**super()._keywords(), "FOVALIGN": self.fov_alignment}

    @classmethod
    def create(
        cls,
        energy_edges: np.ndarray,
        fov_lon_edges: np.ndarray,
        fov_lat_edges: np.ndarray,
        background: np.ndarray,
        *,
        fov_alignment: str = "RADEC",
    ) -> Background3D:
        """Create from edges (TeV, deg, deg) and rates of shape ``(n_energy, n_lon, n_lat)``."""
        return cls._create(
            {"energy": energy_edges, "fov_lon": fov_lon_edges, "fov_lat": fov_lat_edges},
            {"background": background},
            {"fov_alignment": fov_alignment.upper(), "point_like": False},
        )

    @property
    def fov_alignment(self) -> str:
        """Orientation of the FoV coordinates: ``"RADEC"`` or ``"ALTAZ"``."""
        return str(self.ds.attrs.get("fov_alignment", "RADEC"))

    def evaluate(self, energy, fov_lon, fov_lat) -> np.ndarray:
        """Rate (s^-1 MeV^-1 sr^-1) at energies (TeV) and FoV coordinates (deg), broadcast."""
        return self.interpolator(energy, fov_lon, fov_lat)

    def integrate_energy(self, energy_edges, fov_lon, fov_lat, *, oversampling: int | None = None):
        """Rate integrated over reconstructed-energy bins, in s^-1 sr^-1.

        Parameters
        ----------
        energy_edges : array_like (TeV), shape (n + 1,)
        fov_lon, fov_lat : array_like (deg)
            Broadcast together to shape ``S``.
        oversampling : int, optional
            Number of log-even sub-bins per bin (Gammapy's ``background_oversampling``).

        Returns
        -------
        ndarray, shape ``(n,) + S``
        """
        return integrate_bins(self.evaluate, energy_edges, (fov_lon, fov_lat), oversampling)


class Background2D(_BackgroundBase):
    """Radially symmetric background rate ``background(energy, offset)`` in s^-1 MeV^-1 sr^-1."""

    hdu_class: ClassVar[str] = "bkg_2d"
    extname: ClassVar[str] = "BACKGROUND"
    axes: ClassVar[tuple[AxisSpec, ...]] = (
        AxisSpec("ENERG", "energy", "TeV", log=True),
        OFFSET_AXIS,
    )
    columns: ClassVar[tuple[ColumnSpec, ...]] = Background3D.columns
    keywords: ClassVar[dict[str, str]] = {
        **GADF_IRF_KEYWORDS,
        "HDUCLAS2": "BKG",
        "HDUCLAS3": "FULL-ENCLOSURE",
        "HDUCLAS4": "BKG_2D",
    }
    _spatial_scales: ClassVar[tuple[str, ...]] = ("lin",)

    @classmethod
    def create(
        cls, energy_edges: np.ndarray, offset_edges: np.ndarray, background: np.ndarray
    ) -> Background2D:
        """Create from edges (TeV, deg) and rates of shape ``(n_energy, n_offset)``."""
        return cls._create(
            {"energy": energy_edges, "offset": offset_edges},
            {"background": background},
            {"point_like": False},
        )

    def evaluate(self, energy, offset) -> np.ndarray:
        """Rate (s^-1 MeV^-1 sr^-1) at energies (TeV) and offsets (deg), broadcast."""
        return self.interpolator(energy, offset)

    def integrate_energy(self, energy_edges, offset, *, oversampling: int | None = None):
        """Rate integrated over reconstructed-energy bins (s^-1 sr^-1), shape ``(n,) + offset.shape``."""
        return integrate_bins(self.evaluate, energy_edges, (offset,), oversampling)

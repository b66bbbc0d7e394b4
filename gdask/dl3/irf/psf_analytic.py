"""Analytic point spread functions: GADF ``psf_3gauss`` and ``psf_king``.

The parameters are tabulated over (energy_true, offset) and interpolated
multi-linearly on the bin centres in log(energy) and linear offset,
extrapolated beyond the outer nodes and clipped at zero (Gammapy 2.1's
scheme). As Gammapy does when it reads GADF files, a sigma of exactly zero in
the table is taken as 1 deg (some files write 0 for unused entries); the
stored dataset keeps the file's values. Densities are in sr^-1; containment
radii are searched on Gammapy's default rad grid (66 bins from 0 to 0.66 deg,
each split into ``factor`` sub-bins).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import ClassVar

import astropy.units as u
import numpy as np
from astropy.io import fits

from gdask.dl3.irf.psf import (
    DEG2_TO_SR,
    ENERGY_AXIS,
    OFFSET_AXIS,
    _PSFBase,
    _radius_on_grid,
    upsampled_centres,
)
from gdask.dl3.irf.table import ColumnSpec
from gdask.interp import GridInterpolator

__all__ = [
    "PSF3Gauss",
    "PSFKing",
    "DEFAULT_RAD_EDGES",
    "multi_gauss_norms",
    "multi_gauss_density",
    "multi_gauss_containment",
    "king_density",
    "king_containment",
]

#: rad bin edges (deg) on which containment radii of analytic PSFs are searched
DEFAULT_RAD_EDGES = np.linspace(0.0, 0.66, 67)


# ------------------------------------------------------------------ numerics


def multi_gauss_norms(scale, sigma_1, sigma_2, sigma_3, ampl_2, ampl_3) -> np.ndarray:
    """Fractions of the three Gaussians of a ``psf_3gauss`` PSF, shape ``(3,) + broadcast shape``.

    Component ``i`` has integral ``2 SCALE A_i sigma_i**2`` (``A_1 = 1``); the
    integrals are divided by their NaN-ignoring sum, non-finite results set to 0.
    """
    sigmas = np.stack(
        np.broadcast_arrays(*(np.asarray(s, float) for s in (sigma_1, sigma_2, sigma_3)))
    )
    scale = np.asarray(scale, dtype=float)
    ampl = np.stack(
        np.broadcast_arrays(
            np.ones(scale.shape), np.asarray(ampl_2, float), np.asarray(ampl_3, float)
        )
    )
    norms = 2 * scale * ampl * sigmas**2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(norms / np.nansum(norms, axis=0))


def multi_gauss_density(rad, scale, sigma_1, sigma_2, sigma_3, ampl_2, ampl_3) -> np.ndarray:
    """Density (sr^-1) at ``rad`` (deg) of a normalised sum of three 2-d Gaussians (sigmas in deg)."""
    norms = multi_gauss_norms(scale, sigma_1, sigma_2, sigma_3, ampl_2, ampl_3)
    rad2 = np.asarray(rad, dtype=float) ** 2
    total = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for norm, sigma in zip(norms, (sigma_1, sigma_2, sigma_3), strict=True):
            s2 = np.asarray(sigma, dtype=float) ** 2
            total = total + norm * np.exp(-0.5 * rad2 / s2) / (2 * np.pi * s2)
    return total / DEG2_TO_SR


def multi_gauss_containment(rad, scale, sigma_1, sigma_2, sigma_3, ampl_2, ampl_3) -> np.ndarray:
    """Fraction within ``rad`` (deg) of a normalised sum of three 2-d Gaussians."""
    norms = multi_gauss_norms(scale, sigma_1, sigma_2, sigma_3, ampl_2, ampl_3)
    rad2 = np.asarray(rad, dtype=float) ** 2
    total = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for norm, sigma in zip(norms, (sigma_1, sigma_2, sigma_3), strict=True):
            total = total + norm * (1 - np.exp(-0.5 * rad2 / np.asarray(sigma, dtype=float) ** 2))
    return total


def king_density(rad, gamma, sigma) -> np.ndarray:
    """Density (sr^-1) at ``rad`` (deg) of a King profile.

    ``(1 - 1/gamma) / (2 pi sigma**2) * (1 + rad**2 / (2 gamma sigma**2)) ** -gamma`` (sigma in deg).
    """
    gamma = np.asarray(gamma, dtype=float)
    s2 = np.asarray(sigma, dtype=float) ** 2
    rad2 = np.asarray(rad, dtype=float) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (1 - 1 / gamma) / (2 * np.pi * s2) * (1 + rad2 / (2 * gamma * s2)) ** (-gamma)
    return value / DEG2_TO_SR


def king_containment(rad, gamma, sigma) -> np.ndarray:
    """Fraction within ``rad`` (deg) of a King profile: ``1 - (1 + rad**2 / (2 gamma sigma**2)) ** (1 - gamma)``."""
    gamma = np.asarray(gamma, dtype=float)
    s2 = np.asarray(sigma, dtype=float) ** 2
    rad2 = np.asarray(rad, dtype=float) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - (1 + rad2 / (2 * gamma * s2)) ** (1 - gamma)


# ------------------------------------------------------------------ classes


class _ParametricPSF(_PSFBase):
    """Parameters tabulated over (energy_true, offset), evaluated by a profile function."""

    _axes = (ENERGY_AXIS, OFFSET_AXIS)
    _params: ClassVar[tuple[str, ...]]  # argument names of the profile functions, lower case

    @staticmethod
    def _density(rad, **pars) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _containment(rad, **pars) -> np.ndarray:
        raise NotImplementedError

    @cached_property
    def _interpolators(self) -> dict[str, GridInterpolator]:
        dims = tuple(a.dim for a in self._axes)
        nodes = [self._nodes(d) for d in dims]
        out = {}
        for col in self._columns:
            values = np.asarray(self.ds[col.var].transpose(*dims).values, dtype=float)
            if "SIGMA" in col.var.upper():
                values = np.where(values == 0, 1.0, values)
            out[col.var.lower()] = GridInterpolator(
                nodes, values, scales=("log", "lin"), fill_value=None
            )
        return out

    def evaluate_parameters(self, energy_true, offset) -> dict[str, np.ndarray]:
        """Interpolated parameters (lower-case names) at true energy (TeV) and offset (deg)."""
        return {name: self._interpolators[name](energy_true, offset) for name in self._params}

    def evaluate(self, energy_true, offset, rad) -> np.ndarray:
        """PSF density in sr^-1 at true energy (TeV), offset (deg) and rad (deg), broadcast."""
        return self._density(rad, **self.evaluate_parameters(energy_true, offset))

    def containment(self, energy_true, offset, rad) -> np.ndarray:
        """Fraction of the PSF within ``rad`` (deg) at true energy (TeV) and offset (deg)."""
        return self._containment(rad, **self.evaluate_parameters(energy_true, offset))

    def containment_radius(
        self, fraction, energy_true, offset, *, factor: int = 20, rad_edges=DEFAULT_RAD_EDGES
    ) -> np.ndarray:
        """Radius (deg) containing ``fraction``, on ``rad_edges`` split into ``factor`` sub-bins."""
        rad = upsampled_centres(rad_edges, factor)
        return _radius_on_grid(self.containment, rad, fraction, energy_true, offset)


class PSF3Gauss(_ParametricPSF):
    """Triple-Gaussian PSF (GADF ``psf_3gauss``).

    Dataset variables ``SCALE, SIGMA_1, SIGMA_2, SIGMA_3, AMPL_2, AMPL_3``
    with dims (energy_true, offset); sigmas in deg, amplitudes dimensionless,
    SCALE in the file's unit (it cancels in the normalisation).

    Parameters
    ----------
    ds : `xarray.Dataset`
        The dataset (see ``docs/data-model.md``).
    """

    hdu_class: ClassVar[str] = "psf_3gauss"
    _hduclas4: ClassVar[str] = "PSF_3GAUSS"
    _extname: ClassVar[str] = "PSF_2D_GAUSS"
    _columns: ClassVar[tuple[ColumnSpec, ...]] = (
        ColumnSpec("SCALE", "SCALE", ""),
        ColumnSpec("SIGMA_1", "SIGMA_1", "deg"),
        ColumnSpec("SIGMA_2", "SIGMA_2", "deg"),
        ColumnSpec("SIGMA_3", "SIGMA_3", "deg"),
        ColumnSpec("AMPL_2", "AMPL_2", ""),
        ColumnSpec("AMPL_3", "AMPL_3", ""),
    )
    _params = ("scale", "sigma_1", "sigma_2", "sigma_3", "ampl_2", "ampl_3")
    _density = staticmethod(multi_gauss_density)
    _containment = staticmethod(multi_gauss_containment)

    def __init__(self, ds) -> None:
        super().__init__(ds)
        # SCALE may carry any unit; write it back as it came
        unit = ds["SCALE"].attrs.get("units", "")
        self._columns = (ColumnSpec("SCALE", "SCALE", unit), *type(self)._columns[1:])

    @classmethod
    def _column_specs(cls, hdu: fits.BinTableHDU) -> tuple[ColumnSpec, ...]:
        cols = {c.name.upper(): c for c in hdu.columns}
        unit = (cols["SCALE"].unit or "").strip() if "SCALE" in cols else ""
        if unit:
            try:
                u.Unit(unit, parse_strict="raise")
            except ValueError:
                unit = ""  # let the reader raise its UnitError
        return (ColumnSpec("SCALE", "SCALE", unit), *cls._columns[1:])

    @classmethod
    def create(
        cls,
        energy_true_edges,
        offset_edges,
        *,
        scale,
        sigma_1,
        sigma_2,
        sigma_3,
        ampl_2,
        ampl_3,
        scale_unit: str = "",
        meta: Mapping | None = None,
    ) -> PSF3Gauss:
        """Build from arrays of shape (n_energy, n_offset).

        Parameters
        ----------
        energy_true_edges, offset_edges : array_like or (lo, hi)
            ``n + 1`` edges (TeV, deg) or ``_LO``/``_HI`` pairs.
        scale, sigma_1, sigma_2, sigma_3, ampl_2, ampl_3 : ndarray
            The GADF parameters (sigmas in deg); dtypes are kept.
        scale_unit : str
            Unit string of SCALE.
        meta : mapping, optional
            Extra dataset attributes.
        """
        data = {
            "SCALE": scale,
            "SIGMA_1": sigma_1,
            "SIGMA_2": sigma_2,
            "SIGMA_3": sigma_3,
            "AMPL_2": ampl_2,
            "AMPL_3": ampl_3,
        }
        psf = cls._create({"energy_true": energy_true_edges, "offset": offset_edges}, data, meta)
        psf.ds["SCALE"].attrs["units"] = scale_unit
        return cls(psf.ds)


class PSFKing(_ParametricPSF):
    """King-profile PSF (GADF ``psf_king``): ``GAMMA`` and ``SIGMA`` (deg) over (energy_true, offset).

    Parameters
    ----------
    ds : `xarray.Dataset`
        The dataset (see ``docs/data-model.md``).
    """

    hdu_class: ClassVar[str] = "psf_king"
    _hduclas4: ClassVar[str] = "PSF_KING"
    _extname: ClassVar[str] = "PSF_2D_KING"
    _columns: ClassVar[tuple[ColumnSpec, ...]] = (
        ColumnSpec("GAMMA", "GAMMA", ""),
        ColumnSpec("SIGMA", "SIGMA", "deg"),
    )
    _params = ("gamma", "sigma")
    _density = staticmethod(king_density)
    _containment = staticmethod(king_containment)

    @classmethod
    def create(
        cls, energy_true_edges, offset_edges, *, gamma, sigma, meta: Mapping | None = None
    ) -> PSFKing:
        """Build from arrays of shape (n_energy, n_offset): ``gamma`` and ``sigma`` (deg).

        ``energy_true_edges`` and ``offset_edges`` are ``n + 1`` edges (TeV, deg)
        or ``_LO``/``_HI`` pairs; dtypes are kept.
        """
        data = {"GAMMA": gamma, "SIGMA": sigma}
        return cls._create({"energy_true": energy_true_edges, "offset": offset_edges}, data, meta)

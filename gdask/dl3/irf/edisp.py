"""Energy dispersion versus true energy, migration and offset (GADF ``edisp_2d``)."""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

import numpy as np

from gdask.dl3.irf.base import (
    ENERGY_TRUE_AXIS,
    GADF_IRF_KEYWORDS,
    OFFSET_AXIS,
    TableIRF,
    point_like_attrs,
)
from gdask.dl3.irf.table import AxisSpec, ColumnSpec
from gdask.interp import GridInterpolator

__all__ = ["EnergyDispersion2D", "reco_bin_probabilities"]


def reco_bin_probabilities(
    pdf: np.ndarray,
    migra_edges: np.ndarray,
    energy_true: np.ndarray,
    energy_edges: np.ndarray,
    *,
    threshold: float = 1e-8,
) -> np.ndarray:
    """Probability per reconstructed-energy bin from a migration pdf histogram.

    The pdf values (one per migration bin) are normalised to unit integral
    over migration; their cumulative integral is interpolated linearly in
    migration between the bin edges (0 below the first, 1 above the last) at
    ``energy_edges / energy_true`` and differenced. Negative differences are
    set to 0 and values below ``threshold`` too (the scheme of Gammapy 2.1's
    ``EDispMap.to_edisp_kernel_map``).

    Parameters
    ----------
    pdf : ndarray, shape (..., n_migra)
        Migration pdf at the migration bin centres.
    migra_edges : ndarray, shape (n_migra + 1,)
    energy_true : ndarray, shape (...)
        True energies (any unit, as ``energy_edges``).
    energy_edges : ndarray, shape (n_reco + 1,)
    threshold : float

    Returns
    -------
    ndarray, shape (..., n_reco)
    """
    pdf = np.asarray(pdf, dtype=float)
    migra_edges = np.asarray(migra_edges, dtype=float)
    weights = pdf * np.diff(migra_edges)
    cum = np.cumsum(weights, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        normed = np.nan_to_num(weights / np.max(cum, axis=-1, keepdims=True))
    cdf = np.concatenate([np.zeros(normed.shape[:-1] + (1,)), np.cumsum(normed, axis=-1)], axis=-1)

    migra = np.asarray(energy_edges, dtype=float) / np.asarray(energy_true, dtype=float)[..., None]
    lead = np.broadcast_shapes(cdf.shape[:-1], migra.shape[:-1])
    cdf = np.broadcast_to(cdf, lead + cdf.shape[-1:])
    migra = np.broadcast_to(migra, lead + migra.shape[-1:])
    i = np.clip(np.searchsorted(migra_edges, migra, side="right") - 1, 0, migra_edges.size - 2)
    with np.errstate(invalid="ignore"):
        t = np.clip((migra - migra_edges[i]) / (migra_edges[i + 1] - migra_edges[i]), 0.0, 1.0)
    lo = np.take_along_axis(cdf, i, axis=-1)
    hi = np.take_along_axis(cdf, i + 1, axis=-1)
    values = lo + (hi - lo) * t
    probs = np.clip(np.diff(values, axis=-1), 0.0, np.inf)
    probs[probs < threshold] = 0.0
    return probs


class EnergyDispersion2D(TableIRF):
    """Migration pdf ``migration_pdf(energy_true, migra, offset)`` (dimensionless).

    ``migra`` is reconstructed over true energy. Evaluation interpolates
    linearly in log(energy_true), migra and offset between bin centres,
    clips at zero, and is 0 where the offset is outside its edges or both
    energy_true and migra are outside theirs (Gammapy 2.1 semantics).
    """

    hdu_class: ClassVar[str] = "edisp_2d"
    extname: ClassVar[str] = "ENERGY DISPERSION"
    axes: ClassVar[tuple[AxisSpec, ...]] = (
        ENERGY_TRUE_AXIS,
        AxisSpec("MIGRA", "migra", ""),
        OFFSET_AXIS,
    )
    columns: ClassVar[tuple[ColumnSpec, ...]] = (ColumnSpec("MATRIX", "migration_pdf", ""),)
    keywords: ClassVar[dict[str, str]] = {
        **GADF_IRF_KEYWORDS,
        "HDUCLAS2": "EDISP",
        "HDUCLAS3": "FULL-ENCLOSURE",
        "HDUCLAS4": "EDISP_2D",
    }

    @classmethod
    def create(
        cls,
        energy_true_edges: np.ndarray,
        migra_edges: np.ndarray,
        offset_edges: np.ndarray,
        migration_pdf: np.ndarray,
        *,
        point_like: bool = False,
        rad_max: float | None = None,
    ) -> EnergyDispersion2D:
        """Create from edges (TeV, 1, deg) and a pdf of shape ``(n_energy, n_migra, n_offset)``."""
        return cls._create(
            {"energy_true": energy_true_edges, "migra": migra_edges, "offset": offset_edges},
            {"migration_pdf": migration_pdf},
            point_like_attrs(point_like, rad_max),
        )

    @cached_property
    def interpolator(self) -> GridInterpolator:
        """The table interpolator behind `evaluate` (nodes, scaled values, edges; cached)."""
        return self._grid_interpolator(
            "migration_pdf", ["log", "lin", "lin"], outside_mode=lambda f: (f[0] & f[1]) | f[2]
        )

    def evaluate(self, energy_true, migra, offset) -> np.ndarray:
        """Migration pdf at true energies (TeV), migrations and offsets (deg), broadcast together."""
        return self.interpolator(energy_true, migra, offset)

    def reco_probabilities(
        self, energy_true, offset, energy_edges, *, threshold: float = 1e-8
    ) -> np.ndarray:
        """Probability to reconstruct a true energy in each reconstructed-energy bin.

        Parameters
        ----------
        energy_true : array_like (TeV)
            True energies, shape ``S``.
        offset : array_like (deg)
            Offsets, broadcastable to ``S``.
        energy_edges : array_like (TeV), shape (n_reco + 1,)
            Reconstructed-energy bin edges.
        threshold : float
            Probabilities below it are set to 0.

        Returns
        -------
        ndarray, shape ``S + (n_reco,)``
            As the rows of Gammapy 2.1's ``EnergyDispersion2D.to_edisp_kernel``
            (evaluated at the migration bin centres, normalised, integrated per bin).
        """
        energy_true, offset = np.broadcast_arrays(
            np.asarray(energy_true, dtype=float), np.asarray(offset, dtype=float)
        )
        pdf = self.evaluate(energy_true[..., None], self.nodes("migra"), offset[..., None])
        return reco_bin_probabilities(
            pdf,
            self.edges("migra"),
            energy_true,
            np.asarray(energy_edges, float),
            threshold=threshold,
        )

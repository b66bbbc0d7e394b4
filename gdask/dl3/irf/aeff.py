"""Effective area versus true energy and offset (GADF ``aeff_2d``)."""

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

__all__ = ["EffectiveArea2D"]


class EffectiveArea2D(TableIRF):
    """Effective area ``effective_area(energy_true, offset)`` in m2.

    Evaluation interpolates linearly in log(energy) and offset between bin
    centres, extrapolates linearly up to the outer bin edges, clips at zero
    and is 0 outside the edges (Gammapy 2.1 ``EffectiveAreaTable2D.evaluate``).

    Point-like IRFs (``HDUCLAS3 = POINT-LIKE``) have ``attrs["point_like"]``
    and, when the header gives a constant ``RAD_MAX``, ``attrs["rad_max"]`` (deg).
    """

    hdu_class: ClassVar[str] = "aeff_2d"
    extname: ClassVar[str] = "EFFECTIVE AREA"
    axes: ClassVar[tuple[AxisSpec, ...]] = (ENERGY_TRUE_AXIS, OFFSET_AXIS)
    columns: ClassVar[tuple[ColumnSpec, ...]] = (ColumnSpec("EFFAREA", "effective_area", "m2"),)
    keywords: ClassVar[dict[str, str]] = {
        **GADF_IRF_KEYWORDS,
        "HDUCLAS2": "EFF_AREA",
        "HDUCLAS3": "FULL-ENCLOSURE",
        "HDUCLAS4": "AEFF_2D",
    }

    @classmethod
    def create(
        cls,
        energy_true_edges: np.ndarray,
        offset_edges: np.ndarray,
        effective_area: np.ndarray,
        *,
        point_like: bool = False,
        rad_max: float | None = None,
    ) -> EffectiveArea2D:
        """Create from edges (TeV, deg) and values (m2) of shape ``(n_energy, n_offset)``.

        Edges may be ``n + 1`` contiguous values or a ``(lo, hi)`` pair.
        """
        return cls._create(
            {"energy_true": energy_true_edges, "offset": offset_edges},
            {"effective_area": effective_area},
            point_like_attrs(point_like, rad_max),
        )

    @cached_property
    def interpolator(self) -> GridInterpolator:
        """The table interpolator behind `evaluate` (nodes, scaled values, edges; cached)."""
        return self._grid_interpolator("effective_area", ["log", "lin"], values_scale="lin")

    def evaluate(self, energy_true, offset) -> np.ndarray:
        """Effective area (m2) at true energies (TeV) and offsets (deg), broadcast together."""
        return self.interpolator(energy_true, offset)

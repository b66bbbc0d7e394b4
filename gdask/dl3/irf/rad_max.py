"""Directional cut versus reconstructed energy and offset (GADF ``rad_max_2d``)."""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

import numpy as np

from gdask.dl3.irf.base import GADF_IRF_KEYWORDS, OFFSET_AXIS, TableIRF
from gdask.dl3.irf.table import AxisSpec, ColumnSpec
from gdask.errors import FormatError
from gdask.interp import GridInterpolator

__all__ = ["RadMax2D"]


class RadMax2D(TableIRF):
    """Cut radius ``rad_max(energy, offset)`` in deg, for point-like IRFs.

    Evaluation is that of Gammapy 2.1's ``RadMax2D``: linear in log(energy)
    and offset between bin centres (single-bin axes are constant), clipped at
    zero, 0 outside the edges. A table made by `from_irf` from a constant
    ``RAD_MAX`` header keyword (``attrs["fixed"]``) is that constant everywhere.
    """

    hdu_class: ClassVar[str] = "rad_max_2d"
    extname: ClassVar[str] = "RAD_MAX"
    axes: ClassVar[tuple[AxisSpec, ...]] = (
        AxisSpec("ENERG", "energy", "TeV", log=True),
        OFFSET_AXIS,
    )
    columns: ClassVar[tuple[ColumnSpec, ...]] = (ColumnSpec("RAD_MAX", "rad_max", "deg"),)
    keywords: ClassVar[dict[str, str]] = {
        **GADF_IRF_KEYWORDS,
        "HDUCLAS2": "RAD_MAX",
        "HDUCLAS3": "POINT-LIKE",
        "HDUCLAS4": "RAD_MAX_2D",
    }

    @classmethod
    def _extra_attrs(cls, header, *, file, obs_id, hdu_name) -> dict:
        # the table itself is the cut; a RAD_MAX keyword here would be redundant
        return {"point_like": True}

    def _keywords(self) -> dict:
        return dict(self.keywords)

    @classmethod
    def create(
        cls, energy_edges: np.ndarray, offset_edges: np.ndarray, rad_max: np.ndarray
    ) -> RadMax2D:
        """Create from edges (TeV, deg) and cut radii (deg) of shape ``(n_energy, n_offset)``."""
        return cls._create(
            {"energy": energy_edges, "offset": offset_edges},
            {"rad_max": rad_max},
            {"point_like": True},
        )

    @classmethod
    def from_irf(cls, irf) -> RadMax2D:
        """A constant cut from a point-like IRF's ``RAD_MAX`` keyword (one bin spanning its axes).

        Parameters
        ----------
        irf : `EffectiveArea2D` or `EnergyDispersion2D`
            Point-like IRF with ``attrs["rad_max"]``.
        """
        value = irf.ds.attrs.get("rad_max")
        if not irf.ds.attrs.get("point_like") or value is None:
            raise FormatError(
                "RadMax2D.from_irf needs a point-like IRF with a RAD_MAX keyword",
                obs_id=irf.ds.attrs.get("obs_id"),
                field="RAD_MAX",
            )
        e = irf.ds["energy_true_bounds"].values
        o = irf.ds["offset_bounds"].values
        return cls._create(
            {"energy": (e[:1, 0], e[-1:, 1]), "offset": (o[:1, 0], o[-1:, 1])},
            {"rad_max": np.array([[float(value)]])},
            {"point_like": True, "fixed": True},
        )

    @property
    def is_fixed(self) -> bool:
        """Whether the cut is a single constant."""
        return bool(self.ds.attrs.get("fixed", False))

    @cached_property
    def interpolator(self) -> GridInterpolator:
        """The table interpolator behind `evaluate` (nodes, scaled values, edges; cached)."""
        return self._grid_interpolator("rad_max", ["log", "lin"])

    def evaluate(self, energy, offset) -> np.ndarray:
        """Cut radius (deg) at reconstructed energies (TeV) and offsets (deg), broadcast."""
        if self.is_fixed:
            shape = np.broadcast_shapes(np.shape(energy), np.shape(offset))
            return np.full(shape, float(self.ds["rad_max"].values.ravel()[0]))
        return self.interpolator(energy, offset)

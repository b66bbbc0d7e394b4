"""GADF DL3 instrument response functions.

`IRF_CLASSES` maps a GADF HDU class (``"aeff_2d"``, ...) to the gdask class
reading it; `read_irf` dispatches on it. To register another IRF class, add
its entry to `IRF_CLASSES` below.
"""

from __future__ import annotations

from gdask.dl3.irf.aeff import EffectiveArea2D
from gdask.dl3.irf.bkg import Background2D, Background3D
from gdask.dl3.irf.edisp import EnergyDispersion2D
from gdask.dl3.irf.psf import PSFTable
from gdask.dl3.irf.psf_analytic import PSF3Gauss, PSFKing
from gdask.dl3.irf.rad_max import RadMax2D
from gdask.errors import FormatError

__all__ = [
    "IRF_CLASSES",
    "read_irf",
    "EffectiveArea2D",
    "EnergyDispersion2D",
    "Background3D",
    "Background2D",
    "RadMax2D",
    "PSFTable",
    "PSF3Gauss",
    "PSFKing",
]

IRF_CLASSES: dict[str, type] = {
    EffectiveArea2D.hdu_class: EffectiveArea2D,
    EnergyDispersion2D.hdu_class: EnergyDispersion2D,
    Background3D.hdu_class: Background3D,
    Background2D.hdu_class: Background2D,
    RadMax2D.hdu_class: RadMax2D,
    PSFTable.hdu_class: PSFTable,
    PSF3Gauss.hdu_class: PSF3Gauss,
    PSFKing.hdu_class: PSFKing,
}


def read_irf(hdu, hdu_class: str, *, file: str | None = None, obs_id: int | None = None):
    """Read an IRF HDU as the gdask class registered for ``hdu_class`` (case-insensitive).

    Raises
    ------
    FormatError
        If no class is registered for ``hdu_class``.
    """
    key = str(hdu_class).strip().lower()
    cls = IRF_CLASSES.get(key)
    if cls is None:
        raise FormatError(
            f"unknown IRF HDU class {hdu_class!r}; known: {sorted(IRF_CLASSES)}",
            file=file,
            obs_id=obs_id,
            field=getattr(hdu, "name", None),
        )
    return cls.from_hdu(hdu, file=file, obs_id=obs_id)

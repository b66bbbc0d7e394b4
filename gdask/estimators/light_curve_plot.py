"""Light-curve plot: flux (or another SED quantity) per time bin, upper limits as arrows.

Matplotlib's Agg canvas (a file only, no pyplot state), as `gdask.plotting`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .light_curve import LightCurve

__all__ = ["plot_light_curve"]

_UNITS = {
    "norm": "",
    "dnde": "cm-2 s-1 TeV-1",
    "flux": "cm-2 s-1",
    "eflux": "TeV cm-2 s-1",
    "e2dnde": "TeV cm-2 s-1",
}


def plot_light_curve(
    lc: LightCurve, path: str | Path, sed_type: str = "flux", energy_index: int = 0
) -> Path:
    """Write a PNG of the light curve in one energy bin.

    Points with asymmetric errors (``norm_errn``/``norm_errp`` when estimated,
    else ``norm_err``) at the bin centres with the bin width as x error; bins
    flagged ``is_ul`` as downward arrows at ``norm_ul``. Time axis: MJD (UTC).

    Examples
    --------
    >>> plot_light_curve(lc, "lc.png", sed_type="flux")  # doctest: +SKIP
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from gdask.plotting import _save

    if sed_type not in _UNITS:
        raise ValueError(f"unknown sed type {sed_type!r}; use one of {list(_UNITS)}")
    e = energy_index
    t0, t1 = lc.time_min.utc.mjd, lc.time_max.utc.mjd
    x, xerr = 0.5 * (t0 + t1), 0.5 * (t1 - t0)
    value = lc.quantity(sed_type)[:, e]
    if "norm_errn" in lc.data:
        yerr = np.array(
            [lc.quantity(sed_type, "_errn")[:, e], lc.quantity(sed_type, "_errp")[:, e]]
        )
    else:
        yerr = np.array([lc.quantity(sed_type, "_err")[:, e]] * 2)
    ul = lc.is_ul[:, e] if "norm_ul" in lc.data else np.zeros(len(lc), bool)

    fig = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(fig)
    ax: Any = fig.subplots()
    ok = ~ul
    ax.errorbar(x[ok], value[ok], xerr=xerr[ok], yerr=yerr[:, ok], fmt="o", ms=3, color="C0")
    if ul.any():
        up = lc.quantity(sed_type, "_ul")[:, e]
        ax.errorbar(
            x[ul], up[ul], xerr=xerr[ul], yerr=0.2 * up[ul], uplims=True, fmt="none", color="C0"
        )
    unit = _UNITS[sed_type]
    lo, hi = lc.e_min[e], lc.e_max[e]
    ax.set_ylabel(f"{sed_type} [{unit}]" if unit else sed_type)
    ax.set_xlabel("Time [MJD, UTC]")
    ax.set_title(f"{lo:.3g}-{hi:.3g} TeV")
    ax.grid(alpha=0.3)
    return _save(fig, path)

"""Result plots (matplotlib's Agg canvas: files only, no display, no pyplot state).

The functions take plain arrays (prepared by `gdask.analysis.results`) and
write one PNG each:

* `plot_spectrum`: E^2 dN/dE of the best fit with its 1-sigma butterfly,
  approximate flux points per analysis, an optional reference (injected)
  spectrum, and a residual panel (points / model - 1).
* `plot_sed`: flux points (`gdask.datasets.sed.FluxPoints`) with asymmetric
  errors, upper limits as arrows, and a model with its butterfly.
* `plot_counts`: counts and predicted counts (signal + background) per
  reconstructed-energy bin, with a residual panel
  ``(counts - npred) / sqrt(npred)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_spectrum", "plot_counts", "plot_sed"]

_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6")


def _figure(figsize: tuple[float, float]) -> tuple[Any, Any, Any]:
    """A figure on an Agg canvas (never pyplot: no global backend switch) with two panels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    ax, axr = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    return fig, ax, axr


def plot_spectrum(
    path: str | Path,
    energy: np.ndarray,
    dnde: np.ndarray,
    dnde_err: np.ndarray,
    points: Sequence[tuple[str, dict[str, np.ndarray]]] = (),
    *,
    title: str = "",
    reference: np.ndarray | None = None,
) -> Path:
    """Best-fit E^2 dN/dE with its butterfly, flux points and residuals.

    Parameters
    ----------
    path : str or Path
        PNG file to write.
    energy : ndarray
        Energies (TeV) of the model curve.
    dnde, dnde_err : ndarray
        Model dN/dE (cm-2 s-1 TeV-1) and its 1-sigma error at ``energy``.
    points : sequence of (label, dict)
        Flux points per analysis: ``energy``, ``energy_lo``, ``energy_hi``, ``dnde``, ``dnde_err``.
    title : str
    reference : ndarray, optional
        A reference dN/dE at ``energy`` (e.g. the injected model), dashed.
    """
    fig, ax, axr = _figure((7, 6.5))
    e2 = energy**2
    ax.plot(energy, e2 * dnde, color="k", lw=1.5, label="best fit")
    if np.all(np.isfinite(dnde_err)):
        ax.fill_between(
            energy,
            e2 * (dnde - dnde_err),
            e2 * (dnde + dnde_err),
            color="k",
            alpha=0.2,
            lw=0,
            label="1σ (covariance)",
        )
        axr.fill_between(energy, -dnde_err / dnde, dnde_err / dnde, color="k", alpha=0.2, lw=0)
    if reference is not None:
        ax.plot(energy, e2 * reference, color="C3", ls="--", lw=1.2, label="injected")
        axr.plot(energy, reference / dnde - 1, color="C3", ls="--", lw=1.2)
    axr.axhline(0, color="k", lw=1)
    for i, (label, p) in enumerate(points):
        if p["energy"].size == 0:
            continue
        c = _COLORS[i % len(_COLORS)]
        e = p["energy"]
        xerr = np.vstack([e - p["energy_lo"], p["energy_hi"] - e])
        ax.errorbar(
            e,
            e**2 * p["dnde"],
            yerr=e**2 * p["dnde_err"],
            xerr=xerr,
            fmt="o",
            ms=4,
            color=c,
            label=f"{label} (excess / npred x model)",
        )
        model_at = np.interp(np.log(e), np.log(energy), dnde)
        axr.errorbar(
            e,
            p["dnde"] / model_at - 1,
            yerr=p["dnde_err"] / model_at,
            xerr=xerr,
            fmt="o",
            ms=4,
            color=c,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    finite = e2 * dnde
    lo = np.nanmin(finite[finite > 0]) if np.any(finite > 0) else 1e-13
    hi = np.nanmax(finite) if np.any(finite > 0) else 1e-10
    ax.set_ylim(lo / 5, hi * 5)
    ax.set_ylabel("E² dN/dE [TeV cm⁻² s⁻¹]")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, which="both")
    axr.set_ylim(-1, 1)
    axr.set_xlabel("Energy [TeV]")
    axr.set_ylabel("data / model - 1")
    axr.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_counts(
    path: str | Path, edges: np.ndarray, spectrum: dict[str, np.ndarray], *, title: str = ""
) -> Path:
    """Counts vs predicted counts per reco-energy bin, with ``(n - mu) / sqrt(mu)`` residuals.

    Parameters
    ----------
    path : str or Path
        PNG file to write.
    edges : ndarray
        Reconstructed-energy edges (TeV).
    spectrum : dict
        ``counts``, ``npred_sig``, ``npred_bkg``, ``mask`` per bin (bins outside
        the mask are drawn faint).
    title : str
    """
    fig, ax, axr = _figure((7, 6))
    centre = np.sqrt(edges[:-1] * edges[1:])
    counts = np.asarray(spectrum["counts"], float)
    sig, bkg = np.asarray(spectrum["npred_sig"], float), np.asarray(spectrum["npred_bkg"], float)
    npred = sig + bkg
    mask = np.asarray(spectrum["mask"], bool)
    ax.stairs(npred, edges, color="C0", lw=1.5, label="npred (signal + background)")
    ax.stairs(bkg, edges, color="C1", lw=1.2, ls="--", label="npred background")
    ax.stairs(sig, edges, color="C2", lw=1.2, ls=":", label="npred signal")
    err = np.sqrt(np.clip(counts, 1, None))
    ax.errorbar(
        centre[mask],
        counts[mask],
        yerr=err[mask],
        fmt="o",
        ms=4,
        color="k",
        label="counts (fitted bins)",
    )
    if np.any(~mask):
        ax.errorbar(
            centre[~mask],
            counts[~mask],
            yerr=err[~mask],
            fmt="o",
            ms=3,
            color="0.6",
            label="counts (not fitted)",
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        res = np.where(npred > 0, (counts - npred) / np.sqrt(npred), np.nan)
    axr.axhline(0, color="k", lw=1)
    axr.errorbar(centre[mask], res[mask], yerr=np.ones(mask.sum()), fmt="o", ms=4, color="k")
    ax.set_xscale("log")
    pos = np.concatenate([counts[counts > 0], npred[npred > 0]])
    if pos.size:
        ax.set_yscale("log")
        ax.set_ylim(max(pos.min() / 3, 0.3), pos.max() * 3)
    ax.set_ylabel("counts per bin")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, which="both")
    lim = max(3.0, float(np.nanmax(np.abs(res[mask]))) + 1) if np.any(mask) else 3.0
    axr.set_ylim(-lim, lim)
    axr.set_xlabel("Reconstructed energy [TeV]")
    axr.set_ylabel("(n - μ) / √μ")
    axr.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_sed(
    path: str | Path,
    fp: Any,
    model: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    *,
    sed_type: str = "e2dnde",
    title: str = "",
) -> Path:
    """An SED: points (errn/errp, else err), upper limits as arrows, model and butterfly.

    Parameters
    ----------
    path : str or Path
        PNG file to write.
    fp : FluxPoints
        The points (`gdask.datasets.sed.FluxPoints`); ``is_ul`` points are drawn
        at their ``_ul`` value as downward arrows.
    model : (energy, dnde, dnde_err), optional
        A model curve (TeV, cm-2 s-1 TeV-1) and its 1-sigma error (e.g.
        `gdask.analysis.results.butterfly` of the fit covariance).
    sed_type : {"e2dnde", "dnde"}

    Examples
    --------
    >>> plot_sed("sed.png", fp, butterfly(src, r.names, r.covariance, energy))  # doctest: +SKIP
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if sed_type not in ("e2dnde", "dnde"):
        raise ValueError(f"sed_type must be 'e2dnde' or 'dnde', not {sed_type!r}")
    fig = Figure(figsize=(7, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    e = fp.e_ref
    scale = e**2 if sed_type == "e2dnde" else np.ones_like(e)
    value = fp.quantity("dnde") * scale
    d = fp.data
    if "norm_errn" in d and "norm_errp" in d:
        yerr = np.vstack([fp.quantity("dnde", "_errn"), fp.quantity("dnde", "_errp")]) * scale
    else:
        yerr = np.vstack([fp.quantity("dnde", "_err")] * 2) * scale
    xerr = np.vstack([e - fp.e_min, fp.e_max - e])
    ul = fp.is_ul & np.isfinite(d["norm_ul"]) if "norm_ul" in d else np.zeros(e.size, bool)
    ok = ~ul & np.isfinite(value)
    ax.errorbar(
        e[ok],
        value[ok],
        yerr=yerr[:, ok],
        xerr=xerr[:, ok],
        fmt="o",
        ms=4,
        color="C0",
        label="flux points",
    )
    if ul.any():
        up = fp.quantity("dnde", "_ul")[ul] * scale[ul]
        ax.errorbar(
            e[ul],
            up,
            yerr=0.4 * up,
            xerr=xerr[:, ul],
            uplims=True,
            fmt="none",
            color="C0",
            label=f"UL ({fp.n_sigma_ul:g}σ)",
        )
    if model is not None:
        energy, dnde, err = (np.asarray(a, float) for a in model)
        ms = energy**2 if sed_type == "e2dnde" else np.ones_like(energy)
        ax.plot(energy, ms * dnde, color="k", lw=1.2, label="model")
        if np.all(np.isfinite(err)):
            ax.fill_between(
                energy,
                ms * (dnde - err),
                ms * (dnde + err),
                color="k",
                alpha=0.2,
                lw=0,
                label="1σ (covariance)",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel("E² dN/dE [TeV cm⁻² s⁻¹]" if sed_type == "e2dnde" else "dN/dE [cm⁻² s⁻¹ TeV⁻¹]")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path

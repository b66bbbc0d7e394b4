"""Differential sensitivity (CTA convention) of a 1D or 3D dataset.

Per reconstructed-energy bin, the smallest excess that is detected at
``n_sigma`` (Li & Ma / WStat significance of ``n_on = excess + alpha n_off``
against the OFF counts; Cash against a known background), raised to at
least ``gamma_min`` counts and to at least ``bkg_syst_fraction`` of the
background.  The flux is that excess over the counts predicted by the
reference spectrum (power law of index 2) through exposure and energy
dispersion, reported as ``E^2 dN/dE`` at the bin centre (erg cm-2 s-1),
with the limiting criterion (``significance``, ``gamma`` or ``bkg``).
These are Gammapy's SensitivityEstimator definitions.

A 3D dataset is summed over an ON region (a pixel mask) first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from gdask.errors import GdaskError
from gdask.models import PowerLawSpectralModel
from gdask.stats import cash_significance, wstat_significance

__all__ = ["SensitivityEstimator", "excess_matching_significance", "apply_count_thresholds"]

Array = NDArray[np.float64]


def excess_matching_significance(
    n_sigma: float,
    background: Array,
    n_off: Array | None = None,
    alpha: Array | None = None,
    n_iter: int = 200,
) -> Array:
    """Excess whose significance over the background is ``n_sigma`` (bisection).

    With ``n_off``/``alpha``: WStat (Li & Ma) with ``n_on = s + alpha n_off``;
    otherwise Cash against the known ``background``.  NaN where the
    background is 0.

    Examples
    --------
    >>> s = excess_matching_significance(5.0, np.array([100.0]))
    >>> round(float(s[0]), 3)
    52.599
    """
    background = np.asarray(background, float)

    def signif(s: Array) -> Array:
        if n_off is None or alpha is None:
            return cash_significance(s + background, background)
        return wstat_significance(s + alpha * n_off, n_off, alpha)

    lo = np.zeros(background.shape)
    hi = np.maximum(n_sigma * np.sqrt(background), 1.0)
    for _ in range(200):
        low = signif(hi) < n_sigma
        if not low.any():
            break
        hi = np.where(low, 2 * hi, hi)
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        below = signif(mid) < n_sigma
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return np.where(background > 0, 0.5 * (lo + hi), 0.0)


def apply_count_thresholds(
    excess: Array, background: Array, gamma_min: float, bkg_syst_fraction: float
) -> tuple[Array, NDArray[np.str_]]:
    """Raise the excess to ``gamma_min`` and to ``bkg_syst_fraction * background``.

    Returns the excess and the limiting criterion per bin.
    """
    excess = np.where(excess < gamma_min, gamma_min, np.asarray(excess, float))
    syst = bkg_syst_fraction * np.asarray(background, float)
    excess = np.where(excess < syst, syst, excess)
    crit = np.full(excess.shape, "significance", dtype="U12")
    crit[excess == gamma_min] = "gamma"
    crit[excess == syst] = "bkg"
    return excess, crit


@dataclass
class SensitivityEstimator:
    """Differential sensitivity per reco-energy bin.

    Parameters
    ----------
    spectral_model : SpectralModel, optional
        Spectrum shape (default power law, index 2).
    n_sigma, gamma_min, bkg_syst_fraction : float
        5 sigma, 10 counts and 5 % background systematics by default.

    Examples
    --------
    >>> est = SensitivityEstimator()
    >>> # table = est.run(spectrum_dataset_onoff)
    """

    spectral_model: Any = None
    n_sigma: float = 5.0
    gamma_min: float = 10.0
    bkg_syst_fraction: float = 0.05

    def _arrays(self, dataset: Any, region_mask: NDArray[np.bool_] | None) -> dict[str, Array]:
        ds = dataset.ds
        onoff = "counts_off" in ds
        name = getattr(dataset, "name", "") or "dataset"
        if not onoff and "background" not in ds:
            raise GdaskError(f"{name}: neither OFF counts nor a background", field="background")
        if "effective_area" not in ds and "exposure" not in ds:
            raise GdaskError(f"{name}: no exposure (effective area)", field="exposure")
        edisp = np.asarray(ds["edisp"].values, float) if "edisp" in ds else None
        if "effective_area" in ds:  # 1D OGIP
            expo = np.asarray(dataset.exposure.values, float)
        else:
            expo = np.asarray(ds["exposure"].values, float)
        n_off: NDArray[Any] | None
        alpha: NDArray[Any] | None
        if onoff:
            n_off = np.asarray(ds["counts_off"].values, float)
            alpha = np.asarray(dataset.alpha.values, float)
            bkg = alpha * n_off
        else:
            n_off = alpha = None
            bkg = np.asarray(ds["background"].values, float)
        if bkg.ndim == 3:  # map dataset: sum over the ON region
            from gdask.estimators.ts_map import _center_edisp

            mask = np.ones(bkg.shape[1:], bool) if region_mask is None else region_mask
            bkg_r = bkg[:, mask].sum(axis=1)
            if n_off is not None:
                n_off = n_off[:, mask].sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    alpha = np.where(n_off > 0, bkg_r / n_off, 0.0)
            bkg = bkg_r
            expo = expo[:, mask].mean(axis=1)
            edisp = _center_edisp(dataset)
        return {"bkg": bkg, "n_off": n_off, "alpha": alpha, "expo": expo, "edisp": edisp}

    def run(self, dataset: Any, region_mask: NDArray[np.bool_] | None = None) -> Table:
        """Table ``e_ref, e_min, e_max, e2dnde, excess, background, criterion``.

        ``region_mask`` (``(ny, nx)`` bool) selects the ON pixels of a map dataset.
        """
        spectral = self.spectral_model or PowerLawSpectralModel(index=2.0, amplitude=1.0)
        a = self._arrays(dataset, region_mask)
        excess = excess_matching_significance(self.n_sigma, a["bkg"], a["n_off"], a["alpha"])
        excess, crit = apply_count_thresholds(
            excess, a["bkg"], self.gamma_min, self.bkg_syst_fraction
        )
        e_true = np.asarray(dataset.energy_axis_true.axis.edges, float)
        e_reco = np.asarray(dataset.energy_axis.axis.edges, float)
        scale = float((u.Unit(spectral.output_unit) * u.TeV * u.Unit("cm2 s")).to(""))
        flux_t = np.asarray(spectral.integral(e_true[:-1], e_true[1:]), float) * scale
        counts_t = a["expo"] * flux_t
        npred = counts_t @ a["edisp"] if a["edisp"] is not None else counts_t
        e_ref = np.sqrt(e_reco[:-1] * e_reco[1:])
        dnde = np.asarray(spectral(e_ref), float)
        with np.errstate(invalid="ignore", divide="ignore"):
            phi = excess / npred
        e2dnde = (phi * dnde * e_ref**2 * u.Unit(spectral.output_unit) * u.TeV**2).to_value(
            "erg cm-2 s-1"
        )
        return Table(
            {
                "e_ref": e_ref * u.TeV,
                "e_min": e_reco[:-1] * u.TeV,
                "e_max": e_reco[1:] * u.TeV,
                "e2dnde": e2dnde * u.Unit("erg cm-2 s-1"),
                "excess": excess,
                "background": a["bkg"],
                "criterion": crit,
            }
        )

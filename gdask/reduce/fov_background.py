"""Field-of-view background normalisation (Gammapy 2.1's ``FoVBackgroundMaker``).

The predicted background of a map dataset is scaled by one factor ``norm``
so that it matches the counts in the region that is both safe and not
excluded (``mask_safe & exclusion_mask``; the exclusion mask is True where
pixels may be used, Gammapy's convention):

- ``"scale"``: ``norm = sum(counts) / sum(background)``, error
  ``sqrt(sum(counts)) / sum(background)``;
- ``"fit"``: the Cash-likelihood maximum of ``norm * background`` on the
  same bins. With only a norm free (Gammapy's default ``FoVBackgroundModel``,
  tilt frozen) the optimum is the same ratio, computed in closed form here
  (Gammapy reaches it with MIGRAD within its tolerance); the error is the
  inverse curvature ``norm / sqrt(sum(counts))``.

When the requirements fail (non-finite or non-positive ``norm``, background
not above ``min_npred_background``, counts not above ``min_counts``) the
dataset's ``mask_safe`` is set all False, as Gammapy does. The background map
itself is not modified; ``norm`` travels in ``attrs["bkg_norm"]`` (and
``bkg_norm_error``), the value of the dataset's background-model norm.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["FOV_METHODS", "fov_background_norm", "apply_fov_background"]

FOV_METHODS = ("scale", "fit")


def _image(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.ones(shape, dtype=bool)
    if isinstance(mask, xr.DataArray):
        mask = mask.transpose(..., "lat", "lon").values
    mask = np.asarray(mask, dtype=bool)
    return np.broadcast_to(mask, shape)


def fov_background_norm(
    counts: np.ndarray,
    background: np.ndarray,
    mask: np.ndarray,
    method: str = "scale",
    *,
    min_counts: float = 0,
    min_npred_background: float = 0,
) -> tuple[float, float, bool]:
    """Background norm, its error, and whether the requirements hold.

    Parameters
    ----------
    counts, background : ndarray
        Counts and predicted background, same shape.
    mask : bool ndarray
        Bins used (broadcast to the same shape).
    method : {"scale", "fit"}
    min_counts, min_npred_background : float
        The sums must exceed these.
    """
    if method not in FOV_METHODS:
        raise ValueError(f"method must be one of {FOV_METHODS}, got {method!r}")
    counts = np.asarray(counts, dtype=float)
    background = np.asarray(background, dtype=float)
    use = np.broadcast_to(np.asarray(mask, dtype=bool), counts.shape) & ~np.isnan(background)
    n = float(counts[use].sum())
    b = float(background[use].sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = n / b
        error = np.sqrt(n) / b
    ok = bool(np.isfinite(norm) and b > min_npred_background and n > min_counts and n > 0)
    if method == "fit" and ok:
        error = norm / np.sqrt(n)
    return float(norm), float(error), ok


def apply_fov_background(
    dataset: xr.Dataset,
    exclusion_mask: Any = None,
    method: str = "scale",
    *,
    min_counts: float = 0,
    min_npred_background: float = 0,
) -> xr.Dataset:
    """Normalise a map dataset's background on its counts outside the exclusion regions.

    Parameters
    ----------
    dataset : xarray.Dataset
        With ``counts``, ``background`` and ``mask_safe`` on ``(energy, lat, lon)``.
    exclusion_mask : bool array (lat, lon) or (energy, lat, lon), optional
        True where pixels may be used (default everywhere).
    method : {"scale", "fit"}
    min_counts, min_npred_background : float
        Requirements (Gammapy's defaults: 0).

    Returns
    -------
    xarray.Dataset
        A shallow copy with ``attrs["bkg_norm"]``/``["bkg_norm_error"]`` set,
        or with ``mask_safe`` all False when the requirements fail.
    """
    counts = dataset["counts"].transpose("energy", "lat", "lon").values
    background = dataset["background"].transpose("energy", "lat", "lon").values
    safe = dataset["mask_safe"].transpose("energy", "lat", "lon").values.astype(bool)
    mask = safe & _image(exclusion_mask, counts.shape)
    norm, error, ok = fov_background_norm(
        counts,
        background,
        mask,
        method,
        min_counts=min_counts,
        min_npred_background=min_npred_background,
    )
    out = dataset.copy()
    if ok:
        out.attrs.update({"bkg_norm": norm, "bkg_norm_error": error})
    else:
        out["mask_safe"] = xr.zeros_like(dataset["mask_safe"], dtype=bool)
        out.attrs.update({"bkg_norm": 1.0, "bkg_norm_error": 0.0})
    return out

"""Ring background: ON/OFF map datasets from a map dataset and a ring kernel.

`ring_background` reproduces Gammapy 2.1's ``RingBackgroundMaker``: per
reconstructed-energy image,

- ``counts_off = (counts * exclusion) (*) ring``,
- ``acceptance_off = (background * exclusion) (*) ring``,
- ``acceptance = background``,

where ``(*)`` is a convolution (``mode="same"``) with the ring kernel of
astropy's ``Ring2DKernel`` normalised to its peak: 1 on pixels whose centre
lies at ``r_in <= r <= r_in + width`` (in pixels of the first axis' scale)
from the kernel centre, 0 elsewhere; ``exclusion`` is True where the sky may
be used for the background. ``mask_safe`` is set False where
``acceptance_off <= 0``.

`adaptive_ring_background` reproduces ``AdaptiveRingBackgroundMaker``
(first energy image only, as Gammapy): rings of growing size, keeping per pixel
the first with ``acceptance / acceptance_off <= threshold_alpha``.

The convolutions are done by FFT in float64; results below ``1e-9`` of the
image total (FFT noise) are set to zero, and OFF counts of integral counts
are rounded to integers, so that "no OFF data" is exact (Gammapy computes in
float32 and keeps the noise). Pure numpy/scipy, no Dask.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from scipy.signal import fftconvolve

from gdask.datasets.map import MapDataset, MapDatasetOnOff
from gdask.geometry.wcs import WcsGeom

__all__ = [
    "ring_kernel",
    "tophat_kernel",
    "convolve_image",
    "ring_background",
    "adaptive_ring_kernels",
    "adaptive_ring_background",
]

NOISE_FLOOR = 1e-9


def _odd_size(value: float) -> int:
    i = math.ceil(value)
    return i + 1 if i % 2 == 0 else i


def _grid(size: int) -> NDArray[np.float64]:
    x = np.arange(-(size - 1) // 2, (size - 1) // 2 + 1, dtype=float)
    return x[None, :] ** 2 + x[:, None] ** 2


def ring_kernel(r_in: float, width: float) -> NDArray[np.float64]:
    """Peak-normalised ring kernel (radii in pixels), as astropy's ``Ring2DKernel``.

    Parameters
    ----------
    r_in, width : float
        Inner radius and width in pixels.

    Returns
    -------
    kernel : ndarray
        Square odd-sized array of 0 and 1.
    """
    r_out = r_in + width
    rr = _grid(_odd_size(2 * r_out))
    return ((rr >= r_in**2) & (rr <= r_out**2)).astype(float)


def tophat_kernel(radius: float) -> NDArray[np.float64]:
    """Peak-normalised disk kernel (radius in pixels), as astropy's ``Tophat2DKernel``."""
    rr = _grid(_odd_size(2 * radius))
    return (rr <= radius**2).astype(float)


def convolve_image(image: ArrayLike, kernel: NDArray) -> NDArray[np.float64]:
    """``mode="same"`` FFT convolution of the last two axes, FFT noise set to zero.

    Parameters
    ----------
    image : array_like
        ``(..., ny, nx)``.
    kernel : ndarray
        2D kernel.

    Returns
    -------
    out : ndarray
        Same shape as ``image``; integral images give integral results.
    """
    img = np.nan_to_num(np.asarray(image, dtype=float))
    k = kernel.reshape((1,) * (img.ndim - 2) + kernel.shape)
    out = fftconvolve(img, k, mode="same", axes=(-2, -1))
    total = np.abs(img).sum(axis=(-2, -1), keepdims=True) * np.abs(kernel).max()
    out[np.abs(out) <= NOISE_FLOOR * total] = 0.0
    if np.all(img == np.rint(img)) and np.all(kernel == np.rint(kernel)):
        out = np.rint(out)
    return out


def _as_dataset(dataset: MapDataset | xr.Dataset) -> tuple[xr.Dataset, bool]:
    if isinstance(dataset, xr.Dataset):
        return dataset, True
    return dataset.ds, False


def _exclusion(
    ds: xr.Dataset, exclusion_mask: ArrayLike | None, exclusion_geom: WcsGeom | None
) -> NDArray[np.bool_]:
    """Exclusion image on the counts grid (True = usable), nearest pixel of ``exclusion_geom``."""
    geom = WcsGeom.from_dataset(ds)
    if exclusion_mask is None:
        return np.ones(geom.shape, bool)
    mask = np.asarray(exclusion_mask, dtype=bool)
    if exclusion_geom is None or exclusion_geom == geom:
        if mask.shape[-2:] != geom.shape:
            raise ValueError(f"exclusion mask shape {mask.shape} differs from {geom.shape}")
        return mask.reshape(geom.shape) if mask.ndim == 2 else mask[0]
    lon, lat = geom.get_coord()
    ix, iy = exclusion_geom.coord_to_idx(lon, lat)
    ok = (ix >= 0) & (iy >= 0)
    img = mask if mask.ndim == 2 else mask[0]
    return img[np.where(ok, iy, 0), np.where(ok, ix, 0)] & ok


def _pixels(geom: WcsGeom, angle_deg: float) -> float:
    return float(angle_deg) / float(np.abs(geom.wcs.wcs.cdelt[0]))


def _on_off(
    ds: xr.Dataset,
    counts_off: NDArray,
    acceptance: NDArray,
    acceptance_off: NDArray,
    raw: bool,
) -> MapDatasetOnOff | xr.Dataset:
    out = ds.drop_vars([v for v in ("background",) if v in ds]).copy(deep=True)
    dims = ("energy", "lat", "lon")
    for key, arr in (
        ("counts_off", counts_off),
        ("acceptance", acceptance),
        ("acceptance_off", acceptance_off),
    ):
        out[key] = (dims, np.asarray(arr, dtype=float), {"units": ""})
    mask = np.asarray(out["mask_safe"].transpose(*dims).values, bool).copy()
    mask[acceptance_off <= 0] = False
    out["mask_safe"] = (dims, mask)
    out.attrs["dataset_type"] = MapDatasetOnOff.tag
    return out if raw else MapDatasetOnOff.from_dataset(out)


def _bkg_counts(ds: xr.Dataset) -> tuple[NDArray, NDArray]:
    dims = ("energy", "lat", "lon")
    if "background" not in ds:
        raise ValueError("ring background needs a dataset with a background map")
    return (
        np.asarray(ds["counts"].transpose(*dims).values, dtype=float),
        np.asarray(ds["background"].transpose(*dims).values, dtype=float),
    )


def ring_background(
    dataset: MapDataset | xr.Dataset,
    r_in: float,
    width: float,
    exclusion_mask: ArrayLike | None = None,
    exclusion_geom: WcsGeom | None = None,
) -> MapDatasetOnOff | xr.Dataset:
    """ON/OFF dataset with OFF counts and acceptance from a ring (Gammapy's ``RingBackgroundMaker``).

    Parameters
    ----------
    dataset : MapDataset or xarray.Dataset
        Needs ``counts``, ``background`` and ``mask_safe``.
    r_in, width : float
        Inner radius and width of the ring, deg.
    exclusion_mask : array_like of bool, optional
        ``(lat, lon)`` image, True where the sky may be used for the background.
    exclusion_geom : WcsGeom, optional
        Grid of ``exclusion_mask`` if not the counts grid (nearest pixel is used;
        False outside).

    Returns
    -------
    MapDatasetOnOff (or its xarray.Dataset for an xarray input)
        ``background`` replaced by ``counts_off``, ``acceptance`` (= background)
        and ``acceptance_off``; ``mask_safe`` False where ``acceptance_off <= 0``.
    """
    ds, raw = _as_dataset(dataset)
    geom = WcsGeom.from_dataset(ds)
    counts, bkg = _bkg_counts(ds)
    excl = _exclusion(ds, exclusion_mask, exclusion_geom)
    kernel = ring_kernel(_pixels(geom, r_in), _pixels(geom, width))
    counts_off = convolve_image(counts * excl, kernel)
    acceptance_off = convolve_image(bkg * excl, kernel)
    return _on_off(ds, counts_off, bkg, acceptance_off, raw)


def adaptive_ring_kernels(
    geom: WcsGeom,
    r_in: float,
    r_out_max: float,
    width: float,
    stepsize: float = 0.02,
    method: str = "fixed_width",
) -> list[NDArray[np.float64]]:
    """Ring kernels of growing size for the adaptive ring (angles in deg)."""
    ri, ro, w, st = (_pixels(geom, v) for v in (r_in, r_out_max, width, stepsize))
    if method == "fixed_width":
        pairs = [(r, w) for r in np.arange(ri, ro - w, st)]
    elif method == "fixed_r_in":
        pairs = [(ri, x) for x in np.arange(w, ro - ri, st)]
    else:
        raise ValueError(f"invalid method {method!r}: 'fixed_width' or 'fixed_r_in'")
    return [ring_kernel(float(a), float(b)) for a, b in pairs]


def adaptive_ring_background(
    dataset: MapDataset | xr.Dataset,
    r_in: float,
    r_out_max: float,
    width: float,
    stepsize: float = 0.02,
    threshold_alpha: float = 0.1,
    theta: float = 0.22,
    method: str = "fixed_width",
    exclusion_mask: ArrayLike | None = None,
    exclusion_geom: WcsGeom | None = None,
    legacy_theta: bool = True,
) -> MapDatasetOnOff | xr.Dataset:
    """Adaptive ring background (Gammapy's ``AdaptiveRingBackgroundMaker``).

    Rings grow (``method="fixed_width"``: the inner radius from ``r_in`` by
    ``stepsize``; ``"fixed_r_in"``: the width) until the approximate
    ``alpha = acceptance / acceptance_off`` is at most ``threshold_alpha``;
    pixels never reaching it get NaN. Only the first energy image is used and
    the result has one energy bin, as in Gammapy.

    Parameters
    ----------
    dataset : MapDataset or xarray.Dataset
        Needs ``counts``, ``background`` and ``mask_safe``.
    r_in, r_out_max, width, stepsize, theta : float
        Angles in deg.
    threshold_alpha : float
        Threshold on the approximate alpha.
    method : {"fixed_width", "fixed_r_in"}
    exclusion_mask, exclusion_geom
        As for `ring_background`.
    legacy_theta : bool
        Gammapy 2.1 builds the ON disk of radius ``theta * pixel_scale`` (in
        pixels) instead of ``theta / pixel_scale``, which makes it one pixel;
        True reproduces that.

    Returns
    -------
    MapDatasetOnOff (or its xarray.Dataset for an xarray input)
    """
    ds, raw = _as_dataset(dataset)
    geom = WcsGeom.from_dataset(ds)
    counts, bkg = _bkg_counts(ds)
    excl = _exclusion(ds, exclusion_mask, exclusion_geom)
    kernels = adaptive_ring_kernels(geom, r_in, r_out_max, width, stepsize, method)
    scale = float(np.abs(geom.wcs.wcs.cdelt[0]))
    radius = theta * scale if legacy_theta else theta / scale
    acc = convolve_image(bkg[:1], tophat_kernel(radius))[0]
    shape = geom.shape
    counts_off = np.full(shape, np.nan)
    acc_off = np.full(shape, np.nan)
    acceptance = np.full(shape, np.nan)
    for k in kernels:
        c = convolve_image(counts[0] * excl, k)
        a = convolve_image(bkg[0] * excl, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(a > 0, acc / a, np.inf)
        take = (alpha <= threshold_alpha) & np.isnan(counts_off)
        counts_off[take], acc_off[take], acceptance[take] = c[take], a[take], acc[take]
    sub = ds.isel(energy=slice(0, 1))
    return _on_off(sub, counts_off[None], acceptance[None], acc_off[None], raw)

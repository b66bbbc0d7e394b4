"""Safe data-range masks of a per-observation map dataset (Gammapy 2.1's ``SafeMaskMaker``).

Methods, combined with a logical AND (after the always-applied mask of
pixels whose predicted background is zero or not finite):

- ``"offset-max"``: pixel centres closer than ``offset_max`` to the pointing;
- ``"aeff-default"``: reconstructed-energy bins fully inside the
  ``LO_THRES``/``HI_THRES`` range of the effective-area header;
- ``"aeff-max"``: bins above the true energy where the effective area (at the
  map centre, nearest pixel of the exposure map) reaches ``aeff_percent`` % of
  its maximum (root of its log-log interpolation);
- ``"edisp-bias"``: bins above the energy where the energy bias of the
  kernel (nearest IRF pixel to the map centre) falls to ``bias_percent`` %;
- ``"bkg-peak"``: bins above the lower edge of the bin where the summed
  predicted background peaks.

As in Gammapy, the energy thresholds found in true energy are applied to
reconstructed energy, and a bin is kept only if it lies fully inside the range.
"The pixel at the map centre" is the one Gammapy reads there: on a pixel
boundary (maps with an even number of pixels) its point-region round trip and
scipy's nearest rule (ties go down) decide, which gdask follows step by step
(`safe_energy_thresholds` gives the thresholds themselves).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.optimize import brentq

from gdask.dl3 import ObservationInfo
from gdask.geometry import WcsGeom
from gdask.reduce._common import as_radec, offsets

__all__ = [
    "SAFE_MASK_METHODS",
    "make_safe_mask",
    "mask_offset_max",
    "energy_range_mask",
    "threshold_aeff_max",
    "threshold_edisp_bias",
    "threshold_bkg_peak",
    "nearest_index_ties_down",
    "safe_energy_thresholds",
]

SAFE_MASK_METHODS = ("aeff-default", "aeff-max", "edisp-bias", "offset-max", "bkg-peak")


def mask_offset_max(geom: WcsGeom, pointing: Any, offset_max: float) -> np.ndarray:
    """``(lat, lon)`` mask of pixel centres closer than ``offset_max`` (deg) to the pointing."""
    return offsets(geom, as_radec(pointing)) < float(offset_max)


def energy_range_mask(
    edges: np.ndarray, energy_min: float | None = None, energy_max: float | None = None
) -> np.ndarray:
    """Bins fully inside ``[energy_min, energy_max]`` (None: no limit)."""
    edges = np.asarray(edges, dtype=float)
    lo = edges[0] if energy_min is None else energy_min
    hi = edges[-1] if energy_max is None else energy_max
    return (edges[:-1] >= lo) & (edges[1:] <= hi)


def _loglog(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Gammapy's ``TemplateSpectralModel`` interpolation: linear in (log x, log y), extrapolated."""
    lx, lxp = np.log(x), np.log(xp)
    ly = np.log(np.clip(fp, np.finfo(float).tiny, np.inf))
    i = np.clip(np.searchsorted(lxp, lx, side="right") - 1, 0, lxp.size - 2)
    t = (lx - lxp[i]) / (lxp[i + 1] - lxp[i])
    out = np.exp(ly[i] + t * (ly[i + 1] - ly[i]))
    return np.where(np.abs(out) - np.finfo(float).tiny <= np.finfo(float).tiny, 0.0, out)


def _first_root(
    energy: np.ndarray, values: np.ndarray, target: float, emin: float, emax: float
) -> float:
    """First root of template(E) = target on [emin, emax] (Gammapy's ``inverse``: 100 log steps,
    then Brent's method); NaN if there is none."""

    def f(x: float) -> float:
        return 1e12 * (float(_loglog(np.array([x]), energy, values)[0]) - target)

    grid = np.exp(np.linspace(np.log(emin), np.log(emax), 101))
    signs = np.sign([f(x) for x in grid])
    change = np.nonzero(signs[:-1] != signs[1:])[0]
    if change.size == 0:
        return float("nan")
    k = change[0]
    try:
        return float(brentq(f, grid[k], grid[k + 1]))
    except (RuntimeError, ValueError):
        return float("nan")


def threshold_aeff_max(
    aeff: np.ndarray, energy_true: np.ndarray, percent: float = 10.0
) -> float | None:
    """Lower energy threshold (TeV) where ``aeff`` (at the true-energy centres) reaches
    ``percent`` % of its maximum; None if the effective area is zero everywhere."""
    aeff = np.asarray(aeff, dtype=float)
    if not np.any(aeff > 0):
        return None
    emin = energy_true[np.nonzero(aeff > 0)[0][0]]
    root = _first_root(energy_true, aeff, percent / 100 * aeff.max(), emin, energy_true[-1])
    return float(emin) if np.isnan(root) else root


def threshold_edisp_bias(
    kernel: np.ndarray,
    energy_true: np.ndarray,
    energy_reco_centre: np.ndarray,
    percent: float = 10.0,
) -> float:
    """Reconstructed energy (TeV) where the bias of an ``(energy_true, energy)`` kernel falls to
    ``percent`` % (searched above the energy of the peak bias; Gammapy's ``get_bias_energy``)."""
    kernel = np.asarray(kernel, dtype=float)
    norm = kernel.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nan_to_num((kernel * energy_reco_centre).sum(axis=-1) / norm)
    bias = (mean - energy_true) / energy_true
    emin = energy_true[np.nanargmax(bias)]
    root = _first_root(energy_true, bias, percent / 100, emin, energy_true[-1])
    e = emin if np.isnan(root) else root
    return float(e * (1 + percent / 100))


def threshold_bkg_peak(background: np.ndarray, energy_edges: np.ndarray) -> float:
    """Lower edge (TeV) of the energy bin where the summed background ``(energy, ...)`` peaks."""
    spectrum = np.nansum(
        np.asarray(background, dtype=float).reshape(len(energy_edges) - 1, -1), axis=1
    )
    return float(energy_edges[int(np.argmax(spectrum))])


def _edges(ds: xr.Dataset, dim: str) -> np.ndarray:
    b = np.asarray(ds[f"{dim}_bounds"].transpose(dim, "bound").values, dtype=float)
    return np.append(b[:, 0], b[-1, 1])


def _nearest_pixel(geom: WcsGeom, position: Any | None) -> tuple[int, int]:
    """``(iy, ix)`` of the pixel of a map on ``geom`` that Gammapy 2.1 reads at ``position``.

    Gammapy turns the position into a point region whose bounding box
    (``regions``' ``floor(x + 0.5)`` / ``ceil(x + 0.5)`` rule) it converts back to
    the sky before taking the nearest pixel. Off a pixel boundary that is the
    nearest pixel; on one (the centre of a map with an even number of pixels,
    e.g. a 4 deg map of 0.2 deg IRF pixels) the bounding box is empty, its centre
    stays on the boundary and the float rounding of the second round trip
    decides, with scipy's nearest-neighbour rule (ties go down): reproduced here
    step by step, so the thresholds do not depend on the map width differently
    from Gammapy's.
    """
    from astropy.wcs.utils import pixel_to_skycoord, skycoord_to_pixel

    pos = geom.center_skydir if position is None else position
    x, y = (float(np.ravel(v)[0]) for v in skycoord_to_pixel(pos, geom.wcs, 0, "all"))
    cx = 0.5 * (np.ceil(x + 0.5) - 1 + np.floor(x + 0.5))
    cy = 0.5 * (np.ceil(y + 0.5) - 1 + np.floor(y + 0.5))
    px, py = geom.coord_to_pix(pixel_to_skycoord(cx, cy, geom.wcs, 0, "all"))
    nx, ny = geom.npix
    ix = nearest_index_ties_down(np.ravel(px), nx)[0]
    iy = nearest_index_ties_down(np.ravel(py), ny)[0]
    return int(iy), int(ix)


def nearest_index_ties_down(pix: np.ndarray, n: int) -> np.ndarray:
    """Nearest index on the grid ``0 .. n-1`` as scipy's ``RegularGridInterpolator(method=
    "nearest")`` picks it (Gammapy's nearest-neighbour map interpolation): a tie (``x.5``)
    goes down, outside the grid the edge index is taken.

    Examples
    --------
    >>> nearest_index_ties_down(np.array([9.5, 9.5000001, -3.0, 42.0]), 20).tolist()
    [9, 10, 0, 19]
    """
    pix = np.asarray(pix, dtype=float)
    i = np.clip(np.searchsorted(np.arange(n, dtype=float), pix) - 1, 0, max(n - 2, 0))
    idx = np.where(pix - i <= 0.5, i, i + 1)
    return np.clip(idx, 0, n - 1).astype(int)


def _position(
    info: ObservationInfo | None, geom: WcsGeom, position: Any | None, fixed_offset: float | None
) -> Any:
    if fixed_offset is not None:
        from astropy.coordinates import SkyCoord

        if info is None:
            raise ValueError("fixed_offset needs the observation")
        pnt = SkyCoord(info.ra_pnt, info.dec_pnt, unit="deg", frame="icrs")
        return pnt.directional_offset_by(0.0 * pnt.ra.unit, fixed_offset * pnt.ra.unit)
    return position if position is not None else geom.center_skydir


def safe_energy_thresholds(
    dataset: xr.Dataset,
    observation: Any = None,
    methods: Sequence[str] = ("aeff-max", "edisp-bias", "bkg-peak"),
    *,
    aeff_percent: float = 10.0,
    bias_percent: float = 10.0,
    position: Any = None,
    fixed_offset: float | None = None,
) -> dict[str, float | None]:
    """Lower energy thresholds (TeV) of the methods ``aeff-max``, ``edisp-bias`` and
    ``bkg-peak`` of a map dataset, as `make_safe_mask` applies them.

    ``aeff-max`` and ``edisp-bias`` read the exposure and kernel at the pixel Gammapy
    reads at ``position`` (default the counts-map centre; see `make_safe_mask`);
    ``aeff-max`` is None where the effective area is zero there.

    Examples
    --------
    >>> thresholds = safe_energy_thresholds(ds, obs, ["edisp-bias"])  # doctest: +SKIP
    >>> thresholds["edisp-bias"]  # doctest: +SKIP
    0.707...
    """
    info = observation
    if observation is not None and not isinstance(observation, ObservationInfo):
        info = ObservationInfo.from_observation(observation)
    geom = WcsGeom.from_header(dataset.attrs["wcs_header"])
    out: dict[str, float | None] = {}
    if "aeff-max" in methods:
        iy, ix = _nearest_pixel(geom, _position(info, geom, position, fixed_offset))
        et = np.asarray(dataset["energy_true"].values, dtype=float)
        aeff = (
            dataset["exposure"].transpose("energy_true", "lat", "lon").values[:, iy, ix]
            / dataset.attrs["livetime"]
        )
        out["aeff-max"] = threshold_aeff_max(aeff, et, aeff_percent)
    if "edisp-bias" in methods:
        igeom = WcsGeom.from_header(dataset.attrs["edisp_wcs_header"])
        iy, ix = _nearest_pixel(igeom, _position(info, geom, position, fixed_offset))
        kernel = (
            dataset["edisp"]
            .transpose("edisp_energy_true", "edisp_energy", ...)
            .values[:, :, iy, ix]
        )
        et = np.asarray(dataset["edisp_energy_true"].values, dtype=float)
        er = np.asarray(dataset["edisp_energy"].values, dtype=float)
        out["edisp-bias"] = threshold_edisp_bias(kernel, et, er, bias_percent)
    if "bkg-peak" in methods:
        out["bkg-peak"] = threshold_bkg_peak(
            dataset["background"].transpose("energy", ...).values, _edges(dataset, "energy")
        )
    return out


def make_safe_mask(
    dataset: xr.Dataset,
    observation: Any = None,
    methods: Sequence[str] = ("aeff-default",),
    *,
    offset_max: float = 3.0,
    aeff_percent: float = 10.0,
    bias_percent: float = 10.0,
    position: Any = None,
    fixed_offset: float | None = None,
) -> xr.DataArray:
    """Safe mask ``(energy, lat, lon)`` of a map dataset (see the module docstring).

    Parameters
    ----------
    dataset : xarray.Dataset
        A dataset from `gdask.reduce.maps.make_map_dataset` (its current
        ``mask_safe`` is combined in).
    observation : Observation or ObservationInfo, optional
        Needed for ``offset-max``/``aeff-default`` (pointing, thresholds);
        defaults to the dataset's attrs for the pointing.
    methods : sequence of str
        Any of `SAFE_MASK_METHODS`.
    offset_max : float
        Maximum offset (deg) for ``offset-max``.
    aeff_percent, bias_percent : float
        Percentages for ``aeff-max`` and ``edisp-bias``.
    position : SkyCoord, optional
        Where ``aeff-max``/``edisp-bias`` are evaluated (default the map centre).
    fixed_offset : float, optional
        Evaluate them at this offset (deg) north of the pointing instead.
    """
    methods = set(methods)
    unknown = methods - set(SAFE_MASK_METHODS)
    if unknown:
        raise ValueError(f"{sorted(unknown)} not valid; choose from {SAFE_MASK_METHODS}")
    if position is not None and fixed_offset is not None:
        raise ValueError("position and fixed_offset are mutually exclusive")
    info = observation
    if observation is not None and not isinstance(observation, ObservationInfo):
        info = ObservationInfo.from_observation(observation)
    geom = WcsGeom.from_header(dataset.attrs["wcs_header"])
    edges = _edges(dataset, "energy")
    shape = (edges.size - 1,) + geom.shape
    mask = np.ones(shape, dtype=bool)
    if "mask_safe" in dataset:
        mask &= np.asarray(
            dataset["mask_safe"].transpose("energy", "lat", "lon").values, dtype=bool
        )
    if "background" in dataset:
        bkg = np.asarray(dataset["background"].transpose("energy", "lat", "lon").values)
        mask &= np.isfinite(bkg) & (bkg > 0)
    energy_min: list[float] = []
    if "offset-max" in methods:
        pnt = (
            info.pointing
            if info is not None
            else (dataset.attrs["ra_pnt"], dataset.attrs["dec_pnt"])
        )
        mask &= mask_offset_max(geom, pnt, offset_max)[None]
    if "aeff-default" in methods:
        if info is None:
            raise ValueError("'aeff-default' needs the observation")
        lo, hi = info.aeff_thresholds
        mask &= energy_range_mask(edges, lo, hi)[:, None, None]
    found = safe_energy_thresholds(
        dataset,
        info,
        sorted(methods & {"aeff-max", "edisp-bias", "bkg-peak"}),
        aeff_percent=aeff_percent,
        bias_percent=bias_percent,
        position=position,
        fixed_offset=fixed_offset,
    )
    for e in found.values():
        if e is None:  # aeff-max: no effective area at the position
            mask[...] = False
        else:
            energy_min.append(e)
    for e in energy_min:
        mask &= energy_range_mask(edges, e)[:, None, None]
    return xr.DataArray(mask, dims=("energy", "lat", "lon"), name="mask_safe")

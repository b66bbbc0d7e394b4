"""Per-observation 3D maps: counts, exposure, background, PSF and energy-dispersion kernel maps.

Pure functions (numpy/xarray, no Dask) reproducing Gammapy 2.1's
``MapDatasetMaker`` for one observation:

- the fixed pointing is ``RA_PNT``/``DEC_PNT`` of the EVENTS header; IRFs are
  evaluated at each pixel *centre*'s offset from it;
- exposure = effective area at the true-energy bin centres x livetime
  (``ontime * DEADC``); the background is integrated over each
  reconstructed-energy bin (log-log trapezoid through the bin edges, see
  `Background3D.integrate_energy`), multiplied by the pixel solid angle and
  the *ontime* (sum of GTIs), after Gammapy's preprocessing of the IRF
  (interior zeros along energy filled by log-interpolation; a 2D model padded
  by one offset bin);
- ALTAZ-aligned background models are averaged (trapezoid in time) over
  the FoV rotation, in time steps of ``fov_rotation_step`` deg;
- PSF and energy-dispersion maps live on a coarse grid of ``binsz_irf``
  pixels with the same centre and width as the counts grid
  (``geom.to_binsz``), carry their exposure (the stacking weight) and use the
  defaults of ``MapDataset.create``: rad 0-0.66 deg in 66 bins, the migration
  axis of the IRF for the kernel.

Maps are `xarray.DataArray` with dims ``(energy|energy_true, lat, lon)``; the
IRF maps use the prefixed layout of `gdask.datasets.irf_maps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time

from gdask.datasets.axes import BandAxis
from gdask.datasets.irf_maps import EDispKernelMap, PSFMap
from gdask.dl3 import ObservationInfo
from gdask.dl3.irf import Background2D, EffectiveArea2D, EnergyDispersion2D, PSFTable
from gdask.dl3.irf.bkg import integrate_bins
from gdask.dl3.irf.edisp import reco_bin_probabilities
from gdask.dl3.irf.fast import bilinear_background_evaluator, eval_aeff, eval_edisp_pdf, eval_psf
from gdask.geometry import Axis, EnergyAxis, WcsGeom
from gdask.reduce._common import (
    as_radec,
    fov_altaz,
    fov_radec,
    offsets,
    rotation_times,
)

__all__ = [
    "BINSZ_IRF_DEFAULT",
    "default_rad_axis",
    "make_counts",
    "make_exposure",
    "make_background",
    "make_psf_map",
    "make_edisp_kernel_map",
    "make_map_dataset",
    "irf_geom",
    "prepare_background",
]

BINSZ_IRF_DEFAULT = 0.2
_SR_PER_DEG2 = (np.pi / 180.0) ** 2
_M2_TO_CM2 = 1e4
SELECTION_ALL = ("counts", "exposure", "background", "psf", "edisp")


def default_rad_axis() -> Axis:
    """Gammapy's default PSF-map rad axis: 0 to 0.66 deg in 66 bins."""
    return Axis.from_bounds(0.0, 0.66, 66, name="rad", unit="deg")


def irf_geom(geom: WcsGeom, binsz_irf: float = BINSZ_IRF_DEFAULT) -> WcsGeom:
    """The coarse IRF-map grid of ``geom``: same centre, width and projection, ``binsz_irf`` pixels."""
    return geom.to_binsz(binsz_irf)


def _cube(data: np.ndarray, geom: WcsGeom, axis: Axis, name: str, units: str) -> xr.DataArray:
    coords: dict[str, Any] = {axis.name: (axis.name, axis.center, {"units": axis.unit})}
    coords.update(geom.to_coords())
    return xr.DataArray(
        data,
        dims=(axis.name, "lat", "lon"),
        coords=coords,
        name=name,
        attrs={"units": units, **geom.to_attrs()},
    )


# ----------------------------------------------------------------------------- counts


def make_counts(events: Any, geom: WcsGeom, energy_axis: EnergyAxis) -> xr.DataArray:
    """Counts cube ``(energy, lat, lon)``: events binned by nearest pixel and energy bin.

    Parameters
    ----------
    events : `gdask.dl3.EventList`
        The events (RA/DEC are ICRS).
    geom : WcsGeom
        Sky grid.
    energy_axis : EnergyAxis
        Reconstructed-energy axis (bins ``[lo, hi)``).
    """
    ra, dec = events.radec
    if geom.frame == "icrs":
        ix, iy = geom.coord_to_idx(ra, dec)
    else:
        ix, iy = geom.coord_to_idx(SkyCoord(ra, dec, unit="deg", frame="icrs"))
    ie = energy_axis.coord_to_idx(events.energy.to_value(energy_axis.unit))
    ok = (ix >= 0) & (iy >= 0) & (ie >= 0)
    ny, nx = geom.shape
    flat = (ie[ok] * ny + iy[ok]) * nx + ix[ok]
    data = np.bincount(flat, minlength=energy_axis.nbin * ny * nx).astype(float)
    return _cube(data.reshape(energy_axis.nbin, ny, nx), geom, energy_axis, "counts", "")


# ----------------------------------------------------------------------------- exposure


def _exposure_values(
    aeff: Any, offset: np.ndarray, energy_true: np.ndarray, livetime: float
) -> np.ndarray:
    """Effective area (m2) at (energy_true, offset) times livetime, shape (n_e,) + offset.shape."""
    if isinstance(aeff, EffectiveArea2D):
        return eval_aeff(aeff, energy_true, offset) * livetime
    e = energy_true.reshape((-1,) + (1,) * offset.ndim)
    return aeff.evaluate(e, offset[np.newaxis]) * livetime


def make_exposure(
    aeff: Any, pointing: Any, livetime: float, geom: WcsGeom, energy_axis_true: EnergyAxis
) -> xr.DataArray:
    """Exposure cube ``(energy_true, lat, lon)`` in m2 s.

    The effective area is evaluated at the true-energy bin centres and at each
    pixel centre's offset from ``pointing`` (SkyCoord or ICRS (ra, dec) deg),
    times ``livetime`` (s).
    """
    off = offsets(geom, as_radec(pointing))
    data = _exposure_values(aeff, off, energy_axis_true.to_unit("TeV").center, float(livetime))
    return _cube(data, geom, energy_axis_true, "exposure", "m2 s")


# ----------------------------------------------------------------------------- background


def _fill_missing_energy(bkg: Any) -> Any:
    """Gammapy's ``interp_missing_data(axis_name="energy")``: zero or non-finite rates with
    valid rates on both sides along energy are log-interpolated (in bin index) from the
    nearest valid neighbours. Returns a new IRF object (the input is not modified)."""
    da = bkg.ds["background"]
    data = np.asarray(da.values)
    axis = da.dims.index("energy")
    work = np.moveaxis(data, axis, 0)
    missing = ~np.isfinite(work) | (work == 0.0)
    if not missing.any():
        return bkg
    n = work.shape[0]
    idx = np.arange(n).reshape((-1,) + (1,) * (work.ndim - 1))
    prev = np.maximum.accumulate(np.where(~missing, idx, -1), axis=0)
    nxt = np.flip(
        np.minimum.accumulate(np.flip(np.where(~missing, idx, n), axis=0), axis=0), axis=0
    )
    fill = missing & (prev >= 0) & (nxt < n)
    if not fill.any():
        return bkg
    dtype = work.dtype if np.issubdtype(work.dtype, np.floating) else np.dtype(np.float32)
    tiny = np.finfo(dtype).tiny
    with np.errstate(invalid="ignore", divide="ignore"):
        logv = np.log(np.clip(work.astype(dtype), tiny, np.inf)).astype(float)
    i0 = np.where(fill, prev, 0)
    i1 = np.where(fill, nxt, 0)
    f0 = np.take_along_axis(logv, i0, axis=0)
    f1 = np.take_along_axis(logv, i1, axis=0)
    slope = (f1 - f0) / np.where(fill, i1 - i0, 1)
    value = np.exp(slope * (idx - i0) + f0)
    value = np.where(np.abs(value) - np.finfo(float).tiny <= np.finfo(float).tiny, 0.0, value)
    new = work.copy()
    new[fill] = value[fill]
    ds = bkg.ds.copy()
    ds["background"] = (da.dims, np.moveaxis(new, 0, axis).astype(data.dtype), da.attrs)
    return type(bkg).from_dataset(ds)


def _pad_offset(bkg: Background2D) -> Background2D:
    """Gammapy's ``pad(1, mode="edge", axis_name="offset")``: one more offset bin at each end."""
    e_edges = bkg.edges("energy")
    o = bkg.edges("offset")
    o_new = np.concatenate([[o[0] - (o[1] - o[0])], o, [o[-1] + (o[-1] - o[-2])]])
    values = np.asarray(bkg.ds["background"].transpose("energy", "offset").values)
    values = np.pad(values, [(0, 0), (1, 1)], mode="edge")
    out = Background2D.create(e_edges, o_new, values)
    out.ds.attrs.update({k: v for k, v in bkg.ds.attrs.items() if k != "fits_header"})
    return out


def prepare_background(bkg: Any, interp_missing_data: bool = True, pad_offset: bool = True) -> Any:
    """The background IRF as `MapDatasetMaker` uses it (missing rates filled, 2D padded)."""
    if interp_missing_data:
        bkg = _fill_missing_energy(bkg)
    if pad_offset and isinstance(bkg, Background2D):
        bkg = _pad_offset(bkg)
    return bkg


def make_background(
    bkg: Any,
    pointing: Any,
    ontime: float,
    geom: WcsGeom,
    energy_axis: EnergyAxis,
    fov_alignment: str | None = None,
    *,
    time_start: Time | None = None,
    location: EarthLocation | None = None,
    fov_rotation_step: float = 1.0,
    oversampling: int | None = None,
    interp_missing_data: bool = True,
    pad_offset: bool = True,
) -> xr.DataArray:
    """Predicted background counts ``(energy, lat, lon)``.

    Parameters
    ----------
    bkg : Background3D or Background2D
        Background rate model.
    pointing : SkyCoord or (ra, dec)
        Fixed pointing (ICRS deg).
    ontime : float
        Observation time (s, not dead-time corrected).
    geom, energy_axis :
        Sky grid and reconstructed-energy axis.
    fov_alignment : {"RADEC", "ALTAZ", "REVERSE_LON_RADEC"}, optional
        Orientation of the FoV coordinates (default: the IRF's).
    time_start, location :
        Start of the observation and observatory location; needed for ALTAZ.
    fov_rotation_step : float
        Maximum FoV rotation (deg) per time step for ALTAZ.
    oversampling : int, optional
        Log-even energy sub-bins per bin.
    interp_missing_data, pad_offset : bool
        Gammapy's IRF preprocessing (see `prepare_background`).
    """
    bkg = prepare_background(bkg, interp_missing_data, pad_offset)
    radec = as_radec(pointing)
    edges = energy_axis.to_unit("TeV").edges
    if isinstance(bkg, Background2D):
        rate = bkg.integrate_energy(edges, offsets(geom, radec), oversampling=oversampling)
    else:
        align = (fov_alignment or bkg.fov_alignment).upper()
        if align == "ALTAZ":
            if time_start is None or location is None:
                raise ValueError("an ALTAZ-aligned background needs time_start and location")
            times = rotation_times(radec, time_start, ontime, location, fov_rotation_step)
            lon, lat = fov_altaz(geom, radec, times, location)
            per_time = integrate_bins(bkg.evaluate, edges, (lon, lat), oversampling)
            dt = (times - times[0]).to_value("s")
            rate = np.trapezoid(per_time, dt, axis=1) / (dt[-1] - dt[0])
        else:
            lon, lat = fov_radec(geom, radec, reverse_lon=align == "REVERSE_LON_RADEC")
            rate = integrate_bins(
                bilinear_background_evaluator(bkg), edges, (lon, lat), oversampling
            )
    data = rate * geom.solid_angle() * float(ontime)
    return _cube(data, geom, energy_axis, "background", "")


# ----------------------------------------------------------------------------- IRF maps


def _exposure_cm2(exposure: np.ndarray | xr.DataArray | None) -> np.ndarray | None:
    """The stacking weight of an IRF map: exposure on ``geom_irf`` from m2 s to cm2 s."""
    return None if exposure is None else np.asarray(exposure, dtype=float) * _M2_TO_CM2


def make_psf_map(
    psf: Any,
    pointing: Any,
    geom_irf: WcsGeom,
    energy_axis_true: EnergyAxis,
    rad_axis: Axis | None = None,
    exposure: np.ndarray | xr.DataArray | None = None,
) -> xr.Dataset:
    """PSF map on the IRF grid: variables ``psf`` (sr^-1) and ``psf_exposure`` (cm2 s).

    The PSF is evaluated at the rad bin centres, true-energy bin centres and
    each IRF pixel centre's offset, then normalised per pixel and energy so that
    ``sum(2 pi r dr psf) = 1`` over the rad axis (Gammapy's ``PSFMap``).

    Parameters
    ----------
    psf : PSFTable, PSF3Gauss or PSFKing
    pointing : SkyCoord or (ra, dec)
    geom_irf : WcsGeom
        IRF sky grid (see `irf_geom`).
    energy_axis_true : EnergyAxis
    rad_axis : Axis, optional
        Default `default_rad_axis`.
    exposure : array (energy_true, lat, lon) in m2 s, optional
        Exposure on ``geom_irf`` (the stacking weight).
    """
    rad_axis = rad_axis or default_rad_axis()
    off = offsets(geom_irf, as_radec(pointing))
    e = energy_axis_true.to_unit("TeV").center
    rad_c = rad_axis.to_unit("deg").center
    if isinstance(psf, PSFTable):
        values = eval_psf(psf, e, rad_c, off)
    else:
        values = psf.evaluate(e[:, None, None, None], off[None, None], rad_c[None, :, None, None])
    ring = 2 * np.pi * rad_c * rad_axis.to_unit("deg").widths  # deg2
    norm = np.max(np.cumsum(values * ring[None, :, None, None], axis=1), axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        data = np.nan_to_num(values / norm) / _SR_PER_DEG2
    ex = _exposure_cm2(exposure)
    m = PSFMap(data, BandAxis(energy_axis_true), BandAxis(rad_axis), geom_irf, ex)
    return m.to_dataset()


def make_edisp_kernel_map(
    edisp: Any,
    pointing: Any,
    geom_irf: WcsGeom,
    energy_axis_true: EnergyAxis,
    energy_axis: EnergyAxis,
    exposure: np.ndarray | xr.DataArray | None = None,
    threshold: float = 1e-8,
) -> xr.Dataset:
    """Energy-dispersion kernel map: ``edisp(edisp_energy_true, edisp_energy, lat, lon)``.

    The migration pdf is evaluated on the IRF's own migration axis at the
    true-energy bin centres and each IRF pixel's offset, normalised, and its
    cumulative integral differenced across the reconstructed-energy bins
    (`EnergyDispersion2D.reco_probabilities`; Gammapy's
    ``make_edisp_kernel_map``). Values below ``threshold`` are set to 0.
    ``exposure`` (m2 s on ``geom_irf``) becomes ``edisp_exposure`` (cm2 s).
    """
    off = offsets(geom_irf, as_radec(pointing))
    e_true = energy_axis_true.to_unit("TeV").center
    e_reco = energy_axis.to_unit("TeV").edges
    if isinstance(edisp, EnergyDispersion2D):
        pdf = np.moveaxis(
            eval_edisp_pdf(edisp, e_true, off), 1, -1
        )  # (energy_true, lat, lon, migra)
        probs = reco_bin_probabilities(
            pdf, edisp.edges("migra"), e_true[:, None, None], e_reco, threshold=threshold
        )
    else:
        probs = edisp.reco_probabilities(
            e_true[:, None, None], off[None], e_reco, threshold=threshold
        )
    data = np.moveaxis(probs, -1, 1)
    ex = _exposure_cm2(exposure)
    m = EDispKernelMap(data, BandAxis(energy_axis_true), BandAxis(energy_axis), geom_irf, ex)
    return m.to_dataset()


# ----------------------------------------------------------------------------- dataset


def make_map_dataset(
    observation: Any,
    geom: WcsGeom,
    energy_axis: EnergyAxis,
    energy_axis_true: EnergyAxis | None = None,
    binsz_irf: float = BINSZ_IRF_DEFAULT,
    selection: Sequence[str] = SELECTION_ALL,
    *,
    rad_axis: Axis | None = None,
    cutout_width: float | tuple[float, float] | None = None,
    cutout_mode: str = "trim",
    safe_mask: Sequence[str] | None = None,
    offset_max: float = 3.0,
    safe_mask_kwargs: dict[str, Any] | None = None,
    fov_background: str | None = None,
    exclusion_mask: np.ndarray | xr.DataArray | None = None,
    background_oversampling: int | None = None,
    fov_rotation_step: float = 1.0,
    name: str | None = None,
) -> xr.Dataset:
    """Reduce one observation to a map dataset (Gammapy's MapDatasetMaker, then optionally
    SafeMaskMaker and FoVBackgroundMaker).

    Parameters
    ----------
    observation : `gdask.dl3.Observation`
        Events, GTI and IRFs (from FITS or the archive store).
    geom : WcsGeom
        Counts sky grid.
    energy_axis, energy_axis_true : EnergyAxis
        Reconstructed and true energy (default: a copy of ``energy_axis``).
    binsz_irf : float
        Pixel size (deg) of the PSF and energy-dispersion maps.
    selection : sequence of str
        Maps to make among counts, exposure, background, psf, edisp.
    rad_axis : Axis, optional
        PSF rad axis (default 0-0.66 deg, 66 bins).
    cutout_width, cutout_mode :
        If given, work on a cutout of ``geom`` (and of its IRF grid) of this
        width (deg) around the pointing, as Gammapy's ``DatasetsMaker``.
    safe_mask : sequence of str, optional
        Safe-mask methods (see `gdask.reduce.safe_mask.make_safe_mask`); None
        leaves ``mask_safe`` all True (MapDatasetMaker alone).
    offset_max, safe_mask_kwargs :
        Options of the safe mask (``aeff_percent``, ``bias_percent``, ``position``, ...).
    fov_background : {"scale", "fit"}, optional
        Normalise the background on the counts (`gdask.reduce.fov_background`).
    exclusion_mask : bool array (lat, lon), optional
        True where pixels may be used for the FoV normalisation (on ``geom``).
    background_oversampling, fov_rotation_step :
        Options of the background map.
    name : str, optional
        Dataset name (default the OBS_ID).

    Returns
    -------
    xarray.Dataset
        ``counts``, ``exposure`` (m2 s), ``background``, ``mask_safe`` on
        ``(energy|energy_true, lat, lon)``; ``psf``/``psf_exposure`` and
        ``edisp``/``edisp_exposure`` on the prefixed IRF grids; attrs with the
        WCS, ``obs_id``, pointing, ``livetime``, ``ontime`` and, with
        ``fov_background``, ``bkg_norm`` and ``bkg_norm_error``.
    """
    unknown = set(selection) - set(SELECTION_ALL)
    if unknown:
        raise ValueError(f"unknown selection {sorted(unknown)}; choose from {SELECTION_ALL}")
    info = ObservationInfo.from_observation(observation)
    energy_axis_true = energy_axis_true or EnergyAxis(
        energy_axis.edges, name="energy_true", unit=energy_axis.unit
    )
    geom_irf = irf_geom(geom, binsz_irf)
    if cutout_width is not None:
        parent = geom
        position = SkyCoord(info.ra_pnt, info.dec_pnt, unit="deg", frame="icrs")
        geom = geom.cutout(position, cutout_width, mode=cutout_mode)
        geom_irf = geom_irf.cutout(position, cutout_width, mode=cutout_mode, min_npix=3)
        if exclusion_mask is not None:
            exclusion_mask = _cut_image(exclusion_mask, parent, geom)
    pnt = info.pointing
    irfs = observation.irfs
    parts: list[xr.Dataset] = []
    data_vars: dict[str, xr.DataArray] = {}
    if "counts" in selection:
        data_vars["counts"] = make_counts(observation.events, geom, energy_axis)
    else:
        data_vars["counts"] = _cube(
            np.zeros((energy_axis.nbin,) + geom.shape), geom, energy_axis, "counts", ""
        )
    if "exposure" in selection:
        data_vars["exposure"] = make_exposure(
            irfs["aeff"], pnt, info.livetime, geom, energy_axis_true
        )
    if "background" in selection:
        data_vars["background"] = make_background(
            irfs["bkg"],
            pnt,
            info.ontime,
            geom,
            energy_axis,
            fov_alignment="REVERSE_LON_RADEC" if info.bkg_reverse_lon else None,
            time_start=info.time_start,
            location=info.location,
            fov_rotation_step=fov_rotation_step,
            oversampling=background_oversampling,
        )
    exposure_irf = None
    if "psf" in selection or "edisp" in selection:
        exposure_irf = _exposure_values(
            irfs["aeff"],
            offsets(geom_irf, pnt),
            energy_axis_true.to_unit("TeV").center,
            info.livetime,
        )
    if "psf" in selection:
        parts.append(
            make_psf_map(irfs["psf"], pnt, geom_irf, energy_axis_true, rad_axis, exposure_irf)
        )
    if "edisp" in selection:
        parts.append(
            make_edisp_kernel_map(
                irfs["edisp"], pnt, geom_irf, energy_axis_true, energy_axis, exposure_irf
            )
        )
    ds = xr.Dataset({k: v.copy(data=v.values) for k, v in data_vars.items()})
    for k, v in data_vars.items():
        ds[k].attrs = {"units": v.attrs.get("units", "")}
    for ax in (energy_axis, energy_axis_true):
        ds = ds.assign_coords(ax.to_coords()) if ax.name in ds.dims else ds
    ds["mask_safe"] = (
        ("energy", "lat", "lon"),
        np.ones((energy_axis.nbin,) + geom.shape, dtype=bool),
    )
    for part in parts:
        ds = _merge(ds, part)
    ds.attrs.update(geom.to_attrs())
    ds.attrs.update(
        {
            "name": str(name if name is not None else info.obs_id),
            "obs_id": info.obs_id,
            "ra_pnt": info.ra_pnt,
            "dec_pnt": info.dec_pnt,
            "livetime": info.livetime,
            "ontime": info.ontime,
            "tstart": info.tstart,
            "mjdref": float(info.time_ref.mjd),
        }
    )
    if safe_mask is not None:
        from gdask.reduce.safe_mask import make_safe_mask

        kwargs = dict(safe_mask_kwargs or {})
        kwargs.setdefault("offset_max", offset_max)
        ds["mask_safe"] = make_safe_mask(ds, info, methods=safe_mask, **kwargs)
    if fov_background is not None:
        from gdask.reduce.fov_background import apply_fov_background

        ds = apply_fov_background(ds, exclusion_mask=exclusion_mask, method=fov_background)
    return ds


def _merge(ds: xr.Dataset, part: xr.Dataset) -> xr.Dataset:
    attrs = {**ds.attrs, **part.attrs}
    out = xr.merge([ds, part], compat="override", join="exact", combine_attrs="override")
    out.attrs = attrs
    return out


def _cut_image(mask: Any, parent: WcsGeom, geom: WcsGeom) -> np.ndarray:
    """The part of an image on ``parent`` covered by the aligned cutout ``geom`` (False elsewhere)."""
    out = np.zeros(geom.shape, dtype=bool)
    sl = geom.cutout_slices(parent)
    out[sl["cutout-slices"]] = np.asarray(mask, dtype=bool)[sl["parent-slices"]]
    return out

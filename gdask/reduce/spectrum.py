"""1D (ON/OFF) spectrum extraction for one observation, as pure functions.

`make_spectrum_onoff` reproduces Gammapy 2.1's chain
``SpectrumDatasetMaker(selection=["counts", "exposure", "edisp"])`` ->
``ReflectedRegionsBackgroundMaker`` -> ``SafeMaskMaker`` for one observation:

- ON counts: events inside the ON region (containment decided in a TAN
  projection centred on the region); for point-like IRFs with a point ON
  region, events within RAD_MAX(E, offset) of its centre;
- OFF counts: events inside the OFF regions of a finder (reflected regions by
  default; containment decided in the finder's reference projection);
  ``acceptance = 1``, ``acceptance_off = n_off`` so that ``alpha = 1 / n_off``;
- exposure: ``aeff(E_true, offset) * livetime`` at the offset of the ON-region
  centre, times the PSF containment within the ON radius when asked;
  ``livetime = sum(GTI) * DEADC``;
- energy dispersion: the probability per reconstructed-energy bin at that offset;
- safe mask (Gammapy's DL4 ``SafeMaskMaker`` on the spectrum): ``aeff-max``
  (on the exposure), ``aeff-default`` (LO_THRES/HI_THRES of the aeff header),
  ``edisp-bias`` (on the kernel), ``bkg-peak`` (peak of the IRF background
  predicted at the ON-region centre; needs a background IRF) and
  ``offset-max``.

The result is an `xarray.Dataset` (see `make_spectrum_onoff`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from numpy.typing import NDArray
from regions import CircleSkyRegion, PointSkyRegion, Regions, SkyRegion

from gdask.dl3 import Observation
from gdask.dl3.irf import RadMax2D
from gdask.errors import GdaskError
from gdask.geometry import EnergyAxis, RadMaxRegion, region_center, region_contains
from gdask.reduce.reflected import (
    ReflectedRegionsFinder,
    WobbleRegionsFinder,
    as_exclusion_mask,
)
from gdask.reduce.safe_mask import (
    energy_range_mask,
    threshold_aeff_max,
    threshold_bkg_peak,
    threshold_edisp_bias,
)

__all__ = [
    "make_spectrum_onoff",
    "observation_pointing",
    "observation_livetime",
    "observation_rad_max",
    "make_counts_on",
    "make_counts_off",
    "make_exposure_1d",
    "make_edisp_kernel_1d",
    "make_mask_safe_aeff_max_1d",
    "background_peak_energy_1d",
    "SAFE_MASK_METHODS_1D",
    "regions_overlap_rad_max",
]

# -- observation helpers -----------------------------------------------------------


def observation_pointing(observation: Observation) -> SkyCoord:
    """The ICRS pointing (RA_PNT, DEC_PNT of the events header)."""
    ra, dec = observation.events.pointing
    return SkyCoord(ra, dec, unit="deg", frame="icrs")


def observation_livetime(observation: Observation) -> float:
    """Live time in s: summed GTI times DEADC (1 when absent), as Gammapy computes it."""
    deadc = float(observation.events.ds.attrs.get("deadc", 1.0))
    return float(observation.gti.time_sum) * (1.0 - (1.0 - deadc))


def observation_rad_max(observation: Observation) -> RadMax2D | None:
    """The directional cut: the RAD_MAX_2D HDU, else the aeff header's RAD_MAX, else None."""
    if "rad_max" in observation.irfs:
        return observation.irfs["rad_max"]
    aeff = observation.irfs.get("aeff")
    if aeff is not None and aeff.point_like and aeff.rad_max is not None:
        return RadMax2D.from_irf(aeff)
    return None


def _rad_max_region(rad_max: RadMax2D, center: SkyCoord, offset: float) -> RadMaxRegion:
    """The cut around ``center`` at ``offset`` (nearest node, Gammapy's event selection)."""
    if rad_max.is_fixed:
        return RadMaxRegion.fixed(center, float(rad_max.ds["rad_max"].values.ravel()[0]))
    return RadMaxRegion.from_table(
        center,
        rad_max.edges("energy"),
        rad_max.edges("offset"),
        rad_max.ds["rad_max"].transpose("energy", "offset").values,
        offset,
    )


# -- counts -----------------------------------------------------------------------------


def _histogram(energy: NDArray, energy_axis: EnergyAxis) -> NDArray[np.int64]:
    idx = energy_axis.coord_to_idx(energy)
    return np.bincount(idx[idx >= 0], minlength=energy_axis.nbin).astype(np.int64)


def make_counts_on(
    observation: Observation,
    on_region: SkyRegion | SkyCoord,
    energy_axis: EnergyAxis,
    rad_max: RadMax2D | None = None,
) -> NDArray[np.int64]:
    """ON counts per reconstructed-energy bin.

    An extended region selects the events it contains. A point (``SkyCoord``
    or ``PointSkyRegion``) selects events within ``rad_max(E, offset)`` of it.
    """
    events = observation.events
    ra, dec = events.radec
    energy = events.energy.to_value(u.TeV)
    if isinstance(on_region, SkyCoord | PointSkyRegion):
        center = on_region if isinstance(on_region, SkyCoord) else on_region.center
        if rad_max is None:
            raise GdaskError(
                "a point ON region needs a RAD_MAX cut", obs_id=observation.obs_id, field="RAD_MAX"
            )
        offset = center.separation(observation_pointing(observation)).deg
        mask = _rad_max_region(rad_max, center.icrs, offset).contains(ra, dec, energy)
    else:
        mask = region_contains(on_region, ra, dec)
    return _histogram(energy[mask], energy_axis)


def make_counts_off(
    observation: Observation,
    off_regions: Sequence[SkyRegion],
    wcs: WCS | None,
    energy_axis: EnergyAxis,
    rad_max: RadMax2D | None = None,
) -> NDArray[np.int64]:
    """OFF counts per bin: events in any OFF region (decided in ``wcs``).

    Point OFF regions (wobble finder with a point ON region) select events
    within RAD_MAX of each centre; an event is counted once per region.
    """
    counts = np.zeros(energy_axis.nbin, dtype=np.int64)
    if not off_regions:
        return counts
    events = observation.events
    ra, dec = events.radec
    energy = events.energy.to_value(u.TeV)
    if all(isinstance(r, PointSkyRegion) for r in off_regions):
        if rad_max is None:
            raise GdaskError(
                "point OFF regions need a RAD_MAX cut", obs_id=observation.obs_id, field="RAD_MAX"
            )
        pointing = observation_pointing(observation)
        for reg in off_regions:
            offset = reg.center.separation(pointing).deg
            mask = _rad_max_region(rad_max, reg.center.icrs, offset).contains(ra, dec, energy)
            counts += _histogram(energy[mask], energy_axis)
        return counts
    mask = region_contains(list(off_regions), ra, dec, wcs=wcs)
    return _histogram(energy[mask], energy_axis)


def regions_overlap_rad_max(
    centers: SkyCoord, rad_max: RadMax2D, offset: float, energy_axis: EnergyAxis
) -> bool:
    """Whether circles of radius RAD_MAX around ``centers`` overlap (Gammapy's check).

    RAD_MAX is taken at its energy nodes overlapping the analysis energy range.
    """
    n = len(centers)
    i, j = np.triu_indices(n, k=1)
    sep = centers[i].separation(centers[j]).deg
    e_nodes = rad_max.nodes("energy")
    radius = np.atleast_1d(rad_max.evaluate(e_nodes, offset))
    lo, hi = rad_max.edges("energy")[:-1], rad_max.edges("energy")[1:]
    if rad_max.is_fixed:
        keep = np.ones(radius.shape, dtype=bool)
    else:
        keep = (hi >= energy_axis.edges[0]) & (lo <= energy_axis.edges[-1])
    return bool(np.any(sep[None, :] < 2 * radius[keep][:, None]))


# -- IRFs at the ON position -------------------------------------------------------------


def make_exposure_1d(
    observation: Observation,
    offset: float,
    energy_axis_true: EnergyAxis,
    livetime: float,
    containment_radius: float | None = None,
) -> NDArray[np.float64]:
    """Exposure (m2 s) at the bin centres of ``energy_axis_true`` and ``offset`` deg.

    With ``containment_radius`` (deg) the exposure is multiplied by the PSF
    containment fraction within that radius (Gammapy's containment correction).
    """
    energy = energy_axis_true.center
    exposure = observation.irfs["aeff"].evaluate(energy, offset) * livetime
    if containment_radius is not None:
        psf = observation.irfs.get("psf")
        if psf is None:
            raise GdaskError(
                "containment correction needs a PSF", obs_id=observation.obs_id, field="psf"
            )
        exposure = exposure * psf.containment(energy, offset, containment_radius)
    return np.asarray(exposure, dtype=float)


def make_edisp_kernel_1d(
    observation: Observation, offset: float, energy_axis_true: EnergyAxis, energy_axis: EnergyAxis
) -> NDArray[np.float64]:
    """Probabilities ``(energy_true, energy)`` to reconstruct each true energy in each bin."""
    edisp = observation.irfs["edisp"]
    return edisp.reco_probabilities(energy_axis_true.center, offset, energy_axis.edges)


# -- safe mask -------------------------------------------------------------------------------


def make_mask_safe_aeff_max_1d(
    exposure: NDArray,
    livetime: float,
    energy_axis_true: EnergyAxis,
    energy_axis: EnergyAxis,
    aeff_percent: float = 10.0,
) -> NDArray[np.bool_]:
    """Safe reconstructed-energy bins from the effective area (exposure / livetime).

    As Gammapy's ``SafeMaskMaker`` method ``aeff-max`` on DL4 IRFs: the lowest
    true energy where the log-log interpolated effective area reaches
    ``aeff_percent`` % of its maximum (`gdask.reduce.safe_mask.threshold_aeff_max`);
    reco bins with a lower edge below it are unsafe; all unsafe if the area is zero.
    """
    aeff = np.asarray(exposure, dtype=float) / livetime
    threshold = threshold_aeff_max(aeff, energy_axis_true.center, aeff_percent)
    if threshold is None:
        return np.zeros(energy_axis.nbin, dtype=bool)
    return energy_range_mask(energy_axis.edges, threshold)


def _mask_offset_max(offset: float, offset_max: float, nbin: int) -> NDArray[np.bool_]:
    return np.full(nbin, offset < offset_max)


#: safe-mask methods of the 1D reduction
SAFE_MASK_METHODS_1D = ("aeff-default", "aeff-max", "edisp-bias", "offset-max", "bkg-peak")


def background_peak_energy_1d(
    observation: Observation, position: SkyCoord, energy_axis: EnergyAxis
) -> float:
    """Lower edge (TeV) of the reconstructed-energy bin where the IRF background predicted at
    ``position`` peaks (Gammapy's DL4 ``bkg-peak`` on a spectrum: the region's background is
    the rate at its centre times its solid angle, so the solid angle does not move the peak)."""
    from gdask.dl3 import ObservationInfo
    from gdask.geometry import WcsGeom
    from gdask.reduce.maps import make_background

    if "bkg" not in observation.irfs:
        raise GdaskError(
            "safe mask 'bkg-peak' needs a background IRF",
            obs_id=observation.obs_id,
            field="makers.safe_mask.methods",
        )
    info = ObservationInfo.from_observation(observation)
    c = position.icrs
    geom = WcsGeom.create(
        skydir=(float(c.ra.deg), float(c.dec.deg)), binsz=0.01, width=0.01, frame="icrs"
    )
    bkg = make_background(
        observation.irfs["bkg"],
        info.pointing,
        info.ontime,
        geom,
        energy_axis,
        fov_alignment="REVERSE_LON_RADEC" if info.bkg_reverse_lon else None,
        time_start=info.time_start,
        location=info.location,
    )
    return threshold_bkg_peak(bkg.transpose("energy", ...).values, energy_axis.edges)


def _safe_mask_1d(
    methods: Sequence[str],
    observation: Observation,
    center: SkyCoord,
    offset: float,
    exposure: NDArray,
    edisp: NDArray,
    livetime: float,
    energy_axis: EnergyAxis,
    energy_axis_true: EnergyAxis,
    aeff_percent: float,
    bias_percent: float,
    offset_max: float,
) -> NDArray[np.bool_]:
    mask = np.ones(energy_axis.nbin, dtype=bool)
    unknown = set(methods) - set(SAFE_MASK_METHODS_1D)
    if unknown:
        raise ValueError(
            f"unknown safe-mask method(s) {sorted(unknown)}; known: {SAFE_MASK_METHODS_1D}"
        )
    edges = energy_axis.edges
    if "aeff-max" in methods:
        mask &= make_mask_safe_aeff_max_1d(
            exposure, livetime, energy_axis_true, energy_axis, aeff_percent
        )
    if "aeff-default" in methods:
        from gdask.dl3 import ObservationInfo

        lo, hi = ObservationInfo.from_observation(observation).aeff_thresholds
        mask &= energy_range_mask(edges, lo, hi)
    if "edisp-bias" in methods:
        e = threshold_edisp_bias(edisp, energy_axis_true.center, energy_axis.center, bias_percent)
        mask &= energy_range_mask(edges, e)
    if "bkg-peak" in methods:
        mask &= energy_range_mask(
            edges, background_peak_energy_1d(observation, center, energy_axis)
        )
    if "offset-max" in methods:
        mask &= _mask_offset_max(offset, offset_max, energy_axis.nbin)
    return mask


# -- the maker ---------------------------------------------------------------------------------


def _regions_to_string(regions: Sequence[SkyRegion]) -> str:
    return Regions(list(regions)).serialize(format="ds9") if regions else ""


def make_spectrum_onoff(
    observation: Observation,
    on_region: SkyRegion | SkyCoord,
    energy_axis: EnergyAxis,
    energy_axis_true: EnergyAxis,
    exclusion_mask: Any = None,
    containment_correction: bool = False,
    region_finder: ReflectedRegionsFinder | WobbleRegionsFinder | None = None,
    safe_mask_methods: Sequence[str] = ("aeff-max",),
    aeff_percent: float = 10.0,
    offset_max: float = 3.0,
    bias_percent: float = 10.0,
) -> xr.Dataset:
    """ON/OFF spectrum of one observation (Gammapy 2.1's 1D reduction).

    Parameters
    ----------
    observation : Observation
        Events, GTI and IRFs (aeff, edisp; psf for containment correction;
        rad_max or a point-like aeff with RAD_MAX for point ON regions).
    on_region : SkyRegion or SkyCoord
        The ON region: a circle (or any extended sky region), or a point
        (``SkyCoord``/``PointSkyRegion``) whose size is the IRF's RAD_MAX.
    energy_axis, energy_axis_true : EnergyAxis
        Reconstructed and true energy binning.
    exclusion_mask : xarray.DataArray or path, optional
        Boolean mask, False where excluded (see `gdask.reduce.reflected`).
    containment_correction : bool
        Multiply the exposure by the PSF containment within the ON radius
        (circle ON region, full-enclosure IRFs only).
    region_finder : finder, optional
        OFF-region finder; default `ReflectedRegionsFinder()` (Gammapy's
        defaults). A point ON region needs a `WobbleRegionsFinder`.
    safe_mask_methods : sequence of str
        Any of `SAFE_MASK_METHODS_1D`; empty for no safe mask.
    aeff_percent : float
        Threshold of ``aeff-max`` in % of the maximum effective area.
    offset_max : float
        Maximum offset (deg) of ``offset-max``.
    bias_percent : float
        Threshold of ``edisp-bias`` in % energy bias.

    Returns
    -------
    xarray.Dataset
        Variables ``counts(energy)``, ``counts_off(energy)``,
        ``acceptance(energy)``, ``acceptance_off(energy)``,
        ``exposure(energy_true)`` (m2 s), ``edisp(energy_true, energy)``,
        ``edisp_exposure(energy_true)`` (exposure without containment
        correction, the weight for stacking the dispersion),
        ``mask_safe(energy)`` and ``livetime`` (s); attrs ``obs_id``,
        ``offset`` (deg), ``ra_pnt``/``dec_pnt``, ``n_off_regions``,
        ``on_region``/``off_regions`` (ds9 strings), ``is_pointlike``.
    """
    if isinstance(on_region, SkyCoord):
        on_region = PointSkyRegion(center=on_region)
    obs_id = observation.obs_id
    pointing = observation_pointing(observation)
    center = region_center(on_region)
    offset = float(center.separation(pointing).deg)
    livetime = observation_livetime(observation)
    aeff = observation.irfs["aeff"]
    is_pointlike = bool(aeff.point_like)
    rad_max = observation_rad_max(observation) if is_pointlike else None
    is_point = isinstance(on_region, PointSkyRegion)

    if rad_max is not None and not is_point:
        fixed = rad_max.is_fixed and isinstance(on_region, CircleSkyRegion)
        radius = float(rad_max.ds["rad_max"].values.ravel()[0]) if fixed else None
        if not fixed or not np.isclose(on_region.radius.deg, radius, rtol=1e-3, atol=1e-8):
            raise GdaskError(
                f"point-like IRFs: the ON region must be a point or a circle of radius RAD_MAX ({radius} deg)",
                obs_id=obs_id,
                field="RAD_MAX",
            )
    if is_point and rad_max is None:
        raise GdaskError(
            "a point ON region needs point-like IRFs with RAD_MAX", obs_id=obs_id, field="RAD_MAX"
        )

    counts = make_counts_on(observation, on_region, energy_axis, rad_max)

    exclusion_mask = as_exclusion_mask(exclusion_mask)
    finder = ReflectedRegionsFinder() if region_finder is None else region_finder
    off_regions, wcs = finder.run(on_region, pointing, exclusion_mask)
    if is_point and off_regions:
        centers = SkyCoord([on_region.center.icrs] + [r.center.icrs for r in off_regions])
        if regions_overlap_rad_max(centers, rad_max, offset, energy_axis):
            off_regions = []
    counts_off = make_counts_off(observation, off_regions, wcs, energy_axis, rad_max)
    n_off = len(off_regions)

    radius = None
    if containment_correction:
        if is_pointlike:
            raise ValueError("Cannot apply containment correction for point-like IRF.")
        if not isinstance(on_region, CircleSkyRegion):
            raise TypeError("Containment correction only supported for circular regions.")
        radius = float(on_region.radius.deg)
    edisp_exposure = make_exposure_1d(observation, offset, energy_axis_true, livetime)
    exposure = (
        make_exposure_1d(observation, offset, energy_axis_true, livetime, radius)
        if radius is not None
        else edisp_exposure
    )
    edisp = make_edisp_kernel_1d(observation, offset, energy_axis_true, energy_axis)

    mask_safe = _safe_mask_1d(
        safe_mask_methods,
        observation,
        center,
        offset,
        exposure,
        edisp,
        livetime,
        energy_axis,
        energy_axis_true,
        aeff_percent,
        bias_percent,
        offset_max,
    )
    if n_off == 0:  # Gammapy: no OFF region -> nothing usable
        mask_safe[:] = False

    e, et = ("energy",), ("energy_true",)
    coords = {**energy_axis.to_coords(), **energy_axis_true.to_coords()}
    ds = xr.Dataset(
        {
            "counts": (e, counts, {"units": ""}),
            "counts_off": (e, counts_off, {"units": ""}),
            "acceptance": (e, np.ones(energy_axis.nbin), {"units": ""}),
            "acceptance_off": (e, np.full(energy_axis.nbin, float(n_off)), {"units": ""}),
            "exposure": (et, exposure, {"units": "m2 s"}),
            "edisp_exposure": (et, edisp_exposure, {"units": "m2 s"}),
            "edisp": (et + e, edisp, {"units": ""}),
            "mask_safe": (e, mask_safe),
            "livetime": ((), livetime, {"units": "s"}),
        },
        coords=coords,
        attrs={
            "obs_id": int(obs_id),
            "offset": offset,
            "ra_pnt": float(pointing.ra.deg),
            "dec_pnt": float(pointing.dec.deg),
            "n_off_regions": n_off,
            "on_region": _regions_to_string([on_region]),
            "off_regions": _regions_to_string(off_regions),
            "is_pointlike": int(is_pointlike),
            "containment_correction": int(radius is not None),
        },
    )
    return ds

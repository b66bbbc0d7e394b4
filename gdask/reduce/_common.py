"""Shared helpers of the reduction makers: observation facts and field-of-view coordinates.

Private: the public makers live in `gdask.reduce.maps`, `safe_mask` and
`fov_background`. Everything here is plain numpy (plus astropy for the
horizontal-frame transforms of ALTAZ-aligned background models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, angular_separation
from astropy.coordinates.erfa_astrom import ErfaAstromInterpolator, erfa_astrom
from astropy.time import Time
from numpy.typing import NDArray

from gdask.errors import FormatError
from gdask.geometry import WcsGeom
from gdask.geometry.fov import fov_rotation, radec_to_fov, rotate_to_fov, unit_vectors

__all__ = [
    "ObservationInfo",
    "as_radec",
    "icrs_coords",
    "offsets",
    "fov_radec",
    "rotation_times",
    "fov_altaz",
]

#: Earth rotation rate used for the FoV-rotation time steps (deg per day, as Gammapy)
_EARTH_DEG_PER_DAY = 360.0
_MIN_STEP_S = 1.0


def as_radec(pointing: Any) -> tuple[float, float]:
    """(ra, dec) in deg from a SkyCoord (any frame) or a pair of floats (ICRS deg)."""
    if isinstance(pointing, SkyCoord):
        icrs = pointing.icrs
        return float(icrs.ra.deg), float(icrs.dec.deg)
    ra, dec = pointing
    return float(ra), float(dec)


@dataclass(frozen=True)
class ObservationInfo:
    """The facts of one observation the makers need, taken where Gammapy 2.1 takes them.

    Attributes
    ----------
    obs_id : int
    ra_pnt, dec_pnt : float
        Fixed pointing (deg ICRS) from the EVENTS header ``RA_PNT``/``DEC_PNT``
        (float64 there; the obs-index copy is float32).
    ontime : float
        Sum of the GTIs (s): Gammapy's ``observation_time_duration``.
    livetime : float
        ``ontime * (1 - (1 - DEADC))`` (s), DEADC from the EVENTS header.
    tstart : float
        Start of the first GTI (s since MJDREF).
    time_ref : Time
        MJDREF.
    location : EarthLocation or None
        From GEOLON/GEOLAT and GEOALT or ALTITUDE of the EVENTS header.
    aeff_thresholds : (float or None, float or None)
        ``LO_THRES``/``HI_THRES`` (TeV) of the effective-area header.
    bkg_reverse_lon : bool
        The background has reversed FoV longitudes
        (`gdask.dl3.Observation.background_fov_alignment`, old H.E.S.S. files).
    """

    obs_id: int
    ra_pnt: float
    dec_pnt: float
    ontime: float
    livetime: float
    tstart: float
    time_ref: Time
    location: EarthLocation | None
    aeff_thresholds: tuple[float | None, float | None] = (None, None)
    bkg_reverse_lon: bool = False

    @property
    def pointing(self) -> tuple[float, float]:
        """(ra, dec) in deg."""
        return self.ra_pnt, self.dec_pnt

    @property
    def time_start(self) -> Time:
        """Start of the first GTI as a Time."""
        return self.time_ref + self.tstart * u.s

    @classmethod
    def from_observation(cls, obs: Any) -> ObservationInfo:
        """Collect the facts from a `gdask.dl3.Observation` (FITS or archive store)."""
        events, gti = obs.events, obs.gti
        if events is None or gti is None:
            raise FormatError("the makers need events and GTI", obs_id=obs.obs_id, field="EVENTS")
        header = events.header
        mode = str(header.get("OBS_MODE", "POINTING")).strip().upper()
        if mode == "DRIFT":
            raise NotImplementedError(
                f"observation {obs.obs_id}: drift-mode pointing is not supported"
            )
        ra, dec = events.pointing
        start, stop = gti.start, gti.stop
        ontime = float(np.sum(stop - start))
        deadc = float(header.get("DEADC", events.ds.attrs.get("deadc", 1.0)))
        return cls(
            obs_id=int(obs.obs_id),
            ra_pnt=ra,
            dec_pnt=dec,
            ontime=ontime,
            livetime=ontime * (1.0 - (1.0 - deadc)),
            tstart=float(start[0]),
            time_ref=gti.time_reference,
            location=_location(header),
            aeff_thresholds=_aeff_thresholds(obs.irfs.get("aeff")),
            bkg_reverse_lon=obs.background_fov_alignment == "REVERSE_LON_RADEC",
        )


def _location(header: Any) -> EarthLocation | None:
    if "GEOLON" not in header or "GEOLAT" not in header:
        return None
    height = header.get("GEOALT", header.get("ALTITUDE"))
    if height is None:
        return None
    return EarthLocation(
        lon=float(header["GEOLON"]) * u.deg,
        lat=float(header["GEOLAT"]) * u.deg,
        height=float(height) * u.m,
    )


def _aeff_thresholds(aeff: Any) -> tuple[float | None, float | None]:
    if aeff is None:
        return None, None
    from astropy.io import fits

    text = aeff.ds.attrs.get("fits_header")
    header = fits.Header.fromstring(text) if text else {}
    out = []
    for key in ("LO_THRES", "HI_THRES"):
        value = header.get(key) if hasattr(header, "get") else None
        out.append(float(value) if value else None)  # 0 or missing: no threshold (as Gammapy)
    return out[0], out[1]


def icrs_coords(geom: WcsGeom) -> tuple[NDArray, NDArray]:
    """ICRS (ra, dec) in deg of the pixel centres of ``geom``, shape ``(ny, nx)``."""
    lon, lat = geom.get_coord()
    if geom.frame == "icrs":
        return lon, lat
    sky = SkyCoord(lon, lat, unit="deg", frame=geom.frame).icrs
    return sky.ra.deg, sky.dec.deg


def offsets(geom: WcsGeom, pointing: tuple[float, float]) -> NDArray:
    """Angular distance (deg) of every pixel centre from the pointing (ICRS deg)."""
    ra, dec = icrs_coords(geom)
    ra0, dec0 = np.deg2rad(pointing[0]), np.deg2rad(pointing[1])
    return np.rad2deg(angular_separation(ra0, dec0, np.deg2rad(ra), np.deg2rad(dec)))


def fov_radec(
    geom: WcsGeom, pointing: tuple[float, float], reverse_lon: bool = False
) -> tuple[NDArray, NDArray]:
    """FoV coordinates (deg) of the pixel centres in the RADEC-aligned frame of ``pointing``."""
    ra, dec = icrs_coords(geom)
    return radec_to_fov(ra, dec, pointing[0], pointing[1], reverse_lon)


def rotation_times(
    pointing: tuple[float, float],
    time_start: Time,
    duration: float,
    location: EarthLocation,
    rotation_step: float = 1.0,
) -> Time:
    """Times from ``time_start`` to ``time_start + duration`` (s) between which the FoV
    rotates by about ``rotation_step`` deg in the horizontal frame (Gammapy's scheme:
    step = rotation cos(alt) / (omega cos(lat_obs) |cos(az)|), at least 1 s)."""
    target = SkyCoord(pointing[0] * u.deg, pointing[1] * u.deg, frame="icrs")
    time_stop = time_start + duration * u.s
    coslat = np.cos(location.lat.rad)
    times = [time_start]
    time = time_start
    while time < time_stop:
        altaz = target.transform_to(AltAz(location=location, obstime=time))
        denom = _EARTH_DEG_PER_DAY * coslat * np.abs(np.cos(altaz.az.rad))
        with np.errstate(divide="ignore"):
            step_days = rotation_step * np.cos(altaz.alt.rad) / denom
        step = max(step_days * 86400.0, _MIN_STEP_S) * u.s
        time = min(time + step, time_stop)
        times.append(time)
    return Time(times)


def fov_altaz(
    geom: WcsGeom,
    pointing: tuple[float, float],
    times: Time,
    location: EarthLocation,
    time_resolution: float = 1000.0,
) -> tuple[NDArray, NDArray]:
    """FoV coordinates (deg) of the pixel centres in the ALTAZ-aligned frame at each time.

    Returns arrays of shape ``(n_times, ny, nx)``. The pixels are transformed to
    AltAz with astropy (astrometry interpolated on ``time_resolution`` s, as
    Gammapy does); the pointing's AltAz is exact.
    """
    ra, dec = icrs_coords(geom)
    target = SkyCoord(pointing[0] * u.deg, pointing[1] * u.deg, frame="icrs")
    origin = target.transform_to(AltAz(location=location, obstime=times))
    pix = SkyCoord(ra[..., None] * u.deg, dec[..., None] * u.deg, frame="icrs")
    with erfa_astrom.set(ErfaAstromInterpolator(time_resolution * u.s)):
        altaz = pix.transform_to(AltAz(location=location, obstime=times))
    xyz = unit_vectors(np.moveaxis(altaz.az.deg, -1, 0), np.moveaxis(altaz.alt.deg, -1, 0))
    matrices = np.stack(
        [fov_rotation(az, alt) for az, alt in zip(origin.az.deg, origin.alt.deg, strict=True)]
    )
    return rotate_to_fov(xyz, matrices)

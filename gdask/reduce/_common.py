"""Shared helpers of the reduction makers: pixel offsets and field-of-view coordinates.

Private: the public makers live in `gdask.reduce.maps`, `safe_mask` and
`fov_background`. Everything here is plain numpy (plus astropy for the
horizontal-frame transforms of ALTAZ-aligned background models).
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, angular_separation
from astropy.coordinates.erfa_astrom import ErfaAstromInterpolator, erfa_astrom
from astropy.time import Time
from numpy.typing import NDArray

from gdask.geometry import WcsGeom
from gdask.geometry.fov import fov_rotation, radec_to_fov, rotate_to_fov, unit_vectors

__all__ = [
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

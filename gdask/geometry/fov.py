"""Field-of-view frames and small-angle sky geometry, as pure numpy functions (deg in, deg out).

Gammapy's FoV frames put the pointing (or, for ALTAZ-aligned backgrounds, the
pointing's horizontal position) at the origin, with longitudes *reversed*
(``fov_lon`` grows to the west). A frame is a rotation matrix
(`fov_rotation`): points are turned into unit vectors (`unit_vectors`),
rotated, and read back as (lon, lat) (`rotate_to_fov`). `radec_to_fov` is the
RADEC-aligned frame of sky points; `offset_to_fov` the same frame for a point
given by its offset from the pointing (separation, position angle).
`offset_by` and `separation` move along and measure great circles.

Examples
--------
>>> lon, lat = radec_to_fov(np.array([84.6]), np.array([22.0]), 83.6, 22.0)
>>> bool(lon[0] < 0)  # east of the pointing: negative FoV longitude
True
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates.matrix_utilities import rotation_matrix
from numpy.typing import NDArray

__all__ = [
    "fov_rotation",
    "offset_by",
    "offset_to_fov",
    "radec_to_fov",
    "rotate_to_fov",
    "separation",
    "unit_vectors",
]

_DEG = np.pi / 180.0
_REFLECT_LON = np.diag([1.0, -1.0, 1.0])


def unit_vectors(lon_deg: NDArray, lat_deg: NDArray) -> NDArray:
    """Unit vectors, shape ``(3,) + lon.shape``, of directions (lon, lat) in deg."""
    lon, lat = np.deg2rad(lon_deg), np.deg2rad(lat_deg)
    cl = np.cos(lat)
    return np.stack([cl * np.cos(lon), cl * np.sin(lon), np.sin(lat)])


def fov_rotation(lon0_deg: float, lat0_deg: float) -> NDArray:
    """Rotation taking (lon0, lat0) to the FoV origin, longitudes reversed (Gammapy's FoV frames)."""
    return (
        _REFLECT_LON
        @ rotation_matrix(-lat0_deg * u.deg, "y")
        @ rotation_matrix(lon0_deg * u.deg, "z")
    )


def rotate_to_fov(xyz: NDArray, matrix: NDArray) -> tuple[NDArray, NDArray]:
    """Rotate unit vectors (3, ...) by ``matrix`` (3, 3, or nt, 3, 3 with xyz (3, nt, ...)).

    Returns the (lon, lat) in deg of the rotated vectors.
    """
    if matrix.ndim == 2:
        x, y, z = np.tensordot(matrix, xyz, axes=(1, 0))
    else:  # one matrix per time step: matrix (nt, 3, 3), xyz (3, nt, ...)
        out = np.einsum("tij,jt...->it...", matrix, xyz)
        x, y, z = out
    lon = np.rad2deg(np.arctan2(y, x))
    lat = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    return lon, lat


def radec_to_fov(
    lon: NDArray, lat: NDArray, lon0: float, lat0: float, reverse_lon: bool = False
) -> tuple[NDArray, NDArray]:
    """FoV (lon, lat) in deg of sky points in the frame centred on (lon0, lat0), same sky frame.

    ``reverse_lon`` flips the sign of the FoV longitude (the H.E.S.S. convention of
    some background models).
    """
    fov_lon, fov_lat = rotate_to_fov(unit_vectors(lon, lat), fov_rotation(lon0, lat0))
    return (-fov_lon if reverse_lon else fov_lon), fov_lat


def offset_to_fov(sep: NDArray, pa: NDArray) -> tuple[NDArray, NDArray]:
    """RADEC-aligned FoV (lon, lat) in deg of the point at offset ``sep``, position angle ``pa``.

    The closed form of `radec_to_fov` for a point given by its offset from the
    pointing (position angle east of north); longitudes reversed as Gammapy's.
    """
    s, p = sep * _DEG, pa * _DEG
    lon = np.arctan2(np.sin(s) * np.sin(p), np.cos(s))
    lat = np.arcsin(np.sin(s) * np.cos(p))
    return -lon / _DEG, lat / _DEG


def offset_by(lon: Any, lat: Any, sep: Any, pa: Any) -> tuple[np.ndarray, np.ndarray]:
    """Points at separation ``sep`` and position angle ``pa`` (east of north) from (lon, lat); deg."""
    lon, lat, sep, pa = (np.asarray(x, float) * _DEG for x in (lon, lat, sep, pa))
    slat = np.sin(lat) * np.cos(sep) + np.cos(lat) * np.sin(sep) * np.cos(pa)
    lat2 = np.arcsin(np.clip(slat, -1.0, 1.0))
    dlon = np.arctan2(np.sin(pa) * np.sin(sep) * np.cos(lat), np.cos(sep) - np.sin(lat) * slat)
    return np.mod(lon + dlon, 2 * np.pi) / _DEG, lat2 / _DEG


def separation(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> np.ndarray:
    """Angular separation (deg), Vincenty's formula."""
    l1, b1, l2, b2 = (np.asarray(x, float) * _DEG for x in (lon1, lat1, lon2, lat2))
    dl = l2 - l1
    num = np.hypot(
        np.cos(b2) * np.sin(dl), np.cos(b1) * np.sin(b2) - np.sin(b1) * np.cos(b2) * np.cos(dl)
    )
    return np.arctan2(num, np.sin(b1) * np.sin(b2) + np.cos(b1) * np.cos(b2) * np.cos(dl)) / _DEG

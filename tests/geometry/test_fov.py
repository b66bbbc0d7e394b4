"""gdask.geometry.fov: the FoV frame's two forms agree, great-circle helpers invert each other."""

from __future__ import annotations

import numpy as np

from gdask.geometry.fov import offset_by, offset_to_fov, radec_to_fov, separation


def test_offset_form_equals_rotation_form() -> None:
    rng = np.random.default_rng(4)
    sep = rng.uniform(0.0, 3.0, 200)
    pa = rng.uniform(0.0, 360.0, 200)
    for lon0, lat0 in [(83.63, 22.01), (266.4, -28.9), (10.0, 85.0)]:
        lon, lat = offset_by(lon0, lat0, sep, pa)
        fov_lon, fov_lat = radec_to_fov(lon, lat, lon0, lat0)
        ref_lon, ref_lat = offset_to_fov(sep, pa)
        np.testing.assert_allclose(fov_lon, ref_lon, atol=1e-9)
        np.testing.assert_allclose(fov_lat, ref_lat, atol=1e-9)
        np.testing.assert_allclose(np.hypot(fov_lon, fov_lat), sep, rtol=2e-4)
        np.testing.assert_allclose(separation(lon0, lat0, lon, lat), sep, atol=1e-9)
        rev_lon, _ = radec_to_fov(lon, lat, lon0, lat0, reverse_lon=True)
        np.testing.assert_array_equal(rev_lon, -fov_lon)


def test_fov_longitude_is_reversed() -> None:
    # a point east of the pointing (larger RA) has a negative FoV longitude (Gammapy's frame)
    lon, lat = radec_to_fov(np.array([84.6]), np.array([22.0]), 83.6, 22.0)
    assert lon[0] < 0 and abs(lat[0]) < 0.01

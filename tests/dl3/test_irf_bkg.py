"""Tests of Background3D (bkg_3d) and Background2D (bkg_2d)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from scipy.integrate import quad

from gdask.dl3.irf import Background2D, Background3D, read_irf
from gdask.dl3.irf.bkg import trapz_loglog, upsample_log_edges
from gdask.errors import MissingColumnError, UnitError
from tests.dl3.fitscompare import assert_roundtrip

E_EDGES = np.geomspace(0.1, 100, 10)
XY_EDGES = np.linspace(-2, 2, 9)


def _bkg3d():
    e = np.sqrt(E_EDGES[1:] * E_EDGES[:-1])
    x = 0.5 * (XY_EDGES[1:] + XY_EDGES[:-1])
    data = (
        1e-3
        * e[:, None, None] ** -2.5
        * np.exp(-(x[None, :, None] ** 2 + 0.5 * x[None, None, :] ** 2))
    )
    return Background3D.create(E_EDGES, XY_EDGES, XY_EDGES, data.astype(np.float32)), data.astype(
        np.float32
    )


def test_nodes_and_power_law_interpolation():
    bkg, data = _bkg3d()
    assert bkg.fov_alignment == "RADEC"
    e, x, y = np.meshgrid(*(bkg.nodes(d) for d in ("energy", "fov_lon", "fov_lat")), indexing="ij")
    # the log of the rates is taken in float32 (as Gammapy): ~1e-6 relative at the nodes
    np.testing.assert_allclose(bkg.evaluate(e, x, y), data, rtol=3e-6)
    c = bkg.nodes("energy")
    v = bkg.evaluate(np.sqrt(c[2] * c[3]), 0.25, 0.25)
    np.testing.assert_allclose(v, np.sqrt(data[2, 4, 4] * data[3, 4, 4]), rtol=1e-6)
    assert bkg.evaluate(1.0, 2.1, 0.0) == 0.0 and bkg.evaluate(200.0, 0.0, 0.0) == 0.0
    # fov_lon and fov_lat are not interchangeable
    assert bkg.evaluate(1.0, 1.0, 0.0) != bkg.evaluate(1.0, 0.0, 1.0)


def test_trapz_loglog_exact_for_power_law():
    x = np.geomspace(1, 10, 6)
    y = 3.0 * x**-2.7
    exact = 3.0 / -1.7 * (x[1:] ** -1.7 - x[:-1] ** -1.7)
    np.testing.assert_allclose(trapz_loglog(y, x), exact, rtol=1e-12)
    y_flat = 1.0 / x  # index 1
    np.testing.assert_allclose(trapz_loglog(y_flat, x), np.log(x[1:] / x[:-1]), rtol=1e-6)
    np.testing.assert_array_equal(trapz_loglog(np.zeros(6), x), 0.0)
    assert np.all(np.isfinite(trapz_loglog(np.array([0.0, 1.0, 0.0]), np.array([1.0, 2.0, 3.0]))))
    np.testing.assert_allclose(upsample_log_edges([1.0, 100.0], 2), [1.0, 10.0, 100.0])


def test_integrate_energy():
    bkg, _ = _bkg3d()
    edges = np.geomspace(0.2, 50, 6)
    lon, lat = np.array([0.0, 0.3]), np.array([0.1, -0.4])
    res = bkg.integrate_energy(edges, lon, lat)
    assert res.shape == (5, 2)

    def integral(a, b, lo, la):
        return quad(lambda e: bkg.evaluate(e, lo, la), a, b, limit=200)[0] * 1e6

    ref = [
        [integral(a, b, lo, la) for lo, la in zip(lon, lat, strict=True)]
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    np.testing.assert_allclose(res, ref, rtol=0.05)
    fine = bkg.integrate_energy(edges, lon, lat, oversampling=4)
    np.testing.assert_allclose(fine, ref, rtol=0.01)
    assert bkg.integrate_energy(edges, np.zeros((3, 4)), 0.0).shape == (5, 3, 4)


def test_roundtrip_and_errors():
    bkg, data = _bkg3d()
    hdu = bkg.to_hdu()
    assert hdu.header["FOVALIGN"] == "RADEC" and hdu.header["HDUCLAS4"] == "BKG_3D"
    back = read_irf(hdu, "bkg_3d")
    np.testing.assert_array_equal(back.ds["background"].values, data)
    assert_roundtrip(hdu, back.to_hdu())
    hdu.header["FOVALIGN"] = "ALTAZ"
    assert Background3D.from_hdu(hdu).fov_alignment == "ALTAZ"
    cols = [c for c in hdu.columns if c.name != "BKG"]
    with pytest.raises(MissingColumnError) as exc:
        Background3D.from_hdu(fits.BinTableHDU.from_columns(cols, header=hdu.header), file="b.fits")
    assert exc.value.field == "BACKGROUND.BKG" and exc.value.file == "b.fits"
    hdu.columns["BKG"].unit = "s-1 sr-1"
    with pytest.raises(UnitError):
        Background3D.from_hdu(fits.BinTableHDU.from_columns(hdu.columns, header=hdu.header))


def test_background2d():
    e = np.sqrt(E_EDGES[1:] * E_EDGES[:-1])
    data = (1e-4 * e[:, None] ** -2 * np.array([1.0, 0.8, 0.5, 0.2])[None, :]).astype(np.float64)
    bkg = Background2D.create(E_EDGES, np.array([0.0, 0.5, 1.0, 1.5, 2.0]), data)
    eg, og = np.meshgrid(e, bkg.nodes("offset"), indexing="ij")
    np.testing.assert_allclose(bkg.evaluate(eg, og), data, rtol=1e-13)
    assert bkg.evaluate(1.0, 2.5) == 0.0
    hdu = bkg.to_hdu()
    assert hdu.header["HDUCLAS4"] == "BKG_2D"
    back = Background2D.from_hdu(hdu)
    assert_roundtrip(hdu, back.to_hdu())
    res = back.integrate_energy(np.geomspace(0.11, 90, 10), np.array([0.3, 0.9]))
    assert res.shape == (9, 2) and np.all(res > 0)


@pytest.mark.realdata
def test_hess_bkg3d(data_dir):
    f = data_dir / "hess-dl3-dr1/data/hess_dl3_dr1_obs_id_023523.fits.gz"
    with fits.open(f) as hl:
        hdu = hl["BKG"]
        bkg = Background3D.from_hdu(hdu, file=str(f))
        raw = hdu.data["BKG"][0]  # numpy (ENERG, 50, 50), read as Gammapy does
        assert bkg.ds["background"].dtype == np.float32
        np.testing.assert_array_equal(bkg.ds["background"].values, raw)
        assert bkg.ds["background"].attrs["gadf_tdim"] == "fov_lat,fov_lon,energy"
        assert_roundtrip(hdu, bkg.to_hdu())
    assert bkg.fov_alignment == "RADEC"
    assert bkg.ds["background"].attrs["units"] == "s-1 MeV-1 sr-1"
    res = bkg.integrate_energy(np.geomspace(0.5, 50, 11), np.linspace(-2, 2, 5), 0.0)
    assert res.shape == (10, 5) and np.all(res >= 0)

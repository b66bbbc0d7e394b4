"""Tests of RadMax2D (rad_max_2d)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from gdask.dl3.irf import EffectiveArea2D, RadMax2D, read_irf
from gdask.errors import FormatError, MissingColumnError
from tests.dl3.fitscompare import assert_roundtrip


def test_create_evaluate_roundtrip():
    e = np.geomspace(0.05, 50, 7)
    data = np.linspace(0.25, 0.1, 6)[:, None].astype(np.float32)
    rm = RadMax2D.create(e, np.array([0.3, 0.5]), data)
    c = rm.nodes("energy")
    np.testing.assert_array_equal(rm.evaluate(c, 0.4), data[:, 0].astype(float))
    np.testing.assert_allclose(
        rm.evaluate(np.sqrt(c[0] * c[1]), 0.45), 0.5 * (data[0, 0] + data[1, 0]), rtol=1e-7
    )
    assert rm.evaluate(1.0, 0.6) == 0.0 and rm.evaluate(100.0, 0.4) == 0.0
    hdu = rm.to_hdu()
    assert hdu.name == "RAD_MAX" and hdu.header["HDUCLAS3"] == "POINT-LIKE"
    back = read_irf(hdu, "rad_max_2d")
    assert_roundtrip(hdu, back.to_hdu())
    cols = [c for c in hdu.columns if c.name != "RAD_MAX"]
    with pytest.raises(MissingColumnError, match="RAD_MAX"):
        RadMax2D.from_hdu(fits.BinTableHDU.from_columns(cols, header=hdu.header))


def test_from_irf():
    aeff = EffectiveArea2D.create(
        np.geomspace(0.1, 10, 4), [0.0, 1.0], np.ones((3, 1)), point_like=True, rad_max=0.12
    )
    rm = RadMax2D.from_irf(aeff)
    assert rm.is_fixed
    np.testing.assert_array_equal(rm.evaluate(np.array([0.01, 1.0, 1e3]), 3.0), 0.12)
    with pytest.raises(FormatError):
        RadMax2D.from_irf(EffectiveArea2D.create([0.1, 1.0], [0.0, 1.0], np.ones((1, 1))))


@pytest.mark.realdata
def test_magic_rad_max(data_dir):
    for f in sorted((data_dir / "magic/rad_max/data").glob("*.fits")):
        with fits.open(f) as hl:
            hdu = hl["RAD_MAX"]
            rm = RadMax2D.from_hdu(hdu, file=str(f))
            raw = hdu.data["RAD_MAX"][0]
            np.testing.assert_array_equal(rm.ds["rad_max"].values, raw.T)
            assert_roundtrip(hdu, rm.to_hdu())
        c = rm.nodes("energy")
        np.testing.assert_array_equal(
            rm.evaluate(c, rm.nodes("offset")[0]), raw.T[:, 0].astype(float)
        )

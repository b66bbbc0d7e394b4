"""Tests of EffectiveArea2D (aeff_2d)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from gdask.dl3.irf import IRF_CLASSES, EffectiveArea2D, read_irf
from gdask.errors import FormatError, MissingColumnError, UnitError
from tests.dl3.fitscompare import assert_roundtrip

E_EDGES = np.geomspace(0.1, 100, 7)
O_EDGES = np.array([0.0, 0.5, 1.0, 2.0])


def _aeff(**kw):
    data = np.outer(np.arange(1, 7), [3.0, 2.0, 1.0]).astype(np.float32) * 1e4
    return EffectiveArea2D.create(E_EDGES, O_EDGES, data, **kw), data


def test_create_and_nodes_exact():
    aeff, data = _aeff()
    assert aeff.ds["effective_area"].dtype == np.float32
    e, o = np.meshgrid(aeff.nodes("energy_true"), aeff.nodes("offset"), indexing="ij")
    np.testing.assert_array_equal(aeff.evaluate(e, o), data.astype(float))
    assert aeff.evaluate(e, o).shape == (6, 3)
    assert aeff.evaluate(np.ones((2, 1)), np.ones(5) * 0.2).shape == (2, 5)
    assert not aeff.point_like and aeff.rad_max is None


def test_interpolation_and_fill():
    aeff, data = _aeff()
    c = aeff.nodes("energy_true")
    # log-linear in energy between nodes
    mid = np.sqrt(c[0] * c[1])
    np.testing.assert_allclose(
        aeff.evaluate(mid, 0.25), 0.5 * (data[0, 0] + data[1, 0]), rtol=1e-12
    )
    np.testing.assert_allclose(
        aeff.evaluate(c[0], 0.5), 0.5 * (data[0, 0] + data[0, 1]), rtol=1e-12
    )
    assert aeff.evaluate(0.05, 0.25) == 0.0  # below the first edge
    assert aeff.evaluate(1.0, 2.5) == 0.0
    assert aeff.evaluate(1.0, -0.1) == 0.0
    assert aeff.evaluate(1.0, 0.0) > 0  # on the offset edge: extrapolated
    assert aeff.evaluate(100.0 * (1 - 1e-12), 1.0) > 0


def test_roundtrip_and_point_like():
    aeff, data = _aeff(point_like=True, rad_max=0.1)
    hdu = aeff.to_hdu()
    assert hdu.header["HDUCLAS3"] == "POINT-LIKE" and hdu.header["RAD_MAX"] == 0.1
    assert hdu.header["HDUCLAS4"] == "AEFF_2D" and hdu.name == "EFFECTIVE AREA"
    back = EffectiveArea2D.from_hdu(hdu)
    assert back.point_like and back.rad_max == 0.1
    np.testing.assert_array_equal(back.ds["effective_area"].values, data)
    assert_roundtrip(hdu, back.to_hdu())
    again = EffectiveArea2D.from_dataset(back.to_dataset())
    np.testing.assert_array_equal(again.ds["effective_area"].values, data)
    assert IRF_CLASSES["aeff_2d"] is EffectiveArea2D
    assert isinstance(read_irf(hdu, "AEFF_2D"), EffectiveArea2D)


def test_errors():
    hdu = _aeff()[0].to_hdu()
    cols = [c for c in hdu.columns if c.name != "EFFAREA"]
    bad = fits.BinTableHDU.from_columns(cols, header=hdu.header)
    with pytest.raises(MissingColumnError) as exc:
        EffectiveArea2D.from_hdu(bad, file="a.fits", obs_id=5)
    assert exc.value.field == "EFFECTIVE AREA.EFFAREA" and exc.value.obs_id == 5
    assert "a.fits" in str(exc.value)
    hdu.columns["EFFAREA"].unit = "TeV"
    hdu2 = fits.BinTableHDU.from_columns(hdu.columns, header=hdu.header)
    with pytest.raises(UnitError, match="EFFAREA"):
        EffectiveArea2D.from_hdu(hdu2, file="a.fits")
    with pytest.raises(FormatError):
        read_irf(hdu, "nonsense_2d")


def test_unit_conversion_cm2():
    aeff, data = _aeff()
    hdu = aeff.to_hdu()
    hdu.columns["EFFAREA"].unit = "cm2"
    hdu = fits.BinTableHDU.from_columns(hdu.columns, header=hdu.header)
    back = EffectiveArea2D.from_hdu(hdu)
    np.testing.assert_allclose(back.ds["effective_area"].values, data * 1e-4, rtol=1e-7)


AEFF_FILES = [
    ("hess-dl3-dr1/data/hess_dl3_dr1_obs_id_023523.fits.gz", "AEFF", False, None),
    ("joint-crab/dl3/fact/fact_irf.fits", "EFFECTIVE AREA", True, 0.1732050807568877),
    ("veritas/crab-point-like-ED/64080.fits.gz", "EFFECTIVE AREA", True, 0.08944271909999159),
    ("joint-crab/dl3/magic/run_05029747_DL3.fits", "EFFECTIVE AREA", True, 0.1414213),
    ("joint-crab/dl3/veritas/54809_DL3.fits", "EFFECTIVE AREA", True, 0.1),
    (
        "magic/rad_max/data/20131004_05029747_DL3_CrabNebula-W0.40+035.fits",
        "EFFECTIVE AREA",
        True,
        None,
    ),
]


@pytest.mark.realdata
@pytest.mark.parametrize(("path", "hdu_name", "point_like", "rad_max"), AEFF_FILES)
def test_real_files(data_dir, path, hdu_name, point_like, rad_max):
    f = data_dir / path
    with fits.open(f) as hl:
        hdu = hl[hdu_name]
        aeff = EffectiveArea2D.from_hdu(hdu, file=str(f))
        assert aeff.point_like is point_like
        assert aeff.rad_max == (None if rad_max is None else pytest.approx(rad_max, rel=1e-12))
        raw = hdu.data["EFFAREA"][0]
        assert aeff.ds["effective_area"].dtype == raw.dtype.newbyteorder("=")
        np.testing.assert_array_equal(aeff.ds["effective_area"].values, raw.T)
        assert_roundtrip(hdu, aeff.to_hdu())
    e, o = np.meshgrid(aeff.nodes("energy_true"), aeff.nodes("offset"), indexing="ij")
    np.testing.assert_array_equal(aeff.evaluate(e, o), raw.T.astype(float))

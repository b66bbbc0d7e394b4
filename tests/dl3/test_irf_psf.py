"""Unit and real-data tests of the PSF IRFs (psf_table, psf_3gauss, psf_king)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits

from gdask.dl3.irf.psf import DEG2_TO_SR, PSFTable, pick_radius, upsampled_centres
from gdask.dl3.irf.psf_analytic import PSF3Gauss, PSFKing
from gdask.errors import FormatError, MissingColumnError, UnitError

E_EDGES = np.geomspace(0.1, 100.0, 9)
OFF_EDGES = np.linspace(0.0, 2.5, 6)
RAD_EDGES = np.linspace(0.0, 1.0, 201)
HESS_RUNS = (20136, 23523, 23592, 33787)


def _gauss_table(dtype=np.float32) -> PSFTable:
    """A Gaussian PSF table, sigma growing with offset and shrinking with energy."""
    e = np.sqrt(E_EDGES[:-1] * E_EDGES[1:])
    off = 0.5 * (OFF_EDGES[:-1] + OFF_EDGES[1:])
    r = 0.5 * (RAD_EDGES[:-1] + RAD_EDGES[1:])
    sigma = 0.1 * e[:, None] ** -0.2 * (1 + 0.1 * off[None, :])
    s2 = (sigma**2)[..., None]
    psf = np.exp(-0.5 * r**2 / s2) / (2 * np.pi * s2) / DEG2_TO_SR
    return PSFTable.create(E_EDGES, OFF_EDGES, RAD_EDGES, psf.astype(dtype))


def _shape():
    return (len(E_EDGES) - 1, len(OFF_EDGES) - 1)


def _three_gauss(dtype=np.float32) -> PSF3Gauss:
    rng = np.random.default_rng(0)
    sh = _shape()
    return PSF3Gauss.create(
        E_EDGES.astype(dtype),
        OFF_EDGES.astype(dtype),
        scale=rng.uniform(1, 5, sh).astype(dtype),
        sigma_1=rng.uniform(0.02, 0.08, sh).astype(dtype),
        sigma_2=rng.uniform(0.08, 0.2, sh).astype(dtype),
        sigma_3=rng.uniform(0.2, 0.4, sh).astype(dtype),
        ampl_2=rng.uniform(0.1, 0.5, sh).astype(dtype),
        ampl_3=rng.uniform(0.0, 0.05, sh).astype(dtype),
    )


def _king(dtype=np.float32) -> PSFKing:
    rng = np.random.default_rng(1)
    sh = _shape()
    return PSFKing.create(
        E_EDGES.astype(dtype),
        OFF_EDGES.astype(dtype),
        gamma=rng.uniform(1.8, 4.0, sh).astype(dtype),
        sigma=rng.uniform(0.03, 0.15, sh).astype(dtype),
    )


def _roundtrip_hdu(hdu: fits.BinTableHDU) -> fits.BinTableHDU:
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    buf.seek(0)
    with fits.open(buf) as hdul:
        out = fits.BinTableHDU(data=hdul[1].data.copy(), header=hdul[1].header.copy())
    return out


def _assert_same_hdu(a: fits.BinTableHDU, b: fits.BinTableHDU) -> None:
    assert [c.name for c in a.columns] == [c.name for c in b.columns]
    for ca, cb in zip(a.columns, b.columns, strict=True):
        assert ca.format == cb.format and (ca.unit or "") == (cb.unit or "") and ca.dim == cb.dim
        va, vb = a.data[ca.name], b.data[cb.name]
        assert va.dtype.newbyteorder("=") == vb.dtype.newbyteorder("=")
        np.testing.assert_array_equal(va, vb)
    ka = {k: v for k, v in a.header.items() if k not in ("COMMENT", "HISTORY")}
    kb = {k: v for k, v in b.header.items() if k not in ("COMMENT", "HISTORY")}
    assert ka == kb
    assert list(a.header.get("COMMENT", [])) == list(b.header.get("COMMENT", []))


ALL = [_gauss_table, _three_gauss, _king]


# --------------------------------------------------------------- evaluation


@pytest.mark.parametrize("make", ALL)
def test_density_integrates_to_one(make):
    psf = make()
    r = np.linspace(0, 1.0, 20001)  # deg
    dens = psf.evaluate(1.0, 0.7, r)
    integral = np.trapezoid(2 * np.pi * r * dens * DEG2_TO_SR, r)
    tail = 1 - psf.containment(1.0, 0.7, 1.0) if not isinstance(psf, PSFTable) else 0.0
    assert integral + tail == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("make", ALL)
def test_containment_monotone_and_tends_to_one(make):
    psf = make()
    r = np.linspace(0, 0.99, 500)
    c = psf.containment(np.array([[0.3], [5.0]]), 1.2, r)
    assert c.shape == (2, 500)
    assert np.all(np.diff(c, axis=-1) >= -1e-12)
    assert c[:, 0] == pytest.approx(0.0, abs=1e-3)
    # the table holds the whole PSF within its last rad bin; analytic ones reach 1 far out
    far = 0.99 if isinstance(psf, PSFTable) else 50.0
    np.testing.assert_allclose(psf.containment(np.array([0.3, 5.0]), 1.2, far), 1.0, atol=2e-3)


@pytest.mark.parametrize("make", ALL)
def test_containment_radius_consistent(make):
    psf = make()
    frac = np.array([0.4, 0.68, 0.95])
    r = psf.containment_radius(frac, 2.0, 0.3)
    assert r.shape == (3,)
    assert np.all(np.diff(r) > 0)
    c = psf.containment(2.0, 0.3, r)
    np.testing.assert_allclose(c, frac, atol=0.01)


def test_broadcasting_shapes():
    for psf in (_gauss_table(), _three_gauss(), _king()):
        out = psf.evaluate(np.ones((4, 1, 1)), np.zeros((1, 3, 1)), np.linspace(0, 0.3, 5))
        assert out.shape == (4, 3, 5)
        assert psf.containment_radius(0.68, np.array([1.0, 10.0]), 0.5).shape == (2,)


def test_table_nodes_exact():
    psf = _gauss_table()
    ds = psf.to_dataset()
    e, o, r = np.meshgrid(ds.energy_true.values, ds.offset.values, ds.rad.values, indexing="ij")
    np.testing.assert_array_equal(psf.evaluate(e, o, r), ds.psf.values.astype(float))


def test_table_zero_outside():
    psf = _gauss_table()
    assert psf.evaluate(0.05, 0.5, 0.01) == 0  # below the energy range
    assert psf.evaluate(1.0, 2.6, 0.01) == 0  # beyond the offset edges
    assert psf.evaluate(1.0, 0.5, 1.1) == 0
    assert psf.evaluate(np.nan, 0.5, 0.1) == 0


def test_parametric_nodes_exact():
    psf = _king(np.float64)
    ds = psf.to_dataset()
    e, o = np.meshgrid(ds.energy_true.values, ds.offset.values, indexing="ij")
    pars = psf.evaluate_parameters(e, o)
    np.testing.assert_allclose(pars["gamma"], ds.GAMMA.values, rtol=1e-13)
    np.testing.assert_allclose(pars["sigma"], ds.SIGMA.values, rtol=1e-13)


def test_pick_radius_plateau_takes_first():
    grid = np.arange(5.0)
    cont = np.array([0.0, 0.2, 0.3, 0.3, 0.3])[:, None]
    assert pick_radius(grid, cont, [0.9])[0] == 2.0
    assert upsampled_centres(np.array([0.0, 1.0]), 4) == pytest.approx([0.125, 0.375, 0.625, 0.875])


# --------------------------------------------------------------- IO


@pytest.mark.parametrize("make", ALL)
def test_create_to_hdu_roundtrip(make):
    psf = make()
    hdu = psf.to_hdu()
    assert hdu.header["HDUCLAS4"] == type(psf).hdu_class.upper()
    assert hdu.header["HDUCLAS2"] == "RPSF"
    back = type(psf).from_hdu(_roundtrip_hdu(hdu), file="mem.fits", obs_id=7)
    for name, var in psf.to_dataset().data_vars.items():
        np.testing.assert_array_equal(back.ds[name].values, var.values)
        assert back.ds[name].dtype == var.dtype
    _assert_same_hdu(back.to_hdu(), hdu)
    again = type(psf).from_dataset(back.to_dataset())
    np.testing.assert_array_equal(again.evaluate(1.0, 0.5, 0.1), psf.evaluate(1.0, 0.5, 0.1))


def _table_hdu():
    return _gauss_table().to_hdu()


def test_missing_column_error():
    hdu = _table_hdu()
    cols = [c for c in hdu.columns if c.name != "RAD_HI"]
    bad = fits.BinTableHDU.from_columns(cols, header=hdu.header, name="PSF")
    with pytest.raises(MissingColumnError) as exc:
        PSFTable.from_hdu(bad, file="x.fits", obs_id=42)
    assert exc.value.file == "x.fits" and exc.value.obs_id == 42 and "RAD_HI" in exc.value.field


def test_unit_error():
    hdu = _table_hdu()
    hdu.columns["RPSF"].unit = "m"
    hdu = fits.BinTableHDU.from_columns(hdu.columns, name="PSF")
    with pytest.raises(UnitError) as exc:
        PSFTable.from_hdu(hdu, file="x.fits", obs_id=42)
    assert exc.value.obs_id == 42 and "RPSF" in exc.value.field


def test_unit_conversion_deg2():
    psf = _gauss_table(np.float64)
    hdu = psf.to_hdu()
    cols = []
    for c in hdu.columns:
        if c.name == "RPSF":
            c = fits.Column(
                name="RPSF", format=c.format, unit="deg-2", dim=c.dim, array=c.array * DEG2_TO_SR
            )
        cols.append(c)
    back = PSFTable.from_hdu(fits.BinTableHDU.from_columns(cols, name="PSF"))
    np.testing.assert_allclose(back.ds.psf.values, psf.ds.psf.values, rtol=1e-12)


def test_format_errors():
    hdu = _king().to_hdu()
    with pytest.raises(FormatError) as exc:
        PSFTable.from_hdu(hdu, file="k.fits", obs_id=3)
    assert "HDUCLAS4" in exc.value.field and exc.value.obs_id == 3
    # wrong data shape
    hdu = _table_hdu()
    cols = []
    for c in hdu.columns:
        if c.name == "RPSF":
            c = fits.Column(
                name="RPSF", format="10E", array=np.zeros((1, 10), np.float32), unit="sr^-1"
            )
        cols.append(c)
    with pytest.raises(FormatError) as exc:
        PSFTable.from_hdu(fits.BinTableHDU.from_columns(cols, name="PSF"), file="t.fits", obs_id=5)
    assert exc.value.file == "t.fits" and "RPSF" in exc.value.field
    with pytest.raises(FormatError):
        PSFTable(_king().to_dataset())


def test_missing_parameter_column():
    hdu = _three_gauss().to_hdu()
    cols = [c for c in hdu.columns if c.name != "AMPL_3"]
    with pytest.raises(MissingColumnError) as exc:
        PSF3Gauss.from_hdu(
            fits.BinTableHDU.from_columns(cols, header=hdu.header), file="g.fits", obs_id=9
        )
    assert "AMPL_3" in exc.value.field and exc.value.obs_id == 9


def test_three_gauss_keeps_scale_unit_and_zero_sigma():
    psf = _three_gauss()
    ds = psf.to_dataset().copy(deep=True)
    ds["SCALE"].attrs["units"] = "sr-1"
    ds["SIGMA_3"].values[...] = 0.0
    ds["AMPL_3"].values[...] = 0.0
    hdu = PSF3Gauss(ds).to_hdu()
    assert hdu.columns["SCALE"].unit == "sr-1"
    back = PSF3Gauss.from_hdu(_roundtrip_hdu(hdu))
    assert back.ds["SCALE"].attrs["units"] == "sr-1"
    assert np.all(np.isfinite(back.evaluate(1.0, 0.5, np.linspace(0, 0.5, 11))))


def test_registry():
    from gdask.dl3.irf import IRF_CLASSES

    assert IRF_CLASSES["psf_table"] is PSFTable
    assert IRF_CLASSES["psf_3gauss"] is PSF3Gauss
    assert IRF_CLASSES["psf_king"] is PSFKing


# --------------------------------------------------------------- real data


def _hess_psf_hdu(hess_dir, obs_id):
    path = hess_dir / "data" / f"hess_dl3_dr1_obs_id_{obs_id:06d}.fits.gz"
    with fits.open(path) as hdul:
        hdu = hdul["PSF"]
        return path, fits.BinTableHDU(data=hdu.data.copy(), header=hdu.header.copy())


@pytest.mark.realdata
@pytest.mark.parametrize("obs_id", HESS_RUNS)
def test_hess_roundtrip_exact(hess_dir, obs_id):
    path, hdu = _hess_psf_hdu(hess_dir, obs_id)
    psf = PSFTable.from_hdu(hdu, file=str(path), obs_id=obs_id)
    assert psf.ds.psf.dims == ("energy_true", "offset", "rad")
    assert psf.ds.sizes["offset"] == 6 and psf.ds.offset.attrs.get("node_type") == "center"
    _assert_same_hdu(psf.to_hdu(), hdu)
    _assert_same_hdu(_roundtrip_hdu(psf.to_hdu()), hdu)


@pytest.mark.realdata
def test_hess_physics(hess_dir):
    path, hdu = _hess_psf_hdu(hess_dir, 23523)
    psf = PSFTable.from_hdu(hdu, file=str(path), obs_id=23523)
    c = psf.containment(1.0, 0.5, np.linspace(0, 0.6, 61))
    assert np.all(np.diff(c) >= -1e-12) and 0.95 < c[-1] < 1.05
    r68 = psf.containment_radius(0.68, np.array([1.0, 10.0]), 0.5)
    assert np.all((r68 > 0.03) & (r68 < 0.3))
    assert np.all(psf.evaluate(1.0, 0.5, np.linspace(0, 0.5, 11)) >= 0)

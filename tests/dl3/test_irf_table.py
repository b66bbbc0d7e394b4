"""Unit tests of the shared IRF table and interpolation helpers."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from gdask.dl3.irf.table import (
    AxisSpec,
    ColumnSpec,
    axis_edges,
    axis_fill_edges,
    make_dataset,
    read_table_hdu,
    write_table_hdu,
)
from gdask.errors import FormatError, MissingColumnError, UnitError
from gdask.interp import GridInterpolator, interpolate_grid, outside_edges

AXES = (
    AxisSpec("ENERG", "energy_true", "TeV", log=True),
    AxisSpec("THETA", "offset", "deg"),
    AxisSpec("RAD", "rad", "deg"),
)
COLS = (ColumnSpec("RPSF", "psf", "sr-1"), ColumnSpec("EXTRA", "extra", "", required=False))


def _hdu(unit_e="TeV", unit_data="sr-1", dtype=">f4", drop=None):
    e = np.geomspace(0.1, 10, 5).astype(dtype)
    o = np.array([0.0, 1.0, 2.0], dtype=dtype)
    r = np.linspace(0, 0.3, 5).astype(dtype)
    data = np.arange(4 * 2 * 4, dtype=dtype).reshape(4, 2, 4)  # (energy, offset, rad)
    code = "E" if dtype.endswith("f4") else "D"
    cols = [
        fits.Column("ENERG_LO", f"4{code}", unit_e, array=[e[:-1]]),
        fits.Column("ENERG_HI", f"4{code}", unit_e, array=[e[1:]]),
        fits.Column("THETA_LO", f"2{code}", "deg", array=[o[:-1]]),
        fits.Column("THETA_HI", f"2{code}", "deg", array=[o[1:]]),
        fits.Column("RAD_LO", f"4{code}", "deg", array=[r[:-1]]),
        fits.Column("RAD_HI", f"4{code}", "deg", array=[r[1:]]),
        fits.Column("RPSF", f"32{code}", unit_data, dim="(4,2,4)", array=[data.T]),
    ]
    cols = [c for c in cols if c.name != drop]
    hdu = fits.BinTableHDU.from_columns(cols, name="PSF")
    hdu.header["OBS_ID"] = 42
    hdu.header["HDUCLAS4"] = "PSF_TABLE"
    return fits.BinTableHDU.from_columns(hdu.columns, header=hdu.header), data


def test_read_layout_and_exact_values():
    hdu, data = _hdu()
    ds = read_table_hdu(hdu, AXES, COLS, file="f.fits")
    assert ds["psf"].dims == ("energy_true", "offset", "rad")
    assert ds["psf"].dtype == np.float32
    np.testing.assert_array_equal(ds["psf"].values, data)
    assert ds["energy_true"].attrs["bounds"] == "energy_true_bounds"
    assert ds["energy_true_bounds"].dims == ("energy_true", "bound")
    e = axis_edges(ds, "energy_true")
    np.testing.assert_allclose(ds["energy_true"].values, np.sqrt(e[:-1] * e[1:]))
    np.testing.assert_allclose(ds["offset"].values, [0.5, 1.5])
    assert ds.attrs["obs_id"] == 42
    assert "extra" not in ds


def test_roundtrip_columns_and_header():
    hdu, _ = _hdu()
    ds = read_table_hdu(hdu, AXES, COLS)
    out = write_table_hdu(ds, AXES, COLS, extname="PSF")
    assert [c.name for c in out.columns] == [c.name for c in hdu.columns]
    for c in hdu.columns:
        np.testing.assert_array_equal(out.data[c.name], hdu.data[c.name])
        assert out.data[c.name].dtype.kind == hdu.data[c.name].dtype.kind
        assert out.data[c.name].dtype.itemsize == hdu.data[c.name].dtype.itemsize
    assert out.header["OBS_ID"] == 42 and out.header["HDUCLAS4"] == "PSF_TABLE"
    assert out.header["TDIM7"] == hdu.header["TDIM7"]


def test_unit_conversion_and_errors():
    hdu, data = _hdu(unit_e="GeV")
    ds = read_table_hdu(hdu, AXES, COLS)
    np.testing.assert_allclose(ds["energy_true_bounds"].values[0, 0], 1e-4, rtol=1e-6)
    with pytest.raises(UnitError, match="RPSF") as exc:
        read_table_hdu(_hdu(unit_data="m2")[0], AXES, COLS, file="x.fits", obs_id=7)
    assert exc.value.file == "x.fits" and exc.value.obs_id == 7 and exc.value.field == "PSF.RPSF"
    with pytest.raises(MissingColumnError) as exc:
        read_table_hdu(_hdu(drop="THETA_HI")[0], AXES, COLS, file="x.fits")
    assert exc.value.field == "PSF.THETA_HI"
    with pytest.raises(MissingColumnError, match="RPSF"):
        read_table_hdu(_hdu(drop="RPSF")[0], AXES, COLS)
    with pytest.raises(FormatError):
        read_table_hdu(_hdu()[0], AXES[:2], COLS)  # shape mismatch


def test_make_dataset_and_write():
    ds = make_dataset(
        AXES[:2],
        {"energy_true": [1.0, 10.0, 100.0], "offset": [0.0, 1.0]},
        {"psf": np.ones((2, 1))},
        units={"psf": "sr-1"},
    )
    hdu = write_table_hdu(ds, AXES[:2], COLS, extname="X", keywords={"HDUCLASS": "GADF"})
    back = read_table_hdu(hdu, AXES[:2], COLS)
    np.testing.assert_array_equal(back["psf"].values, ds["psf"].values)
    assert hdu.header["HDUCLASS"] == "GADF" and hdu.columns["RPSF"].unit == "sr-1"


def test_node_axis_and_fill_edges():
    ds = make_dataset(
        AXES[1:2],
        {"offset": (np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0]))},
        {"psf": np.ones(3)},
    )
    np.testing.assert_array_equal(ds["offset"].values, [0, 1, 2])
    np.testing.assert_allclose(axis_edges(ds, "offset"), [-0.5, 0.5, 1.5, 2.5])
    np.testing.assert_allclose(axis_fill_edges(ds, "offset"), [-0.5, 0.5, 1.5, 2.5])


def test_interpolator_lin_log_fill():
    nodes = [np.array([1.0, 10.0, 100.0]), np.array([0.0, 1.0])]
    values = np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]])
    f = GridInterpolator(
        nodes,
        values,
        scales=["log", "lin"],
        values_scale="log",
        edges=[np.array([0.5, 200.0]), np.array([-0.5, 1.5])],
    )
    e, o = np.meshgrid(nodes[0], nodes[1], indexing="ij")
    np.testing.assert_allclose(f(e, o), values, rtol=1e-14)
    np.testing.assert_allclose(f(np.sqrt(10.0), 0.0), np.sqrt(10.0), rtol=1e-12)  # power law
    assert f(300.0, 0.0) == 0.0 and f(50.0, 2.0) == 0.0 and f(np.nan, 0.0) == 0.0
    np.testing.assert_allclose(f(150.0, 0.0), 150.0, rtol=1e-12)  # extrapolated inside the edges
    assert f(np.ones((3, 1)), np.zeros(4)).shape == (3, 4)
    lin = GridInterpolator(nodes, values, scales=["log", "lin"], fill_value=None, clip=True)
    assert lin(1.0, -5.0) == 0.0  # extrapolates to negative and clips
    near = interpolate_grid(
        nodes,
        values,
        [np.array([2.0, 50.0]), np.array([0.2, 0.8])],
        scales=["log", "lin"],
        method="nearest",
    )
    np.testing.assert_array_equal(near, [1.0, 200.0])
    flags = outside_edges([np.array([0.0, 1.0])], [np.array([-1.0, 0.0, 1.0, 2.0])])
    np.testing.assert_array_equal(flags[0], [True, False, False, True])


def test_single_node_axis_is_constant():
    f = GridInterpolator(
        [np.array([1.0, 2.0]), np.array([0.5])],
        np.array([[1.0], [3.0]]),
        edges=[np.array([0.5, 2.5]), np.array([0.0, 1.0])],
    )
    np.testing.assert_allclose(f(np.array([1.5, 1.5]), np.array([0.1, 0.9])), [2.0, 2.0])
    assert f(1.5, 1.1) == 0.0

"""Unit tests of gdask.geometry.axes."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import xarray as xr

from gdask.errors import FormatError
from gdask.geometry import Axis, EnergyAxis


def test_energy_axis_from_bounds():
    ax = EnergyAxis.from_bounds(0.7, 10, 10)
    assert ax.name == "energy" and ax.unit == "TeV" and ax.nbin == 10 and len(ax) == 10
    np.testing.assert_allclose(ax.edges, np.geomspace(0.7, 10, 11), rtol=1e-15)
    np.testing.assert_allclose(ax.center, np.sqrt(ax.edges[:-1] * ax.edges[1:]))
    np.testing.assert_allclose(ax.widths, np.diff(ax.edges))
    np.testing.assert_allclose(np.log(ax.center), 0.5 * np.log(ax.edges[:-1] * ax.edges[1:]))


def test_energy_axis_per_decade():
    ax = EnergyAxis.from_bounds(0.1, 100, 5, per_decade=True)
    assert ax.nbin == 15
    ax = EnergyAxis.from_bounds(0.1, 50, 5, per_decade=True)  # 2.7 decades -> ceil
    assert ax.nbin == 14 and ax.edges[-1] == pytest.approx(50)
    ax = EnergyAxis.from_bounds(0.1, 50, 5, per_decade=True, strict_bounds=False)
    assert ax.nbin == 13 and ax.edges[-1] == pytest.approx(0.1 * 10 ** (13 / 5))


def test_energy_axis_units_and_names():
    ax = EnergyAxis.from_bounds(100 * u.GeV, 10 * u.TeV, 4, unit=None)
    assert ax.unit == "TeV"
    np.testing.assert_allclose(ax.edges[[0, -1]], [0.1, 10])
    ax = EnergyAxis.from_edges([1, 10, 100] * u.GeV, name="energy_true")
    assert ax.unit == "GeV" and ax.name == "energy_true"
    np.testing.assert_allclose(ax.to_unit("TeV").edges, [1e-3, 1e-2, 0.1])
    assert ax.copy(name="energy").name == "energy"
    with pytest.raises(ValueError):
        EnergyAxis.from_edges([1, 2], name="offset")
    with pytest.raises(FormatError):
        EnergyAxis.from_edges([1, 2] * u.deg)
    with pytest.raises(FormatError):
        EnergyAxis.from_edges([1, 2], unit="m")


@pytest.mark.parametrize("edges", [[1.0], [1.0, 1.0], [2.0, 1.0], [0.0, 1.0], [1.0, np.nan]])
def test_bad_edges(edges):
    with pytest.raises(FormatError):
        EnergyAxis.from_edges(edges)


def test_linear_axis():
    ax = Axis.from_bounds(0, 2.5, 5, name="offset", unit="deg")
    np.testing.assert_allclose(ax.center, [0.25, 0.75, 1.25, 1.75, 2.25])
    np.testing.assert_allclose(ax.bounds[0], [0, 0.5])
    assert ax.interp == "lin"
    with pytest.raises(ValueError):
        Axis([0, 1], name="x", interp="sqrt")


def test_to_coords_and_back():
    ax = EnergyAxis.from_bounds(0.5, 20, 20, name="energy_true")
    coords = ax.to_coords()
    assert set(coords) == {"energy_true", "energy_true_bounds"}
    assert coords["energy_true"].attrs["bounds"] == "energy_true_bounds"
    assert coords["energy_true"].attrs["units"] == "TeV"
    assert coords["energy_true_bounds"].dims == ("energy_true", "bound")
    ds = xr.Dataset({"aeff": (("energy_true",), np.ones(20))}, coords=coords)
    back = Axis.from_dataset(ds, "energy_true")
    assert isinstance(back, EnergyAxis)
    np.testing.assert_array_equal(back.edges, ax.edges)
    assert back == ax
    off = Axis.from_bounds(0, 2.5, 5, name="offset", unit="deg")
    ds = xr.Dataset(coords={**off.to_coords(), **ax.to_coords()})
    assert Axis.from_dataset(ds, "offset") == off
    with pytest.raises(FormatError):
        Axis.from_dataset(ds, "migra")


def test_from_dataset_rejects_gaps():
    ds = xr.Dataset(
        coords={
            "energy": ("energy", [1.5, 3.5]),
            "energy_bounds": (("energy", "bound"), [[1.0, 2.0], [3.0, 4.0]]),
        }
    )
    with pytest.raises(FormatError):
        Axis.from_dataset(ds, "energy")


def test_slice_downsample_upsample_squash():
    ax = EnergyAxis.from_bounds(0.1, 100, 12)
    s = ax.slice(slice(2, 5))
    np.testing.assert_array_equal(s.edges, ax.edges[2:6])
    np.testing.assert_array_equal(ax.downsample(3).edges, ax.edges[::3])
    with pytest.raises(ValueError):
        ax.downsample(5)
    d = ax.downsample(5, strict=False)
    np.testing.assert_array_equal(d.edges, [*ax.edges[::5], ax.edges[-1]])
    up = ax.upsample(2)
    assert up.nbin == 24
    np.testing.assert_array_equal(up.edges[::2], ax.edges)
    np.testing.assert_allclose(up.edges[1::2], ax.center)
    assert ax.squash().nbin == 1
    with pytest.raises(ValueError):
        ax.slice(slice(3, 3))


def test_coord_to_idx_and_pix():
    ax = EnergyAxis.from_edges([1.0, 2.0, 4.0, 8.0])
    idx = ax.coord_to_idx([0.5, 1.0, 1.99, 2.0, 7.9, 8.0, 9.0, np.nan])
    np.testing.assert_array_equal(idx, [-1, 0, 0, 1, 2, -1, -1, -1])
    np.testing.assert_array_equal(ax.coord_to_idx([0.5, 9.0], clip=True), [0, 2])
    np.testing.assert_allclose(
        ax.coord_to_pix([1.0, np.sqrt(2), 4.0, 16.0]), [-0.5, 0.0, 1.5, 3.5], atol=1e-14
    )
    pix = np.array([-0.5, 0.0, 0.7, 2.5, 3.0])
    np.testing.assert_allclose(ax.coord_to_pix(ax.pix_to_coord(pix)), pix, atol=1e-14)

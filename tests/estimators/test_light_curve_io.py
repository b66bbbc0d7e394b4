"""Light-curve table IO (`gdask.estimators.light_curve_io`): round trips and Gammapy's reader."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.time import Time

from gdask.errors import FormatError
from gdask.estimators.light_curve import LightCurve
from gdask.estimators.light_curve_io import read_light_curve, write_light_curve


def _lc(n_time: int = 5, n_e: int = 2, n_ds: int = 3) -> LightCurve:
    rng = np.random.default_rng(0)
    t0 = Time("2006-07-29T20:30", scale="utc")
    t_min = t0 + np.arange(n_time) * 600.0 * u.s
    t_max = t_min + 600.0 * u.s
    shape = (n_time, n_e)
    norm = rng.uniform(0.5, 3, shape)
    data = {
        "norm": norm,
        "norm_err": 0.1 * norm,
        "norm_errn": 0.09 * norm,
        "norm_errp": 0.11 * norm,
        "norm_ul": 1.3 * norm,
        "ts": rng.uniform(0, 50, shape),
        "stat": rng.uniform(5, 10, shape),
        "stat_null": rng.uniform(10, 60, shape),
        "success": np.ones(shape, bool),
        "ref_dnde": np.full(shape, 2e-11),
        "ref_flux": np.full(shape, 3e-11),
        "ref_eflux": np.full(shape, 4e-11),
        "ref_e2dnde": np.full(shape, 5e-11),
        "counts": rng.integers(0, 40, (*shape, n_ds)).astype(float),
        "npred": rng.uniform(0, 40, (*shape, n_ds)),
        "npred_excess": rng.uniform(0, 40, (*shape, n_ds)),
        "norm_scan": np.broadcast_to(np.geomspace(0.2, 5, 11), (*shape, 11)).copy(),
        "stat_scan": rng.uniform(0, 9, (*shape, 11)),
    }
    data["counts"][0, :, 2] = np.nan
    names = [f"d{i}" for i in range(n_ds)]
    return LightCurve(np.array([0.4, 2.0, 20.0]), data, names, time_min=t_min, time_max=t_max)


@pytest.mark.parametrize("suffix", [".fits", ".ecsv"])
def test_round_trip(tmp_path, suffix):
    lc = _lc()
    back = read_light_curve(write_light_curve(lc, tmp_path / f"lc{suffix}"))
    assert back.datasets == lc.datasets
    np.testing.assert_allclose(back.time_min.tt.mjd, lc.time_min.tt.mjd, rtol=0, atol=1e-10)
    np.testing.assert_allclose(back.energy_edges, lc.energy_edges)
    for key in ("norm", "norm_errn", "norm_ul", "ts", "ref_dnde", "ref_flux", "ref_eflux"):
        np.testing.assert_allclose(back.data[key], lc.data[key], rtol=1e-14)
    np.testing.assert_array_equal(back.data["counts"], lc.data["counts"])
    np.testing.assert_array_equal(back.is_ul, lc.is_ul)


def test_gammapy_reads_ours(tmp_path):
    from gammapy.estimators import FluxPoints

    lc = _lc()
    fp = FluxPoints.read(write_light_curve(lc, tmp_path / "lc.fits"), format="lightcurve")
    assert fp.geom.axes.names[:2] == ["energy", "time"] or "time" in fp.geom.axes.names
    np.testing.assert_allclose(fp.norm.data[:, :, 0, 0], lc.data["norm"], rtol=1e-14)
    np.testing.assert_allclose(fp.sqrt_ts.data[:, :, 0, 0], lc.sqrt_ts, rtol=1e-14)
    np.testing.assert_allclose(fp.geom.axes["time"].time_max.tt.mjd, lc.time_max.tt.mjd, atol=1e-10)
    # Gammapy rebuilds its reference model from (e_ref, ref_dnde): dnde is exact
    np.testing.assert_allclose(
        fp.dnde.quantity.to_value("cm-2 s-1 TeV-1")[:, :, 0, 0], lc.quantity("dnde"), rtol=1e-14
    )
    np.testing.assert_array_equal(fp.is_ul.data[:, :, 0, 0], lc.is_ul)


def test_missing_column_names_it(tmp_path):
    from astropy.table import Table

    path = tmp_path / "bad.ecsv"
    Table({"time_min": [1.0], "time_max": [2.0]}).write(path)
    with pytest.raises(FormatError, match="e_min") as info:
        read_light_curve(path)
    assert str(path) in str(info.value.file)


def test_plot_writes_a_png(tmp_path):
    from gdask.estimators.light_curve_plot import plot_light_curve

    lc = _lc()
    lc.data["ts"][1] = 0.5  # one upper limit
    path = plot_light_curve(lc, tmp_path / "lc.png", sed_type="flux", energy_index=1)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="sed type"):
        plot_light_curve(lc, tmp_path / "x.png", sed_type="bogus")

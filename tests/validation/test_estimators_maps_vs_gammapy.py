"""Excess / significance maps and TS maps of gdask.estimators against Gammapy 2.1.

The four H.E.S.S. DR1 Crab runs reduced by Gammapy (the session fixture of
``gammapy_hess.py``), stacked by Gammapy, written to FITS and read back by
gdask; both tools then run their estimators on the same file:

- ExcessMapEstimator, correlation radius 0.1 deg, one group 0.7-10 TeV, on
  the MapDataset and on the MapDatasetOnOff of Gammapy's RingBackgroundMaker
  (r_in 0.5 deg, width 0.3 deg, Crab excluded within 0.3 deg) of it;
- TSMapEstimator with a point-source and a 0.1 deg Gaussian kernel (power
  law of index 2), kernel width 0.5 deg, one group 0.7-10 TeV.

Gammapy's amplitude search stops at ``rtol`` (default 0.01) of the norm; it
runs here with ``rtol=1e-8`` so that its own maps are exact to compare with
gdask's (which iterates to convergence).  The agreement asked for is 1e-3
per pixel: ``|gdask - gammapy| <= 1e-3 max(|gammapy|, 1)``.
"""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest

pytestmark = [pytest.mark.validation, pytest.mark.realdata]

from gammapy.datasets import MapDataset as GPMapDataset  # noqa: E402
from gammapy.estimators import ExcessMapEstimator as GPExcess  # noqa: E402
from gammapy.estimators import TSMapEstimator as GPTSMap  # noqa: E402
from gammapy.maps import Map  # noqa: E402
from gammapy.modeling.models import (  # noqa: E402
    GaussianSpatialModel as GPGauss,
)
from gammapy.modeling.models import (  # noqa: E402
    PointSpatialModel as GPPoint,
)
from gammapy.modeling.models import (  # noqa: E402
    PowerLawSpectralModel as GPPowerLaw,
)
from gammapy.modeling.models import SkyModel as GPSkyModel  # noqa: E402

from gdask.datasets import MapDataset, MapDatasetOnOff  # noqa: E402
from gdask.estimators.excess_map import ExcessMapEstimator  # noqa: E402
from gdask.estimators.ts_map import TSMapEstimator  # noqa: E402
from gdask.models import GaussianSpatialModel, PowerLawSpectralModel, SkyModel  # noqa: E402

TOL = 1e-3
EDGES = [0.7, 10]


def _close(actual, desired, tol=TOL):
    a, d = np.asarray(actual, float), np.asarray(desired, float)
    assert a.shape == d.shape
    np.testing.assert_array_equal(np.isfinite(a), np.isfinite(d))
    ok = np.isfinite(d)
    err = np.abs(a[ok] - d[ok]) / np.maximum(np.abs(d[ok]), 1.0)
    assert err.max() <= tol, f"max deviation {err.max():.3g}"
    print(f"max deviation {err.max():.2e}")
    return err.max()


@pytest.fixture(scope="module")
def stacked_file(gp_hess_crab, tmp_path_factory):
    warnings.simplefilter("ignore")
    dss = list(gp_hess_crab.datasets.values())
    geom = dss[0].counts.geom
    stacked = GPMapDataset.create(
        geom=geom, energy_axis_true=dss[0].exposure.geom.axes["energy_true"], name="stacked"
    )
    for ds in dss:
        stacked.stack(ds)
    path = tmp_path_factory.mktemp("maps") / "stacked.fits.gz"
    stacked.write(path)
    return path


@pytest.fixture(scope="module")
def datasets(stacked_file):
    return GPMapDataset.read(stacked_file), MapDataset.read(stacked_file)


def test_excess_map_vs_gammapy(datasets, tmp_path):
    gp_ds, ds = datasets
    gp = GPExcess(
        correlation_radius="0.1 deg", energy_edges=EDGES * u.TeV, selection_optional=["ul"]
    ).run(gp_ds)
    ours = ExcessMapEstimator(correlation_radius=0.1, energy_edges=EDGES).run(ds)
    np.testing.assert_array_equal(ours["counts"], gp["npred"].data)
    for name in ("npred_excess", "ts", "sqrt_ts", "norm", "norm_err", "norm_ul"):
        _close(ours[name], gp[name].data)
    _close(ours["flux"] / gp["flux"].data.max(), gp["flux"].data / gp["flux"].data.max())
    assert np.nanmax(ours["sqrt_ts"]) > 30  # the Crab
    # the file is read by Gammapy itself
    path = tmp_path / "excess.fits"
    ours.write(path)
    back = Map.read(path, hdu="SQRT_TS")
    np.testing.assert_allclose(back.data, ours["sqrt_ts"], rtol=1e-12, equal_nan=True)
    assert back.geom.to_image() == gp["sqrt_ts"].geom.to_image()


def test_excess_map_onoff_vs_gammapy(datasets, gp_hess_crab, tmp_path):
    from gammapy.datasets import MapDatasetOnOff as GPMapDatasetOnOff
    from gammapy.makers import RingBackgroundMaker

    gp_ds, _ = datasets
    onoff = RingBackgroundMaker(
        r_in="0.5 deg", width="0.3 deg", exclusion_mask=gp_hess_crab.exclusion
    ).run(gp_ds)
    path = tmp_path / "onoff.fits.gz"
    onoff.write(path)
    gp = GPExcess(
        correlation_radius="0.1 deg", energy_edges=EDGES * u.TeV, selection_optional=["ul"]
    ).run(GPMapDatasetOnOff.read(path))
    ours = ExcessMapEstimator(correlation_radius=0.1, energy_edges=EDGES).run(
        MapDatasetOnOff.read(path)
    )
    for name in ("npred_excess", "ts", "sqrt_ts", "norm", "norm_err", "norm_ul"):
        _close(ours[name], gp[name].data)
    assert np.nanmax(ours["sqrt_ts"]) > 20


@pytest.mark.parametrize("kernel", ["point", "gauss"])
def test_ts_map_vs_gammapy(datasets, kernel, tmp_path):
    gp_ds, ds = datasets
    if kernel == "point":
        gp_spatial = GPPoint()
        ours_model = None
    else:
        gp_spatial = GPGauss(sigma="0.1 deg")
        ours_model = SkyModel(
            spectral_model=PowerLawSpectralModel(index=2.0),
            spatial_model=GaussianSpatialModel(sigma=0.1),
        )
    gp_model = GPSkyModel(spatial_model=gp_spatial, spectral_model=GPPowerLaw(index=2))
    gp = GPTSMap(
        kernel_model=gp_model,
        kernel_width="0.5 deg",
        energy_edges=EDGES * u.TeV,
        selection_optional=["ul"],
        rtol=1e-8,
    ).run(gp_ds)
    ours = TSMapEstimator(kernel_model=ours_model, kernel_width=0.5, energy_edges=EDGES).run(ds)
    for name in ("ts", "sqrt_ts", "norm", "norm_err", "norm_ul", "npred", "npred_excess"):
        print(f"{kernel} {name}: ", end="")
        _close(ours[name], gp[name].data)
    scale = np.nanmax(gp["flux"].data)
    _close(ours["flux"] / scale, gp["flux"].data / scale)
    assert np.nanmax(ours["sqrt_ts"]) > 30
    path = tmp_path / "ts.fits"
    ours.write(path)
    back = Map.read(path, hdu="TS")
    np.testing.assert_allclose(back.data, ours["ts"], rtol=1e-12, equal_nan=True)

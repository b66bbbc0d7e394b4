"""Acceptance: gdask joint fits against Gammapy 2.1 fits of the same data, in the same run.

a. Joint Crab: log-parabola (E0 = 1 TeV), WSTAT, the ten OGIP ON/OFF spectra of
   joint-crab/spectra (Fermi-LAT, MAGIC, VERITAS, FACT, H.E.S.S.), one dataset
   per observation, fit ranges per instrument, bins with QUALITY == 0 only.
   Every free parameter within 0.01 sigma of Gammapy's, errors within 1 %.
b. H.E.S.S. Crab 3D: the per-run datasets of runs 23523, 23526, 23559, 23592
   (as bench_B_3d_crab.py), reduced both by Gammapy and by gdask
   (`gdask.reduce.make_map_dataset` + `gdask.reduce.convert.to_map_dataset`);
   point source x power law (E0 = 1 TeV) + one free FoV background norm per
   run. Every parameter within 0.05 sigma of Gammapy's, errors within 2 %, and
   the fits of both reductions equal.
c. The gdask fits run in-process and on a 2-worker LocalCluster: identical to 1e-6.

Gammapy runs its default ``Fit()`` (MIGRAD strategy 1, tol 0.1, numerical
HESSE) from the same start values; nothing is hard-coded. sigma = Gammapy's error.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gdask.fit import Coordinator, Fit, FitResult
from gdask.likelihood import TermSpec
from gdask.models import Models

pytestmark = [pytest.mark.validation, pytest.mark.realdata, pytest.mark.slow]


# ----------------------------------------------------------------- joint Crab
CRAB_RANGES = {
    "fermi": (0.03, 2.0),
    "magic": (0.08, 30.0),
    "veritas": (0.15, 30.0),
    "fact": (0.4, 30.0),
    "hess": (0.66, 30.0),
}
CRAB_START = {"amplitude": 3.8e-11, "alpha": 2.5, "beta": 0.1}
CRAB_MAX_SIGMA = 0.01
CRAB_ERR_RTOL = 0.01
# ----------------------------------------------------------- H.E.S.S. 3D Crab
RUNS = (23523, 23526, 23559, 23592)
HESS_MAX_SIGMA = 0.05
HESS_ERR_RTOL = 0.02
# in-process vs cluster
SAME_RTOL = 1e-6


def _gammapy_parameter(gmodels: Any, name: str) -> Any:
    """The Gammapy parameter of a gdask unique name ``<model>.<spectral|spatial>.<par>``."""
    model, kind, par = name.split(".")
    return getattr(gmodels[model], f"{kind}_model").parameters[par]


def _compare(
    result: FitResult,
    gref: dict[str, tuple[float, float]],
    max_sigma: float,
    err_rtol: float,
    label: str,
) -> tuple[float, float]:
    """Assert values within ``max_sigma`` Gammapy errors and errors within ``err_rtol``."""
    assert result.success, result.message
    assert sorted(result.names) == sorted(gref), (result.names, list(gref))
    dev_sigma, dev_err = 0.0, 0.0
    for name in result.names:
        value, error = gref[name]
        d = abs(result[name] - value) / error
        e = abs(result.error(name) / error - 1)
        print(
            f"  {label} {name}: gdask {result[name]:.8g} +- {result.error(name):.5g}, "
            f"gammapy {value:.8g} +- {error:.5g}: |d|/sigma {d:.2e}, error ratio - 1 {e:.2e}"
        )
        dev_sigma, dev_err = max(dev_sigma, d), max(dev_err, e)
    print(f"  {label}: max |d|/sigma {dev_sigma:.2e}, max |error ratio - 1| {dev_err:.2e}")
    assert dev_sigma < max_sigma, label
    assert dev_err < err_rtol, label
    return dev_sigma, dev_err


def _assert_same(a: FitResult, b: FitResult) -> None:
    assert a.names == b.names
    np.testing.assert_allclose(a.values, b.values, rtol=SAME_RTOL)
    np.testing.assert_allclose(a.errors, b.errors, rtol=SAME_RTOL)
    assert a.total_stat == pytest.approx(b.total_stat, rel=SAME_RTOL)


def _fit(specs: list[TermSpec], models: Models, client: Any = None) -> FitResult:
    with Coordinator(specs, client) as coord:
        return Fit(models, coord).run()


@pytest.fixture(scope="module")
def cluster_client():
    """A 2-worker LocalCluster (one thread per worker), as `gdask.cluster.get_client` starts it."""
    from gdask.cluster import get_client

    with get_client(n_workers=2, threads_per_worker=1) as client:
        yield client


# ================================================================= joint Crab
def _crab_files(data_dir: Path) -> list[tuple[str, str, Path]]:
    out = [
        (inst, f"{inst}-{pha.stem.removeprefix('pha_obs')}", pha)
        for inst in CRAB_RANGES
        for pha in sorted((data_dir / "joint-crab" / "spectra" / inst).glob("pha_*.fits"))
    ]
    assert len(out) == 10, out
    return out


def _crab_yaml() -> str:
    return f"""components:
- name: crab
  type: SkyModel
  spectral:
    type: LogParabolaSpectralModel
    parameters:
    - {{name: amplitude, value: {CRAB_START["amplitude"]}, unit: cm-2 s-1 TeV-1}}
    - {{name: reference, value: 1.0, unit: TeV}}
    - {{name: alpha, value: {CRAB_START["alpha"]}}}
    - {{name: beta, value: {CRAB_START["beta"]}}}
"""


def _crab_specs(data_dir: Path, models: Models) -> list[TermSpec]:
    return [
        TermSpec(
            "spectrum",
            name,
            str(pha),
            models.to_dict(),
            {
                "stat": "wstat",
                "energy_min": CRAB_RANGES[inst][0],
                "energy_max": CRAB_RANGES[inst][1],
            },
        )
        for inst, name, pha in _crab_files(data_dir)
    ]


@pytest.fixture(scope="module")
def crab_gammapy(data_dir) -> dict[str, tuple[float, float]]:
    """Gammapy's joint fit: ``{gdask unique name: (value, error)}``."""
    import astropy.units as u
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling import Fit as GFit
    from gammapy.modeling.models import Models as GModels

    warnings.simplefilter("ignore")
    datasets = Datasets()
    for inst, name, pha in _crab_files(data_dir):
        ds = SpectrumDatasetOnOff.read(pha, name=name)  # mask_safe = QUALITY == 0
        emin, emax = CRAB_RANGES[inst]
        ds.mask_fit = ds.counts.geom.energy_mask(emin * u.TeV, emax * u.TeV)
        datasets.append(ds)
    datasets.models = GModels.from_yaml(_crab_yaml())
    result = GFit().run(datasets)
    assert result.success
    names = ["crab.spectral.amplitude", "crab.spectral.alpha", "crab.spectral.beta"]
    return {
        n: (
            _gammapy_parameter(datasets.models, n).value,
            _gammapy_parameter(datasets.models, n).error,
        )
        for n in names
    }


@pytest.fixture(scope="module")
def crab_local(data_dir) -> FitResult:
    models = Models.from_yaml(_crab_yaml())
    return _fit(_crab_specs(data_dir, models), models)


def test_joint_crab_vs_gammapy(crab_local, crab_gammapy):
    _compare(crab_local, crab_gammapy, CRAB_MAX_SIGMA, CRAB_ERR_RTOL, "joint Crab")


def test_joint_crab_cluster_equals_in_process(data_dir, crab_local, cluster_client):
    models = Models.from_yaml(_crab_yaml())
    _assert_same(_fit(_crab_specs(data_dir, models), models, cluster_client), crab_local)


# ============================================================ H.E.S.S. 3D Crab
def _hess_yaml() -> str:
    text = """components:
- name: crab
  type: SkyModel
  spectral:
    type: PowerLawSpectralModel
    parameters:
    - {name: index, value: 2.0}
    - {name: amplitude, value: 1.0e-12, unit: cm-2 s-1 TeV-1}
    - {name: reference, value: 1.0, unit: TeV}
  spatial:
    type: PointSpatialModel
    frame: icrs
    parameters:
    - {name: lon_0, value: 83.633, unit: deg}
    - {name: lat_0, value: 22.014, unit: deg}
"""
    for run in RUNS:
        text += f"""- type: FoVBackgroundModel
  name: {run}-bkg
  datasets_names: ['{run}']
  spectral:
    type: PowerLawNormSpectralModel
    parameters:
    - {{name: norm, value: 1.0}}
    - {{name: tilt, value: 0.0, frozen: true}}
    - {{name: reference, value: 1.0, unit: TeV}}
"""
    return text


def _hess_specs(files: dict[int, Path], models: Models) -> list[TermSpec]:
    return [TermSpec("map", str(run), str(files[run]), models.to_dict()) for run in RUNS]


@pytest.fixture(scope="module")
def hess3d(tmp_path_factory, hess_dir, gp_hess_crab) -> dict[str, Any]:
    """Both reductions written as GADF-DL4 FITS, and Gammapy's joint fit of its own datasets."""
    import copy

    from gammapy.datasets import Datasets
    from gammapy.modeling import Fit as GFit
    from gammapy.modeling.models import Models as GModels

    from gdask.dl3 import DL3Index, read_observation
    from gdask.geometry import EnergyAxis, WcsGeom
    from gdask.reduce import make_map_dataset
    from gdask.reduce.convert import to_map_dataset

    warnings.simplefilter("ignore")
    out = tmp_path_factory.mktemp("fit3d")
    # Gammapy's reduction as bench_B_3d_crab.py (shared by the session: work on copies)
    datasets = Datasets([copy.deepcopy(gp_hess_crab.datasets[run]) for run in RUNS])
    gp_files: dict[int, Path] = {}
    for run, ds in zip(RUNS, datasets, strict=True):
        gp_files[run] = out / f"gammapy_{run}.fits"
        ds.write(gp_files[run])
    excl = gp_hess_crab.exclusion

    index = DL3Index.read(hess_dir)
    g = WcsGeom.create(skydir=(83.633, 22.014), binsz=0.02, width=(3, 3), frame="icrs", proj="CAR")
    gd_files: dict[int, Path] = {}
    for run in RUNS:
        reduced = make_map_dataset(
            read_observation(index, run),
            g,
            EnergyAxis.from_bounds(0.7, 10, 10),
            EnergyAxis.from_bounds(0.5, 20, 20, name="energy_true"),
            0.2,
            safe_mask=("offset-max", "aeff-default"),
            offset_max=2.5,
            fov_background="scale",
            exclusion_mask=excl.data,
        )
        gd_files[run] = out / f"gdask_{run}.fits"
        to_map_dataset(reduced, name=str(run)).write(gd_files[run])

    # Gammapy's FoVBackgroundMaker attached a background model: replace all models
    datasets.models = GModels.from_yaml(_hess_yaml())
    result = GFit().run(datasets)
    assert result.success
    names = [
        "crab.spectral.index",
        "crab.spectral.amplitude",
        "crab.spatial.lon_0",
        "crab.spatial.lat_0",
    ] + [f"{run}-bkg.spectral.norm" for run in RUNS]
    ref = {
        n: (
            _gammapy_parameter(datasets.models, n).value,
            _gammapy_parameter(datasets.models, n).error,
        )
        for n in names
    }
    print(f"\n  gammapy 3D joint fit: nfev {result.nfev}, stat {result.total_stat:.3f}")
    return {"gammapy": gp_files, "gdask": gd_files, "ref": ref}


@pytest.fixture(scope="module")
def hess_local(hess3d) -> dict[str, FitResult]:
    out = {}
    for reduction in ("gammapy", "gdask"):
        models = Models.from_yaml(_hess_yaml())
        out[reduction] = _fit(_hess_specs(hess3d[reduction], models), models)
    return out


@pytest.mark.parametrize("reduction", ["gammapy", "gdask"])
def test_hess3d_vs_gammapy(hess3d, hess_local, reduction):
    _compare(
        hess_local[reduction],
        hess3d["ref"],
        HESS_MAX_SIGMA,
        HESS_ERR_RTOL,
        f"H.E.S.S. 3D ({reduction} reduction)",
    )


def test_hess3d_reductions_give_the_same_fit(hess3d, hess_local):
    a, b = hess_local["gammapy"], hess_local["gdask"]
    assert a.names == b.names
    sigma = np.array([hess3d["ref"][n][1] for n in a.names])
    dev = np.abs(np.asarray(a.values) - np.asarray(b.values)) / sigma
    print(f"  gammapy vs gdask reduction: max |d|/sigma {dev.max():.2e}")
    assert dev.max() < 1e-3
    np.testing.assert_allclose(a.errors, b.errors, rtol=1e-3)
    assert a.total_stat == pytest.approx(b.total_stat, rel=1e-8)


def test_hess3d_cluster_equals_in_process(hess3d, hess_local, cluster_client):
    models = Models.from_yaml(_hess_yaml())
    _assert_same(
        _fit(_hess_specs(hess3d["gdask"], models), models, cluster_client), hess_local["gdask"]
    )

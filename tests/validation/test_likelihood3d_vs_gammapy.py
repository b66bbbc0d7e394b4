"""Map (3D) likelihood statistics of gdask against Gammapy 2.1 on real datasets.

Each case evaluates a few parameter points in both packages and requires the
per-dataset cash statistics to agree to 1e-6 relative.

A gdask term is a pure function of the parameters: a source's PSF, energy
dispersion and cutout are taken at its position when the term was built while
it stays within ``evaluation_radius + 0.1 deg`` of it, else at its current
position.  Gammapy's evaluator keeps them at the position of its last update
instead (and its first spatial change always updates), so its value depends on
the evaluation path.  The reference for each point is therefore a fresh
Gammapy state primed to gdask's rule with Gammapy's own update logic: models
at their start values (first evaluation: update there), the source nudged by
1e-9 deg (the first change: update, position cached), then the point.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gdask.models as gm
from gdask.datasets import MapDataset
from gdask.likelihood.map import MapTerm
from tests.validation.gammapy_hess import OBS_IDS

pytestmark = pytest.mark.validation

RUNS = list(OBS_IDS)
RTOL = 1e-6


def _fov(names: list[str]) -> str:
    return "".join(
        f"""- type: FoVBackgroundModel
  datasets_names: ['{n}']
  spectral:
    type: PowerLawNormSpectralModel
    parameters:
    - {{name: norm, value: 1.0}}
    - {{name: tilt, value: 0.0}}
    - {{name: reference, value: 1.0, unit: TeV}}
"""
        for n in names
    )


def _point(spectral: str) -> str:
    return f"""components:
- name: crab
  type: SkyModel
  spectral:
{spectral}
  spatial:
    type: PointSpatialModel
    frame: icrs
    parameters:
    - {{name: lon_0, value: 83.633, unit: deg}}
    - {{name: lat_0, value: 22.014, unit: deg}}
"""


PL = """    type: PowerLawSpectralModel
    parameters:
    - {name: index, value: 2.0}
    - {name: amplitude, value: 1.0e-12, unit: cm-2 s-1 TeV-1}
    - {name: reference, value: 1.0, unit: TeV}"""

# Point source x log-parabola as in Gammapy's HAWC tutorial (natural-log LogParabola,
# reference 7 TeV)
LP_HAWC = """    type: LogParabolaSpectralModel
    parameters:
    - {name: amplitude, value: 2.35e-13, unit: cm-2 s-1 TeV-1}
    - {name: reference, value: 7.0, unit: TeV}
    - {name: alpha, value: 2.79}
    - {name: beta, value: 0.10}"""


def _set(gmodels, point: dict) -> None:
    for m in gmodels:
        for p in m.parameters:
            if p.name in point:
                p.value = point[p.name]


def _gammapy_at(gdatasets, gmodels, point: dict) -> list[float]:
    """Gammapy's statistics at ``point`` from a fresh state primed as described above."""
    fresh = gmodels.copy()
    for g in gdatasets:
        g.models = fresh
    for g in gdatasets:
        g.stat_sum()  # first evaluation: IRFs at the start position
    spatial = [m.spatial_model for m in fresh if getattr(m, "spatial_model", None) is not None]
    start = [s.lon_0.value for s in spatial if "lon_0" in s.parameters.names]
    for s in spatial:
        if "lon_0" in s.parameters.names:
            s.lon_0.value += 1e-9
    for g in gdatasets:
        g.stat_sum()  # first spatial change: update there and cache the position
    for s, lon in zip([s for s in spatial if "lon_0" in s.parameters.names], start, strict=True):
        s.lon_0.value = lon
    _set(fresh, point)
    return [float(g.stat_sum()) for g in gdatasets]


def _compare(gdatasets, gmodels, terms, points) -> list[float]:
    """Evaluate both packages at ``points`` (dicts name -> value); return rel. deviations."""
    devs = []
    start = gmodels.copy()
    for pt in points:
        refs = _gammapy_at(gdatasets, start, pt)
        probe = start.copy()
        _set(probe, pt)
        values = probe.parameters.value.copy()
        for g, t, ref in zip(gdatasets, terms, refs, strict=True):
            got = t.stat(values)
            devs.append(abs(got - ref) / abs(ref))
            assert got == pytest.approx(ref, rel=RTOL), (g.name, pt)
    return devs


@pytest.fixture(scope="module")
def hess_files(tmp_path_factory, gp_hess_crab):
    """The four H.E.S.S. Crab run datasets, reduced by Gammapy as bench_B_3d_crab.py."""
    warnings.simplefilter("ignore")
    out = tmp_path_factory.mktemp("hess3d")
    paths = {}
    for obs_id in RUNS:
        paths[str(obs_id)] = out / f"{obs_id}.fits"
        gp_hess_crab.datasets[obs_id].write(paths[str(obs_id)])
    return paths


def test_hess_crab_runs(hess_files):
    from gammapy.datasets import MapDataset as GMapDataset
    from gammapy.modeling.models import Models as GModels

    names = list(hess_files)
    text = _point(PL) + _fov(names)
    gmodels = GModels.from_yaml(text)
    gdatasets = [GMapDataset.read(hess_files[n], name=n) for n in names]
    for g in gdatasets:
        g.models = gmodels
    models = gm.Models.from_yaml(text)
    terms = [MapTerm(MapDataset.read(hess_files[n], name=n), models) for n in names]
    points = [
        {},
        {
            "lon_0": 83.64,
            "lat_0": 22.01,
            "amplitude": 3.5e-11,
            "index": 2.5,
            "norm": 1.05,
            "tilt": 0.05,
        },
        {"lon_0": 83.62, "lat_0": 22.03, "amplitude": 4e-11, "index": 2.6, "norm": 0.98},
        {
            "lon_0": 83.80,
            "lat_0": 21.85,
            "amplitude": 2e-11,
            "index": 2.2,
            "norm": 1.1,
            "tilt": -0.1,
        },
    ]
    devs = _compare(gdatasets, gmodels, terms, points)
    print(f"H.E.S.S. max relative deviation {max(devs):.2e}")


def test_fermi_3fhl_crab(data_dir):
    from gammapy.datasets import MapDataset as GMapDataset
    from gammapy.modeling.models import Models as GModels
    from gammapy.modeling.models import PowerLawNormSpectralModel, SkyModel, TemplateSpatialModel

    warnings.simplefilter("ignore")
    base = data_dir / "fermi-3fhl-crab"
    fname = base / "Fermi-LAT-3FHL_data_Fermi-LAT.fits"
    gmodels = GModels.read(base / "Fermi-LAT-3FHL_models.yaml")
    # the model file has the Crab and the FoV background; add the diffuse template too
    diffuse = SkyModel(
        PowerLawNormSpectralModel(),
        TemplateSpatialModel.read(base / "Fermi-LAT-3FHL_iem.fits", normalize=False),
        name="diffuse",
    )
    gmodels = GModels([*gmodels, diffuse])
    g = GMapDataset.read(fname, name="Fermi-LAT")
    g.models = gmodels
    models = gm.Models.from_dict(gmodels.to_dict())
    term = MapTerm(MapDataset.read(fname, name="Fermi-LAT"), models)
    points = [
        {},
        {"alpha": 1.7, "beta": 0.05, "norm": 1.2},
        {"amplitude": 0.02, "alpha": 1.6, "norm": 0.9},
    ]
    devs = _compare([g], gmodels, [term], points)
    print(f"Fermi-LAT max relative deviation {max(devs):.2e}")


def test_hawc_crab(data_dir):
    from gammapy.datasets import MapDataset as GMapDataset
    from gammapy.modeling.models import Models as GModels

    warnings.simplefilter("ignore")
    names = [f"nHit-{i}" for i in range(5, 10)]
    text = _point(LP_HAWC) + _fov(names)
    gmodels = GModels.from_yaml(text)
    files = {n: data_dir / "hawc" / "DL4" / f"{n}.fits.gz" for n in names}
    gdatasets = [GMapDataset.read(files[n], name=n) for n in names]
    for g in gdatasets:
        g.models = gmodels
    models = gm.Models.from_yaml(text)
    terms = [MapTerm(MapDataset.read(files[n], name=n), models) for n in names]
    points = [{}, {"lon_0": 83.64, "lat_0": 22.02, "alpha": 2.6, "beta": 0.12, "norm": 1.02}]
    devs = _compare(gdatasets, gmodels, terms, points)
    print(f"HAWC max relative deviation {max(devs):.2e}")
    assert np.isfinite(devs).all()

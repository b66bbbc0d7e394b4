"""Flux points in joint fits (`gdask.likelihood.flux_points`) against Gammapy 2.1's FluxPointsDataset.

The joint-Crab spectra (Fermi-LAT, MAGIC, VERITAS, FACT, H.E.S.S.; wstat in
each instrument's fit range) plus the HAWC Crab flux points, a log parabola
at three parameter points: the HAWC term equals Gammapy's FluxPointsDataset
statistic to 1e-6 (``chi2`` and ``distrib``: HAWC's top point is an upper
limit), and so does the joint total.  The ``profile`` statistic is checked on
Gammapy's own H.E.S.S. likelihood SED file (``stat_scan``) of the same points.
"""

from __future__ import annotations

import warnings

import pytest

from gdask.fit import Coordinator
from gdask.likelihood.term import TermSpec
from gdask.models import Models
from tests.validation.test_fit_vs_gammapy import CRAB_RANGES, _crab_files, _crab_yaml

pytestmark = [pytest.mark.validation, pytest.mark.realdata]

POINTS = (
    {"amplitude": 3.8e-11, "alpha": 2.5, "beta": 0.1},
    {"amplitude": 3.5e-11, "alpha": 2.45, "beta": 0.08},
    {"amplitude": 4.1e-11, "alpha": 2.6, "beta": 0.12},
)


def _set(models_params, point):
    for p in models_params:
        if p.name in point:
            p.value = point[p.name]


@pytest.fixture(scope="module")
def gammapy_joint(data_dir):
    import astropy.units as u
    from gammapy.datasets import Datasets, FluxPointsDataset, SpectrumDatasetOnOff
    from gammapy.estimators import FluxPoints
    from gammapy.modeling.models import Models as GModels

    warnings.simplefilter("ignore")
    datasets = Datasets()
    for inst, name, pha in _crab_files(data_dir):
        ds = SpectrumDatasetOnOff.read(pha, name=name)
        emin, emax = CRAB_RANGES[inst]
        ds.mask_fit = ds.counts.geom.energy_mask(emin * u.TeV, emax * u.TeV)
        datasets.append(ds)
    hawc = FluxPoints.read(data_dir / "hawc/crab_flux/HAWC19_flux_points.fits")
    fpds = {
        stat: FluxPointsDataset(data=hawc, name="hawc", stat_type=stat)
        for stat in ("chi2", "distrib")
    }
    return datasets, fpds, GModels


@pytest.mark.parametrize("stat", ["chi2", "distrib"])
def test_hawc_term_and_joint_stat_equal_gammapy(data_dir, gammapy_joint, stat):
    from gammapy.datasets import Datasets

    spectra, fpds, GModels = gammapy_joint
    gmodels = GModels.from_yaml(_crab_yaml())
    joint = Datasets([*spectra, fpds[stat]])
    joint.models = gmodels
    models = Models.from_yaml(_crab_yaml())
    specs = [
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
    hawc_file = data_dir / "hawc/crab_flux/HAWC19_flux_points.fits"
    specs.append(TermSpec("flux_points", "hawc", str(hawc_file), models.to_dict(), {"stat": stat}))
    with Coordinator(specs) as coord:
        for point in POINTS:
            _set(joint.models.parameters, point)
            _set(models.parameters, point)
            ev = coord.evaluate(models.parameters.value)
            g_hawc = fpds[stat].stat_sum()
            assert ev.stats[-1] == pytest.approx(g_hawc, rel=1e-6)
            assert ev.stat == pytest.approx(joint.stat_sum(), rel=1e-6)
            assert g_hawc > 1  # a real comparison, not 0 == 0


def test_profile_stat_equals_gammapy(data_dir, tmp_path):
    import astropy.units as u
    from gammapy.datasets import Datasets, FluxPointsDataset, SpectrumDatasetOnOff
    from gammapy.estimators import FluxPointsEstimator as GammapyFPE
    from gammapy.modeling.models import Models as GModels

    warnings.simplefilter("ignore")
    files = sorted((data_dir / "joint-crab/spectra/hess").glob("pha_*.fits"))
    gds = Datasets([SpectrumDatasetOnOff.read(f) for f in files])
    gds.models = GModels.from_yaml(_crab_yaml())
    fp = GammapyFPE(
        source="crab", energy_edges=[0.7, 1.5, 3, 6, 12] * u.TeV, selection_optional=["scan"]
    ).run(gds)
    path = tmp_path / "hess_sed.fits"
    fp.write(path, sed_type="likelihood", format="gadf-sed")
    gfp = FluxPointsDataset(data=fp, name="hess_fp", stat_type="profile")
    gfp.models = GModels.from_yaml(_crab_yaml())
    models = Models.from_yaml(_crab_yaml())
    spec = TermSpec("flux_points", "hess_fp", str(path), models.to_dict(), {"stat": "profile"})
    with Coordinator([spec]) as coord:
        for point in POINTS:
            _set(gfp.models.parameters, point)
            _set(models.parameters, point)
            ours = coord.evaluate(models.parameters.value).stat
            assert ours == pytest.approx(gfp.stat_sum(), rel=1e-6)

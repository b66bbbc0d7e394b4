"""Background-systematics nuisances on the four H.E.S.S. Crab runs against Gammapy 2.1.

`fov_background_systematics` gives each run a FoV background model whose norm
and tilt carry Gaussian priors, either free per run or linked across the runs
of the instrument. The models YAML gdask writes (priors and link labels) is
read by Gammapy itself (which links the parameters; its shared priors are
weighted by 1 / number of sharing models, as Gammapy 2.1 counts a linked
parameter's prior once per model); the joint statistic including the priors must agree
at several parameter points (1e-6), and a gdask fit must land on Gammapy's
(0.02 sigma, errors 2%) -- both computed here.
"""

from __future__ import annotations

import warnings
from collections import Counter

import pytest

import gdask.models as gm
from gdask.datasets import MapDataset
from gdask.fit import Coordinator, Fit
from gdask.likelihood import TermSpec
from gdask.likelihood.map import MapTerm
from tests.validation.gammapy_hess import OBS_IDS

pytestmark = [pytest.mark.validation, pytest.mark.realdata, pytest.mark.slow]

SOURCE = """components:
- name: crab
  type: SkyModel
  spectral:
    type: PowerLawSpectralModel
    parameters:
    - {name: index, value: 2.5}
    - {name: amplitude, value: 3.5e-11, unit: cm-2 s-1 TeV-1}
    - {name: reference, value: 1.0, unit: TeV}
  spatial:
    type: PointSpatialModel
    frame: icrs
    parameters:
    - {name: lon_0, value: 83.63, unit: deg, frozen: true}
    - {name: lat_0, value: 22.02, unit: deg, frozen: true}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory, gp_hess_crab):
    warnings.simplefilter("ignore")
    out = tmp_path_factory.mktemp("hess3d_bkgsys")
    paths = {}
    for obs_id in OBS_IDS:
        paths[str(obs_id)] = out / f"{obs_id}.fits"
        gp_hess_crab.datasets[obs_id].write(paths[str(obs_id)])
    return paths


def _models(names: list[str], per: str) -> gm.Models:
    bkg = gm.fov_background_systematics({"hess": names}, 0.05, 0.1, per=per)
    return gm.Models([*gm.Models.from_yaml(SOURCE), *bkg])


def _gammapy(runs, models: gm.Models, tmp_path):
    from gammapy.datasets import Datasets
    from gammapy.datasets import MapDataset as GMapDataset
    from gammapy.modeling.models import Models as GModels

    models.write(tmp_path / "models.yaml", overwrite=True)
    gmodels = GModels.read(tmp_path / "models.yaml")
    datasets = Datasets([GMapDataset.read(runs[n], name=n) for n in runs])
    datasets.models = gmodels
    # Gammapy 2.1 sums a linked parameter's prior once per model sharing it; gdask
    # counts it once per parameter slot. Weight Gammapy's shared priors accordingly.
    uses = Counter(id(p) for p in gmodels.parameters)
    for p in gmodels.parameters.unique_parameters:
        if p.prior is not None and uses[id(p)] > 1:
            p.prior.weight = 1.0 / uses[id(p)]
    return datasets, gmodels


@pytest.mark.parametrize("per", ["run", "instrument"])
def test_background_systematics_equal_gammapy(runs, per, tmp_path):
    from gammapy.modeling import Fit as GFit

    names = list(runs)
    models = _models(names, per)
    gds, gmodels = _gammapy(runs, models, tmp_path)
    n_free = 2 + (2 if per == "instrument" else 2 * len(names))
    assert len(gmodels.parameters.unique_parameters.free_parameters) == n_free
    assert len(models.parameters.free_unique_parameters) == n_free
    terms = [MapTerm(MapDataset.read(runs[n], name=n), models) for n in names]
    for norm, tilt, index in ((1.0, 0.0, 2.5), (1.04, 0.05, 2.6), (0.93, -0.08, 2.4)):
        x = models.parameters.value.copy()
        for i, p in enumerate(models.parameters):
            x[i] = {"norm": norm, "tilt": tilt, "index": index}.get(p.name, x[i])
        for p in gmodels.parameters:
            if p.name in ("norm", "tilt", "index"):
                p.value = {"norm": norm, "tilt": tilt, "index": index}[p.name]
        models.parameters.value = x
        ours = sum(t.stat(x) for t in terms) + models.parameters.prior_stat_sum()
        assert ours == pytest.approx(float(gds.stat_sum()), rel=1e-6), (norm, tilt)

    gres = GFit(optimize_opts={"tol": 1e-3, "strategy": 1}).run(gds)
    assert gres.success
    start = _models(names, per)
    specs = [TermSpec("map", n, str(runs[n]), start.to_dict()) for n in names]
    with Coordinator(specs) as coord:
        result = Fit(start, coord).run()
    assert result.success
    gpars = dict(zip(gmodels.parameters_unique_names, gmodels.parameters, strict=True))
    for name in result.names:
        p = gpars[name]
        assert result[name] == pytest.approx(p.value, abs=0.02 * p.error), name
        assert result.error(name) == pytest.approx(p.error, rel=0.02), name

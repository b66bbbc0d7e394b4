"""Joint-Crab fit (10 OGIP spectra, WSTAT, log-parabola) with the real spectrum terms:
in-process and on a LocalCluster, against a Gammapy 2.1 fit of the same data."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from gdask.fit import Coordinator, Fit
from gdask.likelihood import TermSpec
from gdask.models import LogParabolaSpectralModel, Models, SkyModel

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

RANGES = {
    "fermi": (0.03, 2.0),
    "magic": (0.08, 30.0),
    "veritas": (0.15, 30.0),
    "fact": (0.4, 30.0),
    "hess": (0.66, 30.0),
}
START = {"amplitude": 3.8e-11, "alpha": 2.5, "beta": 0.1}


def _files(data_dir: Path) -> list[tuple[str, Path]]:
    out = [
        (inst, pha)
        for inst in RANGES
        for pha in sorted((data_dir / "joint-crab" / "spectra" / inst).glob("pha_*.fits"))
    ]
    assert len(out) == 10
    return out


def _models() -> Models:
    return Models(
        [
            SkyModel(
                LogParabolaSpectralModel(
                    amplitude=f"{START['amplitude']} cm-2 s-1 TeV-1",
                    reference="1 TeV",
                    alpha=START["alpha"],
                    beta=START["beta"],
                ),
                name="crab",
            )
        ]
    )


def _specs(data_dir: Path, models: Models) -> list[TermSpec]:
    return [
        TermSpec(
            "spectrum",
            f"{inst}-{pha.stem.removeprefix('pha_obs')}",
            str(pha),
            models.to_dict(),
            {"stat": "wstat", "energy_min": RANGES[inst][0], "energy_max": RANGES[inst][1]},
        )
        for inst, pha in _files(data_dir)
    ]


@pytest.fixture(scope="module")
def gdask_local(data_dir):
    models = _models()
    with Coordinator(_specs(data_dir, models)) as coord:
        fit = Fit(models, coord)
        result = fit.run()
        conf = fit.confidence("alpha")
    return result, conf


def test_cluster_equals_in_process(data_dir, client, gdask_local):
    ref, _ = gdask_local
    models = _models()
    with Coordinator(_specs(data_dir, models), client) as coord:
        result = Fit(models, coord).run()
    assert result.success and ref.success
    np.testing.assert_allclose(result.values, ref.values, rtol=1e-8)
    np.testing.assert_allclose(result.errors, ref.errors, rtol=1e-6)
    assert result.stats == pytest.approx(ref.stats, rel=1e-9)
    assert result.n_round_trips < 40


@pytest.mark.validation
def test_against_gammapy(data_dir, gdask_local):
    import astropy.units as u
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling import Fit as GFit
    from gammapy.modeling.models import LogParabolaSpectralModel as GLP
    from gammapy.modeling.models import SkyModel as GSky

    warnings.simplefilter("ignore")
    gds = Datasets()
    for inst, pha in _files(data_dir):
        g = SpectrumDatasetOnOff.read(pha, name=f"{inst}-{pha.stem.removeprefix('pha_obs')}")
        emin, emax = RANGES[inst]
        g.mask_fit = g.counts.geom.energy_mask(emin * u.TeV, emax * u.TeV)
        gds.append(g)
    gds.models = [
        GSky(
            spectral_model=GLP(
                amplitude=START["amplitude"] * u.Unit("cm-2 s-1 TeV-1"),
                reference=1 * u.TeV,
                alpha=START["alpha"],
                beta=START["beta"],
            ),
            name="crab",
        )
    ]
    gfit = GFit()
    gres = gfit.run(gds)
    gconf = gfit.confidence(gds, gds.models.parameters["alpha"])
    ref, conf = gdask_local
    gpars = gds.models.parameters
    for name in ("amplitude", "alpha", "beta"):
        p = gpars[name]
        assert ref[name] == pytest.approx(p.value, abs=0.02 * p.error), name
        assert ref.error(name) == pytest.approx(p.error, rel=0.02), name
    assert ref.total_stat == pytest.approx(gres.total_stat, abs=1e-2)
    assert conf["errp"] == pytest.approx(gconf["errp"], rel=0.02)
    assert conf["errn"] == pytest.approx(gconf["errn"], rel=0.02)
    # the models YAML reads back into Gammapy with the same values and errors
    from gammapy.modeling.models import Models as GModels

    gm = GModels.from_yaml(ref.to_yaml())
    for name in ("amplitude", "alpha", "beta"):
        assert gm.parameters[name].value == pytest.approx(ref[name], rel=1e-12)
        assert gm.parameters[name].error == pytest.approx(ref.error(name), rel=1e-12)

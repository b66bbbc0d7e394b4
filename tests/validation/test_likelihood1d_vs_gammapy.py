"""1D likelihood terms against Gammapy 2.1 on the joint-Crab OGIP spectra.

Every observation of Fermi-LAT, MAGIC, VERITAS, FACT and H.E.S.S. is its own
dataset with the fit ranges of the joint-Crab paper (QUALITY == 0 bins only);
log-parabola at 1 TeV, WSTAT. Statistics must agree to 1e-6 per dataset and in
total at several parameter points, and a MIGRAD fit driven by gdask's
analytic gradient must land on Gammapy's best fit (both computed here).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.validation, pytest.mark.realdata]

import astropy.units as u  # noqa: E402
import iminuit  # noqa: E402
from gammapy.datasets import Datasets  # noqa: E402
from gammapy.datasets import SpectrumDataset as GSpectrumDataset  # noqa: E402
from gammapy.datasets import SpectrumDatasetOnOff as GSpectrumDatasetOnOff  # noqa: E402
from gammapy.modeling import Fit  # noqa: E402
from gammapy.modeling.models import LogParabolaSpectralModel as GLogParabola  # noqa: E402
from gammapy.modeling.models import SkyModel as GSkyModel  # noqa: E402

from gdask.datasets import SpectrumDatasetOnOff  # noqa: E402
from gdask.likelihood import TermSpec, build_term  # noqa: E402
from gdask.likelihood.spectrum import SpectrumOnOffTerm  # noqa: E402
from gdask.models import LogParabolaSpectralModel, Models, SkyModel  # noqa: E402

RANGES = {
    "fermi": (0.03, 2.0),
    "magic": (0.08, 30.0),
    "veritas": (0.15, 30.0),
    "fact": (0.4, 30.0),
    "hess": (0.66, 30.0),
}
START = {"amplitude": 3.8e-11, "alpha": 2.5, "beta": 0.1}
POINTS = [(3.8e-11, 2.5, 0.1), (4.4e-11, 2.35, 0.05), (2.9e-11, 2.7, 0.2), (3.5e-11, 2.45, 0.0)]


def _files(data_dir: Path) -> list[tuple[str, Path]]:
    out = []
    for inst in RANGES:
        for pha in sorted((data_dir / "joint-crab" / "spectra" / inst).glob("pha_*.fits")):
            out.append((inst, pha))
    assert len(out) == 10
    return out


def _gmodel() -> GSkyModel:
    return GSkyModel(
        spectral_model=GLogParabola(
            amplitude=START["amplitude"] * u.Unit("cm-2 s-1 TeV-1"),
            reference=1 * u.TeV,
            alpha=START["alpha"],
            beta=START["beta"],
        ),
        name="crab",
    )


def _dmodels() -> Models:
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


@pytest.fixture(scope="module")
def joint(data_dir: Path):
    warnings.simplefilter("ignore")
    gds, terms = Datasets(), []
    dmodels = _dmodels()
    for inst, pha in _files(data_dir):
        name = f"{inst}-{pha.stem.removeprefix('pha_obs')}"
        g = GSpectrumDatasetOnOff.read(pha, name=name)
        emin, emax = RANGES[inst]
        g.mask_fit = g.counts.geom.energy_mask(emin * u.TeV, emax * u.TeV)
        gds.append(g)
        spec = TermSpec(
            "spectrum",
            name,
            str(pha),
            dmodels.to_dict(),
            {"stat": "wstat", "energy_min": emin, "energy_max": emax},
        )
        terms.append(build_term(spec))
    gmodel = _gmodel()
    gds.models = [gmodel]
    return gds, gmodel, terms, dmodels


def _set(gmodel: GSkyModel, point: tuple[float, float, float]) -> None:
    sm = gmodel.spectral_model
    sm.amplitude.value, sm.alpha.value, sm.beta.value = point


def _vector(dmodels: Models, point: tuple[float, float, float]) -> np.ndarray:
    x = dmodels.parameters.value
    names = dmodels.parameters.names
    for key, v in zip(("amplitude", "alpha", "beta"), point, strict=True):
        x[names.index(key)] = v
    return x


def test_masks_match(joint) -> None:
    gds, _, terms, _ = joint
    for g, t in zip(gds, terms, strict=True):
        np.testing.assert_array_equal(t.mask, g.mask.data.ravel(), err_msg=g.name)


@pytest.mark.parametrize("point", POINTS)
def test_stat_per_dataset_and_total(joint, point) -> None:
    gds, gmodel, terms, dmodels = joint
    _set(gmodel, point)
    x = _vector(dmodels, point)
    tot_g = tot_d = 0.0
    for g, t in zip(gds, terms, strict=True):
        sg, sd = float(g.stat_sum()), t.stat(x)
        assert sd == pytest.approx(sg, rel=1e-6), g.name
        assert t.stat_and_grad(x)[0] == pytest.approx(sg, rel=1e-6), g.name
        np.testing.assert_allclose(
            t.npred_signal(x), g.npred_signal().data.ravel(), rtol=1e-6, atol=1e-12
        )
        tot_g += sg
        tot_d += sd
    assert tot_d == pytest.approx(tot_g, rel=1e-6)
    assert tot_d == pytest.approx(float(gds.stat_sum()), rel=1e-6)


def test_npred_background_matches(joint) -> None:
    gds, gmodel, terms, dmodels = joint
    _set(gmodel, POINTS[1])
    x = _vector(dmodels, POINTS[1])
    for g, t in zip(gds, terms, strict=True):
        np.testing.assert_allclose(
            t.npred_background(x), g.npred_background().data.ravel(), rtol=1e-6, atol=1e-9
        )


def test_cash_with_known_background(data_dir: Path) -> None:
    pha = data_dir / "joint-crab" / "spectra" / "hess" / "pha_obs23523.fits"
    on = GSpectrumDatasetOnOff.read(pha, name="h")
    bkg = on.background  # alpha * counts_off
    g = GSpectrumDataset(
        counts=on.counts,
        exposure=on.exposure,
        edisp=on.edisp,
        background=bkg,
        mask_safe=on.mask_safe,
        name="h",
    )
    g.mask_fit = g.counts.geom.energy_mask(0.66 * u.TeV, 30 * u.TeV)
    gmodel = _gmodel()
    g.models = [gmodel]
    dmodels = _dmodels()
    term = SpectrumOnOffTerm(
        SpectrumDatasetOnOff.read(pha, name="h"),
        dmodels,
        stat="cash",
        energy_min=0.66,
        energy_max=30,
    )
    for point in POINTS:
        _set(gmodel, point)
        assert term.stat(_vector(dmodels, point)) == pytest.approx(float(g.stat_sum()), rel=1e-6)


def test_fit_reaches_gammapy_best_fit(joint) -> None:
    gds, gmodel, terms, dmodels = joint
    _set(gmodel, tuple(START.values()))
    # tight tolerance on both sides: compare minima, not stopping rules
    fit = Fit(optimize_opts={"tol": 1e-3, "strategy": 1})
    result = fit.run(gds)
    assert result.success
    sm = gmodel.spectral_model
    best_g = np.array([sm.amplitude.value, sm.alpha.value, sm.beta.value])
    err_g = np.array([sm.amplitude.error, sm.alpha.error, sm.beta.error])

    names = dmodels.parameters.names
    idx = [names.index(k) for k in ("amplitude", "alpha", "beta")]
    x0 = _vector(dmodels, tuple(START.values()))
    scale = np.array([1e-11, 1.0, 1.0])

    def expand(f: np.ndarray) -> np.ndarray:
        x = x0.copy()
        x[idx] = np.asarray(f) * scale
        return x

    def fcn(f: np.ndarray) -> float:
        return sum(t.stat(expand(f)) for t in terms)

    def grad(f: np.ndarray) -> np.ndarray:
        x = expand(f)
        g = sum(t.stat_and_grad(x)[1] for t in terms)
        return g[idx] * scale

    m = iminuit.Minuit(fcn, x0[idx] / scale, grad=grad)
    m.errordef = 1.0
    m.strategy = 0
    m.tol = 1e-3
    m.migrad()
    assert m.valid
    best_d = np.asarray(m.values) * scale
    pulls = (best_d - best_g) / err_g
    assert np.all(np.abs(pulls) < 0.01), pulls
    assert fcn(np.asarray(m.values)) == pytest.approx(result.total_stat, abs=1e-3)


def test_cash_with_background_model(data_dir: Path) -> None:
    """A dataset without OFF counts, known background scaled by a FoVBackgroundModel (cash)."""
    from gammapy.modeling.models import FoVBackgroundModel as GFoV
    from gammapy.modeling.models import Models as GModels

    from gdask.geometry.axes import EnergyAxis
    from gdask.models import FoVBackgroundModel, PowerLawNormSpectralModel

    pha = data_dir / "joint-crab" / "spectra" / "hess" / "pha_obs23523.fits"
    on = GSpectrumDatasetOnOff.read(pha, name="h")
    g = GSpectrumDataset(
        counts=on.counts,
        exposure=on.exposure,
        edisp=on.edisp,
        background=on.background,
        mask_safe=on.mask_safe,
        name="h",
    )
    g.mask_fit = g.counts.geom.energy_mask(0.66 * u.TeV, 30 * u.TeV)
    gbkg = GFoV(dataset_name="h")
    gbkg.spectral_model.tilt.frozen = False
    gmodels = GModels([_gmodel(), gbkg])
    g.models = gmodels

    d = SpectrumDatasetOnOff.read(pha, name="h")
    dd = SpectrumDatasetOnOff(
        EnergyAxis(d.energy_axis.quantity_edges.to_value("TeV")),
        EnergyAxis(d.energy_axis_true.quantity_edges.to_value("TeV"), name="energy_true"),
        counts=d.counts.values,
        background=d.alpha.values * d.counts_off.values,
        effective_area=d.ds["effective_area"].values,
        livetime=d.livetime,
        edisp=d.ds["edisp"].transpose("energy_true", "energy").values,
        mask_safe=d.mask_safe.values,
        name="h",
    )
    dbkg = FoVBackgroundModel("h", spectral_model=PowerLawNormSpectralModel())
    dbkg.spectral_model.tilt.frozen = False
    dmodels = Models([*_dmodels(), dbkg])
    term = SpectrumOnOffTerm(dd, dmodels, energy_min=0.66, energy_max=30)
    assert term.stat_type == "cash"
    for point, (norm, tilt) in zip(
        POINTS, [(1.0, 0.0), (1.1, 0.1), (0.9, -0.2), (1.3, 0.05)], strict=True
    ):
        _set(gmodels["crab"], point)
        gbkg.spectral_model.norm.value, gbkg.spectral_model.tilt.value = norm, tilt
        x = _vector(dmodels, point)
        names = dmodels.parameters.names
        x[names.index("norm")], x[names.index("tilt")] = norm, tilt
        ref = float(g.stat_sum())
        assert term.stat(x) == pytest.approx(ref, rel=1e-6), (point, norm, tilt)
        np.testing.assert_allclose(
            term.npred_background(x), g.npred_background().data.ravel(), rtol=1e-6
        )

"""Flux points on in-process terms: the per-bin restriction and the estimator's bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from gdask.estimators.flux_points import FluxPointsEstimator, bin_masks
from gdask.estimators.norm import estimate_norm, norm_positions, restrict_terms
from gdask.likelihood.term import TermSpec, build_term
from gdask.models import Models, PowerLawSpectralModel, SkyModel


@pytest.fixture(scope="module")
def crab(data_dir):
    models = Models(
        [
            SkyModel(
                spectral_model=PowerLawSpectralModel(index=2.6, amplitude="3e-11 cm-2 s-1 TeV-1"),
                name="crab",
            )
        ]
    )
    pha = data_dir / "joint-crab/spectra/hess/pha_obs23523.fits"
    return models, pha


def test_restrict_equals_term_built_on_the_range(crab):
    models, pha = crab
    full = build_term(TermSpec("spectrum", "a", str(pha), models.to_dict()))
    k = int(np.argmin(np.abs(full.edges - 1.0)))
    lo, hi = full.edges[k], full.edges[k + 3]
    ranged = build_term(
        TermSpec(
            "spectrum",
            "a",
            str(pha),
            models.to_dict(),
            {"energy_min": lo * 0.999, "energy_max": hi * 1.001},
        )
    )
    sub = full.restrict(bin_masks(full.edges, lo, hi))
    np.testing.assert_array_equal(sub.mask, ranged.mask)
    assert sub.mask.sum() == 3
    v = models.parameters.value * 1.1
    assert sub.stat(v) == pytest.approx(ranged.stat(v), rel=1e-12)
    np.testing.assert_allclose(sub.stat_and_grad(v)[1], ranged.stat_and_grad(v)[1], rtol=1e-10)
    assert full.mask.sum() > sub.mask.sum()  # the original is untouched
    with pytest.raises(ValueError, match="mask of shape"):
        full.restrict(np.ones(3, bool))


def test_estimate_norm_profile_is_consistent(crab):
    models, pha = crab
    term = build_term(TermSpec("spectrum", "a", str(pha), models.to_dict()))
    sub = restrict_terms([term], [bin_masks(term.edges, 1.0, 3.0)])
    pos = norm_positions(models, "crab")
    res = estimate_norm(sub, models.parameters.value, pos, selection_optional="all")
    # the roots are where the profile rises by 1 and 4
    v = models.parameters.value.copy()
    for norm, level in ((res["norm"] + res["norm_errp"], 1), (res["norm_ul"], 4)):
        v[pos] = models.parameters.value[pos] * norm
        assert sub[0].stat(v) - res["stat"] == pytest.approx(level, abs=1e-6)
    assert res["ts"] == pytest.approx(res["stat_null"] - res["stat"])
    assert res["counts"][0] == term.counts[sub[0].mask].sum()


def test_estimator_runs_in_process_and_from_a_coordinator(crab):
    from gdask.fit import Coordinator

    models, pha = crab
    spec = TermSpec("spectrum", "a", str(pha), models.to_dict())
    est = FluxPointsEstimator("crab", [1.0, 3.0, 10.0], selection_optional=["ul"])
    a = est.run([build_term(spec)], models)
    with Coordinator([spec]) as coord:
        b = est.run(coord, models)
    assert len(a) == 2
    np.testing.assert_array_equal(a.data["norm"], b.data["norm"])
    np.testing.assert_array_equal(a.data["norm_ul"], b.data["norm_ul"])
    assert np.all(a.dnde == a.data["norm"] * a.data["ref_dnde"])


def test_sed_plot_draws_points_uls_and_butterfly(crab, tmp_path):
    from gdask.analysis.results import butterfly
    from gdask.plotting import plot_sed

    models, pha = crab
    fp = FluxPointsEstimator(
        "crab", np.geomspace(0.7, 60, 9), selection_optional=["errn-errp", "ul"]
    ).run([build_term(TermSpec("spectrum", "a", str(pha), models.to_dict()))], models)
    assert fp.is_ul.any() and (~fp.is_ul).any()  # both kinds are drawn
    energy = np.geomspace(0.7, 60, 50)
    cov = np.diag([0.05**2, (3e-12) ** 2])
    dnde, err = butterfly(
        models["crab"], ["crab.spectral.index", "crab.spectral.amplitude"], cov, energy
    )
    assert np.all(err > 0)
    curve = (energy, dnde, err)
    path = plot_sed(tmp_path / "sed.png", fp, curve)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="sed_type"):
        plot_sed(tmp_path / "x.png", fp, sed_type="flux")

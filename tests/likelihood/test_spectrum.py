"""Unit tests of the 1D spectrum likelihood term (synthetic data, no Gammapy)."""

from __future__ import annotations

import numpy as np
import pytest

from gdask.datasets import DatasetStore, SpectrumDatasetOnOff
from gdask.dl3.gti import GTI
from gdask.errors import ConfigError
from gdask.geometry.axes import EnergyAxis
from gdask.likelihood import TermSpec, build_term
from gdask.likelihood.folding import (
    diagonal_response,
    energy_range_mask,
    fold_kernel,
    scaled_integral_and_grads,
    subset_ndecade,
)
from gdask.likelihood.spectrum import SpectrumOnOffTerm
from gdask.models import (
    ExpCutoffPowerLawSpectralModel,
    FoVBackgroundModel,
    LinearTemporalModel,
    LogParabolaSpectralModel,
    Models,
    PowerLawNormSpectralModel,
    PowerLawSpectralModel,
    SkyModel,
)
from gdask.stats import cash_sum, wstat

EDGES = np.geomspace(0.1, 100.0, 16)
EDGES_TRUE = np.geomspace(0.05, 200.0, 31)


def _edisp(edges_true: np.ndarray, edges: np.ndarray, sigma: float = 0.15) -> np.ndarray:
    """Gaussian migration in ln E (rows sum to <= 1)."""
    c = np.sqrt(edges_true[:-1] * edges_true[1:])[:, None]
    from scipy.stats import norm

    cdf = norm.cdf((np.log(edges[None, :]) - np.log(c)) / sigma)
    return np.diff(cdf, axis=1)


def make_dataset(name: str = "d1", seed: int = 0, gti: bool = False) -> SpectrumDatasetOnOff:
    rng = np.random.default_rng(seed)
    et = np.sqrt(EDGES_TRUE[:-1] * EDGES_TRUE[1:])
    aeff = 1e9 * et**0.5 / (1 + (0.3 / et) ** 3)  # cm2
    counts_off = rng.poisson(40 * (EDGES[:-1] / 0.1) ** -1.2).astype(float)
    counts = rng.poisson(60 * (EDGES[:-1] / 0.1) ** -1.6 + 5).astype(float)
    counts[-2:] = 0.0  # empty bins
    mask = np.ones(EDGES.size - 1, bool)
    mask[0] = False
    kwargs = {}
    if gti:
        kwargs["gti"] = GTI.create([0.0, 5000.0], [3000.0, 9000.0], mjdref=55000.0)
    return SpectrumDatasetOnOff(
        EnergyAxis(EDGES),
        EnergyAxis(EDGES_TRUE, name="energy_true"),
        counts=counts,
        counts_off=counts_off,
        acceptance=np.ones(EDGES.size - 1),
        acceptance_off=np.full(EDGES.size - 1, 5.0),
        effective_area=aeff,
        livetime=1800.0,
        edisp=_edisp(EDGES_TRUE, EDGES),
        mask_safe=mask,
        name=name,
        **kwargs,
    )


SPECTRA = {
    "pl": lambda: PowerLawSpectralModel(
        index=2.3, amplitude="3e-11 cm-2 s-1 TeV-1", reference="1 TeV"
    ),
    "lp": lambda: LogParabolaSpectralModel(
        amplitude="3e-11 cm-2 s-1 TeV-1", reference="1000 GeV", alpha=2.4, beta=0.12
    ),
    "ecpl": lambda: ExpCutoffPowerLawSpectralModel(
        index=2.0, amplitude="3e-15 cm-2 s-1 GeV-1", reference="1 TeV", lambda_="0.05 TeV-1"
    ),
}


def fd_grad(f, x: np.ndarray, rel: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for i in range(x.size):
        h = rel * max(abs(x[i]), 1e-3 if x[i] == 0 else abs(x[i]))
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


def assert_grad(term, x: np.ndarray, skip: tuple[int, ...] = ()) -> None:
    value, g = term.stat_and_grad(x)
    assert value == pytest.approx(term.stat(x), rel=1e-14)
    num = fd_grad(term.stat, x)
    for i in range(x.size):
        if i in skip:
            continue
        assert g[i] == pytest.approx(num[i], rel=1e-5, abs=1e-7 * abs(value)), (i, g, num)


@pytest.mark.parametrize("stat", ["wstat", "cash"])
@pytest.mark.parametrize("kind", list(SPECTRA))
def test_gradient_matches_finite_differences(kind: str, stat: str) -> None:
    models = Models([SkyModel(SPECTRA[kind](), name="src")])
    term = SpectrumOnOffTerm(make_dataset(), models, stat=stat, energy_min=0.2, energy_max=50)
    x = models.parameters.value
    assert term.n_parameters == x.size
    assert_grad(term, x)
    assert_grad(term, x * np.linspace(0.97, 1.03, x.size))


def test_value_matches_direct_computation() -> None:
    models = Models([SkyModel(SPECTRA["pl"](), name="src")])
    ds = make_dataset()
    term = SpectrumOnOffTerm(ds, models, energy_min=0.2, energy_max=50)
    m = models[0].spectral_model
    flux = m.integral(EDGES_TRUE[:-1], EDGES_TRUE[1:])
    mu = (flux * ds.exposure.values) @ ds.edisp.values
    mask = ds.mask_safe.values & energy_range_mask(EDGES, 0.2, 50)
    alpha = ds.alpha.values
    expected = np.sum(np.nan_to_num(wstat(ds.counts.values, ds.counts_off.values, alpha, mu))[mask])
    x = models.parameters.value
    assert term.stat(x) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(term.npred_signal(x), mu, rtol=1e-12)
    cterm = SpectrumOnOffTerm(ds, models, stat="cash", energy_min=0.2, energy_max=50)
    bkg = alpha * ds.counts_off.values
    assert cterm.stat(x) == pytest.approx(
        cash_sum(ds.counts.values[mask], (mu + bkg)[mask]), rel=1e-12
    )


def test_energy_range_mask_partial_bins() -> None:
    edges = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
    np.testing.assert_array_equal(energy_range_mask(edges, 0.2, 0.8), [False, True, True, False])
    np.testing.assert_array_equal(energy_range_mask(edges, 0.15, 1.0), [False, True, True, False])
    np.testing.assert_array_equal(energy_range_mask(edges), [True] * 4)
    term = SpectrumOnOffTerm(
        make_dataset(),
        Models([SkyModel(SPECTRA["pl"](), name="s")]),
        energy_min="300 GeV",
        energy_max=10,
    )
    lo, hi = term.edges[:-1][term.mask], term.edges[1:][term.mask]
    assert lo.min() >= 0.3 and hi.max() <= 10
    assert term.info()["mask"].sum() == np.count_nonzero(term.mask)


def test_folding_helpers() -> None:
    np.testing.assert_allclose(diagonal_response(EDGES, EDGES), np.eye(EDGES.size - 1))
    d = diagonal_response([1.0, 2.0, 4.0], [1.0, 4.0])
    np.testing.assert_allclose(d, [[1.0], [1.0]])
    expo = np.arange(1.0, 4.0)
    edisp = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    rows, cols, k = fold_kernel(expo, edisp, [True, False])
    np.testing.assert_array_equal(rows, [0, 1])
    np.testing.assert_array_equal(cols, [0])
    np.testing.assert_allclose(k, [[1.0], [1.0]])
    # a restricted integration reproduces the full-axis grid (Gammapy's n points)
    m = SPECTRA["lp"]()
    theta = m.parameters.canonical_value
    lo, hi = EDGES_TRUE[:-1], EDGES_TRUE[1:]
    full = m.integral_theta(lo, hi, theta)
    sub = np.arange(3, 9)
    nd = subset_ndecade(lo, hi, sub)
    np.testing.assert_array_equal(m.integral_theta(lo[sub], hi[sub], theta, nd), full[sub])


@pytest.mark.parametrize("kind", ["pl", "lp"])
def test_energy_scale(kind: str) -> None:
    nuis = SkyModel(PowerLawNormSpectralModel(), name="escale", datasets_names=[])
    src = SkyModel(SPECTRA[kind](), name="src")
    models = Models([src, nuis])
    ds = make_dataset()
    base = SpectrumOnOffTerm(ds, models, energy_min=0.2, energy_max=50)
    term = SpectrumOnOffTerm(
        ds, models, energy_min=0.2, energy_max=50, energy_scale="escale.spectral.tilt"
    )
    x = models.parameters.value
    assert term.stat(x) == pytest.approx(base.stat(x), rel=1e-13)
    i = models.parameters.names.index("tilt")
    x[i] = 0.04
    assert term.stat(x) != pytest.approx(base.stat(x), rel=1e-6)
    assert_grad(term, x)
    if kind == "pl":  # (1+s) phi((1+s) E) is a power law of amplitude A (1+s)^(1-index)
        y = x.copy()
        y[1] *= 1.04 ** (1 - x[0])
        y[i] = 0.0
        assert term.stat(x) == pytest.approx(base.stat(y), rel=1e-10)


def test_scaled_integral_numeric_derivative() -> None:
    m = SPECTRA["lp"]()
    theta = m.parameters.canonical_value
    lo, hi = EDGES_TRUE[:-1], EDGES_TRUE[1:]
    v, _, ds = scaled_integral_and_grads(m, lo, hi, theta, 1.1, grad=True, grad_scale=True)
    h = 1e-6
    vp = scaled_integral_and_grads(m, lo, hi, theta, 1.1 + h, grad=False)[0]
    vm = scaled_integral_and_grads(m, lo, hi, theta, 1.1 - h, grad=False)[0]
    np.testing.assert_allclose(ds, (vp - vm) / (2 * h), rtol=1e-6)


def test_dataset_selection_and_cache(monkeypatch) -> None:
    a = SkyModel(SPECTRA["pl"](), name="a")
    b = SkyModel(SPECTRA["lp"](), name="b", datasets_names=["d1"])
    c = SkyModel(SPECTRA["ecpl"](), name="c", datasets_names=["other"])
    models = Models([a, b, c])
    term = SpectrumOnOffTerm(make_dataset("d1"), models, energy_min=0.2)
    assert [s.name for s in term._sources] == ["a", "b"]
    x = models.parameters.value
    _, g = term.stat_and_grad(x)
    nc = len(c.parameters)
    assert np.all(g[-nc:] == 0)
    assert np.any(g[:3] != 0)

    import gdask.likelihood.spectrum as mod

    calls = []
    real = mod.scaled_integral_and_grads

    def spy(model, *args, **kwargs):
        calls.append(type(model).__name__)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(mod, "scaled_integral_and_grads", spy)
    term.stat_and_grad(x)
    assert calls == []  # nothing changed
    y = x.copy()
    y[len(a.parameters) + 2] += 0.01  # alpha of b
    term.stat_and_grad(y)
    assert calls == ["LogParabolaSpectralModel"]
    calls.clear()
    v1 = term.stat(y)  # the value alone is its own function of y, cached on its own
    n = len(calls)
    assert term.stat(y) == v1 and len(calls) == n
    assert v1 == pytest.approx(term.stat_and_grad(y)[0], rel=1e-12)
    assert v1 == SpectrumOnOffTerm(make_dataset("d1"), models, energy_min=0.2).stat(y)


def test_temporal_model_norm_and_gradient() -> None:
    ds = make_dataset(gti=True)
    tm = LinearTemporalModel(alpha=1.0, beta="0.5 d-1", t_ref="55000.01 d")
    src = SkyModel(SPECTRA["pl"](), temporal_model=tm, name="src")
    models = Models([src])
    term = SpectrumOnOffTerm(ds, models, energy_min=0.2)
    x = models.parameters.value
    plain = SpectrumOnOffTerm(ds, Models([SkyModel(SPECTRA["pl"](), name="p")]), energy_min=0.2)
    g = ds.gti
    from astropy import units as u
    from astropy.time import Time

    ref = Time(55000.0, format="mjd", scale="tt")  # GTI in TT, model in UTC
    t0, t1 = ((ref + g.start * u.s).utc.mjd, (ref + g.stop * u.s).utc.mjd)
    norm = float(np.sum(tm.integral(t0, t1)))
    assert norm != pytest.approx(1.0)
    expected = plain.npred_signal(plain.models.parameters.value) * norm
    np.testing.assert_allclose(term.npred_signal(x), expected, rtol=1e-12)
    assert_grad(term, x, skip=(5,))  # t_ref: MJD ~ 55000, relative FD step too coarse
    h = 1e-4
    xp, xm = x.copy(), x.copy()
    xp[5] += h
    xm[5] -= h
    fd = (term.stat(xp) - term.stat(xm)) / (2 * h)
    assert term.stat_and_grad(x)[1][5] == pytest.approx(fd, rel=1e-5)
    with pytest.raises(ConfigError):
        SpectrumOnOffTerm(make_dataset(), models)


def test_apply_irf_edisp_off_and_fov_error() -> None:
    ds = make_dataset()
    src = SkyModel(
        SPECTRA["pl"](), name="src", apply_irf={"exposure": True, "psf": True, "edisp": False}
    )
    models = Models([src])
    term = SpectrumOnOffTerm(ds, models)
    x = models.parameters.value
    flux = src.spectral_model.integral(EDGES_TRUE[:-1], EDGES_TRUE[1:]) * ds.exposure.values
    np.testing.assert_allclose(term.npred_signal(x), flux @ diagonal_response(EDGES_TRUE, EDGES))
    assert_grad(term, x)
    with pytest.raises(ConfigError):
        SpectrumOnOffTerm(ds, Models([src, FoVBackgroundModel("d1")]))
    with pytest.raises(ConfigError):
        SpectrumOnOffTerm(ds, models, stat="chi2")


def test_info_and_npred() -> None:
    models = Models([SkyModel(SPECTRA["lp"](), name="src")])
    ds = make_dataset()
    term = SpectrumOnOffTerm(ds, models, energy_min=0.2)
    x = models.parameters.value
    info = term.info(x)
    n = EDGES.size - 1
    for key in ("counts", "counts_off", "alpha", "npred_sig", "npred_bkg", "mask"):
        assert info[key].shape == (n,)
    assert info["energy_edges"].shape == (n + 1,)
    assert info["stat"] == pytest.approx(term.stat(x))
    np.testing.assert_allclose(
        term.npred(x), np.clip(info["npred_sig"] + info["npred_bkg"], 0, None)
    )
    assert np.all(info["npred_bkg"] >= 0)


def test_build_from_spec_ogip_and_store(tmp_path) -> None:
    ds = make_dataset("d1")
    pha = ds.write(tmp_path / "ogip")
    models = Models([SkyModel(SPECTRA["lp"](), name="src")])
    x = models.parameters.value
    ref = SpectrumOnOffTerm(ds, models, energy_min=0.2, energy_max=50).stat(x)
    opts = {"stat": "wstat", "energy_min": 0.2, "energy_max": 50}
    t1 = build_term(TermSpec("spectrum", "d1", str(pha), models.to_dict(), opts))
    assert t1.name == "d1"
    assert t1.stat(x) == pytest.approx(ref, rel=1e-6)  # RMF stored as float32
    store = DatasetStore(tmp_path / "store")
    store.write(ds)
    t2 = build_term(TermSpec("spectrum", "d1", f"{tmp_path / 'store'}::d1", models.to_dict(), opts))
    assert t2.stat(x) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ConfigError):
        build_term(TermSpec("spectrum", "d1", str(pha), models.to_dict(), {"emin": 1}))


def test_empty_fit_range_and_linked_parameters() -> None:
    models = Models([SkyModel(SPECTRA["lp"](), name="src")])
    term = SpectrumOnOffTerm(make_dataset(), models, energy_min=500.0)
    value, g = term.stat_and_grad(models.parameters.value)
    assert value == 0.0 and np.all(g == 0)

    from gdask.models import link_parameters

    a, b = SPECTRA["pl"](), SPECTRA["lp"]()
    link_parameters(a.amplitude, b.amplitude)
    models = Models([SkyModel(a, name="a"), SkyModel(b, name="b")])
    term = SpectrumOnOffTerm(make_dataset(), models, energy_min=0.2)
    lay = models.parameters.flat_layout()
    u0 = models.parameters.value[lay.first]

    def f(uvec):
        return term.stat(lay.expand(uvec))

    _, g = term.stat_and_grad(lay.expand(u0))
    np.testing.assert_allclose(lay.reduce_grad(g), fd_grad(f, u0), rtol=1e-5, atol=1e-6)


def _on_only(name: str = "d1") -> SpectrumDatasetOnOff:
    """A dataset without OFF counts but with a known background (Gammapy's SpectrumDataset)."""
    on = make_dataset(name)
    ds = on.ds
    return SpectrumDatasetOnOff(
        EnergyAxis(EDGES),
        EnergyAxis(EDGES_TRUE, name="energy_true"),
        counts=ds["counts"].values,
        background=on.alpha.values * ds["counts_off"].values,
        effective_area=ds["effective_area"].values,
        livetime=1800.0,
        edisp=_edisp(EDGES_TRUE, EDGES),
        mask_safe=ds["mask_safe"].values,
        name=name,
    )


def test_background_model_on_dataset_without_off() -> None:
    ds = _on_only()
    src = SkyModel(SPECTRA["lp"](), name="src")
    bkg = FoVBackgroundModel("d1", spectral_model=PowerLawNormSpectralModel(norm=1.2, tilt=0.1))
    bkg.spectral_model.tilt.frozen = False
    models = Models([src, bkg])
    term = SpectrumOnOffTerm(ds, models, energy_min=0.2, energy_max=50)
    assert term.stat_type == "cash"
    x = models.parameters.value
    assert_grad(term, x)
    # the value: cash of signal + norm(E) x background on the fitted bins
    centres = np.sqrt(EDGES[:-1] * EDGES[1:])
    norm = 1.2 * (centres / 1.0) ** -0.1
    b = ds.ds["background"].values * norm
    np.testing.assert_allclose(term.npred_background(x), b, rtol=1e-13)
    mu = np.clip(term.npred_signal(x) + b, 0, None)
    m = term.mask
    assert term.stat(x) == pytest.approx(cash_sum(ds.counts.values[m], mu[m]), rel=1e-12)
    # without the model the known background is used as is
    plain = SpectrumOnOffTerm(ds, Models([src]), energy_min=0.2, energy_max=50)
    np.testing.assert_array_equal(plain.npred_background(), ds.ds["background"].values)
    with pytest.raises(ConfigError, match="no OFF counts"):
        SpectrumOnOffTerm(ds, Models([src]), stat="wstat")
    with pytest.raises(ConfigError, match="two FoVBackgroundModels"):
        SpectrumOnOffTerm(ds, Models([src, bkg, FoVBackgroundModel("d1", name="b2")]))


@pytest.mark.parametrize("parametrisation", ["scale", "bias"])
def test_energy_scale_model_component(parametrisation: str) -> None:
    from gdask.models import EnergyScaleModel

    src = SkyModel(SPECTRA["pl"](), name="src")
    nuis = EnergyScaleModel(["d1"], parametrisation, sigma=0.1, name="escale")
    other = EnergyScaleModel(["d2"], parametrisation, name="other")  # not this dataset
    models = Models([src, nuis, other])
    ds = make_dataset()
    base = SpectrumOnOffTerm(ds, Models([SkyModel(SPECTRA["pl"](), name="src")]))
    term = SpectrumOnOffTerm(ds, models)
    x = models.parameters.value
    x0 = Models([SkyModel(SPECTRA["pl"](), name="src")]).parameters.value
    assert term.stat(x) == pytest.approx(base.stat(x0), rel=1e-13)
    i = models.parameters_unique_names.index("escale.energy_scale." + nuis.parameters.names[0])
    x[i] = 0.04
    assert_grad(term, x)
    # k phi(k E) of a power law is a power law of amplitude A k^(1 - index)
    k = 1.04 if parametrisation == "scale" else 1 / 1.04
    y = x0.copy()
    y[1] *= k ** (1 - x0[0])
    assert term.stat(x) == pytest.approx(base.stat(y), rel=1e-10)
    # the other dataset's nuisance has no effect here
    j = models.parameters_unique_names.index("other.energy_scale." + nuis.parameters.names[0])
    x[j] = 0.2
    assert term.stat(x) == pytest.approx(base.stat(y), rel=1e-10)
    with pytest.raises(ConfigError, match="two EnergyScaleModels"):
        SpectrumOnOffTerm(ds, Models([src, nuis, EnergyScaleModel("d1", name="again")]))


def test_known_background_is_not_lost_in_ogip(tmp_path) -> None:
    from gdask.errors import FormatError

    with pytest.raises(FormatError, match="known background"):
        _on_only().write(tmp_path)
    assert not list(tmp_path.iterdir())
    store = DatasetStore(tmp_path / "s.zarr")
    store.write(_on_only(), "d1")
    back = store.read("d1", lazy=False)
    np.testing.assert_array_equal(back.ds["background"].values, _on_only().ds["background"].values)

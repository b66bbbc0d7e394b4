"""Unit tests of the map likelihood term on a small synthetic dataset."""

from __future__ import annotations

import numpy as np
import pytest

import gdask.models as gm
from gdask.datasets import BandAxis, MapDataset
from gdask.datasets.irf_maps import EDispKernelMap, PSFMap
from gdask.geometry.axes import Axis, EnergyAxis
from gdask.geometry.wcs import WcsGeom
from gdask.likelihood import TermSpec, build_term
from gdask.likelihood.map import MapTerm
from gdask.likelihood.psf_kernel import KernelConvolver

CENTER = (83.6, 22.0)


def make_dataset(name: str = "ds", seed: int = 1) -> MapDataset:
    rng = np.random.default_rng(seed)
    geom = WcsGeom.create(skydir=CENTER, width=1.2, binsz=0.04, frame="icrs")
    e_reco = EnergyAxis.from_bounds(0.7, 10, 4, name="energy")
    e_true = EnergyAxis.from_bounds(0.5, 20, 6, name="energy_true")
    geom_irf = geom.to_binsz(0.2)
    rad = Axis.from_bounds(0.0, 0.5, 50, name="rad", unit="deg")
    r = rad.center
    sigma = np.linspace(0.12, 0.06, 6)[:, None]
    prof = np.exp(-0.5 * (r / sigma) ** 2) / (2 * np.pi * np.radians(sigma) ** 2)
    ly, lx = geom_irf.shape
    psf_data = np.broadcast_to(prof[:, :, None, None], (6, 50, ly, lx)).copy()
    psf_data *= np.linspace(0.95, 1.05, lx)[None, None, None, :]
    psf = PSFMap(psf_data, BandAxis(e_true), BandAxis(rad), geom_irf, np.ones((6, ly, lx)))
    kern = np.zeros((6, 4))
    lo, hi = e_true.edges[:-1], e_true.edges[1:]
    for i in range(6):
        c = np.sqrt(lo[i] * hi[i])
        w = np.exp(-0.5 * ((np.log(e_reco.center) - np.log(c)) / 0.4) ** 2)
        kern[i] = 0.9 * w / w.sum()
    edisp = EDispKernelMap(
        np.broadcast_to(kern[:, :, None, None], (6, 4, ly, lx)).copy(),
        BandAxis(e_true),
        BandAxis(e_reco),
        geom_irf,
        np.ones((6, ly, lx)),
    )
    ny, nx = geom.shape
    exposure = 1e11 * np.ones((6, ny, nx)) * np.linspace(0.8, 1.2, nx)[None, None, :]
    background = 0.5 * np.ones((4, ny, nx)) * np.array([4, 2, 1, 0.5])[:, None, None]
    counts = rng.poisson(background + 1.0).astype(float)
    mask = np.ones((4, ny, nx), bool)
    mask[0, :, :3] = False
    return MapDataset(
        geom,
        e_reco,
        e_true,
        counts=counts,
        exposure=exposure,
        background=background,
        mask_safe=mask,
        psf=psf,
        edisp=edisp,
        name=name,
    )


SPECTRA = {
    "pl": gm.PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1"),
    "ecpl": gm.ExpCutoffPowerLawSpectralModel(
        index=2.1, amplitude="2e-11 cm-2 s-1 TeV-1", lambda_="0.1 TeV-1"
    ),
    "lp": gm.LogParabolaSpectralModel(alpha=2.2, beta=0.15, amplitude="2e-11 cm-2 s-1 TeV-1"),
}
SPATIAL = {
    "point": lambda: gm.PointSpatialModel(lon_0=83.613, lat_0=22.017),
    "gauss": lambda: gm.GaussianSpatialModel(lon_0=83.613, lat_0=22.017, sigma=0.073),
    "disk": lambda: gm.DiskSpatialModel(lon_0=83.613, lat_0=22.017, r_0=0.16, edge_width=0.2),
}


def make_models(spectral: str, spatial: str) -> gm.Models:
    src = gm.SkyModel(SPECTRA[spectral].copy(), SPATIAL[spatial](), name="src")
    bkg = gm.FoVBackgroundModel(
        "ds", spectral_model=gm.PowerLawNormSpectralModel(norm=1.1, tilt=0.1)
    )
    for p in src.parameters:
        p.frozen = p.name in ("reference", "e", "phi")
    bkg.spectral_model.tilt.frozen = False
    return gm.Models([src, bkg])


@pytest.fixture(scope="module")
def dataset() -> MapDataset:
    return make_dataset()


def _fd_grad(term: MapTerm, values: np.ndarray, i: int, rel: float = 1e-6) -> float:
    h = rel * abs(values[i]) if values[i] != 0 else rel
    vp, vm = values.copy(), values.copy()
    vp[i] += h
    vm[i] -= h
    return (term.stat(vp) - term.stat(vm)) / (2 * h)


@pytest.mark.parametrize("spatial", ["point", "gauss", "disk"])
@pytest.mark.parametrize("spectral", ["pl", "ecpl", "lp"])
def test_gradient_matches_finite_differences(dataset, spectral, spatial):
    models = make_models(spectral, spatial)
    term = MapTerm(dataset, models)
    values = models.parameters.value.copy()
    stat0 = term.stat(values)
    stat, grad = term.stat_and_grad(values)
    assert stat == pytest.approx(stat0, rel=1e-12)
    free = [i for i, p in enumerate(models.parameters) if not p.frozen]
    for i in free:
        fd = _fd_grad(term, values, i)
        name = models.parameters[i].name
        assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-6 * abs(stat)), name
    frozen_nonzero = [i for i in range(len(values)) if i not in free]
    assert np.all(np.isfinite(grad[frozen_nonzero]))


def test_sparse_and_dense_paths_agree(dataset):
    models = make_models("pl", "point")
    term = MapTerm(dataset, models)
    values = models.parameters.value.copy()
    s1, g1 = term.stat_and_grad(values)
    theta = values * term.to_canonical
    norm, dnorm = term._bkg_norm(theta, True)
    s2, g2 = term._evaluate_dense(theta, norm, dnorm, True)
    assert s1 == pytest.approx(s2, rel=1e-10)
    np.testing.assert_allclose(g1, g2, rtol=1e-7, atol=1e-9 * abs(s1))


def test_npred_and_stat_consistent(dataset):
    models = make_models("lp", "gauss")
    term = MapTerm(dataset, models)
    values = models.parameters.value.copy()
    npred = term.npred(values)
    mask = term.mask
    n = term.counts[mask]
    mu = npred[mask]
    expected = 2 * np.sum(mu - np.where(n > 0, n * np.log(mu), 0.0))
    assert term.stat(values) == pytest.approx(expected, rel=1e-10)
    assert npred.shape == dataset.counts.shape


def test_caching_and_position_update(dataset):
    models = make_models("pl", "point")
    term = MapTerm(dataset, models)
    values = models.parameters.value.copy()
    term.stat(values)
    ev = term.sources[0][0]
    assert ev.n_updates == 1
    v2 = values.copy()
    v2[1] *= 1.5  # amplitude only: no spatial recomputation
    spat = ev._spat_cache
    term.stat(v2)
    assert ev._spat_cache is spat
    v3 = v2.copy()
    v3[3] += 0.05  # within evaluation_radius + 0.1 deg of the build position: same IRFs
    term.stat(v3)
    assert ev.n_updates == 1
    v3[3] += 0.2  # beyond: IRFs and cutout at the current position
    far = term.stat(v3)
    assert ev.n_updates == 2
    v3[3] -= 0.2  # back near the build position: the first setup again (cached)
    term.stat(v3)
    assert ev.n_updates == 2
    v3[3] += 0.2
    assert term.stat(v3) == far  # a function of the parameters, not of the path
    assert ev.n_updates == 2
    # a fresh term at the far point gives the same value
    assert MapTerm(dataset, make_models("pl", "point")).stat(v3) == far


def test_background_only_and_other_dataset_models(dataset):
    src = gm.SkyModel(
        gm.PowerLawSpectralModel(),
        gm.PointSpatialModel(lon_0=83.6, lat_0=22.0),
        name="elsewhere",
        datasets_names=["other"],
    )
    models = gm.Models([src, gm.FoVBackgroundModel("other"), gm.FoVBackgroundModel("ds")])
    term = MapTerm(dataset, models)
    values = models.parameters.value.copy()
    stat, grad = term.stat_and_grad(values)
    assert not term.sources
    assert np.all(grad[:7] == 0)
    assert grad[-3] != 0


def test_build_from_spec(tmp_path, dataset):
    path = tmp_path / "ds.fits"
    dataset.write(path)
    models = make_models("pl", "gauss")
    spec = TermSpec(kind="map", name="ds", source=str(path), models=models.to_dict())
    term = build_term(spec)
    direct = MapTerm(dataset, models)
    values = models.parameters.value
    assert term.stat(values) == pytest.approx(direct.stat(values), rel=1e-12)
    with pytest.raises(ValueError):
        build_term(
            TermSpec(
                kind="map",
                name="ds",
                source=str(path),
                models=models.to_dict(),
                options={"bogus": 1},
            )
        )


def test_convolver_adjoint():
    rng = np.random.default_rng(0)
    kernel = rng.random((3, 5, 5))
    conv = KernelConvolver(kernel, (9, 11))
    img = rng.random((9, 11))
    cube = rng.random((3, 9, 11))
    lhs = np.sum(conv.convolve(img) * cube)
    rhs = np.sum(img * conv.adjoint(cube))
    assert lhs == pytest.approx(rhs, rel=1e-12)
    from scipy.signal import convolve

    np.testing.assert_allclose(
        conv.convolve(img)[1], convolve(img, kernel[1], mode="same"), atol=1e-12
    )
    iy, ix = np.array([2, 8]), np.array([0, 10])
    sparse = np.zeros((9, 11))
    sparse[iy, ix] = [0.3, 0.7]
    np.testing.assert_allclose(
        conv.convolve_sparse(iy, ix, np.array([0.3, 0.7])), conv.convolve(sparse), atol=1e-12
    )
    np.testing.assert_allclose(
        conv.adjoint_sparse(cube, iy, ix), conv.adjoint(cube)[iy, ix], atol=1e-12
    )


# -- ON/OFF (ring background) datasets: wstat ---------------------------------------------


@pytest.fixture(scope="module")
def dataset_onoff(dataset):
    from gdask.reduce.ring import ring_background

    excl = np.ones(dataset.geom.shape, bool)
    excl[12:18, 12:18] = False
    return ring_background(dataset, r_in=0.2, width=0.16, exclusion_mask=excl)


def _source_only(spectral: str = "pl", spatial: str = "gauss") -> gm.Models:
    models = make_models(spectral, spatial)
    return gm.Models([m for m in models if not isinstance(m, gm.FoVBackgroundModel)])


@pytest.mark.parametrize("spatial", ["point", "gauss"])
def test_wstat_default_and_gradient(dataset_onoff, spatial):
    from gdask.stats import wstat

    models = _source_only("lp", spatial)
    term = MapTerm(dataset_onoff, models)
    assert term.stat_type == "wstat"
    values = models.parameters.value.copy()
    stat, grad = term.stat_and_grad(values)
    # the value: per-bin wstat of the signal on the fitted bins
    ds = dataset_onoff
    sig = term.npred_signal(values)
    mask = term.mask
    with np.errstate(invalid="ignore", divide="ignore"):
        per_bin = wstat(
            ds.counts.values[mask], ds.counts_off.values[mask], ds.alpha.values[mask], sig[mask]
        )
    assert stat == pytest.approx(np.sum(np.nan_to_num(per_bin)), rel=1e-12)
    assert term.stat(values) == pytest.approx(stat, rel=1e-12)
    for i, p in enumerate(models.parameters):
        if not p.frozen:
            assert grad[i] == pytest.approx(
                _fd_grad(term, values, i), rel=1e-5, abs=1e-6 * abs(stat)
            ), p.name
    npred = term.npred(values)
    assert np.all(npred[mask] >= sig[mask] - 1e-12)


def test_onoff_cash_uses_alpha_counts_off(dataset_onoff):
    models = _source_only()
    term = MapTerm(dataset_onoff, models, stat="cash")
    ds = dataset_onoff
    np.testing.assert_allclose(term.background, ds.alpha.values * ds.counts_off.values)


def test_wstat_errors(dataset, dataset_onoff):
    from gdask.errors import ConfigError

    with pytest.raises(ConfigError, match="no OFF counts"):
        MapTerm(dataset, _source_only(), stat="wstat")
    with pytest.raises(ConfigError, match="unknown statistic"):
        MapTerm(dataset_onoff, _source_only(), stat="chi2")
    with pytest.raises(ConfigError, match="wstat profiles the background"):
        MapTerm(dataset_onoff, make_models("pl", "point"))


# -- energy-scale nuisance ----------------------------------------------------------------


@pytest.mark.parametrize("parametrisation", ["scale", "bias"])
def test_energy_scale_nuisance(dataset, parametrisation):
    plain = make_models("pl", "gauss")
    models = gm.Models(
        [*plain, gm.EnergyScaleModel("ds", parametrisation, sigma=0.1, name="escale")]
    )
    term = MapTerm(dataset, models)
    base = MapTerm(dataset, make_models("pl", "gauss"))
    x0 = plain.parameters.value.copy()
    x = models.parameters.value.copy()
    assert term.stat(x) == pytest.approx(base.stat(x0), rel=1e-12)
    i = models.parameters_unique_names.index(
        "escale.energy_scale." + models["escale"].parameters.names[0]
    )
    x[i] = 0.05
    stat, grad = term.stat_and_grad(x)
    for j, p in enumerate(models.parameters):
        if not p.frozen:
            assert grad[j] == pytest.approx(_fd_grad(term, x, j), rel=1e-5, abs=1e-6 * stat), p.name
    # k phi(k E) of a power law: amplitude A k^(1 - index)
    k = 1.05 if parametrisation == "scale" else 1 / 1.05
    names = plain.parameters.names
    y = x0.copy()
    y[names.index("amplitude")] *= k ** (1 - x0[names.index("index")])
    assert stat == pytest.approx(base.stat(y), rel=1e-10)
    dense = term._evaluate_dense(
        x * term.to_canonical, *term._bkg_norm(x * term.to_canonical, True), True
    )
    assert dense[0] == pytest.approx(stat, rel=1e-10)
    np.testing.assert_allclose(dense[1], grad, rtol=1e-6, atol=1e-9 * stat)


def test_wstat_term_from_spec(tmp_path, dataset_onoff):
    import pickle

    path = tmp_path / "ring.fits"
    dataset_onoff.write(path)
    models = _source_only("lp", "gauss")
    spec = TermSpec("map", "ds", str(path), models.to_dict())
    term = build_term(spec)
    assert term.stat_type == "wstat"
    x = models.parameters.value.copy()
    ref = term.stat(x)
    again = build_term(pickle.loads(pickle.dumps(spec)))
    assert again.stat(x) == pytest.approx(ref, rel=1e-12)
    direct = MapTerm(dataset_onoff, models)
    assert direct.stat(x) == pytest.approx(ref, rel=1e-6)  # FITS float32 round trip

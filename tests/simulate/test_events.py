"""Sampled events against expected counts: analytic integrals, the makers, the PSF, the cut."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats

from gdask.geometry import EnergyAxis, WcsGeom
from gdask.models import (
    DiskSpatialModel,
    GaussianSpatialModel,
    LogParabolaSpectralModel,
    PointSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
)
from gdask.reduce.maps import make_background, make_exposure
from gdask.simulate import (
    CRAB_POSITION,
    Run,
    default_sky_model,
    expected_counts,
    make_response,
    offset_by,
    sample_background_events,
    sample_source_events,
    separation,
    simulate_observation,
    wobble_runs,
)

EDGES = np.geomspace(0.7, 30.0, 9)


def _run(response, **kw) -> Run:
    return wobble_runs(
        1,
        CRAB_POSITION,
        wobble=response.meta["wobble"],
        ontime=kw.get("ontime", 1800.0),
        deadc=response.meta["deadc"],
    )[0]


def _poisson_chi2_pvalue(n: np.ndarray, mu: np.ndarray) -> float:
    ok = mu > 5
    chi2 = float(np.sum((n[ok] - mu[ok]) ** 2 / mu[ok]))
    return float(stats.chi2.sf(chi2, int(ok.sum())))


def test_source_counts_per_energy_bin_match_analytic(responses):
    r = responses["hess-like"]
    run, model = _run(r), default_sky_model()
    exp = expected_counts(r, [model], run, energy_edges=EDGES)
    mu = exp["source_reco"][0]
    ev = sample_source_events(np.random.default_rng(11), model, r, run)
    n, _ = np.histogram(ev["ENERGY"], EDGES)
    assert _poisson_chi2_pvalue(n, mu) > 1e-3
    # mean over seeds of the total
    totals = [
        sample_source_events(np.random.default_rng(s), model, r, run)["ENERGY"].size
        for s in range(20)
    ]
    assert abs(np.mean(totals) - exp["source"][0]) < 4 * np.sqrt(exp["source"][0] / 20)


@pytest.mark.parametrize("name", ["hess-like", "cta-like"])
def test_source_counts_match_makers_exposure(responses, name):
    """npred from make_exposure (at the source pixel) x model integral x edisp, independent of the sampler."""
    r = responses[name]
    run = _run(r)
    model = SkyModel(
        LogParabolaSpectralModel(amplitude="5e-11 cm-2 s-1 TeV-1", alpha=2.3, beta=0.1),
        PointSpatialModel(lon_0=f"{CRAB_POSITION[0]} deg", lat_0=f"{CRAB_POSITION[1]} deg"),
    )
    geom = WcsGeom.create(
        skydir=CRAB_POSITION, binsz=0.02, width=(0.1, 0.1), frame="icrs", proj="CAR"
    )
    true_axis = EnergyAxis(np.geomspace(0.3, 100.0, 161), name="energy_true", unit="TeV")
    expo = make_exposure(r.aeff, (run.ra_pnt, run.dec_pnt), run.livetime, geom, true_axis)
    iy, ix = (s // 2 for s in geom.shape)
    e = true_axis.edges
    flux = model.spectral_model.integral(e[:-1], e[1:])
    off = separation(run.ra_pnt, run.dec_pnt, *CRAB_POSITION)
    kernel = r.edisp.reco_probabilities(true_axis.center, off, EDGES)
    mu = (flux * expo.values[:, iy, ix] * 1e4) @ kernel
    ns = [
        np.histogram(
            sample_source_events(np.random.default_rng(s), model, r, run)["ENERGY"], EDGES
        )[0]
        for s in range(5)
    ]
    n = np.sum(ns, axis=0)
    assert _poisson_chi2_pvalue(n, 5 * mu) > 1e-3
    assert abs(n.sum() - 5 * mu.sum()) < 4 * np.sqrt(5 * mu.sum())


@pytest.mark.parametrize("name", ["hess-like", "cta-like"])
def test_background_matches_make_background(responses, name):
    r = responses[name]
    run = _run(r)
    pnt = (run.ra_pnt, run.dec_pnt)
    geom = WcsGeom.create(skydir=pnt, binsz=0.1, width=(4.0, 4.0), frame="icrs", proj="CAR")
    axis = EnergyAxis(EDGES, name="energy", unit="TeV")
    bkg = make_background(r.bkg, pnt, run.ontime, geom, axis, oversampling=4).values
    inner = geom.separation(pnt) < 1.8
    mu = bkg[:, inner].sum(axis=1)
    ns = []
    for seed in range(3):
        ev = sample_background_events(np.random.default_rng(seed), r, run)
        ix, iy = geom.coord_to_idx(ev["RA"], ev["DEC"])
        sel = (ix >= 0) & (iy >= 0)
        sel[sel] = inner[iy[sel], ix[sel]]
        ns.append(np.histogram(ev["ENERGY"][sel], EDGES)[0])
    n = np.sum(ns, axis=0)
    assert _poisson_chi2_pvalue(n, 3 * mu) > 1e-3
    # total within offset_max against the analytic integral
    exp = expected_counts(r, [], run, energy_edges=EDGES)
    total = sample_background_events(np.random.default_rng(7), r, run)["ENERGY"]
    assert abs(total.size - exp["background"]) < 4 * np.sqrt(exp["background"])
    n_reco = np.histogram(total, EDGES)[0]
    assert _poisson_chi2_pvalue(n_reco, exp["background_reco"]) > 1e-3


@pytest.mark.parametrize("name", ["hess-like", "magic-like", "cta-like"])
def test_psf_containment_at_68_percent(responses, name):
    r = responses[name]
    run = _run(r)
    model = SkyModel(
        PowerLawSpectralModel(index=2.0, amplitude="1e-9 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0=f"{CRAB_POSITION[0]} deg", lat_0=f"{CRAB_POSITION[1]} deg"),
    )
    ev = sample_source_events(np.random.default_rng(5), model, r, run)
    sep = separation(ev["RA_TRUE"], ev["DEC_TRUE"], ev["RA"], ev["DEC"])
    off = separation(run.ra_pnt, run.dec_pnt, ev["RA_TRUE"], ev["DEC_TRUE"])
    pit = r.psf.containment(ev["ENERGY_TRUE"], off, sep)
    n = pit.size
    assert n > 3000
    frac = np.mean(pit < 0.68)
    assert abs(frac - 0.68) < 4 * np.sqrt(0.68 * 0.32 / n)
    # and at one energy, against containment_radius
    e0 = np.median(ev["ENERGY_TRUE"])
    band = np.abs(np.log(ev["ENERGY_TRUE"] / e0)) < 0.05
    r68 = float(r.psf.containment_radius(0.68, e0, off[band].mean()))
    f = np.mean(sep[band] < r68)
    assert abs(f - 0.68) < 4 * np.sqrt(0.68 * 0.32 / band.sum()) + 0.01


def test_point_like_counts_inside_rad_max(responses):
    """magic-like: events within RAD_MAX(E_reco) follow the written point-like effective area."""
    r = responses["magic-like"]
    run = _run(r)
    model = default_sky_model()
    edges = np.geomspace(0.08, 10.0, 8)
    e = np.geomspace(0.04, 30.0, 400)
    ec = np.sqrt(e[1:] * e[:-1])
    off = float(separation(run.ra_pnt, run.dec_pnt, *CRAB_POSITION))
    aeff_pl = r.irfs["aeff"]
    assert aeff_pl.point_like
    flux = model.spectral_model.integral(e[:-1], e[1:])
    mu = (flux * aeff_pl.evaluate(ec, off) * 1e4 * run.livetime) @ r.edisp.reco_probabilities(
        ec, off, edges
    )
    ns = []
    for seed in range(4):
        ev = sample_source_events(np.random.default_rng(seed), model, r, run)
        sep = separation(CRAB_POSITION[0], CRAB_POSITION[1], ev["RA"], ev["DEC"])
        inside = sep < r.rad_max.evaluate(ev["ENERGY"], off)
        ns.append(np.histogram(ev["ENERGY"][inside], edges)[0])
    n = np.sum(ns, axis=0)
    assert _poisson_chi2_pvalue(n, 4 * mu) > 1e-3
    assert abs(n.sum() / (4 * mu.sum()) - 1) < 0.03


@pytest.mark.parametrize(
    "spatial",
    [
        GaussianSpatialModel(
            lon_0=f"{CRAB_POSITION[0]} deg", lat_0=f"{CRAB_POSITION[1]} deg", sigma="0.2 deg"
        ),
        DiskSpatialModel(
            lon_0=f"{CRAB_POSITION[0]} deg", lat_0=f"{CRAB_POSITION[1]} deg", r_0="0.3 deg"
        ),
    ],
)
def test_extended_sources(spatial):
    r = make_response("hess-like", off_sigma=1e3)  # flat in offset: the morphology is not distorted
    run = _run(r)
    model = SkyModel(PowerLawSpectralModel(index=2.3, amplitude="1e-10 cm-2 s-1 TeV-1"), spatial)
    exp = expected_counts(r, [model], run, energy_edges=EDGES)
    totals, seps = [], []
    for s in range(10):
        ev = sample_source_events(np.random.default_rng(s), model, r, run)
        totals.append(ev["ENERGY"].size)
        seps.append(separation(CRAB_POSITION[0], CRAB_POSITION[1], ev["RA_TRUE"], ev["DEC_TRUE"]))
    assert abs(np.mean(totals) - exp["source"][0]) < 4 * np.sqrt(exp["source"][0] / 10)
    sep = np.concatenate(seps)
    if isinstance(spatial, GaussianSpatialModel):  # <sep^2> = 2 sigma^2, 39.3% within sigma
        p = 1 - np.exp(-0.5)
        assert abs(np.mean(sep < 0.2) - p) < 4 * np.sqrt(p * (1 - p) / sep.size)
    else:  # uniform disk: all within r_0 (1 + edge), half within r_0 / sqrt(2)
        assert np.mean(sep < 0.3 * 1.02) > 0.995
        assert abs(np.mean(sep < 0.3 / np.sqrt(2)) - 0.5) < 4 * np.sqrt(0.25 / sep.size)
    # reco-energy spectrum of one sample against the folded expectation
    n = np.histogram(ev["ENERGY"], EDGES)[0]
    assert _poisson_chi2_pvalue(n, exp["source_reco"][0]) > 1e-3


def test_offset_by_and_separation_roundtrip():
    lon, lat = offset_by(83.6, 22.0, [0.5, 1.0, 2.0], [0.0, 90.0, 200.0])
    np.testing.assert_allclose(separation(83.6, 22.0, lon, lat), [0.5, 1.0, 2.0], atol=1e-10)
    assert lat[0] > 22.0 and lon[1] > 83.6  # north, then east


def test_fov_frame_matches_makers():
    """The FoV coordinates used for bkg_3d agree with the makers' frame (signs included)."""
    from gdask.geometry.fov import offset_to_fov
    from gdask.reduce._common import fov_radec

    pnt = (83.0, 22.5)
    geom = WcsGeom.create(skydir=pnt, binsz=0.5, width=(3.0, 3.0), frame="icrs", proj="CAR")
    lon_m, lat_m = fov_radec(geom, pnt)
    ra, dec = geom.get_coord()
    sep = separation(pnt[0], pnt[1], ra, dec)
    from astropy.coordinates import SkyCoord

    pa = SkyCoord(*pnt, unit="deg").position_angle(SkyCoord(ra, dec, unit="deg")).deg
    lon, lat = offset_to_fov(sep, pa)
    np.testing.assert_allclose(lon, lon_m, atol=1e-8)
    np.testing.assert_allclose(lat, lat_m, atol=1e-8)


def test_speed_1e5_events(responses):
    r = responses["cta-like"]
    run = _run(r)
    model = SkyModel(
        PowerLawSpectralModel(index=2.5, amplitude="3.5e-10 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0=f"{CRAB_POSITION[0]} deg", lat_0=f"{CRAB_POSITION[1]} deg"),
    )
    simulate_observation(r, [model], run, np.random.default_rng(0))  # warm-up
    t0 = time.perf_counter()
    obs = simulate_observation(r, [model], run, np.random.default_rng(1))
    dt = time.perf_counter() - t0
    assert obs.events.n_events > 1e5
    assert dt < 1.5, dt


def test_determinism(responses):
    r = responses["hess-like"]
    run = _run(r)
    a = simulate_observation(r, [default_sky_model()], run, np.random.default_rng(42))
    b = simulate_observation(r, [default_sky_model()], run, np.random.default_rng(42))
    c = simulate_observation(r, [default_sky_model()], run, np.random.default_rng(43))
    for col in ("TIME", "RA", "DEC", "ENERGY", "MC_ID"):
        np.testing.assert_array_equal(a.events.ds[col].values, b.events.ds[col].values)
    assert a.events.n_events != c.events.n_events or not np.array_equal(
        a.events.ds["RA"], c.events.ds["RA"]
    )
    mc = a.events.ds["MC_ID"].values
    assert set(np.unique(mc)) == {0, 1}
    assert np.all(np.diff(a.events.ds["TIME"].values) >= 0)
    assert np.all((a.events.met >= run.tstart) & (a.events.met <= run.tstop))

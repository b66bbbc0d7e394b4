"""1D ON/OFF spectrum extraction."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import Angle, SkyCoord
from astropy.io import fits
from regions import CircleSkyRegion, PointSkyRegion

from gdask.dl3 import GTI, EventList, Observation
from gdask.dl3.irf import EffectiveArea2D, EnergyDispersion2D, PSFTable
from gdask.errors import GdaskError
from gdask.geometry import EnergyAxis
from gdask.reduce.reflected import WobbleRegionsFinder
from gdask.reduce.spectrum import (
    make_counts_on,
    make_mask_safe_aeff_max_1d,
    make_spectrum_onoff,
    observation_livetime,
)

POINTING = SkyCoord(83.633, 22.514, unit="deg")
TARGET = SkyCoord(83.633, 22.014, unit="deg")
ON = CircleSkyRegion(TARGET, Angle(0.11, "deg"))
E_RECO = EnergyAxis(np.geomspace(0.1, 100, 13), name="energy")
E_TRUE = EnergyAxis(np.geomspace(0.05, 200, 25), name="energy_true")


def _events(ra, dec, energy, deadc=0.9):
    n = len(ra)
    ds = xr.Dataset(
        {
            "TIME": ("event", np.linspace(0, 100, n), {"units": "s"}),
            "RA": ("event", np.asarray(ra, float), {"units": "deg"}),
            "DEC": ("event", np.asarray(dec, float), {"units": "deg"}),
            "ENERGY": ("event", np.asarray(energy, float), {"units": "TeV"}),
        },
        attrs={"obs_id": 1, "ra_pnt": POINTING.ra.deg, "dec_pnt": POINTING.dec.deg, "deadc": deadc},
    )
    return EventList(ds)


def _observation(point_like=False, rad_max=None, n_events=4000, seed=1):
    rng = np.random.default_rng(seed)
    # uniform events in a 1.2 deg disc around the pointing, plus a source at the target
    r = 1.2 * np.sqrt(rng.uniform(size=n_events))
    pa = rng.uniform(0, 2 * np.pi, n_events)
    bkg = POINTING.directional_offset_by(Angle(pa, "rad"), Angle(r, "deg"))
    src = TARGET.directional_offset_by(
        Angle(rng.uniform(0, 6.28, 300), "rad"), Angle(np.abs(rng.normal(0, 0.05, 300)), "deg")
    )
    ra = np.concatenate([bkg.ra.deg, src.ra.deg])
    dec = np.concatenate([bkg.dec.deg, src.dec.deg])
    energy = 10 ** rng.uniform(-1, 2, ra.size)
    e_edges = np.geomspace(0.01, 300, 41)
    off_edges = np.array([0.0, 1.0, 2.0, 3.0])
    e_c = np.sqrt(e_edges[1:] * e_edges[:-1])
    area = 1e5 * (1 - np.exp(-e_c / 0.3))[:, None] * np.array([1.0, 0.8, 0.5])[None, :]
    aeff = EffectiveArea2D.create(e_edges, off_edges, area, point_like=point_like, rad_max=rad_max)
    migra = np.linspace(0.2, 5, 49)
    m_c = 0.5 * (migra[1:] + migra[:-1])
    pdf = np.exp(-0.5 * ((m_c - 1) / 0.1) ** 2)
    pdf = np.broadcast_to(pdf[None, :, None], (40, 48, 3)).copy()
    edisp = EnergyDispersion2D.create(
        e_edges, migra, off_edges, pdf, point_like=point_like, rad_max=rad_max
    )
    irfs = {"aeff": aeff, "edisp": edisp}
    if not point_like:
        rad = np.linspace(0, 1, 101)
        r_c = 0.5 * (rad[1:] + rad[:-1])
        sigma = 0.1
        dens = np.exp(-0.5 * (r_c / sigma) ** 2) / (2 * np.pi * np.deg2rad(sigma) ** 2)
        irfs["psf"] = PSFTable.create(
            e_edges, off_edges, rad, np.broadcast_to(dens, (40, 3, 100)).copy()
        )
    return Observation(
        obs_id=1, events=_events(ra, dec, energy), gti=GTI.create([0.0], [1000.0]), irfs=irfs
    )


def test_livetime():
    assert observation_livetime(_observation()) == pytest.approx(900.0)


def test_spectrum_onoff_structure_and_counts():
    obs = _observation()
    ds = make_spectrum_onoff(obs, ON, E_RECO, E_TRUE, containment_correction=True)
    assert set(ds.data_vars) >= {
        "counts",
        "counts_off",
        "acceptance",
        "acceptance_off",
        "exposure",
        "edisp",
        "mask_safe",
        "livetime",
    }
    assert ds.counts.dims == ("energy",) and ds.exposure.dims == ("energy_true",)
    assert ds.edisp.dims == ("energy_true", "energy")
    n_off = ds.attrs["n_off_regions"]
    assert n_off == 12
    np.testing.assert_array_equal(ds.acceptance_off.values, n_off)
    np.testing.assert_array_equal(ds.acceptance.values, 1)
    # ON counts: events inside the circle (in the 0.1 - 100 TeV range)
    ra, dec = obs.events.radec
    sep = TARGET.separation(SkyCoord(ra, dec, unit="deg")).deg
    assert ds.counts.sum() == np.sum(sep < 0.11)
    # OFF: background only, ~ n_off x the background in the ON region
    bkg_per_region = 4000 * (0.11 / 1.2) ** 2
    assert ds.counts_off.sum() == pytest.approx(n_off * bkg_per_region, rel=0.15)
    # exposure = aeff * livetime * containment (Gaussian PSF: 1 - exp(-r^2 / 2 sigma^2))
    aeff = obs.irfs["aeff"].evaluate(E_TRUE.center, 0.5)
    cont = 1 - np.exp(-0.5 * (0.11 / 0.1) ** 2)
    np.testing.assert_allclose(ds.exposure.values, aeff * 900 * cont, rtol=2e-2)
    np.testing.assert_allclose(ds.edisp_exposure.values, aeff * 900, rtol=1e-12)
    # energy dispersion rows sum to 1 where the true energy is well inside the reco range
    inside = (E_TRUE.center > 0.3) & (E_TRUE.center < 30)
    np.testing.assert_allclose(ds.edisp.values[inside].sum(axis=1), 1, atol=1e-6)
    assert ds.mask_safe.dtype == bool


def test_safe_mask_aeff_max_threshold():
    et = EnergyAxis(np.geomspace(0.01, 100, 41), name="energy_true")
    er = EnergyAxis(np.geomspace(0.01, 100, 21), name="energy")
    aeff = 1e5 * np.clip(np.log10(et.center / 0.01), 0, None)  # monotonic in log E
    mask = make_mask_safe_aeff_max_1d(aeff * 10, 10.0, et, er, aeff_percent=50)
    # 50% of the maximum at log10(E/0.01) = 2 (E = 1 TeV, up to the log-log interpolation)
    e_thr = er.edges[:-1][mask][0]
    assert 0.8 < e_thr < 1.6
    assert mask[np.argmax(mask) :].all()
    assert not make_mask_safe_aeff_max_1d(np.zeros(40), 1.0, et, er).any()


def test_point_like_checks():
    obs = _observation(point_like=True, rad_max=0.1)
    ds = make_spectrum_onoff(obs, CircleSkyRegion(TARGET, Angle(0.1, "deg")), E_RECO, E_TRUE)
    assert ds.attrs["is_pointlike"] == 1 and ds.attrs["n_off_regions"] > 0
    with pytest.raises(GdaskError):  # radius must equal RAD_MAX
        make_spectrum_onoff(obs, ON, E_RECO, E_TRUE)
    with pytest.raises(ValueError):
        make_spectrum_onoff(
            obs,
            CircleSkyRegion(TARGET, Angle(0.1, "deg")),
            E_RECO,
            E_TRUE,
            containment_correction=True,
        )
    with pytest.raises(TypeError):  # a point needs the wobble finder
        make_spectrum_onoff(obs, TARGET, E_RECO, E_TRUE)
    pt = make_spectrum_onoff(
        obs, PointSkyRegion(TARGET), E_RECO, E_TRUE, region_finder=WobbleRegionsFinder(3)
    )
    np.testing.assert_array_equal(pt.counts.values, ds.counts.values)  # fixed RAD_MAX == the circle
    assert pt.attrs["n_off_regions"] == 3


def test_full_enclosure_point_region_fails():
    with pytest.raises(GdaskError):
        make_spectrum_onoff(
            _observation(), TARGET, E_RECO, E_TRUE, region_finder=WobbleRegionsFinder(3)
        )


def test_no_off_regions_masks_everything():
    from gdask.geometry import WcsGeom, circle_region
    from gdask.reduce.reflected import make_exclusion_mask

    geom = WcsGeom.create(skydir=POINTING, binsz=0.05, width=4, proj="TAN")
    mask = make_exclusion_mask(geom, circle_region(POINTING.ra.deg, POINTING.dec.deg, 1.5))
    ds = make_spectrum_onoff(_observation(), ON, E_RECO, E_TRUE, exclusion_mask=mask)
    assert ds.attrs["n_off_regions"] == 0 and not ds.mask_safe.any() and ds.counts_off.sum() == 0


# -- real data: ON counts of the joint-Crab reference spectra ---------------------------------

JOINT_CRAB_POSITION = SkyCoord(
    "83d37m59.0988s", "22d00m52.2s"
)  # config/datasets.yaml of joint-crab
JOINT_CRAB = {"hess": 0.11, "magic": 0.141, "veritas": 0.1, "fact": 0.1732}


@pytest.mark.realdata
@pytest.mark.parametrize("instrument", list(JOINT_CRAB))
def test_joint_crab_on_counts(data_dir, instrument):
    """ON counts from DL3 equal the COUNTS totals of the joint-Crab OGIP spectra (0.01 - 100 TeV)."""
    from gdask.dl3 import DL3Index, read_observations

    spectra = data_dir / "joint-crab" / "spectra" / instrument
    ebounds = fits.getdata(next(spectra.glob("pha_*.fits")), "EBOUNDS")
    edges = np.append(ebounds["E_MIN"], ebounds["E_MAX"][-1]) * 1e-9  # keV -> TeV
    axis = EnergyAxis(edges, name="energy")
    on = CircleSkyRegion(JOINT_CRAB_POSITION, Angle(JOINT_CRAB[instrument], "deg"))
    index = DL3Index.read(data_dir / "joint-crab" / "dl3" / instrument)
    totals = {
        o.obs_id: int(make_counts_on(o, on, axis).sum())
        for o in read_observations(index, hdu_types=["events", "gti"])
    }
    if instrument == "fact":  # one stacked spectrum over all runs
        expected = int(fits.getdata(spectra / "pha_stacked.fits", "SPECTRUM")["COUNTS"].sum())
        assert sum(totals.values()) == expected
    else:
        for obs_id, total in totals.items():
            expected = int(
                fits.getdata(spectra / f"pha_obs{obs_id}.fits", "SPECTRUM")["COUNTS"].sum()
            )
            assert total == expected, obs_id


@pytest.mark.realdata
def test_magic_energy_dependent_rad_max(data_dir):
    from gdask.dl3 import DL3Index, read_observation

    index = DL3Index.read(data_dir / "magic" / "rad_max" / "data")
    obs = read_observation(index, 5029747)
    assert "rad_max" in obs.irfs
    er = EnergyAxis.from_bounds(0.05, 50, 5, per_decade=True)
    et = EnergyAxis.from_bounds(0.01, 100, 10, per_decade=True, name="energy_true")
    ds = make_spectrum_onoff(obs, TARGET, er, et, region_finder=WobbleRegionsFinder(3))
    assert (
        ds.counts.sum() == 796 and ds.counts_off.sum() == 1181
    )  # Gammapy 2.1 values (5 bins/decade)

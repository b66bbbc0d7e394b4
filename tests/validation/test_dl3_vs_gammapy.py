"""gdask.dl3 against Gammapy 2.1's DataStore: selections, events, pointing, GTI, livetime."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time
from gammapy.data import DataStore

from gdask.dl3 import DL3Index, read_observations

pytestmark = [pytest.mark.validation, pytest.mark.realdata]

JOINT_CRAB = [
    "joint-crab/dl3/hess",
    "joint-crab/dl3/magic",
    "joint-crab/dl3/veritas",
    "joint-crab/dl3/fact",
]


def _compare(gp_obs, ours) -> None:
    assert gp_obs.obs_id == ours.obs_id
    table = gp_obs.events.table
    assert len(table) == ours.events.n_events
    for name in ("RA", "DEC", "ENERGY"):
        assert np.array_equal(np.asarray(table[name]), ours.events.ds[name].values)
    # gammapy turns TIME into absolute times; ours stay MET seconds
    # (every 50th event: astropy Time arithmetic is slow)
    met = (table["TIME"][::50] - ours.events.time_reference).to_value("s")
    assert np.max(np.abs(met - ours.events.met[::50])) < 1e-5
    icrs = gp_obs.pointing.fixed_icrs
    ra, dec = ours.events.pointing
    assert icrs.ra.deg == pytest.approx(ra, abs=1e-10)
    assert icrs.dec.deg == pytest.approx(dec, abs=1e-10)
    assert gp_obs.gti.time_sum.to_value("s") == pytest.approx(ours.gti.time_sum, rel=1e-12)
    assert abs((gp_obs.gti.time_start[0] - ours.gti.time_start).to_value("s")) < 1e-5
    assert abs((gp_obs.gti.time_stop[-1] - ours.gti.time_stop).to_value("s")) < 1e-5
    assert gp_obs.gti.time_ref.scale == ours.gti.time_reference.scale
    # gammapy: livetime = GTI sum * DEADC
    livetime = ours.gti.time_sum * ours.events.ds.attrs["deadc"]
    assert gp_obs.observation_live_time_duration.to_value("s") == pytest.approx(livetime, rel=1e-9)


@pytest.fixture(scope="module")
def hess(data_dir: Path) -> tuple[DataStore, DL3Index]:
    path = data_dir / "hess-dl3-dr1"
    return DataStore.from_dir(path), DL3Index.read(path)


def test_hess_selections(hess: tuple[DataStore, DL3Index]) -> None:
    store, index = hess
    table = store.obs_table
    assert list(table["OBS_ID"]) == index.obs_ids
    center = SkyCoord(83.633, 22.014, unit="deg")
    gp = table.select_sky_circle(center, 3 * u.deg)
    assert list(gp["OBS_ID"]) == index.select(cone=(center, 3 * u.deg)).obs_ids
    t = Time(["2004-12-01", "2005-01-31"], scale="tt")
    assert (
        list(table.select_time_range(t)["OBS_ID"]) == index.select(time_range=(t[0], t[1])).obs_ids
    )
    gp = table.select_time_range(t, partial_overlap=True)
    assert list(gp["OBS_ID"]) == index.select(time_range=(t[0], t[1]), partial_overlap=True).obs_ids
    gp = table.select_range("ZEN_PNT", [20, 40] * u.deg)
    assert list(gp["OBS_ID"]) == index.select(ZEN_PNT=(20 * u.deg, 40 * u.deg)).obs_ids
    gp = table.select_range("N_TELS", [3, 3])
    assert list(gp["OBS_ID"]) == index.select(N_TELS=(3, 3)).obs_ids
    gp = table.select_obs_id([23592, 23523])
    assert list(gp["OBS_ID"]) == index.select(obs_ids=[23592, 23523]).obs_ids


def test_hess_all_runs(hess: tuple[DataStore, DL3Index]) -> None:
    store, index = hess
    gp_observations = store.get_observations(index.obs_ids, required_irf=[])
    ours = read_observations(index, hdu_types=("events", "gti"))
    n = 0
    for gp_obs, obs in zip(gp_observations, ours, strict=True):
        _compare(gp_obs, obs)
        n += 1
    assert n == 105


@pytest.mark.parametrize("name", JOINT_CRAB)
def test_joint_crab(data_dir: Path, name: str) -> None:
    path = data_dir / name
    store, index = DataStore.from_dir(path), DL3Index.read(path)
    assert sorted(store.obs_ids) == sorted(index.obs_ids)
    ids = index.obs_ids[:8]
    gp_observations = store.get_observations(ids, required_irf=[])
    ours = read_observations(index, ids, hdu_types=("events", "gti", "aeff", "edisp"))
    for gp_obs, obs in zip(gp_observations, ours, strict=True):
        _compare(gp_obs, obs)
        for hdu_type in ("aeff", "edisp"):
            loc = index.hdu_location(obs.obs_id, hdu_type)
            gp_loc = store.hdu_table.hdu_location(obs.obs_id, hdu_type)
            assert loc.path == Path(gp_loc.path()).resolve()
            assert loc.hdu_name == gp_loc.hdu_name
            assert hdu_type in obs.irfs

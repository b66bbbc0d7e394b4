"""Time slicing of observations (`gdask.reduce.time_slices`) against Gammapy 2.1's select_time."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.time import Time

from gdask.dl3 import DL3Index, read_observation
from gdask.reduce.time_slices import interval_met, overlaps, select_gti, select_time

pytestmark = [pytest.mark.realdata]


def test_select_time_matches_gammapy(hess_dir):
    import astropy.units as u
    from gammapy.data import DataStore

    obs = read_observation(DL3Index.read(hess_dir), 33790)
    gobs = DataStore.from_dir(hess_dir).obs(33790)
    edges = Time("2006-07-29T21:40") + np.arange(6) * 10 * u.min
    n_kept = 0
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        interval = Time([a, b])
        start, stop = interval_met(interval, obs.gti.time_reference)
        keep = (gobs.tstart <= interval[1]) & (gobs.tstop > interval[0])
        assert overlaps(obs, start, stop) == bool(keep)
        if not keep:
            continue
        n_kept += 1
        sub, gsub = select_time(obs, start, stop), gobs.select_time(interval)
        assert len(sub.events) == len(gsub.events.table)
        g_met = (gsub.events.time - obs.gti.time_reference).to_value("s")
        np.testing.assert_allclose(sub.events.met, g_met, rtol=0, atol=1e-6)
        assert sub.gti.time_sum == pytest.approx(gsub.gti.time_sum.to_value("s"), rel=1e-12)
        assert len(sub.events) < len(obs.events)
    assert n_kept == 4


def test_gti_clipping():
    from gdask.dl3.gti import GTI

    gti = GTI.create([0.0, 100.0, 300.0], [50.0, 200.0, 400.0])
    sub = select_gti(gti, 40.0, 150.0)
    np.testing.assert_array_equal(sub.start, [40.0, 100.0])
    np.testing.assert_array_equal(sub.stop, [50.0, 150.0])
    assert sub.time_sum == 60.0
    assert len(select_gti(gti, 210.0, 290.0)) == 0


def test_run_once_path_equals_slice_by_slice(hess_dir):
    import astropy.units as u
    from astropy.coordinates import Angle, SkyCoord
    from regions import CircleSkyRegion

    from gdask.geometry import EnergyAxis
    from gdask.reduce.time_slices import _reduce_one, reduce_time_sliced

    obs = read_observation(DL3Index.read(hess_dir), 33790)
    on = CircleSkyRegion(SkyCoord(329.71693826, -30.2255890, unit="deg"), Angle("0.11 deg"))
    reco = EnergyAxis(np.geomspace(0.4, 20, 11), name="energy")
    true = EnergyAxis(np.geomspace(0.1, 40, 21), name="energy_true")
    edges = Time("2006-07-29T21:50") + np.arange(5) * 10 * u.min
    intervals = [Time([a, b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    fast = reduce_time_sliced([obs], intervals, on, reco, true, containment_correction=True)
    kw = {"on_region": on, "energy_axis": reco, "energy_axis_true": true}
    kw["containment_correction"] = True
    assert [len(b) for b in fast] == [1, 1, 1, 1]
    for interval, (d,) in zip(intervals, fast, strict=True):
        start, stop = interval_met(interval, obs.gti.time_reference)
        ref = _reduce_one(obs, start, stop, kw)
        for key in ("counts", "counts_off", "mask_safe", "acceptance_off", "edisp"):
            np.testing.assert_array_equal(d.ds[key].values, ref.ds[key].values, err_msg=key)
        assert d.livetime == ref.livetime
        np.testing.assert_allclose(d.exposure.values, ref.exposure.values, rtol=1e-13)
        assert d.name == ref.name and d.gti.time_sum == ref.gti.time_sum

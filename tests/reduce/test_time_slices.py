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

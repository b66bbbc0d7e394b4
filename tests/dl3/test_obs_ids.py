"""gdask.dl3.obs_ids: OBS_ID cells parsed row by row."""

from __future__ import annotations

import numpy as np

from gdask.dl3.obs_ids import as_obs_id, parse_obs_ids


def test_as_obs_id():
    assert [as_obs_id(v) for v in (7, np.int32(7), 7.0, " 7 ", b"7", np.str_("7"))] == [7] * 6
    assert [as_obs_id(v) for v in (7.5, float("nan"), "seven", True, "")] == [None] * 5


def test_parse_obs_ids_keeps_good_rows():
    col = np.ma.MaskedArray([b"1", b"x", b"3", b"4"], mask=[False, False, True, False])
    ids, ok, errors = parse_obs_ids(col, what="obs-index", file="obs-index.fits")
    assert ok.tolist() == [True, False, False, True] and ids[ok].tolist() == [1, 4]
    assert [e.message.split(":")[0] for e in errors] == ["obs-index row 2", "obs-index row 3"]
    assert "OBS_ID 'x'" in errors[0].message and "a masked value" in errors[1].message
    assert {(e.file, e.field) for e in errors} == {("obs-index.fits", "OBS_ID")}
    ids, ok, errors = parse_obs_ids(np.array([5, 6]), what="hdu-index")
    assert ids.tolist() == [5, 6] and ok.all() and errors == []

"""gdask.dl3.validate: physical plausibility checks (no false alarm on real data)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from gdask.dl3 import DL3Index, EventList, read_observation, read_observations
from gdask.dl3.validate import (
    check_events,
    check_irf,
    check_obs_row,
    check_times,
    raise_for_errors,
    validate_observation,
)
from gdask.errors import FormatError

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def crab(hess_dir: Path):
    return read_observation(DL3Index.read(hess_dir), 23523)


def _events(crab, **changes) -> EventList:
    """A copy of the Crab events with some columns' values or units replaced."""
    ds = crab.events.ds.copy(deep=True)
    for name, (values, unit) in changes.items():
        if values is not None:
            ds[name].values[...] = values(ds[name].values) if callable(values) else values
        if unit is not None:
            ds[name].attrs["units"] = unit
    return EventList(ds, file="run.fits", obs_id=23523)


def _errors(issues):
    return [i for i in issues if i.severity == "error"]


@pytest.mark.parametrize(
    "folder",
    [
        "hess-dl3-dr1",
        "joint-crab/dl3/magic",
        "joint-crab/dl3/veritas",
        "joint-crab/dl3/fact",
        "magic/rad_max/data",
        "veritas/crab-point-like-ED",
    ],
)
def test_real_archives_pass(data_dir: Path, folder: str):
    """No error and no warning on the real archives (first runs of each)."""
    index = DL3Index.read(data_dir / folder)
    ids = index.obs_ids[:4]
    for obs in read_observations(index, ids):
        issues = validate_observation(obs, obs_row=index.obs_values(obs.obs_id))
        assert issues == [], [str(i) for i in issues]


def test_unit_labels_that_cannot_be_right(crab):
    (err,) = _errors(check_events(_events(crab, ENERGY=(None, "keV")), energy_range=(0.01, 100)))
    assert err.field == "EVENTS.ENERGY" and "'keV'" in err.message and "unit label" in err.message
    (err,) = _errors(check_events(_events(crab, RA=(None, "rad"))))
    assert err.field == "EVENTS.RA" and "'rad'" in err.message
    # GeV-labelled TeV values: plausible in absolute terms, not for a 0.1-100 TeV response
    (err,) = _errors(check_events(_events(crab, ENERGY=(None, "GeV")), energy_range=(0.1, 100)))
    assert "within 10x of the effective area" in err.message


def test_nan_and_negative_events(crab):
    (err,) = _errors(check_events(_events(crab, RA=(np.nan, None))))
    assert err.field == "EVENTS.RA" and "every value is NaN" in err.message
    (err,) = _errors(check_events(_events(crab, ENERGY=(lambda e: -e, None))))
    assert "negative" in err.message
    few = check_events(
        _events(crab, ENERGY=(lambda e: np.where(np.arange(e.size) < 2, np.nan, e), None))
    )
    assert [i.severity for i in few] == ["warning"] and "2 of" in few[0].message


def test_times(crab):
    events = _events(crab)
    assert check_times(events, crab.gti, obs_id=23523) == []
    events.ds.attrs["livetime"] = 1e300
    errs = _errors(check_times(events, crab.gti))
    assert {e.field for e in errs} == {"EVENTS.LIVETIME"}
    assert any("exceeds ONTIME" in e.message for e in errs)
    events = _events(crab)
    events.ds.attrs["mjdref"] = 1e9
    (err,) = _errors(check_times(events, None))
    assert err.field == "EVENTS.MJDREFI"
    events = _events(crab)
    events.ds.attrs["tstart"] += 1e15
    errs = _errors(check_times(events, None))
    assert "EVENTS.TSTART" in [e.field for e in errs]


def test_irfs(crab):
    for hdu_type, irf in crab.irfs.items():
        assert check_irf(irf, hdu_type) == []
    edisp = copy.deepcopy(crab.irfs["edisp"])
    pdf = edisp.ds["migration_pdf"]
    edisp.ds["migration_pdf"].values[...] = np.swapaxes(pdf.values, 0, 1).reshape(pdf.shape)
    (err,) = _errors(check_irf(edisp, "edisp", file="f.fits", obs_id=1))
    assert "integrates to" in err.message and err.field.endswith(".MATRIX")
    aeff = copy.deepcopy(crab.irfs["aeff"])
    aeff.ds["effective_area"].values[...] = 0.0
    (err,) = _errors(check_irf(aeff, "aeff"))
    assert "zero" in err.message and err.field.endswith(".EFFAREA")
    psf = copy.deepcopy(crab.irfs["psf"])
    psf.ds["psf"].values[...] = np.nan
    (err,) = _errors(check_irf(psf, "psf"))
    assert "NaN" in err.message and err.field.endswith(".RPSF")


def test_obs_row_and_raise(crab):
    row = dict(crab.meta)
    assert check_obs_row(row) == []
    row["RA_PNT"] = "83.63"
    row["LIVETIME"] = float("inf")
    issues = check_obs_row(row, file="obs-index.fits.gz", obs_id=23523)
    assert {i.field for i in _errors(issues)} == {"RA_PNT", "LIVETIME"}
    with pytest.raises(FormatError) as exc:
        raise_for_errors(issues)
    assert exc.value.field == "RA_PNT" and "1 more problem" in exc.value.message
    assert exc.value.file == "obs-index.fits.gz" and exc.value.obs_id == 23523


def test_pointing_keywords(crab):
    events = _events(crab)
    header = events.header
    header["RA_PNT"] = "85.25"
    events.ds.attrs["fits_header"] = header.tostring()
    issues = check_events(events)
    assert [(i.severity, i.field) for i in issues] == [("warning", "EVENTS.RA_PNT")]
    events.ds.attrs["dec_pnt"] = 123.0
    (err,) = _errors(check_events(events))
    assert err.field == "EVENTS.DEC_PNT" and "outside" in err.message


def test_livetime_without_anything_to_compare_with(crab):
    (err,) = _errors(check_obs_row({"LIVETIME": 1e300}, obs_id=1))
    assert err.field == "LIVETIME" and "30 years" in err.message
    assert check_obs_row({"LIVETIME": 1500.0}) == []

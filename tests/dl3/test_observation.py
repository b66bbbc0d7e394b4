"""Observation reading (one open per file), errors, and the FITS -> gdask -> FITS round trip."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import gdask.dl3.observation as observation_module
from gdask.dl3 import (
    GTI,
    DL3Index,
    EventList,
    Observation,
    read_observation,
    read_observations,
    write_observations,
)
from gdask.dl3.irf import IRF_CLASSES
from gdask.errors import FileReadError, MissingColumnError, MissingHDUError
from tests.dl3.fitscompare import assert_same_table_hdu

pytestmark = pytest.mark.realdata

ROUND_TRIP = [
    ("hess-dl3-dr1", 23523),
    ("magic/rad_max/data", 5029747),
    ("joint-crab/dl3/veritas", 54809),
    ("veritas/crab-point-like-ED", 64080),
    ("joint-crab/dl3/fact", 20131103093),
]


def _norm(value):
    return value.replace(" ", "") if isinstance(value, str) else value


def assert_same_irf_hdu(a: fits.BinTableHDU, b: fits.BinTableHDU) -> None:
    """Same column values, dtypes, units, shapes and the same header keyword values.

    Looser than `assert_same_table_hdu` (the IRF writers are gdask.dl3.irf's):
    card order, comments, TDIM spacing and empty TUNIT cards may differ.
    """
    assert a.columns.names == b.columns.names
    for ca, cb in zip(a.columns, b.columns, strict=True):
        assert ca.format == cb.format and (ca.unit or "") == (cb.unit or ""), ca.name
        assert _norm(ca.dim) == _norm(cb.dim), ca.name
        va, vb = a.data[ca.name], b.data[cb.name]
        assert va.dtype == vb.dtype and va.shape == vb.shape, ca.name
        assert np.array_equal(va, vb, equal_nan=True), ca.name

    def cards(h):
        return sorted(
            (
                (c.keyword, _norm(c.value))
                for c in h.cards
                if not (c.keyword.startswith("TUNIT") and c.value == "")
            ),
            key=str,
        )

    assert cards(a.header) == cards(b.header)


@pytest.fixture
def count_opens(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    opened: list[Path] = []
    real = observation_module.open_fits

    def spy(path, obs_id=None):
        opened.append(Path(path))
        return real(path, obs_id=obs_id)

    monkeypatch.setattr(observation_module, "open_fits", spy)
    return opened


@pytest.mark.parametrize("name, obs_id", ROUND_TRIP)
def test_read_observation(data_dir: Path, count_opens: list[Path], name: str, obs_id: int) -> None:
    index = DL3Index.read(data_dir / name)
    count_opens.clear()
    obs = read_observation(index, obs_id)
    assert isinstance(obs, Observation) and obs.obs_id == obs_id
    assert isinstance(obs.events, EventList) and isinstance(obs.gti, GTI)
    listed = [t for t in index.hdu_types(obs_id) if t not in ("events", "gti")]
    assert sorted(obs.irfs) == sorted(listed)
    for hdu_type, irf in obs.irfs.items():
        assert isinstance(irf, IRF_CLASSES[index.hdu_location(obs_id, hdu_type).hdu_class])
    assert obs.meta == index.obs_row(obs_id)
    assert obs.sources == index.file_paths(obs_id)
    assert sorted(count_opens) == sorted(obs.sources)  # each file opened once
    with fits.open(obs.sources[0]) as hdul:
        assert obs.events.n_events == hdul["EVENTS"].header["NAXIS2"]


def test_fact_shared_irf_file(linked_data_dir: Path, count_opens: list[Path]) -> None:
    data_dir = linked_data_dir
    index = DL3Index.read(data_dir / "joint-crab/dl3/fact")
    ids = index.obs_ids[:10]
    count_opens.clear()
    observations = list(read_observations(index, ids))
    # resolved paths on both sides: data_dir may be (or lie under) a symlink
    irf_file = (data_dir / "joint-crab/dl3/fact/fact_irf.fits").resolve()
    assert [p.resolve() for p in count_opens].count(irf_file) == 1
    assert len(count_opens) == 11
    assert all(
        irf_file in {p.resolve() for p in o.sources} and len(o.sources) == 2 for o in observations
    )
    assert [o.obs_id for o in observations] == ids
    assert observations[0].irfs["aeff"] is not observations[1].irfs["aeff"]


def test_optional_and_required(data_dir: Path) -> None:
    index = DL3Index.read(data_dir / "joint-crab/dl3/veritas")
    obs = read_observation(index, 54809)  # no psf, no bkg: fine
    assert "psf" not in obs.irfs and "bkg" not in obs.irfs
    with pytest.raises(MissingHDUError) as err:
        read_observation(index, 54809, require=("events", "gti", "psf"))
    assert err.value.obs_id == 54809 and err.value.field == "psf"
    only = read_observation(index, 54809, hdu_types=("events",), require=("events",))
    assert only.gti is None and only.irfs == {} and only.hdu_types == ["events"]


def _copy_index(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("hdu-index.fits.gz", "obs-index.fits.gz"):
        shutil.copy(src / name, dst / name)


def test_missing_file(data_dir: Path, tmp_path: Path) -> None:
    _copy_index(data_dir / "joint-crab/dl3/veritas", tmp_path)
    index = DL3Index.read(tmp_path)
    with pytest.raises(FileReadError) as err:
        read_observation(index, 54809)
    assert err.value.obs_id == 54809 and err.value.file.endswith("54809_DL3.fits")
    assert "not found" in str(err.value)


def test_truncated_gzip(hess_dir: Path, tmp_path: Path) -> None:
    _copy_index(hess_dir, tmp_path)
    (tmp_path / "data").mkdir()
    name = "hess_dl3_dr1_obs_id_023523.fits.gz"
    data = (hess_dir / "data" / name).read_bytes()
    (tmp_path / "data" / name).write_bytes(data[: int(len(data) * 0.8)])
    index = DL3Index.read(tmp_path)
    with pytest.raises(FileReadError) as err:
        read_observation(index, 23523)
    assert err.value.obs_id == 23523 and err.value.file.endswith(name)


def test_missing_hdu_and_column(data_dir: Path, tmp_path: Path) -> None:
    src = data_dir / "joint-crab/dl3/veritas"
    _copy_index(src, tmp_path)
    with fits.open(src / "54809_DL3.fits") as hdul:
        fits.HDUList([h.copy() for h in hdul if h.name != "GTI"]).writeto(
            tmp_path / "54809_DL3.fits"
        )
        events = Table.read(hdul["EVENTS"])
        events.remove_column("ENERGY")
        ev_hdu = fits.table_to_hdu(events)
        ev_hdu.name = "EVENTS"
        fits.HDUList([hdul[0].copy(), ev_hdu, hdul["GTI"].copy()]).writeto(
            tmp_path / "57993_DL3.fits"
        )
    index = DL3Index.read(tmp_path)
    with pytest.raises(MissingHDUError) as err:
        read_observation(index, 54809)
    assert (
        err.value.obs_id == 54809
        and err.value.field == "GTI"
        and err.value.file.endswith("54809_DL3.fits")
    )
    with pytest.raises(MissingColumnError) as err2:
        read_observation(index, 57993, hdu_types=("events", "gti"))
    assert err2.value.obs_id == 57993 and err2.value.field == "EVENTS.ENERGY"


@pytest.mark.parametrize("name, obs_id", ROUND_TRIP)
def test_fits_round_trip(data_dir: Path, tmp_path: Path, name: str, obs_id: int) -> None:
    index = DL3Index.read(data_dir / name)
    obs = read_observation(index, obs_id)
    written = write_observations([obs], tmp_path / "out", index=index)
    assert written.obs_ids == [obs_id]
    assert written.obs_row(obs_id) == index.obs_row(obs_id)
    assert sorted(written.hdu_types(obs_id)) == sorted(index.hdu_types(obs_id))
    for hdu_type in index.hdu_types(obs_id):
        a, b = index.hdu_location(obs_id, hdu_type), written.hdu_location(obs_id, hdu_type)
        assert a.hdu_class == b.hdu_class
        with fits.open(a.path) as src, fits.open(b.path) as dst:
            if hdu_type in ("events", "gti"):
                assert_same_table_hdu(src[a.hdu_name], dst[b.hdu_name])
            else:
                assert_same_irf_hdu(src[a.hdu_name], dst[b.hdu_name])
    again = read_observation(written, obs_id)
    for var in obs.events.ds.data_vars:
        assert np.array_equal(again.events.ds[var].values, obs.events.ds[var].values)
    strip = {k: v for k, v in obs.events.ds.attrs.items() if k != "fits_header"}
    assert {k: v for k, v in again.events.ds.attrs.items() if k != "fits_header"} == strip

    # the header string differs only where astropy places the column cards on write
    def cards(h):
        return sorted(((c.keyword, c.value, c.comment) for c in h.cards), key=str)

    assert cards(again.events.header) == cards(obs.events.header)


def test_write_without_index(data_dir: Path, tmp_path: Path) -> None:
    index = DL3Index.read(data_dir / "joint-crab/dl3/magic")
    observations = list(read_observations(index))
    written = write_observations(observations, tmp_path)
    assert written.obs_ids == index.obs_ids
    row = written.obs_row(5029747)
    assert row["RA_PNT"] == pytest.approx(index.obs_row(5029747)["RA_PNT"])
    assert row["EVENT_COUNT"] == observations[0].events.n_events
    assert written.meta["MJDREFI"] == 52706
    assert written.obs_units["RA_PNT"] == "deg"
    with pytest.raises(OSError):
        write_observations(observations, tmp_path)  # no overwrite


@pytest.mark.realdata
def test_background_fov_alignment(data_dir: Path):
    """H.E.S.S. DR1 backgrounds have reversed FoV longitudes (as Gammapy reads them); no bkg: None."""
    hess = read_observation(DL3Index.read(data_dir / "hess-dl3-dr1"), 23523)
    assert hess.background_fov_alignment == "REVERSE_LON_RADEC"
    assert hess.irfs["bkg"].ds.attrs["fov_alignment"] == "RADEC"  # the file's own FOVALIGN
    magic = read_observation(DL3Index.read(data_dir / "joint-crab" / "dl3" / "magic"), 5029747)
    assert "bkg" not in magic.irfs and magic.background_fov_alignment is None

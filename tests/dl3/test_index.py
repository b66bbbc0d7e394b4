"""DL3Index: reading, selection, HDU resolution, errors, writing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from gdask.dl3 import DL3Index, HDULocation
from gdask.errors import FileReadError, FormatError, MissingHDUError, SelectionError

pytestmark = pytest.mark.realdata

DATASETS = {
    "hess-dl3-dr1": 105,
    "joint-crab/dl3/hess": 4,
    "joint-crab/dl3/magic": 2,
    "joint-crab/dl3/veritas": 2,
    "joint-crab/dl3/fact": 125,
    "magic/rad_max/data": 2,
    "veritas/crab-point-like-ED": 4,
}


@pytest.fixture(scope="module")
def hess(hess_dir: Path) -> DL3Index:
    return DL3Index.read(hess_dir)


@pytest.fixture(scope="module")
def hess_table(hess_dir: Path) -> Table:
    return Table.read(hess_dir / "obs-index.fits.gz")


def test_read_directory_and_files(hess_dir: Path, hess: DL3Index) -> None:
    assert len(hess) == 105
    assert hess.obs_ids[:3] == [20136, 20137, 20151]
    assert hess.meta["MJDREFI"] == 51910 and hess.meta["TIMESYS"] == "TT"
    assert hess.obs_units["RA_PNT"] == "deg"
    for path in (hess_dir / "hdu-index.fits.gz", hess_dir / "obs-index.fits.gz"):
        other = DL3Index.read(path)
        assert other.obs_ids == hess.obs_ids
        assert other.base_dir == hess.base_dir
    assert hess.time_reference().scale == "tt"


@pytest.mark.parametrize("name", list(DATASETS))
def test_hdu_locations_resolve(data_dir: Path, name: str) -> None:
    index = DL3Index.read(data_dir / name)
    assert len(index) == DATASETS[name]
    ids = index.obs_ids[:4] if len(index) > 20 else index.obs_ids
    for obs_id in ids:
        types = index.hdu_types(obs_id)
        assert {"events", "gti", "aeff", "edisp"} <= set(types)
        for hdu_type in types:
            loc = index.hdu_location(obs_id, hdu_type)
            assert isinstance(loc, HDULocation)
            assert loc.path.is_absolute() and loc.path.exists(), loc
            with fits.open(loc.path) as hdul:
                assert loc.hdu_name.upper() in [h.name for h in hdul]
    if name == "magic/rad_max/data":
        assert index.hdu_location(ids[0], "rad_max").hdu_class == "rad_max_2d"


def test_file_dir_variants(linked_data_dir: Path) -> None:
    data_dir = linked_data_dir
    # the index resolves its paths: compare resolved ones (data_dir may be a symlink)
    real = data_dir.resolve()
    veritas = DL3Index.read(data_dir / "joint-crab/dl3/veritas")  # FILE_DIR empty ("--")
    assert veritas.hdu_location(54809, "events").path.resolve() == (
        real / "joint-crab/dl3/veritas/54809_DL3.fits"
    )
    fact = DL3Index.read(data_dir / "joint-crab/dl3/fact")  # FILE_DIR "./"
    loc = fact.hdu_location(20131103093, "aeff")
    assert loc.path.resolve() == real / "joint-crab/dl3/fact/fact_irf.fits"
    assert loc.hdu_name == "EFFECTIVE AREA"
    hess = DL3Index.read(data_dir / "hess-dl3-dr1")  # FILE_DIR "data"
    assert hess.hdu_location(20136, "events").path.parent.resolve() == real / "hess-dl3-dr1/data"
    assert [p.resolve() for p in fact.file_paths(20131103093)] == [
        real / "joint-crab/dl3/fact/20131103_93_dl3.fits",
        real / "joint-crab/dl3/fact/fact_irf.fits",
    ]


def test_select_obs_ids(hess: DL3Index) -> None:
    sel = hess.select(obs_ids=[23592, 23523, 23523])
    assert sel.obs_ids == [23592, 23523]
    assert set(np.asarray(sel.hdu_table["OBS_ID"])) == {23592, 23523}
    assert sel.hdu_location(23523, "events").path == hess.hdu_location(23523, "events").path
    with pytest.raises(SelectionError) as err:
        hess.select(obs_ids=[1, 23523])
    assert err.value.obs_id == 1


def test_select_cone(hess: DL3Index, hess_table: Table) -> None:
    center = SkyCoord(83.633, 22.014, unit="deg")
    radius = 3 * u.deg
    pnt = SkyCoord(hess_table["RA_PNT"], hess_table["DEC_PNT"])
    expected = list(np.asarray(hess_table["OBS_ID"])[pnt.separation(center) < radius])
    assert len(expected) > 0
    assert hess.select(cone=(83.633, 22.014, 3.0)).obs_ids == expected
    assert hess.select(cone=(center, radius)).obs_ids == expected
    assert hess.select(cone=(83.633 * u.deg, 22.014 * u.deg, 3 * u.deg)).obs_ids == expected


def test_select_time_range(hess: DL3Index, hess_table: Table) -> None:
    tstart, tstop = np.asarray(hess_table["TSTART"]), np.asarray(hess_table["TSTOP"])
    ref = Time(51910, 0.000742870370370241, format="mjd", scale="tt")
    t0, t1 = Time("2004-12-01", scale="tt"), Time("2004-12-31", scale="tt")
    m0, m1 = (t0 - ref).to_value("s"), (t1 - ref).to_value("s")
    ids = np.asarray(hess_table["OBS_ID"])
    expected = list(ids[(tstart >= m0) & (tstop <= m1)])
    assert len(expected) > 0
    assert hess.select(time_range=(t0, t1)).obs_ids == expected
    assert hess.select(time_range=(m0, m1)).obs_ids == expected
    # partial overlap: a range inside one observation selects it
    mid = 0.5 * (tstart[0] + tstop[0])
    assert hess.select(time_range=(mid, mid + 1)).obs_ids == []
    assert hess.select(time_range=(mid, mid + 1), partial_overlap=True).obs_ids == [int(ids[0])]


def test_select_columns(hess: DL3Index, hess_table: Table) -> None:
    zen = np.asarray(hess_table["ZEN_PNT"])
    ids = np.asarray(hess_table["OBS_ID"])
    expected = list(ids[(zen >= 0) & (zen < 40)])
    assert hess.select(ZEN_PNT=(0, 40)).obs_ids == expected
    assert hess.select(ZEN_PNT=(0 * u.rad, 40 * u.deg)).obs_ids == expected
    crab = list(ids[np.char.strip(np.asarray(hess_table["OBJECT"]).astype(str)) == "Crab Nebula"])
    assert hess.select(OBJECT="Crab Nebula").obs_ids == crab
    both = hess.select(cone=(83.633, 22.014, 3.0), ZEN_PNT=(0, 45))
    assert set(both.obs_ids) == set(crab) & set(ids[zen < 45])
    assert hess.select(N_TELS=(4, 4)).obs_ids == list(ids[np.asarray(hess_table["N_TELS"]) == 4])
    with pytest.raises(SelectionError) as err:
        hess.select(NOT_A_COLUMN=(0, 1))
    assert err.value.field == "NOT_A_COLUMN"
    with pytest.raises(SelectionError):
        hess.select(ZEN_PNT=(0 * u.s, 1 * u.s))


def test_obs_row_json(hess: DL3Index) -> None:
    row = hess.obs_row(20275)
    assert row["OBS_ID"] == 20275 and isinstance(row["OBJECT"], str)
    assert row["TARGET_OFFSET"] is None  # NaN in the file
    json.dumps(row, allow_nan=False)
    with pytest.raises(SelectionError):
        hess.obs_row(1)


def test_missing_things(hess: DL3Index, data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingHDUError) as err:
        DL3Index.read(data_dir / "joint-crab/dl3/veritas").hdu_location(54809, "psf")
    assert err.value.obs_id == 54809 and err.value.field == "psf"
    with pytest.raises(SelectionError) as err2:
        hess.hdu_location(1, "events")
    assert err2.value.obs_id == 1
    with pytest.raises(FileReadError) as err3:
        DL3Index.read(tmp_path)
    assert "hdu-index" in str(err3.value)
    with pytest.raises(FileReadError):
        DL3Index.read(tmp_path / "nothing-here")


def test_truncated_index(hess_dir: Path, tmp_path: Path) -> None:
    data = (hess_dir / "hdu-index.fits.gz").read_bytes()
    (tmp_path / "hdu-index.fits.gz").write_bytes(data[: len(data) // 2])
    shutil.copy(hess_dir / "obs-index.fits.gz", tmp_path)
    with pytest.raises(FileReadError) as err:
        DL3Index.read(tmp_path)
    assert "hdu-index.fits.gz" in err.value.file


def _small_index(tmp_path: Path) -> None:
    obs = Table({"OBS_ID": [1, 2], "RA_PNT": [0.0, 1.0], "DEC_PNT": [0.0, 0.0]})
    hdu = Table(
        {
            "OBS_ID": [2, 2, 3],
            "HDU_TYPE": ["events", "gti", "events"],
            "HDU_CLASS": ["events", "gti", "events"],
            "FILE_DIR": ["", ".", "sub"],
            "FILE_NAME": ["a.fits", "a.fits", "b.fits"],
            "HDU_NAME": ["EVENTS", "GTI", "EVENTS"],
        }
    )
    obs.meta["EXTNAME"] = "OBS_INDEX"
    hdu.meta["EXTNAME"] = "HDU_INDEX"
    obs.write(tmp_path / "obs-index.fits")
    hdu.write(tmp_path / "hdu-index.fits")


def test_mismatched_tables(tmp_path: Path) -> None:
    _small_index(tmp_path)
    with pytest.warns(UserWarning, match="left out of obs_ids"):
        index = DL3Index.read(tmp_path)
    assert index.obs_ids == [2]
    assert index.obs_only_ids == [1] and index.hdu_only_ids == [3]
    assert index.hdu_location(3, "events").path == tmp_path.resolve() / "sub/b.fits"
    assert index.hdu_location(2, "gti").path == tmp_path.resolve() / "a.fits"
    assert index.select(cone=(0, 0, 10)).obs_ids == [2]


def test_duplicate_obs_id(tmp_path: Path) -> None:
    Table({"OBS_ID": [1, 1]}).write(tmp_path / "obs-index.fits")
    Table(
        {
            "OBS_ID": [1],
            "HDU_TYPE": ["events"],
            "HDU_CLASS": ["events"],
            "FILE_DIR": ["."],
            "FILE_NAME": ["a.fits"],
            "HDU_NAME": ["EVENTS"],
        }
    ).write(tmp_path / "hdu-index.fits")
    with pytest.warns(UserWarning, match="lists OBS_ID 1 2 times"):
        index = DL3Index.read(tmp_path)
    # the ambiguous observation is left out and reported, not fatal to the other rows
    assert index.obs_ids == [] and index.hdu_only_ids == [] and index.obs_only_ids == []
    (err,) = index.rejected
    assert isinstance(err, FormatError) and err.obs_id == 1 and err.field == "OBS_ID"
    assert err.file == str(tmp_path / "obs-index.fits")


def test_non_integer_obs_ids_are_rejected_per_row(tmp_path: Path) -> None:
    Table({"OBS_ID": ["1", "x", " 2 "]}).write(tmp_path / "obs-index.fits")
    Table(
        {
            "OBS_ID": [1, 2, 3],
            "HDU_TYPE": ["events"] * 3,
            "HDU_CLASS": ["events"] * 3,
            "FILE_DIR": ["."] * 3,
            "FILE_NAME": ["a.fits", "b.fits", "c.fits"],
            "HDU_NAME": ["EVENTS"] * 3,
        }
    ).write(tmp_path / "hdu-index.fits")
    with pytest.warns(UserWarning):
        index = DL3Index.read(tmp_path)
    assert index.obs_ids == [1, 2] and index.hdu_only_ids == [3]
    (err,) = index.rejected
    assert "row 2: OBS_ID 'x' is not an integer" in err.message and err.field == "OBS_ID"
    assert index.select(obs_ids=[2]).obs_ids == [2]


def test_to_fits_round_trip(hess: DL3Index, tmp_path: Path) -> None:
    sel = hess.select(obs_ids=[23523, 23526])
    obs_path, hdu_path = sel.to_fits(tmp_path / "index")
    back = DL3Index.read(tmp_path / "index")
    assert back.obs_ids == sel.obs_ids
    assert back.meta["MJDREFI"] == hess.meta["MJDREFI"]
    for obs_id in back.obs_ids:
        assert back.obs_row(obs_id) == hess.obs_row(obs_id)
        for t in back.hdu_types(obs_id):
            assert back.hdu_location(obs_id, t) == hess.hdu_location(obs_id, t)
    table = Table.read(obs_path)
    assert table["RA_PNT"].dtype.str[1:] == "f4" and str(table["RA_PNT"].unit) == "deg"

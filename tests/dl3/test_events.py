"""EventList: exact column values, attrs, FITS round trip and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from gdask.dl3 import EventList
from gdask.errors import FormatError, MissingColumnError, UnitError
from tests.dl3.fitscompare import assert_same_table_hdu

EVENT_FILES = [
    ("hess-dl3-dr1/data/hess_dl3_dr1_obs_id_020136.fits.gz", 20136),
    ("hess-dl3-dr1/data/hess_dl3_dr1_obs_id_023523.fits.gz", 23523),
    ("joint-crab/dl3/magic/run_05029747_DL3.fits", 5029747),
    ("magic/rad_max/data/20131004_05029748_DL3_CrabNebula-W0.40+215.fits", 5029748),
    ("joint-crab/dl3/veritas/54809_DL3.fits", 54809),
    ("veritas/crab-point-like-ED/64080.fits.gz", 64080),
    ("joint-crab/dl3/fact/20131103_93_dl3.fits", 20131103093),
    ("joint-crab/dl3/fact/20131105_240_dl3.fits", 20131105240),
]


@pytest.mark.realdata
@pytest.mark.parametrize("rel, obs_id", EVENT_FILES)
def test_columns_exact(data_dir: Path, rel: str, obs_id: int) -> None:
    path = data_dir / rel
    with fits.open(path) as hdul:
        events = EventList.from_hdu(hdul["EVENTS"], file=path)
        header = hdul["EVENTS"].header
    table = Table.read(path, hdu="EVENTS")
    ds = events.to_dataset()
    assert list(ds.data_vars) == table.colnames
    assert ds.sizes["event"] == len(table) == events.n_events
    for name in table.colnames:
        col = table[name]
        assert ds[name].dtype == col.dtype.newbyteorder("="), name
        assert np.array_equal(ds[name].values, np.asarray(col)), name
        assert ds[name].attrs["units"] == (str(col.unit) if col.unit else "")
    a = ds.attrs
    assert a["obs_id"] == obs_id == events.obs_id
    assert events.pointing == (header["RA_PNT"], header["DEC_PNT"])
    assert a["mjdref"] == header["MJDREFI"] + header["MJDREFF"]
    assert a["timesys"] == header["TIMESYS"]
    assert a["livetime"] == header["LIVETIME"] and a["ontime"] == header["ONTIME"]
    assert "fits_header" in a and isinstance(a["fits_header"], str)
    ref = events.time_reference
    assert ref.scale == header["TIMESYS"].lower()
    assert ref == Time(header["MJDREFI"], header["MJDREFF"], format="mjd", scale=ref.scale)
    assert np.allclose(events.energy.to_value("TeV"), table["ENERGY"].quantity.to_value("TeV"))
    assert events.time[0] == ref + table["TIME"].quantity[0]


@pytest.mark.realdata
@pytest.mark.parametrize("rel, obs_id", EVENT_FILES[::2])
def test_fits_round_trip(data_dir: Path, tmp_path: Path, rel: str, obs_id: int) -> None:
    path = data_dir / rel
    with fits.open(path) as hdul:
        original = hdul["EVENTS"].copy()
    events = EventList.from_dataset(EventList.from_hdu(original, file=path).to_dataset())
    out = tmp_path / "events.fits"
    fits.HDUList([fits.PrimaryHDU(), events.to_hdu()]).writeto(out)
    with fits.open(out) as back:
        assert_same_table_hdu(original, back["EVENTS"])
    # in memory (before astropy places the column cards) even the card order is the same
    assert list(events.to_hdu().header.keys()) == list(original.header.keys())


def _hdu(columns: dict, units: dict, **header) -> fits.BinTableHDU:
    cols = [
        fits.Column(
            name=k,
            array=v,
            format="D" if np.asarray(v).ndim == 1 else f"{np.asarray(v).shape[1]}E",
            unit=units.get(k),
        )
        for k, v in columns.items()
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    for k, v in header.items():
        hdu.header[k] = v
    return hdu


def _columns(n: int = 4) -> tuple[dict, dict]:
    rng = np.random.default_rng(1)
    cols = {
        "TIME": np.arange(n, dtype=float),
        "RA": rng.uniform(0, 360, n),
        "DEC": rng.uniform(-90, 90, n),
        "ENERGY": rng.uniform(1, 10, n),
    }
    return cols, {"TIME": "s", "RA": "deg", "DEC": "deg", "ENERGY": "TeV"}


def test_missing_column() -> None:
    cols, units = _columns()
    del cols["ENERGY"]
    with pytest.raises(MissingColumnError) as err:
        EventList.from_hdu(_hdu(cols, units, OBS_ID=7), file="x.fits")
    assert (
        err.value.field == "EVENTS.ENERGY" and err.value.obs_id == 7 and err.value.file == "x.fits"
    )


@pytest.mark.parametrize(
    "column, unit", [("ENERGY", "m"), ("RA", "s"), ("TIME", "TeV"), ("ENERGY", "not-a-unit")]
)
def test_wrong_unit(column: str, unit: str) -> None:
    cols, units = _columns()
    units[column] = unit
    with pytest.raises(UnitError) as err:
        EventList.from_hdu(_hdu(cols, units, OBS_ID=7), file="x.fits")
    assert err.value.field == f"EVENTS.{column}" and err.value.obs_id == 7


def test_converted_views_and_units() -> None:
    cols, units = _columns()
    units["ENERGY"] = "GeV"
    cols["ENERGY"] = np.array([100.0, 1000.0, 2000.0, 5000.0])
    ev = EventList.from_hdu(_hdu(cols, units, OBS_ID=1, MJDREFI=51910, MJDREFF=0.5, TIMESYS="TT"))
    assert np.array_equal(ev.ds["ENERGY"].values, cols["ENERGY"])  # stored as in the file
    assert np.allclose(ev.energy.to_value("TeV"), [0.1, 1, 2, 5])
    assert ev.time_reference == Time(51910.5, format="mjd", scale="tt")
    with pytest.raises(FormatError):
        _ = ev.pointing


def test_vector_column_round_trip() -> None:
    cols, units = _columns()
    cols["MULTIP"] = np.arange(12, dtype=np.float32).reshape(4, 3)
    cols["FLAG"] = np.array([1, 2, 3, 4], dtype=np.int16)
    hdu = _hdu({k: v for k, v in cols.items() if k != "FLAG"}, units)
    cube = np.arange(24, dtype=np.float64).reshape(4, 2, 3)
    extra = [
        fits.Column(name="FLAG", format="I", array=cols["FLAG"]),
        fits.Column(name="CUBE", format="6D", dim="(3,2)", array=cube),
    ]
    hdu = fits.BinTableHDU.from_columns(hdu.columns + fits.ColDefs(extra), header=hdu.header)
    ev = EventList.from_hdu(hdu)
    assert ev.ds["MULTIP"].dims == ("event", "MULTIP_dim_0")
    assert ev.ds["CUBE"].dims == ("event", "CUBE_dim_0", "CUBE_dim_1")
    assert np.array_equal(ev.to_hdu().data["CUBE"], cube)
    assert ev.to_hdu().columns["CUBE"].dim == "(3,2)"
    assert ev.ds["FLAG"].dtype == np.int16
    back = ev.to_hdu()
    assert np.array_equal(back.data["MULTIP"], cols["MULTIP"])
    assert back.columns["FLAG"].format == "I"


def test_from_dataset_without_header() -> None:
    cols, units = _columns()
    ds = xr.Dataset(
        {k: ("event", v, {"units": units[k]}) for k, v in cols.items()},
        attrs={"obs_id": 3, "ra_pnt": 10.0, "dec_pnt": 20.0, "mjdref": 51910.5, "timesys": "tt"},
    )
    ev = EventList.from_dataset(ds)
    hdu = ev.to_hdu()
    assert hdu.name == "EVENTS" and hdu.header["OBS_ID"] == 3
    assert hdu.header["MJDREFI"] == 51910 and hdu.header["MJDREFF"] == 0.5
    assert ev.pointing == (10.0, 20.0)
    assert np.array_equal(EventList.from_hdu(hdu).ds["RA"].values, cols["RA"])
    sub = ev.select_mask(cols["TIME"] > 1)
    assert sub.n_events == 2 and sub.to_hdu().header["NAXIS2"] == 2

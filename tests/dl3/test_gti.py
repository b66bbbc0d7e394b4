"""GTI: exact values, times, FITS round trip and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from gdask.dl3 import GTI
from gdask.errors import FormatError, MissingColumnError, UnitError
from tests.dl3.fitscompare import assert_same_table_hdu

GTI_FILES = [
    "hess-dl3-dr1/data/hess_dl3_dr1_obs_id_020136.fits.gz",
    "joint-crab/dl3/magic/run_05029747_DL3.fits",
    "magic/rad_max/data/20131004_05029747_DL3_CrabNebula-W0.40+035.fits",
    "joint-crab/dl3/veritas/57993_DL3.fits",
    "veritas/crab-point-like-ED/64081.fits.gz",
    "joint-crab/dl3/fact/20131103_93_dl3.fits",
]


@pytest.mark.realdata
@pytest.mark.parametrize("rel", GTI_FILES)
def test_gti_exact_and_round_trip(data_dir: Path, tmp_path: Path, rel: str) -> None:
    path = data_dir / rel
    with fits.open(path) as hdul:
        original = hdul["GTI"].copy()
    table = Table.read(path, hdu="GTI")
    gti = GTI.from_hdu(original, file=path, obs_id=42)
    ds = gti.to_dataset()
    assert ds["START"].dims == ("gti",)
    for name in ("START", "STOP"):
        assert np.array_equal(ds[name].values, np.asarray(table[name]))
        assert ds[name].dtype == table[name].dtype.newbyteorder("=")
        assert ds[name].attrs["units"] == "s"
    assert ds.attrs["obs_id"] == 42
    start, stop = np.asarray(table["START"]), np.asarray(table["STOP"])
    assert gti.time_sum == pytest.approx(np.sum(stop - start), rel=1e-12)
    h = original.header
    ref = Time(h["MJDREFI"], h["MJDREFF"], format="mjd", scale=h["TIMESYS"].lower())
    assert gti.time_reference == ref
    assert abs((gti.time_start - ref).to_value("s") - start.min()) < 1e-6
    assert abs((gti.time_stop - ref).to_value("s") - stop.max()) < 1e-6
    out = tmp_path / "gti.fits"
    fits.HDUList([fits.PrimaryHDU(), GTI.from_dataset(ds).to_hdu()]).writeto(out)
    with fits.open(out) as back:
        assert_same_table_hdu(original, back["GTI"])


def test_create_and_errors() -> None:
    gti = GTI.create([0, 100], [50, 160], mjdref=51910.0, timesys="tt")
    assert gti.time_sum == 110 and len(gti) == 2
    assert gti.time_start == Time(51910.0, format="mjd", scale="tt")
    hdu = gti.to_hdu()
    assert hdu.name == "GTI" and hdu.header["MJDREFI"] == 51910
    assert GTI.from_hdu(hdu).time_sum == 110
    with pytest.raises(FormatError):
        GTI.create([10], [5])
    cols = [fits.Column(name="START", format="D", unit="s", array=np.array([0.0]))]
    with pytest.raises(MissingColumnError) as err:
        GTI.from_hdu(fits.BinTableHDU.from_columns(cols, name="GTI"), file="g.fits", obs_id=3)
    assert err.value.field == "GTI.STOP" and err.value.obs_id == 3 and err.value.file == "g.fits"
    cols.append(fits.Column(name="STOP", format="D", unit="TeV", array=np.array([1.0])))
    with pytest.raises(UnitError):
        GTI.from_hdu(fits.BinTableHDU.from_columns(cols, name="GTI"))

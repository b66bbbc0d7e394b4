"""OGIP RMF channel numbering: F_CHAN counts from its column's TLMIN."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from astropy.io import fits

from gdask.datasets import SpectrumDatasetOnOff
from tests.badinput.test_datasets_io import OBS, PHA, RMF, _rmf_rows


def _copy(src: Path, out: Path) -> Path:
    out.mkdir()
    for kind in ("pha", "bkg", "arf", "rmf"):
        name = f"{kind}_obs{OBS}.fits"
        shutil.copy(src / name, out / name)
        (out / name).chmod(0o644)
    return out


def test_rmf_channels_numbered_from_tlmin(tmp_path: Path, data_dir: Path) -> None:
    src = data_dir / "joint-crab" / "spectra" / "hess"
    ref = SpectrumDatasetOnOff.read(src / PHA)
    d = _copy(src, tmp_path / "one-based")

    def one_based(rows: dict) -> None:
        rows["F_CHAN"] = [f + 1 for f in rows["F_CHAN"]]

    _rmf_rows(one_based)(d)
    with fits.open(d / RMF, mode="update") as h:
        col = h["MATRIX"].columns.names.index("F_CHAN") + 1
        h["MATRIX"].header[f"TLMIN{col}"] = 1
    edisp = SpectrumDatasetOnOff.read(d / PHA).ds["edisp"].values
    assert ref.ds["edisp"].values.sum() > 0
    np.testing.assert_array_equal(edisp, ref.ds["edisp"].values)

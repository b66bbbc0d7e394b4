"""Bad dataset files: OGIP spectra (PHA, BKG, ARF, RMF) and GADF-DL4 map datasets.

Each case copies good files (the H.E.S.S. run 23523 OGIP spectrum of the
joint-Crab data; a small map dataset written by gdask), breaks one thing and
feeds it to

- ``gdask fit`` on a run config whose analysis names the file (``files:``):
  exit 2, one line naming the file and the HDU / keyword / column, no
  traceback, no results folder;
- the library entry points of a fit: the dataset readers
  (`SpectrumDatasetOnOff.read`, `MapDataset.read`) and the likelihood term
  builder (`build_term` of a `TermSpec` whose source is the file), rendered
  by `_as_cli` as `gdask.cli.main` renders an error (a `GdaskError` as one
  line, exit 2; anything else a traceback) and judged the same way.

The good files are checked to read (so each case tests one defect) and the
other files of a case are left intact.
"""

from __future__ import annotations

import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from gdask.datasets import MapDataset, SpectrumDatasetOnOff
from gdask.errors import GdaskError
from gdask.geometry import EnergyAxis, WcsGeom
from gdask.likelihood.term import TermSpec, build_term
from gdask.models import Models, PointSpatialModel, PowerLawSpectralModel, SkyModel
from tests.badinput.conftest import CliResult, assert_clean_failure, run_cli

OBS = "23523"
PHA, BKG, ARF, RMF = (f"{k}_obs{OBS}.fits" for k in ("pha", "bkg", "arf", "rmf"))
MODELS = Models(
    [SkyModel(PowerLawSpectralModel(), PointSpatialModel(lon_0=83.63, lat_0=22.01), name="crab")]
).to_dict()


def _as_cli(call: Callable[[], object]) -> CliResult:
    """What ``gdask fit`` would print for ``call``: one line for a GdaskError, else a traceback."""
    try:
        call()
    except GdaskError as exc:
        return CliResult(2, "", f"gdask fit: error: {exc}\n")
    except Exception:  # noqa: BLE001 - what the user would see as a traceback
        return CliResult(1, "", traceback.format_exc())
    return CliResult(0, "", "")


# ----------------------------------------------------------------- editing


def _truncate(name: str, frac: float) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        p = d / name
        data = p.read_bytes()
        p.write_bytes(data[: int(len(data) * frac)])

    return edit


def _header(name: str, hdu: str, key: str, value: object = None) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        with fits.open(d / name, mode="update") as h:
            if value is None:
                del h[hdu].header[key]
            else:
                h[hdu].header[key] = value

    return edit


def _drop_column(name: str, hdu: str, col: str) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        with fits.open(d / name) as h:
            t = h[hdu]
            cols = [c for c in t.columns if c.name != col]
            new = fits.BinTableHDU.from_columns(cols, header=t.header, name=hdu)
            out = fits.HDUList([x.copy() if x is not t else new for x in h])
            out.writeto(d / name, overwrite=True)

    return edit


def _drop_hdu(name: str, hdu: str) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        with fits.open(d / name) as h:
            out = fits.HDUList([x.copy() for x in h if x.name != hdu])
            out.writeto(d / name, overwrite=True)

    return edit


def _rmf_rows(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """Rewrite the RMF MATRIX table after ``change`` edits its per-row lists."""

    def edit(d: Path) -> None:
        with fits.open(d / RMF) as h:
            t = h["MATRIX"]
            rows = {c: [np.array(v) for v in t.data[c]] for c in ("F_CHAN", "N_CHAN", "MATRIX")}
            rows["N_GRP"] = list(t.data["N_GRP"])
            change(rows)
            cols = [
                fits.Column("ENERG_LO", "E", unit="keV", array=t.data["ENERG_LO"]),
                fits.Column("ENERG_HI", "E", unit="keV", array=t.data["ENERG_HI"]),
                fits.Column("N_GRP", "I", array=np.array(rows["N_GRP"], dtype=np.int16)),
                fits.Column("F_CHAN", "PI()", array=[a.astype(np.int16) for a in rows["F_CHAN"]]),
                fits.Column("N_CHAN", "PI()", array=[a.astype(np.int16) for a in rows["N_CHAN"]]),
                fits.Column("MATRIX", "PE()", array=[a.astype(np.float32) for a in rows["MATRIX"]]),
            ]
            new = fits.BinTableHDU.from_columns(cols, name="MATRIX")
            for key in ("DETCHANS", "CHANTYPE", "HDUCLASS", "HDUCLAS1", "HDUCLAS2"):
                new.header[key] = t.header[key]
            out = fits.HDUList([x.copy() if x is not t else new for x in h])
        out.writeto(d / RMF, overwrite=True)

    return edit


def _first_filled_row(rows: dict) -> int:
    return next(i for i, n in enumerate(rows["N_CHAN"]) if n.sum() > 2)


def _shift_f_chan(rows: dict) -> None:
    i = _first_filled_row(rows)
    rows["F_CHAN"][i] = rows["F_CHAN"][i] + 79


def _grow_n_chan(rows: dict) -> None:
    i = _first_filled_row(rows)
    rows["N_CHAN"][i] = rows["N_CHAN"][i] + 3


def _bkg_fewer_channels(d: Path) -> None:
    with fits.open(d / BKG) as h:
        hdus = [h[0].copy()]
        for x in h[1:]:
            if x.name in ("SPECTRUM", "EBOUNDS"):
                x = fits.BinTableHDU(x.data[:-5], header=x.header, name=x.name)
                x.header.pop("DETCHANS", None)
            hdus.append(x.copy() if x.name not in ("SPECTRUM", "EBOUNDS") else x)
        fits.HDUList(hdus).writeto(d / BKG, overwrite=True)


# (id, edit of the folder, file at fault, names the message must contain)
OGIP_CASES = [
    ("truncated-pha", _truncate(PHA, 0.5), PHA, ["truncated", "field SPECTRUM"]),
    ("truncated-pha-header", _truncate(PHA, 0.1), PHA, ["FITS"]),
    ("truncated-rmf", _truncate(RMF, 0.5), RMF, ["truncated", "field MATRIX"]),
    ("truncated-arf", _truncate(ARF, 0.5), ARF, ["truncated", "field HDU 1"]),
    ("truncated-bkg", _truncate(BKG, 0.5), BKG, ["truncated", "field SPECTRUM"]),
    ("rmf-detchans-too-small", _header(RMF, "MATRIX", "DETCHANS", 5), RMF, ["MATRIX.DETCHANS"]),
    ("rmf-detchans-too-big", _header(RMF, "MATRIX", "DETCHANS", 500), RMF, ["MATRIX.DETCHANS"]),
    ("rmf-detchans-missing", _header(RMF, "MATRIX", "DETCHANS"), RMF, ["MATRIX.DETCHANS"]),
    ("pha-detchans-mismatch", _header(PHA, "SPECTRUM", "DETCHANS", 7), PHA, ["SPECTRUM.DETCHANS"]),
    ("rmf-f-chan-out-of-range", _rmf_rows(_shift_f_chan), RMF, ["MATRIX.F_CHAN", "row"]),
    ("rmf-n-chan-too-many", _rmf_rows(_grow_n_chan), RMF, ["MATRIX.", "row"]),
    ("missing-arf", lambda d: (d / ARF).unlink(), ARF, ["file not found"]),
    ("missing-rmf", lambda d: (d / RMF).unlink(), RMF, ["file not found"]),
    ("missing-bkg", lambda d: (d / BKG).unlink(), BKG, ["file not found"]),
    ("no-ancrfile", _header(PHA, "SPECTRUM", "ANCRFILE"), PHA, ["ANCRFILE"]),
    ("no-counts-column", _drop_column(PHA, "SPECTRUM", "COUNTS"), PHA, ["SPECTRUM.COUNTS"]),
    ("no-ebounds", _drop_hdu(PHA, "EBOUNDS"), PHA, ["EBOUNDS"]),
    ("rmf-no-n-grp", _drop_column(RMF, "MATRIX", "N_GRP"), RMF, ["MATRIX.N_GRP"]),
    ("rmf-not-fits", lambda d: (d / RMF).write_text("not a FITS file"), RMF, ["FITS"]),
    ("arf-no-specresp", _drop_column(ARF, "SPECRESP", "SPECRESP"), ARF, ["SPECRESP"]),
    ("bkg-other-channels", _bkg_fewer_channels, BKG, ["EBOUNDS"]),
]


@pytest.fixture
def ogip(tmp_path: Path, data_dir: Path) -> Path:
    src = data_dir / "joint-crab" / "spectra" / "hess"
    out = tmp_path / "ogip"
    out.mkdir()
    for name in (PHA, BKG, ARF, RMF):
        shutil.copy(src / name, out / name)
        (out / name).chmod(0o644)
    return out


def test_good_ogip_reads(ogip: Path) -> None:
    ds = SpectrumDatasetOnOff.read(ogip / PHA)
    assert ds.name == OBS and ds.ds.sizes["energy"] == 80
    assert np.asarray(ds.ds["edisp"]).sum() > 0


@pytest.mark.parametrize(
    "edit, bad, names", [c[1:] for c in OGIP_CASES], ids=[c[0] for c in OGIP_CASES]
)
def test_bad_ogip(ogip: Path, edit, bad: str, names: list[str]) -> None:
    edit(ogip)
    others = {p.name: p.read_bytes() for p in ogip.iterdir() if p.name != bad}
    pha = ogip / PHA
    assert_clean_failure(_as_cli(lambda: SpectrumDatasetOnOff.read(pha)), bad, *names)
    spec = TermSpec("spectrum", OBS, str(pha), MODELS)
    assert_clean_failure(_as_cli(lambda: build_term(spec)), bad, *names)
    assert {p.name: p.read_bytes() for p in ogip.iterdir() if p.name != bad} == others


# --------------------------------------------------------------------- maps


@pytest.fixture
def dl4(tmp_path: Path) -> Path:
    geom = WcsGeom.create(skydir=(83.63, 22.01), width=1.0, binsz=0.1, frame="icrs")
    e = EnergyAxis.from_bounds(0.5, 20, 3)
    et = EnergyAxis.from_bounds(0.3, 30, 5, name="energy_true")
    ds = MapDataset.create(geom, e, et, binsz_irf=0.5, name="d")
    ds.ds["counts"][:] = 1.0
    ds.ds["exposure"][:] = 1e10
    ds.ds["mask_safe"][:] = True
    path = tmp_path / "dataset.fits"
    ds.write(path)
    return path


def _map_drop(hdu: str) -> Callable[[Path], None]:
    return lambda p: _drop_hdu(p.name, hdu)(p.parent)


def _map_truncate(frac: float) -> Callable[[Path], None]:
    return lambda p: _truncate(p.name, frac)(p.parent)


MAP_CASES = [
    ("truncated-half", _map_truncate(0.5), ["truncated", "field"]),
    ("truncated-end", _map_truncate(0.97), ["truncated"]),
    ("truncated-in-a-header", lambda p: p.write_bytes(p.read_bytes()[:9640]), ["truncated"]),
    ("no-counts-bands", _map_drop("COUNTS_BANDS"), ["COUNTS_BANDS"]),
    ("no-exposure-bands", _map_drop("EXPOSURE_BANDS"), ["EXPOSURE_BANDS"]),
    ("no-psf-bands", _map_drop("PSF_BANDS"), ["PSF_BANDS"]),
    ("no-edisp-bands", _map_drop("EDISP_BANDS"), ["EDISP_BANDS"]),
    ("no-counts", _map_drop("COUNTS"), ["COUNTS"]),
    ("no-exposure", _map_drop("EXPOSURE"), ["EXPOSURE"]),
    ("not-fits", lambda p: p.write_text("SIMPLE? no"), ["FITS"]),
    ("missing-file", lambda p: p.unlink(), ["file not found"]),
]


def test_good_dl4_reads(dl4: Path) -> None:
    ds = MapDataset.read(dl4, require=("counts", "exposure"))
    assert float(ds.counts.sum()) == 300.0
    assert build_term(TermSpec("map", "d", str(dl4), MODELS)) is not None


@pytest.mark.parametrize("edit, names", [c[1:] for c in MAP_CASES], ids=[c[0] for c in MAP_CASES])
def test_bad_dl4(dl4: Path, edit, names: list[str]) -> None:
    edit(dl4)
    spec = TermSpec("map", "d", str(dl4), MODELS)
    assert_clean_failure(_as_cli(lambda: build_term(spec)), dl4.name, *names)
    read = lambda: MapDataset.read(dl4, require=("counts", "exposure"))  # noqa: E731
    assert_clean_failure(_as_cli(read), dl4.name, *names)


# ------------------------------------------------------------- gdask fit (CLI)

CLI_MODELS = """\
components:
-   name: crab
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   {name: index, value: 2.5}
        -   {name: amplitude, value: 3.0e-11, unit: cm-2 s-1 TeV-1}
        -   {name: reference, value: 1.0, unit: TeV, frozen: true}
    spatial:
        type: PointSpatialModel
        frame: icrs
        parameters:
        -   {name: lon_0, value: 83.63, unit: deg}
        -   {name: lat_0, value: 22.01, unit: deg}
"""


def _fit_cli(tmp_path: Path, files: Path) -> CliResult:
    """``gdask fit`` on a run config whose one analysis fits ``files`` as they are."""
    (tmp_path / "models.yaml").write_text(CLI_MODELS)
    run = tmp_path / "run.yaml"
    run.write_text(
        f"analyses:\n  - name: inst\n    files: [{files}]\n"
        "fit:\n  models: models.yaml\n  mode: in-process\noutput: results\n"
    )
    return run_cli(["fit", run])


@pytest.mark.parametrize(
    "edit, bad, names", [c[1:] for c in OGIP_CASES], ids=[c[0] for c in OGIP_CASES]
)
def test_bad_ogip_through_gdask_fit(tmp_path: Path, ogip: Path, edit, bad: str, names) -> None:
    edit(ogip)
    result = _fit_cli(tmp_path, ogip / PHA)
    assert result.code == 2, result.text
    assert_clean_failure(result, "gdask fit: error:", bad, *names)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("edit, names", [c[1:] for c in MAP_CASES], ids=[c[0] for c in MAP_CASES])
def test_bad_dl4_through_gdask_fit(tmp_path: Path, dl4: Path, edit, names) -> None:
    edit(dl4)
    result = _fit_cli(tmp_path, dl4)
    assert result.code == 2, result.text
    # a missing file is caught by the run config already (its own words: "no such file")
    names = [n for n in names if n != "file not found"]
    assert_clean_failure(result, "gdask fit: error:", dl4.name, *names)
    assert not (tmp_path / "results").exists()

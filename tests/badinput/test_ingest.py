"""Bad-input corpus of ``gdask ingest``: one bad run among good ones (issue 9).

Each case copies two good H.E.S.S. Crab runs and a third run (23559), breaks
the third (or an index row) one way, runs ``gdask ingest`` in-process and
asserts: exit code 1 (2 for bad arguments), one line naming the file, the
OBS_ID and the field, no traceback, and the good runs in the store with
their events exactly as in their files. Cases that break the whole index
(a column of the obs-index) first ingest the good archive and check that the
stored runs are left byte-identical.

All cases share one in-process LocalCluster through ``DASK_SCHEDULER_ADDRESS``
(starting one per ingest would triple the module's runtime).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from gdask.archive import ArchiveStore
from tests.archive.dl3copy import copy_archive, tree_digest
from tests.badinput.conftest import assert_clean_failure, run_cli

pytestmark = pytest.mark.realdata

GOOD = [23523, 23526]
BAD = 23559


def _file(root: Path, obs_id: int = BAD) -> Path:
    return root / "data" / f"hess_dl3_dr1_obs_id_{obs_id:06d}.fits.gz"


def _edit(hdu: str, fn: Callable[[fits.BinTableHDU], None]) -> Callable[[Path], None]:
    """A mutation of the bad run's file: ``fn`` edits one HDU (data or header) in place."""

    def mutate(root: Path) -> None:
        path = _file(root)
        with fits.open(path) as hdul:
            hdul = fits.HDUList([h.copy() for h in hdul])
        fn(hdul[hdu])
        path.unlink()
        with gzip.open(path, "wb") as fh:
            hdul.writeto(fh)

    return mutate


def _set_column(hdu: str, column: str, values) -> Callable[[Path], None]:
    def fn(h):
        data = h.data[column]
        data[...] = values(data) if callable(values) else values

    return _edit(hdu, fn)


def _set_unit(hdu: str, column: str, unit: str) -> Callable[[Path], None]:
    def fn(h):
        h.columns[column].unit = unit

    return _edit(hdu, fn)


def _set_header(hdu: str, **cards) -> Callable[[Path], None]:
    def fn(h):
        for key, value in cards.items():
            h.header[key] = value

    return _edit(hdu, fn)


def _obs_index(edit: Callable[[Table], Table | None]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / "obs-index.fits.gz"
        t = Table.read(path)
        t = edit(t) or t
        t.write(path, overwrite=True)

    return mutate


def _obs_row(column: str, value) -> Callable[[Path], None]:
    def edit(t: Table) -> None:
        t[column][list(t["OBS_ID"]).index(BAD)] = value

    return _obs_index(edit)


def _replace_file(make: Callable[[Path], None]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = _file(root)
        path.unlink()
        make(path)

    return mutate


def _truncate(root: Path) -> None:
    p = _file(root)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _obs_id_string(t: Table) -> Table:
    ids = [str(o) for o in t["OBS_ID"]]
    ids[ids.index(str(BAD))] = "run-23559"
    t.replace_column("OBS_ID", ids)
    return t


def _duplicate(t: Table) -> Table:
    t.add_row(t[list(t["OBS_ID"]).index(BAD)])
    return t


def _ra_pnt_strings(t: Table) -> Table:
    t.replace_column("RA_PNT", [f"{v:.6f}" for v in t["RA_PNT"]])
    return t


def _scramble_edisp(h) -> None:
    """MATRIX values in another axis order than its TDIM says (offset, energy, migra)."""
    m = h.data["MATRIX"][0]  # (offset, migra, energy) in numpy order
    h.data["MATRIX"][0] = np.ascontiguousarray(m.transpose(0, 2, 1)).reshape(m.shape)


def _shift_times(h) -> None:
    h.header["TSTART"] = h.header["TSTART"] + 1e15
    h.header["TSTOP"] = h.header["TSTOP"] + 1e15


def _hdu_class(t_edit: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / "hdu-index.fits.gz"
        t = Table.read(path)
        row = np.flatnonzero((t["OBS_ID"] == BAD) & (np.char.strip(t["HDU_TYPE"]) == "aeff"))[0]
        t["HDU_CLASS"][row] = t_edit
        t.write(path, overwrite=True)

    return mutate


def _drop_column(hdu: str, column: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = _file(root)
        with fits.open(path) as hdul:
            hdul = fits.HDUList([h.copy() for h in hdul])
        t = hdul[hdu]
        cols = [c for c in t.columns if c.name != column]
        hdul[hdu] = fits.BinTableHDU.from_columns(cols, header=t.header)
        path.unlink()
        with gzip.open(path, "wb") as fh:
            hdul.writeto(fh)

    return mutate


def _drop_hdu(name: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = _file(root)
        with fits.open(path) as hdul:
            hdul = fits.HDUList([h.copy() for h in hdul if h.name != name])
        path.unlink()
        with gzip.open(path, "wb") as fh:
            hdul.writeto(fh)

    return mutate


@dataclass
class Case:
    """One bad input: how to break the archive and what the message must name."""

    id: str
    mutate: Callable[[Path], None]
    names: tuple[str, ...]  # besides the file: OBS_ID and field
    file: str = "data"  # "data": the bad run's file; else a name under the archive
    whole_index: bool = False  # every run fails: pre-ingest the good runs, check them intact


def _f(root: Path, case: Case) -> str:
    return _file(root).name if case.file == "data" else case.file


RUN = f"OBS_ID {BAD}"
CASES = [
    # the run's file cannot be read at all
    Case("symlink-loop", _replace_file(lambda p: os.symlink(p.name, p)), (RUN, "symlink loop")),
    # tests run as root (chmod 000 does not stop root): unreadable = a directory or a FIFO
    Case("directory-as-file", _replace_file(lambda p: p.mkdir()), (RUN, "directory")),
    Case("fifo-as-file", _replace_file(os.mkfifo), (RUN, "FIFO")),
    Case("missing-file", _replace_file(lambda p: None), (RUN, "file not found")),
    Case("truncated-gzip", _truncate, (RUN, "truncated")),
    Case("missing-column", _drop_column("EVENTS", "ENERGY"), (RUN, "EVENTS.ENERGY")),
    Case("missing-hdu", _drop_hdu("GTI"), (RUN, "field gti", "not found")),
    Case(
        "unknown-irf-class",
        _hdu_class("aeff_9d"),
        (RUN, "aeff_9d"),
    ),
    # index rows
    Case(
        "obs-id-string",
        _obs_index(_obs_id_string),
        ("'run-23559'", "field OBS_ID"),
        file="obs-index.fits.gz",
    ),
    Case(
        "obs-id-duplicated",
        _obs_index(_duplicate),
        (RUN, "field OBS_ID", "2 times"),
        file="obs-index.fits.gz",
    ),
    Case(
        "ra-pnt-strings",
        _obs_index(_ra_pnt_strings),
        (RUN, "field RA_PNT", "string"),
        file="obs-index.fits.gz",
        whole_index=True,
    ),
    Case(
        "obs-index-livetime-1e300",
        _obs_row("LIVETIME", 1e300),
        (RUN, "field LIVETIME", "inf"),  # a float32 column: 1e300 is stored as inf
        file="obs-index.fits.gz",
    ),
    Case(
        "obs-index-tstop-before-tstart",
        _obs_row("TSTOP", 0.0),
        (RUN, "field TSTOP", "before TSTART"),
        file="obs-index.fits.gz",
    ),
    # physically impossible event lists
    Case("ra-all-nan", _set_column("EVENTS", "RA", np.nan), (RUN, "field EVENTS.RA", "NaN")),
    Case("dec-all-nan", _set_column("EVENTS", "DEC", np.nan), (RUN, "field EVENTS.DEC", "NaN")),
    Case(
        "energy-negative",
        _set_column("EVENTS", "ENERGY", lambda e: np.where(np.arange(e.size) < 10, -e, e)),
        (RUN, "field EVENTS.ENERGY", "negative"),
    ),
    Case(
        "energy-all-nan",
        _set_column("EVENTS", "ENERGY", np.nan),
        (RUN, "field EVENTS.ENERGY", "NaN"),
    ),
    Case(
        "energy-labelled-kev",
        _set_unit("EVENTS", "ENERGY", "keV"),
        (RUN, "field EVENTS.ENERGY", "'keV'", "unit label"),
    ),
    Case(
        "ra-labelled-rad",
        _set_unit("EVENTS", "RA", "rad"),
        (RUN, "field EVENTS.RA", "'rad'", "unit label"),
    ),
    Case(
        "livetime-1e300",
        _set_header("EVENTS", LIVETIME=1e300),
        (RUN, "field EVENTS.LIVETIME", "exceeds ONTIME"),
    ),
    Case("deadc-7", _set_header("EVENTS", DEADC=7.0), (RUN, "field EVENTS.DEADC")),
    Case(
        "dec-pnt-out-of-range",
        _set_header("EVENTS", DEC_PNT=122.0),
        (RUN, "field EVENTS.DEC_PNT", "outside"),
    ),
    Case(
        "absurd-mjdref",
        _set_header("EVENTS", MJDREFI=10**9),
        (RUN, "field EVENTS.MJDREFI", "outside"),
    ),
    Case(
        "absurd-tstart",
        _edit("EVENTS", _shift_times),
        (RUN, "field EVENTS.TSTART", "outside"),
    ),
    # IRFs that cannot be right
    Case("psf-all-nan", _set_column("PSF", "RPSF", np.nan), (RUN, "field PSF.RPSF", "NaN")),
    Case("aeff-all-zero", _set_column("AEFF", "EFFAREA", 0.0), (RUN, "field AEFF.EFFAREA", "zero")),
    Case("bkg-all-zero", _set_column("BKG", "BKG", 0.0), (RUN, "field BKG.BKG", "zero")),
    Case(
        "edisp-all-nan",
        _set_column("EDISP", "MATRIX", np.nan),
        (RUN, "field EDISP.MATRIX", "NaN"),
    ),
    Case(
        "edisp-axes-scrambled",
        _edit("EDISP", _scramble_edisp),
        (RUN, "field EDISP.MATRIX", "integrates to"),
    ),
]


@pytest.fixture(scope="module")
def cluster_address():
    """One in-process LocalCluster for every ingest of the module."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def on_cluster(cluster_address, monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster_address)


def _ingest(root: Path, store: Path):
    return run_cli(["ingest", root, "--store", store, "--no-progress"])


def _assert_good_runs_intact(store_path: Path, root: Path, bad_absent: bool = True) -> None:
    store = ArchiveStore.open(store_path)
    assert set(GOOD) <= set(store.obs_ids()), store.obs_ids()
    assert not bad_absent or BAD not in store.obs_ids()
    for obs_id in GOOD:
        obs = store.open_observation(obs_id, lazy=False)
        with fits.open(_file(root, obs_id)) as hdul:
            ev = hdul["EVENTS"].data
            for col in ("TIME", "ENERGY", "RA"):
                np.testing.assert_array_equal(obs.events.ds[col].values, ev[col])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_run_among_good_ones(case: Case, hess_dir, tmp_path, on_cluster):
    root = copy_archive(hess_dir, tmp_path / "dl3", [*GOOD, BAD])
    store = tmp_path / "s.zarr"
    before = None
    if case.whole_index:
        first = _ingest(root, store)
        assert first.code == 0, first.text
        before = tree_digest(store / "obs")
    file_name = _f(root, case)
    case.mutate(root)
    result = _ingest(root, store)
    assert result.code == 1, result.text
    assert_clean_failure(result, file_name, *case.names)
    line = [ln for ln in result.out.splitlines() if "FAILED" in ln and case.names[0] in ln]
    assert len(line) == 1 and file_name in line[0], result.out
    _assert_good_runs_intact(store, root, bad_absent=not case.whole_index)
    if before is not None:
        assert tree_digest(store / "obs") == before


def test_a_few_nan_events_are_a_warning_not_a_failure(hess_dir, tmp_path, on_cluster):
    """A handful of NaN energies may be legitimate: the run is ingested, the summary warns."""
    root = copy_archive(hess_dir, tmp_path / "dl3", [*GOOD, BAD])
    _set_column("EVENTS", "ENERGY", lambda e: np.where(np.arange(e.size) < 3, np.nan, e))(root)
    result = _ingest(root, tmp_path / "s.zarr")
    assert result.code == 0, result.text
    assert f"WARNING OBS_ID {BAD}: ENERGY of the events: 3 of" in result.out
    assert "field EVENTS.ENERGY" in result.out
    assert ArchiveStore.open(tmp_path / "s.zarr").obs_ids() == sorted([*GOOD, BAD])


@pytest.mark.parametrize(
    "args, names",
    [
        (["--chunk-events", "-5"], ("--chunk-events", "positive integer")),
        (["--chunk-events", "0"], ("--chunk-events", "positive integer")),
    ],
    ids=["chunk-events-negative", "chunk-events-zero"],
)
def test_bad_ingest_arguments(args, names, hess_dir, tmp_path):
    root = copy_archive(hess_dir, tmp_path / "dl3", GOOD[:1])
    result = run_cli(["ingest", root, "--store", tmp_path / "s.zarr", *args])
    assert result.code == 2
    assert_clean_failure(result, *names)
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("command", ["ingest", "info"])
def test_store_path_is_a_file(command, hess_dir, tmp_path):
    path = tmp_path / "store.zarr"
    path.write_text("x")
    args = (
        ["ingest", copy_archive(hess_dir, tmp_path / "dl3", GOOD[:1]), "--store", path]
        if command == "ingest"
        else ["info", path]
    )
    result = run_cli(args)
    assert result.code == 2
    assert_clean_failure(result, str(path), "is a file")
    assert path.read_text() == "x"

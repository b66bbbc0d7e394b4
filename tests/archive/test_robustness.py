"""Bad input and interrupted ingests: each failure is named, nothing else is lost."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from gdask.archive import ArchiveStore, ingest
from gdask.cli import main
from tests.archive.dl3copy import copy_archive, tree_digest

pytestmark = pytest.mark.realdata

RUNS = [23523, 23526, 23559, 23592, 20136, 20137, 20151, 20275]


def _file(root: Path, obs_id: int) -> Path:
    return root / "data" / f"hess_dl3_dr1_obs_id_{obs_id:06d}.fits.gz"


def _rewrite(path: Path, edit) -> None:
    with fits.open(path) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
    hdul = edit(hdul) or hdul
    with gzip.open(path, "wb") as fh:
        hdul.writeto(fh)


def _drop_column(hdul, hdu, column):
    t = hdul[hdu]
    cols = [c for c in t.columns if c.name != column]
    new = fits.BinTableHDU.from_columns(cols, header=t.header)
    hdul[hdu] = new
    return hdul


@pytest.fixture
def broken_archive(hess_dir: Path, tmp_path: Path) -> tuple[Path, dict[int, tuple[str, str]]]:
    """Eight runs, five of them broken in a different way each."""
    root = copy_archive(hess_dir, tmp_path / "dl3", RUNS)
    broken = {}
    # 1. truncated gzip
    p = _file(root, 20136)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    broken[20136] = (p.name, "")
    # 2. missing EVENTS column
    _rewrite(_file(root, 20137), lambda h: _drop_column(h, "EVENTS", "ENERGY"))
    broken[20137] = (_file(root, 20137).name, "ENERGY")

    # 3. wrong unit on the energy column
    def bad_unit(h):
        h["EVENTS"].columns["ENERGY"].unit = "s"

    _rewrite(_file(root, 20151), bad_unit)
    broken[20151] = (_file(root, 20151).name, "ENERGY")
    # 4. a missing HDU (the index still points at GTI)
    _rewrite(_file(root, 20275), lambda h: fits.HDUList([x for x in h if x.name != "GTI"]))
    broken[20275] = (_file(root, 20275).name, "GTI")
    # 5. a missing file
    _file(root, 23592).unlink()
    broken[23592] = (_file(root, 23592).name, "")
    return root, broken


def test_broken_files_are_reported_and_the_rest_ingested(broken_archive, tmp_path, capsys):
    root, broken = broken_archive
    store_path = tmp_path / "s.zarr"
    code = main(
        [
            "ingest",
            str(root),
            "--store",
            str(store_path),
            "--threads",
            "--workers",
            "2",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    store = ArchiveStore.open(store_path)
    good = sorted(set(RUNS) - set(broken))
    assert store.obs_ids() == good
    for obs_id, (fname, field) in broken.items():
        lines = [line for line in out.splitlines() if f"OBS_ID {obs_id}" in line]
        assert len(lines) == 1, out
        assert fname in lines[0], lines[0]
        assert field.lower() in lines[0].lower(), lines[0]
    assert "5 failed" in out and "3 new" in out


def test_failure_does_not_touch_stored_observations(hess_dir, tmp_path):
    root = copy_archive(hess_dir, tmp_path / "dl3", RUNS[:3])
    store_path = tmp_path / "s.zarr"
    assert ingest(root, store_path, progress=False, processes=False).ok
    before = tree_digest(store_path / "obs" / str(RUNS[0]))
    # corrupt the source of a stored run: it is reported, the stored copy stays intact
    p = _file(root, RUNS[0])
    p.write_bytes(p.read_bytes()[:1000])
    s = ingest(root, store_path, progress=False, processes=False)
    assert not s.ok and [r.obs_id for r in s.failed] == [RUNS[0]]
    assert tree_digest(store_path / "obs" / str(RUNS[0])) == before


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_killed_ingest_resumes(hess_dir, tmp_path):
    runs = list(Table.read(hess_dir / "obs-index.fits.gz")["OBS_ID"][:24])
    root = copy_archive(hess_dir, tmp_path / "dl3", runs)
    store_path = tmp_path / "s.zarr"
    cmd = [
        sys.executable,
        "-m",
        "gdask.cli",
        "ingest",
        str(root),
        "--store",
        str(store_path),
        "--threads",
        "--workers",
        "1",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    obs_dir = store_path / "obs"
    deadline = time.time() + 120
    while time.time() < deadline:
        n = len([p for p in obs_dir.iterdir() if p.name.isdigit()]) if obs_dir.is_dir() else 0
        if n >= 3:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    store = ArchiveStore.open(store_path)
    done = store.obs_ids()
    assert 3 <= len(done) < len(runs)
    for obs_id in done:  # every visible observation is complete
        obs = store.open_observation(obs_id)
        with fits.open(_file(root, obs_id)) as hdul:
            np.testing.assert_array_equal(obs.events.ds["TIME"].values, hdul["EVENTS"].data["TIME"])
    assert sorted(int(i) for i in store.index()["obs"].values) == done
    s = ingest(root, store_path, progress=False, processes=False)
    assert s.ok
    assert s.count("unchanged") == len(done)
    assert s.count("ingested") == len(runs) - len(done)
    assert store.obs_ids() == sorted(int(r) for r in runs)
    assert not any((store_path / "_staging").iterdir())

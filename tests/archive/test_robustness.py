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


# -- issue 9: one bad run, index row or disk must not lose the other runs -----------------

GOOD = [23523, 23526]


def _ingest_quiet(root, store_path, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("processes", False)
    kw.setdefault("n_workers", 1)
    return ingest(root, store_path, **kw)


def _assert_good_runs_intact(store_path: Path, root: Path, good) -> None:
    store = ArchiveStore.open(store_path)
    assert set(good) <= set(store.obs_ids())
    for obs_id in good:
        obs = store.open_observation(obs_id)
        with fits.open(_file(root, obs_id)) as hdul:
            np.testing.assert_array_equal(obs.events.ds["TIME"].values, hdul["EVENTS"].data["TIME"])


def test_unreadable_sources_are_reported_and_the_rest_ingested(hess_dir, tmp_path):
    """A symlink loop, a directory and a FIFO in place of a run's file.

    Tests run as root, for whom chmod 000 changes nothing, so unreadability is
    emulated by a directory and a FIFO where the FITS file is expected (before
    the fix the directory aborted the whole ingest with IsADirectoryError and
    the FIFO blocked it forever). The os.access check covers a non-root user.
    """
    root = copy_archive(hess_dir, tmp_path / "dl3", [*GOOD, 23559, 23592, 20136])
    kinds = {23559: "symlink loop", 23592: "directory", 20136: "FIFO"}
    for obs_id in kinds:
        _file(root, obs_id).unlink()
    os.symlink(_file(root, 23559).name, _file(root, 23559))
    _file(root, 23592).mkdir()
    os.mkfifo(_file(root, 20136))
    s = _ingest_quiet(root, tmp_path / "s.zarr")
    assert sorted(r.obs_id for r in s.failed) == sorted(kinds)
    for r in s.failed:
        assert kinds[r.obs_id] in r.error and r.file == str(_file(root, r.obs_id))
    assert s.count("ingested") == 2
    _assert_good_runs_intact(tmp_path / "s.zarr", root, GOOD)


def test_bad_obs_ids_in_the_obs_index_are_reported_and_the_rest_ingested(hess_dir, tmp_path):
    """A non-integer OBS_ID string and a duplicated OBS_ID each lose only their run."""
    root = copy_archive(hess_dir, tmp_path / "dl3", [*GOOD, 23559, 23592])
    path = root / "obs-index.fits.gz"
    t = Table.read(path)
    ids = [str(o) for o in t["OBS_ID"]]
    ids[ids.index("23559")] = "run-23559"
    t.replace_column("OBS_ID", ids)
    t.add_row(t[ids.index("23592")])  # 23592 listed twice
    t.write(path, overwrite=True)
    with pytest.warns(UserWarning):
        s = _ingest_quiet(root, tmp_path / "s.zarr")
    assert not s.ok and len(s.failed) == 2
    text = s.format()
    assert "OBS_ID 'run-23559' is not an integer" in text and "obs-index.fits.gz" in text
    dup = [r for r in s.failed if r.obs_id == 23592]
    assert dup and dup[0].field == "OBS_ID" and "2 times" in dup[0].error
    assert s.count("ingested") == 2
    _assert_good_runs_intact(tmp_path / "s.zarr", root, GOOD)


def test_numeric_obs_id_strings_are_read_as_integers(hess_dir, tmp_path):
    root = copy_archive(hess_dir, tmp_path / "dl3", GOOD)
    path = root / "obs-index.fits.gz"
    t = Table.read(path)
    t.replace_column("OBS_ID", [str(o) for o in t["OBS_ID"]])
    t.write(path, overwrite=True)
    with pytest.warns(UserWarning, match="read as integers"):
        s = _ingest_quiet(root, tmp_path / "s.zarr")
    assert s.ok and s.count("ingested") == 2
    _assert_good_runs_intact(tmp_path / "s.zarr", root, GOOD)


def test_full_disk_reports_the_failed_runs_and_leaves_a_valid_store(
    hess_dir, tmp_path, monkeypatch
):
    """ENOSPC injected at the zarr write layer (gdask.zarrio.write_dataset) after some writes.

    A real small tmpfs needs mount privileges CI may not have; the injection
    raises exactly what a full disk raises, OSError(errno.ENOSPC), from the
    writer every store file goes through.
    """
    import errno

    import gdask.zarrio

    root = copy_archive(hess_dir, tmp_path / "dl3", [*GOOD, 23559, 23592])
    store_path = tmp_path / "s.zarr"
    assert _ingest_quiet(root, store_path, obs_ids=GOOD).ok
    before = tree_digest(store_path / "obs")
    real = gdask.zarrio.write_dataset
    calls = {"n": 0}

    def filling(ds, path, **kw):
        calls["n"] += 1
        if calls["n"] > 3:  # the first run's events, gti and aeff fit; then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(ds, path, **kw)

    monkeypatch.setattr(gdask.zarrio, "write_dataset", filling)
    code = main(["ingest", str(root), "--store", str(store_path), "--threads", "--no-progress"])
    assert code == 1
    monkeypatch.setattr(gdask.zarrio, "write_dataset", real)
    store = ArchiveStore.open(store_path)
    assert store.obs_ids() == GOOD  # nothing half-written became visible
    assert tree_digest(store_path / "obs") == before
    assert not any((store_path / "_staging").iterdir())
    # the store still reads, and the next ingest (disk freed) completes it
    assert sorted(int(i) for i in store.index()["obs"].values) == GOOD
    s = _ingest_quiet(root, store_path)
    assert s.ok and s.count("ingested") == 2 and s.count("unchanged") == 2


def test_full_disk_summary_names_the_runs_without_traceback(
    hess_dir, tmp_path, monkeypatch, capsys
):
    import errno

    import gdask.zarrio

    root = copy_archive(hess_dir, tmp_path / "dl3", GOOD)

    def full(ds, path, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(gdask.zarrio, "write_dataset", full)
    code = main(
        ["ingest", str(root), "--store", str(tmp_path / "s.zarr"), "--threads", "--no-progress"]
    )
    out = capsys.readouterr()
    assert code == 1 and "Traceback" not in out.out + out.err
    for obs_id in GOOD:
        assert f"FAILED OBS_ID {obs_id}: cannot write the store: No space left on device" in out.out
    assert "STORE ERROR: the store index was not rewritten (No space left on device)" in out.out
    assert not any((tmp_path / "s.zarr" / "_staging").iterdir())


@pytest.mark.parametrize("value", ["-5", "0", "many"])
def test_chunk_events_must_be_positive(hess_dir, tmp_path, value, capsys):
    root = copy_archive(hess_dir, tmp_path / "dl3", GOOD[:1])
    with pytest.raises(SystemExit) as exc:
        main(["ingest", str(root), "--store", str(tmp_path / "s.zarr"), "--chunk-events", value])
    assert exc.value.code == 2
    assert "--chunk-events: must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "s.zarr").exists()
    from gdask.errors import ConfigError

    with pytest.raises(ConfigError, match="chunk_events must be a positive integer"):
        ingest(root, tmp_path / "s.zarr", chunk_events=0)


@pytest.mark.parametrize("command", ["ingest", "info"])
def test_store_path_that_is_a_file(hess_dir, tmp_path, command, capsys):
    root = copy_archive(hess_dir, tmp_path / "dl3", GOOD[:1])
    path = tmp_path / "store.zarr"
    path.write_text("not a store")
    args = (
        ["ingest", str(root), "--store", str(path), "--threads", "--no-progress"]
        if command == "ingest"
        else ["info", str(path)]
    )
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"gdask {command}: error: the store path is a file" in err and str(path) in err
    assert path.read_text() == "not a store"


def test_info_into_a_closed_pipe_has_no_traceback(hess_dir, tmp_path):
    """``gdask info STORE | head``: the reader is gone before gdask writes (a real pipe)."""
    root = copy_archive(hess_dir, tmp_path / "dl3", GOOD)
    assert _ingest_quiet(root, tmp_path / "s.zarr").ok
    env = dict(os.environ)
    env["PYTHONPATH"] = (
        str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    )
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `head` having exited before the first line
    proc = subprocess.run(
        [sys.executable, "-m", "gdask.cli", "info", str(tmp_path / "s.zarr")],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=120,
    )
    os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 141


def test_a_failed_write_frees_its_staging_space_at_once(hess_dir, tmp_path, monkeypatch):
    """ENOSPC in the middle of a run's write (injected at gdask.zarrio.write_dataset).

    Its partial staging folder must go before anything else is written (the
    index), else it holds the space the index needs (seen on a real 2 MB tmpfs).
    """
    import errno

    import gdask.zarrio
    from gdask.archive.ingest import ingest_one, plan_ingest
    from gdask.dl3 import DL3Index

    root = copy_archive(hess_dir, tmp_path / "dl3", GOOD[:1])
    store = ArchiveStore.create(tmp_path / "s.zarr")
    index = DL3Index.read(root)
    (plan,) = plan_ingest(index, store)
    real = gdask.zarrio.write_dataset
    calls = {"n": 0}

    def filling(ds, path, **kw):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(ds, path, **kw)

    monkeypatch.setattr(gdask.zarrio, "write_dataset", filling)
    report = ingest_one(index, GOOD[0], str(store.path), plan.sources, False, plan.index_entry)
    assert report.status == "failed" and "No space left on device" in report.error
    assert calls["n"] == 3 and list((store.path / "_staging").iterdir()) == []


def test_full_disk_when_creating_the_store_is_one_line(hess_dir, tmp_path, monkeypatch, capsys):
    """ENOSPC injected where the store's metadata is written (gdask.archive.store)."""
    import errno

    import gdask.archive.store

    root = copy_archive(hess_dir, tmp_path / "dl3", GOOD[:1])

    def full(group_dir, attrs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(group_dir / "zarr.json"))

    monkeypatch.setattr(gdask.archive.store, "_write_group_json", full)
    code = main(["ingest", str(root), "--store", str(tmp_path / "s.zarr"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "gdask ingest: error: cannot write the store: No space left on device" in err
    assert str(tmp_path / "s.zarr") in err


def test_selecting_a_rejected_obs_id_reports_it(hess_dir, tmp_path):
    """--obs-id naming a duplicated OBS_ID: that run is reported, the others selected ingest."""
    root = copy_archive(hess_dir, tmp_path / "dl3", [*GOOD, 23559])
    path = root / "obs-index.fits.gz"
    t = Table.read(path)
    t.add_row(t[list(t["OBS_ID"]).index(23559)])
    t.write(path, overwrite=True)
    with pytest.warns(UserWarning, match="2 times"):
        s = _ingest_quiet(root, tmp_path / "s.zarr", obs_ids=[GOOD[0], 23559])
    assert [r.obs_id for r in s.failed] == [23559] and s.count("ingested") == 1
    assert ArchiveStore.open(tmp_path / "s.zarr").obs_ids() == [GOOD[0]]


def test_cli_warnings_are_one_line(hess_dir, tmp_path, capsys):
    """Index warnings reach the user as ``gdask ingest: warning: ...``, not as source lines."""
    root = copy_archive(hess_dir, tmp_path / "dl3", [*GOOD, 23559])
    path = root / "obs-index.fits.gz"
    t = Table.read(path)
    t.add_row(t[list(t["OBS_ID"]).index(23559)])
    t.write(path, overwrite=True)
    code = main(
        ["ingest", str(root), "--store", str(tmp_path / "s.zarr"), "--threads", "--no-progress"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "gdask ingest: warning: DL3 index: obs-index lists OBS_ID 23559 2 times" in err
    assert "UserWarning" not in err and "DL3Index.read(" not in err

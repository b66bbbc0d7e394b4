"""Ingest of real DL3 data into the archive store: exactness, idempotency, increments."""

from __future__ import annotations

import shutil
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from astropy.io import fits

from gdask.archive import ArchiveStore, ingest
from tests.archive.dl3copy import CRAB_RUNS, copy_archive, tree_digest

pytestmark = pytest.mark.realdata


def _ingest(src, store, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("processes", False)
    kw.setdefault("n_workers", 2)
    return ingest(src, store, **kw)


def test_ingest_events_and_irfs_exact(crab_archive: Path, tmp_path: Path):
    store_path = tmp_path / "s.zarr"
    summary = _ingest(crab_archive, store_path)
    assert summary.ok, summary.format()
    assert summary.count("ingested") == 4
    store = ArchiveStore.open(store_path)
    assert store.obs_ids() == CRAB_RUNS
    for obs_id in CRAB_RUNS:
        path = crab_archive / "data" / f"hess_dl3_dr1_obs_id_{obs_id:06d}.fits.gz"
        obs = store.open_observation(obs_id)
        with fits.open(path) as hdul:
            ev = hdul["EVENTS"].data
            assert obs.events.n_events == len(ev)
            for col in ev.columns.names:
                stored = obs.events.ds[col]
                assert isinstance(stored.data, da.Array)  # lazy
                np.testing.assert_array_equal(stored.values, ev[col])
            gti = hdul["GTI"].data
            np.testing.assert_array_equal(obs.gti.ds["START"].values, gti["START"])
            # IRF values at the grid nodes are exact
            aeff = hdul["AEFF"].data["EFFAREA"][0]
            stored_aeff = obs.irfs["aeff"].ds["effective_area"].transpose("offset", "energy_true")
            np.testing.assert_array_equal(stored_aeff.values, aeff)
        assert set(obs.irfs) == {"aeff", "edisp", "psf", "bkg"}


def test_reingest_unchanged_and_identical(crab_archive: Path, tmp_path: Path):
    store_path = tmp_path / "s.zarr"
    assert _ingest(crab_archive, store_path).ok
    before = tree_digest(store_path)
    again = _ingest(crab_archive, store_path)
    assert again.ok and again.count("unchanged") == 4 and again.count("ingested") == 0
    assert tree_digest(store_path) == before
    # a second store built from the same archive is byte-identical too
    other = tmp_path / "t.zarr"
    assert _ingest(crab_archive, other).ok
    assert tree_digest(other) == before


def test_append_and_replace(hess_dir: Path, tmp_path: Path):
    src = copy_archive(hess_dir, tmp_path / "dl3", CRAB_RUNS[:2])
    store_path = tmp_path / "s.zarr"
    assert _ingest(src, store_path).count("ingested") == 2
    # the archive grows by two runs: only they are read
    src = copy_archive(hess_dir, tmp_path / "dl3", CRAB_RUNS)
    s = _ingest(src, store_path)
    assert (s.count("unchanged"), s.count("ingested")) == (2, 2)
    # a run's file changes (one event energy edited): it alone is replaced
    path = src / "data" / f"hess_dl3_dr1_obs_id_{CRAB_RUNS[0]:06d}.fits.gz"
    with fits.open(path) as hdul:
        hdul["EVENTS"].data["ENERGY"][0] = 42.0
        hdul.writeto(path.with_suffix(".tmp.gz"), overwrite=True)
    shutil.move(path.with_suffix(".tmp.gz"), path)
    s = _ingest(src, store_path)
    assert (s.count("replaced"), s.count("unchanged")) == (1, 3)
    obs = ArchiveStore.open(store_path).open_observation(CRAB_RUNS[0])
    assert float(obs.events.ds["ENERGY"].values[0]) == pytest.approx(42.0)
    assert ArchiveStore.open(store_path).index_is_current()


def test_touched_file_with_same_content_is_unchanged(crab_archive: Path, tmp_path: Path):
    import os

    store_path = tmp_path / "s.zarr"
    assert _ingest(crab_archive, store_path).ok
    before = tree_digest(store_path)
    path = crab_archive / "data" / f"hess_dl3_dr1_obs_id_{CRAB_RUNS[1]:06d}.fits.gz"
    os.utime(path, ns=(1, 1))
    s = _ingest(crab_archive, store_path)
    assert s.count("unchanged") == 4
    assert tree_digest(store_path) == before


def test_index_table_and_selection(crab_archive: Path, tmp_path: Path):
    store_path = tmp_path / "s.zarr"
    _ingest(crab_archive, store_path)
    store = ArchiveStore.open(store_path)
    index = store.index()
    assert list(index["obs"].values) == CRAB_RUNS
    assert np.allclose(index["RA_PNT"].values[:2], [83.633333, 83.633333], atol=1e-4)
    rec = store.record(CRAB_RUNS[0])
    src = rec.sources[0]
    assert len(src["sha256"]) == 64 and src["size"] > 0
    assert rec.attrs["provenance"]["gdask_version"]


def test_ingest_through_a_given_scheduler(crab_archive: Path, tmp_path: Path, monkeypatch):
    """--scheduler ADDRESS and DASK_SCHEDULER_ADDRESS reach an existing cluster unchanged."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        a = ingest(
            crab_archive, tmp_path / "a.zarr", scheduler=cluster.scheduler_address, progress=False
        )
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        b = ingest(crab_archive, tmp_path / "b.zarr", progress=False)
        # the tasks ran on that cluster's workers
        assert cluster.scheduler.task_groups or cluster.scheduler.total_occupancy >= 0
    assert a.ok and b.ok and a.count("ingested") == b.count("ingested") == 4
    assert tree_digest(tmp_path / "a.zarr") == tree_digest(tmp_path / "b.zarr")


@pytest.mark.parametrize(
    "folder, n_obs",
    [
        ("joint-crab/dl3/hess", 4),
        ("joint-crab/dl3/magic", 2),
        ("joint-crab/dl3/veritas", 2),
        ("joint-crab/dl3/fact", 12),  # 12 of the 125 runs sharing one IRF file
        ("magic/rad_max/data", 2),  # point-like, energy-dependent RAD_MAX
        ("veritas/crab-point-like-ED", 4),  # point-like
    ],
)
def test_other_instruments_ingest_exactly(data_dir: Path, tmp_path: Path, folder: str, n_obs: int):
    from gdask.dl3 import DL3Index

    index = DL3Index.read(data_dir / folder)
    ids = index.obs_ids[:n_obs]
    summary = _ingest(data_dir / folder, tmp_path / "s.zarr", obs_ids=ids)
    assert summary.ok and summary.count("ingested") == n_obs, summary.format()
    store = ArchiveStore.open(tmp_path / "s.zarr")
    assert store.obs_ids() == sorted(ids)
    for obs_id in ids[:2]:
        loc = index.hdu_location(obs_id, "events")
        obs = store.open_observation(obs_id)
        with fits.open(loc.path) as hdul:
            ev = hdul[loc.hdu_name].data
            for col in ev.columns.names:
                np.testing.assert_array_equal(obs.events.ds[col].values, ev[col])
        for hdu_type, irf in obs.irfs.items():
            loc = index.hdu_location(obs_id, hdu_type)
            with fits.open(loc.path) as hdul:
                assert irf.hdu_class == loc.hdu_class
                # grid nodes exact: the stored table round-trips to the file's columns
                back = irf.to_hdu()
                for col in hdul[loc.hdu_name].columns.names:
                    np.testing.assert_array_equal(back.data[col], hdul[loc.hdu_name].data[col])

"""Simulated archives: written, read back by gdask.dl3 (and Gammapy), ingested; real IRFs; the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from gdask.cli import main
from gdask.dl3 import DL3Index, read_observation
from gdask.models import Models, PointSpatialModel, PowerLawSpectralModel, SkyModel
from gdask.simulate import (
    CRAB_POSITION,
    expected_counts,
    response_from_archive,
    sample_source_events,
    simulate_archive,
    wobble_runs,
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    summary = simulate_archive(out, n_runs=2, seed=1, livetime=600.0)
    return out, summary


def test_archive_reads_back(archive):
    out, summary = archive
    assert set(summary.archives) == {"hess-like", "magic-like", "cta-like"}
    expected_types = {
        "hess-like": {"events", "gti", "aeff", "edisp", "psf", "bkg"},
        "magic-like": {"events", "gti", "aeff", "edisp", "bkg", "rad_max"},
        "cta-like": {"events", "gti", "aeff", "edisp", "psf", "bkg"},
    }
    for name, path in summary.archives.items():
        index = DL3Index.read(path)
        assert index.obs_ids == summary.obs_ids[name]
        n = 0
        for obs_id in index.obs_ids:
            obs = read_observation(index, obs_id)
            assert set(obs.hdu_types) == expected_types[name]
            assert obs.gti.time_sum == pytest.approx(600.0)
            assert abs(obs.events.header["LIVETIME"] - 600.0 * obs.events.header["DEADC"]) < 1e-6
            ra, dec = obs.events.pointing
            assert (
                0.3
                < np.hypot(
                    (ra - CRAB_POSITION[0]) * np.cos(np.radians(dec)), dec - CRAB_POSITION[1]
                )
                < 0.8
            )
            n += obs.events.n_events
        assert n == summary.n_events[name]
    assert Models.read(summary.models_file)[0].name == "crab-sim"
    magic = read_observation(
        DL3Index.read(summary.archives["magic-like"]), summary.obs_ids["magic-like"][0]
    )
    assert magic.irfs["aeff"].point_like and magic.irfs["rad_max"].hdu_class == "rad_max_2d"


def test_archive_is_deterministic(archive, tmp_path):
    out, summary = archive
    again = simulate_archive(tmp_path, instruments=["hess-like"], n_runs=2, seed=1, livetime=600.0)
    a = read_observation(DL3Index.read(summary.archives["hess-like"]), 100001).events.ds
    b = read_observation(DL3Index.read(again.archives["hess-like"]), 100001).events.ds
    for col in ("TIME", "RA", "DEC", "ENERGY"):
        np.testing.assert_array_equal(a[col].values, b[col].values)


def test_ingest_accepts_archive(archive, tmp_path):
    out, summary = archive
    rc = main(
        [
            "ingest",
            str(summary.archives["hess-like"]),
            "--store",
            str(tmp_path / "s.zarr"),
            "--threads",
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    assert rc == 0
    from gdask.archive.store import ArchiveStore

    records = ArchiveStore.open(tmp_path / "s.zarr").records()
    assert sorted(records) == summary.obs_ids["hess-like"]


def test_gammapy_reads_archive(archive):
    """Oracle: Gammapy 2.1 reads the simulated files (events, GTI and every IRF)."""
    import gammapy.data as gammapy_data

    out, summary = archive
    for name, path in summary.archives.items():
        store = gammapy_data.DataStore.from_dir(path)
        required = "point-like" if name == "magic-like" else "full-enclosure"
        obs = store.obs(summary.obs_ids[name][0], required_irf=required)
        assert len(obs.events.table) > 0
        assert obs.aeff is not None and obs.edisp is not None
        if name == "magic-like":
            assert obs.rad_max is not None
        else:
            assert obs.psf is not None and obs.bkg is not None


def test_real_irfs_from_hess_dr1(hess_dir):
    r = response_from_archive(hess_dir, 23523)
    assert r.psf is not None and r.bkg is not None
    run = wobble_runs(1, CRAB_POSITION, wobble=0.5, ontime=1200.0, deadc=r.meta["deadc"])[0]
    model = SkyModel(
        PowerLawSpectralModel(index=2.5, amplitude="5e-11 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0=f"{CRAB_POSITION[0]} deg", lat_0=f"{CRAB_POSITION[1]} deg"),
    )
    exp = expected_counts(r, [model], run)
    totals = [
        sample_source_events(np.random.default_rng(s), model, r, run)["ENERGY_TRUE"].size
        for s in range(5)
    ]
    assert abs(np.mean(totals) - exp["source"][0]) < 4 * np.sqrt(exp["source"][0] / 5)
    assert exp["background"] > 100


def test_cli_simulate_with_model(tmp_path):
    model = SkyModel(
        PowerLawSpectralModel(index=2.2, amplitude="2e-11 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0="184.55 deg", lat_0="-5.78 deg"),
        name="other",
    )
    Models([model]).write(tmp_path / "m.yaml")
    rc = main(
        [
            "simulate",
            "--out",
            str(tmp_path / "out"),
            "--instruments",
            "magic-like",
            "--runs",
            "1",
            "--seed",
            "2",
            "--model",
            str(tmp_path / "m.yaml"),
            "--livetime",
            "300",
        ]
    )
    assert rc == 0
    index = DL3Index.read(tmp_path / "out" / "magic-like")
    obs = read_observation(index, index.obs_ids[0])
    ra, dec = obs.events.pointing
    assert abs(dec - (-5.78)) < 0.5 and obs.events.header["OBJECT"] == "other"

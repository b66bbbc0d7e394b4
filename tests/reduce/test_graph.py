"""The reduction graph: `gdask ingest` + `gdask reduce` on a LocalCluster equal the makers called directly."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from gdask.archive.ingest import ingest
from gdask.archive.store import ArchiveStore
from gdask.cli import main
from gdask.config import AnalysisConfig
from gdask.datasets import DatasetStore, MapDataset, SpectrumDatasetOnOff
from gdask.errors import SelectionError
from gdask.geometry import EnergyAxis, WcsGeom
from gdask.reduce.convert import to_map_dataset, to_spectrum_dataset
from gdask.reduce.graph import plan_reduction, reduce
from gdask.reduce.maps import make_map_dataset
from gdask.reduce.reflected import make_exclusion_mask, read_exclusion_mask
from gdask.reduce.spectrum import make_spectrum_onoff
from gdask.reduce.stack import stack_all

pytestmark = pytest.mark.realdata

RUNS = [23523, 23526, 23559, 23592]
EXCL = "icrs;circle(83.633,22.014,0.3)"

CFG_3D = {
    "observations": {"store": None, "obs_ids": RUNS},
    "datasets": {
        "type": "3d",
        "geom": {
            "wcs": {
                "skydir": {"lon": 83.633, "lat": 22.014},
                "width": 3,
                "binsz": 0.02,
                "proj": "CAR",
                "binsz_irf": 0.2,
            },
            "axes": {
                "energy": {"min": 0.7, "max": 10, "nbin": 10},
                "energy_true": {"min": 0.5, "max": 20, "nbin": 20},
            },
        },
    },
    "makers": {
        "offset_max": 2.5,
        "safe_mask": {"methods": ["offset-max", "aeff-default"]},
        "background": {"method": "fov", "fov_method": "scale", "exclusion": {"regions": [EXCL]}},
    },
    "output": {"store": None, "overwrite": True},
}


def _cfg(tmp: Path, base: dict, archive: Path, out: str, **changes) -> AnalysisConfig:
    d = copy.deepcopy(base)
    d["observations"]["store"] = str(archive)
    d["output"]["store"] = str(tmp / out)
    for path, value in changes.items():
        node = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return AnalysisConfig.from_dict(d, tmp)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def archive(hess_dir, tmp_path_factory, client):
    path = tmp_path_factory.mktemp("graph") / "archive.zarr"
    assert ingest(hess_dir, path, client=client, obs_ids=RUNS, progress=False).ok
    return path


def _assert_equal_datasets(a, b):
    da, db = a.to_dataset(), b.to_dataset()
    assert sorted(da.data_vars) == sorted(db.data_vars)
    for k in da.data_vars:
        np.testing.assert_array_equal(np.asarray(da[k].values), np.asarray(db[k].values), err_msg=k)
    assert a.meta == b.meta


def test_cli_ingest_and_reduce_equal_direct_makers(hess_dir, tmp_path):
    """The 3D acceptance configuration through the two commands; per-run datasets equal the makers'."""
    store = tmp_path / "archive.zarr"
    assert (
        main(
            [
                "ingest",
                str(hess_dir),
                "--store",
                str(store),
                "--obs-id",
                *map(str, RUNS),
                "--workers",
                "2",
                "--threads",
                "--no-progress",
            ]
        )
        == 0
    )
    d = copy.deepcopy(CFG_3D)
    d["observations"]["store"] = "archive.zarr"  # relative to the config file
    d["output"]["store"] = "datasets.zarr"
    (tmp_path / "analysis.yaml").write_text(yaml.safe_dump(d))
    assert (
        main(
            [
                "reduce",
                str(tmp_path / "analysis.yaml"),
                "--workers",
                "2",
                "--threads",
                "--no-progress",
            ]
        )
        == 0
    )
    out = DatasetStore(tmp_path / "datasets.zarr")
    assert out.names() == [str(i) for i in RUNS]
    geom = WcsGeom.create(
        skydir=(83.633, 22.014), binsz=0.02, width=(3, 3), frame="icrs", proj="CAR"
    )
    e, et = (
        EnergyAxis.from_bounds(0.7, 10, 10),
        EnergyAxis.from_bounds(0.5, 20, 20, name="energy_true"),
    )
    exclusion = make_exclusion_mask(geom, EXCL).values
    arch = ArchiveStore.open(store)
    for obs_id in RUNS:
        obs = arch.open_observation(obs_id)
        direct = make_map_dataset(
            obs,
            geom,
            e,
            et,
            0.2,
            safe_mask=("offset-max", "aeff-default"),
            offset_max=2.5,
            fov_background="scale",
            exclusion_mask=exclusion,
        )
        ref = to_map_dataset(direct, gti=obs.gti)
        got = out.read(str(obs_id), lazy=False)
        assert isinstance(got, MapDataset)
        _assert_equal_datasets(got, ref)
        np.testing.assert_array_equal(got.exposure.values, direct["exposure"].values * 1e4)
        assert got.meta["bkg_norm"] == direct.attrs["bkg_norm"]
        assert got.mask_safe.values.any()


def test_stacking_is_a_tree_equal_to_sequential(archive, client, tmp_path):
    cfg = _cfg(
        tmp_path,
        CFG_3D,
        archive,
        "stacked.zarr",
        datasets__stack=True,
        output__per_run=True,
        datasets__geom__wcs__binsz=0.05,
    )
    summary = reduce(cfg, client=client, progress=False)
    assert summary.ok and summary.stacked == "stacked"
    store = DatasetStore(cfg.output.store)
    assert store.names() == sorted([*map(str, RUNS), "stacked"])
    stacked = store.read("stacked", lazy=False)
    seq = stack_all([store.read(str(i), lazy=False) for i in RUNS])
    for k in ("counts", "background", "exposure", "mask_safe", "psf", "edisp"):
        np.testing.assert_allclose(
            stacked.ds[k].values, seq.ds[k].values, rtol=1e-12, atol=0, err_msg=k
        )
    assert sorted(stacked.meta["obs_ids"]) == RUNS


def test_cutouts_stacked_into_the_parent(archive, client, tmp_path):
    cfg = _cfg(
        tmp_path,
        CFG_3D,
        archive,
        "cut.zarr",
        datasets__stack=True,
        output__per_run=True,
        datasets__geom__wcs__binsz=0.05,
        datasets__geom__wcs__width=5,
        datasets__geom__cutout={"width": 2.0},
        makers__selection=["counts", "exposure", "background"],
    )
    summary = reduce(cfg, client=client, progress=False, keep=True)
    assert summary.ok
    run = summary.datasets["23523"]
    assert run.geom.npix == (40, 40)
    stacked = summary.datasets["stacked"]
    assert stacked.geom.npix == (100, 100)
    total = sum(
        float(
            summary.datasets[str(i)].counts.values[summary.datasets[str(i)].mask_safe.values].sum()
        )
        for i in RUNS
    )
    assert float(stacked.counts.values.sum()) == total


def test_spectrum_1d_equal_direct_makers(archive, client, data_dir, tmp_path):
    excl = data_dir / "joint-crab" / "exclusion" / "exclusion_mask_crab.fits.gz"
    d = {
        "observations": {"store": str(archive)},
        "datasets": {
            "type": "1d",
            "on_region": {"lon": 83.633, "lat": 22.014, "radius": 0.11},
            "containment_correction": True,
            "geom": {
                "axes": {
                    "energy": {"min": 0.7, "max": 30, "nbin": 12},
                    "energy_true": {"min": 0.3, "max": 60, "nbin": 25},
                }
            },
        },
        "makers": {
            "safe_mask": {"methods": ["aeff-max"], "aeff_percent": 10},
            "background": {"method": "reflected", "exclusion": {"file": str(excl)}},
        },
        "output": {"store": str(tmp_path / "spec.zarr"), "fits": str(tmp_path / "ogip")},
    }
    cfg = AnalysisConfig.from_dict(d, tmp_path)
    summary = reduce(cfg, client=client, progress=False)
    assert summary.ok and summary.count("done") == 4
    arch = ArchiveStore.open(archive)
    for obs_id in RUNS:
        obs = arch.open_observation(obs_id)
        direct = make_spectrum_onoff(
            obs,
            cfg.datasets.on_region.to_region(),
            cfg.datasets.geom.energy.to_axis(),
            cfg.datasets.geom.energy_true.to_axis("energy_true"),
            exclusion_mask=read_exclusion_mask(excl),
            containment_correction=True,
            safe_mask_methods=("aeff-max",),
            aeff_percent=10,
        )
        got = DatasetStore(cfg.output.store).read(str(obs_id), lazy=False)
        assert isinstance(got, SpectrumDatasetOnOff)
        ref = to_spectrum_dataset(direct, gti=obs.gti)
        for k in (
            "counts",
            "counts_off",
            "acceptance",
            "acceptance_off",
            "edisp",
            "mask_safe",
            "edisp_exposure",
        ):
            np.testing.assert_array_equal(got.ds[k].values, ref.ds[k].values, err_msg=k)
        np.testing.assert_allclose(got.exposure.values, direct["exposure"].values * 1e4, rtol=1e-15)
        assert got.livetime == float(direct["livetime"]) and got.meta["n_off_regions"] > 0
        assert (tmp_path / "ogip" / f"pha_obs{obs_id}.fits").exists()


def test_selection_errors(archive, tmp_path):
    with pytest.raises(SelectionError, match="OBS_IDs not in the archive store: \\[1\\]"):
        plan_reduction(_cfg(tmp_path, CFG_3D, archive, "x.zarr", observations__obs_ids=[23523, 1]))
    with pytest.raises(SelectionError, match="the selection matches none of the 4 observations"):
        plan_reduction(
            _cfg(
                tmp_path,
                CFG_3D,
                archive,
                "x.zarr",
                observations__obs_ids=None,
                observations__columns={"ZEN_PNT": [80, 90]},
            )
        )
    with pytest.raises(SelectionError, match="does not overlap any of the 4 selected observations"):
        plan_reduction(
            _cfg(
                tmp_path,
                CFG_3D,
                archive,
                "x.zarr",
                datasets__geom__wcs__skydir={"lon": 270, "lat": -30},
            )
        )
    spec, todo, skipped = plan_reduction(
        _cfg(
            tmp_path,
            CFG_3D,
            archive,
            "x.zarr",
            observations__obs_ids=None,
            observations__cone={"lon": 83.633, "lat": 22.014, "radius": 0.6},
            observations__time={"start": "2004-12-04", "stop": 53344.0},
        )
    )
    assert todo == [23523, 23526] and not skipped


def test_missing_irf_and_bad_run_name_the_obs_id(archive, client, tmp_path):
    broken = tmp_path / "broken.zarr"
    shutil.copytree(archive, broken)
    # 23526 loses its PSF; 23559 loses the ENERGY column of its events
    obs = broken / "obs" / "23526"
    shutil.rmtree(obs / "irf" / "psf")
    meta = json.loads((obs / "zarr.json").read_text())
    del meta["attributes"]["irf_classes"]["psf"]
    (obs / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(SelectionError) as info:
        plan_reduction(_cfg(tmp_path, CFG_3D, broken, "x.zarr"))
    assert info.value.obs_id == 23526 and "no psf IRF" in str(info.value)
    cfg = _cfg(
        tmp_path,
        CFG_3D,
        broken,
        "y.zarr",
        observations__obs_ids=[23523, 23559],
        datasets__geom__wcs__binsz=0.1,
    )
    shutil.rmtree(broken / "obs" / "23559" / "events" / "ENERGY")
    summary = reduce(cfg, client=client, progress=False)
    assert not summary.ok
    (bad,) = summary.failed
    assert bad.obs_id == 23559 and "OBS_ID 23559" in summary.format()
    assert DatasetStore(cfg.output.store).names() == ["23523"]


def test_run_without_off_region_is_skipped_with_the_reason(archive, client, tmp_path):
    """An ON region on run 23523's pointing leaves the reflected finder nothing for that run:
    it is reported skipped (not "reduced" and fully masked), not written, not stacked."""
    d = {
        "observations": {"store": str(archive)},
        "datasets": {
            "type": "1d",
            "stack": True,
            "on_region": {"lon": 83.63333, "lat": 21.514444, "radius": 0.11},
            "geom": {
                "axes": {
                    "energy": {"min": 0.7, "max": 30, "nbin": 6},
                    "energy_true": {"min": 0.3, "max": 60, "nbin": 12},
                }
            },
        },
        "makers": {"safe_mask": {"methods": ["aeff-max"]}, "background": {"method": "reflected"}},
        "output": {"store": str(tmp_path / "spec.zarr"), "per_run": True},
    }
    cfg = AnalysisConfig.from_dict(d, tmp_path)
    summary = reduce(cfg, client=client, progress=False, keep=True)
    status = {r.obs_id: r.status for r in summary.reports}
    assert status == {23523: "skipped", 23526: "done", 23559: "done", 23592: "done"}
    (skip,) = [r for r in summary.reports if r.status == "skipped"]
    assert "no OFF region" in skip.error and skip.field == "makers.background"
    assert "SKIPPED OBS_ID 23523: no OFF region" in summary.format()
    assert "3 runs reduced, 1 skipped, 0 failed" in summary.format()
    assert sorted(DatasetStore(cfg.output.store).names()) == ["23526", "23559", "23592", "stacked"]
    assert summary.datasets["stacked"].meta["obs_ids"] == [23526, 23559, 23592]

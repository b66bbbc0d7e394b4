"""Bad-input corpus: damaged dataset stores, cluster arguments and config bounds.

Damaged stores are fitted with ``gdask fit --mode in-process``: the fit must
stop with one line naming the store, the dataset and the array, leave the
store as it was, and the other datasets of the store must still read.
The cluster and config cases must fail before any work starts.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from gdask.datasets import DatasetStore, SpectrumDatasetOnOff
from gdask.geometry import EnergyAxis
from gdask.models import Models, PowerLawSpectralModel, SkyModel
from tests.badinput.conftest import assert_clean_failure, run_cli, run_cli_subprocess

NAMES = ("run1", "run2", "run3")
DAMAGED = "run2"


def _spectrum(name: str, seed: int) -> SpectrumDatasetOnOff:
    e = EnergyAxis.from_bounds(0.5, 20, 6)
    et = EnergyAxis.from_bounds(0.3, 40, 12, name="energy_true")
    rng = np.random.default_rng(seed)
    edisp = rng.random((12, 6))
    edisp /= edisp.sum(axis=1, keepdims=True)
    return SpectrumDatasetOnOff(
        e,
        et,
        counts=rng.poisson(50, 6).astype(np.int32),
        counts_off=rng.poisson(100, 6).astype(np.int32),
        acceptance=np.ones(6),
        acceptance_off=np.full(6, 5.0),
        exposure=np.full(12, 1e9),
        edisp=edisp,
        mask_safe=np.ones(6, bool),
        livetime=1800.0,
        name=name,
    )


def _config(folder: Path, **output) -> dict:
    return {
        "observations": {"store": "archive.zarr"},
        "datasets": {
            "type": "1d",
            "on_region": {"lon": 83.6, "lat": 22.0, "radius": 0.1},
            "geom": {"axes": {"energy": {"min": 0.5, "max": 20, "nbin": 6}}},
        },
        "output": {"store": "datasets.zarr", **output},
        "fit": {"models": "models.yaml"},
    }


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A folder with a 3-dataset store, a models file and the analysis config fitting them."""
    folder = tmp_path_factory.mktemp("good")
    store = DatasetStore(folder / "datasets.zarr")
    for i, name in enumerate(NAMES):
        store.write(_spectrum(name, i))
    model = PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    Models([SkyModel(model, name="src")]).write(folder / "models.yaml", overwrite=True)
    (folder / "analysis.yaml").write_text(yaml.safe_dump(_config(folder)))
    return folder


@pytest.fixture
def work(good: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "w"
    shutil.copytree(good, dst)
    return dst


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _group(work: Path) -> Path:
    return work / "datasets.zarr" / "datasets" / DAMAGED


def _first_chunk(work: Path, array: str) -> Path:
    return next(p for p in sorted((_group(work) / array / "c").rglob("*")) if p.is_file())


def _flip(file: Path, at: int) -> None:
    data = bytearray(file.read_bytes())
    data[at] ^= 0x55
    file.write_bytes(bytes(data))


def _edit_group_attrs(work: Path, fn) -> None:
    meta = _group(work) / "zarr.json"
    doc = json.loads(meta.read_text())
    fn(doc["attributes"])
    meta.write_text(json.dumps(doc, indent=2))


DAMAGE = {
    # case: (damage, what the message must name besides store and dataset: the array)
    "deleted_chunk": (lambda w: _first_chunk(w, "counts").unlink(), "'counts'"),
    "flipped_byte": (lambda w: _flip(_first_chunk(w, "counts"), 7), "'counts'"),
    "flipped_last_byte_edisp": (lambda w: _flip(_first_chunk(w, "edisp"), -1), "'edisp'"),
    "truncated_chunk": (
        lambda w: _first_chunk(w, "counts_off").write_bytes(b"\x28"),
        "'counts_off'",
    ),
    "missing_edisp_array": (lambda w: shutil.rmtree(_group(w) / "edisp"), "'edisp'"),
    "missing_counts_metadata": (
        lambda w: (_group(w) / "counts" / "zarr.json").unlink(),
        "'counts'",
    ),
    "edited_livetime": (lambda w: _edit_group_attrs(w, lambda a: a.update(livetime=1.0)), None),
    "no_manifest": (
        lambda w: _edit_group_attrs(w, lambda a: a.pop("gdask_checksums")),
        "gdask_checksums",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_store_is_a_clean_error(work: Path, case: str) -> None:
    damage, array = DAMAGE[case]
    damage(work)
    before = _digest(work / "datasets.zarr")
    result = run_cli(["fit", work / "analysis.yaml", "--mode", "in-process", "--out", work / "r"])
    names = [work / "datasets.zarr", repr(DAMAGED)] + ([array] if array else [])
    assert_clean_failure(result, *names)
    assert _digest(work / "datasets.zarr") == before  # the failed fit changed nothing
    store = DatasetStore(work / "datasets.zarr")
    for name in NAMES:
        if name != DAMAGED:  # the intact datasets still read, lazily and eagerly
            assert int(store.read(name, lazy=False).counts.sum()) > 0
            assert store.read(name).counts.shape == (6,)


@pytest.mark.timeout(300)
def test_damaged_store_on_workers_is_a_clean_error(work: Path) -> None:
    """Terms built on Dask workers: the damage is one line, no worker traceback log."""
    _flip(_first_chunk(work, "counts"), 7)
    result = run_cli_subprocess(
        ["fit", "analysis.yaml", "--mode", "distributed", "--workers", "1", "--out", "r"],
        cwd=work,
        env={"DASK_SCHEDULER_ADDRESS": ""},
    )
    assert_clean_failure(result, "datasets.zarr", repr(DAMAGED), "'counts'", "checksum")
    assert "Compute Failed" not in result.text


def _reduce_config(work: Path, edit=None) -> Path:
    cfg = {
        "observations": {"store": "archive.zarr", "obs_ids": [1]},
        "datasets": {
            "type": "3d",
            "geom": {
                "wcs": {"skydir": {"lon": 83.6, "lat": 22.0}, "width": 2, "binsz": 0.02},
                "axes": {"energy": {"min": 0.5, "max": 20, "nbin": 6}},
            },
        },
        "output": {"store": "out.zarr"},
    }
    if edit:
        edit(cfg)
    path = work / "reduce.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _set(path: str, value):
    def edit(cfg: dict) -> None:
        node = cfg
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return edit


def _latin1(work: Path) -> Path:
    path = work / "latin1.yaml"
    path.write_bytes("# r\xe9duction\nobservations: {store: a.zarr}\n".encode("latin-1"))
    return path


def _out_is_file(work: Path) -> Path:
    (work / "out.zarr").write_text("keep me")
    return _reduce_config(work)


CLI = {
    # case: (argv from the work folder, names the message must hold)
    "reduce_workers_negative": (
        lambda w: ["reduce", _reduce_config(w), "--workers", "-2"],
        ["--workers", "-2"],
    ),
    "reduce_workers_zero": (
        lambda w: ["reduce", _reduce_config(w), "--workers", "0"],
        ["--workers", "0"],
    ),
    "fit_workers_negative": (
        lambda w: ["fit", w / "analysis.yaml", "--workers", "-2", "--out", w / "r"],
        ["--workers"],
    ),
    "demo_workers_negative": (
        lambda w: ["demo", "--out", w / "demo", "--workers", "-2"],
        ["--workers"],
    ),
    "ingest_workers_zero": (
        lambda w: ["ingest", w, "--store", w / "a.zarr", "--workers", "0"],
        ["--workers"],
    ),
    "fit_scheduler_not_a_url": (
        lambda w: ["fit", w / "analysis.yaml", "--scheduler", "not a url", "--out", w / "r"],
        ["--scheduler", "'not a url'"],
    ),
    "reduce_scheduler_no_port": (
        lambda w: ["reduce", _reduce_config(w), "--scheduler", "tcp://scheduler"],
        ["--scheduler", "tcp://scheduler"],
    ),
    "reduce_output_store_is_a_file": (
        lambda w: ["reduce", _out_is_file(w)],
        ["output.store", "out.zarr", "not a directory"],
    ),
    "fit_output_store_is_a_file": (
        lambda w: (
            shutil.rmtree(w / "datasets.zarr"),
            (w / "datasets.zarr").write_text("x"),
            ["fit", w / "analysis.yaml", "--mode", "in-process", "--out", w / "r"],
        )[-1],
        ["output.store", "datasets.zarr"],
    ),
    "reduce_non_utf8_config": (
        lambda w: ["reduce", _latin1(w)],
        ["latin1.yaml", "not UTF-8"],
    ),
    "fit_non_utf8_config": (
        lambda w: ["fit", _latin1(w), "--mode", "in-process", "--out", w / "r"],
        ["latin1.yaml", "not UTF-8"],
    ),
    "reduce_huge_grid": (
        lambda w: ["reduce", _reduce_config(w, _set("datasets.geom.wcs.binsz", 2e-5))],
        ["datasets.geom.wcs.binsz", "reduce.yaml", "pixels"],
    ),
    "reduce_huge_cube": (
        lambda w: [
            "reduce",
            _reduce_config(
                w,
                lambda c: (
                    _set("datasets.geom.wcs.binsz", 0.0002)(c),
                    _set("datasets.geom.axes.energy.nbin", 1000)(c),
                ),
            ),
        ],
        ["datasets.geom.wcs.binsz", "map cells"],
    ),
    "reduce_nbin_too_large": (
        lambda w: ["reduce", _reduce_config(w, _set("datasets.geom.axes.energy.nbin", 10**7))],
        ["datasets.geom.axes.energy.nbin", "10000000"],
    ),
    "reduce_nbin_true_too_large": (
        lambda w: [
            "reduce",
            _reduce_config(
                w,
                _set("datasets.geom.axes.energy_true", {"min": 0.3, "max": 50, "nbin": 5000}),
            ),
        ],
        ["datasets.geom.axes.energy_true.nbin"],
    ),
}


@pytest.mark.parametrize("case", sorted(CLI))
def test_cli_argument_is_a_clean_error(work: Path, case: str, monkeypatch) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    make_args, names = CLI[case]
    args = make_args(work)
    before = _digest(work)
    result = run_cli(args)
    assert_clean_failure(result, *names)
    assert result.code == 2, result.text
    assert _digest(work) == before  # nothing written, nothing lost (incl. a file in the way)


def test_damaged_archive_run_is_reported_by_reduce(hess_dir: Path, tmp_path: Path) -> None:
    """The archive store's groups carry the same manifest: a flipped byte in one run's events
    fails that run (named with the array) instead of reducing garbage energies."""
    from gdask.archive import ingest

    store = tmp_path / "archive.zarr"  # where _reduce_config points
    assert ingest(hess_dir, store, obs_ids=[23523], progress=False, processes=False).ok
    _flip(store / "obs" / "23523" / "events" / "ENERGY" / "c" / "0", 20)
    cfg = _reduce_config(tmp_path, _set("observations.obs_ids", [23523]))
    before = _digest(store)
    result = run_cli(["reduce", cfg, "--threads", "--workers", "1", "--no-progress"])
    assert_clean_failure(result, "23523", "'ENERGY'", "checksum")
    assert _digest(store) == before

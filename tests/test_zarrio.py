"""The lean zarr writer: same stores as ``xarray.Dataset.to_zarr``, deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from gdask.errors import ArchiveError
from gdask.zarrio import CHECKSUM_ATTR, read_dataset, verify_group, write_dataset

RNG = np.random.default_rng(3)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _irf_like() -> xr.Dataset:
    energy = np.geomspace(0.1, 100, 9)
    offset = np.linspace(0, 2.5, 6, dtype=np.float32)
    ds = xr.Dataset(
        {
            "effective_area": (
                ("energy_true", "offset"),
                RNG.random((8, 6)).astype(np.float32),
                {"units": "m2", "gadf": {"tdim": ["a", "b"], "n": 2}},
            )
        },
        coords={
            "energy_true": (
                "energy_true",
                np.sqrt(energy[1:] * energy[:-1]),
                {"units": "TeV", "bounds": "energy_true_bounds"},
            ),
            "energy_true_bounds": (
                ("energy_true", "bound"),
                np.stack([energy[:-1], energy[1:]], -1),
            ),
            "offset": ("offset", offset, {"units": "deg"}),
            "offset_bounds": (("offset", "bound"), np.stack([offset, offset + 0.5], -1)),
        },
        attrs={
            "obs_id": np.int64(23523),
            "header": "x" * 300,
            "nested": {"a": [1, 2.5, "s"]},
            "flag": True,
            "nan": float("nan"),
            "list": np.arange(3),
        },
    )
    return ds


def _map_like() -> xr.Dataset:
    lon = np.linspace(83, 84, 5)
    lat = np.linspace(21, 22, 4)
    return xr.Dataset(
        {
            "counts": (("energy", "lat", "lon"), RNG.poisson(2, (3, 4, 5)).astype(np.float32)),
            "npred": (("energy", "lat", "lon"), RNG.random((3, 4, 5))),
            "n_on": (("energy", "lat", "lon"), RNG.poisson(2, (3, 4, 5)).astype(np.int16)),
            "idx": (("lat", "lon"), np.arange(20, dtype=np.int64).reshape(4, 5)),
            "mask": (("energy", "lat", "lon"), RNG.random((3, 4, 5)) > 0.3),
            "empty_mask": (("lat", "lon"), np.zeros((4, 5), bool)),
            "zeros": (("lat", "lon"), np.zeros((4, 5), np.uint8)),
            "all_nan": (("lat", "lon"), np.full((4, 5), np.nan)),
            "scalar": ((), np.float64(1.5), {"units": "s"}),
            "iscalar": ((), np.int64(7)),
        },
        coords={
            "energy": ("energy", [1.0, 2.0, 3.0]),
            "ra": (("lat", "lon"), np.add.outer(lat, lon)),
            "dec": (("lat", "lon"), np.subtract.outer(lat, lon)),
            "tag": ((), np.int16(4)),
        },
        attrs={"dataset_type": "MapDataset", "meta": {"geom": {"npix": [5, 4]}, "none": None}},
    )


def _events_like(n: int = 1003) -> xr.Dataset:
    return xr.Dataset(
        {
            "EVENT_ID": ("event", np.arange(n, dtype=np.int64), {"units": ""}),
            "TIME": ("event", np.sort(RNG.random(n)) * 1e3, {"units": "s"}),
            "ENERGY": ("event", RNG.random(n).astype(np.float32)),
            "FLAG": ("event", np.zeros(n, bool)),
        },
        attrs={"obs_id": 1},
    )


def _reread() -> xr.Dataset:
    """A dataset read back from zarr: its variables carry an ``encoding``."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        _irf_like().to_zarr(Path(d) / "x.zarr", consolidated=False, zarr_format=3)
        return xr.open_zarr(Path(d) / "x.zarr", consolidated=False).load()


CASES = {
    "reread": (_reread, None),
    "irf": (_irf_like, None),
    "map": (_map_like, None),
    "events_chunked": (_events_like, {"event": 250}),
    "events_one_chunk": (_events_like, {"event": 5000}),
    "events_empty": (lambda: _events_like(0), {"event": 100}),
    "zero_dim": (lambda: xr.Dataset({"x": (("a", "b"), np.zeros((0, 3), np.float32))}), None),
    "big_endian": (
        lambda: xr.Dataset(
            {"x": ("a", np.arange(5, dtype=">f8")), "i": ("a", np.arange(5, dtype=">i4"))}
        ),
        None,
    ),
    "large": (lambda: xr.Dataset({"x": (("a", "b"), RNG.random((300, 400)))}), None),
    "chunk_3d": (
        lambda: xr.Dataset(
            {"x": (("a", "b", "c"), RNG.random((5, 7, 3)))}, coords={"b": np.arange(7)}
        ),
        {"b": 3},
    ),
    "string": (
        lambda: _events_like(10).assign(NAME=("event", np.array(["ab"] * 10, dtype=object))),
        None,
    ),
}


def _xarray_write(ds: xr.Dataset, path: Path, chunks, data_vars_only: bool, fill_attr: bool):
    encoding = {}
    for name, var in ds.variables.items():
        enc = {} if fill_attr else {"_FillValue": None}
        sizes = {d: min(c, var.sizes[d]) for d, c in (chunks or {}).items() if var.sizes.get(d, 0)}
        if sizes and (name in ds.data_vars or not data_vars_only):
            enc["chunks"] = tuple(sizes.get(d, n) or 1 for d, n in var.sizes.items())
        if enc:
            encoding[name] = enc
    ds.to_zarr(path, mode="w", consolidated=False, zarr_format=3, encoding=encoding or None)


@pytest.mark.parametrize("fill_attr", [True, False])
@pytest.mark.parametrize("data_vars_only", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_store_as_xarray(tmp_path, case, data_vars_only, fill_attr):
    make, chunks = CASES[case]
    ds = make()
    old, new, again = tmp_path / "old.zarr", tmp_path / "new.zarr", tmp_path / "again.zarr"
    _xarray_write(ds, old, chunks, data_vars_only, fill_attr)
    kwargs = {
        "chunks": chunks,
        "chunk_data_vars_only": data_vars_only,
        "fill_value_attr": fill_attr,
    }
    write_dataset(ds, new, **kwargs)
    write_dataset(ds, again, **kwargs)
    a, b = (
        xr.open_zarr(old, consolidated=False).load(),
        xr.open_zarr(new, consolidated=False).load(),
    )
    xr.testing.assert_identical(a, b)
    assert sorted(zarr.open_group(new, mode="r").array_keys()) == sorted(map(str, ds.variables))
    assert _tree(new) == _tree(again)  # deterministic
    if case != "string":  # the string case goes through xarray: identical up to nothing
        assert _tree(new) == _tree(old)  # byte-identical to xarray's writer


def test_multiple_chunk_files(tmp_path):
    write_dataset(_events_like(1003), tmp_path / "e", chunks={"event": 250})
    assert sorted(p.name for p in (tmp_path / "e" / "TIME" / "c").iterdir()) == list("01234")
    assert not (tmp_path / "e" / "FLAG" / "c").exists()  # all-fill chunks are not written
    assert xr.open_zarr(tmp_path / "e", consolidated=False)["FLAG"].values.sum() == 0


def test_replaces_existing_group(tmp_path):
    write_dataset(_map_like(), tmp_path / "g")
    write_dataset(_events_like(5), tmp_path / "g")
    assert set(xr.open_zarr(tmp_path / "g", consolidated=False).variables) == set(
        _events_like(5).variables
    )


@pytest.mark.parametrize("fill_attr", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_read_equals_xarray(tmp_path, case, fill_attr):
    """read_dataset gives what xr.open_zarr(...).load() gives, for groups written by xarray."""
    make, chunks = CASES[case]
    ds = make()
    path = tmp_path / "old.zarr"
    _xarray_write(ds, path, chunks, True, fill_attr)
    want = xr.open_zarr(path, consolidated=False).load()
    got = read_dataset(path)
    xr.testing.assert_identical(got, want)
    for name in want.variables:
        assert got[name].dtype == want[name].dtype, name


@pytest.mark.realdata
def test_read_real_stores_equals_xarray(hess_dir, tmp_path):
    """Every group of an ingested observation and of a reduced DL4 dataset reads identically."""
    from gdask.archive import ingest
    from gdask.dl3 import DL3Index, read_observation
    from gdask.geometry import EnergyAxis, WcsGeom
    from gdask.reduce.convert import to_map_dataset
    from gdask.reduce.maps import make_map_dataset

    store = tmp_path / "a.zarr"
    assert ingest(hess_dir, store, obs_ids=[23523], progress=False, processes=False).ok
    groups = [p.parent for p in (store / "obs").rglob("zarr.json")]
    groups.append(store / "index")
    obs = read_observation(DL3Index.read(hess_dir), 23523)
    geom = WcsGeom.create(skydir=(83.633, 22.014), width=(2, 2), binsz=0.05, frame="icrs")
    e = EnergyAxis.from_bounds(0.7, 10, 5)
    et = EnergyAxis.from_bounds(0.5, 20, 10, name="energy_true")
    md = to_map_dataset(make_map_dataset(obs, geom, e, et), gti=obs.gti, name="r")
    from gdask.datasets import DatasetStore

    ds_store = DatasetStore(tmp_path / "d.zarr")
    ds_store.write(md)
    groups.append(tmp_path / "d.zarr" / "datasets" / "r")
    checked = 0
    for group in groups:
        doc = (group / "zarr.json").read_text()
        if '"node_type": "group"' not in doc:
            continue
        want = xr.open_zarr(group, consolidated=False).load()
        want.attrs.pop(CHECKSUM_ATTR, None)  # verified and dropped by read_dataset
        xr.testing.assert_identical(read_dataset(group), want)
        checked += 1
    assert checked >= 8


# ----------------------------------------------------------------------------- checksums


@pytest.mark.parametrize("case", sorted(CASES))
def test_checksummed_group_is_xarray_readable(tmp_path, case):
    """With checksums the group is still a plain zarr group; the data read back is the same."""
    make, chunks = CASES[case]
    ds = make()
    plain, sealed = tmp_path / "plain", tmp_path / "sealed"
    write_dataset(ds, plain, chunks=chunks)
    write_dataset(ds, sealed, chunks=chunks, checksums=True)
    want = xr.open_zarr(plain, consolidated=False).load()
    got = xr.open_zarr(sealed, consolidated=False).load()
    assert CHECKSUM_ATTR in got.attrs
    got.attrs.pop(CHECKSUM_ATTR)
    xr.testing.assert_identical(got, want)
    assert sorted(zarr.open_group(sealed, mode="r").array_keys()) == sorted(map(str, ds.variables))
    xr.testing.assert_identical(read_dataset(sealed), read_dataset(plain))
    assert verify_group(sealed) and verify_group(sealed, full=False)
    assert not verify_group(plain)
    # only the group document differs from the unchecked writer's files
    assert {k: v for k, v in _tree(sealed).items() if k != "zarr.json"} == {
        k: v for k, v in _tree(plain).items() if k != "zarr.json"
    }


def _sealed_map(tmp_path: Path) -> Path:
    path = tmp_path / "g"
    write_dataset(_map_like(), path, chunks={"lon": 2}, checksums=True)
    return path


def _flip(file: Path, at: int = -1) -> None:
    data = bytearray(file.read_bytes())
    data[at] ^= 0x40
    file.write_bytes(bytes(data))


DAMAGE = {
    "deleted_chunk": (lambda g: (g / "counts" / "c" / "0" / "0" / "1").unlink(), "counts"),
    "flipped_chunk_byte": (lambda g: _flip(g / "npred" / "c" / "0" / "0" / "0", 5), "npred"),
    "flipped_last_byte": (lambda g: _flip(g / "counts" / "c" / "0" / "0" / "0"), "counts"),
    "deleted_array": (lambda g: __import__("shutil").rmtree(g / "mask"), "mask"),
    "truncated_chunk": (
        lambda g: (g / "idx" / "c" / "0" / "0").write_bytes(b""),
        "idx",
    ),
    "array_metadata": (
        lambda g: (g / "npred" / "zarr.json").write_text(
            (g / "npred" / "zarr.json").read_text().replace('"float64"', '"float32"')
        ),
        "npred",
    ),
    "extra_chunk": (
        lambda g: (
            (g / "zeros" / "c" / "0").mkdir(parents=True)
            or (g / "zeros" / "c" / "0" / "0").write_bytes(
                (g / "idx" / "c" / "0" / "0").read_bytes()
            )
        ),
        "zeros",
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_group_is_an_error_naming_the_array(tmp_path, damage):
    path = _sealed_map(tmp_path)
    read_dataset(path)  # intact
    apply, array = DAMAGE[damage]
    apply(path)
    with pytest.raises(ArchiveError) as err:
        read_dataset(path)
    assert err.value.field == array and repr(array) in str(err.value)
    assert str(path) in str(err.value)
    with pytest.raises(ArchiveError, match=array):
        verify_group(path)


def test_damaged_attributes_are_an_error(tmp_path):
    path = _sealed_map(tmp_path)
    doc = (path / "zarr.json").read_text()
    (path / "zarr.json").write_text(doc.replace('"MapDataset"', '"MapDatasetOnOff"'))
    with pytest.raises(ArchiveError, match="attributes fail their checksum"):
        read_dataset(path)


def test_unsupported_group_is_verified_before_xarray_reads_it(tmp_path):
    """A group the lean reader leaves to xarray (strings) is checksummed all the same."""
    path = tmp_path / "s"
    write_dataset(CASES["string"][0](), path, checksums=True)
    assert "NAME" in read_dataset(path)
    _flip(next((path / "TIME" / "c").rglob("*")), 3)
    with pytest.raises(ArchiveError, match="TIME"):
        read_dataset(path)


def test_rewriting_a_read_dataset_gives_a_fresh_manifest(tmp_path):
    path = _sealed_map(tmp_path)
    ds = xr.open_zarr(path, consolidated=False).load()  # carries the old manifest
    ds = ds.drop_vars("npred")
    write_dataset(ds, tmp_path / "again", fill_value_attr=False, checksums=True)
    assert verify_group(tmp_path / "again")

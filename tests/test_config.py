"""The analysis configuration: parsing, defaults and one clear error per mistake."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from gdask.config import AnalysisConfig
from gdask.errors import ConfigError

BASE_3D = {
    "observations": {"store": "archive.zarr", "obs_ids": [23523, 23526]},
    "datasets": {
        "type": "3d",
        "stack": False,
        "geom": {
            "wcs": {
                "skydir": {"lon": 83.633, "lat": 22.014, "frame": "icrs"},
                "width": [3, 3],
                "binsz": 0.02,
                "proj": "CAR",
                "binsz_irf": 0.2,
            },
            "axes": {
                "energy": {"min": 0.7, "max": 10, "nbin": 10},
                "energy_true": {"min": "500 GeV", "max": 20, "nbin": 20},
            },
        },
    },
    "makers": {
        "selection": ["counts", "exposure", "background", "psf", "edisp"],
        "offset_max": 2.5,
        "safe_mask": {"methods": ["offset-max", "aeff-default"]},
        "background": {
            "method": "fov",
            "fov_method": "scale",
            "exclusion": {"regions": ["icrs;circle(83.633,22.014,0.3)"]},
        },
    },
    "output": {"store": "datasets.zarr"},
    "fit": {"models": "models.yaml", "fit_range": {"min": 1, "max": 10}},
}

BASE_1D = {
    "observations": {"store": "/data/archive.zarr"},
    "datasets": {
        "type": "1d",
        "on_region": {"lon": 83.633, "lat": 22.014, "radius": 0.11},
        "containment_correction": True,
        "geom": {"axes": {"energy": {"edges": [0.7, 1, 3, 10]}}},
    },
    "makers": {
        "safe_mask": {"methods": ["aeff-max"], "aeff_percent": 10},
        "background": {"exclusion": {"file": "/data/exclusion.fits.gz"}},
    },
    "output": {"store": "out.zarr", "fits": "ogip"},
}


def _with(base: dict, path: str, value) -> dict:
    d = copy.deepcopy(base)
    keys = path.split(".")
    node = d
    for k in keys[:-1]:
        node = node[k]
    if value is KeyError:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return d


def test_3d_parses_with_defaults(tmp_path):
    cfg = AnalysisConfig.from_dict(BASE_3D, tmp_path)
    assert cfg.observations.store == tmp_path / "archive.zarr"
    assert cfg.observations.obs_ids == (23523, 23526)
    g = cfg.datasets.geom
    assert g.wcs.skydir == (83.633, 22.014) and g.wcs.width == (3.0, 3.0)
    np.testing.assert_allclose(g.energy.edges, np.geomspace(0.7, 10, 11))
    np.testing.assert_allclose(g.energy_true.edges, np.geomspace(0.5, 20, 21))
    assert g.energy_true.to_axis("energy_true").name == "energy_true"
    assert cfg.makers.background.method == "fov" and cfg.makers.safe_mask.aeff_percent == 10.0
    assert cfg.fit.models == tmp_path / "models.yaml" and cfg.fit.energy_max == 10.0
    geom = g.wcs.to_geom()
    assert geom.npix == (150, 150)
    assert cfg.to_dict()["datasets"]["type"] == "3d"


def test_1d_parses(tmp_path):
    cfg = AnalysisConfig.from_dict(BASE_1D, tmp_path)
    assert cfg.datasets.type == "1d" and cfg.makers.background.method == "reflected"
    assert cfg.datasets.geom.energy_true.edges == (0.7, 1.0, 3.0, 10.0)  # defaults to the reco axis
    assert cfg.output.fits == tmp_path / "ogip"
    assert cfg.datasets.on_region.to_region().radius.deg == pytest.approx(0.11)


def test_read_yaml_file(tmp_path):
    path = tmp_path / "sub" / "analysis.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(BASE_3D))
    cfg = AnalysisConfig.read(path)
    assert cfg.output.store == path.parent / "datasets.zarr"


def test_pointing_grid_and_cutout(tmp_path):
    d = _with(BASE_3D, "datasets.geom.wcs.skydir", "pointing")
    assert AnalysisConfig.from_dict(d, tmp_path).datasets.geom.wcs.skydir is None
    d = _with(BASE_3D, "datasets.geom.cutout", {"width": 2.0})
    assert AnalysisConfig.from_dict(d, tmp_path).datasets.geom.cutout_width == 2.0


@pytest.mark.parametrize(
    "path,value,message",
    [
        ("datasets.geom.wcs.binsz", -0.02, "datasets.geom.wcs.binsz: must be > 0"),
        ("datasets.geom.wcs.binsz", "0.02", "datasets.geom.wcs.binsz: must be a number"),
        ("datasets.geom.wcs.binsz", True, "datasets.geom.wcs.binsz: must be a number"),
        (
            "datasets.geom.wcs.width",
            [3, 3, 3],
            "datasets.geom.wcs.width: must be a number or [lon, lat]",
        ),
        (
            "datasets.geom.wcs.skydir",
            {"lon": 1, "lat": 95},
            "datasets.geom.wcs.skydir.lat: must be within",
        ),
        (
            "datasets.geom.wcs.skydir",
            "crab",
            "datasets.geom.wcs.skydir: must be {lon, lat, frame} or 'pointing'",
        ),
        ("datasets.geom.wcs.bnisz", 0.1, "datasets.geom.wcs.bnisz: unknown key"),
        ("datasets.geom.wcs.binsz_irf", 0, "datasets.geom.wcs.binsz_irf: must be > 0"),
        (
            "datasets.geom.axes.energy",
            {"min": 10, "max": 1, "nbin": 3},
            "datasets.geom.axes.energy.max: must be > min",
        ),
        (
            "datasets.geom.axes.energy",
            {"min": 1, "max": 10, "nbin": 2.5},
            "datasets.geom.axes.energy.nbin: must be an integer",
        ),
        (
            "datasets.geom.axes.energy",
            {"edges": [1, 3, 2]},
            "datasets.geom.axes.energy.edges: must increase",
        ),
        (
            "datasets.geom.axes.energy",
            {"edges": [1, 2], "nbin": 3},
            "datasets.geom.axes.energy.nbin: give either",
        ),
        (
            "datasets.geom.axes.energy",
            {"min": "1 deg", "max": 10, "nbin": 3},
            "datasets.geom.axes.energy.min: not an energy",
        ),
        ("datasets.type", "2d", "datasets.type: must be one of ['3d', '1d']"),
        ("datasets.stack", "yes", "datasets.stack: must be true or false"),
        ("datasets.colour", "red", "datasets.colour: unknown key"),
        ("observations.obs_ids", [23523, "x"], "observations.obs_ids[1]: must be an integer"),
        ("observations.obs_ids", [], "observations.obs_ids: must not be empty"),
        ("observations.store", KeyError, "observations.store: required"),
        (
            "observations.cone",
            {"lon": 0, "lat": 0, "radius": -1},
            "observations.cone.radius: must be > 0",
        ),
        (
            "observations.time",
            {"start": "2005-01-01", "stop": "2004-01-01"},
            "observations.time: stop must be after start",
        ),
        ("observations.time", {"start": "yesterday"}, "observations.time.start: not a time"),
        (
            "observations.columns",
            {"ZEN_PNT": [40, 10]},
            "observations.columns.ZEN_PNT: max 10.0 < min 40.0",
        ),
        ("makers.selection", ["counts", "flux"], "makers.selection[1]: must be one of"),
        (
            "makers.selection",
            ["counts", "exposure"],
            "makers.selection: background method 'fov' needs 'background'",
        ),
        (
            "makers.safe_mask.methods",
            ["offset-max", "bogus"],
            "makers.safe_mask.methods[1]: must be one of",
        ),
        (
            "makers.background.method",
            "reflected",
            "makers.background.method: 'reflected' is for 1d datasets",
        ),
        (
            "makers.background.fov_method",
            "median",
            "makers.background.fov_method: must be one of ['scale', 'fit']",
        ),
        (
            "makers.background.exclusion",
            {"regions": ["circle(1,2"]},
            "makers.background.exclusion.regions[0]: not a ds9 region",
        ),
        ("makers.background", {"method": "ring", "r_in": 0.5}, "makers.background.width: required"),
        ("makers.offset_max", 0, "makers.offset_max: must be > 0"),
        ("output.overwrite", "no", "output.overwrite: must be true or false"),
        ("fit.fit_range", {"min": 10, "max": 1}, "fit.fit_range.max: must be > min"),
        ("fit.minimizer", "migrad", "fit.minimizer: unknown key"),
        (
            "datasets.geom.axes.energy.nbin",
            10**6,
            "datasets.geom.axes.energy.nbin: 1000000 energy bins is more than the maximum",
        ),
        (
            "datasets.geom.axes.energy",
            {"edges": [float(e) for e in range(1, 1100)]},
            "datasets.geom.axes.energy.edges: 1098 energy bins is more than the maximum",
        ),
        (
            "datasets.geom.wcs.binsz",
            3e-5,
            "datasets.geom.wcs.binsz: a 3.0 x 3.0 deg grid of 3e-05 deg pixels has 1e+10 pixels",
        ),
        ("datasets.geom.wcs.binsz", 0.0004, "datasets.geom.wcs.binsz: 56250000 pixels x 20"),
    ],
)
def test_errors_name_the_key(tmp_path, path, value, message):
    with pytest.raises(ConfigError) as info:
        AnalysisConfig.from_dict(_with(BASE_3D, path, value), tmp_path)
    assert message in str(info.value)
    assert info.value.field.startswith(path.split(".")[0])


def test_unknown_top_level_section(tmp_path):
    with pytest.raises(ConfigError, match="^plots: unknown key"):
        AnalysisConfig.from_dict({**BASE_3D, "plots": {}}, tmp_path)


def test_cross_field_errors(tmp_path):
    d = _with(_with(BASE_3D, "datasets.geom.wcs.skydir", "pointing"), "datasets.stack", True)
    with pytest.raises(ConfigError, match="datasets.stack: per-run grids"):
        AnalysisConfig.from_dict(d, tmp_path)
    with pytest.raises(ConfigError, match="datasets.on_region: required"):
        AnalysisConfig.from_dict(_with(BASE_1D, "datasets.on_region", KeyError), tmp_path)
    with pytest.raises(
        ConfigError,
        match="makers.safe_mask.methods\\[0\\]: must be one of \\['aeff-default', 'aeff-max'",
    ):
        AnalysisConfig.from_dict(
            _with(BASE_1D, "makers.safe_mask", {"methods": ["bkg-max"]}), tmp_path
        )
    # every 3d method is a 1d method too
    one_d = _with(BASE_1D, "makers.safe_mask", {"methods": ["aeff-default", "edisp-bias"]})
    assert AnalysisConfig.from_dict(one_d, tmp_path).makers.safe_mask.methods == (
        "aeff-default",
        "edisp-bias",
    )
    with pytest.raises(ConfigError, match="datasets.geom.cutout: only for 3d"):
        AnalysisConfig.from_dict(_with(BASE_1D, "datasets.geom.cutout", {"width": 2}), tmp_path)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        AnalysisConfig.read(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("observations: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        AnalysisConfig.read(bad)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="<top>: must be a mapping") as info:
        AnalysisConfig.read(top)
    assert info.value.file == str(top)


def test_store_paths_that_are_files(tmp_path):
    """An output or archive store that exists as a file is a config error, not a traceback later."""
    (tmp_path / "datasets.zarr").write_text("not a store")
    with pytest.raises(ConfigError, match="output.store: .* exists and is not a directory"):
        AnalysisConfig.from_dict(BASE_3D, tmp_path)
    (tmp_path / "datasets.zarr").unlink()
    (tmp_path / "archive.zarr").write_text("not a store")
    with pytest.raises(ConfigError) as info:
        AnalysisConfig.from_dict(BASE_3D, tmp_path)
    assert info.value.field == "observations.store"


def test_non_utf8_config(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("observations: {store: caf\xe9.zarr}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text") as info:
        AnalysisConfig.read(bad)
    assert info.value.file == str(bad)

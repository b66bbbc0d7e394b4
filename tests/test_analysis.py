"""Joint run config validation, TermSpecs from dataset stores, and a small in-process fit_run."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from gdask.analysis import build_term_specs, choose_mode, fit_run, store_datasets
from gdask.analysis.specs import INPROCESS_MAX_BINS, energy_scale_name
from gdask.config import AnalysisConfig
from gdask.datasets import DatasetStore
from gdask.errors import ConfigError
from gdask.likelihood import build_term
from gdask.models import Models, PointSpatialModel, PowerLawSpectralModel, SkyModel
from gdask.run_config import RunConfig, load_run_config
from tests.likelihood.test_map import make_dataset as make_map_dataset
from tests.likelihood.test_spectrum import make_dataset as make_spectrum_dataset

SRC = {"lon": 83.633, "lat": 22.014, "frame": "icrs"}


def map_config(store: str = "maps.zarr", stack: bool = True) -> dict:
    return {
        "observations": {"store": "archive.zarr"},
        "datasets": {
            "type": "3d",
            "stack": stack,
            "geom": {
                "wcs": {"skydir": dict(SRC), "width": 1.2, "binsz": 0.04},
                "axes": {"energy": {"min": 0.7, "max": 10, "nbin": 4}},
            },
        },
        "makers": {"background": {"method": "fov"}},
        "output": {"store": store},
    }


def spectrum_config(store: str = "spectra.zarr") -> dict:
    return {
        "observations": {"store": "archive.zarr"},
        "datasets": {
            "type": "1d",
            "on_region": {**SRC, "radius": None},
            "geom": {"axes": {"energy": {"min": 0.1, "max": 100, "nbin": 15}}},
        },
        "makers": {"background": {"method": "wobble", "n_off_regions": 3}},
        "output": {"store": store},
    }


def run_dict() -> dict:
    return {
        "analyses": [
            {"name": "hess", "config": map_config()},
            {"name": "magic", "config": spectrum_config()},
        ],
        "fit": {
            "models": "models.yaml",
            "fit_ranges": {"hess": [1, 10], "magic": ["200 GeV", "50 TeV"]},
            "energy_scale": {"magic": 0.1},
            "mode": "in-process",
        },
        "output": "results",
    }


@pytest.fixture
def stores(tmp_path: Path) -> Path:
    """A map store with 'stacked', a spectrum store with two runs, and a models file."""
    DatasetStore(tmp_path / "maps.zarr").write(make_map_dataset("stacked"), "stacked")
    spectra = DatasetStore(tmp_path / "spectra.zarr")
    for i, name in enumerate(("200001", "200002")):
        spectra.write(make_spectrum_dataset(name, seed=i), name)
    src = SkyModel(
        PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0="83.613 deg", lat_0="22.017 deg", frame="icrs"),
        name="src",
    )
    src.spatial_model.lon_0.frozen = True
    src.spatial_model.lat_0.frozen = True
    Models([src]).write(tmp_path / "models.yaml", overwrite=True)
    return tmp_path


# ----------------------------------------------------------------------------- run config


def test_run_config_valid(tmp_path: Path) -> None:
    run = RunConfig.from_dict(run_dict(), tmp_path)
    assert [a.name for a in run.analyses] == ["hess", "magic"]
    assert [a.kind for a in run.analyses] == ["map", "spectrum"]
    assert run.analysis("magic").fit_range == pytest.approx((0.2, 50.0))
    assert run.analysis("magic").energy_scale == 0.1
    assert run.analysis("hess").energy_scale is None
    assert run.fit.models == tmp_path.resolve() / "models.yaml"
    assert run.output == tmp_path.resolve() / "results"
    assert run.fit.mode == "in-process" and run.fit.backend == "minuit" and run.fit.fov_background
    on = run.analysis("magic").config.datasets.on_region
    assert on.radius is None and type(on.to_region()).__name__ == "PointSkyRegion"


def _mutate(path: str, value, delete: bool = False) -> dict:
    data = run_dict()
    keys = path.split(".")
    node = data
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if delete:
        del node[keys[-1]]
    elif isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("analyses", [], "analyses: must be a non-empty list"),
        ("analyses.1.name", "hess", "analyses: names must be unique, repeated: ['hess']"),
        ("analyses.0.name", "he ss", "analyses[0].name: letters, digits"),
        ("analyses.0.config", 3, "analyses[0].config: must be a file name or an analysis config"),
        (
            "analyses.0.config.datasets.geom.wcs.binsz",
            -1,
            "analyses[0].config.datasets.geom.wcs.binsz: must be > 0",
        ),
        ("analyses.1.config.output.store", "maps.zarr", "same dataset store as analysis 'hess'"),
        ("fit.fit_ranges", {"veritas": [1, 10]}, "fit.fit_ranges.veritas: no analysis named"),
        ("fit.fit_ranges", {"hess": [10, 1]}, "fit.fit_ranges.hess: max must be > min"),
        ("fit.fit_ranges", {"hess": [1]}, "fit.fit_ranges.hess: must be [min, max]"),
        ("fit.fit_ranges", {"hess": ["1 m", 10]}, "fit.fit_ranges.hess[0]: not an energy"),
        ("fit.energy_scale", {"magic": -0.1}, "fit.energy_scale.magic: must be > 0"),
        ("fit.mode", "cloud", "fit.mode: must be one of ['auto', 'distributed', 'in-process']"),
        ("fit.colour", "red", "fit.colour: unknown key"),
        ("analyses.0.datasets", [], "analyses[0].datasets: must be a non-empty list"),
    ],
)
def test_run_config_errors(tmp_path: Path, path: str, value, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(_mutate(path, value), tmp_path)
    assert message in str(err.value)


def test_run_config_without_models_cannot_fit(stores: Path) -> None:
    run = RunConfig.from_dict(_mutate("fit.models", None, delete=True), stores)
    assert run.fit.models is None  # gdask run: reduce only
    with pytest.raises(ConfigError, match="fit.models: required to fit"):
        build_term_specs(run)


def test_point_on_region_needs_wobble(tmp_path: Path) -> None:
    cfg = spectrum_config()
    cfg["makers"]["background"] = {"method": "reflected"}
    with pytest.raises(ConfigError, match="makers.background.method: a point ON region"):
        AnalysisConfig.from_dict(cfg, tmp_path)
    cfg = map_config()
    cfg["makers"]["background"] = {"method": "wobble"}
    with pytest.raises(ConfigError, match="'wobble' is for 1d datasets"):
        AnalysisConfig.from_dict(cfg, tmp_path)


def test_load_from_analysis_config_files(tmp_path: Path) -> None:
    a, b = map_config(), spectrum_config()
    a["fit"] = {"models": "models.yaml", "fit_range": {"min": 1, "max": 10}}
    (tmp_path / "hess.yaml").write_text(yaml.safe_dump(a))
    (tmp_path / "magic.yaml").write_text(yaml.safe_dump(b))
    run = load_run_config([tmp_path / "hess.yaml", tmp_path / "magic.yaml"])
    assert [a.name for a in run.analyses] == ["hess", "magic"]
    assert run.analysis("hess").fit_range == (1.0, 10.0)
    assert run.analysis("magic").fit_range is None
    assert run.fit.models == tmp_path.resolve() / "models.yaml"
    # a run config file, alone
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run_dict()))
    assert len(load_run_config([tmp_path / "run.yaml"]).analyses) == 2
    with pytest.raises(ConfigError, match="must be given alone"):
        load_run_config([tmp_path / "run.yaml", tmp_path / "hess.yaml"])
    assert load_run_config([tmp_path / "magic.yaml"]).fit.models is None


# ----------------------------------------------------------------------------- specs


def test_term_specs_from_stores(stores: Path) -> None:
    run = RunConfig.from_dict(run_dict(), stores)
    problem = build_term_specs(run)
    names = [s.name for s in problem.specs]
    assert names == ["hess-stacked", "magic-200001", "magic-200002"]
    assert [s.kind for s in problem.specs] == ["map", "spectrum", "spectrum"]
    assert problem.specs[0].source == f"{(stores / 'maps.zarr').resolve()}::stacked"
    assert problem.specs[0].options == {"energy_min": 1.0, "energy_max": 10.0}
    escale = energy_scale_name("magic")
    assert problem.specs[1].options == {"energy_min": pytest.approx(0.2), "energy_max": 50.0}
    assert problem.penalties == {}
    assert problem.models.names == ["src", "hess-stacked-bkg", "magic-energy-scale"]
    assert escale in problem.models.parameters_unique_names
    scale = problem.models["magic-energy-scale"]
    # a nuisance component bound to the analysis' datasets, constrained by its prior
    assert scale.datasets_names == ["magic-200001", "magic-200002"]
    assert scale.parametrisation == "scale" and not scale.parameters["s"].frozen
    assert scale.parameters["s"].prior.parameters["sigma"].value == 0.1
    again = Models.from_yaml(problem.models.to_yaml())["magic-energy-scale"]
    assert again.parameters["s"].prior.parameters["sigma"].value == 0.1
    assert problem.analysis_of["magic-200002"] == "magic"
    assert problem.n_bins["hess-stacked"] == 4 * 30 * 30 and problem.n_bins["magic-200001"] == 15
    np.testing.assert_allclose(problem.energy_edges["magic-200001"], np.geomspace(0.1, 100, 16))
    # every spec builds, with the energy range applied to the map term
    terms = [build_term(s) for s in problem.specs]
    full = build_term(
        type(problem.specs[0])(
            "map", "hess-stacked", problem.specs[0].source, problem.specs[0].models
        )
    )
    assert terms[0].mask.sum() < full.mask.sum()
    # [1, 10] TeV on edges 0.7..10: like Gammapy's geom.energy_mask the top bin goes too
    # (its upper edge exp(log(10)) is a rounding above 10)
    assert not terms[0].mask[0].any() and not terms[0].mask[-1].any()
    assert terms[0].mask[1:-1].sum() == full.mask[1:-1].sum()
    # the terms declare what they depend on (the coordinator's cache key)
    pos = problem.models.layout().position(escale)
    assert pos in terms[1].depends_on.tolist()
    assert pos not in terms[0].depends_on.tolist()


def test_dataset_selection_and_store_errors(stores: Path) -> None:
    run = RunConfig.from_dict(run_dict(), stores)
    assert store_datasets(run.analysis("hess")) == ["stacked"]
    assert store_datasets(run.analysis("magic")) == ["200001", "200002"]
    data = run_dict()
    data["analyses"][1]["datasets"] = ["200002", "200009"]
    with pytest.raises(ConfigError, match=r"datasets \['200009'\] not in"):
        build_term_specs(RunConfig.from_dict(data, stores))
    data = run_dict()
    data["analyses"][0]["config"]["output"]["store"] = "nowhere.zarr"
    with pytest.raises(ConfigError, match="no dataset store at .*nowhere.zarr; reduce first"):
        build_term_specs(RunConfig.from_dict(data, stores))
    data = run_dict()  # a 1d config pointing at a store of maps
    data["analyses"][1]["config"]["output"]["store"] = "maps.zarr"
    data["analyses"][1]["datasets"] = ["stacked"]
    data["analyses"][0]["config"]["output"]["store"] = "other.zarr"
    DatasetStore(stores / "other.zarr").write(make_map_dataset("stacked"), "stacked")
    with pytest.raises(ConfigError, match="is a map dataset, the config makes spectrum"):
        build_term_specs(RunConfig.from_dict(data, stores))


def test_models_naming_unknown_datasets(stores: Path) -> None:
    models = Models.read(stores / "models.yaml")
    models[0].datasets_names = ["stacked"]  # not the joint name hess-stacked
    with pytest.raises(ConfigError, match="refers to dataset 'stacked', which is not fitted"):
        build_term_specs(RunConfig.from_dict(run_dict(), stores), models)


def test_choose_mode(stores: Path, monkeypatch) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    problem = build_term_specs(RunConfig.from_dict(run_dict(), stores))
    assert choose_mode("auto", problem) == "in-process"
    assert choose_mode("auto", problem, "tcp://somewhere:8786") == "distributed"
    assert choose_mode("distributed", problem) == "distributed"
    big = copy.copy(problem)
    big.n_bins = {"x": INPROCESS_MAX_BINS + 1}
    assert choose_mode("auto", big) == "distributed"
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://somewhere:8786")
    assert choose_mode("auto", problem) == "distributed"
    assert choose_mode("in-process", problem) == "in-process"


def test_fit_run_in_process_writes_results(stores: Path) -> None:
    run = RunConfig.from_dict(run_dict(), stores)
    outcome = fit_run(run, log=None)
    assert outcome.mode == "in-process" and outcome.result.success
    assert set(outcome.result.stats) == {"hess-stacked", "magic-200001", "magic-200002"}
    out = stores / "results"
    expected = {
        "models.yaml",
        "models_covariance.dat",
        "models_parameters.ecsv",
        "datasets.ecsv",
        "fit_summary.txt",
        "fit_summary.yaml",
        "spectrum.png",
        "counts_hess.png",
        "counts_magic.png",
    }
    assert expected <= {p.name for p in out.iterdir()}
    assert {p.name for p in outcome.files} == expected
    back = Models.read(out / "models.yaml")
    assert back.names == ["src", "hess-stacked-bkg", "magic-energy-scale"]
    assert back.covariance is not None
    assert back["src"].spectral_model.index.value == pytest.approx(outcome.result["index"])
    summary = yaml.safe_load((out / "fit_summary.yaml").read_text())
    assert summary["n_evaluations"] > 0 and summary["mode"] == "in-process"
    assert set(summary["datasets"]) == set(outcome.result.stats)
    from astropy.table import Table

    t = Table.read(out / "datasets.ecsv")
    assert list(t["name"]) == ["hess-stacked", "magic-200001", "magic-200002"]
    assert np.all(t["fit_energy_bins"] > 0)


def test_objective_g2_is_the_hessian_diagonal(stores: Path) -> None:
    """Minuit2 calls g2 when the seed Hessian is not positive definite (it was None: TypeError)."""
    from gdask.fit import Coordinator, FitProblem, Objective
    from gdask.fit.backends import make_minuit

    problem = build_term_specs(RunConfig.from_dict(run_dict(), stores))
    with Coordinator(problem.specs) as coord:
        obj = Objective(FitProblem(problem.models, penalties=problem.penalties), coord)
        x = obj.problem.factors0()
        np.testing.assert_array_equal(obj.g2(x), np.diag(obj.hessian(x)))
        assert make_minuit(obj)._fcn._g2 is not None


def test_cli_fit_config_error_exit_code(stores: Path, capsys) -> None:
    from gdask.cli import main

    data = run_dict()
    data["fit"]["energy_scale"] = {"hess": -0.1}
    (stores / "run.yaml").write_text(yaml.safe_dump(data))
    assert main(["fit", str(stores / "run.yaml")]) == 2
    err = capsys.readouterr().err
    assert "gdask fit: error: fit.energy_scale.hess: must be > 0" in err


def test_map_term_recovers_after_leaving_the_map() -> None:
    """A source that moved off the map and back predicts the same counts (terms are pure)."""
    from gdask.likelihood.map import MapTerm
    from tests.likelihood.test_map import make_models

    models = make_models("pl", "point")
    term = MapTerm(make_map_dataset(), models)
    x = models.parameters.value.copy()
    names = models.parameters.names
    ref = term.stat(x)
    for shift in (0.3, 5.0):
        y = x.copy()
        y[names.index("lon_0")] += shift
        assert term.stat(y) != pytest.approx(ref)
        assert term.stat(x) == pytest.approx(ref, rel=1e-12)


def test_butterfly_and_flux_points() -> None:
    from gdask.analysis.results import butterfly, flux_points

    src = SkyModel(PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1"), name="s")
    names = ["s.spectral.index", "s.spectral.amplitude"]
    cov = np.diag([0.1**2, (1e-12) ** 2])
    e = np.array([1.0, 10.0])
    dnde, err = butterfly(src, names, cov, e)
    np.testing.assert_allclose(dnde, [1e-11, 1e-13])
    # at 1 TeV only the amplitude matters; at 10 TeV add the index: d/dindex = -ln(10) dnde
    np.testing.assert_allclose(err, [1e-12, 1e-13 * np.hypot(0.1, 0.1 * np.log(10))])
    spec = {
        "counts": np.array([110.0, 0.0, 30.0]),
        "npred_sig": np.array([100.0, 5.0, 0.0]),
        "npred_bkg": np.array([10.0, 1.0, 1.0]),
        "var_bkg": np.zeros(3),
        "mask": np.array([True, True, True]),
    }
    fp = flux_points(spec, np.array([1.0, 2.0, 4.0, 8.0]), src)
    assert fp["energy"].size == 2  # no predicted signal in the last bin
    np.testing.assert_allclose(fp["dnde"][0], 1.0 * src.spectral_model(np.sqrt(2.0)))
    np.testing.assert_allclose(
        fp["dnde_err"][0], np.sqrt(110) / 100 * src.spectral_model(np.sqrt(2.0))
    )


def test_ring_background_store_fits_with_wstat(stores: Path) -> None:
    """A MapDatasetOnOff store (ring background) fits with wstat and gets no FoV model."""
    from gdask.cli import main
    from gdask.reduce.ring import ring_background

    ds = make_map_dataset("stacked")
    ring = ring_background(ds, r_in=0.2, width=0.16, exclusion_mask=np.ones(ds.geom.shape, bool))
    DatasetStore(stores / "ring.zarr").write(ring, "stacked")
    data = run_dict()
    data["analyses"] = [{"name": "hess", "config": map_config("ring.zarr")}]
    data["fit"].pop("energy_scale")
    data["fit"]["fit_ranges"] = {"hess": [1, 10]}
    problem = build_term_specs(RunConfig.from_dict(data, stores))
    assert problem.models.names == ["src"]
    assert build_term(problem.specs[0]).stat_type == "wstat"
    (stores / "run.yaml").write_text(yaml.safe_dump(data))
    assert main(["fit", str(stores / "run.yaml"), "--out", str(stores / "out")]) == 0


def test_background_systematics_from_the_run_config(stores: Path) -> None:
    """fit.background_systematics: FoV norm/tilt priors per 3d analysis, linked per instrument."""
    data = run_dict()
    data["fit"]["background_systematics"] = {"hess": {"norm": 0.05, "tilt": 0.1, "per": "run"}}
    run = RunConfig.from_dict(data, stores)
    assert run.analysis("hess").background_systematics == (0.05, 0.1, "run")
    problem = build_term_specs(run)
    bkg = problem.models["hess-stacked-bkg"].spectral_model
    assert bkg.norm.prior.parameters["sigma"].value == 0.05 and not bkg.tilt.frozen
    assert bkg.tilt.prior.parameters["sigma"].value == 0.1
    # written and read back with the priors
    again = Models.from_yaml(problem.models.to_yaml())["hess-stacked-bkg"].spectral_model
    assert again.norm.prior.parameters["mu"].value == 1.0
    data["fit"]["background_systematics"] = {"hess": {"norm": 0.05}}
    problem = build_term_specs(RunConfig.from_dict(data, stores))
    assert problem.models["hess-stacked-bkg"].spectral_model.tilt.frozen


@pytest.mark.parametrize(
    "value, message",
    [
        ({"magic": {"norm": 0.1}}, "fit.background_systematics.magic: background systematics"),
        ({"hess": {"norm": -1}}, "fit.background_systematics.hess.norm: must be > 0"),
        ({"hess": {"norm": 0.1, "per": "night"}}, "fit.background_systematics.hess.per"),
        ({"hess": {"norm": 0.1, "colour": 1}}, "fit.background_systematics.hess.colour"),
        ({"hess": 0.1}, "fit.background_systematics.hess: must be a mapping"),
    ],
)
def test_background_systematics_errors(tmp_path: Path, value, message: str) -> None:
    data = run_dict()
    data["fit"]["background_systematics"] = value
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(data, tmp_path)
    assert message in str(err.value)


def test_energy_scale_for_a_3d_analysis(stores: Path) -> None:
    data = run_dict()
    data["fit"]["energy_scale"] = {"hess": 0.1}
    problem = build_term_specs(RunConfig.from_dict(data, stores))
    scale = problem.models["hess-energy-scale"]
    assert scale.datasets_names == ["hess-stacked"]
    term = build_term(problem.specs[0])
    pos = problem.models.parameters_unique_names.index(energy_scale_name("hess"))
    assert term.energy_scale is not None and term.energy_scale.position == pos
    assert pos in term.depends_on
    x = problem.models.parameters.value.copy()
    ref = term.stat(x)
    x[pos] = 0.05
    assert term.stat(x) != pytest.approx(ref, rel=1e-6)

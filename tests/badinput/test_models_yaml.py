"""Bad models YAML files, through ``gdask fit`` and through `Models.read`.

Each case writes one bad models file next to a run config whose
``fit.models`` points to it: the models are read before any dataset store,
so the failure is the file's. The CLI must exit 2 with one line naming the
file, the model and the parameter (or key); `Models.read` must raise a
`ConfigError` with the same names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gdask.errors import ConfigError
from gdask.models import Models
from tests.badinput.conftest import assert_clean_failure, run_cli

RUN_CONFIG = """\
analyses:
  - name: magic
    config:
      observations: {store: archives/magic.zarr}
      datasets:
        type: 1d
        on_region: {lon: 83.633, lat: 22.014, radius: 0.1}
        geom:
          axes:
            energy: {min: 0.08, max: 30, nbin: 16}
            energy_true: {min: 0.04, max: 30, nbin: 32}
      output: {store: datasets/magic.zarr}
fit:
  models: MODELS
"""


def _models(spectral: str, *, name: str = "crab", extra: str = "") -> str:
    return f"""\
components:
-   name: {name}
    type: SkyModel
    spectral:
{spectral}
{extra}"""


PL = """\
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: {index}
{index_keys}
        -   name: amplitude
            value: 1.0e-11
            unit: {amp_unit}
        -   name: reference
            value: 1.0
            unit: TeV
            frozen: true
"""


def _pl(index: object = 2.5, index_keys: str = "", amp_unit: str = "cm-2 s-1 TeV-1") -> str:
    return _models(PL.format(index=index, index_keys=index_keys, amp_unit=amp_unit))


def _misspelt() -> str:
    return _pl().replace("name: index", "name: indx")


# (id, file text, names the message must contain besides the file name)
CASES = [
    ("misspelt-parameter", _misspelt(), ["crab", "indx", "unknown parameter"]),
    (
        "value-outside-bounds",
        _pl(index=5.0, index_keys="            min: 1.0\n            max: 4.0"),
        ["crab", "index", "outside its bounds"],
    ),
    (
        "min-above-max",
        _pl(index_keys="            min: 4.0\n            max: 1.0"),
        ["crab", "index", "min 4 > max 1"],
    ),
    (
        "no-free-parameters",
        _pl(index_keys="            frozen: true").replace(
            "unit: cm-2 s-1 TeV-1", "unit: cm-2 s-1 TeV-1\n            frozen: true"
        ),
        ["crab", "no free parameter"],
    ),
    ("empty-components", "components: []\n", ["components", "no components"]),
    ("empty-file", "", ["not a models file"]),
    (
        "malformed-yaml",
        _pl().replace("    spectral:\n", "    spectral: [\n"),
        ["malformed YAML", "line"],
    ),
    (
        "not-a-models-file",
        "observations: {store: a.zarr}\ndatasets: {type: 1d}\n",
        ["not a models file", "components", "observations"],
    ),
    (
        "unknown-model-tag",
        _pl().replace("PowerLawSpectralModel", "PowerLowSpectralModel"),
        ["crab", "PowerLowSpectralModel", "spectral.type"],
    ),
    (
        "gammapy-only-model-tag",
        _pl().replace("PowerLawSpectralModel", "NaimaSpectralModel"),
        ["crab", "NaimaSpectralModel", "Gammapy 2.1 model that gdask does not implement"],
    ),
    ("value-not-a-number", _pl(index="abc"), ["crab", "index"]),
    ("value-a-list", _pl(index="[2.0, 3.0]"), ["crab", "index.value", "must be a number"]),
    ("frozen-not-a-bool", _pl(index_keys="            frozen: 3"), ["crab", "index.frozen"]),
    ("unit-not-convertible", _pl(amp_unit="TeV"), ["crab", "amplitude", "TeV"]),
    ("unit-unknown", _pl(amp_unit="furlongs"), ["crab", "amplitude", "furlongs"]),
    (
        "duplicated-parameter",
        _pl().replace("name: amplitude", "name: index"),
        ["crab", "index", "twice"],
    ),
    (
        "parameter-without-name",
        _pl().replace("-   name: amplitude\n", "-   nme: amplitude\n"),
        ["crab", "parameters[1]"],
    ),
    (
        "parameters-not-a-list",
        _models("        type: PowerLawSpectralModel\n        parameters: {index: 2}\n"),
        ["crab", "spectral.parameters"],
    ),
    (
        "skymodel-without-spectral",
        "components:\n-   name: crab\n    type: SkyModel\n",
        ["crab", "needs a spectral model"],
    ),
    (
        "unknown-component-type",
        _pl().replace("type: SkyModel", "type: SkyModle"),
        ["crab", "SkyModle", "crab.type"],
    ),
    (
        "fov-background-two-datasets",
        "components:\n-   type: FoVBackgroundModel\n    datasets_names: [a, b]\n",
        ["a-bkg", "exactly one dataset"],
    ),
    (
        "component-not-a-mapping",
        "components:\n- just a string\n",
        ["components[0]", "not a mapping"],
    ),
    ("value-not-finite", _pl(index=".nan"), ["crab", "index", "not finite"]),
    (
        "bad-frame",
        _pl() + "    spatial: {type: PointSpatialModel, frame: fk9, parameters: []}\n",
        ["crab", "crab.spatial", "fk9"],
    ),
    (
        "template-file-missing",
        _pl() + "    spatial: {type: TemplateSpatialModel, filename: no-such-map.fits}\n",
        ["crab", "crab.spatial", "no-such-map.fits"],
    ),
    (
        "compound-without-model2",
        _models(
            "        type: CompoundSpectralModel\n        operator: mul\n"
            "        model1: {type: PowerLawSpectralModel, parameters: []}\n"
        ),
        ["crab", "crab.spectral", "model2"],
    ),
    ("datasets-names-not-a-list", _pl() + "    datasets_names: 5\n", ["crab.datasets_names"]),
    ("apply-irf-not-a-mapping", _pl() + "    apply_irf: yes\n", ["crab.apply_irf"]),
    ("covariance-not-a-table", _pl() + "covariance: cov.dat\n", ["cov.dat", "covariance"]),
    (
        "bad-prior",
        _pl(index_keys="            prior: {type: GaussianPriorr, parameters: []}"),
        ["crab", "index.prior", "GaussianPriorr"],
    ),
]


def _write(tmp_path: Path, text: str) -> tuple[Path, Path]:
    models = tmp_path / "bad-models.yaml"
    models.write_text(text)
    (tmp_path / "cov.dat").write_text("not | a covariance\n")
    run = tmp_path / "run.yaml"
    run.write_text(RUN_CONFIG.replace("MODELS", models.name))
    return run, models


@pytest.mark.parametrize("text, names", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_models_file(tmp_path: Path, text: str, names: list[str]) -> None:
    run, models = _write(tmp_path, text)
    result = run_cli(["fit", run])
    assert result.code == 2, result.text
    assert_clean_failure(result, models.name, "gdask fit: error:", *names)
    assert len(result.err.strip().splitlines()) == 1, result.err
    with pytest.raises(ConfigError) as info:
        Models.read(models, require_free=True)
    assert info.value.file == str(models)
    for name in names:
        if name != "gdask fit: error:":
            assert name in str(info.value)


def test_missing_models_file(tmp_path: Path) -> None:
    run, models = _write(tmp_path, "")
    models.unlink()
    assert_clean_failure(run_cli(["fit", run]), models.name)
    with pytest.raises(ConfigError, match="models file not found"):
        Models.read(models)


def test_good_models_file_reads(tmp_path: Path) -> None:
    """The template of the cases is itself a good file (so each case tests one defect)."""
    _, models = _write(tmp_path, _pl(index_keys="            min: 1.0\n            max: 4.0"))
    m = Models.read(models, require_free=True)
    assert m["crab"].spectral_model.index.value == 2.5
    assert (m["crab"].spectral_model.index.min, m["crab"].spectral_model.index.max) == (1, 4)

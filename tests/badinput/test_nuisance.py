"""Bad nuisance components in a models YAML, through ``gdask fit`` and `Models.read`.

Each case adds one bad `EnergyScaleModel` to a good models file (the harness
of ``test_models_yaml.py``): the CLI must exit 2 with one line naming the
file, the component and the key or parameter; `Models.read` must raise a
`ConfigError` with the same names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gdask.errors import ConfigError
from gdask.models import EnergyScaleModel, Models
from tests.badinput.conftest import assert_clean_failure, run_cli
from tests.badinput.test_models_yaml import _pl, _write


def _nuisance(body: str, datasets: str = "    datasets_names: [magic-1]\n") -> str:
    return _pl() + "-   name: z_magic\n    type: EnergyScaleModel\n" + datasets + body


def _scale(kind: str = "EnergyBias", par: str = "z", value: str = "0.0") -> str:
    return (
        f"    energy_scale:\n        type: {kind}\n        parameters:\n"
        f"        -   name: {par}\n            value: {value}\n"
    )


CASES = [
    ("no-energy-scale-model", _nuisance(""), ["z_magic", "energy_scale"]),
    ("unknown-parametrisation", _nuisance(_scale("EnergyShift")), ["z_magic", "EnergyShift"]),
    ("misspelt-parameter", _nuisance(_scale(par="zz")), ["z_magic", "zz"]),
    ("value-outside-bounds", _nuisance(_scale(value="0.9")), ["z_magic", "z"]),
    ("no-datasets", _nuisance(_scale(), datasets=""), ["z_magic", "datasets_names"]),
    (
        "bad-prior",
        _nuisance(_scale() + "            prior: {type: GaussPrior, parameters: []}\n"),
        ["z_magic", "GaussPrior"],
    ),
]


@pytest.mark.parametrize("text, names", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_nuisance(tmp_path: Path, text: str, names: list[str]) -> None:
    run, models = _write(tmp_path, text)
    result = run_cli(["fit", run])
    assert result.code == 2, result.text
    assert_clean_failure(result, models.name, "gdask fit: error:", *names)
    assert len(result.err.strip().splitlines()) == 1, result.err
    with pytest.raises(ConfigError) as info:
        Models.read(models, require_free=True)
    for name in names:
        assert name in str(info.value)


def test_good_nuisance_reads(tmp_path: Path) -> None:
    """The template of the cases is itself a good file (so each case tests one defect)."""
    _, models = _write(tmp_path, _nuisance(_scale(value="0.1")))
    m = Models.read(models)["z_magic"]
    assert isinstance(m, EnergyScaleModel) and m.parameters["z"].value == 0.1

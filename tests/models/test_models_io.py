"""Models YAML text and files: what is not a models file is an error, not 0 models."""

from __future__ import annotations

from pathlib import Path

import pytest

from gdask.errors import ConfigError
from gdask.models import Models, PowerLawSpectralModel, SkyModel

NOT_MODELS = [
    "observations: {store: a.zarr}\ndatasets: {type: 1d}\n",
    "",
    "- just\n- a list\n",
    "components: []\n",
    "components: {a: 1}\n",
    "components: [1, 2]\n",
    "components: [\n",
]


@pytest.mark.parametrize("text", NOT_MODELS)
def test_from_yaml_refuses_what_is_not_models(text: str) -> None:
    with pytest.raises(ConfigError):
        Models.from_yaml(text)


@pytest.mark.parametrize("text", NOT_MODELS)
def test_read_names_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        Models.read(path)
    assert info.value.file == str(path)


def test_round_trip_still_works(tmp_path: Path) -> None:
    models = Models([SkyModel(PowerLawSpectralModel(index=2.7), name="a")])
    assert Models.from_yaml(models.to_yaml())["a"].spectral_model.index.value == 2.7
    models.write(tmp_path / "m.yaml")
    assert Models.read(tmp_path / "m.yaml").names == ["a"]

"""gdask.config.template: ``gdask config`` prints a valid, commented default configuration."""

from __future__ import annotations

import re

import yaml

from gdask.cli import main
from gdask.config import AnalysisConfig
from gdask.config.makers import BackgroundConfig, MakersConfig, SafeMaskConfig
from gdask.config.template import default_config

MINIMAL = {
    "observations": {"store": "archive.zarr"},
    "datasets": {
        "geom": {
            "wcs": {"skydir": {"lon": 83.633, "lat": 22.014}, "width": 3, "binsz": 0.02},
            "axes": {
                "energy": {"min": 0.7, "max": 10, "nbin": 10},
                "energy_true": {"min": 0.5, "max": 20, "nbin": 20},
            },
        }
    },
    "output": {"store": "datasets.zarr"},
}


def test_default_config_is_valid_and_holds_the_defaults(tmp_path):
    text = default_config()
    assert text.startswith("#")
    printed = AnalysisConfig.from_dict(yaml.safe_load(text), tmp_path)
    minimal = AnalysisConfig.from_dict(MINIMAL, tmp_path)
    assert printed == minimal  # the printed values are the defaults (and the examples)
    assert printed.makers == MakersConfig()
    # the commented optional keys are real keys: uncommented they validate too
    optional = re.sub(r"^(\s*)# (fov_method|n_off_regions): .*$", "", text, flags=re.M)
    doc = yaml.safe_load(optional.replace("    # method: fov", "    method: fov"))
    assert AnalysisConfig.from_dict(doc, tmp_path).makers.background.method == "fov"
    assert f"fov_method: {BackgroundConfig.fov_method}" in text
    assert f"aeff_percent: {SafeMaskConfig.aeff_percent}" in text


def test_cli_prints_it(capsys):
    assert main(["config"]) == 0
    assert capsys.readouterr().out == default_config()

"""The commented default analysis configuration printed by ``gdask config``.

Every default value comes from the configuration dataclasses (each default is
declared once, on its field); the required keys (the stores, the sky grid, the
energy axes) carry example values, marked as such. The text is a valid
configuration: ``AnalysisConfig.from_dict(yaml.safe_load(default_config()))``.

Examples
--------
>>> text = default_config()
>>> "offset_max: 2.5" in text
True
"""

from __future__ import annotations

import yaml

from gdask.config.analysis import DatasetsConfig, GeomConfig, OutputConfig, WcsConfig
from gdask.config.makers import BackgroundConfig, MakersConfig, SafeMaskConfig

__all__ = ["default_config"]


def _v(value: object) -> str:
    """``value`` as a YAML flow scalar or sequence."""
    if isinstance(value, tuple):
        value = list(value)
    return (
        yaml.safe_dump(value, default_flow_style=True, width=200)
        .strip()
        .removesuffix("...")
        .strip()
    )


def default_config() -> str:
    """The commented default analysis configuration (a valid YAML configuration)."""
    m, s, b = MakersConfig, SafeMaskConfig, BackgroundConfig
    lines = [
        "# gdask analysis configuration (see docs/reduction.md). Values marked 'example' are",
        "# required keys with an example value; every other value is the default. Commented",
        "# keys are optional (all keys: docs/reduction.md).",
        "observations:",
        "  store: archive.zarr             # example: the archive store (created by ingest)",
        "  # dl3: path/to/dl3              # a GADF DL3 folder or index, ingested first",
        "  # obs_ids: [23523, 23526]       # runs to reduce (default: every run of the store)",
        "  # cone: {lon: 83.633, lat: 22.014, radius: 5, frame: icrs}   # pointing cone (deg)",
        "  # time: {start: '2004-12-01', stop: '2005-01-01'}             # run start times",
        "datasets:",
        "  type: 3d                        # 3d (map datasets) or 1d (ON/OFF spectra)",
        f"  stack: {_v(DatasetsConfig.stack)}                    # stack the runs into one dataset",
        f"  containment_correction: {_v(DatasetsConfig.containment_correction)}   # 1d: correct for the PSF outside the ON region",
        "  geom:",
        "    wcs:",
        "      skydir: {lon: 83.633, lat: 22.014, frame: icrs}   # example: grid centre (deg)",
        "      width: 3                     # example: grid width (deg), or [width, height]",
        "      binsz: 0.02                  # example: pixel size (deg)",
        f"      proj: {_v(WcsConfig.proj)}                    # WCS projection",
        f"      binsz_irf: {_v(WcsConfig.binsz_irf)}               # pixel size of the IRF maps (deg)",
        "    axes:",
        "      energy: {min: 0.7, max: 10, nbin: 10, unit: TeV}        # example: reco energy",
        "      energy_true: {min: 0.5, max: 20, nbin: 20, unit: TeV}   # example: true energy",
        "    # cutout: {width: 2.5, mode: "
        + _v(GeomConfig.cutout_mode)
        + "}   # per-run cutouts of the grid",
        "  # on_region: {lon: 83.633, lat: 22.014, radius: 0.11, frame: icrs}   # 1d ON region",
        "makers:",
        f"  selection: {_v(m.selection)}   # maps to make",
        f"  offset_max: {_v(m.offset_max)}                 # largest offset from the pointing (deg)",
        f"  fov_rotation_step: {_v(m.fov_rotation_step)}          # ALTAZ background: FoV rotation per step (deg)",
        "  # background_oversampling: 4    # background energy oversampling (default: none)",
        "  safe_mask:",
        f"    methods: {_v(s.methods)}                    # aeff-default, aeff-max, edisp-bias, offset-max, bkg-peak",
        f"    aeff_percent: {_v(s.aeff_percent)}             # aeff-max: % of the maximum effective area",
        f"    bias_percent: {_v(s.bias_percent)}             # edisp-bias: largest energy bias (%)",
        "    # fixed_offset: 0.5            # evaluate the masks at this offset (deg)",
        "  background:",
        "    # method: fov                  # 3d: fov or ring; 1d: reflected or wobble (default: none)",
        f"    # fov_method: {_v(b.fov_method)}            # fov: scale or fit",
        "    # exclusion: {regions: ['icrs;circle(83.633, 22.014, 0.3)']}   # or file: mask.fits",
        "    # r_in: 0.7                    # ring: inner radius (deg)",
        "    # width: 0.44                  # ring: width (deg)",
        "    # n_off_regions: 3             # wobble: number of OFF regions",
        "output:",
        "  store: datasets.zarr            # example: the dataset store",
        f"  overwrite: {_v(OutputConfig.overwrite)}                # replace datasets already in the store",
        "  # per_run: true                 # also write the per-run datasets when stacking",
        "  # fits: fits/                   # also export FITS (3d) / OGIP (1d) files here",
        "# fit:                            # consumed by gdask fit / gdask run",
        "#   models: models.yaml           # Gammapy models YAML",
        "#   fit_range: {min: 1, max: 10, unit: TeV}",
    ]
    return "\n".join(lines) + "\n"

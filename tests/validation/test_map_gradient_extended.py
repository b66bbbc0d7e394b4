"""The map term's analytic gradient against central finite differences, small extensions.

On one run of Gammapy's reduction of the H.E.S.S. Crab runs (0.02 deg pixels):
Gaussian, disk, elliptical Gaussian/disk and point sources, extensions from
sub-pixel (oversampled by up to ``ceil(0.02 / bin_size_min)``) to many pixels,
at two positions. The extensions avoid the points where the oversampling
factor or the cutout size switch (e.g. sigma = 0.003 deg: ``0.02 / (0.003 / 3)
== 20``): there the computed value itself jumps (as in Gammapy) and a finite
difference straddling the switch is not a derivative.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pytest

from gdask.likelihood import TermSpec, build_term
from gdask.models import Models

RUN = 23523
POSITIONS = [(83.6295, 22.0117), (83.651, 21.997)]
# (type, extension parameter, values, extra parameters)
CASES: list[tuple[str, str | None, list[float | None], str]] = [
    ("GaussianSpatialModel", "sigma", [0.0031, 0.0107, 0.0122, 0.0562, 0.21], ""),
    ("GaussianSpatialModel", "sigma", [0.0031, 0.0122, 0.0562], "e: 0.6, phi: 30"),
    ("DiskSpatialModel", "r_0", [0.0043, 0.0122, 0.053, 0.21], "edge_width: 0.2"),
    ("DiskSpatialModel", "r_0", [0.0122, 0.053], "edge_width: 0.2, e: 0.6, phi: 30"),
    ("PointSpatialModel", None, [None], ""),
]
PARAMS = [
    (kind, ext, value, extra, pos)
    for kind, ext, values, extra in CASES
    for value in values
    for pos in POSITIONS
]


def _yaml(kind: str, ext: str | None, value: float | None, extra: str, pos: tuple) -> str:
    pars = [
        f"{{name: lon_0, value: {pos[0]}, unit: deg}}",
        f"{{name: lat_0, value: {pos[1]}, unit: deg}}",
    ]
    if ext is not None:
        pars.append(f"{{name: {ext}, value: {value}, unit: deg}}")
    for item in filter(None, (s.strip() for s in extra.split(","))):
        name, v = (t.strip() for t in item.split(":"))
        unit = ", unit: deg" if name == "phi" else ""
        pars.append(f"{{name: {name}, value: {v}{unit}}}")
    lines = "\n".join(f"    - {p}" for p in pars)
    return f"""components:
- name: src
  type: SkyModel
  spectral:
    type: PowerLawSpectralModel
    parameters:
    - {{name: index, value: 2.5}}
    - {{name: amplitude, value: 4.0e-11, unit: cm-2 s-1 TeV-1}}
    - {{name: reference, value: 1.0, unit: TeV}}
  spatial:
    type: {kind}
    frame: icrs
    parameters:
{lines}
- type: FoVBackgroundModel
  name: {RUN}-bkg
  datasets_names: ['{RUN}']
  spectral:
    type: PowerLawNormSpectralModel
    parameters:
    - {{name: norm, value: 1.0}}
    - {{name: tilt, value: 0.0, frozen: true}}
    - {{name: reference, value: 1.0, unit: TeV}}
"""


@pytest.fixture(scope="module")
def run_file(tmp_path_factory, gp_hess_crab: Any) -> Path:
    warnings.simplefilter("ignore")
    path = tmp_path_factory.mktemp("grad") / f"gammapy_{RUN}.fits"
    copy.deepcopy(gp_hess_crab.datasets[RUN]).write(path)
    return path


@pytest.mark.parametrize(("kind", "ext", "value", "extra", "pos"), PARAMS)
def test_map_gradient_matches_finite_differences(run_file, kind, ext, value, extra, pos):
    models = Models.from_yaml(_yaml(kind, ext, value, extra, pos))
    term = build_term(TermSpec("map", str(RUN), str(run_file), models.to_dict()))
    values = models.parameters.value.copy()
    stat, grad = term.stat_and_grad(values)
    names = [p.name for p in models.parameters]
    checked = ["lon_0", "lat_0", "amplitude", "index"] + ([ext] if ext else [])
    for name in checked + (["e", "phi"] if "e:" in extra else []):
        i = names.index(name)
        angle = name in ("lon_0", "lat_0", "phi", ext)
        h = 1e-5 if angle else 1e-6 * (abs(values[i]) or 1.0)
        vp, vm = values.copy(), values.copy()
        vp[i] += h
        vm[i] -= h
        fd = (term.stat(vp) - term.stat(vm)) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=2e-4, abs=1e-2), (name, grad[i], fd)

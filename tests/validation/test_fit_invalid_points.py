"""A fit that wanders where the models are undefined ends with a status (issue 9 item 5).

On a real H.E.S.S. DR1 dataset (the Crab run 23523, reduced by Gammapy) an
elliptical disk in galactic coordinates with an unbounded position: at a
latitude past the pole the map term raises ``ValueError`` (the frame
transformation), as the disk fit of the issue did in ``_edisp_matrix`` after
MIGRAD moved lon_0 to 489450 deg. For the minimiser that is an invalid point;
the fit goes on and ends with a status.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import gdask.models as gm
from gdask.fit import Coordinator, Fit, FitProblem, Objective
from gdask.likelihood import TermSpec

pytestmark = [pytest.mark.validation, pytest.mark.realdata, pytest.mark.slow]

# the Crab at (l, b) = (184.557, -5.784)
DISK = """components:
- name: crab
  type: SkyModel
  spectral:
    type: PowerLawSpectralModel
    parameters:
    - {name: index, value: 2.5}
    - {name: amplitude, value: 4.0e-11, unit: cm-2 s-1 TeV-1}
    - {name: reference, value: 1.0, unit: TeV}
  spatial:
    type: DiskSpatialModel
    frame: galactic
    parameters:
    - {name: lon_0, value: 184.55, unit: deg}
    - {name: lat_0, value: -5.78, unit: deg}
    - {name: r_0, value: 0.1, unit: deg}
    - {name: e, value: 0.2, frozen: false}
    - {name: phi, value: 30, unit: deg, frozen: false}
"""


@pytest.fixture(scope="module")
def crab_run(tmp_path_factory, gp_hess_crab) -> Path:
    warnings.simplefilter("ignore")
    path = tmp_path_factory.mktemp("invalid") / "23523.fits"
    gp_hess_crab.datasets[23523].write(path)
    return path


def test_a_point_past_the_pole_is_invalid_not_an_exception(crab_run: Path) -> None:
    models = gm.Models.from_yaml(DISK)
    spec = TermSpec("map", "23523", str(crab_run), models.to_dict(), {})
    with Coordinator([spec]) as coord:
        prob = FitProblem(models, autoscale=True)
        obj = Objective(prob, coord)
        start = prob.factors0()
        assert np.isfinite(obj.evaluate(start)[0])
        lat = prob.free_names.index("crab.spatial.lat_0")
        past = start.copy()
        past[lat] = 95.0 / prob.free_scales[lat]
        stat, grad, stats = obj.evaluate(past)
        assert not np.isfinite(stat) and np.isnan(grad).all() and np.isnan(stats).all()
        assert obj.n_invalid == 1 and "Latitude" in obj.last_invalid
        with pytest.raises(ValueError, match="Latitude"):
            obj.evaluate(past, strict=True)
        assert np.isfinite(obj.evaluate(start)[0])  # the term still answers where it is defined


def test_a_wandering_disk_fit_ends_with_a_status(crab_run: Path) -> None:
    """MIGRAD's first steps of 100 deg in latitude (the given errors) leave the sphere."""
    text = DISK.replace("value: -5.78, unit: deg}", "value: -5.78, unit: deg, error: 100}")
    models = gm.Models.from_yaml(text)
    spec = TermSpec("map", "23523", str(crab_run), models.to_dict(), {})
    with Coordinator([spec]) as coord:
        result = Fit(models, coord, hessian="numerical").run()
    assert isinstance(result.success, bool) and result.message
    assert result.covariance_message
    print(result.message, result.covariance_message, result.total_stat)

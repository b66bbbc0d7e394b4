"""Bad input to the estimators: one GdaskError naming the field, no traceback from numpy."""

from __future__ import annotations

import pytest

from gdask.datasets import MapDataset
from gdask.errors import GdaskError
from gdask.estimators.excess_map import ExcessMapEstimator
from gdask.estimators.sensitivity import SensitivityEstimator
from gdask.estimators.ts_map import TSMapEstimator
from tests.estimators.test_excess_map import _datasets


def _no(ds, key):
    return MapDataset.from_dataset(ds.ds.drop_vars(key))


@pytest.mark.parametrize(
    "make,field",
    [
        (lambda on, off: (TSMapEstimator(kernel_width=0.2), off), "counts_off"),
        (lambda on, off: (TSMapEstimator(kernel_width=0.2), _no(on, "background")), "background"),
        (lambda on, off: (TSMapEstimator(kernel_width=0.2), _no(on, "exposure")), "exposure"),
        (lambda on, off: (TSMapEstimator(kernel_width=-1.0), on), "kernel_width"),
        (
            lambda on, off: (TSMapEstimator(kernel_width=0.2, energy_edges=[20, 30]), on),
            "energy_edges",
        ),
        (
            lambda on, off: (
                TSMapEstimator(kernel_width=0.2),
                MapDataset.from_dataset(on.ds.assign(mask_safe=on.ds["mask_safe"] & False)),
            ),
            "mask_safe",
        ),
        (lambda on, off: (ExcessMapEstimator(correlation_radius=0.0), on), "correlation_radius"),
        (lambda on, off: (ExcessMapEstimator(), _no(on, "background")), "background"),
        (lambda on, off: (SensitivityEstimator(), _no(on, "background")), "background"),
    ],
    ids=[
        "ts-onoff",
        "ts-nobkg",
        "ts-noexpo",
        "ts-width",
        "ts-edges",
        "ts-nomask",
        "ex-radius",
        "ex-nobkg",
        "sens-nobkg",
    ],
)
def test_bad_input_names_the_field(make, field):
    on, off, *_ = _datasets()
    est, ds = make(on, off)
    with pytest.raises(GdaskError) as err:
        est.run(ds)
    assert err.value.field == field
    assert "\n" not in str(err.value)

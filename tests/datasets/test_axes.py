"""gdask.datasets.axes: the axis type both dataset types return."""

from __future__ import annotations

import numpy as np

from gdask.datasets import BandAxis
from tests.likelihood.test_map import make_dataset as make_map_dataset
from tests.likelihood.test_spectrum import make_dataset as make_spectrum_dataset


def test_both_dataset_types_return_band_axes() -> None:
    for ds in (make_map_dataset(), make_spectrum_dataset()):
        for axis in (ds.energy_axis, ds.energy_axis_true):
            assert isinstance(axis, BandAxis)
            assert axis.node_type == "edges"
            np.testing.assert_array_equal(axis.edges, axis.axis.edges)
            assert axis.quantity_edges.unit == axis.unit == "TeV"
            assert axis.interp == "log"

"""Run selection by obs-index columns (`select_obs_ids`) on the real H.E.S.S. DR1 index."""

from __future__ import annotations

import numpy as np
import pytest

from gdask.archive.ingest import ingest
from gdask.archive.store import ArchiveStore
from gdask.config import AnalysisConfig
from gdask.errors import ConfigError, SelectionError
from gdask.reduce.graph import column_matches, select_obs_ids

pytestmark = pytest.mark.realdata

# two Crab runs, one PKS 2155-304 flare run, one MSH 15-52 run
RUNS = [23523, 23526, 33787, 20136]


@pytest.fixture(scope="module")
def store(hess_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("select") / "archive.zarr"
    assert ingest(hess_dir, path, obs_ids=RUNS, progress=False, n_workers=1, processes=False).ok
    return ArchiveStore.open(path)


def _select(store, columns) -> list[int]:
    cfg = AnalysisConfig.from_dict(
        {
            "observations": {"store": str(store.path), "columns": columns},
            "datasets": {
                "type": "3d",
                "geom": {
                    "wcs": {"skydir": {"lon": 83.6, "lat": 22.0}, "width": 2, "binsz": 0.1},
                    "axes": {
                        "energy": {"min": 0.7, "max": 10, "nbin": 4},
                        "energy_true": {"min": 0.5, "max": 20, "nbin": 6},
                    },
                },
            },
            "output": {"store": str(store.path.parent / "datasets.zarr")},
        }
    )
    return select_obs_ids(cfg, store)


def test_the_stored_index_has_a_numpy_string_column(store):
    # the column type that made the selection fail with "cannot cast dtype StringDType()"
    assert store.index()["TARGET_NAME"].dtype.kind == "T"


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"TARGET_NAME": "Crab"}, [23523, 23526]),
        ({"TARGET_NAME": ["Crab", "MSH 15-52"]}, [20136, 23523, 23526]),
        ({"TARGET_NAME": "PKS 2155-304 (flare)", "ZEN_PNT": [0, 60]}, [33787]),
        ({"OBS_ID": ["23526", 33787]}, [23526, 33787]),  # mixed list on a numeric column
        ({"OBS_ID": 20136}, [20136]),  # a number: equality
        ({"TELLIST": "1,2,3,4", "TARGET_NAME": "Crab"}, [23523, 23526]),
    ],
)
def test_string_and_mixed_selections(store, columns, expected):
    assert _select(store, columns) == expected


def test_no_match_names_the_selection(store):
    with pytest.raises(SelectionError, match="no selected observation has TARGET_NAME") as info:
        _select(store, {"TARGET_NAME": "Crab Nebula"})
    assert info.value.field == "observations.columns.TARGET_NAME"
    assert "'Crab'" in str(info.value)  # what the index has instead
    with pytest.raises(SelectionError, match="matches none of the 4 observations"):
        _select(store, {"ZEN_PNT": [80, 90]})
    with pytest.raises(SelectionError, match="not numeric") as info:
        _select(store, {"TARGET_NAME": [0, 1]})
    assert info.value.field == "observations.columns.TARGET_NAME"
    with pytest.raises(ConfigError, match="must be a string or a number"):
        _select(store, {"TARGET_NAME": ["Crab", None]})


def test_column_matches_dtypes():
    for values in (
        np.array(["Crab", "Off data"], dtype=np.dtypes.StringDType()),
        np.array(["Crab", "Off data"]),
        np.array([b"Crab", b"Off data"]),
        np.array(["Crab", 3], dtype=object),
    ):
        assert column_matches(values, ["Crab"]).tolist() == [True, False]
    assert column_matches(np.array([1.0, 2.5]), ["1", 2.5]).tolist() == [True, True]

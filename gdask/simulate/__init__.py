"""Simulation of DL3 data (pure numpy, no Dask): analytic IRFs, event sampling, GADF archives.

See ``docs/simulation.md``.
"""

from gdask.simulate.archive import (
    CRAB_POSITION,
    DEFAULT_INSTRUMENTS,
    SimulationSummary,
    default_sky_model,
    load_sky_models,
    simulate_archive,
    simulate_observation,
    wobble_runs,
)
from gdask.simulate.events import (
    Run,
    expected_counts,
    offset_by,
    sample_background_events,
    sample_source_events,
    separation,
)
from gdask.simulate.irfs import (
    PRESETS,
    InstrumentPreset,
    Response,
    get_response,
    make_response,
    response_from_archive,
)

__all__ = [
    "CRAB_POSITION",
    "DEFAULT_INSTRUMENTS",
    "PRESETS",
    "InstrumentPreset",
    "Response",
    "Run",
    "SimulationSummary",
    "default_sky_model",
    "expected_counts",
    "get_response",
    "load_sky_models",
    "make_response",
    "offset_by",
    "response_from_archive",
    "sample_background_events",
    "sample_source_events",
    "separation",
    "simulate_archive",
    "simulate_observation",
    "wobble_runs",
]

"""Configuration: the analysis configuration (one instrument's reduction) and its validation.

- `gdask.config.analysis`: `AnalysisConfig` and its sections (``observations``,
  ``datasets``, ``makers``, ``output``, ``fit``);
- `gdask.config.parse`: the validation helpers and the YAML loader, shared with
  the joint run configuration (`gdask.run_config`);
- `gdask.config.template`: the commented default configuration (``gdask config``).

The package sits below `gdask.reduce` (which reads its ``AnalysisConfig``) and
imports nothing of gdask but `gdask.errors`.
"""

from gdask.config.analysis import *  # noqa: F403
from gdask.config.analysis import __all__ as _analysis_all
from gdask.config.parse import (
    Section,
    as_energy,
    as_number,
    as_path,
    as_str,
    fail,
    read_yaml,
)

# Transition (issue 10, item 7): `gdask.run_config` imports these private names from
# here; it is being rewritten in parallel and moves into this package next, using the
# public names of `gdask.config.parse`. Remove the aliases then.
_Section = Section
_energy = as_energy
_fail = fail
_number = as_number
_path = as_path
_read_yaml = read_yaml
_str = as_str

__all__ = list(_analysis_all)

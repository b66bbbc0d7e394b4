"""Analysis orchestration: run = (ingest ->) reduce per instrument -> joint fit -> results folder.

* `gdask.run_config` — the joint run configuration (several instruments, one fit);
* `specs` — datasets of the stores -> joint models and `~gdask.likelihood.TermSpec` list;
* `pipeline` — `fit_run` (``gdask fit``) and `run_pipeline` (``gdask run``);
* `results` — spectra at the best fit, tables, summary, the results folder and plots;
* `demo` — ``gdask demo``: simulated three-instrument joint fit against the truth.

See ``docs/analysis.md``.
"""

from gdask.analysis.pipeline import ReduceFailed, fit_run, run_pipeline
from gdask.analysis.results import FitOutcome, write_results
from gdask.analysis.specs import JointProblem, build_term_specs, choose_mode, store_datasets

__all__ = [
    "FitOutcome",
    "JointProblem",
    "ReduceFailed",
    "build_term_specs",
    "choose_mode",
    "fit_run",
    "run_pipeline",
    "store_datasets",
    "write_results",
]

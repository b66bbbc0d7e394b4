"""The orchestration: ``run`` = (ingest ->) reduce per instrument -> one joint fit -> results.

`fit_run` fits what the dataset stores of a `~gdask.run_config.RunConfig`
hold; `run_pipeline` reduces first (ingesting ``observations.dl3`` when
given), all on one Dask client, then calls `fit_run` with that client.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gdask.analysis.results import FitOutcome, dataset_spectra, write_results
from gdask.analysis.specs import build_term_specs, choose_mode, read_models
from gdask.errors import GdaskError
from gdask.run_config import RunConfig

__all__ = ["fit_run", "run_pipeline", "ReduceFailed"]


class ReduceFailed(GdaskError):
    """Some runs of an analysis could not be reduced (the summary says which)."""


@contextlib.contextmanager
def _client_for(
    client: Any, scheduler: str | None, n_workers: int | None, processes: bool, security: Any = None
) -> Iterator[Any]:
    """The client of `gdask.cluster.ClientSource` (``client``, the default client or a new one)."""
    from gdask.cluster import ClientSource

    source = ClientSource.wrap(
        client, scheduler, n_workers=n_workers, processes=processes, security=security
    )
    try:
        yield source.get()
    finally:
        if source is not client:
            source.close()


def _n_workers(client: Any) -> int:
    return len(client.scheduler_info()["workers"]) if client is not None else 0


def fit_run(
    run: RunConfig,
    out: str | Path | None = None,
    *,
    client: Any = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    processes: bool = True,
    mode: str | None = None,
    injected: Any = None,
    log: Any = print,
    write: bool = True,
    security: Any = None,
) -> FitOutcome:
    """Joint fit of every analysis' datasets; write the results folder when ``out`` is given.

    Parameters
    ----------
    run : RunConfig
    out : str or Path, optional
        Results folder (default ``run.output``; None: write nothing).
    client : distributed.Client, optional
        Use it in distributed mode; else one is made for ``scheduler`` /
        ``DASK_SCHEDULER_ADDRESS`` / a LocalCluster of ``n_workers`` (default: one per core).
    mode : {"auto", "distributed", "in-process"}, optional
        Overrides ``run.fit.mode``; see `gdask.analysis.specs.choose_mode`.
    injected : Models, optional
        Drawn in the spectrum plot (simulations).
    log : callable
        Progress messages (``print``; ``None`` for silence).
    write : bool
        Write the results folder (else only return the outcome).
    """
    from gdask.fit import Coordinator, Fit
    from gdask.fit.backends import INVALID_POINT_ERRORS

    t0 = time.perf_counter()
    say = log or (lambda *_: None)
    problem = build_term_specs(run)
    wanted = mode or run.fit.mode
    chosen = choose_mode(wanted, problem, scheduler)
    say(
        f"fit: {len(problem.specs)} datasets, {problem.total_bins} bins, "
        f"{len(problem.models.parameters.free_parameters)} free parameters; {chosen} "
        f"(mode {wanted})"
    )
    with contextlib.ExitStack() as stack:
        c = None
        if chosen == "distributed":
            c = stack.enter_context(_client_for(client, scheduler, n_workers, processes, security))
        t_fit = time.perf_counter()
        coord = stack.enter_context(Coordinator(problem.specs, c))
        fit = Fit(
            problem.models,
            coord,
            backend=run.fit.backend,
            strategy=run.fit.strategy,
            tol=run.fit.tol,
            polish=run.fit.polish,
            penalties=problem.penalties,
        )
        result = fit.run()
        fit_time = time.perf_counter() - t_fit
        try:
            spectra = dataset_spectra(coord, problem.models.parameters.value)
        except INVALID_POINT_ERRORS as exc:  # the fit ended where the models are undefined
            say(f"fit: no per-dataset spectra at the end point ({type(exc).__name__}: {exc})")
            spectra = {}
        outcome = FitOutcome(
            result, problem, spectra, chosen, _n_workers(c), time.perf_counter() - t0, fit_time
        )
    say(
        f"fit: {result.message} {result.covariance_message} "
        f"({result.n_evaluations} evaluations, {fit_time:.2f} s)"
    )
    out = out if out is not None else run.output
    if out is not None and write:
        write_results(outcome, out, injected=injected)
    return outcome


def run_pipeline(
    run: RunConfig,
    out: str | Path | None = None,
    *,
    client: Any = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    processes: bool = True,
    mode: str | None = None,
    progress: bool = True,
    injected: Any = None,
    log: Any = print,
    security: Any = None,
) -> FitOutcome | None:
    """For each analysis: ingest (``observations.dl3``) and reduce; then one joint fit.

    Everything runs on one client (given, or made as in `fit_run`); the fit
    itself follows ``mode`` / ``run.fit.mode``. Without models
    (``run.fit.models`` None) there is nothing to fit: reduce only, return None.

    Raises
    ------
    ReduceFailed
        When some run of an analysis failed to reduce (nothing is fitted).
    """
    from gdask.reduce.graph import reduce

    t0 = time.perf_counter()
    say = log or (lambda *_: None)
    if run.fit.models is not None:
        read_models(run.fit.models)  # a bad models file fails before any work
    with _client_for(client, scheduler, n_workers, processes, security) as c:
        say(f"cluster: {_n_workers(c)} workers ({time.perf_counter() - t0:.1f} s)")
        for a in run.analyses:
            if a.config is None:  # existing dataset files or store: nothing to reduce
                continue
            summary = reduce(a.config, client=c, progress=progress)
            say(f"[{a.name}] " + summary.format())
            if not summary.ok:
                raise ReduceFailed(
                    f"analysis {a.name!r}: {len(summary.failed)} runs failed to "
                    "reduce:\n" + summary.format(),
                    field="analyses",
                )
        if run.fit.models is None:
            say("no fit.models configured: reduced only, nothing to fit")
            return None
        outcome = fit_run(run, None, client=c, scheduler=scheduler, mode=mode, log=log, write=False)
    outcome.wall_time = time.perf_counter() - t0
    out = out if out is not None else run.output
    if out is not None:
        write_results(outcome, out, injected=injected)
    return outcome

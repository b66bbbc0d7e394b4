#!/usr/bin/env python
"""Benchmark: re-optimised likelihood profile of alpha (joint-Crab log-parabola), gdask vs Gammapy 2.1.

Command (from the repository root)::

    .venv/bin/python benchmarks/bench_profile.py [--n-values 20] [--modes sequential threads replicas]

"Profile of alpha at 20 points, re-optimised" (Gammapy ~10.5 s here): alpha is a
parameter of only one configuration of the baselines and acceptance tests, the
joint-Crab log-parabola fit (10 OGIP spectra, WSTAT, E0 = 1 TeV; see
bench_fit_joint_crab.py). After the best fit, alpha is fixed at 20 values
(best +- 2 sigma, Gammapy's ``scan_n_sigma`` default) and amplitude and beta
re-optimised at each.

Gammapy: ``Fit().run`` then ``Fit().stat_profile(datasets, "alpha", reoptimize=True)``
with ``alpha.scan_n_values = 20`` (points sequential). gdask: ``Fit.stat_profile(
"alpha", values=<Gammapy's scan values>, reoptimize=True, parallel=...)`` with
``sequential`` (in-process, ``parallel=None``), ``threads`` (2-worker
LocalCluster, points minimised concurrently over the resident terms) and
``replicas`` (2-worker LocalCluster, one copy of all terms per worker, each
point's minimisation one task). Only the profile is timed (the best fit and
building the terms are reported separately). Target: >= 10x.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import (
    NEVAL,
    Machine,
    crab_specs,
    crab_yaml,
    gammapy_crab_datasets,
    install_eval_counter,
    local_cluster,
    ratio,
    timed,
)


def run_gammapy(n_values: int) -> dict:
    from gammapy.modeling import Fit
    from gammapy.modeling.models import Models

    install_eval_counter()
    datasets = gammapy_crab_datasets()
    datasets.models = Models.from_yaml(crab_yaml())
    fit = Fit()
    with timed("gammapy: best fit (fit.run)"):
        fit.run(datasets)
    par = datasets.models.parameters["alpha"]
    par.scan_n_values = n_values
    n0 = NEVAL["n"]
    t0 = time.perf_counter()
    prof = fit.stat_profile(datasets, par, reoptimize=True)
    dt = time.perf_counter() - t0
    nev = NEVAL["n"] - n0
    values = np.asarray(prof[next(k for k in prof if k.endswith("_scan") and k != "stat_scan")])
    print(f"  gammapy profile: {dt:.2f} s, {nev} evaluations", flush=True)
    return {"time": dt, "evals": nev, "values": values, "stat": np.asarray(prof["stat_scan"])}


def run_gdask(values: np.ndarray, mode: str) -> dict:
    from gdask.fit import Coordinator, Fit
    from gdask.models import Models

    def profile(client: object | None, parallel: str | None) -> dict:
        models = Models.from_yaml(crab_yaml())
        with Coordinator(crab_specs(models), client) as coord:
            fit = Fit(models, coord)
            with timed(f"gdask {mode}: best fit (fit.run)"):
                fit.run()
            e0 = coord.n_evaluations
            t0 = time.perf_counter()
            prof = fit.stat_profile("alpha", values=values, reoptimize=True, parallel=parallel)
            dt = time.perf_counter() - t0
            nev = coord.n_evaluations - e0
        if parallel == "replicas":  # evaluations happen inside the point tasks
            nev = sum(p["n_evaluations"] for p in prof["fit_results"])
        print(
            f"  gdask {mode} profile: {dt:.3f} s, {nev} evaluations, success {prof['success']}",
            flush=True,
        )
        return {"time": dt, "evals": nev, "stat": np.asarray(prof["stat_scan"])}

    if mode == "sequential":
        return profile(None, None)
    with local_cluster(2) as client:
        return profile(client, mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-values", type=int, default=20)
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["sequential", "threads", "replicas"],
        choices=["sequential", "threads", "replicas"],
    )
    args = parser.parse_args()
    machine = Machine()
    g = run_gammapy(args.n_values)
    rows = [(mode, run_gdask(g["values"], mode)) for mode in args.modes]
    print(
        f"\nSUMMARY profile of alpha, {args.n_values} points re-optimised "
        f"(alpha {g['values'][0]:.4f} .. {g['values'][-1]:.4f}):"
    )
    print(f"  gammapy 2.1                      {g['time']:8.3f} s   {g['evals']:5d} evaluations")
    for mode, r in rows:
        where = "in-process" if mode == "sequential" else "2-worker LocalCluster"
        dstat = np.max(np.abs((r["stat"] - r["stat"].min()) - (g["stat"] - g["stat"].min())))
        print(
            f"  gdask {mode:10s} {where:21s} {r['time']:8.3f} s   {r['evals']:5d} evaluations"
            f"   speed-up {ratio(g['time'], r['time'])}   max |d(delta stat)| {dstat:.1e}"
        )
    machine.report()


if __name__ == "__main__":
    main()

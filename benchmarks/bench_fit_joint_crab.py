#!/usr/bin/env python
"""Benchmark: joint-Crab fit (10 OGIP spectra, WSTAT, log-parabola), gdask vs Gammapy 2.1.

Command (from the repository root)::

    .venv/bin/python benchmarks/bench_fit_joint_crab.py [--repeat 5] [--no-cluster]

Configuration (as tests/validation/test_fit_vs_gammapy.py): the ON/OFF spectra
of joint-crab/spectra (Fermi-LAT, MAGIC x2, VERITAS x2, FACT, H.E.S.S. x4), one
dataset per observation, bins with QUALITY == 0, fit ranges Fermi 0.03-2,
MAGIC 0.08-30, VERITAS 0.15-30, FACT 0.4-30, H.E.S.S. 0.66-30 TeV; model
LogParabola (natural log, E0 = 1 TeV) started at amplitude 3.8e-11
cm-2 s-1 TeV-1, alpha 2.5, beta 0.1.

Gammapy: ``Fit().run`` (MIGRAD strategy 1, tol 0.1 + HESSE), likelihood
evaluations counted as ``Datasets.stat_sum`` calls. gdask: ``Fit(models,
coordinator).run()`` (MIGRAD with the analytic gradient, strategy 0, + HESSE
from gradient differences) in-process and on a 2-worker LocalCluster. Each fit
is repeated ``--repeat`` times from the start values; medians are compared
(reading the files / building the terms is timed separately). Target: gdask
>= 3x faster than Gammapy's ~1.1 s.
"""

from __future__ import annotations

import argparse
import statistics

from _common import (
    NEVAL,
    Machine,
    compare,
    crab_specs,
    crab_yaml,
    gammapy_crab_datasets,
    install_eval_counter,
    loadavg,
    local_cluster,
    ratio,
    timed,
)

#: wall times of reading / building, by label (filled by `timed`)
READ: dict[str, float] = {}


def run_gammapy(repeat: int) -> tuple[list[float], int, object]:
    from time import perf_counter

    from gammapy.modeling import Fit
    from gammapy.modeling.models import Models

    install_eval_counter()
    with timed("gammapy: read 10 spectra", READ):
        datasets = gammapy_crab_datasets()
    times, nev = [], 0
    for _ in range(repeat):
        datasets.models = Models.from_yaml(crab_yaml())
        n0 = NEVAL["n"]
        t0 = perf_counter()
        res = Fit().run(datasets)
        times.append(perf_counter() - t0)
        nev = NEVAL["n"] - n0
    print(
        f"  gammapy fit.run: median {statistics.median(times):.3f} s (runs: "
        f"{', '.join(f'{t:.3f}' for t in times)}), stat_sum calls {nev}, nfev {res.nfev}, "
        f"success {res.success}",
        flush=True,
    )
    return times, nev, datasets.models


def run_gdask(repeat: int, client: object | None, label: str) -> tuple[list[float], object]:
    from time import perf_counter

    import gdask.likelihood.spectrum  # noqa: F401 - imported before the timing, as Gammapy is
    from gdask.fit import Coordinator, Fit
    from gdask.models import Models

    models = Models.from_yaml(crab_yaml())
    coord = Coordinator(crab_specs(models), client)
    times = []
    try:
        with timed(f"gdask {label}: build terms (read 10 spectra)", READ):
            coord.start()
        for _ in range(repeat):
            models = Models.from_yaml(crab_yaml())
            t0 = perf_counter()
            res = Fit(models, coord).run()
            times.append(perf_counter() - t0)
    finally:
        coord.close()
    print(
        f"  gdask {label} fit.run: median {statistics.median(times):.4f} s (runs: "
        f"{', '.join(f'{t:.4f}' for t in times)}), evaluations {res.n_evaluations} "
        f"(fcn {res.n_fcn}, grad {res.n_grad}), round trips {res.n_round_trips}, "
        f"success {res.success}",
        flush=True,
    )
    return times, res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fits per tool (median reported)")
    parser.add_argument("--no-cluster", action="store_true", help="skip the 2-worker LocalCluster")
    args = parser.parse_args()
    machine = Machine()
    g_times, g_nev, g_models = run_gammapy(args.repeat)
    l_times, l_res = run_gdask(args.repeat, None, "in-process")
    rows = [("in-process", l_times, l_res)]
    if not args.no_cluster:
        with local_cluster(2) as client:
            c_times, c_res = run_gdask(args.repeat, client, "2-worker LocalCluster")
        rows.append(("2-worker LocalCluster", c_times, c_res))
    g = statistics.median(g_times)
    print(f"\nSUMMARY joint-Crab fit (optimize + covariance), median of {args.repeat}:")
    g_read = READ["gammapy: read 10 spectra"]
    print(
        f"  gammapy 2.1              fit {g:8.3f} s   {g_nev:4d} evaluations   read "
        f"{g_read:6.3f} s   read+fit {g_read + g:7.3f} s"
    )
    for label, times, res in rows:
        t = statistics.median(times)
        b = READ[f"gdask {label}: build terms (read 10 spectra)"]
        print(
            f"  gdask {label:18s} fit {t:8.3f} s   {res.n_evaluations:4d} evaluations "
            f"({res.n_round_trips} round trips)   speed-up {ratio(g, t)}   read+build "
            f"{b:6.3f} s   read+build+fit {b + t:7.3f} s   speed-up {ratio(g_read + g, b + t)}   "
            f"{compare(res.names, res.values, res.errors, g_models)}"
        )
    print(f"  (target >= 10x; load average now {loadavg()})")
    machine.report()


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Benchmark: H.E.S.S. Crab 3D joint fit of the 4 per-run map datasets, gdask vs Gammapy 2.1.

Command (from the repository root)::

    .venv/bin/python benchmarks/bench_fit_hess3d.py [--no-cluster] [--hessian gradient]
                                                         [--position-step]

Configuration: ../shared/gammapy-baselines/bench_B_3d_crab.py, "joint" fit.
Runs 23523, 23526, 23559, 23592 reduced by Gammapy (MapDatasetMaker, SafeMaskMaker
offset-max 2.5 deg + aeff-default, FoVBackgroundMaker scale with the Crab excluded
within 0.3 deg) on a 150 x 150 x 10 CAR grid (0.02 deg, 0.7-10 TeV; true energy
0.5-20 TeV / 20 bins), written to GADF-DL4 FITS in a temporary folder, which gdask's
"map" terms read. Model: point source x power law (Gammapy defaults: index 2,
amplitude 1e-12 cm-2 s-1 TeV-1, E0 1 TeV) at (83.633, 22.014) + one FoV background
per run (norm free, tilt frozen): 8 free parameters.

Gammapy: ``Fit().run`` (MIGRAD strategy 1, tol 0.1, numerical HESSE); evaluations
= ``Datasets.stat_sum`` calls (baseline here: 25.6 s, 422 evaluations). gdask:
``Fit(models, coordinator).run()`` in-process and on a 2-worker LocalCluster
(terms built on the workers from the FITS files, timed separately). With
``--position-step`` both start with a 0.01 deg MIGRAD step on lon_0/lat_0
(Gammapy's default is 1 in factor units = 10 deg). Target: >= 10x.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import (
    HESS_RUNS,
    NEVAL,
    Machine,
    compare,
    gammapy_hess_datasets,
    gdask_fit,
    install_eval_counter,
    loadavg,
    local_cluster,
    point_pl_yaml,
    ratio,
    timed,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-cluster", action="store_true", help="skip the 2-worker LocalCluster")
    parser.add_argument(
        "--hessian",
        default="gradient",
        choices=["gradient", "numerical"],
        help="gdask Fit(hessian=...)",
    )
    parser.add_argument(
        "--position-step",
        action="store_true",
        help="initial MIGRAD step 0.01 deg for lon_0/lat_0 in both tools",
    )
    args = parser.parse_args()
    machine = Machine()
    from gammapy.datasets import Datasets
    from gammapy.modeling import Fit
    from gammapy.modeling.models import Models

    from gdask.likelihood import TermSpec

    install_eval_counter()
    names = [str(r) for r in HESS_RUNS]
    text = point_pl_yaml(names, position_step=0.01 if args.position_step else None)
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with timed("gammapy: reduce 4 runs (bench_B)", times):
            per_run = gammapy_hess_datasets()
        files = {}
        with timed("gammapy: write 4 datasets to FITS", times):
            for ds in per_run:
                files[ds.name] = Path(tmp) / f"{ds.name}.fits"
                ds.write(files[ds.name])
        from gammapy.datasets import MapDataset

        with timed("gammapy: read 4 datasets from FITS", times):  # what gdask's build reads
            reread = [MapDataset.read(files[ds.name], name=ds.name) for ds in per_run]
        del reread
        datasets = Datasets(per_run)
        datasets.models = Models.from_yaml(text)
        n0 = NEVAL["n"]
        with timed("gammapy: fit.run (joint)", times):
            gres = Fit().run(datasets)
        g_nev = NEVAL["n"] - n0
        print(
            f"  gammapy: success={gres.success} nfev={gres.nfev} stat_sum calls={g_nev} "
            f"stat={gres.total_stat:.4f}",
            flush=True,
        )

        def specs(models_text: str) -> list[TermSpec]:
            from gdask.models import Models as GdModels

            d = GdModels.from_yaml(models_text).to_dict()
            return [TermSpec("map", n, str(files[n]), d) for n in names]

        rows = [
            (
                "in-process",
                gdask_fit(specs(text), text, hessian=args.hessian, label="in-process", times=times),
            )
        ]
        if not args.no_cluster:
            with local_cluster(2) as client:
                rows.append(
                    (
                        "2-worker LocalCluster",
                        gdask_fit(
                            specs(text),
                            text,
                            client,
                            hessian=args.hessian,
                            label="2-worker LocalCluster",
                            times=times,
                        ),
                    )
                )
    g = times["gammapy: fit.run (joint)"]
    print(
        "\nSUMMARY H.E.S.S. 3D joint fit (4 runs, 150x150x10, 8 free parameters), "
        "optimize + covariance:"
    )
    g_read = times["gammapy: read 4 datasets from FITS"]
    print(
        f"  gammapy 2.1              fit {g:8.2f} s   {g_nev:4d} evaluations   read "
        f"{g_read:6.2f} s   read+fit {g_read + g:8.2f} s"
    )
    for label, res in rows:
        t = times[f"gdask {label}: fit.run"]
        b = times[f"gdask {label}: build terms"]
        print(
            f"  gdask {label:18s} fit {t:8.2f} s   {res.n_evaluations:4d} evaluations "
            f"({res.n_round_trips} round trips)   speed-up {ratio(g, t)}   read+build "
            f"{b:6.2f} s   read+build+fit {b + t:8.2f} s   speed-up {ratio(g_read + g, b + t)}"
            f"   {compare(res.names, res.values, res.errors, datasets.models)}"
        )
    print(f"  (targets >= 30x in-process and on 2 workers; load average now {loadavg()})")
    machine.report()


if __name__ == "__main__":
    main()

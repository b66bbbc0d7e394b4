#!/usr/bin/env python
"""TS map of the stacked 4 H.E.S.S. Crab runs: gdask vs Gammapy 2.1 in one run.

Configuration (bench_B_3d_crab.py's "TS map"): the four runs reduced by
Gammapy as in bench_B (150 x 150 pixels of 0.02 deg, 10 reco bins
0.7-10 TeV), stacked by Gammapy and written to FITS; both tools read that
file.  Kernel: point source with a power law of index 2, kernel width
0.5 deg, one energy group 0.7-10 TeV, default selection (ts, norm, errors,
niter; no upper limits).  Difference to bench_B: the stacked dataset
carries no re-fitted FoV background model (its background is the sum of
the per-run FoV-scaled backgrounds), on both sides.

Timed: Gammapy ``TSMapEstimator.run`` with n_jobs=1 and n_jobs=2; gdask
``TSMapEstimator.run`` in-process (client=None) and on LocalClusters of 1
and 2 single-threaded workers (cluster start-up not timed).  Prints the
ratios and the machine load; also the largest TS difference.

    .venv/bin/python benchmarks/bench_ts_map.py [--repeat 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Machine, gammapy_hess_datasets, local_cluster, ratio, timed  # noqa: E402

warnings.simplefilter("ignore")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    machine = Machine()

    import astropy.units as u
    from gammapy.datasets import MapDataset as GPMapDataset
    from gammapy.estimators import TSMapEstimator as GPTSMap
    from gammapy.modeling.models import PointSpatialModel, PowerLawSpectralModel, SkyModel

    from gdask.datasets import MapDataset
    from gdask.estimators.ts_map import TSMapEstimator

    times: dict[str, float] = {}
    with timed("gammapy reduce + stack 4 runs (not compared)"):
        runs = gammapy_hess_datasets()
        stacked = GPMapDataset.create(
            geom=runs[0].counts.geom,
            energy_axis_true=runs[0].exposure.geom.axes["energy_true"],
            name="stacked",
        )
        for ds in runs:
            stacked.stack(ds)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stacked.fits.gz"
        stacked.write(path)
        gp_ds = GPMapDataset.read(path)
        ds = MapDataset.read(path)

    gp_res = {}
    for nj in (1, 2):
        est = GPTSMap(
            kernel_model=SkyModel(
                spatial_model=PointSpatialModel(),
                spectral_model=PowerLawSpectralModel(index=2),
                name="ts-kernel",
            ),
            kernel_width="0.5 deg",
            energy_edges=[0.7, 10] * u.TeV,
            n_jobs=nj,
        )
        for _ in range(args.repeat):
            with timed(f"gammapy TSMapEstimator n_jobs={nj}", times):
                gp_res[nj] = est.run(gp_ds)

    est = TSMapEstimator(kernel_width=0.5, energy_edges=[0.7, 10], ul=False)
    ours = {}
    for _ in range(args.repeat):
        with timed("gdask TSMapEstimator in-process", times):
            ours[0] = est.run(ds)
    for nw in (1, 2):
        with local_cluster(nw) as client:
            est.run(ds, client=client)  # warm the workers' imports
            for _ in range(args.repeat):
                with timed(f"gdask TSMapEstimator {nw} worker(s)", times):
                    ours[nw] = est.run(ds, client=client)

    ts_gp = gp_res[1]["ts"].data
    for key, res in ours.items():
        d = np.nanmax(np.abs(res["ts"] - ts_gp) / np.maximum(np.abs(ts_gp), 1.0))
        print(f"  max |TS gdask[{key}] - TS gammapy| / max(|TS|, 1) = {d:.2e} (gammapy rtol=0.01)")
    print(
        f"  max sqrt(TS): gdask {np.nanmax(ours[0]['sqrt_ts']):.2f}, "
        f"gammapy {np.nanmax(gp_res[1]['sqrt_ts'].data):.2f}"
    )

    g1 = times["gammapy TSMapEstimator n_jobs=1"]
    g2 = times["gammapy TSMapEstimator n_jobs=2"]
    o0 = times["gdask TSMapEstimator in-process"]
    o1 = times["gdask TSMapEstimator 1 worker(s)"]
    o2 = times["gdask TSMapEstimator 2 worker(s)"]
    print(f"[result] gammapy n_jobs=1 {g1:.2f} s, n_jobs=2 {g2:.2f} s")
    print(
        f"[result] gdask in-process {o0:.2f} s ({ratio(g1, o0)} vs n_jobs=1), "
        f"1 worker {o1:.2f} s ({ratio(g1, o1)}), 2 workers {o2:.2f} s "
        f"({ratio(g2, o2)} vs n_jobs=2; 1->2 workers x{o1 / o2:.2f}); target >= 10x"
    )
    machine.report()


if __name__ == "__main__":
    main()

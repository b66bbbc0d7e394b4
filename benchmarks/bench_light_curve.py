#!/usr/bin/env python
"""PKS 2155-304 flare light curve (H.E.S.S. DR1): gdask vs Gammapy 2.1 in one run.

The configuration of tests/validation/test_light_curve_vs_gammapy.py (runs
33787-33801, 34 bins of 10 minutes from 2006-07-29T20:30 UTC, 1D ON 0.11 deg
with containment correction, reflected background, aeff-max 10 %, reco
0.4-20 TeV in 10 bins, true 0.1-40 TeV in 20, power law, all optional
outputs).  Timed end to end on each side: reading the runs, the time-sliced
reduction (44 run x bin slices) and the light-curve estimation.  Gammapy runs
with its default ``Fit()`` (MIGRAD tol 0.1, as users run it); gdask
in-process (client=None) and on a LocalCluster of 2 single-threaded workers
(start-up not timed).  Prints the ratios, the largest relative norm
difference and the machine load.

    .venv/bin/python benchmarks/bench_light_curve.py [--repeat 1]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from _common import DATA, Machine, local_cluster, ratio, timed  # noqa: E402

from tests.validation.test_light_curve_vs_gammapy import (  # noqa: E402
    gammapy_light_curve,
    gdask_light_curve,
    time_intervals,
)

warnings.simplefilter("ignore")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    machine = Machine()
    hess = DATA / "hess-dl3-dr1"
    intervals = time_intervals()
    times: dict[str, float] = {}
    for _ in range(args.repeat):
        with timed("gammapy select_time + makers + LightCurveEstimator", times):
            g, _ = gammapy_light_curve(hess, intervals, tol=0.1)
        with timed("gdask time-sliced reduce + light curve (in-process)", times):
            d, _ = gdask_light_curve(hess, intervals)
    with local_cluster(2) as client:
        for _ in range(args.repeat):
            with timed("gdask time-sliced reduce + light curve (2 workers)", times):
                d2, _ = gdask_light_curve(hess, intervals, client=client)
    gn, dn = g.norm.data[:, 0, 0, 0], d.data["norm"][:, 0]
    print(f"  bins: gammapy {gn.size}, gdask {dn.size}")
    print(
        f"  max |norm_gdask / norm_gammapy - 1| = {np.max(np.abs(dn / gn - 1)):.2e} (Gammapy tol 0.1)"
    )
    print(f"  2 workers == in-process: {np.array_equal(d2.data['norm'], d.data['norm'])}")
    gp = times["gammapy select_time + makers + LightCurveEstimator"]
    for key in ("in-process", "2 workers"):
        label = f"gdask time-sliced reduce + light curve ({key})"
        print(f"  [ratio] gammapy / gdask {key}: {ratio(gp, times[label])} (target >= x10)")
    machine.report()


if __name__ == "__main__":
    main()

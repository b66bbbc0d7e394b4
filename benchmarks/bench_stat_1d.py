#!/usr/bin/env python
"""Benchmark: one joint 1D statistic evaluation, gdask against Gammapy 2.1.

The ten joint-Crab OGIP spectra (Fermi-LAT, MAGIC x2, VERITAS x2, FACT,
H.E.S.S. x4), each its own dataset with the joint-Crab fit ranges, WSTAT,
log-parabola at 1 TeV (3 free parameters).  Every timed evaluation moves all
three parameters, so no model cache can answer.

Timed, per evaluation of the whole joint statistic (in-process, one core):

* ``stat``       gdask: sum of ``SpectrumOnOffTerm.stat``;
                 Gammapy: set the parameters, ``Datasets.stat_sum()``.
* ``stat+grad``  gdask: sum of ``SpectrumOnOffTerm.stat_and_grad`` (analytic);
                 Gammapy has no gradient: value plus a central finite-difference
                 gradient over the 3 free parameters (7 ``stat_sum`` calls), what
                 a gradient-based minimiser would need from it.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_stat_1d.py [--data ../shared/data] [--n 200]

Prints the times in ms and the ratios Gammapy / gdask.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

RANGES = {
    "fermi": (0.03, 2.0),
    "magic": (0.08, 30.0),
    "veritas": (0.15, 30.0),
    "fact": (0.4, 30.0),
    "hess": (0.66, 30.0),
}
START = (3.8e-11, 2.5, 0.1)


def _files(data: Path) -> list[tuple[str, Path]]:
    return [
        (inst, p)
        for inst in RANGES
        for p in sorted((data / "joint-crab" / "spectra" / inst).glob("pha_*.fits"))
    ]


def _points(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.array(START) * (1 + 0.02 * rng.standard_normal((n, 3)))


def setup_gdask(files):
    from gdask.likelihood import TermSpec, build_term
    from gdask.models import LogParabolaSpectralModel, Models, SkyModel

    models = Models(
        [
            SkyModel(
                LogParabolaSpectralModel(
                    amplitude=f"{START[0]} cm-2 s-1 TeV-1",
                    reference="1 TeV",
                    alpha=START[1],
                    beta=START[2],
                ),
                name="crab",
            )
        ]
    )
    terms = []
    for inst, pha in files:
        name = f"{inst}-{pha.stem}"
        emin, emax = RANGES[inst]
        terms.append(
            build_term(
                TermSpec(
                    "spectrum",
                    name,
                    str(pha),
                    models.to_dict(),
                    {"energy_min": emin, "energy_max": emax},
                )
            )
        )
    names = models.parameters.names
    return terms, models.parameters.value, [names.index(k) for k in ("amplitude", "alpha", "beta")]


def setup_gammapy(files):
    import astropy.units as u
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling.models import LogParabolaSpectralModel, SkyModel

    datasets = Datasets()
    for inst, pha in files:
        d = SpectrumDatasetOnOff.read(pha, name=f"{inst}-{pha.stem}")
        emin, emax = RANGES[inst]
        d.mask_fit = d.counts.geom.energy_mask(emin * u.TeV, emax * u.TeV)
        datasets.append(d)
    model = SkyModel(
        spectral_model=LogParabolaSpectralModel(
            amplitude=START[0] * u.Unit("cm-2 s-1 TeV-1"),
            reference=1 * u.TeV,
            alpha=START[1],
            beta=START[2],
        ),
        name="crab",
    )
    datasets.models = [model]
    return datasets, model.spectral_model


def _time(func, points) -> float:
    func(points[0])  # warm-up
    t0 = time.perf_counter()
    for p in points:
        func(p)
    return (time.perf_counter() - t0) / len(points) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser.add_argument("--n", type=int, default=200, help="evaluations per measurement")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    files = _files(Path(args.data))
    terms, x0, idx = setup_gdask(files)
    datasets, sm = setup_gammapy(files)
    points = _points(args.n)

    def d_stat(p):
        x = x0.copy()
        x[idx] = p
        return sum(t.stat(x) for t in terms)

    def d_grad(p):
        x = x0.copy()
        x[idx] = p
        out = [t.stat_and_grad(x) for t in terms]
        return sum(v for v, _ in out), sum(g for _, g in out)

    def g_set(p):
        sm.amplitude.value, sm.alpha.value, sm.beta.value = p

    def g_stat(p):
        g_set(p)
        return datasets.stat_sum()

    def g_grad(p):
        value = g_stat(p)
        grad = np.zeros(3)
        for i in range(3):
            h = 1e-4 * abs(p[i])
            pp, pm = p.copy(), p.copy()
            pp[i] += h
            pm[i] -= h
            grad[i] = (g_stat(pp) - g_stat(pm)) / (2 * h)
        return value, grad

    # consistency check before timing
    for p in points[:3]:
        a, b = d_stat(p), g_stat(p)
        assert abs(a / b - 1) < 1e-6, (a, b)

    n_g = max(args.n // 5, 10)
    res = {
        "stat": (_time(d_stat, points), _time(g_stat, points[:n_g])),
        "stat+grad": (_time(d_grad, points), _time(g_grad, points[:n_g])),
    }
    print(f"joint-Crab 1D: {len(terms)} datasets, WSTAT, log-parabola (3 free parameters)")
    print(f"{'':12s} {'gdask [ms]':>11s} {'gammapy [ms]':>13s} {'ratio':>7s}")
    for key, (d, g) in res.items():
        print(f"{key:12s} {d:11.3f} {g:13.3f} {g / d:7.1f}")


if __name__ == "__main__":
    main()

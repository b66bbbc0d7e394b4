#!/usr/bin/env python
"""Benchmark: one map-likelihood evaluation, gdask `MapTerm` against Gammapy 2.1 (same run).

Builds the four H.E.S.S. DR1 Crab run datasets with Gammapy exactly as
``bench_B_3d_crab.py`` (150 x 150 x 10) plus one 100 x 100 x 10 variant of run
23523, writes them to FITS in a temporary directory and reads them back in
both packages.  Model: point source x power law + one FoV background per run.
Every evaluation moves all free parameters (position, amplitude, index, norms)
by a small amount, so no component can be served from a cache.

Prints per-evaluation times (median of ``--n`` evaluations) and the ratios
Gammapy / gdask (value) and gdask value+gradient / gdask value.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.simplefilter("ignore")

RUNS = [23523, 23526, 23559, 23592]


def build(outdir: Path, npix: int, runs: list[int]) -> list[Path]:
    """Gammapy's per-run datasets of bench_B_3d_crab.py (``npix`` pixels a side), written to FITS."""
    from _common import gammapy_hess_datasets

    paths = []
    for ds in gammapy_hess_datasets(tuple(runs), npix):
        path = outdir / f"{ds.name}_{npix}.fits"
        ds.write(path, overwrite=True)
        paths.append(path)
    return paths


def models_yaml(names: list[str]) -> str:
    out = """components:
- name: crab
  type: SkyModel
  spectral:
    type: PowerLawSpectralModel
    parameters:
    - {name: index, value: 2.5}
    - {name: amplitude, value: 3.5e-11, unit: cm-2 s-1 TeV-1}
    - {name: reference, value: 1.0, unit: TeV}
  spatial:
    type: PointSpatialModel
    frame: icrs
    parameters:
    - {name: lon_0, value: 83.633, unit: deg}
    - {name: lat_0, value: 22.014, unit: deg}
"""
    for n in names:
        out += f"""- type: FoVBackgroundModel
  datasets_names: ['{n}']
  spectral:
    type: PowerLawNormSpectralModel
    parameters:
    - {{name: norm, value: 1.0}}
    - {{name: tilt, value: 0.0}}
    - {{name: reference, value: 1.0, unit: TeV}}
"""
    return out


def bench(paths: list[Path], n: int) -> dict[str, float]:
    from gammapy.datasets import Datasets
    from gammapy.datasets import MapDataset as GMapDataset
    from gammapy.modeling.models import Models as GModels

    import gdask.models as gm
    from gdask.datasets import MapDataset
    from gdask.likelihood.map import MapTerm

    names = [p.stem for p in paths]
    text = models_yaml(names)
    gmodels = GModels.from_yaml(text)
    gdatasets = Datasets([GMapDataset.read(p, name=nm) for p, nm in zip(paths, names, strict=True)])
    gdatasets.models = gmodels
    models = gm.Models.from_yaml(text)
    terms = [
        MapTerm(MapDataset.read(p, name=nm), models) for p, nm in zip(paths, names, strict=True)
    ]
    base = gmodels.parameters.value.copy()
    free = [i for i, p in enumerate(gmodels.parameters) if not p.frozen]

    def point(k: int) -> np.ndarray:
        v = base.copy()
        step = 1e-5 * (1 + k)
        for i in free:
            v[i] = (
                v[i] * (1 + step)
                if gmodels.parameters[i].name not in ("lon_0", "lat_0")
                else v[i] + step * 0.1
            )
        return v

    # warm up (first evaluations build kernels and caches in both packages)
    for k in range(3):
        gmodels.parameters.value = point(k)
        gdatasets.stat_sum()
        for t in terms:
            t.stat_and_grad(point(k))
    tg, tv, tvg, diff = [], [], [], []
    for k in range(n):
        v = point(2 * k + 3)
        gmodels.parameters.value = v
        t0 = time.perf_counter()
        sg = gdatasets.stat_sum()
        t1 = time.perf_counter()
        sv = sum(t.stat(v) for t in terms)
        t2 = time.perf_counter()
        v2 = point(2 * k + 4)
        for t in terms:
            t.stat_and_grad(v2)
        t3 = time.perf_counter()
        tg.append(t1 - t0)
        tv.append(t2 - t1)
        tvg.append(t3 - t2)
        diff.append(abs(sv - sg) / abs(sg))
    return {
        "gammapy_ms": 1e3 * np.median(tg),
        "gdask_value_ms": 1e3 * np.median(tv),
        "gdask_value_grad_ms": 1e3 * np.median(tvg),
        "max_rel_diff": max(diff),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="evaluations per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = {
            "4 x H.E.S.S. 150x150x10": build(tmp, 150, RUNS),
            "1 x H.E.S.S. 100x100x10": build(tmp, 100, RUNS[:1]),
        }
        for label, paths in cases.items():
            r = bench(paths, args.n)
            print(
                f"{label}: gammapy {r['gammapy_ms']:.2f} ms | gdask value {r['gdask_value_ms']:.2f} ms "
                f"(speed-up x{r['gammapy_ms'] / r['gdask_value_ms']:.1f}) | gdask value+grad "
                f"{r['gdask_value_grad_ms']:.2f} ms (= {r['gdask_value_grad_ms'] / r['gdask_value_ms']:.2f}"
                f" x value) | max rel. stat difference {r['max_rel_diff']:.1e}"
            )


if __name__ == "__main__":
    main()

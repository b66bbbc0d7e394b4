#!/usr/bin/env python
"""Benchmark: reduce all 105 H.E.S.S. DR1 runs into per-run cutout map datasets, gdask vs Gammapy 2.1.

Command (from the repository root; GDASK_DATA defaults to ../shared/data)::

    .venv/bin/python benchmarks/bench_reduce.py [--limit K] [--workers 2] [--threads-per-worker 1]
                                                     [--skip-gammapy]

Configuration: exactly that of ../shared/gammapy-baselines/bench_D_reduce105.py --
per run a 2 x 2 deg CAR grid of 0.05 deg pixels centred on the run pointing
(RA_PNT/DEC_PNT of the obs index), reco energy 0.3-30 TeV in 10 log bins,
true energy 0.2-50 TeV in 20 log bins, IRF maps on 0.2 deg pixels (PSF rad
0-0.66 deg / 66 bins); maps counts, background, exposure, edisp, psf; safe
mask offset-max 2.5 deg + aeff-default; FoV background "scale" without an
exclusion mask.

Steps, each timed: ingest the DL3 archive into a fresh archive store (reported,
not part of the ratio); start a 2-worker LocalCluster (one thread each) and
import the makers on the workers (reported); ``gdask.reduce.graph.reduce`` with
the per-run datasets written to a dataset store (the ``gdask reduce`` path);
the same with the datasets kept in worker memory (as Gammapy keeps them);
Gammapy 2.1 serial: the baseline script itself in a subprocess with this
python (``--n-jobs 1``, its ``reduce`` phase). Then a few runs are reduced by
Gammapy in a subprocess and compared with the stored gdask datasets (counts
and masks equal, exposure/background/psf/edisp within 1e-3, FoV norm within
1e-6). The ratio Gammapy / gdask is printed; machine contention (other
processes' CPU) is printed too, because it changes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BASELINES = Path(os.environ.get("GDASK_BASELINES", REPO.parent / "shared" / "gammapy-baselines"))
DATA = Path(os.environ.get("GDASK_DATA", REPO.parent / "shared" / "data"))
CHECK_RUNS = (20136, 23523, 33787, 47802)

CONFIG = """
observations:
  store: {store}
  {obs_ids}
datasets:
  type: 3d
  geom:
    wcs: {{skydir: pointing, frame: icrs, width: 2, binsz: 0.05, proj: CAR, binsz_irf: 0.2}}
    axes:
      energy: {{min: 0.3, max: 30, nbin: 10}}
      energy_true: {{min: 0.2, max: 50, nbin: 20}}
makers:
  selection: [counts, background, exposure, edisp, psf]
  offset_max: 2.5
  safe_mask: {{methods: [offset-max, aeff-default]}}
  background: {{method: fov, fov_method: scale}}
output: {{store: {out}, overwrite: true}}
"""

GAMMAPY_CHECK = r"""
import sys, warnings, numpy as np, astropy.units as u
warnings.simplefilter("ignore")
from astropy.coordinates import SkyCoord
from gammapy.data import DataStore
from gammapy.datasets import MapDataset
from gammapy.makers import FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker
from gammapy.maps import MapAxis, WcsGeom
store = DataStore.from_dir(sys.argv[1]); out = sys.argv[2]; ids = [int(i) for i in sys.argv[3:]]
e_reco = MapAxis.from_energy_bounds(0.3, 30, nbin=10, unit="TeV")
e_true = MapAxis.from_energy_bounds(0.2, 50, nbin=20, unit="TeV", name="energy_true")
makers = [MapDatasetMaker(selection=["counts", "background", "exposure", "edisp", "psf"]),
          SafeMaskMaker(methods=["offset-max", "aeff-default"], offset_max=2.5 * u.deg),
          FoVBackgroundMaker(method="scale")]
res = {}
table = store.obs_table
for obs in store.get_observations(ids):
    row = table[table["OBS_ID"] == obs.obs_id][0]
    pnt = SkyCoord(row["RA_PNT"], row["DEC_PNT"], unit="deg", frame="icrs")
    geom = WcsGeom.create(skydir=pnt, binsz=0.05, width=(2, 2), frame="icrs", proj="CAR", axes=[e_reco])
    ds = MapDataset.create(geom=geom, energy_axis_true=e_true, name=str(obs.obs_id))
    for m in makers:
        ds = m.run(dataset=ds, observation=obs)
    k = str(obs.obs_id)
    res[k + "/counts"] = ds.counts.data
    res[k + "/mask_safe"] = ds.mask_safe.data
    res[k + "/exposure"] = ds.exposure.quantity.to_value("cm2 s")
    res[k + "/background"] = ds.background.data
    res[k + "/psf"] = ds.psf.psf_map.quantity.to_value("sr-1")
    res[k + "/edisp"] = ds.edisp.edisp_map.data
    res[k + "/norm"] = np.array([ds.background_model.spectral_model.norm.value])
np.savez(out, **res)
"""


def _busy() -> float:
    v = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


class Timer:
    """Wall time and the machine's busy CPU seconds over a block."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> Timer:
        self.w0, self.b0 = time.perf_counter(), _busy()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cores = (_busy() - self.b0) / self.wall if self.wall > 0 else 0.0
        print(
            f"[time] {self.label:48s} {self.wall:8.2f} s  (machine busy {self.cores:.2f} cores)",
            flush=True,
        )


def _compare(store_path: Path, ref_file: Path, ids: list[int]) -> bool:
    from gdask.datasets import DatasetStore

    ref = np.load(ref_file)
    store = DatasetStore(store_path)
    ok = True
    for i in ids:
        d = store.read(str(i), lazy=False)
        k = str(i)
        checks = {
            "counts": np.array_equal(d.counts.values, ref[k + "/counts"]),
            "mask_safe": np.array_equal(d.mask_safe.values, ref[k + "/mask_safe"]),
        }
        for name, ours in (
            ("exposure", d.exposure.values),
            ("background", d.background.values),
            ("psf", d.ds["psf"].values),
            ("edisp", d.ds["edisp"].values),
        ):
            r = ref[k + "/" + name]
            checks[name] = bool(np.allclose(ours, r, rtol=1e-3, atol=1e-3 * np.abs(r).max()))
        checks["norm"] = bool(np.isclose(d.meta["bkg_norm"], ref[k + "/norm"][0], rtol=1e-6))
        print(
            f"  OBS_ID {i}: "
            + ", ".join(f"{n} {'ok' if v else 'DIFFERENT'}" for n, v in checks.items())
        )
        ok &= all(checks.values())
    return ok


def _gammapy_serial(limit: int | None) -> float | None:
    cmd = [sys.executable, str(BASELINES / "bench_D_reduce105.py"), "--n-jobs", "1"]
    if limit:
        cmd += ["--limit", str(limit)]
    env = dict(os.environ, GAMMAPY_DATA=str(DATA))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("[phase]"):
            print("  gammapy " + line)
        if line.startswith("RESULT_JSON "):
            res = json.loads(line[len("RESULT_JSON ") :])
            return next(v["wall_s"] for k, v in res["phases"].items() if k.startswith("reduce"))
    print(proc.stdout[-2000:], proc.stderr[-2000:])
    return None


def _in_memory(client, config) -> float:
    """Per-run datasets reduced and kept in worker memory (no store writes); wall time."""
    import dataclasses

    from distributed import wait

    from gdask.reduce.graph import plan_reduction, reduce_run

    t0 = time.perf_counter()
    spec, todo, _ = plan_reduction(config)
    spec = dataclasses.replace(spec, write=False, keep=True)
    futures = client.map(reduce_run, [spec] * len(todo), todo, pure=False)
    wait(futures)
    wall = time.perf_counter() - t0
    failed = [
        r[0] for r in client.gather(client.map(lambda r: r[0], futures)) if r.status != "done"
    ]
    if failed:
        print("  in-memory failures:", failed)
    del futures
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first K runs")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--threads-per-worker",
        type=int,
        default=1,
        help="threads per worker (more than 1 hides the zarr I/O latency)",
    )
    ap.add_argument("--skip-gammapy", action="store_true")
    args = ap.parse_args()

    from gdask.archive.ingest import ingest
    from gdask.cluster import get_client
    from gdask.config import AnalysisConfig
    from gdask.reduce.graph import reduce

    hess = DATA / "hess-dl3-dr1"
    with tempfile.TemporaryDirectory(prefix="gdask-bench-reduce-") as tmp:
        tmp = Path(tmp)
        # the same LocalCluster as `gdask reduce` (gdask.cluster.get_client: worker settings included)
        cluster_cm = get_client(
            None, n_workers=args.workers, threads_per_worker=args.threads_per_worker
        )
        with Timer("start LocalCluster + import makers on workers") as t_cluster:
            client = cluster_cm.__enter__()
            client.run(lambda: __import__("gdask.reduce.graph") and __import__("gdask.reduce.maps"))
        try:
            obs_ids = None
            if args.limit:
                from gdask.dl3 import DL3Index

                obs_ids = [int(i) for i in DL3Index.read(hess).obs_ids[: args.limit]]
            with Timer("ingest DL3 -> archive store (not in the ratio)"):
                s = ingest(
                    hess, tmp / "archive.zarr", client=client, obs_ids=obs_ids, progress=False
                )
            print("  " + s.format().splitlines()[0])
            ids_line = f"obs_ids: {obs_ids}" if obs_ids else ""
            text = CONFIG.format(
                store=tmp / "archive.zarr", out=tmp / "datasets.zarr", obs_ids=ids_line
            )
            (tmp / "reduce.yaml").write_text(text)
            config = AnalysisConfig.read(tmp / "reduce.yaml")
            with Timer("gdask reduce -> dataset store") as t_store:
                summary = reduce(config, client=client, progress=False)
            print("  " + summary.format().replace("\n", "\n  "))
            with Timer("gdask reduce, datasets kept in worker memory") as t_mem:
                _in_memory(client, config)
        finally:
            cluster_cm.__exit__(None, None, None)
        t_gp = None
        if not args.skip_gammapy:
            with Timer("gammapy 2.1 serial (baseline script, subprocess)"):
                t_gp = _gammapy_serial(args.limit)
        n = summary.count("done")
        print(f"\nruns reduced: {n}; cluster start {t_cluster.wall:.1f} s (not in the ratio)")
        print(
            f"gdask ({args.workers} workers): {t_store.wall:.2f} s to the dataset store, "
            f"{t_mem.wall:.2f} s in memory ({t_store.wall / max(n, 1) * 1e3:.0f} / "
            f"{t_mem.wall / max(n, 1) * 1e3:.0f} ms per run)"
        )
        ok = True
        if t_gp is not None:
            print(
                f"gammapy serial reduce phase: {t_gp:.2f} s ({t_gp / max(n, 1) * 1e3:.0f} ms per run)"
            )
            print(
                f"RATIO gammapy / gdask: {t_gp / t_store.wall:.2f}x (dataset store), "
                f"{t_gp / t_mem.wall:.2f}x (in memory)"
            )
            ids = [i for i in CHECK_RUNS if obs_ids is None or i in obs_ids] or obs_ids[:2]
            ref = tmp / "gammapy_check.npz"
            subprocess.run(
                [sys.executable, "-c", GAMMAPY_CHECK, str(hess), str(ref)] + [str(i) for i in ids],
                check=True,
                env=dict(os.environ, GAMMAPY_DATA=str(DATA)),
            )
            print("identity check against gammapy:")
            ok = _compare(tmp / "datasets.zarr", ref, ids)
            print("IDENTICAL within tolerances" if ok else "MISMATCH")
    return 0 if ok and summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())

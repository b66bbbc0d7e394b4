#!/usr/bin/env python
"""Benchmark: joint fit of N identical-shape faked map datasets (one shared source), gdask vs Gammapy.

Command (from the repository root)::

    .venv/bin/python benchmarks/bench_fit_scaling.py [--n 1 4 16 64 256] [--gammapy-n 64 256]
                                                          [--workers 0 1 2 t2] [--timeout 900] [--quick]

``--quick`` = ``--n 1 4 16 --gammapy-n 4`` (a couple of minutes). ``--workers 0``
is in-process; ``k > 0`` a LocalCluster of k single-threaded worker processes;
``tk`` k single-threaded thread workers in this process (no serialisation, no
sockets: separates Dask's task overhead from the inter-process costs).

Besides times (each with the load average beside it) it prints, per N and
worker setting, the operation counts that stay meaningful on a loaded machine:
round trips and bytes moved per evaluation, worker-side task compute per
dataset (from the task stream), CPU of the client process (client + scheduler +
nannies of the LocalCluster) and of the worker processes per evaluation, minor
page faults per evaluation (the allocator), where the groups live, array bytes
per term and resident memory per dataset after the build; then end-to-end
(build + fit) beside fit-only ratios vs Gammapy and a least-squares cost model
``t_eval = a + b N / workers + c workers`` with its projection to N = 10,000 on
16, 64 and 256 workers.

Configuration: ../shared/gammapy-baselines/bench_D_scaling_fit.py (without
``--bkg-norm``). Template: H.E.S.S. DR1 run 23523 reduced by Gammapy
(MapDatasetMaker counts/background/exposure/edisp/psf + SafeMaskMaker offset-max
2.5 deg, aeff-default) on a 100 x 100 x 10 CAR grid (0.02 deg, 0.7-10 TeV; true
energy 0.5-20 TeV / 20 bins). Dataset i = the template with counts faked from
point(83.633, 22.014) x PL(index 2.6, amplitude 4.5e-11 cm-2 s-1 TeV-1) + the IRF
background, exactly as Gammapy's ``MapDataset.fake(random_state=i)`` (the true
npred is computed once by Gammapy and Poisson-sampled with ``RandomState(i)``;
checked against ``fake`` for i = 0). Fit model: ONE point x PL shared by all
datasets, start index 2.3, amplitude 3e-11, initial lon/lat step 0.01 deg,
background fixed -> 4 free parameters for any N.

Gammapy: ``Fit().run`` per N in ``--gammapy-n`` (capped at ``--timeout`` s);
baseline here: N=64 49.7 s, N=256 192 s. gdask: the same data (template FITS +
counts array, term kind ``bench-faked-map`` of benchmarks/_faked_terms.py, i.e.
gdask's ``MapTerm``) for every N and worker count: term build time, time per
likelihood evaluation (all four parameters moved; median of ``--eval-repeat``)
and ``Fit(...).run()`` time with its evaluation count. Target: >= 20x at N=64
and 256; time per evaluation growing no faster than N / workers.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    DATA,
    NEVAL,
    Machine,
    compare,
    install_eval_counter,
    loadavg,
    local_cluster,
    timed,
)

HERE = str(Path(__file__).resolve().parent)


def make_template() -> Any:
    import astropy.units as u
    from gammapy.data import DataStore
    from gammapy.datasets import MapDataset
    from gammapy.makers import MapDatasetMaker, SafeMaskMaker
    from gammapy.maps import MapAxis, WcsGeom

    obs = DataStore.from_dir(DATA / "hess-dl3-dr1").obs(23523)
    e_reco = MapAxis.from_energy_bounds(0.7, 10, nbin=10, unit="TeV")
    e_true = MapAxis.from_energy_bounds(0.5, 20, nbin=20, unit="TeV", name="energy_true")
    geom = WcsGeom.create(
        skydir=(83.633, 22.014),
        binsz=0.02,
        npix=(100, 100),
        frame="icrs",
        proj="CAR",
        axes=[e_reco],
    )
    empty = MapDataset.create(geom=geom, energy_axis_true=e_true, name="template")
    ds = MapDatasetMaker(selection=["counts", "background", "exposure", "edisp", "psf"]).run(
        empty, obs
    )
    return SafeMaskMaker(methods=["offset-max", "aeff-default"], offset_max=2.5 * u.deg).run(
        ds, obs
    )


def true_model() -> Any:
    import astropy.units as u
    from gammapy.modeling.models import PointSpatialModel, PowerLawSpectralModel, SkyModel

    return SkyModel(
        spatial_model=PointSpatialModel(lon_0=83.633 * u.deg, lat_0=22.014 * u.deg, frame="icrs"),
        spectral_model=PowerLawSpectralModel(
            index=2.6, amplitude=4.5e-11 * u.Unit("cm-2 s-1 TeV-1")
        ),
        name="truth",
    )


def fit_models_yaml() -> str:
    from _common import point_pl_yaml

    return point_pl_yaml([], index=2.3, amplitude=3e-11, position_step=0.01, name="src")


def fake_counts(template: Any, n: int) -> np.ndarray:
    """Counts of datasets 0..n-1, identical to ``template.copy().fake(random_state=i)``."""
    d = template.copy(name="truth-ds")
    d.models = [true_model()]
    npred = np.nan_to_num(d.npred().data, copy=True, nan=0.0, posinf=0.0, neginf=0.0)
    counts = np.stack([np.random.RandomState(i).poisson(npred) for i in range(n)]).astype(np.int32)
    check = template.copy(name="check")
    check.models = [true_model()]
    check.fake(random_state=0)
    assert np.array_equal(check.counts.data, counts[0]), "faked counts differ from Gammapy's fake"
    return counts


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def run_gammapy(template: Any, counts: np.ndarray, n: int, timeout: float) -> dict[str, Any]:
    from gammapy.datasets import Datasets
    from gammapy.modeling import Fit
    from gammapy.modeling.models import Models

    t_setup = time.perf_counter()
    datasets = Datasets()
    for i in range(n):
        d = template.copy(name=f"d{i:04d}")
        d.counts.data = counts[i].astype(float)
        datasets.append(d)
    datasets.models = Models.from_yaml(fit_models_yaml())
    t_setup = time.perf_counter() - t_setup
    free = list(datasets.models.parameters.free_parameters)
    base = [p.value for p in free]
    k = 4 if n <= 16 else 2
    for j in range(k + 1):  # j = 0: warm-up (the first position change re-looks-up the IRFs)
        if j == 1:
            t0 = time.perf_counter()
        for p, b in zip(free, base, strict=True):
            p.value = b * (1 + 1e-6 * (j + 1))
        datasets.stat_sum()
    t_eval = (time.perf_counter() - t0) / k
    for p, b in zip(free, base, strict=True):
        p.value = b
    out: dict[str, Any] = {"t_eval": t_eval, "setup_s": t_setup, "load": loadavg()}
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(timeout))
    n0 = NEVAL["n"]
    t0 = time.perf_counter()
    try:
        res = Fit().run(datasets)
        out.update(
            fit_s=time.perf_counter() - t0,
            evals=NEVAL["n"] - n0,
            success=res.success,
            models=datasets.models,
            timed_out=False,
        )
    except _Timeout:
        out.update(
            fit_s=float(timeout), evals=NEVAL["n"] - n0, success=False, models=None, timed_out=True
        )
    finally:
        signal.alarm(0)
    print(
        f"  gammapy N={n}: datasets {t_setup:.2f} s, t_eval {t_eval * 1e3:.1f} ms, fit {out['fit_s']:.2f} s"
        f"{' (TIMED OUT)' if out['timed_out'] else ''}, {out['evals']} evaluations, "
        f"success {out['success']} [load {out['load']}]",
        flush=True,
    )
    return out


def _usage(client: Any) -> dict[str, dict[str, float]]:
    """CPU seconds / page faults / RSS per worker process (this process when ``client`` is None)."""
    from _faked_terms import process_usage

    return {"here": process_usage()} if client is None else client.run(process_usage)


def _delta(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], key: str) -> float:
    return sum(b[w][key] - a[w][key] for w in b if w in a)


def run_gdask(
    specs: list[Any], client: Any, hessian: str, eval_repeat: int, label: str
) -> dict[str, Any]:
    import pickle

    from _faked_terms import group_memory

    from gdask.fit import Coordinator, Fit
    from gdask.fit.coordinator import _eval_group
    from gdask.models import Models

    models = Models.from_yaml(fit_models_yaml())
    coord = Coordinator(specs, client, preload=["_faked_terms"])
    threads = label.endswith("thread worker(s)")
    n = len(specs)
    out: dict[str, Any] = {"n": n}
    try:
        u0 = _usage(client)
        t0 = time.perf_counter()
        coord.start()
        out["build_s"] = time.perf_counter() - t0
        mem = coord.map_groups(group_memory, None)
        u1 = _usage(client)
        out["term_mb"] = max(m["term_bytes_max"] for m in mem) / 1e6
        out["resident_mb_per_ds"] = _delta(u0, u1, "rss") / n / 1e6
        out["build_cpu_s"] = _delta(u0, u1, "cpu_s")
        if client is not None:
            who = client.who_has(coord.groups)
            out["placement"] = len({w for ws in who.values() for w in ws})
        base = np.array(models.parameters.value, dtype=float)
        names = models.parameters.names
        free = [i for i, p in enumerate(models.parameters) if not p.frozen]
        coord.evaluate(base)  # warm-up (kernels, caches)
        payload = (base, None)  # what Coordinator.evaluate sends each group
        parts = coord.map_groups(_eval_group, payload)
        out["bytes_out"] = coord.n_groups * len(pickle.dumps(payload))
        out["bytes_back"] = sum(len(pickle.dumps(p)) for p in parts)
        vectors = []
        for j in range(eval_repeat):
            v = base.copy()
            for i in free:
                v[i] = (
                    v[i] + 1e-5 * (j + 1)
                    if names[i] in ("lon_0", "lat_0")
                    else v[i] * (1 + 1e-6 * (j + 1))
                )
            vectors.append(v)
        times = []
        rt0 = coord.n_round_trips
        u0, c0 = _usage(client), time.process_time()
        if client is not None:
            from distributed import get_task_stream

            stream = get_task_stream(client)
            stream.__enter__()
        for v in vectors:
            t0 = time.perf_counter()
            coord.evaluate(v)
            times.append(time.perf_counter() - t0)
        client_cpu = time.process_time() - c0
        if client is not None:
            stream.__exit__(None, None, None)
            compute = [
                ss["stop"] - ss["start"]
                for t in stream.data
                if "gdask-eval" in str(t["key"])
                for ss in t["startstops"]
                if ss["action"] == "compute"
            ]
            out["task_compute_s"] = sum(compute) / eval_repeat  # summed over groups
            out["task_compute_max_s"] = (
                max(compute) if compute else float("nan")
            )  # slowest group of any evaluation
        else:
            out["task_compute_s"] = sum(times) / eval_repeat
            out["task_compute_max_s"] = max(times)
        u1 = _usage(client)
        out["t_eval"] = statistics.median(times)
        out["round_trips_per_eval"] = (coord.n_round_trips - rt0) / eval_repeat
        out["client_cpu_ms"] = client_cpu / eval_repeat * 1e3
        out["worker_cpu_ms"] = (
            float("nan")
            if client is None or threads
            else _delta(u0, u1, "cpu_s") / eval_repeat * 1e3
        )
        out["worker_minflt"] = _delta(u0, u1, "minflt") / eval_repeat
        out["eval_load"] = loadavg()
        t0 = time.perf_counter()
        res = Fit(models, coord, hessian=hessian).run()
        out.update(
            fit_s=time.perf_counter() - t0,
            evals=res.n_evaluations,
            round_trips=res.n_round_trips,
            success=res.success,
            result=res,
            load=loadavg(),
        )
    finally:
        coord.close()
    print(
        f"  gdask {label}: build {out['build_s']:.2f} s, t_eval {out['t_eval'] * 1e3:.1f} ms "
        f"[load {out['eval_load']}], fit {out['fit_s']:.2f} s, {out['evals']} evaluations, "
        f"{out['round_trips']} round trips, success {out['success']} [load {out['load']}]\n"
        f"      per evaluation: {out['round_trips_per_eval']:.0f} round trip(s), "
        f"{out['bytes_out']} B out + {out['bytes_back']} B back, task compute "
        f"{out['task_compute_s'] * 1e3 / n:.2f} ms/dataset (slowest group task "
        f"{out['task_compute_max_s'] * 1e3:.1f} ms), client(+scheduler) CPU "
        f"{out['client_cpu_ms']:.1f} ms, workers CPU {out['worker_cpu_ms']:.1f} ms, "
        f"{out['worker_minflt']:.0f} minor page faults; groups on {out.get('placement', 1)} "
        f"worker(s)\n"
        f"      memory: {out['term_mb']:.2f} MB of arrays per term (shared template counted), "
        f"resident {out['resident_mb_per_ds']:.2f} MB/dataset after build "
        f"(build CPU {out['build_cpu_s']:.1f} s)",
        flush=True,
    )
    return out


def cost_model(gd: dict[tuple[int, str], dict[str, Any]]) -> None:
    """Least-squares t_eval(N, w) = a + b N / w + c w over the worker-process runs."""
    rows = [(n, int(w), r["t_eval"]) for (n, w), r in gd.items() if w.isdigit() and int(w) > 0]
    if len({(n, w) for n, w, _ in rows}) < 3 or len({w for _, w, _ in rows}) < 2:
        print("\n  cost model: needs >= 3 (N, workers) points with >= 2 worker counts")
        return
    A = np.array([[1.0, n / w, w] for n, w, _ in rows])
    y = np.array([t for _, _, t in rows])
    (a, b, c), *_ = np.linalg.lstsq(A, y, rcond=None)
    print(
        f"\n  cost model t_eval(N, w) = a + b N/w + c w: a = {a * 1e3:.2f} ms, "
        f"b = {b * 1e3:.3f} ms/dataset, c = {c * 1e3:.3f} ms/worker "
        f"(fitted on {len(rows)} points; residual rms "
        f"{np.sqrt(np.mean((A @ [a, b, c] - y) ** 2)) * 1e3:.2f} ms)"
    )
    for w in (16, 64, 256):
        t = a + b * 10_000 / w + c * w
        print(f"    projection N=10,000 on {w:3d} workers: {t * 1e3:.0f} ms per evaluation")


def _where(w: str) -> str:
    if w == "0":
        return "in-process"
    if w.startswith("t"):
        return f"{w[1:]} thread worker(s)"
    return f"{w} worker(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument(
        "--gammapy-n",
        type=int,
        nargs="*",
        default=[64, 256],
        help="N values at which Gammapy also fits (slow: ~0.75 s x N here)",
    )
    parser.add_argument(
        "--workers",
        nargs="+",
        default=["0", "1", "2"],
        help="0 = in-process; k = LocalCluster with k worker processes; tk = k thread "
        "workers in this process (no serialisation)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="Gammapy fit cap (s)")
    parser.add_argument("--eval-repeat", type=int, default=5)
    parser.add_argument("--hessian", default="gradient", choices=["gradient", "numerical"])
    parser.add_argument("--quick", action="store_true", help="--n 1 4 16 --gammapy-n 4")
    args = parser.parse_args()
    if args.quick:
        args.n, args.gammapy_n = [1, 4, 16], [4]
    machine = Machine()
    install_eval_counter()
    from gdask.likelihood import TermSpec
    from gdask.models import Models

    nmax = max(args.n + args.gammapy_n)
    with tempfile.TemporaryDirectory() as tmp:
        with timed("gammapy: template reduction (run 23523)"):
            template = make_template()
        template_path = Path(tmp) / "template.fits"
        counts_path = Path(tmp) / "counts.npy"
        with timed(f"fake counts for N={nmax} (+ write template and counts)"):
            counts = fake_counts(template, nmax)
            template.write(template_path)
            np.save(counts_path, counts)
        gp = {n: run_gammapy(template, counts, n, args.timeout) for n in sorted(args.gammapy_n)}
        model_dict = Models.from_yaml(fit_models_yaml()).to_dict()
        specs = [
            TermSpec(
                "bench-faked-map",
                f"d{i:04d}",
                str(template_path),
                model_dict,
                {"counts": str(counts_path), "index": i},
            )
            for i in range(nmax)
        ]
        sys.path.insert(0, HERE)
        gd: dict[tuple[int, str], dict[str, Any]] = {}
        for w in args.workers:
            if w == "0":
                for n in sorted(args.n):
                    gd[n, w] = run_gdask(
                        specs[:n], None, args.hessian, args.eval_repeat, f"N={n} in-process"
                    )
                continue
            k, processes = (int(w[1:]), False) if w.startswith("t") else (int(w), True)
            with local_cluster(k, processes=processes) as client:
                client.register_worker_callbacks(lambda: sys.path.insert(0, HERE))
                for n in sorted(args.n):
                    gd[n, w] = run_gdask(
                        specs[:n], client, args.hessian, args.eval_repeat, f"N={n} {_where(w)}"
                    )
    print(
        "\nSUMMARY (fit = optimize + covariance; t_eval = one likelihood evaluation, all "
        "parameters moved; end-to-end = datasets built (gdask: terms read and built on the "
        "workers) + fit)"
    )
    print(
        "     N  where                build[s]  t_eval[ms]  ms/dataset   fit[s]  evals  "
        "e2e[s]  gammapy fit[s] (evals) e2e[s]  fit x  e2e x  agreement  [load]"
    )
    for n in sorted(set(args.n) | set(args.gammapy_n)):
        g = gp.get(n)
        if g is not None:
            print(
                f"  {n:4d}  gammapy 2.1          {g['setup_s']:8.2f}  {g['t_eval'] * 1e3:10.1f}  "
                f"{g['t_eval'] * 1e3 / n:10.2f}  {g['fit_s']:7.2f}  {g['evals']:5d}  "
                f"{g['setup_s'] + g['fit_s']:6.2f}  [{g['load']}]"
            )
        for w in args.workers:
            r = gd.get((n, w))
            if r is None:
                continue
            sp, sp_e2e, agree = "", "", ""
            e2e = r["build_s"] + r["fit_s"]
            if g is not None and not g["timed_out"]:
                sp = f"x{g['fit_s'] / r['fit_s']:.1f}"
                sp_e2e = f"x{(g['setup_s'] + g['fit_s']) / e2e:.1f}"
                res = r["result"]
                agree = compare(res.names, res.values, res.errors, g["models"])
            gtxt = (
                ""
                if g is None
                else f"{g['fit_s']:8.2f} ({g['evals']}) {g['setup_s'] + g['fit_s']:8.2f}"
            )
            print(
                f"  {n:4d}  {_where(w):19s}  {r['build_s']:8.2f}  {r['t_eval'] * 1e3:10.1f}  "
                f"{r['t_eval'] * 1e3 / n:10.2f}  {r['fit_s']:7.2f}  {r['evals']:5d}  {e2e:6.2f}  "
                f"{gtxt:29s}  {sp:5s}  {sp_e2e:5s}  {agree}  [{r['load']}]"
            )
    print(
        "\n  per evaluation (operation counts are meaningful on a loaded machine; times are not):"
    )
    print(
        "     N  where                round trips  bytes out  bytes back  task ms/dataset  "
        "client CPU ms  workers CPU ms  minflt  groups on  MB/term  resident MB/ds"
    )
    for (n, w), r in sorted(gd.items()):
        print(
            f"  {n:4d}  {_where(w):19s}  {r['round_trips_per_eval']:11.0f}  {r['bytes_out']:9d}  "
            f"{r['bytes_back']:10d}  {r['task_compute_s'] * 1e3 / n:15.2f}  "
            f"{r['client_cpu_ms']:13.1f}  {r['worker_cpu_ms']:14.1f}  {r['worker_minflt']:6.0f}  "
            f"{r.get('placement', 1):9d}  {r['term_mb']:7.2f}  {r['resident_mb_per_ds']:14.2f}"
        )
    print("  (Gammapy 2.1 holds ~5.8 MB per 100x100x10 dataset)")
    ns = sorted(args.n)
    if len(ns) > 1:
        print("\n  scaling of t_eval (ratio to N/workers-ideal; 1.0 = linear in N / workers):")
        for w in args.workers:
            if all((n, w) in gd for n in ns):
                ref = gd[ns[-1], w]["t_eval"] / ns[-1]
                print(
                    f"    {_where(w):19s} ms per dataset: "
                    + ", ".join(f"N={n}: {gd[n, w]['t_eval'] * 1e3 / n:.2f}" for n in ns)
                    + f"  (largest N: {ref * 1e3:.2f})"
                )
    for n in ns:
        if all((n, w) in gd for w in ("1", "2")):
            s = gd[n, "1"]["t_eval"] / gd[n, "2"]["t_eval"]
            print(
                f"    N={n}: t_eval(1 worker) / t_eval(2 workers) = {s:.2f} (ideal 2; target >= 1.7)"
            )
        if all((n, w) in gd for w in ("0", "2")):
            s = gd[n, "0"]["t_eval"] / gd[n, "2"]["t_eval"]
            print(f"    N={n}: t_eval(in-process) / t_eval(2 workers) = {s:.2f} (target >= 1)")
    cost_model(gd)
    machine.report()


if __name__ == "__main__":
    main()

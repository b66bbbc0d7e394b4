"""The demo: simulate three instruments, ingest, reduce, fit jointly on a LocalCluster, compare.

Layout of the output folder (``results/demo`` by default)::

    sim/<instrument>/         simulated GADF DL3 archives; sim/models.yaml = injected models
    archives/<name>.zarr      archive stores (ingested)
    datasets/<name>.zarr      dataset stores (reduced)
    run.yaml                  the joint run configuration used (reusable: gdask run run.yaml)
    start-models.yaml         the fit's starting point (perturbed injected models)
    models.yaml ... *.png     the results folder (see gdask.analysis.results)
    comparison.ecsv           injected vs fitted values, errors and pulls
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = [
    "DemoOutcome",
    "demo_run_dict",
    "run_demo",
    "compare_to_injected",
    "format_comparison",
    "MAX_PULL",
]

#: a fitted value "covers" the injected one when |fitted - injected| <= MAX_PULL x error
MAX_PULL = 3.0
_SRC = {"lon": 83.633, "lat": 22.014, "frame": "icrs"}


def _map_config(
    name: str, e_reco: tuple[float, float, int], e_true: tuple[float, float, int], offset_max: float
) -> dict[str, Any]:
    return {
        "observations": {"store": f"archives/{name}.zarr", "dl3": f"sim/{name}"},
        "datasets": {
            "type": "3d",
            "stack": True,
            "geom": {
                "wcs": {"skydir": dict(_SRC), "width": [2.0, 2.0], "binsz": 0.04, "binsz_irf": 0.2},
                "axes": {
                    "energy": dict(zip(("min", "max", "nbin"), e_reco, strict=True)),
                    "energy_true": dict(zip(("min", "max", "nbin"), e_true, strict=True)),
                },
            },
        },
        "makers": {
            "selection": ["counts", "exposure", "background", "psf", "edisp"],
            "offset_max": offset_max,
            # the background integrated over 4 sub-bins per energy bin: the rate at the
            # bin centre alone is ~2% low for these steep spectra (norm pulls of ~1 sigma)
            "background_oversampling": 4,
            "safe_mask": {"methods": ["offset-max", "aeff-default"]},
            # no FoV normalisation at reduction: stacking applies the per-run norms (as
            # Gammapy does), which absorb the source's PSF tails outside the exclusion
            # (cta-like: ~1.2), so the fit's free norm would no longer have the truth 1
        },
        "output": {"store": f"datasets/{name}.zarr", "overwrite": True},
    }


def demo_run_dict() -> dict[str, Any]:
    """The demo's joint run configuration (paths relative to the demo folder).

    hess-like and cta-like: stacked 3D maps (2 x 2 deg, FoV background with a
    free norm); magic-like (point-like IRFs): per-run 1D ON/OFF spectra with a
    point ON region (RAD_MAX) and 3 wobble OFF regions, with an energy-scale
    nuisance (Gaussian penalty, sigma 10%).
    """
    magic = {
        "observations": {"store": "archives/magic-like.zarr", "dl3": "sim/magic-like"},
        "datasets": {
            "type": "1d",
            "on_region": {**_SRC, "radius": None},
            "geom": {
                "axes": {
                    "energy": {"min": 0.08, "max": 30, "nbin": 16},
                    "energy_true": {"min": 0.04, "max": 30, "nbin": 32},
                }
            },
        },
        "makers": {
            "offset_max": 1.5,
            "safe_mask": {"methods": ["aeff-max"]},
            "background": {"method": "wobble", "n_off_regions": 3},
        },
        "output": {"store": "datasets/magic-like.zarr", "overwrite": True},
    }
    return {
        "analyses": [
            {"name": "hess", "config": _map_config("hess-like", (0.7, 30, 8), (0.4, 100, 32), 2.0)},
            {"name": "magic", "config": magic},
            {
                "name": "cta",
                "config": _map_config("cta-like", (0.1, 100, 12), (0.05, 150, 48), 2.5),
            },
        ],
        "fit": {
            "models": "start-models.yaml",
            "fit_ranges": {"hess": [0.7, 30], "magic": [0.1, 30], "cta": [0.1, 100]},
            "energy_scale": {"magic": 0.1},
            "mode": "distributed",
        },
        "output": ".",
    }


def _start_models(injected: Any) -> Any:
    """The injected models moved away from the truth: where the fit starts."""
    import copy

    from gdask.models import Models

    start = Models([copy.deepcopy(m) for m in injected])
    for m in start:
        for p in m.parameters:
            if p.frozen:
                continue
            if p.name == "index":
                p.value = p.value - 0.3
            elif p.name == "amplitude":
                p.value = p.value * 0.6
            elif p.name in ("lon_0", "lat_0"):
                p.value = p.value + 0.02
    return start


def compare_to_injected(result: Any, injected: Any) -> Any:
    """Table of every free parameter: injected, fitted, error, pull, covered (|pull| <= 3).

    Injected values come from ``injected`` (models by name); parameters of
    models that were not injected have their natural truth: FoV background
    norms 1, energy scales 0.
    """
    from astropy.table import Table

    truth: dict[str, float] = {}
    for m in injected:
        for comp in ("spectral", "spatial", "temporal"):
            sub = getattr(m, f"{comp}_model", None)
            if sub is not None:
                for p in sub.parameters:
                    truth[f"{m.name}.{comp}.{p.name}"] = float(p.value)
    rows = []
    for n, v, e, un in zip(result.names, result.values, result.errors, result.units, strict=True):
        if n in truth:
            t = truth[n]
        elif n.endswith("-bkg.spectral.norm"):
            t = 1.0
        elif "-energy-scale." in n:
            t = 0.0
        else:
            t = np.nan
        pull = (v - t) / e if e > 0 and np.isfinite(t) else np.nan
        rows.append(
            (n, t, float(v), float(e), un, pull, bool(np.isfinite(pull) and abs(pull) <= MAX_PULL))
        )
    return Table(
        rows=rows, names=("parameter", "injected", "fitted", "error", "unit", "pull", "covered")
    )


def format_comparison(table: Any) -> str:
    """The comparison as aligned text."""
    lines = [
        f"{'parameter':42s} {'injected':>12s} {'fitted':>12s} {'error':>10s} {'pull':>6s}  unit"
    ]
    for r in table:
        flag = "" if r["covered"] else f"   <-- |pull| > {MAX_PULL:g}"
        lines.append(
            f"{r['parameter']:42s} {r['injected']:12.5g} {r['fitted']:12.5g} "
            f"{r['error']:10.3g} {r['pull']:6.2f}  {r['unit']}{flag}"
        )
    return "\n".join(lines)


_MARKER = ".gdask-demo"
_WORK = ("sim", "archives", "datasets")


def _fresh_folder(out: Path) -> None:
    """Create ``out`` or clear the work folders of an earlier demo there (stale runs would stay
    in the archive stores); refuse a folder with such sub-folders that is not a demo's."""
    import shutil

    from gdask.errors import ConfigError

    present = [d for d in _WORK if (out / d).exists()]
    if present and not (out / _MARKER).exists():
        raise ConfigError(
            f"{out} has {present} but is not a gdask demo folder; choose another --out",
            field="--out",
        )
    for d in present:
        shutil.rmtree(out / d)
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text(
        "written by gdask demo: sim/, archives/, datasets/ are replaced on each run\n"
    )


@dataclass
class DemoOutcome:
    """What the demo did: the fit, the comparison, timings, success."""

    fit: Any
    comparison: Any
    seconds: float
    ok: bool


def run_demo(
    out: str | Path = "results/demo",
    *,
    n_runs: int = 3,
    seed: int = 1,
    scheduler: str | None = None,
    n_workers: int | None = None,
    processes: bool = True,
    progress: bool = False,
    log: Any = print,
    security: Any = None,
) -> DemoOutcome:
    """Simulate, ingest, reduce, fit jointly on a Dask cluster and compare with the truth.

    Parameters
    ----------
    out : str or Path
        Demo folder (see the module doc); re-running overwrites it.
    n_runs : int
        Runs per instrument.
    seed : int
        Simulation seed.
    scheduler, n_workers, processes, security
        Where to run (default: a LocalCluster of 2 process workers), TLS settings.
    """
    from gdask.analysis.pipeline import run_pipeline
    from gdask.models import Models
    from gdask.run_config import RunConfig
    from gdask.simulate import simulate_archive

    say = log or (lambda *_: None)
    t0 = time.perf_counter()
    out = Path(out)
    _fresh_folder(out)
    sim = simulate_archive(out / "sim", n_runs=n_runs, seed=seed)
    say(sim.format())
    injected = Models.read(sim.models_file)
    _start_models(injected).write(out / "start-models.yaml", overwrite=True)
    data = demo_run_dict()
    (out / "run.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    run = RunConfig.from_dict(data, out)
    outcome = run_pipeline(
        run,
        out,
        scheduler=scheduler,
        n_workers=n_workers or 2,
        processes=processes,
        progress=progress,
        injected=injected,
        log=log,
        security=security,
    )
    table = compare_to_injected(outcome.result, injected)
    table.write(out / "comparison.ecsv", format="ascii.ecsv", overwrite=True)
    seconds = time.perf_counter() - t0
    ok = bool(np.all(table["covered"])) and bool(outcome.result.success)
    say("\n" + (out / "fit_summary.txt").read_text())
    say("injected vs fitted:\n" + format_comparison(table))
    bad = [r["parameter"] for r in table if not r["covered"]]
    if bad:
        say(f"NOT covered within {MAX_PULL:g} sigma: {', '.join(bad)}")
    if not outcome.result.success:
        say(f"the fit did not converge: {outcome.result.message}")
    say(f"demo {'OK' if ok else 'FAILED'} in {seconds:.1f} s; results in {out}/")
    return DemoOutcome(outcome, table, seconds, ok)

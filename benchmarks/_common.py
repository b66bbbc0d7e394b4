"""Shared helpers of the fit benchmarks (gdask and Gammapy 2.1 side by side in one run).

The Gammapy side follows ../shared/gammapy-baselines (bench_B_3d_crab.py,
bench_D_scaling_fit.py): same makers, geometries, models and ``Fit()``
defaults; the likelihood-evaluation counter patches ``Datasets.stat_sum`` as
``benchlib.install_eval_counter`` does.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("GDASK_DATA", REPO.parent / "shared" / "data"))
HESS_RUNS = (23523, 23526, 23559, 23592)
CRAB_RANGES = {
    "fermi": (0.03, 2.0),
    "magic": (0.08, 30.0),
    "veritas": (0.15, 30.0),
    "fact": (0.4, 30.0),
    "hess": (0.66, 30.0),
}
CRAB_START = {"amplitude": 3.8e-11, "alpha": 2.5, "beta": 0.1}
NEVAL = {"n": 0}

warnings.simplefilter("ignore")


# ------------------------------------------------------------------ machine
def _busy_s() -> float:
    """Busy CPU seconds of the whole machine (all cores) from /proc/stat."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


class Machine:
    """Load average at start/end and CPU used by other processes (contention) during a run.

    CPU of this process and its *waited-for* children only: LocalCluster workers
    count as "other processes", so read the contention of distributed phases
    with that in mind.
    """

    def __init__(self) -> None:
        self.t0, self.b0, self.o0 = time.perf_counter(), _busy_s(), _own_cpu_s()
        self.load0 = loadavg()
        print(f"[machine] {os.cpu_count()} cores, load average at start {self.load0}", flush=True)

    def report(self) -> None:
        wall = time.perf_counter() - self.t0
        other = (_busy_s() - self.b0) - (_own_cpu_s() - self.o0)
        print(
            f"[machine] load average start {self.load0} / end {loadavg()}; processes other than "
            f"this one used {other / wall:.2f} cores on average over {wall:.0f} s "
            f"(machine has {os.cpu_count()})",
            flush=True,
        )


@contextlib.contextmanager
def timed(label: str, out: dict[str, float] | None = None) -> Iterator[None]:
    """Print (and store in ``out[label]``) the wall time of a block."""
    t0 = time.perf_counter()
    yield
    dt = time.perf_counter() - t0
    if out is not None:
        out[label] = dt
    print(f"  [time] {label:48s} {dt:9.3f} s", flush=True)


@contextlib.contextmanager
def local_cluster(
    n_workers: int, threads_per_worker: int = 1, processes: bool = True
) -> Iterator[Any]:
    """A Client on a fresh LocalCluster of ``n_workers`` single-threaded processes (or
    threads of this process), started the way gdask starts one (`gdask.cluster.get_client`)."""
    from gdask.cluster import get_client

    with get_client(
        n_workers=n_workers, threads_per_worker=threads_per_worker, processes=processes
    ) as client:
        yield client


def ratio(gammapy_s: float | None, gdask_s: float) -> str:
    if gammapy_s is None or gdask_s <= 0:
        return "n/a"
    return f"x{gammapy_s / gdask_s:.1f}"


# ---------------------------------------------------------------- gammapy
def install_eval_counter() -> None:
    """Count every ``Datasets.stat_sum`` call (one Gammapy likelihood evaluation)."""
    from gammapy.datasets import Datasets

    orig = Datasets.stat_sum
    if getattr(orig, "_counted", False):
        return

    def stat_sum(self: Any) -> Any:
        NEVAL["n"] += 1
        return orig(self)

    stat_sum._counted = True  # type: ignore[attr-defined]
    Datasets.stat_sum = stat_sum


def gammapy_parameter(gmodels: Any, name: str) -> Any:
    """The Gammapy parameter of a gdask unique name ``<model>.<spectral|spatial>.<par>``."""
    model, kind, par = name.split(".")
    return getattr(gmodels[model], f"{kind}_model").parameters[par]


def compare(names: list[str], values: Any, errors: Any, gmodels: Any) -> str:
    """``max |d|/sigma, max |error ratio - 1|`` of gdask values against Gammapy's models."""
    ds, de = 0.0, 0.0
    for n, v, e in zip(names, values, errors, strict=True):
        p = gammapy_parameter(gmodels, n)
        ds = max(ds, abs(v - p.value) / p.error)
        de = max(de, abs(e / p.error - 1))
    return f"max |d|/sigma {ds:.1e}, max |err ratio - 1| {de:.1e}"


# --------------------------------------------------------------- joint Crab
def crab_files() -> list[tuple[str, str, Path]]:
    """(instrument, dataset name, PHA file) of the ten joint-Crab spectra."""
    return [
        (inst, f"{inst}-{pha.stem.removeprefix('pha_obs')}", pha)
        for inst in CRAB_RANGES
        for pha in sorted((DATA / "joint-crab" / "spectra" / inst).glob("pha_*.fits"))
    ]


def crab_yaml() -> str:
    """Log-parabola (natural log, E0 = 1 TeV) named ``crab``, in Gammapy's models YAML."""
    return f"""components:
- name: crab
  type: SkyModel
  spectral:
    type: LogParabolaSpectralModel
    parameters:
    - {{name: amplitude, value: {CRAB_START["amplitude"]}, unit: cm-2 s-1 TeV-1}}
    - {{name: reference, value: 1.0, unit: TeV}}
    - {{name: alpha, value: {CRAB_START["alpha"]}}}
    - {{name: beta, value: {CRAB_START["beta"]}}}
"""


def crab_specs(models: Any) -> list[Any]:
    from gdask.likelihood import TermSpec

    return [
        TermSpec(
            "spectrum",
            name,
            str(pha),
            models.to_dict(),
            {
                "stat": "wstat",
                "energy_min": CRAB_RANGES[inst][0],
                "energy_max": CRAB_RANGES[inst][1],
            },
        )
        for inst, name, pha in crab_files()
    ]


def gammapy_crab_datasets() -> Any:
    """The ten spectra as Gammapy ``SpectrumDatasetOnOff`` with the fit ranges as ``mask_fit``."""
    import astropy.units as u
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff

    out = Datasets()
    for inst, name, pha in crab_files():
        ds = SpectrumDatasetOnOff.read(pha, name=name)
        ds.mask_fit = ds.counts.geom.energy_mask(
            CRAB_RANGES[inst][0] * u.TeV, CRAB_RANGES[inst][1] * u.TeV
        )
        out.append(ds)
    return out


# ----------------------------------------------------------- H.E.S.S. 3D
def gammapy_hess_datasets(runs: tuple[int, ...] = HESS_RUNS, npix: int = 150) -> list[Any]:
    """bench_B_3d_crab.py's per-run reduction (``npix * 0.02`` deg wide)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from gammapy.data import DataStore
    from gammapy.datasets import MapDataset
    from gammapy.makers import FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker
    from gammapy.maps import MapAxis, WcsGeom
    from regions import CircleSkyRegion

    target = SkyCoord(83.633, 22.014, unit="deg", frame="icrs")
    e_reco = MapAxis.from_energy_bounds(0.7, 10, nbin=10, unit="TeV")
    e_true = MapAxis.from_energy_bounds(0.5, 20, nbin=20, unit="TeV", name="energy_true")
    geom = WcsGeom.create(
        skydir=(83.633, 22.014),
        binsz=0.02,
        width=(npix * 0.02, npix * 0.02),
        frame="icrs",
        proj="CAR",
        axes=[e_reco],
    )
    excl = ~geom.to_image().region_mask([CircleSkyRegion(center=target, radius=0.3 * u.deg)])
    empty = MapDataset.create(geom=geom, energy_axis_true=e_true, name="empty")
    maker = MapDatasetMaker(selection=["counts", "background", "exposure", "edisp", "psf"])
    safe = SafeMaskMaker(methods=["offset-max", "aeff-default"], offset_max=2.5 * u.deg)
    fov = FoVBackgroundMaker(method="scale", exclusion_mask=excl)
    out = []
    for obs in DataStore.from_dir(DATA / "hess-dl3-dr1").get_observations(list(runs)):
        out.append(fov.run(safe.run(maker.run(empty.copy(name=str(obs.obs_id)), obs), obs)))
    return out


def point_pl_yaml(
    bkg_names: list[str] = (),
    *,
    index: float = 2.0,
    amplitude: float = 1e-12,
    position_step: float | None = None,
    name: str = "crab",
) -> str:
    """Point source x power law (E0 = 1 TeV) at the Crab + one FoV background per name."""
    err = f", error: {position_step}" if position_step else ""
    text = f"""components:
- name: {name}
  type: SkyModel
  spectral:
    type: PowerLawSpectralModel
    parameters:
    - {{name: index, value: {float(index)!r}}}
    - {{name: amplitude, value: {amplitude:.10e}, unit: cm-2 s-1 TeV-1}}
    - {{name: reference, value: 1.0, unit: TeV}}
  spatial:
    type: PointSpatialModel
    frame: icrs
    parameters:
    - {{name: lon_0, value: 83.633, unit: deg{err}}}
    - {{name: lat_0, value: 22.014, unit: deg{err}}}
"""
    for n in bkg_names:
        text += f"""- type: FoVBackgroundModel
  name: {n}-bkg
  datasets_names: ['{n}']
  spectral:
    type: PowerLawNormSpectralModel
    parameters:
    - {{name: norm, value: 1.0}}
    - {{name: tilt, value: 0.0, frozen: true}}
    - {{name: reference, value: 1.0, unit: TeV}}
"""
    return text


def gdask_fit(
    specs: list[Any],
    yaml_text: str,
    client: Any = None,
    *,
    hessian: str = "gradient",
    label: str = "",
    times: dict[str, float] | None = None,
) -> Any:
    """Build the terms (timed), run ``Fit(...).run()`` (timed); return the FitResult."""
    import gdask.likelihood.map  # noqa: F401 - imported before the timing, as Gammapy is
    from gdask.fit import Coordinator, Fit
    from gdask.models import Models

    models = Models.from_yaml(yaml_text)
    coord = Coordinator(specs, client)
    try:
        with timed(f"gdask {label}: build terms", times):
            coord.start()
        with timed(f"gdask {label}: fit.run", times):
            result = Fit(models, coord, hessian=hessian).run()
    finally:
        coord.close()
    print(
        f"  gdask {label}: success={result.success} evaluations={result.n_evaluations} "
        f"(fcn {result.n_fcn}, grad {result.n_grad}) round trips={result.n_round_trips} "
        f"stat={result.total_stat:.4f}",
        flush=True,
    )
    return result

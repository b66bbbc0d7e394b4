"""The H.E.S.S. DR1 Crab runs reduced by Gammapy 2.1, built once per test session.

The acceptance configuration of bench_B_3d_crab.py: runs 23523, 23526, 23559,
23592; CAR grid at (83.633, 22.014) ICRS, 0.02 deg pixels, 3 x 3 deg; reco
energy 0.7-10 TeV (10 log bins), true energy 0.5-20 TeV (20 log bins); IRF
maps on 0.2 deg pixels; safe mask offset-max 2.5 deg + aeff-default; FoV
background "scale" with the Crab excluded within 0.3 deg.

Several validation modules compare against this reduction; `hess_crab_3d`
caches it (the session fixture ``gp_hess_crab`` of ``conftest.py`` returns
it). The datasets are shared: a test that changes one works on a
``copy.deepcopy`` (Gammapy's ``MapDataset.copy()`` also renames it and drops
its models, the fitted FoV background model among them).
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OBS_IDS = (23523, 23526, 23559, 23592)
TARGET_RADEC = (83.633, 22.014)


@dataclass(frozen=True)
class HessCrab3D:
    """Gammapy's per-run reduction of the four Crab runs.

    Attributes
    ----------
    datasets : dict
        ``{obs_id: gammapy.datasets.MapDataset}`` (FoV background model fitted).
    exclusion : gammapy.maps.WcsNDMap
        The exclusion mask (False within 0.3 deg of the Crab).
    seconds : dict
        ``{obs_id: wall time of the reduction}`` (including Gammapy's lazy IRF reads).
    """

    datasets: dict[int, Any]
    exclusion: Any
    seconds: dict[int, float]


@functools.cache
def hess_crab_3d(hess_dir: Path) -> HessCrab3D:
    """Reduce the four runs with Gammapy's MapDatasetMaker, SafeMaskMaker and FoVBackgroundMaker."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from gammapy.data import DataStore
    from gammapy.datasets import MapDataset
    from gammapy.makers import FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker
    from gammapy.maps import MapAxis, WcsGeom
    from regions import CircleSkyRegion

    warnings.simplefilter("ignore")
    target = SkyCoord(*TARGET_RADEC, unit="deg", frame="icrs")
    energy_axis = MapAxis.from_energy_bounds(0.7, 10, nbin=10, unit="TeV")
    energy_axis_true = MapAxis.from_energy_bounds(0.5, 20, nbin=20, unit="TeV", name="energy_true")
    geom = WcsGeom.create(
        skydir=TARGET_RADEC, binsz=0.02, width=(3, 3), frame="icrs", proj="CAR", axes=[energy_axis]
    )
    exclusion = ~geom.to_image().region_mask([CircleSkyRegion(center=target, radius=0.3 * u.deg)])
    empty = MapDataset.create(geom=geom, energy_axis_true=energy_axis_true, name="empty")
    maker = MapDatasetMaker(selection=["counts", "background", "exposure", "edisp", "psf"])
    safe_maker = SafeMaskMaker(methods=["offset-max", "aeff-default"], offset_max=2.5 * u.deg)
    fov_maker = FoVBackgroundMaker(method="scale", exclusion_mask=exclusion)
    store = DataStore.from_dir(hess_dir)
    datasets, seconds = {}, {}
    for obs_id in OBS_IDS:
        t0 = time.perf_counter()
        obs = store.obs(obs_id)
        ds = maker.run(empty.copy(name=str(obs_id)), obs)
        ds = safe_maker.run(ds, obs)
        datasets[obs_id] = fov_maker.run(ds)
        seconds[obs_id] = time.perf_counter() - t0
    return HessCrab3D(datasets, exclusion, seconds)

#!/usr/bin/env python
"""Benchmark: 1D flux points in 12 bins, gdask against Gammapy 2.1 in the same run.

The four H.E.S.S. Crab joint-Crab OGIP spectra, a power law (1 TeV) at fixed
parameters, flux points in 12 bins (groups of two reco bins from 0.63 TeV).
Timed, Gammapy and gdask, with the default outputs and with every optional
output (Gammapy ``selection_optional="all"``, which includes the sensitivity
gdask does not compute; gdask: errn-errp, ul, scan):

* gdask in-process (terms built once, restricted per bin; build time shown apart),
* gdask with 1 and 2 workers (each bin one task next to a resident replica of
  the terms; replicas built inside the timed region).

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_flux_points.py

Prints the times, the ratios Gammapy / gdask and the load average.  The
machine is shared: read the ratios with the load average.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, HESS_RUNS, Machine, local_cluster, ratio, timed  # noqa: E402

PL = {"index": 2.6, "amplitude": "3.5e-11 cm-2 s-1 TeV-1"}


def main() -> None:
    import astropy.units as u
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.estimators import FluxPointsEstimator as GammapyFPE
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel

    from gdask.estimators.flux_points import FluxPointsEstimator
    from gdask.fit import Coordinator
    from gdask.likelihood.term import TermSpec, build_term
    from gdask.models import Models

    warnings.simplefilter("ignore")
    machine = Machine()
    files = [DATA / "joint-crab/spectra/hess" / f"pha_obs{i}.fits" for i in HESS_RUNS]
    gds = Datasets([SpectrumDatasetOnOff.read(f) for f in files])
    gds.models = [SkyModel(spectral_model=PowerLawSpectralModel(**PL), name="crab")]
    axis = gds[0].counts.geom.axes["energy"].edges
    edges = axis[axis > 0.6 * u.TeV][: 2 * 12 + 1 : 2]
    assert len(edges) == 13
    models = Models.from_dict(gds.models.to_dict())
    specs = [
        TermSpec("spectrum", d.name, str(f), models.to_dict())
        for d, f in zip(gds, files, strict=True)
    ]
    e_tev = edges.to_value("TeV")
    t: dict[str, float] = {}
    for label, g_sel, d_sel in (("default", None, None), ("all optional", "all", "all")):
        print(f"[{label}]")
        with timed(f"gammapy {label}", t):
            gp = GammapyFPE(source="crab", energy_edges=edges, selection_optional=g_sel).run(gds)
        est = FluxPointsEstimator("crab", e_tev, selection_optional=d_sel)
        with timed("gdask build terms (once)", t):
            terms = [build_term(s) for s in specs]
        with timed(f"gdask in-process {label}", t):
            ours = est.run(terms, models)
        diff = np.nanmax(np.abs(ours.data["norm"] / np.asarray(gp.norm.data.ravel()) - 1))
        print(f"  max |norm / gammapy - 1| = {diff:.1e}")
        for n in (1, 2):
            with local_cluster(n) as client, Coordinator(specs, client) as coord:
                with timed(f"gdask {n} worker(s) {label}", t):
                    est.run(coord, models)
        g = t[f"gammapy {label}"]
        print(
            f"  ratio gammapy/gdask: in-process {ratio(g, t[f'gdask in-process {label}'])}, "
            f"1 worker {ratio(g, t[f'gdask 1 worker(s) {label}'])}, "
            f"2 workers {ratio(g, t[f'gdask 2 worker(s) {label}'])}"
        )
    machine.report()


if __name__ == "__main__":
    main()

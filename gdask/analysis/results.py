"""What a joint fit leaves behind: per-dataset spectra at the best fit, tables, summary, folder.

The results folder::

    models.yaml                 best-fit models (Gammapy layout) + fit information
    models_covariance.dat       covariance of all unique parameters (Gammapy's layout)
    models_parameters.ecsv      every parameter: value, error, unit, bounds, frozen
    datasets.ecsv               per dataset: analysis, kind, statistic, fitted bins, counts, npred
    fit_summary.txt             the human summary (also printed)
    fit_summary.yaml            the same facts, machine-readable
    spectrum.png                best-fit spectrum, butterfly, approximate flux points
    counts_<analysis>.png       counts vs npred per energy with residuals
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FitOutcome",
    "dataset_spectra",
    "spectra_payload",
    "datasets_table",
    "summary_text",
    "write_results",
    "butterfly",
    "flux_points",
    "main_source",
]


# ----------------------------------------------------------------------------- worker payload


def _term_spectrum(term: Any, values: np.ndarray) -> dict[str, Any]:
    """Per reco-energy bin: counts, predicted signal and background, fit mask (1d and 3d)."""
    if hasattr(term, "npred_background"):  # spectrum ON/OFF term
        info = term.info(values)
        n_off, alpha = info["counts_off"], info["alpha"]
        var_bkg = (alpha**2 * n_off) if n_off is not None else np.zeros_like(info["counts"])
        return {
            "name": term.name,
            "kind": "spectrum",
            "mask": info["mask"],
            "counts": info["counts"],
            "npred_sig": info["npred_sig"],
            "npred_bkg": info["npred_bkg"],
            "var_bkg": np.asarray(var_bkg, float),
            "stat": float(info["stat"]),
        }
    mask = np.asarray(term.mask, bool)
    total = term.npred(values)
    sig = term.npred_signal(values)

    def esum(a: np.ndarray) -> np.ndarray:
        return np.where(mask, a, 0.0).sum(axis=(1, 2))

    return {
        "name": term.name,
        "kind": "map",
        "mask": mask.any(axis=(1, 2)),
        "counts": esum(term.counts),
        "npred_sig": esum(sig),
        "npred_bkg": esum(total - sig),
        "var_bkg": np.zeros(mask.shape[0]),
        "stat": float(term.stat(values)),
    }


def spectra_payload(group: Any, values: np.ndarray) -> list[dict[str, Any]]:
    """``_term_spectrum`` of every term of a `~gdask.fit.TermGroup` (runs next to the group)."""
    return [_term_spectrum(t, values) for t in group.terms]


def dataset_spectra(coordinator: Any, values: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per-dataset spectra at the full parameter vector ``values``, one task per term group."""
    parts = coordinator.map_groups(spectra_payload, np.asarray(values, float))
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for item in part:
            out[item["name"]] = item
    return out


# ----------------------------------------------------------------------------- derived quantities


def main_source(models: Any) -> Any:
    """The first SkyModel with a non-norm spectral model (the source of the spectrum plot)."""
    from gdask.models import SkyModel

    for m in models:
        if (
            isinstance(m, SkyModel)
            and m.spectral_model is not None
            and not m.spectral_model.is_norm_spectral_model
        ):
            return m
    return None


def butterfly(
    model: Any, names: list[str], covariance: np.ndarray | None, energy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """dN/dE of ``model`` at ``energy`` (TeV) and its 1-sigma error from the covariance.

    ``names``/``covariance``: free parameters (unique names) and their covariance
    in stored units, as in `~gdask.fit.FitResult`.
    """
    sm = model.spectral_model
    dnde = np.asarray(sm(energy), float)
    if covariance is None:
        return dnde, np.full_like(dnde, np.nan)
    grads = sm.gradient(energy)
    jac = np.zeros((energy.size, len(names)))
    for j, n in enumerate(names):
        prefix = f"{model.name}.spectral."
        if n.startswith(prefix) and n[len(prefix) :] in grads:
            jac[:, j] = np.broadcast_to(grads[n[len(prefix) :]], energy.shape)
    var = np.einsum("ij,jk,ik->i", jac, np.nan_to_num(covariance), jac)
    return dnde, np.sqrt(np.clip(var, 0, None))


def flux_points(spec: dict[str, Any], edges: np.ndarray, model: Any) -> dict[str, np.ndarray]:
    """Approximate flux points of one dataset (or a sum): excess / npred_signal x model.

    In each fitted reco-energy bin the model dN/dE at the bin's log centre is
    scaled by the ratio of the measured excess (counts - predicted background)
    to the predicted signal counts; the error comes from the counts (and OFF
    counts). Bins with no predicted signal are dropped.
    """
    e = np.sqrt(edges[:-1] * edges[1:])
    sig = spec["npred_sig"]
    ok = spec["mask"] & (sig > 0)
    dnde = np.asarray(model.spectral_model(e), float)
    excess = spec["counts"] - spec["npred_bkg"]
    err = np.sqrt(np.clip(spec["counts"], 1.0, None) + spec["var_bkg"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio, rerr = excess / sig, err / sig
    return {
        "energy": e[ok],
        "energy_lo": edges[:-1][ok],
        "energy_hi": edges[1:][ok],
        "dnde": (ratio * dnde)[ok],
        "dnde_err": (rerr * dnde)[ok],
    }


def sum_spectra(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum per-dataset spectra of one analysis (same energy axis) bin by bin."""
    out = {
        k: sum(np.asarray(it[k], float) for it in items)
        for k in ("counts", "npred_sig", "npred_bkg", "var_bkg")
    }
    out["mask"] = np.any([it["mask"] for it in items], axis=0)
    return out


# ----------------------------------------------------------------------------- outcome and tables


@dataclass
class FitOutcome:
    """A finished joint fit and everything written about it."""

    result: Any  # FitResult
    problem: Any  # JointProblem
    spectra: dict[str, dict[str, Any]]
    mode: str
    n_workers: int
    wall_time: float
    fit_time: float
    out: Path | None = None
    files: list[Path] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def datasets_table(outcome: FitOutcome) -> Any:
    """`astropy.table.Table`: one row per dataset (statistic, fitted bins, counts, npred)."""
    from astropy.table import Table

    rows = []
    for spec in outcome.problem.specs:
        s = outcome.spectra.get(spec.name)
        m = s["mask"] if s is not None else None
        rows.append(
            {
                "name": spec.name,
                "analysis": outcome.problem.analysis_of[spec.name],
                "kind": spec.kind,
                "stat": float(outcome.result.stats.get(spec.name, np.nan)),
                "fit_energy_bins": int(m.sum()) if m is not None else 0,
                "counts": float(np.sum(s["counts"][m])) if s is not None else np.nan,
                "npred": float(np.sum((s["npred_sig"] + s["npred_bkg"])[m]))
                if s is not None
                else np.nan,
                "npred_signal": float(np.sum(s["npred_sig"][m])) if s is not None else np.nan,
            }
        )
    return Table(rows=rows, names=list(rows[0]))


def summary_text(outcome: FitOutcome) -> str:
    """The human summary: outcome, parameters with errors, per-dataset statistics, costs."""
    r = outcome.result
    lines = [
        f"joint fit of {len(outcome.problem.specs)} datasets "
        f"({', '.join(sorted(set(outcome.problem.analysis_of.values())))}), "
        f"{outcome.mode}"
        + (f" on {outcome.n_workers} workers" if outcome.mode == "distributed" else ""),
        f"  optimizer   : {r.backend}/{r.method}: {r.message}",
        f"  covariance  : {r.covariance_method}: {r.covariance_message}",
        f"  total stat  : {r.total_stat:.3f} (penalties {r.prior_stat:.3f})",
        f"  evaluations : {r.n_evaluations} (fcn {r.n_fcn}, grad {r.n_grad}, "
        f"round trips {r.n_round_trips})",
        f"  wall time   : {outcome.fit_time:.2f} s fit (terms built, MIGRAD, HESSE), "
        f"{outcome.wall_time:.2f} s in all",
        "",
        "  free parameters:",
    ]
    for n, v, e, un in zip(r.names, r.values, r.errors, r.units, strict=True):
        lines.append(f"    {n:44s} {v: .5g} +/- {e:.3g} {un}")
    lines += ["", "  datasets:"]
    table = datasets_table(outcome)
    for row in table:
        lines.append(
            f"    {row['name']:24s} {row['kind']:8s} stat {row['stat']:10.3f}  "
            f"energy bins {row['fit_energy_bins']:3d}  counts {row['counts']:10.0f}  "
            f"npred {row['npred']:10.1f}"
        )
    return "\n".join(lines)


def _summary_dict(outcome: FitOutcome) -> dict[str, Any]:
    r = outcome.result
    return {
        "success": bool(r.success),
        "message": str(r.message),
        "covariance_success": bool(r.covariance_success),
        "total_stat": float(r.total_stat),
        "penalty_stat": float(r.prior_stat),
        "n_evaluations": int(r.n_evaluations),
        "n_fcn": int(r.n_fcn),
        "n_grad": int(r.n_grad),
        "n_round_trips": int(r.n_round_trips),
        "mode": outcome.mode,
        "n_workers": int(outcome.n_workers),
        "fit_time_s": round(float(outcome.fit_time), 3),
        "wall_time_s": round(float(outcome.wall_time), 3),
        "parameters": {
            n: {"value": float(v), "error": float(e), "unit": un}
            for n, v, e, un in zip(r.names, r.values, r.errors, r.units, strict=True)
        },
        "datasets": {n: float(s) for n, s in r.stats.items()},
        **outcome.extra,
    }


def write_results(outcome: FitOutcome, out: str | Path, injected: Any = None) -> list[Path]:
    """Write the results folder (see the module doc); return the files written.

    ``injected``: models drawn in the spectrum plot for comparison (simulations).
    """
    import yaml

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    r = outcome.result
    r.write(out / "models.yaml", overwrite=True)
    files = [out / "models.yaml", out / "models_parameters.ecsv"]
    if (out / "models_covariance.dat").exists() and r.models.covariance is not None:
        files.append(out / "models_covariance.dat")
    datasets_table(outcome).write(out / "datasets.ecsv", format="ascii.ecsv", overwrite=True)
    text = summary_text(outcome)
    (out / "fit_summary.txt").write_text(text + "\n")
    (out / "fit_summary.yaml").write_text(yaml.safe_dump(_summary_dict(outcome), sort_keys=False))
    files += [out / "datasets.ecsv", out / "fit_summary.txt", out / "fit_summary.yaml"]
    files += _plots(outcome, out, injected)
    outcome.out, outcome.files = out, files
    return files


def _plots(outcome: FitOutcome, out: Path, injected: Any) -> list[Path]:
    from gdask import plotting

    prob, r = outcome.problem, outcome.result
    files = []
    by_analysis: dict[str, list[str]] = {}
    for s in prob.specs:
        by_analysis.setdefault(prob.analysis_of[s.name], []).append(s.name)
    src = main_source(r.models)
    panels = []
    for analysis, names in by_analysis.items():
        items = [outcome.spectra[n] for n in names if n in outcome.spectra]
        if not items:
            continue
        edges = np.asarray(prob.energy_edges[names[0]], float)
        same = all(np.array_equal(prob.energy_edges[n], edges) for n in names)
        summed = sum_spectra(items) if same else items[0]
        title = f"{analysis}: {len(items)} dataset(s) ({items[0]['kind']})" + (
            "" if same else f", first: {names[0]}"
        )
        path = out / f"counts_{analysis}.png"
        plotting.plot_counts(path, edges, summed, title=title)
        files.append(path)
        if src is not None:
            panels.append((analysis, flux_points(summed, edges, src)))
    if src is not None:
        lo = (
            min(float(p["energy_lo"].min()) for _, p in panels if p["energy"].size)
            if any(p["energy"].size for _, p in panels)
            else 0.1
        )
        hi = (
            max(float(p["energy_hi"].max()) for _, p in panels if p["energy"].size)
            if any(p["energy"].size for _, p in panels)
            else 100.0
        )
        energy = np.geomspace(lo, hi, 100)
        dnde, err = butterfly(src, r.names, r.covariance, energy)
        ref = None
        if injected is not None:
            inj = next((m for m in injected if getattr(m, "name", None) == src.name), None)
            if inj is not None:
                ref = np.asarray(inj.spectral_model(energy), float)
        path = out / "spectrum.png"
        plotting.plot_spectrum(
            path, energy, dnde, err, panels, title=f"{src.name}: joint fit", reference=ref
        )
        files.append(path)
    return files

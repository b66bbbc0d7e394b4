"""Posterior sampling over the joint likelihood: an ensemble MCMC (emcee) whose
walkers are evaluated together: one coordinator round trip per half-ensemble
(the stretch move updates the two halves in turn).

The posterior is ``exp(-stat / 2) * prior`` over the free unique parameters,
where ``stat`` is the summed term statistic and the prior is the product of the
parameters' priors (`gdask.models.priors`). As Gammapy's ``Sampler`` does, every
free parameter must carry a prior: bounds alone do not imply a uniform prior, and
a missing prior is a `~gdask.errors.GdaskError` naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GdaskError
from .problem import FitProblem


@dataclass(frozen=True)
class SampleResult:
    """Posterior samples over the free parameters.

    Attributes
    ----------
    names : list of str
        Unique names of the free parameters (column order of ``samples``).
    samples : ndarray
        Flattened post-burn-in samples, shape ``(n_samples, n_free)``, in
        parameter units.
    acceptance : float
        Mean acceptance fraction of the walkers.
    n_evaluations : int
        Round trips to the coordinator: emcee's stretch move updates the two
        half-ensembles in turn, so two per step (each carrying half the walkers),
        plus one for the start.
    """

    names: list[str]
    samples: np.ndarray
    acceptance: float
    n_evaluations: int

    def table(self) -> dict[str, dict[str, float]]:
        """Median and central 68 % interval (16th, 84th percentiles) per parameter."""
        q = np.percentile(self.samples, [16.0, 50.0, 84.0], axis=0)
        return {
            n: {"median": float(q[1, i]), "lo": float(q[0, i]), "hi": float(q[2, i])}
            for i, n in enumerate(self.names)
        }


def _check_priors(problem: FitProblem) -> None:
    for i in np.flatnonzero(problem.free):
        if problem.priors[i] is None:
            raise GdaskError(
                "posterior sampling needs a prior on every free parameter",
                field=problem.names[i],
            )


def log_posterior_many(problem: FitProblem, coordinator: Any, factors: np.ndarray) -> np.ndarray:
    """Log posterior at a stack of factor vectors (shape ``(m, n_free)``), one round trip.

    Points with an infinite prior statistic are not sent to the terms.
    """
    factors = np.atleast_2d(factors)
    uniq = [problem.unique_from_factors(f) for f in factors]
    prior = np.array([problem.extra_stat_and_grad(u)[0] for u in uniq])
    out = np.full(len(factors), -np.inf)
    ok = np.flatnonzero(np.isfinite(prior))
    if len(ok):
        full = np.array([problem.full_from_unique(uniq[j]) for j in ok])
        evals = coordinator.evaluate_many(full)
        stat = np.array([e.stat for e in evals]) + prior[ok]
        out[ok] = np.where(np.isfinite(stat), -0.5 * stat, -np.inf)
    return out


def sample_emcee(
    models: Any,
    coordinator: Any,
    n_walkers: int = 16,
    n_steps: int = 500,
    n_burn: int = 100,
    seed: int = 0,
    start_errors: np.ndarray | None = None,
) -> SampleResult:
    """Sample the joint posterior with emcee, each half-ensemble in one round trip.

    Walkers start in a small Gaussian ball (``start_errors`` in parameter units,
    default 1e-3 of the scale) around the models' current (best-fit) values.

    Examples
    --------
    >>> res = sample_emcee(models, coord, n_steps=300)  # doctest: +SKIP
    >>> res.table()["crab.spectral.alpha"]["median"]  # doctest: +SKIP
    """
    import emcee

    problem = FitProblem(models)
    _check_priors(problem)
    n_free = problem.n_free
    rng = np.random.default_rng(seed)
    x0 = problem.factors0()
    width = (
        np.full(n_free, 1e-3)
        if start_errors is None
        else np.asarray(start_errors, dtype=float) / problem.free_scales
    )
    p0 = x0 + width * rng.normal(size=(n_walkers, n_free))
    counter = [0]

    def logp(stack: np.ndarray) -> np.ndarray:
        counter[0] += 1
        return log_posterior_many(problem, coordinator, stack)

    sampler = emcee.EnsembleSampler(n_walkers, n_free, logp, vectorize=True)
    sampler.random_state = np.random.RandomState(seed).get_state()
    sampler.run_mcmc(p0, n_steps, progress=False)
    chain = sampler.get_chain(discard=n_burn, flat=True) * problem.free_scales
    return SampleResult(
        names=problem.free_names,
        samples=chain,
        acceptance=float(np.mean(sampler.acceptance_fraction)),
        n_evaluations=counter[0],
    )


def write_posterior(result: SampleResult, folder: Any, prefix: str = "posterior") -> list[Any]:
    """Write the posterior table (CSV: median, 16th/84th percentiles) and a corner plot (PNG).

    The corner plot is drawn with matplotlib directly (histograms on the
    diagonal, 2-d histograms below): no extra dependency.

    Examples
    --------
    >>> write_posterior(res, "results")  # doctest: +SKIP
    """
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / f"{prefix}.csv"
    lines = ["name,median,lo68,hi68"]
    for name, row in result.table().items():
        lines.append(f"{name},{row['median']!r},{row['lo']!r},{row['hi']!r}")
    table.write_text("\n".join(lines) + "\n")

    n = len(result.names)
    fig = Figure(figsize=(2.2 * n, 2.2 * n))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, n, squeeze=False)
    s = result.samples
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
            elif i == j:
                ax.hist(s[:, i], bins=40, histtype="step", color="k")
                ax.set_yticks([])
            else:
                ax.hist2d(s[:, j], s[:, i], bins=40, cmap="Greys")
            if i == n - 1:
                ax.set_xlabel(result.names[j].rsplit(".", 1)[-1])
            if j == 0 and i > 0:
                ax.set_ylabel(result.names[i].rsplit(".", 1)[-1])
    fig.tight_layout()
    plot = folder / f"{prefix}_corner.png"
    fig.savefig(plot, dpi=80)
    return [table, plot]

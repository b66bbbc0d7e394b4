"""`Fit`: joint minimisation, covariance, MINOS, profiles and contours.

Independent minimisations (profile points, surface points) run concurrently:

``parallel="threads"`` (default with a cluster)
    one minimisation per client thread, all sharing the resident term
    groups; their evaluation tasks interleave on the workers, so the round
    trips (latency-bound, ~10 ms) overlap.  No data is duplicated.
``parallel="replicas"``
    one full copy of all terms per worker (built by a task from the specs,
    kept resident); each point's whole minimisation runs as one task next to
    a copy, with no round trips.  Best for small problems with many points.
``parallel=None``
    sequential (the default in-process).

Every point starts from the best fit, so results do not depend on the mode.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .backends import (
    MinimizeOutput,
    Objective,
    covariance_from_hessian,
    hessian_from_gradient,
    make_minuit,
    minimize,
)
from .coordinator import Coordinator, TermGroup, local_coordinator
from .problem import FitProblem
from .result import FitResult

__all__ = ["Fit"]


def _point_task(group: TermGroup, problem: FitProblem, opts: dict[str, Any]) -> dict[str, Any]:
    """One independent minimisation on a worker next to a replica of all terms."""
    obj = Objective(problem, local_coordinator(group))
    out = minimize(obj, **opts) if problem.n_free else None
    factors = out.factors if out is not None else np.zeros(0)
    stat, _, stats = obj.evaluate(factors)
    return _point_summary(problem, obj, out, factors, stat, stats)


def _point_summary(
    problem: FitProblem,
    obj: Objective,
    out: MinimizeOutput | None,
    factors: np.ndarray,
    stat: float,
    stats: np.ndarray,
) -> dict[str, Any]:
    return {
        "stat": float(stat),
        "stats": np.asarray(stats),
        "values": problem.unique_from_factors(factors),
        "success": True if out is None else bool(out.success),
        "message": "" if out is None else out.message,
        "n_evaluations": obj.n_evaluations,
    }


class Fit:
    """Joint fit of models to the datasets held by a coordinator.

    Parameters
    ----------
    models : `~gdask.models.Models`
        The joint models; `run` writes best-fit values, errors and covariance back.
    coordinator : Coordinator
        Holds the likelihood terms (distributed or in-process).
    backend : {"minuit", "scipy"}
        MIGRAD (analytic gradient) or scipy (``L-BFGS-B``, bounds and gradient).
    strategy : int
        MIGRAD strategy (0: fewest evaluations, as measured best with ``grad``).
    tol : float
        MIGRAD tolerance (Gammapy's 0.1).
    penalties : dict, optional
        ``{unique name: (mu, sigma)}`` Gaussian penalties added to the statistic.
    hessian : {"gradient", "numerical"}
        Second derivatives from central differences of the analytic gradient
        (2n evaluations in **one** round trip; given to iminuit as ``hessian=``
        so MIGRAD's seed and HESSE use it, and used for scipy's covariance), or
        Minuit's own finite differences of the statistic (Gammapy's behaviour,
        ~n^2/2 sequential evaluations; minuit backend only).
    polish : bool
        Resume a valid MIGRAD with strategy >= 1 and ``tol / 10`` so it ends on the
        minimum (`gdask.fit.backends.minimize`); ``False``: one MIGRAD, as Gammapy.
    optimize_opts : dict, optional
        Extra options for `gdask.fit.backends.minimize` (``ncall``, ``method``, ``options``).
    """

    def __init__(
        self,
        models: Any,
        coordinator: Coordinator,
        *,
        backend: str = "minuit",
        strategy: int = 0,
        tol: float = 0.1,
        penalties: Mapping[str, tuple[float, float]] | None = None,
        hessian: str = "gradient",
        polish: bool = True,
        optimize_opts: dict[str, Any] | None = None,
    ) -> None:
        if backend not in ("minuit", "scipy"):
            raise ValueError(f"unknown backend {backend!r}; use 'minuit' or 'scipy'")
        self.models = models
        self.coordinator = coordinator
        self.backend = backend
        self.strategy = strategy
        self.tol = tol
        self.penalties = dict(penalties or {})
        if hessian not in ("gradient", "numerical"):
            raise ValueError(f"hessian must be 'gradient' or 'numerical', not {hessian!r}")
        self.hessian = hessian
        self.polish = bool(polish)
        self.optimize_opts = dict(optimize_opts or {})
        self._minuit: Any = None
        self._objective: Objective | None = None
        self._problem: FitProblem | None = None
        self._best: np.ndarray | None = None

    # ------------------------------------------------------------- helpers
    def problem(self) -> FitProblem:
        """A fresh snapshot of the models as a `FitProblem`."""
        return FitProblem(self.models, penalties=self.penalties, autoscale=True)

    def _opts(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"backend": self.backend}
        if self.backend == "minuit":
            opts.update(
                strategy=self.strategy, tol=self.tol, hessian=self.hessian, polish=self.polish
            )
        opts.update(self.optimize_opts)
        return opts

    def _round_trips(self) -> int:
        return int(getattr(self.coordinator, "n_round_trips", 0))

    # ---------------------------------------------------------------- fits
    def optimize(self) -> FitResult:
        """Minimise; write the best-fit values into the models (no covariance)."""
        prob = self.problem()
        if prob.n_free == 0:
            raise ValueError("no free parameters to fit")
        rt0 = self._round_trips()
        obj = Objective(prob, self.coordinator)
        obj.check_start(prob.factors0())
        out = minimize(obj, **self._opts())
        stat, _, stats = obj.evaluate(out.factors)
        success = out.success and bool(np.isfinite(stat))
        unique = prob.unique_from_factors(out.factors)
        prob.apply(self.models, unique)
        self._problem, self._best = prob, out.factors
        self._minuit = out.optimizer if out.backend == "minuit" else None
        self._objective = obj if out.backend == "minuit" else None
        extra, _ = prob.extra_stat_and_grad(unique)
        return FitResult(
            names=prob.free_names,
            units=[prob.units[i] for i in prob.free_slots],
            values=unique[prob.free],
            errors=np.full(prob.n_free, np.nan),
            covariance=None,
            total_stat=stat,
            stats=dict(zip(self.coordinator.names, map(float, stats), strict=True)),
            prior_stat=float(extra),
            success=success,
            message=out.message + obj.invalid_note(),
            backend=out.backend,
            method=out.method,
            n_fcn=obj.n_fcn,
            n_grad=obj.n_grad,
            n_evaluations=obj.n_evaluations,
            n_round_trips=self._round_trips() - rt0,
            models=copy.deepcopy(self.models),
            optimizer=out.optimizer,
        )

    def covariance(self, result: FitResult) -> FitResult:
        """Covariance at the best fit of ``result`` (HESSE, or gradient differences for scipy).

        Updates ``result`` and the models (errors and ``models.covariance``).
        """
        prob, x = self._problem, self._best
        if prob is None or x is None:
            raise RuntimeError("run optimize() first")
        rt0 = self._round_trips()
        if self.backend == "minuit":
            m, obj = self._minuit, self._objective
            if m is None or obj is None:
                obj = Objective(prob, self.coordinator)
                m = make_minuit(
                    obj, strategy=self.strategy, tol=self.tol, start=x, hessian=self.hessian
                )
                self._objective = obj
            n0, e0 = m.nfcn, obj.n_evaluations
            m.hesse()
            ok = bool(m.accurate) and m.covariance is not None
            cov_f = (
                np.array(m.covariance)
                if m.covariance is not None
                else np.full((prob.n_free, prob.n_free), np.nan)
            )
            msg = "Hesse terminated successfully." if ok else "Hesse failed"
            result.n_fcn += m.nfcn - n0
            result.n_evaluations += obj.n_evaluations - e0
            self._minuit = m
            method = "hesse"
        else:
            obj = Objective(prob, self.coordinator)
            cov_f, ok = covariance_from_hessian(hessian_from_gradient(obj, x))
            msg = "Covariance from gradient differences" + ("." if ok else " failed.")
            result.n_evaluations += obj.n_evaluations
            method = "gradient"
        cov_unique = prob.covariance_unique(cov_f)
        prob.apply(self.models, prob.unique_from_factors(x), cov_unique)
        s = prob.free_scales
        result.covariance = cov_f * np.outer(s, s)
        with np.errstate(invalid="ignore"):
            result.errors = np.sqrt(np.diag(result.covariance))
        result.covariance_success, result.covariance_message = ok, msg
        result.covariance_method = method
        result.n_round_trips += self._round_trips() - rt0
        result.models = copy.deepcopy(self.models)
        return result

    def run(self) -> FitResult:
        """`optimize` then `covariance`."""
        return self.covariance(self.optimize())

    # -------------------------------------------------------------- errors
    def confidence(self, parameter: Any, sigma: float = 1.0) -> dict[str, Any]:
        """MINOS interval of one parameter (run after `run`/`optimize`).

        Returns
        -------
        dict
            ``errp``, ``errn`` (positive, stored units), ``success``, ``message``, ``nfev``.
        """
        from scipy.stats import norm

        prob, x = self._problem, self._best
        if prob is None or x is None:
            raise RuntimeError("run optimize() first")
        m = self._minuit
        if m is None:
            self._objective = Objective(prob, self.coordinator)
            m = make_minuit(
                self._objective, strategy=self.strategy, tol=self.tol, start=x, hessian=self.hessian
            )
            m.migrad()
            self._minuit = m
        slot = prob.slot(parameter)
        name = prob.names[slot]
        if name not in prob.free_names:
            raise ValueError(f"{name} is not a free parameter")
        n0 = m.nfcn
        try:
            m.minos(name, cl=2 * norm.cdf(sigma) - 1)
            me = m.merrors[name]
        except (RuntimeError, ValueError) as exc:
            return {
                "success": False,
                "message": str(exc),
                "errp": math.nan,
                "errn": math.nan,
                "nfev": m.nfcn - n0,
            }
        scale = prob.scales[slot]
        return {
            "success": bool(me.is_valid),
            "message": "Minos terminated "
            + ("successfully." if me.is_valid else ", but result is invalid."),
            "errp": float(me.upper) * scale,
            "errn": float(-me.lower) * scale,
            "nfev": m.nfcn - n0,
        }

    # ------------------------------------------------------------ profiles
    def _base(self) -> tuple[FitProblem, np.ndarray]:
        if self._problem is not None and self._best is not None:
            return self._problem, self._best
        prob = self.problem()
        return prob, prob.factors0()

    def _resolve_parallel(self, parallel: str | None | bool) -> str | None:
        if parallel is True or parallel == "auto":
            return "threads" if self.coordinator.distributed else None
        if parallel in (None, False):
            return None
        if parallel not in ("threads", "replicas"):
            raise ValueError(f"invalid parallel={parallel!r}")
        return parallel

    def _fit_points(
        self, problems: Sequence[FitProblem], parallel: str | None, max_threads: int = 16
    ) -> list[dict[str, Any]]:
        """Independent minimisations (each problem has its scanned slots fixed)."""
        opts = self._opts()

        def local(p: FitProblem) -> dict[str, Any]:
            obj = Objective(p, self.coordinator)
            out = minimize(obj, **opts) if p.n_free else None
            f = out.factors if out is not None else np.zeros(0)
            stat, _, stats = obj.evaluate(f)
            return _point_summary(p, obj, out, f, stat, stats)

        if parallel is None or len(problems) <= 1:
            return [local(p) for p in problems]
        if parallel == "threads":
            with ThreadPoolExecutor(max_workers=min(max_threads, len(problems))) as pool:
                return list(pool.map(local, problems))
        client = self.coordinator.client
        if client is None:
            return [local(p) for p in problems]
        replicas = self.coordinator.replicate()
        try:
            futs = [
                client.submit(_point_task, replicas[k % len(replicas)], p, opts, pure=False)
                for k, p in enumerate(problems)
            ]
            return client.gather(futs)
        finally:
            for r in replicas:
                r.release()

    def stat_profile(
        self,
        parameter: Any,
        values: Sequence[float] | None = None,
        *,
        n_values: int = 11,
        n_sigma: float = 2.0,
        reoptimize: bool = True,
        parallel: str | None | bool = "auto",
    ) -> dict[str, Any]:
        """Statistic profile of one parameter (Gammapy's ``stat_profile`` layout).

        Parameters
        ----------
        parameter : str or Parameter
            Unique name (or unambiguous short name) or the parameter object.
        values : sequence of float, optional
            Scan values (stored unit); default ``value +/- n_sigma * error``
            (or ``|value|`` without error) in ``n_values`` steps, as Gammapy.
        reoptimize : bool
            Re-optimise the other free parameters at each point (each point is
            an independent minimisation from the best fit); else a slice,
            evaluated in one round trip.
        parallel : {"auto", "threads", "replicas", None}
            How independent points run (see the module notes).

        Returns
        -------
        dict
            ``<name>_scan``, ``stat_scan``, ``fit_results`` (per point: values,
            stat, per-dataset stats, success), ``success``.
        """
        base, x = self._base()
        slot = base.slot(parameter)
        name = base.names[slot]
        best = base.unique_from_factors(x)
        if values is None:
            err = self.models.parameters.unique_parameters[slot].error
            step = err if err > 0 and np.isfinite(err) else abs(best[slot])
            values = np.linspace(best[slot] - n_sigma * step, best[slot] + n_sigma * step, n_values)
        values = np.asarray(values, dtype=float)
        start = base.with_factors(x)
        problems = [start.fixed({slot: v}) for v in values]
        if reoptimize:
            points = self._fit_points(problems, self._resolve_parallel(parallel))
        else:
            full = [p.full_from_unique(p.values) for p in problems]
            evs = self.coordinator.evaluate_many(np.array(full))
            points = []
            for p, ev in zip(problems, evs, strict=True):
                stat, _ = p.combine(p.values, ev.stat, ev.grad)
                points.append(
                    {
                        "stat": stat,
                        "stats": ev.stats,
                        "values": p.values.copy(),
                        "success": True,
                        "message": "",
                        "n_evaluations": 1,
                    }
                )
        return {
            f"{name}_scan": values,
            "stat_scan": np.array([p["stat"] for p in points]),
            "fit_results": points if reoptimize else [],
            "success": all(p["success"] for p in points),
        }

    def stat_surface(
        self,
        x: Any,
        y: Any,
        x_values: Sequence[float],
        y_values: Sequence[float],
        *,
        reoptimize: bool = True,
        parallel: str | None | bool = "auto",
    ) -> dict[str, Any]:
        """Statistic on a grid of two parameters (points independent and parallel).

        Returns ``<x>_scan``, ``<y>_scan``, ``stat_scan`` (shape ``(nx, ny)``),
        ``fit_results`` and ``success``.
        """
        base, f = self._base()
        sx, sy = base.slot(x), base.slot(y)
        start = base.with_factors(f)
        xv, yv = np.asarray(x_values, float), np.asarray(y_values, float)
        problems = [start.fixed({sx: a, sy: b}) for a in xv for b in yv]
        if reoptimize:
            points = self._fit_points(problems, self._resolve_parallel(parallel))
        else:
            evs = self.coordinator.evaluate_many(
                np.array([p.full_from_unique(p.values) for p in problems])
            )
            points = [
                {
                    "stat": p.combine(p.values, ev.stat, ev.grad)[0],
                    "success": True,
                    "values": p.values.copy(),
                    "stats": ev.stats,
                }
                for p, ev in zip(problems, evs, strict=True)
            ]
        stats = np.array([p["stat"] for p in points]).reshape(len(xv), len(yv))
        return {
            f"{base.names[sx]}_scan": xv,
            f"{base.names[sy]}_scan": yv,
            "stat_scan": stats,
            "fit_results": points if reoptimize else [],
            "success": all(p["success"] for p in points),
        }

    def stat_contour(
        self, x: Any, y: Any, numpoints: int = 10, sigma: float = 1.0
    ) -> dict[str, Any]:
        """Confidence contour of two parameters with iminuit's ``mncontour``.

        Each contour point re-optimises the other parameters (MINOS-like, so
        sequential).  For a parallel alternative use `stat_surface`.
        """
        from scipy.stats import chi2

        prob, xf = self._base()
        m = self._minuit
        if m is None or self._problem is None:
            m = make_minuit(
                Objective(prob, self.coordinator),
                strategy=self.strategy,
                tol=self.tol,
                start=xf,
                hessian=self.hessian,
            )
            m.migrad()
            self._minuit = m
        sx, sy = prob.slot(x), prob.slot(y)
        nx, ny = prob.names[sx], prob.names[sy]
        try:
            pts = np.asarray(m.mncontour(nx, ny, cl=chi2(2).cdf(sigma**2), size=numpoints))
            ok = True
        except RuntimeError:
            pts, ok = np.full((numpoints, 2), np.nan), False
        return {nx: pts[:, 0] * prob.scales[sx], ny: pts[:, 1] * prob.scales[sy], "success": ok}

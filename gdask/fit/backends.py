"""Minimiser backends over a `FitProblem` and a coordinator: iminuit and scipy.

Everything here works in *factor* space (free unique parameters divided by
their scale).  The `Objective` evaluates statistic and gradient in one
coordinator call and caches recent points, since MIGRAD asks for the value
and the gradient at the same point separately.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .problem import FitProblem

__all__ = ["Objective", "MinimizeOutput", "minimize", "make_minuit", "hessian_from_gradient"]


class Objective:
    """Joint statistic (terms + priors + penalties) of a problem, in factor space.

    Parameters
    ----------
    problem : FitProblem
    coordinator : Coordinator
        Anything with ``evaluate(full_values) -> Evaluation`` (and ``evaluate_many``).
    cache_size : int
        Number of recent points kept (value, gradient and per-term statistics).
    """

    def __init__(self, problem: FitProblem, coordinator: Any, cache_size: int = 8) -> None:
        self.problem = problem
        self.coordinator = coordinator
        self._cache: OrderedDict[bytes, tuple[float, np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.n_fcn = 0
        self.n_grad = 0
        self.n_evaluations = 0
        self.n_hessian = 0

    def _store(self, key: bytes, value: tuple[float, np.ndarray, np.ndarray]) -> None:
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def evaluate(self, factors: Any) -> tuple[float, np.ndarray, np.ndarray]:
        """``(stat, grad over factors, per-term statistics)`` at ``factors``."""
        x = np.array(factors, dtype=float)
        key = x.tobytes()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        if not np.all(np.isfinite(x)):
            # a minimiser stepping to NaN/inf: an invalid point for it, never a term's input
            return np.nan, np.full(x.shape, np.nan), np.array([])
        unique = self.problem.unique_from_factors(x)
        ev = self.coordinator.evaluate(self.problem.full_from_unique(unique))
        stat, grad = self.problem.combine(unique, ev.stat, ev.grad)
        out = (float(stat), grad, ev.stats)
        with self._lock:
            self.n_evaluations += 1
        self._store(key, out)
        return out

    def evaluate_many(self, factors: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """`evaluate` for a stack of points in one coordinator round trip."""
        factors = np.atleast_2d(np.asarray(factors, dtype=float))
        if not np.all(np.isfinite(factors)):
            return [self.evaluate(x) for x in factors]  # invalid points answer NaN, the rest as one
        uniques = [self.problem.unique_from_factors(x) for x in factors]
        evs = self.coordinator.evaluate_many(
            np.array([self.problem.full_from_unique(u) for u in uniques])
        )
        out = []
        for x, u, ev in zip(factors, uniques, evs, strict=True):
            stat, grad = self.problem.combine(u, ev.stat, ev.grad)
            res = (float(stat), grad, ev.stats)
            self._store(x.tobytes(), res)
            out.append(res)
        with self._lock:
            self.n_evaluations += len(factors)
        return out

    def fcn(self, factors: Any) -> float:
        """Statistic (iminuit's FCN)."""
        self.n_fcn += 1
        return self.evaluate(factors)[0]

    def grad(self, factors: Any) -> np.ndarray:
        """Gradient over factors (iminuit's ``grad``)."""
        self.n_grad += 1
        return self.evaluate(factors)[1]

    def hessian(self, factors: Any) -> np.ndarray:
        """Hessian over factors from gradient differences (one round trip; iminuit's ``hessian``)."""
        self.n_hessian += 1
        return hessian_from_gradient(self, np.asarray(factors, dtype=float))

    def g2(self, factors: Any) -> np.ndarray:
        """Diagonal of `hessian` (Minuit2 calls it when the seed Hessian is not positive definite)."""
        return np.diag(self.hessian(factors)).copy()

    def fun_and_grad(self, factors: Any) -> tuple[float, np.ndarray]:
        """Both at once (scipy with ``jac=True``)."""
        self.n_fcn += 1
        self.n_grad += 1
        stat, grad, _ = self.evaluate(factors)
        return stat, grad


@dataclass
class MinimizeOutput:
    """What a minimisation returns (factor space)."""

    factors: np.ndarray
    stat: float
    success: bool
    message: str
    backend: str
    method: str
    n_fcn: int
    n_grad: int
    n_evaluations: int
    optimizer: Any = field(default=None, repr=False)


def make_minuit(
    obj: Objective,
    strategy: int = 0,
    tol: float = 0.1,
    print_level: int = 0,
    start: np.ndarray | None = None,
    hessian: str = "gradient",
) -> Any:
    """A configured `iminuit.Minuit` (errordef 1 for ``-2 ln L``, analytic gradient).

    With ``hessian="gradient"`` Minuit also gets `Objective.hessian` (central
    differences of the analytic gradient, one round trip), which MIGRAD uses
    for its seed and HESSE instead of ~n^2/2 sequential function calls;
    ``"numerical"`` leaves Minuit's own finite differences (Gammapy's behaviour).
    """
    from iminuit import Minuit

    if hessian not in ("gradient", "numerical"):
        raise ValueError(f"hessian must be 'gradient' or 'numerical', not {hessian!r}")
    prob = obj.problem
    x0 = prob.factors0() if start is None else np.asarray(start, dtype=float)
    kw = {"hessian": obj.hessian, "g2": obj.g2} if hessian == "gradient" else {}
    with warnings.catch_warnings():  # g2 is only Minuit2's fallback, as intended
        warnings.filterwarnings("ignore", message="hessian overrides g2")
        m = Minuit(obj.fcn, x0, grad=obj.grad, name=prob.free_names, **kw)
    m.errordef = 1.0
    m.strategy = strategy
    m.tol = tol
    m.print_level = print_level
    m.errors = prob.factor_steps()
    m.limits = [
        (-np.inf if lo is None else lo, np.inf if hi is None else hi)
        for lo, hi in prob.factor_bounds()
    ]
    return m


def _minuit_message(m: Any) -> str:
    """Gammapy's wording of the MIGRAD outcome."""
    if m.valid and np.all(np.isfinite(np.asarray(m.values))):
        msg = "Optimization terminated successfully"
        return msg + ("." if m.accurate else ", but uncertainties are unreliable.")
    msg = "Optimization failed."
    if m.fmin.has_reached_call_limit:
        msg += " Call limit was reached."
    if m.fmin.is_above_max_edm:
        msg += " Estimated distance to minimum too large."
    return msg


def minimize(
    obj: Objective,
    backend: str = "minuit",
    *,
    strategy: int = 0,
    tol: float = 0.1,
    ncall: int | None = None,
    hessian: str = "gradient",
    method: str = "L-BFGS-B",
    options: dict[str, Any] | None = None,
) -> MinimizeOutput:
    """Minimise ``obj`` starting at the problem's values.

    Parameters
    ----------
    obj : Objective
    backend : {"minuit", "scipy"}
        MIGRAD with the analytic gradient, or `scipy.optimize.minimize`.
    strategy, tol, ncall, hessian
        MIGRAD settings (Gammapy's ``tol`` default 0.1; strategy 0: fewest calls;
        ``hessian`` see `make_minuit`).
    method, options
        scipy method (``L-BFGS-B`` uses bounds and the gradient) and its options.
    """
    prob = obj.problem
    if prob.n_free == 0:
        stat = obj.evaluate(np.zeros(0))[0]
        return MinimizeOutput(
            np.zeros(0),
            stat,
            True,
            "No free parameters.",
            backend,
            "none",
            obj.n_fcn,
            obj.n_grad,
            obj.n_evaluations,
        )
    if backend == "minuit":
        m = make_minuit(obj, strategy=strategy, tol=tol, hessian=hessian)
        m.migrad(ncall=ncall)
        x = np.array(m.values)
        return MinimizeOutput(
            x,
            float(m.fval),
            bool(m.valid),
            _minuit_message(m),
            "minuit",
            "migrad",
            obj.n_fcn,
            obj.n_grad,
            obj.n_evaluations,
            m,
        )
    if backend == "scipy":
        import scipy.optimize

        opts = {"maxiter": 10000}
        opts.update(options or {})
        res = scipy.optimize.minimize(
            obj.fun_and_grad,
            prob.factors0(),
            jac=True,
            method=method,
            bounds=prob.factor_bounds(),
            options=opts,
        )
        return MinimizeOutput(
            np.asarray(res.x, dtype=float),
            float(res.fun),
            bool(res.success),
            str(res.message),
            "scipy",
            method,
            obj.n_fcn,
            obj.n_grad,
            obj.n_evaluations,
            res,
        )
    raise ValueError(f"unknown backend {backend!r}; use 'minuit' or 'scipy'")


def hessian_from_gradient(
    obj: Objective, factors: np.ndarray, rel_step: float = 1e-6
) -> np.ndarray:
    """Hessian of the statistic (factor space) by central differences of the analytic gradient.

    All ``2 n`` points are evaluated in **one** coordinator round trip; a
    point outside a bound becomes a one-sided difference.
    """
    x = np.asarray(factors, dtype=float)
    n = len(x)
    bounds = obj.problem.factor_bounds()
    h = rel_step * np.maximum(np.abs(x), 1.0)
    plus, minus = np.tile(x, (n, 1)), np.tile(x, (n, 1))
    hp, hm = h.copy(), h.copy()
    for i, (lo, hi) in enumerate(bounds):
        if hi is not None and x[i] + h[i] > hi:
            hp[i] = 0.0
        if lo is not None and x[i] - h[i] < lo:
            hm[i] = 0.0
        plus[i, i] += hp[i]
        minus[i, i] -= hm[i]
    res = obj.evaluate_many(np.vstack([plus, minus]))
    gp = np.array([r[1] for r in res[:n]])
    gm = np.array([r[1] for r in res[n:]])
    hess = (gp - gm) / (hp + hm)[:, None]
    return 0.5 * (hess + hess.T)


def covariance_from_hessian(hess: np.ndarray) -> tuple[np.ndarray, bool]:
    """``2 H^-1`` (statistic is ``-2 ln L``); NaNs and False when singular."""
    try:
        cov = 2.0 * np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return np.full_like(hess, np.nan), False
    ok = bool(np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0))
    return cov, ok

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

__all__ = [
    "Objective",
    "MinimizeOutput",
    "minimize",
    "make_minuit",
    "hessian_from_gradient",
    "INVALID_POINT_ERRORS",
]

#: what a term raises at a point outside its model's domain (a latitude past the
#: pole, a NaN reaching an index): for the minimiser an invalid point (NaN), not the
#: end of the fit; the start point must be valid (`Objective.check_start`)
#: the polishing MIGRAD's tolerance, relative to the first one's
POLISH_TOL_FACTOR = 0.1

INVALID_POINT_ERRORS: tuple[type[BaseException], ...] = (ArithmeticError, ValueError, IndexError)


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
        self.n_invalid = 0
        self.last_invalid = ""
        #: the statistic of an invalid point: +inf makes MIGRAD's line search step back
        #: (NaN sends it astray); scipy's L-BFGS-B reports NaN as an abnormal end but
        #: takes +inf as convergence, so `minimize` gives it NaN
        self.invalid_stat = np.inf

    def _invalid_point(self, x: np.ndarray, exc: BaseException | None) -> tuple[Any, ...]:
        """NaN statistic and gradient for a point the terms cannot evaluate (counted)."""
        with self._lock:
            self.n_invalid += 1
            if exc is not None:
                self.last_invalid = f"{type(exc).__name__}: {exc}"
        n_terms = len(getattr(self.coordinator, "names", ()))
        return self.invalid_stat, np.full(x.shape, np.nan), np.full(n_terms, np.nan)

    def check_start(self, factors: Any) -> None:
        """Evaluate the start ``factors``, raising what a term raises: a bad start is an error.

        The point is cached, so MIGRAD's first call costs nothing more.
        """
        self.evaluate(factors, strict=True)

    def invalid_note(self) -> str:
        """``" (N points the terms could not evaluate; last: ...)"`` or ``""``."""
        if not self.n_invalid:
            return ""
        last = f"; last: {self.last_invalid}" if self.last_invalid else ""
        return f" ({self.n_invalid} points the terms could not evaluate{last})"

    def _store(self, key: bytes, value: tuple[float, np.ndarray, np.ndarray]) -> None:
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def evaluate(self, factors: Any, strict: bool = False) -> tuple[float, np.ndarray, np.ndarray]:
        """``(stat, grad over factors, per-term statistics)`` at ``factors``.

        A point the terms cannot evaluate (an `INVALID_POINT_ERRORS` exception,
        or non-finite factors) gives NaNs and is counted in ``n_invalid``;
        ``strict=True`` raises instead.
        """
        x = np.array(factors, dtype=float)
        key = x.tobytes()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        if not np.all(np.isfinite(x)):
            # a minimiser stepping to NaN/inf: an invalid point for it, never a term's input
            if strict:
                raise ValueError(f"non-finite parameter factors {x.tolist()}")
            return self._invalid_point(x, None)
        unique = self.problem.unique_from_factors(x)
        try:
            ev = self.coordinator.evaluate(self.problem.full_from_unique(unique))
        except INVALID_POINT_ERRORS as exc:  # outside the model's domain: invalid for MIGRAD
            if strict:
                raise
            return self._invalid_point(x, exc)
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
        try:
            evs = self.coordinator.evaluate_many(
                np.array([self.problem.full_from_unique(u) for u in uniques])
            )
        except INVALID_POINT_ERRORS:  # some point is invalid: each on its own
            return [self.evaluate(x) for x in factors]
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
    polish: bool = True,
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
    polish : bool
        After a valid MIGRAD, resume it with strategy >= 1 and ``tol / 10`` so the
        end point is on the minimum (within ~1e-4 in -2 ln L), not just near it.
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
        if polish and m.valid:
            # MIGRAD stops once its distance estimate is below 0.002 tol: with strategy
            # 0 that can be ~1e-3 above the minimum in -2 ln L. Resume from there with
            # strategy >= 1 (a Hessian at the end point) and tol / 10; at the minimum
            # already this costs a few evaluations
            m.strategy = max(int(strategy), 1)
            m.tol = tol * POLISH_TOL_FACTOR
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
        obj.invalid_stat = np.nan
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

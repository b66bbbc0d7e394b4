"""Estimate one source's norm on a subset of the data (the per-bin unit of flux points).

`estimate_norm` is the reusable piece: given likelihood terms already
restricted to the bins of interest (`restrict_terms`, a request mask per
term), it fits a norm multiplying the source's amplitude, with Gammapy 2.1's
`ParameterEstimator` semantics (``reoptimize=False``: every other parameter
frozen at its current value):

* ``norm``, ``norm_err`` (``n_sigma`` x the HESSE error ``sqrt(2 / d2S/dn2)``),
* ``ts = S(0) - S(best)``, ``stat``, ``stat_null``,
* ``norm_errn``/``norm_errp``: where ``S - S_best`` reaches ``n_sigma**2``,
* ``norm_ul``: where it reaches ``n_sigma_ul**2`` above the best fit,
* ``stat_scan`` on ``norm_scan`` (Gammapy's default: 11 log-spaced values 0.2-5),
* per term ``counts``, ``npred`` (signal + background) and ``npred_excess``
  summed over the fitted bins.

The source's predicted counts are linear in its amplitude, so a norm on the
amplitude is Gammapy's ``ScaleSpectralModel`` norm.  Roots are found with
Brent's method to ``1e-10`` in the norm (Gammapy's scipy confidence backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from gdask.errors import ConfigError

__all__ = [
    "DEFAULT_NORM_SCAN",
    "SELECTION_OPTIONAL",
    "estimate_norm",
    "norm_positions",
    "restrict_terms",
    "selection",
]

#: Gammapy's default norm scan: 11 values, log-spaced, 0.2 to 5
DEFAULT_NORM_SCAN = np.geomspace(0.2, 5.0, 11)
#: the optional outputs (``"all"`` selects them all; sensitivity is not implemented)
SELECTION_OPTIONAL = ("errn-errp", "ul", "scan")
_NORM_NAMES = ("amplitude", "norm")


def selection(selection_optional: Sequence[str] | str | None) -> set[str]:
    """The optional outputs asked for (``"all"`` or a subset of `SELECTION_OPTIONAL`)."""
    if selection_optional is None:
        return set()
    if isinstance(selection_optional, str):
        selection_optional = [selection_optional]
    sel = set(selection_optional)
    if "all" in sel:
        return set(SELECTION_OPTIONAL)
    unknown = sel - set(SELECTION_OPTIONAL)
    if unknown:
        raise ConfigError(
            f"unknown selection_optional {sorted(unknown)}; known: {list(SELECTION_OPTIONAL)}",
            field="selection_optional",
        )
    return sel


def norm_positions(models: Any, source: str) -> np.ndarray:
    """Positions in the full parameter vector of the source's amplitude (linked copies too)."""
    try:
        comp = models.layout().component(source)
    except KeyError:
        raise ConfigError(f"source {source!r} is not one of the models", field="source") from None
    sp = comp.part("spectral")
    pars = models.parameters
    hits = [i for i in range(sp.start, sp.stop) if pars[i].name in _NORM_NAMES]
    if len(hits) != 1:
        raise ConfigError(
            f"source {source!r}: its spectral model needs exactly one amplitude/norm parameter",
            field="source",
        )
    lay = models.layout()
    slot = lay.index[hits[0]]
    return np.flatnonzero(lay.index == slot)


def restrict_terms(terms: Sequence[Any], masks: Sequence[np.ndarray]) -> list[Any]:
    """Each term fitted on its own mask only (``term.restrict(mask)``, nothing rebuilt)."""
    out = []
    for term, mask in zip(terms, masks, strict=True):
        if not hasattr(term, "restrict"):
            raise ConfigError(
                f"dataset {term.name!r} ({type(term).__name__}) cannot be restricted to a bin",
                field="kind",
            )
        out.append(term.restrict(mask))
    return out


class _Profile:
    """The summed statistic of the terms as a function of the norm."""

    def __init__(self, terms: Sequence[Any], values: np.ndarray, pos: np.ndarray) -> None:
        self.terms, self.values, self.pos = list(terms), np.asarray(values, float), pos
        self.amp = self.values[pos].copy()

    def vector(self, norm: float) -> np.ndarray:
        v = self.values.copy()
        v[self.pos] = norm * self.amp
        return v

    def stat(self, norm: float) -> float:
        v = self.vector(norm)
        return float(sum(t.stat(v) for t in self.terms))

    def grad(self, norm: float) -> float:
        v = self.vector(norm)
        return float(sum(float(t.stat_and_grad(v)[1][self.pos] @ self.amp) for t in self.terms))


def _bracket(f: Any, x0: float, step: float, direction: float, limit: float = 1e6) -> float:
    """A point beyond ``x0`` in ``direction`` where ``f`` changes sign from its value at ``x0``."""
    f0 = f(x0)
    s = step
    while s < limit:
        x = x0 + direction * s
        if np.sign(f(x)) != np.sign(f0):
            return x
        s *= 2.0
    return np.nan


def _root(f: Any, a: float, b: float) -> float:
    if not np.isfinite(b):
        return np.nan
    lo, hi = (a, b) if a < b else (b, a)
    return float(brentq(f, lo, hi, xtol=1e-12, rtol=1e-12, maxiter=200))


def _best_norm(prof: _Profile, start: float = 1.0) -> float:
    """The minimum: a root of the analytic gradient where the profile is smooth, else
    Brent's minimisation of the statistic itself (e.g. a kink at zero predicted counts)."""
    g0 = prof.grad(start)
    if g0 == 0:
        return start
    other = _bracket(prof.grad, start, 0.5, -np.sign(g0))
    if np.isfinite(other):
        x = _root(prof.grad, start, other)
        eps = 1e-6 * max(abs(x), 1e-3)
        s = prof.stat(x)
        if s <= prof.stat(x - eps) and s <= prof.stat(x + eps):
            return x
    res = minimize_scalar(prof.stat, bracket=(start - 1.0, start), tol=1e-12)
    return float(res.x)


def estimate_norm(
    terms: Sequence[Any],
    values: np.ndarray,
    positions: np.ndarray,
    *,
    selection_optional: Sequence[str] | str | None = None,
    n_sigma: float = 1.0,
    n_sigma_ul: float = 2.0,
    norm_scan: np.ndarray | None = None,
) -> dict[str, Any]:
    """Fit a norm on the source amplitude over the (restricted) terms.

    Parameters
    ----------
    terms : sequence of LikelihoodTerm
        Terms fitted on the subset of interest (see `restrict_terms`), each with
        ``mask``, ``counts``, ``npred`` and ``npred_signal``.
    values : ndarray
        The full parameter vector (the reference model: norm 1).
    positions : ndarray of int
        Where the source amplitude sits in ``values`` (`norm_positions`).
    selection_optional : {"all"} or list of {"errn-errp", "ul", "scan"}, optional
    n_sigma, n_sigma_ul : float
        Widths of the errors and of the upper limit.
    norm_scan : ndarray, optional
        Norm values of the likelihood profile (default `DEFAULT_NORM_SCAN`).

    Returns
    -------
    dict
        ``norm``, ``norm_err``, ``ts``, ``stat``, ``stat_null``, ``success``,
        ``counts``, ``npred``, ``npred_excess`` (per term), optional
        ``norm_errn``, ``norm_errp``, ``norm_ul``, ``norm_scan``, ``stat_scan``.

    Examples
    --------
    >>> pos = norm_positions(models, "crab")  # doctest: +SKIP
    >>> sub = restrict_terms(terms, [term.mask & in_bin for term in terms])  # doctest: +SKIP
    >>> estimate_norm(sub, models.parameters.value, pos, selection_optional="all")  # doctest: +SKIP
    """
    sel = selection(selection_optional)
    scan = DEFAULT_NORM_SCAN if norm_scan is None else np.asarray(norm_scan, float)
    n = len(terms)
    out: dict[str, Any] = {
        "norm": np.nan,
        "norm_err": np.nan,
        "ts": np.nan,
        "stat": np.nan,
        "stat_null": np.nan,
        "success": False,
        "counts": np.array([float(t.counts[t.mask].sum()) for t in terms]),
        "npred": np.full(n, np.nan),
        "npred_excess": np.full(n, np.nan),
    }
    if "errn-errp" in sel:
        out.update(norm_errn=np.nan, norm_errp=np.nan)
    if "ul" in sel:
        out["norm_ul"] = np.nan
    if "scan" in sel:
        out.update(norm_scan=scan.copy(), stat_scan=np.full(scan.size, np.nan))
    live = [t for t in terms if t.mask.any()]
    if not live:
        return out
    prof = _Profile(live, values, np.asarray(positions, int))
    best = _best_norm(prof)
    s_best = prof.stat(best)
    h = 1e-4 * max(abs(best), 1e-3)
    curv = (prof.grad(best + h) - prof.grad(best - h)) / (2 * h)
    err = np.sqrt(2.0 / curv) if curv > 0 else np.nan
    s_null = prof.stat(0.0)
    out.update(
        norm=best,
        norm_err=n_sigma * err,
        stat=s_best,
        stat_null=s_null,
        ts=s_null - s_best,
        success=bool(np.isfinite(best)),
    )
    step = err if np.isfinite(err) and err > 0 else max(abs(best), 1.0)

    def delta(level: float) -> Any:
        return lambda x: prof.stat(x) - s_best - level

    if "errn-errp" in sel:
        f = delta(n_sigma**2)
        up = _root(f, best, _bracket(f, best, step, +1.0))
        lo = _root(f, best, _bracket(f, best, step, -1.0))
        out.update(norm_errp=up - best, norm_errn=best - lo)
    if "ul" in sel:
        f = delta(n_sigma_ul**2)
        out["norm_ul"] = _root(f, best, _bracket(f, best, step, +1.0))
    if "scan" in sel:
        out["stat_scan"] = np.array([prof.stat(x) for x in scan])
    v = prof.vector(best)
    npred, excess = [], []
    for t in terms:
        npred.append(float(t.npred(v)[t.mask].sum()))
        excess.append(float(t.npred_signal(v)[t.mask].sum()))
    out.update(npred=np.array(npred), npred_excess=np.array(excess))
    return out

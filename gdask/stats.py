"""Fit statistics of gamma-ray astronomy as pure functions on arrays.

Every statistic returns its per-bin value ``-2 log L`` (up to a model
independent constant), and a companion function returns the derivative of
that per-bin value with respect to the predicted quantity (``mu`` for the
Poisson statistics, the model for chi2). The likelihood layer sums the
per-bin derivatives through the chain rule ``dS/dtheta = sum dS/dmu * dmu/dtheta``.

Conventions follow Gammapy 2.1 bin for bin (truncation of ``mu`` at
``TRUNCATION_VALUE``, the treatment of empty bins, the goodness-of-fit terms
of cstat and wstat, the profiled background of wstat), so that summed
statistics agree with Gammapy's to rounding.

On top of the per-bin functions, the statistic *interface* a likelihood term
uses: a `Statistic` is bound to the observed data of the fitted bins and maps
the predicted signal counts to the summed statistic and its derivative
(`CashStatistic`, `WStatStatistic`). A term names its statistic with a key
of `STATISTICS` and builds it with `make_statistic`, which says which data a
statistic needs.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erfc, erfcx

__all__ = [
    "TRUNCATION_VALUE",
    "cash",
    "dcash_dmu",
    "cash_sum",
    "cstat",
    "dcstat_dmu",
    "wstat",
    "wstat_mu_bkg",
    "wstat_gof_terms",
    "dwstat_dmu_sig",
    "chi2",
    "dchi2_dmodel",
    "chi2_asymmetric",
    "dchi2_asymmetric_dmodel",
    "cash_ts",
    "cash_significance",
    "wstat_ts",
    "wstat_significance",
    "Statistic",
    "CashStatistic",
    "WStatStatistic",
    "STATISTICS",
    "make_statistic",
]

#: Smallest predicted count used in cash and cstat (smaller values, zero and
#: negative values are replaced by it), as in Gammapy.
TRUNCATION_VALUE = 1e-25

Array = NDArray[np.float64]


def _f64(x: ArrayLike) -> Array:
    return np.asarray(x, dtype=np.float64)


def _check_truncation(truncation_value: float) -> None:
    if not np.all(np.asarray(truncation_value) > 0):
        raise ValueError("truncation_value must be positive")


# --------------------------------------------------------------------- cash


def cash(n_on: ArrayLike, mu_on: ArrayLike, truncation_value: float = TRUNCATION_VALUE) -> Array:
    """Cash statistic per bin, ``2 (mu - n log mu)``.

    Parameters
    ----------
    n_on : array_like
        Observed counts.
    mu_on : array_like
        Predicted counts; values ``<= truncation_value`` are replaced by it.
    truncation_value : float
        Lower bound applied to ``mu_on``.

    Returns
    -------
    ndarray
        Statistic per bin (broadcast shape of the inputs).
    """
    _check_truncation(truncation_value)
    n = _f64(n_on)
    mu = _f64(mu_on)
    mu = np.where(mu <= truncation_value, truncation_value, mu)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * (mu - n * np.log(mu))


def dcash_dmu(
    n_on: ArrayLike, mu_on: ArrayLike, truncation_value: float = TRUNCATION_VALUE
) -> Array:
    """Derivative of `cash` with respect to ``mu_on``, ``2 (1 - n / mu)``.

    Where ``mu_on <= truncation_value`` the statistic is constant in ``mu_on``
    and the derivative is 0.
    """
    _check_truncation(truncation_value)
    n = _f64(n_on)
    mu = _f64(mu_on)
    inside = mu > truncation_value
    safe = np.where(inside, mu, 1.0)
    return np.where(inside, 2.0 * (1.0 - n / safe), 0.0)


def cash_sum(
    n_on: ArrayLike,
    mu_on: ArrayLike,
    weights: ArrayLike | None = None,
    truncation_value: float = TRUNCATION_VALUE,
) -> float:
    """Summed (optionally weighted) cash statistic.

    Bins with ``n_on <= 0`` contribute ``2 mu`` only and bins with weight
    ``<= 0`` are skipped, as in Gammapy's compiled sums.
    """
    n = _f64(n_on)
    mu = _f64(mu_on)
    n, mu = np.broadcast_arrays(n, mu)
    mu = np.where(mu > truncation_value, mu, truncation_value)
    term = mu - np.where(n > 0, n * np.log(mu), 0.0)
    if weights is not None:
        w = np.broadcast_to(_f64(weights), term.shape)
        term = np.where(w > 0, w * term, 0.0)
    return float(2.0 * np.sum(term))


# -------------------------------------------------------------------- cstat


def cstat(n_on: ArrayLike, mu_on: ArrayLike, truncation_value: float = TRUNCATION_VALUE) -> Array:
    """C statistic per bin, ``2 (mu - n + n (log n - log mu))``.

    Both ``n_on`` and ``mu_on`` are raised to ``truncation_value`` where they
    are smaller, so an empty bin contributes ``~2 mu``.
    """
    _check_truncation(truncation_value)
    n = _f64(n_on)
    mu = _f64(mu_on)
    n = np.where(n <= truncation_value, truncation_value, n)
    mu = np.where(mu <= truncation_value, truncation_value, mu)
    stat = 2.0 * (mu - n + n * (np.log(n) - np.log(mu)))
    return np.where(mu > 0, stat, 0.0)


def dcstat_dmu(
    n_on: ArrayLike, mu_on: ArrayLike, truncation_value: float = TRUNCATION_VALUE
) -> Array:
    """Derivative of `cstat` with respect to ``mu_on``, ``2 (1 - n / mu)``.

    ``n_on`` is truncated like in `cstat`; the derivative is 0 where
    ``mu_on <= truncation_value``.
    """
    _check_truncation(truncation_value)
    n = _f64(n_on)
    n = np.where(n <= truncation_value, truncation_value, n)
    return dcash_dmu(n, mu_on, truncation_value)


# -------------------------------------------------------------------- wstat


def wstat_mu_bkg(n_on: ArrayLike, n_off: ArrayLike, alpha: ArrayLike, mu_sig: ArrayLike) -> Array:
    """Profile-likelihood estimate of the OFF background ``mu_bkg`` of wstat.

    The positive root of ``dW/dmu_bkg = 0``; it is also correct for
    ``n_on = 0`` and ``n_off = 0``. Returns NaN where ``alpha == 0``.
    """
    n_on = _f64(n_on)
    n_off = _f64(n_off)
    alpha = _f64(alpha)
    mu_sig = _f64(mu_sig)
    c = alpha * (n_on + n_off) - (1.0 + alpha) * mu_sig
    d = np.sqrt(c**2 + 4.0 * alpha * (alpha + 1.0) * n_off * mu_sig)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c + d) / (2.0 * alpha * (alpha + 1.0))


def wstat_gof_terms(n_on: ArrayLike, n_off: ArrayLike) -> Array:
    """Model-independent terms that make wstat a goodness-of-fit statistic.

    ``2 [n_on (log n_on - 1) + n_off (log n_off - 1)]``, with empty bins
    contributing 0.
    """
    n_on = _f64(n_on)
    n_off = _f64(n_off)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_on = np.where(n_on == 0, 0.0, -n_on * (1.0 - np.log(n_on)))
        t_off = np.where(n_off == 0, 0.0, -n_off * (1.0 - np.log(n_off)))
    return 2.0 * (np.zeros(np.broadcast(n_on, n_off).shape) + t_on + t_off)


def wstat(
    n_on: ArrayLike,
    n_off: ArrayLike,
    alpha: ArrayLike,
    mu_sig: ArrayLike,
    mu_bkg: ArrayLike | None = None,
    extra_terms: bool = True,
) -> Array:
    """W statistic per bin: Poisson ON and OFF counts, background profiled.

    ``2 [mu_sig + (1 + alpha) mu_bkg - n_on log(mu_sig + alpha mu_bkg)
    - n_off log mu_bkg]`` plus `wstat_gof_terms` if ``extra_terms``; the log
    terms are dropped where ``n_on == 0`` or ``n_off == 0``.

    Parameters
    ----------
    n_on, n_off : array_like
        ON and OFF counts.
    alpha : array_like
        ON/OFF exposure ratio.
    mu_sig : array_like
        Predicted signal counts in the ON region.
    mu_bkg : array_like, optional
        OFF background; by default the profile value `wstat_mu_bkg`.
    extra_terms : bool
        Add the goodness-of-fit terms.

    Returns
    -------
    ndarray
        Statistic per bin. NaN where the inputs are unphysical (e.g. a
        negative ``mu_sig`` making the profiled background complex).
    """
    n_on = _f64(n_on)
    n_off = _f64(n_off)
    alpha = _f64(alpha)
    mu_sig = _f64(mu_sig)
    if mu_bkg is None:
        mu_bkg = wstat_mu_bkg(n_on, n_off, alpha, mu_sig)
    mu_bkg = _f64(mu_bkg)
    term1 = mu_sig + (1.0 + alpha) * mu_bkg
    with np.errstate(divide="ignore", invalid="ignore"):
        term2 = np.where(n_on == 0, 0.0, -n_on * np.log(mu_sig + alpha * mu_bkg))
        term3 = np.where(n_off == 0, 0.0, -n_off * np.log(mu_bkg))
    stat = 2.0 * (term1 + term2 + term3)
    if extra_terms:
        stat = stat + wstat_gof_terms(n_on, n_off)
    return stat


def dwstat_dmu_sig(
    n_on: ArrayLike,
    n_off: ArrayLike,
    alpha: ArrayLike,
    mu_sig: ArrayLike,
    mu_bkg: ArrayLike | None = None,
) -> Array:
    """Derivative of `wstat` with respect to ``mu_sig``.

    With the profiled background (default) this is the *total* derivative.
    ``mu_bkg`` minimises the statistic (inside the domain, or sits on the
    boundary ``mu_bkg = 0`` where it is locally constant), so the total
    derivative equals the partial one at fixed ``mu_bkg``:
    ``2 [1 - n_on / (mu_sig + alpha mu_bkg)]`` (``2`` where ``n_on == 0``).
    With an explicit ``mu_bkg`` it is the partial derivative.
    """
    n_on = _f64(n_on)
    n_off = _f64(n_off)
    alpha = _f64(alpha)
    mu_sig = _f64(mu_sig)
    if mu_bkg is None:
        mu_bkg = wstat_mu_bkg(n_on, n_off, alpha, mu_sig)
    mu_on = mu_sig + alpha * _f64(mu_bkg)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(n_on == 0, 0.0, n_on / mu_on)
    # propagate NaN where the statistic itself is undefined
    return 2.0 * (1.0 - ratio) + 0.0 * mu_on


# --------------------------------------------------------------------- chi2


def chi2(data: ArrayLike, model: ArrayLike, error: ArrayLike) -> Array:
    """Chi-square per bin, ``((data - model) / error)**2``.

    Gammapy's flux-point ``stat_type="chi2"`` uses ``error = dnde_err``, or
    ``(dnde_errn + dnde_errp) / 2`` when the points have asymmetric errors, and
    leaves upper limits and points without a finite ``dnde`` out of the fit.
    """
    data = _f64(data)
    model = _f64(model)
    error = _f64(error)
    return ((data - model) / error) ** 2


def dchi2_dmodel(data: ArrayLike, model: ArrayLike, error: ArrayLike) -> Array:
    """Derivative of `chi2` with respect to ``model``, ``2 (model - data) / error**2``."""
    data = _f64(data)
    model = _f64(model)
    error = _f64(error)
    return 2.0 * (model - data) / error**2


def _asymmetric_scale(
    data: Array, model: Array, errn: Array | None, errp: Array | None, err: Array | None
) -> Array:
    """Error used for each point: ``errp`` above the data, ``errn`` below, else ``err``."""
    if errn is None or errp is None:
        if err is None:
            raise ValueError("give err or both errn and errp")
        return np.broadcast_to(err, model.shape).astype(np.float64)
    scale = np.where(model >= data, errp, errn)
    if err is not None:
        scale = np.where(np.isnan(scale), err, scale)
    return np.broadcast_to(scale, model.shape).astype(np.float64)


def _asym_inputs(data, model, errn, errp, err, ul, is_ul):
    data = _f64(data)
    model = np.zeros(data.shape) + _f64(model)
    opt = [None if x is None else np.broadcast_to(_f64(x), model.shape) for x in (errn, errp, err)]
    if is_ul is None:
        is_ul = np.zeros(model.shape, dtype=bool)
    is_ul = np.broadcast_to(np.asarray(is_ul, dtype=bool), model.shape)
    if ul is None:
        ul = np.full(model.shape, np.nan)
    ul = np.broadcast_to(_f64(ul), model.shape)
    return data, model, *opt, ul, is_ul


def chi2_asymmetric(
    data: ArrayLike,
    model: ArrayLike,
    errn: ArrayLike | None = None,
    errp: ArrayLike | None = None,
    err: ArrayLike | None = None,
    ul: ArrayLike | None = None,
    is_ul: ArrayLike | None = None,
) -> Array:
    """Pseudo chi-square of flux points with asymmetric errors and upper limits.

    Gammapy's ``stat_type="distrib"`` of flux-point datasets: a measured
    point contributes ``((model - data) / s)**2`` with ``s = errp`` if the
    model is above the data and ``errn`` otherwise (``err`` where that is
    NaN); an upper limit ``ul`` contributes
    ``2 log[erfc((ul - model) / ul) / erfc(1)]`` (the upper limit is also the
    Gaussian width). Non-finite contributions are set to 0.

    Parameters
    ----------
    data : array_like
        Measured values (``dnde``); NaN marks no measurement.
    model : array_like
        Model prediction, broadcast to the shape of ``data``.
    errn, errp, err : array_like, optional
        Negative, positive and symmetric errors.
    ul : array_like, optional
        Upper-limit values.
    is_ul : array_like of bool, optional
        Which points are upper limits (these override the measured value).
    """
    data, model, errn, errp, err, ul, is_ul = _asym_inputs(data, model, errn, errp, err, ul, is_ul)
    stat = np.zeros(model.shape)
    valid = ~np.isnan(data)
    if np.any(valid):
        scale = _asymmetric_scale(data, model, errn, errp, err)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat[valid] = ((model[valid] - data[valid]) / scale[valid]) ** 2
    if np.any(is_ul):
        m, u = model[is_ul], ul[is_ul]
        with np.errstate(divide="ignore", invalid="ignore"):
            stat[is_ul] = 2.0 * np.log((erfc((u - m) / u) / 2.0) / (erfc(u / u) / 2.0))
    stat[np.isnan(stat)] = 0.0
    return stat


def dchi2_asymmetric_dmodel(
    data: ArrayLike,
    model: ArrayLike,
    errn: ArrayLike | None = None,
    errp: ArrayLike | None = None,
    err: ArrayLike | None = None,
    ul: ArrayLike | None = None,
    is_ul: ArrayLike | None = None,
) -> Array:
    """Derivative of `chi2_asymmetric` with respect to ``model``.

    ``2 (model - data) / s**2`` for measured points and
    ``4 / (sqrt(pi) ul erfcx((ul - model) / ul))`` for upper limits (computed
    with the scaled complementary error function, stable far in the tail).
    Where the statistic was set to 0 the derivative is 0.
    """
    data, model, errn, errp, err, ul, is_ul = _asym_inputs(data, model, errn, errp, err, ul, is_ul)
    stat = chi2_asymmetric(data, model, errn, errp, err, ul, is_ul)
    grad = np.zeros(model.shape)
    valid = ~np.isnan(data)
    if np.any(valid):
        scale = _asymmetric_scale(data, model, errn, errp, err)
        with np.errstate(divide="ignore", invalid="ignore"):
            grad[valid] = 2.0 * (model[valid] - data[valid]) / scale[valid] ** 2
    if np.any(is_ul):
        m, u = model[is_ul], ul[is_ul]
        with np.errstate(divide="ignore", invalid="ignore"):
            grad[is_ul] = 4.0 / (np.sqrt(np.pi) * u * erfcx((u - m) / u))
    grad[np.isnan(grad)] = 0.0
    grad[(stat == 0) & ~np.isfinite(grad)] = 0.0
    return grad


# ------------------------------------------------------------ significances


def cash_ts(n_on: ArrayLike, mu_bkg: ArrayLike) -> Array:
    """Test statistic of an excess over a known background (cash).

    ``cash(n_on, mu_bkg) - cash(n_on, n_on)``, clipped at 0.
    """
    n_on = _f64(n_on)
    return np.clip(cash(n_on, mu_bkg) - cash(n_on, n_on), 0.0, None)


def cash_significance(n_on: ArrayLike, mu_bkg: ArrayLike) -> Array:
    """Signed ``sqrt(TS)`` of an excess over a known background."""
    n_on = _f64(n_on)
    return np.sign(n_on - _f64(mu_bkg)) * np.sqrt(cash_ts(n_on, mu_bkg))


def wstat_ts(n_on: ArrayLike, n_off: ArrayLike, alpha: ArrayLike, mu_sig: ArrayLike = 0.0) -> Array:
    """Test statistic of the ON excess over the OFF-estimated background (wstat).

    The statistic at signal ``mu_sig`` (0: no source) minus the statistic at
    the best-fit signal ``n_on - alpha n_off``; clipped at 0.
    """
    n_on, n_off, alpha = _f64(n_on), _f64(n_off), _f64(alpha)
    mu_sig = np.zeros(n_on.shape) + _f64(mu_sig)
    best = n_on - alpha * n_off
    stat0 = wstat(n_on, n_off, alpha, mu_sig)
    stat1 = wstat(n_on, n_off, alpha, best)
    return np.clip(stat0 - stat1, 0.0, None)


def wstat_significance(
    n_on: ArrayLike, n_off: ArrayLike, alpha: ArrayLike, mu_sig: ArrayLike = 0.0
) -> Array:
    """Signed ``sqrt(TS)`` of the ON excess (Li & Ma eq. 17 for ``mu_sig = 0``)."""
    n_on, n_off, alpha = _f64(n_on), _f64(n_off), _f64(alpha)
    excess = n_on - alpha * n_off - _f64(mu_sig)
    return np.sign(excess) * np.sqrt(wstat_ts(n_on, n_off, alpha, mu_sig))


# ------------------------------------------------------------ the interface


@runtime_checkable
class Statistic(Protocol):
    """A fit statistic bound to the observed data of the fitted bins.

    ``mu_sig`` is the predicted *signal* counts of the same bins (flat or any
    shape matching the data); what else enters (a known background, OFF
    counts) is data the statistic was built with.

    Attributes
    ----------
    name : str
        The key of the statistic in `STATISTICS` (Gammapy's ``stat_type``).
    """

    name: ClassVar[str]

    def stat_sum(self, mu_sig: ArrayLike) -> float:
        """Summed statistic ``-2 log L`` at ``mu_sig``."""
        ...

    def stat_sum_and_grad(self, mu_sig: ArrayLike) -> tuple[float, Array]:
        """Summed statistic and its derivative with respect to each ``mu_sig`` bin."""
        ...

    def npred_background(self, mu_sig: ArrayLike) -> Array:
        """Background counts the statistic assumes at ``mu_sig`` (known or profiled)."""
        ...


class CashStatistic:
    """Cash statistic with a known background, as Gammapy's ``stat_type="cash"``.

    ``mu = max(mu_sig + background, 0)`` (Gammapy's clipping of a negative
    npred), then `cash_sum`; the derivative is 0 where ``mu`` is clipped or
    truncated.

    Parameters
    ----------
    n_on : array_like
        Observed counts of the fitted bins.
    background : array_like, optional
        Known background counts of the same bins (default 0).

    Examples
    --------
    >>> s = CashStatistic([3.0, 0.0], background=[1.0, 1.0])
    >>> round(s.stat_sum([1.0, 0.5]), 6)
    2.841117
    """

    name: ClassVar[str] = "cash"

    def __init__(self, n_on: ArrayLike, background: ArrayLike | None = None) -> None:
        self.n_on = _f64(n_on)
        self.background = (
            np.zeros(self.n_on.shape)
            if background is None
            else np.broadcast_to(_f64(background), self.n_on.shape).copy()
        )

    def _mu(self, mu_sig: ArrayLike) -> tuple[Array, Array]:
        mu_tot = _f64(mu_sig) + self.background
        return mu_tot, np.where(mu_tot < 0, 0.0, mu_tot)

    def stat_sum(self, mu_sig: ArrayLike) -> float:
        """Summed cash at ``mu_sig + background``."""
        return cash_sum(self.n_on, self._mu(mu_sig)[1])

    def stat_sum_and_grad(self, mu_sig: ArrayLike) -> tuple[float, Array]:
        """Summed cash and ``d/dmu_sig`` per bin."""
        mu_tot, mu = self._mu(mu_sig)
        return cash_sum(self.n_on, mu), np.where(mu_tot < 0, 0.0, dcash_dmu(self.n_on, mu))

    def npred_background(self, mu_sig: ArrayLike) -> Array:
        """The known background (independent of ``mu_sig``)."""
        return np.broadcast_to(self.background, np.shape(_f64(mu_sig))).copy()


class WStatStatistic:
    """W statistic of ON/OFF counts with the background profiled, as Gammapy's ``"wstat"``.

    Per bin `wstat` with the goodness-of-fit terms; bins where the
    statistic is not finite contribute 0 (Gammapy's ``nan_to_num``), and so
    does their derivative.

    Parameters
    ----------
    n_on, n_off : array_like
        ON and OFF counts of the fitted bins.
    alpha : array_like
        ON/OFF exposure ratio of the same bins.

    Examples
    --------
    >>> s = WStatStatistic([10.0], [20.0], [0.25])
    >>> round(s.stat_sum([5.0]), 6)
    0.0
    """

    name: ClassVar[str] = "wstat"

    def __init__(self, n_on: ArrayLike, n_off: ArrayLike, alpha: ArrayLike) -> None:
        self.n_on, self.n_off, self.alpha = np.broadcast_arrays(
            _f64(n_on), _f64(n_off), _f64(alpha)
        )
        self._gof = wstat_gof_terms(self.n_on, self.n_off)

    def _per_bin(self, mu_sig: Array) -> tuple[Array, Array]:
        with np.errstate(invalid="ignore", divide="ignore"):
            mu_bkg = wstat_mu_bkg(self.n_on, self.n_off, self.alpha, mu_sig)
            st = wstat(self.n_on, self.n_off, self.alpha, mu_sig, mu_bkg, extra_terms=False)
        return st + self._gof, mu_bkg

    def stat_sum(self, mu_sig: ArrayLike) -> float:
        """Summed wstat at ``mu_sig``."""
        st, _ = self._per_bin(_f64(mu_sig))
        return float(np.sum(np.nan_to_num(st)))

    def stat_sum_and_grad(self, mu_sig: ArrayLike) -> tuple[float, Array]:
        """Summed wstat and its total derivative per ``mu_sig`` bin."""
        mu_sig = _f64(mu_sig)
        st, mu_bkg = self._per_bin(mu_sig)
        d = dwstat_dmu_sig(self.n_on, self.n_off, self.alpha, mu_sig, mu_bkg)
        bad = ~np.isfinite(st) | ~np.isfinite(d)
        return float(np.sum(np.nan_to_num(st))), np.where(bad, 0.0, d)

    def npred_background(self, mu_sig: ArrayLike) -> Array:
        """Profiled ON background ``alpha * mu_bkg`` (0 where undefined)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            b = self.alpha * wstat_mu_bkg(self.n_on, self.n_off, self.alpha, _f64(mu_sig))
        return np.nan_to_num(b)


#: The statistics a term can name, by Gammapy's ``stat_type``.
STATISTICS: dict[str, type] = {"cash": CashStatistic, "wstat": WStatStatistic}

_NEEDS = {"cash": ("n_on",), "wstat": ("n_on", "n_off", "alpha")}


def make_statistic(
    name: str,
    n_on: ArrayLike,
    *,
    n_off: ArrayLike | None = None,
    alpha: ArrayLike | None = None,
    background: ArrayLike | None = None,
) -> Statistic:
    """The statistic ``name`` bound to the data of the fitted bins.

    Parameters
    ----------
    name : {"cash", "wstat"}
        Key of `STATISTICS`.
    n_on : array_like
        Observed (ON) counts.
    n_off, alpha : array_like, optional
        OFF counts and ON/OFF ratio (needed by ``"wstat"``).
    background : array_like, optional
        Known background (``"cash"``; default 0).

    Raises
    ------
    ValueError
        Unknown ``name``, or data the statistic needs is missing.

    Examples
    --------
    >>> make_statistic("wstat", [4.0], n_off=[8.0], alpha=[0.5]).name
    'wstat'
    """
    if name not in STATISTICS:
        raise ValueError(f"unknown statistic {name!r}; use one of {sorted(STATISTICS)}")
    given = {"n_on": n_on, "n_off": n_off, "alpha": alpha}
    missing = [k for k in _NEEDS[name] if given[k] is None]
    if missing:
        raise ValueError(f"statistic {name!r} needs {', '.join(missing)}")
    if name == "wstat":
        return WStatStatistic(n_on, n_off, alpha)
    return CashStatistic(n_on, background)

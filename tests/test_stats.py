"""Unit tests of gdask.stats: values against hand-written formulas, derivatives
against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erfc

from gdask import stats

RNG = np.random.default_rng(42)
N_ON = np.array([0.0, 1.0, 3.0, 10.0, 0.0, 7.0])
MU = np.array([0.5, 2.0, 3.0, 8.0, 1e-3, 20.0])


def central_diff(f, x, rel=1e-6):
    h = rel * np.maximum(np.abs(x), 1e-3)
    return (f(x + h) - f(x - h)) / (2 * h)


def assert_grad(f, df, x, rtol=1e-6):
    num = central_diff(f, x)
    ana = df(x)
    np.testing.assert_allclose(ana, num, rtol=rtol, atol=rtol * np.max(np.abs(ana)))


# ------------------------------------------------------------------ cash


def test_cash_values():
    expected = 2 * (MU - N_ON * np.log(MU))
    np.testing.assert_allclose(stats.cash(N_ON, MU), expected, rtol=1e-15)


def test_cash_truncation():
    n = np.array([0.0, 2.0, 2.0, 0.0])
    mu = np.array([0.0, 0.0, -1.0, np.nan])
    t = stats.TRUNCATION_VALUE
    out = stats.cash(n, mu)
    np.testing.assert_allclose(out[:3], [2 * t, 2 * (t - 2 * np.log(t)), 2 * (t - 2 * np.log(t))])
    assert np.isnan(out[3])
    assert stats.cash(2.0, 0.0, truncation_value=1e-3) == pytest.approx(
        2 * (1e-3 - 2 * np.log(1e-3))
    )
    with pytest.raises(ValueError):
        stats.cash(1.0, 1.0, truncation_value=0.0)


def test_cash_derivative():
    np.testing.assert_allclose(stats.dcash_dmu(N_ON, MU), 2 * (1 - N_ON / MU), rtol=1e-15)
    assert_grad(lambda m: stats.cash(N_ON, m), lambda m: stats.dcash_dmu(N_ON, m), MU)
    # below the truncation value the statistic is flat
    assert np.all(stats.dcash_dmu([3.0, 0.0], [0.0, -1.0]) == 0)


def test_cash_sum():
    assert stats.cash_sum(N_ON, MU) == pytest.approx(stats.cash(N_ON, MU).sum(), rel=1e-14)
    w = np.array([1.0, 0.0, 2.0, 0.5, 1.0, -1.0])
    expected = np.sum(np.where(w > 0, w * stats.cash(N_ON, MU), 0))
    assert stats.cash_sum(N_ON, MU, weights=w) == pytest.approx(expected, rel=1e-14)


# ----------------------------------------------------------------- cstat


def test_cstat_values():
    n, mu = N_ON[N_ON > 0], MU[N_ON > 0]
    expected = 2 * (mu - n + n * (np.log(n) - np.log(mu)))
    np.testing.assert_allclose(stats.cstat(n, mu), expected, rtol=1e-13)
    # perfect fit is zero
    np.testing.assert_allclose(stats.cstat([1.0, 5.0], [1.0, 5.0]), 0, atol=1e-15)
    # empty bins: n is truncated -> 2*mu up to 1e-23
    np.testing.assert_allclose(stats.cstat([0.0], [2.5]), [5.0], rtol=1e-12)
    t = stats.TRUNCATION_VALUE
    assert stats.cstat(0.0, 0.0) == pytest.approx(0.0, abs=1e-30)
    assert stats.cstat(3.0, 0.0) == pytest.approx(2 * (t - 3 + 3 * (np.log(3) - np.log(t))))


def test_cstat_derivative():
    assert_grad(lambda m: stats.cstat(N_ON, m), lambda m: stats.dcstat_dmu(N_ON, m), MU)
    # differs from cash by a mu-independent term
    np.testing.assert_allclose(
        stats.dcstat_dmu(N_ON[1:4], MU[1:4]), stats.dcash_dmu(N_ON[1:4], MU[1:4])
    )


# ----------------------------------------------------------------- wstat

WS_ON = np.array([0.0, 0.0, 5.0, 5.0, 12.0, 3.0, 8.0, 0.0])
WS_OFF = np.array([0.0, 4.0, 0.0, 0.0, 20.0, 9.0, 1.0, 6.0])
WS_ALPHA = np.array([0.2, 0.2, 0.5, 0.5, 0.1, 0.3, 1.0, 0.25])
WS_MU = np.array([1.0, 2.0, 1.0, 6.0, 7.5, 0.5, 3.0, 0.0])


def _wstat_by_hand(n_on, n_off, a, mu):
    """Profiled wstat written out case by case (de Naurois 2012 / XSPEC W)."""
    out = []
    for on, off, alpha, s in zip(n_on, n_off, a, mu, strict=True):
        c = alpha * (on + off) - (1 + alpha) * s
        b = (c + np.sqrt(c * c + 4 * alpha * (alpha + 1) * off * s)) / (2 * alpha * (alpha + 1))
        val = s + (1 + alpha) * b
        if on > 0:
            val += -on * np.log(s + alpha * b) + on * (np.log(on) - 1)
        if off > 0:
            val += -off * np.log(b) + off * (np.log(off) - 1)
        out.append(2 * val)
    return np.array(out)


def test_wstat_mu_bkg_special_cases():
    a, off, on, s = 0.5, 0.0, 5.0, 1.0
    # n_off = 0 and mu_sig small: interior optimum n_on/(1+a) - s/a
    assert stats.wstat_mu_bkg(on, off, a, s) == pytest.approx(on / (1 + a) - s / a)
    # n_off = 0 and mu_sig large: background at the boundary 0
    assert stats.wstat_mu_bkg(on, off, a, 6.0) == 0.0
    # n_on = 0: independent of mu_sig
    for s in (0.0, 1.0, 30.0):
        assert stats.wstat_mu_bkg(0.0, 8.0, a, s) == pytest.approx(8.0 / (1 + a))
    # mu_sig = 0: (n_on + n_off) / (1 + alpha)
    assert stats.wstat_mu_bkg(4.0, 8.0, a, 0.0) == pytest.approx(12.0 / (1 + a))
    # the profile value minimises the statistic
    for b in (2.0, 7.0):
        assert stats.wstat(4.0, 8.0, a, 1.0) < stats.wstat(4.0, 8.0, a, 1.0, mu_bkg=b)


def test_wstat_values():
    np.testing.assert_allclose(
        stats.wstat(WS_ON, WS_OFF, WS_ALPHA, WS_MU),
        _wstat_by_hand(WS_ON, WS_OFF, WS_ALPHA, WS_MU),
        rtol=1e-12,
    )
    no_gof = stats.wstat(WS_ON, WS_OFF, WS_ALPHA, WS_MU, extra_terms=False)
    np.testing.assert_allclose(
        no_gof + stats.wstat_gof_terms(WS_ON, WS_OFF), stats.wstat(WS_ON, WS_OFF, WS_ALPHA, WS_MU)
    )
    # both empty: 2 * mu_sig
    assert stats.wstat(0.0, 0.0, 0.3, 2.0) == pytest.approx(4.0)
    # alpha = 0 is undefined
    assert np.isnan(stats.wstat(1.0, 1.0, 0.0, 1.0))


def test_wstat_gof_zero_at_best_fit():
    on, off, a = np.array([5.0, 12.0]), np.array([10.0, 20.0]), np.array([0.2, 0.1])
    np.testing.assert_allclose(stats.wstat(on, off, a, on - a * off), 0, atol=1e-12)


def test_wstat_derivative_total():
    f = lambda m: stats.wstat(WS_ON, WS_OFF, WS_ALPHA, m)  # noqa: E731
    df = lambda m: stats.dwstat_dmu_sig(WS_ON, WS_OFF, WS_ALPHA, m)  # noqa: E731
    mu = WS_MU.copy()
    mu[mu == 0] = 0.7
    assert_grad(f, df, mu)
    # random draws, including zero counts
    on = RNG.poisson(2, 200).astype(float)
    off = RNG.poisson(3, 200).astype(float)
    a = RNG.uniform(0.05, 1, 200)
    mu = RNG.uniform(0.1, 6, 200)
    assert_grad(
        lambda m: stats.wstat(on, off, a, m), lambda m: stats.dwstat_dmu_sig(on, off, a, m), mu
    )


def test_wstat_derivative_explicit_background_is_partial():
    b = np.full(WS_ON.shape, 2.0)
    assert_grad(
        lambda m: stats.wstat(WS_ON, WS_OFF, WS_ALPHA, m, mu_bkg=b),
        lambda m: stats.dwstat_dmu_sig(WS_ON, WS_OFF, WS_ALPHA, m, mu_bkg=b),
        WS_MU + 0.5,
    )


# ------------------------------------------------------------------ chi2


def test_chi2():
    d, m, e = np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 1.0]), np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(stats.chi2(d, m, e), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(stats.dchi2_dmodel(d, m, e), 2 * (m - d) / e**2)
    assert_grad(lambda x: stats.chi2(d, x, e), lambda x: stats.dchi2_dmodel(d, x, e), m)


def _asymmetric_points():
    """Flux points of the asymmetric-chi2 tests: data, errn, errp, err, ul, is_ul, model.

    Measured points below and above the model (errp/errn), a NaN point that is an
    upper limit, one with only a symmetric error and one both measured and an upper limit.
    """
    data = np.array([1.0, 1.0, np.nan, 2.0, 5.0])
    errn = np.array([0.1, 0.1, np.nan, np.nan, 1.0])
    errp = np.array([0.3, 0.3, np.nan, np.nan, 1.0])
    err = np.array([0.2, 0.2, np.nan, 0.4, 1.0])
    ul = np.array([np.nan, np.nan, 3.0, np.nan, 4.0])
    is_ul = np.array([False, False, True, False, True])
    model = np.array([1.6, 0.8, 1.0, 2.2, 2.0])
    return data, errn, errp, err, ul, is_ul, model


def test_chi2_asymmetric_values():
    data, errn, errp, err, ul, is_ul, model = _asymmetric_points()
    out = stats.chi2_asymmetric(data, model, errn, errp, err, ul, is_ul)
    ul_term = lambda m, u: 2 * np.log(erfc((u - m) / u) / erfc(1.0))  # noqa: E731
    expected = [
        (0.6 / 0.3) ** 2,
        (0.2 / 0.1) ** 2,
        ul_term(1.0, 3.0),
        (0.2 / 0.4) ** 2,
        ul_term(2.0, 4.0),
    ]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    # symmetric errors only
    np.testing.assert_allclose(stats.chi2_asymmetric([1.0], [2.0], err=[0.5]), [4.0])
    with pytest.raises(ValueError):
        stats.chi2_asymmetric([1.0], [2.0])


def test_chi2_asymmetric_derivative():
    data, errn, errp, err, ul, is_ul, model = _asymmetric_points()
    args = (errn, errp, err, ul, is_ul)
    assert_grad(
        lambda m: stats.chi2_asymmetric(data, m, *args),
        lambda m: stats.dchi2_asymmetric_dmodel(data, m, *args),
        model,
    )
    # deep in the erfc tail (model far below the limit) the derivative stays finite
    m = np.array([-8.0])
    g = stats.dchi2_asymmetric_dmodel([np.nan], m, ul=[1.0], is_ul=[True])
    assert np.isfinite(g).all() and g[0] > 0
    assert_grad(
        lambda x: stats.chi2_asymmetric([np.nan], x, ul=[1.0], is_ul=[True]),
        lambda x: stats.dchi2_asymmetric_dmodel([np.nan], x, ul=[1.0], is_ul=[True]),
        m,
    )
    # far above the limit the statistic saturates: derivative 0
    assert stats.dchi2_asymmetric_dmodel([np.nan], [200.0], ul=[1.0], is_ul=[True])[0] == 0


# ---------------------------------------------------------- significances


def test_cash_significance():
    n_on, mu_b = np.array([10.0, 2.0, 0.0]), np.array([4.0, 5.0, 1.0])
    safe = np.where(n_on > 0, n_on, 1.0)
    ts = 2 * (mu_b - n_on + np.where(n_on > 0, n_on * np.log(safe / mu_b), 0))
    np.testing.assert_allclose(stats.cash_ts(n_on, mu_b), ts, rtol=1e-12)
    np.testing.assert_allclose(
        stats.cash_significance(n_on, mu_b), np.sign(n_on - mu_b) * np.sqrt(ts)
    )


def test_wstat_significance_is_li_ma():
    n_on, n_off, a = np.array([130.0, 20.0]), np.array([500.0, 200.0]), np.array([0.2, 0.1])
    t1 = n_on * np.log((1 + a) / a * n_on / (n_on + n_off))
    t2 = n_off * np.log((1 + a) * n_off / (n_on + n_off))
    li_ma = np.sign(n_on - a * n_off) * np.sqrt(2 * (t1 + t2))
    np.testing.assert_allclose(stats.wstat_significance(n_on, n_off, a), li_ma, rtol=1e-10)


# ------------------------------------------------------------ the interface


def test_statistic_protocol_and_registry():
    for name in stats.STATISTICS:
        s = stats.make_statistic(name, N_ON, n_off=N_ON + 2, alpha=np.full(6, 0.3))
        assert isinstance(s, stats.Statistic)
        assert s.name == name
    with pytest.raises(ValueError, match="unknown statistic"):
        stats.make_statistic("chi3", N_ON)
    with pytest.raises(ValueError, match="needs n_off, alpha"):
        stats.make_statistic("wstat", N_ON)


def test_cash_statistic_matches_functions():
    bkg = np.array([0.1, 0.5, 1.0, 2.0, 0.0, 3.0])
    s = stats.CashStatistic(N_ON, background=bkg)
    mu = MU - np.array([0, 0, 0, 0, 5.0, 0])  # one bin clipped at 0
    expect = stats.cash_sum(N_ON, np.clip(mu + bkg, 0, None))
    value, grad = s.stat_sum_and_grad(mu)
    assert value == pytest.approx(expect, rel=1e-14)
    assert s.stat_sum(mu) == value
    assert grad[4] == 0.0
    inside = np.arange(6) != 4
    np.testing.assert_allclose(grad[inside], stats.dcash_dmu(N_ON, mu + bkg)[inside])
    np.testing.assert_array_equal(s.npred_background(mu), bkg)


def test_wstat_statistic_matches_functions_and_gradient():
    n_off = np.array([2.0, 0.0, 5.0, 30.0, 4.0, 1.0])
    alpha = np.array([0.2, 0.5, 0.1, 0.3, 0.2, 1.0])
    s = stats.WStatStatistic(N_ON, n_off, alpha)
    expect = np.sum(np.nan_to_num(stats.wstat(N_ON, n_off, alpha, MU)))
    value, grad = s.stat_sum_and_grad(MU)
    assert value == pytest.approx(expect, rel=1e-13)
    for i in range(MU.size):

        def f(x, i=i):
            m = MU.copy()
            m[i] = x
            return s.stat_sum(m)

        h = 1e-6 * MU[i]
        assert grad[i] == pytest.approx((f(MU[i] + h) - f(MU[i] - h)) / (2 * h), rel=1e-5)
    bkg = s.npred_background(MU)
    np.testing.assert_allclose(bkg, alpha * stats.wstat_mu_bkg(N_ON, n_off, alpha, MU))
    # undefined bins (negative signal) count 0 in value and gradient
    bad = np.array([-50.0, 2.0, 3.0, 8.0, 1e-3, 20.0])
    v, g = s.stat_sum_and_grad(bad)
    assert np.isfinite(v) and np.all(np.isfinite(g))

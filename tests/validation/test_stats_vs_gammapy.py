"""gdask.stats against gammapy.stats 2.1 (the oracle), bin for bin."""

from __future__ import annotations

import numpy as np
import pytest
from gammapy import stats as gp
from gammapy.datasets import FluxPointsDataset
from gammapy.estimators import FluxPoints
from gammapy.modeling.models import PowerLawSpectralModel, SkyModel
from gammapy.utils.compilation import get_fit_statistics_compiled

from gdask import stats

pytestmark = pytest.mark.validation

RTOL = 1e-12
N = 5000


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(2024)
    n_on = rng.poisson(2.0, N).astype(float)
    n_off = rng.poisson(4.0, N).astype(float)
    alpha = rng.uniform(0.02, 1.5, N)
    mu = rng.uniform(0.0, 8.0, N)
    mu[::11] = 0.0  # predicted zero
    mu[::13] = 1e-30  # below truncation
    mu[::17] = -0.5  # negative prediction
    n_on[::5] = 0
    n_off[::7] = 0
    return n_on, n_off, alpha, mu


def assert_same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=0, equal_nan=True)


def test_truncation_value():
    assert stats.TRUNCATION_VALUE == get_fit_statistics_compiled()["TRUNCATION_VALUE"]


def test_cash(arrays):
    n_on, _, _, mu = arrays
    assert_same(stats.cash(n_on, mu), gp.cash(n_on, mu))
    assert_same(
        stats.cash(n_on, mu, truncation_value=1e-5), gp.cash(n_on, mu, truncation_value=1e-5)
    )


def test_cash_sum_matches_compiled(arrays):
    n_on, _, _, mu = arrays
    compiled = get_fit_statistics_compiled()
    ok = mu > stats.TRUNCATION_VALUE
    n_on, mu = n_on[ok], mu[ok]
    assert stats.cash_sum(n_on, mu) == pytest.approx(
        compiled["cash_sum_compiled"](n_on, mu), rel=RTOL
    )
    w = np.where(np.arange(n_on.size) % 3 == 0, 0.0, 0.5 + np.arange(n_on.size) % 2)
    ref = compiled["weighted_cash_sum_compiled"](n_on, mu, w)
    assert stats.cash_sum(n_on, mu, weights=w) == pytest.approx(ref, rel=RTOL)


def test_cash_sum_truncated_bins_known_deviation():
    """Gammapy's compiled sums take log(TRUNCATION_VALUE) in single precision.

    gdask uses the double-precision log (as gammapy.stats.cash does), so a
    truncated bin with n counts differs by 2 n (log(1e-25) - log(float32(1e-25))),
    about 3.6e-8 per count: this pins the size of the deviation.
    """
    compiled = get_fit_statistics_compiled()
    n, mu = np.array([1.0, 3.0, 0.0]), np.array([0.0, -1.0, 0.0])
    delta = 2 * (np.log(np.float32(1e-25).astype(float)) - np.log(1e-25))
    expected = stats.cash_sum(n, mu) - n.sum() * delta
    assert compiled["cash_sum_compiled"](n, mu) == pytest.approx(expected, rel=1e-14)
    assert stats.cash_sum(n, mu) == pytest.approx(gp.cash(n, mu).sum(), rel=1e-14)


def test_cstat(arrays):
    n_on, _, _, mu = arrays
    assert_same(stats.cstat(n_on, mu), gp.cstat(n_on, mu))


def test_wstat(arrays):
    n_on, n_off, alpha, mu = arrays
    mu = np.abs(mu)  # negative mu_sig gives NaN in both; compared separately below
    assert_same(
        stats.wstat_mu_bkg(n_on, n_off, alpha, mu), gp.get_wstat_mu_bkg(n_on, n_off, alpha, mu)
    )
    assert_same(stats.wstat(n_on, n_off, alpha, mu), gp.wstat(n_on, n_off, alpha, mu))
    assert_same(
        stats.wstat(n_on, n_off, alpha, mu, extra_terms=False),
        gp.wstat(n_on, n_off, alpha, mu, extra_terms=False),
    )
    assert_same(stats.wstat_gof_terms(n_on, n_off), gp.get_wstat_gof_terms(n_on, n_off))
    b = np.abs(mu) + 0.3
    assert_same(
        stats.wstat(n_on, n_off, alpha, mu, mu_bkg=b), gp.wstat(n_on, n_off, alpha, mu, mu_bkg=b)
    )


def test_wstat_negative_signal(arrays):
    n_on, n_off, alpha, mu = arrays
    with np.errstate(invalid="ignore"):
        ref = gp.wstat(n_on, n_off, alpha, mu)
    assert_same(stats.wstat(n_on, n_off, alpha, mu), ref)


def test_significances(arrays):
    n_on, n_off, alpha, mu = arrays
    mu_b = np.abs(mu) + 0.1
    ref = gp.CashCountsStatistic(n_on, mu_b)
    assert_same(stats.cash_ts(n_on, mu_b), ref.ts)
    assert_same(stats.cash_significance(n_on, mu_b), ref.sqrt_ts)
    ref = gp.WStatCountsStatistic(n_on, n_off, alpha)
    assert_same(stats.wstat_ts(n_on, n_off, alpha), ref.ts)
    assert_same(stats.wstat_significance(n_on, n_off, alpha), ref.sqrt_ts)
    sig = np.abs(mu)
    ref = gp.WStatCountsStatistic(n_on, n_off, alpha, mu_sig=sig)
    assert_same(stats.wstat_significance(n_on, n_off, alpha, sig), ref.sqrt_ts)


def _flux_points_dataset(stat_type):
    """A small flux-point dataset with asymmetric errors, a NaN error and upper limits."""
    from astropy.table import Table

    e_ref = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
    dnde = np.array([3e-11, 1.2e-11, 2.0e-12, 5e-13, np.nan, 1e-14])
    table = Table(
        {
            "e_ref": e_ref,
            "dnde": dnde,
            "dnde_errn": np.array([2e-12, 1e-12, np.nan, 1e-13, np.nan, 5e-15]),
            "dnde_errp": np.array([3e-12, 2e-12, np.nan, 2e-13, np.nan, 8e-15]),
            "dnde_err": np.array([2.5e-12, 1.5e-12, 4e-13, 1.5e-13, np.nan, 6e-15]),
            "dnde_ul": np.array([np.nan, np.nan, np.nan, np.nan, 1e-13, 3e-14]),
            "is_ul": np.array([False, False, False, False, True, True]),
        },
        meta={"SED_TYPE": "dnde"},
    )
    table["e_ref"].unit = "TeV"
    for c in ("dnde", "dnde_errn", "dnde_errp", "dnde_err", "dnde_ul"):
        table[c].unit = "cm-2 s-1 TeV-1"
    fp = FluxPoints.from_table(table, sed_type="dnde")
    model = SkyModel(
        spectral_model=PowerLawSpectralModel(index=2.4, amplitude="1e-11 cm-2 s-1 TeV-1")
    )
    ds = FluxPointsDataset(data=fp, models=[model], stat_type=stat_type)
    flux = ds.flux_pred().to_value("cm-2 s-1 TeV-1").ravel()
    columns = {c: table[c].data.astype(float) for c in table.colnames if c != "is_ul"}
    return ds, flux, columns, table["is_ul"].data


def test_chi2_flux_points():
    ds, flux, c, is_ul = _flux_points_dataset("chi2")
    ref = ds.stat_array().ravel()
    ours = stats.chi2(c["dnde"], flux, c["dnde_err"])
    assert_same(ours, ref)


def test_chi2_asymmetric_flux_points():
    ds, flux, c, is_ul = _flux_points_dataset("distrib")
    ref = ds.stat_array().ravel()
    ours = stats.chi2_asymmetric(
        c["dnde"], flux, c["dnde_errn"], c["dnde_errp"], c["dnde_err"], c["dnde_ul"], is_ul
    )
    assert_same(ours, ref)


def test_statistic_objects_match_gammapy_sums(arrays):
    """The bound statistics sum as Gammapy's Cash/WStat fit statistics do."""
    n_on, n_off, alpha, mu = arrays
    compiled = get_fit_statistics_compiled()
    bkg = alpha * n_off
    mu_c = np.clip(mu + bkg, 0, None)
    ok = mu_c > stats.TRUNCATION_VALUE  # compiled sum has a known deviation below
    cash = stats.make_statistic("cash", n_on[ok], background=bkg[ok])
    ref = compiled["cash_sum_compiled"](n_on[ok], mu_c[ok])
    assert cash.stat_sum(mu[ok]) == pytest.approx(ref, rel=RTOL)
    w = stats.make_statistic("wstat", n_on, n_off=n_off, alpha=alpha)
    with np.errstate(invalid="ignore"):
        ref = np.sum(np.nan_to_num(gp.wstat(n_on, n_off, alpha, mu)))
    assert w.stat_sum(mu) == pytest.approx(ref, rel=RTOL)

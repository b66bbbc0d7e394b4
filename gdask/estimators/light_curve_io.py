"""Gammapy 2.1's ``lightcurve`` table format for `gdask.estimators.light_curve.LightCurve`.

One row per time bin: ``time_min``/``time_max`` (MJD in TIMESYS, MJDREF 0,
TIMEUNIT d), energy columns ``e_ref``/``e_min``/``e_max`` (TeV, one entry per
energy bin), the reference fluxes ``ref_dnde`` (TeV-1 s-1 cm-2), ``ref_flux``
(s-1 cm-2), ``ref_eflux`` (erg s-1 cm-2), then ``norm``, ``norm_err``,
``norm_errn``, ``norm_errp``, ``norm_ul``, ``ts``, ``sqrt_ts``, ``stat``,
``stat_null``, ``is_ul``, ``success`` per energy bin, ``counts``/``npred``/
``npred_excess`` per energy bin and dataset, ``norm_scan``/``stat_scan`` per
energy bin and scan point. Written as the FITS HDU ``FLUXPOINTS``
(``FluxPoints.read(path, format="lightcurve")`` reads it) or any astropy table
format; reading takes Gammapy's files (FITS or ECSV) back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from gdask.errors import FormatError

from .light_curve import LightCurve

__all__ = [
    "light_curve_from_table",
    "light_curve_to_table",
    "read_light_curve",
    "write_light_curve",
]

_SCALAR_COLUMNS = (
    "norm",
    "norm_err",
    "norm_errn",
    "norm_errp",
    "norm_ul",
    "ts",
    "stat",
    "stat_null",
)
_UNITS = {
    "ref_dnde": u.Unit("TeV-1 s-1 cm-2"),
    "ref_flux": u.Unit("s-1 cm-2"),
    "ref_eflux": u.Unit("erg s-1 cm-2"),
}
_TEV_TO_ERG = (1 * u.TeV).to_value("erg")


def light_curve_to_table(lc: LightCurve, time_scale: str = "tt") -> Table:
    """The light curve as a Gammapy ``lightcurve`` table (see module doc).

    Examples
    --------
    >>> table = light_curve_to_table(lc)  # doctest: +SKIP
    >>> table.write("lc.ecsv")  # doctest: +SKIP
    """
    n_time, n_e = len(lc), lc.energy_edges.size - 1
    t = Table()
    t["time_min"] = getattr(lc.time_min, time_scale).mjd
    t["time_max"] = getattr(lc.time_max, time_scale).mjd

    def per_bin(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values, (n_time, n_e)).copy()

    t["e_ref"] = per_bin(lc.e_ref) * u.TeV
    t["e_min"] = per_bin(lc.e_min) * u.TeV
    t["e_max"] = per_bin(lc.e_max) * u.TeV
    t["ref_dnde"] = lc.data["ref_dnde"] * _UNITS["ref_dnde"]
    t["ref_flux"] = lc.data["ref_flux"] * _UNITS["ref_flux"]
    t["ref_eflux"] = lc.data["ref_eflux"] * _TEV_TO_ERG * _UNITS["ref_eflux"]
    for name in _SCALAR_COLUMNS:
        if name in lc.data:
            t[name] = np.asarray(lc.data[name], float)
        if name == "ts":
            t["sqrt_ts"] = lc.sqrt_ts
    for name in ("npred", "npred_excess", "counts"):
        if name in lc.data:
            t[name] = np.asarray(lc.data[name], float)
    if "stat_scan" in lc.data:
        t["stat_scan"] = lc.data["stat_scan"]
        t["norm_scan"] = lc.data["norm_scan"]
    if "norm_ul" in lc.data:
        t["is_ul"] = lc.is_ul
    t["success"] = np.asarray(lc.data.get("success", np.ones((n_time, n_e))), bool)
    t.meta.update(
        {
            "MJDREFI": 0,
            "MJDREFF": 0.0,
            "TIMESYS": time_scale,
            "TIMEUNIT": "d",
            "SED_TYPE": "likelihood",
        }
    )
    t.meta["UL_CONF"] = float(np.round(1 - 2 * _norm_sf(lc.n_sigma_ul), 7))
    t.meta["N_SIGMA"] = lc.n_sigma
    if lc.datasets:
        t.meta["DATASETS"] = " ".join(lc.datasets)
    return t


def _norm_sf(x: float) -> float:
    from scipy.stats import norm

    return float(norm.sf(x))


def _column(table: Table, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    values = np.asarray(table[name], dtype=float if name not in ("is_ul", "success") else bool)
    return values.reshape(shape) if shape is not None else values


def light_curve_from_table(table: Table) -> LightCurve:
    """A `LightCurve` from a Gammapy ``lightcurve`` table (``likelihood`` columns needed).

    Raises
    ------
    FormatError
        A required column (``time_min``, ``time_max``, ``e_min``, ``e_max``,
        ``ref_dnde``, ``norm``) is missing, naming it.
    """
    for name in ("time_min", "time_max", "e_min", "e_max", "ref_dnde", "norm"):
        if name not in table.colnames:
            raise FormatError(f"not a likelihood light-curve table: no column {name!r}", field=name)
    meta = table.meta
    scale = str(meta.get("TIMESYS", "tt")).lower()
    ref = Time(
        float(meta.get("MJDREFI", 0)) + float(meta.get("MJDREFF", 0.0)), format="mjd", scale=scale
    )
    unit = u.Unit(str(meta.get("TIMEUNIT", "d")))
    t_min = ref + (np.asarray(table["time_min"], float) * unit)
    t_max = ref + (np.asarray(table["time_max"], float) * unit)
    n_time = len(table)
    e_min = u.Quantity(table["e_min"]).to_value("TeV").reshape(n_time, -1)[0]
    e_max = u.Quantity(table["e_max"]).to_value("TeV").reshape(n_time, -1)[0]
    n_e = e_min.size
    edges = np.append(e_min, e_max[-1])
    data: dict[str, Any] = {}
    for name, unit_ in _UNITS.items():
        if name in table.colnames:
            q = u.Quantity(table[name])
            if q.unit == u.dimensionless_unscaled:
                q = q * unit_
            data[name] = q.to_value(unit_).reshape(n_time, n_e)
    if "ref_eflux" in data:
        data["ref_eflux"] = data["ref_eflux"] / _TEV_TO_ERG
    e_ref = np.sqrt(e_min * e_max)
    data["ref_e2dnde"] = data["ref_dnde"] * e_ref**2
    for name in (*_SCALAR_COLUMNS, "success", "is_ul"):
        if name in table.colnames:
            data[name] = _column(table, name, (n_time, n_e))
    for name in ("counts", "npred", "npred_excess", "stat_scan", "norm_scan"):
        if name in table.colnames:
            data[name] = _column(table, name).reshape(n_time, n_e, -1)
    datasets = str(meta.get("DATASETS", "")).split()
    ul_conf = meta.get("UL_CONF")
    n_sigma_ul = 2.0
    if ul_conf:
        from scipy.stats import norm

        n_sigma_ul = float(np.round(norm.isf(0.5 * (1 - float(ul_conf))), 1))
    n_sigma = float(meta.get("N_SIGMA", 1.0))
    return LightCurve(edges, data, datasets, n_sigma, n_sigma_ul, time_min=t_min, time_max=t_max)


def write_light_curve(lc: LightCurve, path: str | Path, overwrite: bool = False) -> Path:
    """Write as FITS (HDU ``FLUXPOINTS``) or, by suffix, ECSV; Gammapy reads either.

    Examples
    --------
    >>> write_light_curve(lc, "lc.fits")  # doctest: +SKIP
    """
    path = Path(path)
    table = light_curve_to_table(lc)
    if path.suffix == ".ecsv":
        table.write(path, format="ascii.ecsv", overwrite=overwrite)
        return path
    hdu = fits.BinTableHDU(table, name="FLUXPOINTS")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=overwrite)
    return path


def read_light_curve(path: str | Path) -> LightCurve:
    """Read a Gammapy (or gdask) ``lightcurve`` file: FITS ``FLUXPOINTS`` HDU or ECSV."""
    path = Path(path)
    try:
        if path.suffix == ".ecsv":
            table = Table.read(path, format="ascii.ecsv")
        else:
            with fits.open(path) as hdul:
                hdu = hdul["FLUXPOINTS"] if "FLUXPOINTS" in hdul else hdul[1]
                table = Table.read(hdu)
    except (OSError, KeyError, ValueError) as exc:
        raise FormatError(f"cannot read the light curve: {exc}", file=str(path)) from None
    try:
        return light_curve_from_table(table)
    except FormatError as exc:
        raise exc.with_context(file=str(path)) from None

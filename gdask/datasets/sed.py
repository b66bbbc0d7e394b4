"""Flux points (`FluxPoints`) and their GADF SED files: FITS and ECSV, sed types dnde, e2dnde, flux, eflux, likelihood.

The layout is the Gamma Astro Data Formats SED table that Gammapy 2.1's
``FluxPoints.read`` reads (and writes): ``e_ref``, ``e_min``, ``e_max`` (TeV),
the sed type's value, ``_err``, ``_errn``, ``_errp``, ``_ul`` columns
(``likelihood``: ``norm*`` plus ``ref_dnde``, ``ref_flux``, ``ref_eflux``,
``ref_e2dnde``), ``ts``, ``sqrt_ts``, ``is_ul``, ``stat``, ``stat_null``,
``success``, per-dataset ``counts``, ``npred``, ``npred_excess`` and the
profile ``norm_scan``/``stat_scan``; header ``SED_TYPE`` and ``UL_CONF``.

Reading a non-``likelihood`` file, the reference is Gammapy's default for
such files, a power law of index 2 (``1e-12 cm-2 s-1 TeV-1`` at 1 TeV): the
norm is the value over that reference, so the same sed type reads back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gdask.errors import GdaskError

__all__ = ["SED_TYPES", "FluxPoints", "read_sed", "sed_table", "write_sed"]

SED_TYPES = ("dnde", "e2dnde", "flux", "eflux", "likelihood")
_UNITS = {
    "dnde": "cm-2 s-1 TeV-1",
    "e2dnde": "TeV cm-2 s-1",
    "flux": "cm-2 s-1",
    "eflux": "TeV cm-2 s-1",
    "norm": "",
}
_SUFFIXES = ("", "_err", "_errn", "_errp", "_ul")
_EXTRA = ("ts", "stat", "stat_null", "success", "counts", "npred", "npred_excess")
_SCAN = ("norm_scan", "stat_scan")


@dataclass
class FluxPoints:
    """Flux points as arrays (GADF SED ``likelihood`` content; see `gdask.estimators.sed`).

    Attributes
    ----------
    energy_edges : ndarray
        Bin edges in TeV (``e_min``/``e_max`` of the points).
    data : dict
        Per bin: ``norm``, ``norm_err``, ``ts``, ``stat``, ``stat_null``,
        ``success`` and optionally ``norm_errn``, ``norm_errp``, ``norm_ul``
        (shape ``(n_bins,)``); per bin and dataset ``counts``, ``npred``,
        ``npred_excess`` (``(n_bins, n_datasets)``); ``stat_scan`` and
        ``norm_scan`` (``(n_bins, n_scan)``); ``ref_dnde`` (cm-2 s-1 TeV-1),
        ``ref_flux`` (cm-2 s-1), ``ref_eflux`` (TeV cm-2 s-1), ``ref_e2dnde``
        (TeV cm-2 s-1).
    datasets : list of str
    n_sigma, n_sigma_ul, sqrt_ts_threshold_ul : float
    """

    energy_edges: np.ndarray
    data: dict[str, np.ndarray]
    datasets: list[str] = field(default_factory=list)
    n_sigma: float = 1.0
    n_sigma_ul: float = 2.0
    sqrt_ts_threshold_ul: float = 2.0

    @property
    def e_min(self) -> np.ndarray:
        return self.energy_edges[:-1]

    @property
    def e_max(self) -> np.ndarray:
        return self.energy_edges[1:]

    @property
    def e_ref(self) -> np.ndarray:
        """Geometric bin centres (TeV)."""
        return np.sqrt(self.e_min * self.e_max)

    @property
    def sqrt_ts(self) -> np.ndarray:
        """``sign(norm) sqrt(max(ts, 0))`` (Gammapy's)."""
        ts = np.clip(self.data["ts"], 0, None)
        with np.errstate(invalid="ignore"):
            return np.where(self.data["norm"] > 0, np.sqrt(ts), -np.sqrt(ts))

    @property
    def is_ul(self) -> np.ndarray:
        """Points shown as upper limits: ``sqrt_ts < sqrt_ts_threshold_ul``."""
        if "is_ul" in self.data:
            return np.asarray(self.data["is_ul"], bool)
        return self.sqrt_ts < self.sqrt_ts_threshold_ul

    def quantity(self, sed_type: str, name: str = "") -> np.ndarray:
        """``norm<name>`` times the reference of ``sed_type`` (e.g. ``("dnde", "_errn")``)."""
        if sed_type not in ("dnde", "e2dnde", "flux", "eflux", "norm"):
            raise ValueError(f"unknown sed type {sed_type!r}")
        norm = self.data["norm" + name]
        return norm if sed_type == "norm" else norm * self.data["ref_" + sed_type]

    @property
    def dnde(self) -> np.ndarray:
        return self.quantity("dnde")

    def __len__(self) -> int:
        return len(self.e_min)


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".ecsv"):
        return "ascii.ecsv"
    if name.endswith((".fits", ".fits.gz", ".fit")):
        return "fits"
    raise GdaskError(f"unknown SED file format (use .fits or .ecsv): {path}", file=str(path))


def sed_table(fp: FluxPoints, sed_type: str = "likelihood") -> Any:
    """The GADF SED `~astropy.table.Table` of ``fp`` in ``sed_type``.

    Examples
    --------
    >>> sed_table(fp, "dnde")["dnde"]  # doctest: +SKIP
    """
    from astropy import units as u
    from astropy.table import Table
    from scipy.stats import norm as gauss

    if sed_type not in SED_TYPES:
        raise GdaskError(f"unknown sed type {sed_type!r}; use one of {SED_TYPES}", field="sed_type")
    t = Table()
    t["e_ref"] = fp.e_ref * u.TeV
    t["e_min"] = fp.e_min * u.TeV
    t["e_max"] = fp.e_max * u.TeV
    kind = "norm" if sed_type == "likelihood" else sed_type
    if sed_type == "likelihood":
        for ref in ("dnde", "flux", "eflux", "e2dnde"):
            t[f"ref_{ref}"] = fp.data[f"ref_{ref}"] * u.Unit(_UNITS[ref])
    for suffix in _SUFFIXES:
        if "norm" + suffix in fp.data:
            t[kind + suffix] = fp.quantity(kind, suffix) * u.Unit(_UNITS[kind])
    t["ts"] = fp.data["ts"]
    t["sqrt_ts"] = fp.sqrt_ts
    for key in _EXTRA[1:]:
        if key in fp.data:
            t[key] = fp.data[key]
    t["is_ul"] = fp.is_ul
    for key in _SCAN:
        if key in fp.data:
            t[key] = fp.data[key]
    t.meta["SED_TYPE"] = sed_type
    t.meta["UL_CONF"] = float(2 * gauss.cdf(fp.n_sigma_ul) - 1)
    return t


def write_sed(fp: FluxPoints, path: str | Path, sed_type: str = "likelihood") -> Path:
    """Write ``fp`` as a GADF SED file (``.fits`` or ``.ecsv``; overwrites)."""
    path = Path(path)
    table = sed_table(fp, sed_type)
    fmt = _format(path)
    if fmt == "fits":
        from astropy.io import fits

        hdu = fits.table_to_hdu(table)
        hdu.name = "FLUXPOINTS"
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    else:
        table.write(path, format=fmt, overwrite=True)
    return path


def _pl2(energy: tuple[Any, Any, Any]) -> dict[str, np.ndarray]:
    lo, hi, e = energy
    a = 1e-12
    dnde = a / e**2
    return {
        "ref_dnde": dnde,
        "ref_flux": a * (1 / lo - 1 / hi),
        "ref_eflux": a * np.log(hi / lo),
        "ref_e2dnde": dnde * e**2,
    }


def read_sed(path: str | Path) -> FluxPoints:
    """Read a GADF SED file (ours or Gammapy's, any sed type) as `FluxPoints`."""
    from astropy import units as u
    from astropy.table import Table
    from scipy.stats import norm as gauss

    path = Path(path)
    if not path.is_file():
        raise GdaskError(f"SED file not found: {path}", file=str(path))
    fmt = _format(path)
    try:
        t = Table.read(path, format=fmt, **({"hdu": 1} if fmt == "fits" else {}))
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds
        raise GdaskError(f"cannot read SED table: {exc}", file=str(path)) from None
    sed_type = str(t.meta.get("SED_TYPE", "")).strip()
    if sed_type not in SED_TYPES:
        raise GdaskError(
            f"SED_TYPE {sed_type!r} is not one of {SED_TYPES}", file=str(path), field="SED_TYPE"
        )

    def col(name: str, unit: str = "") -> np.ndarray:
        c = t[name]
        if unit and c.unit is not None:
            return np.asarray(c.quantity.to_value(unit, equivalencies=u.spectral()), float)
        return np.asarray(c, float)

    try:
        e_min, e_max = col("e_min", "TeV"), col("e_max", "TeV")
        e_ref = col("e_ref", "TeV") if "e_ref" in t.colnames else np.sqrt(e_min * e_max)
    except KeyError as exc:
        raise GdaskError(f"SED table has no column {exc}", file=str(path), field=str(exc)) from None
    edges = np.append(e_min, e_max[-1])
    data: dict[str, np.ndarray] = {}
    if sed_type == "likelihood":
        for q in ("dnde", "flux", "eflux"):
            data[f"ref_{q}"] = col(f"ref_{q}", _UNITS[q])
        data["ref_e2dnde"] = (
            col("ref_e2dnde", _UNITS["e2dnde"])
            if "ref_e2dnde" in t.colnames
            else data["ref_dnde"] * e_ref**2
        )
        kind, ref = "norm", np.ones_like(e_ref)
    else:
        data.update(_pl2((e_min, e_max, e_ref)))
        kind, ref = sed_type, data[f"ref_{sed_type}"]
    if kind not in t.colnames:
        raise GdaskError(
            f"SED table of type {sed_type} has no column {kind!r}", file=str(path), field=kind
        )
    for suffix in _SUFFIXES:
        if kind + suffix in t.colnames:
            data["norm" + suffix] = col(kind + suffix, _UNITS[kind]) / ref
    for key in (*_EXTRA, *_SCAN, "is_ul"):
        if key in t.colnames:
            data[key] = np.asarray(t[key])
    if "ts" not in data:
        data["ts"] = np.full(e_ref.size, np.nan)
    ul_conf = float(t.meta.get("UL_CONF", 0.9544997))
    return FluxPoints(edges, data, n_sigma_ul=float(gauss.ppf(0.5 + ul_conf / 2)))

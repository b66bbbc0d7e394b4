"""Analytic instrument responses (pure numpy) and responses taken from a real archive.

A `Response` holds the IRFs written to the simulated archive (``irfs``) and
the *truth* used to sample events, which may differ for point-like
instruments: events are sampled with the full-enclosure effective area and a
PSF, and the written point-like effective area is the expected rate inside
the RAD_MAX cut, ``A_pl(Et) = A(Et) sum_m P(m | Et) C(RAD_MAX(m Et), Et)``.

Three presets (see ``docs/simulation.md``):

- ``hess-like``: full-enclosure, 0.5-100 TeV (safe range from ~0.7 TeV),
  ``psf_3gauss`` (two Gaussians), ``bkg_3d``, FoV 2.5 deg;
- ``magic-like``: point-like with an energy-dependent ``rad_max_2d`` (the
  68% containment radius of an internal Gaussian PSF), 0.05-30 TeV
  (threshold ~0.08 TeV), ``bkg_2d``, FoV 1.5 deg;
- ``cta-like``: full-enclosure, 0.02-150 TeV, tabulated King PSF
  (``psf_table``), ``bkg_2d``, FoV 3.5 deg, better resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from gdask.dl3.irf import (
    Background2D,
    Background3D,
    EffectiveArea2D,
    EnergyDispersion2D,
    PSF3Gauss,
    PSFTable,
    RadMax2D,
)
from gdask.dl3.irf.psf_analytic import king_density
from gdask.errors import GdaskError

__all__ = [
    "InstrumentPreset",
    "Response",
    "PRESETS",
    "make_response",
    "response_from_archive",
    "get_response",
]


@dataclass(frozen=True)
class InstrumentPreset:
    """Parameters of an analytic instrument.

    Energies in TeV, angles in deg, areas in m2, rates in s-1 MeV-1 sr-1.
    Effective area ``a0 / (1 + (e_th / E)**k) * exp(-off**2 / (2 off_sigma**2))``;
    migration ``ln(m) ~ N(ln(1 + bias0 (e_th / E)**2), res0 + res1 (e_th / E)**0.5)``;
    PSF width ``(psf_sigma0 (E / 1 TeV)**psf_index + psf_floor) (1 + 0.1 off**2)``;
    background ``bkg_rate0 (E / 1 TeV)**-bkg_index / (1 + (bkg_e_th / E)**3)
    * exp(-off**2 / (2 bkg_off_sigma**2))``.
    """

    name: str
    telescop: str
    point_like: bool
    energy_true: tuple[float, float]
    energy_reco: tuple[float, float]
    offset_max: float
    a0: float
    e_th: float
    k: float
    off_sigma: float
    bias0: float
    res0: float
    res1: float
    psf_kind: str  # "3gauss", "gauss" or "king-table"
    psf_sigma0: float
    psf_index: float
    psf_floor: float
    bkg_kind: str  # "3d" or "2d"
    bkg_rate0: float
    bkg_index: float
    bkg_e_th: float
    bkg_off_sigma: float
    wobble: float = 0.5
    livetime: float = 1800.0
    deadc: float = 0.95
    safe_range: tuple[float, float] = (0.7, 100.0)
    n_per_decade: int = 16
    n_offset: int = 10
    location: tuple[float, float, float] = (
        16.5002,
        -23.2718,
        1835.0,
    )  # GEOLON, GEOLAT (deg), GEOALT (m)


PRESETS: dict[str, InstrumentPreset] = {
    "hess-like": InstrumentPreset(
        name="hess-like",
        telescop="HESS-SIM",
        point_like=False,
        energy_true=(0.4, 100.0),
        energy_reco=(0.4, 100.0),
        offset_max=2.5,
        a0=3.0e5,
        e_th=0.7,
        k=3.0,
        off_sigma=1.5,
        bias0=0.05,
        res0=0.10,
        res1=0.05,
        psf_kind="3gauss",
        psf_sigma0=0.05,
        psf_index=-0.2,
        psf_floor=0.02,
        bkg_kind="3d",
        bkg_rate0=8.0e-4,
        bkg_index=2.7,
        bkg_e_th=0.6,
        bkg_off_sigma=1.2,
        wobble=0.5,
        livetime=1800.0,
        safe_range=(0.7, 100.0),
    ),
    "magic-like": InstrumentPreset(
        name="magic-like",
        telescop="MAGIC-SIM",
        point_like=True,
        energy_true=(0.04, 30.0),
        energy_reco=(0.04, 30.0),
        offset_max=1.5,
        a0=8.0e4,
        e_th=0.08,
        k=2.5,
        off_sigma=1.0,
        bias0=0.08,
        res0=0.12,
        res1=0.08,
        psf_kind="gauss",
        psf_sigma0=0.05,
        psf_index=-0.25,
        psf_floor=0.03,
        bkg_kind="2d",
        bkg_rate0=8.0e-5,
        bkg_index=2.8,
        bkg_e_th=0.07,
        bkg_off_sigma=0.8,
        wobble=0.4,
        livetime=1200.0,
        n_offset=6,
        safe_range=(0.08, 30.0),
        location=(-17.8906, 28.7619, 2200.0),
    ),
    "cta-like": InstrumentPreset(
        name="cta-like",
        telescop="CTA-SIM",
        point_like=False,
        energy_true=(0.02, 150.0),
        energy_reco=(0.02, 150.0),
        offset_max=3.5,
        a0=2.0e5,
        e_th=0.05,
        k=2.0,
        off_sigma=2.0,
        bias0=0.05,
        res0=0.07,
        res1=0.08,
        psf_kind="king-table",
        psf_sigma0=0.03,
        psf_index=-0.3,
        psf_floor=0.015,
        bkg_kind="2d",
        bkg_rate0=2.0e-5,
        bkg_index=2.6,
        bkg_e_th=0.05,
        bkg_off_sigma=1.8,
        wobble=0.7,
        livetime=1800.0,
        n_offset=7,
        safe_range=(0.05, 150.0),
        location=(-17.8920, 28.7615, 2147.0),
    ),
}


@dataclass
class Response:
    """What an instrument writes (``irfs``) and what its events are sampled from.

    Attributes
    ----------
    name : str
        Instrument name (archive sub-folder).
    irfs : dict
        IRFs written with each observation, keyed by HDU type.
    aeff : EffectiveArea2D
        Effective area used for sampling (full-enclosure when ``psf`` is set).
    edisp : EnergyDispersion2D
    psf : PSF object or None
        None for point-like responses without a PSF: source events are then
        placed uniformly inside the RAD_MAX circle.
    bkg : Background3D, Background2D or None
        Background rate model (no background events if None).
    rad_max : RadMax2D or None
    offset_max : float
        Maximum FoV offset (deg) of background events.
    meta : dict
        EVENTS header keywords (TELESCOP, INSTRUME...), ``wobble``, ``livetime``, ``deadc``.
    """

    name: str
    irfs: dict[str, Any]
    aeff: Any
    edisp: Any
    psf: Any
    bkg: Any
    rad_max: Any = None
    offset_max: float = 2.5
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def point_like(self) -> bool:
        """Whether the written IRFs are point-like."""
        return bool(self.irfs["aeff"].ds.attrs.get("point_like", False))


# ---------------------------------------------------------------------------- analytic shapes


def _log_edges(lo: float, hi: float, per_decade: int) -> np.ndarray:
    n = max(int(np.ceil(np.log10(hi / lo) * per_decade)), 1)
    return np.geomspace(lo, hi, n + 1)


def _centres(edges: np.ndarray, log: bool) -> np.ndarray:
    return np.sqrt(edges[1:] * edges[:-1]) if log else 0.5 * (edges[1:] + edges[:-1])


def aeff_values(p: InstrumentPreset, energy: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Full-enclosure effective area (m2) at true energies (TeV) and offsets (deg), broadcast."""
    energy = np.asarray(energy, float)
    return (
        p.a0
        / (1.0 + (p.e_th / energy) ** p.k)
        * np.exp(-0.5 * (np.asarray(offset) / p.off_sigma) ** 2)
    )


def migration_pdf(p: InstrumentPreset, energy: np.ndarray, migra: np.ndarray) -> np.ndarray:
    """Log-normal migration pdf (per unit migra) at true energies (TeV), broadcast with ``migra``."""
    x = p.e_th / np.asarray(energy, float)
    mu = np.log1p(p.bias0 * x**2)
    sigma = p.res0 + p.res1 * np.sqrt(x)
    migra = np.asarray(migra, float)
    return np.exp(-0.5 * ((np.log(migra) - mu) / sigma) ** 2) / (migra * sigma * np.sqrt(2 * np.pi))


def psf_sigma(p: InstrumentPreset, energy: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Core PSF width (deg) at true energies (TeV) and offsets (deg), broadcast."""
    e = np.asarray(energy, float)
    return (p.psf_sigma0 * e**p.psf_index + p.psf_floor) * (
        1.0 + 0.1 * np.asarray(offset, float) ** 2
    )


def bkg_values(p: InstrumentPreset, energy: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Background rate (s-1 MeV-1 sr-1) at reconstructed energies (TeV) and offsets (deg)."""
    e = np.asarray(energy, float)
    return (
        p.bkg_rate0
        * e ** (-p.bkg_index)
        / (1.0 + (p.bkg_e_th / e) ** 3)
        * np.exp(-0.5 * (np.asarray(offset, float) / p.bkg_off_sigma) ** 2)
    )


# ---------------------------------------------------------------------------- table IRFs


def _header(**cards: Any) -> str:
    return fits.Header(list(cards.items())).tostring()


def _make_psf(p: InstrumentPreset, e_edges: np.ndarray, o_edges: np.ndarray) -> Any:
    e, o = np.meshgrid(_centres(e_edges, True), _centres(o_edges, False), indexing="ij")
    sigma = psf_sigma(p, e, o)
    if p.psf_kind in ("3gauss", "gauss"):
        tail = p.psf_kind == "3gauss"
        return PSF3Gauss.create(
            e_edges,
            o_edges,
            scale=np.ones_like(sigma),
            sigma_1=sigma,
            sigma_2=2.5 * sigma,
            sigma_3=5.0 * sigma,
            ampl_2=np.full_like(sigma, 0.04 if tail else 0.0),
            ampl_3=np.zeros_like(sigma),
        )
    if p.psf_kind == "king-table":
        rad_edges = np.linspace(0.0, 1.0, 251)
        rad = _centres(rad_edges, False)
        dens = king_density(rad, 3.0, sigma[..., None])
        return PSFTable.create(e_edges, o_edges, rad_edges, dens)
    raise ValueError(f"unknown PSF kind {p.psf_kind!r}")


def _make_bkg(p: InstrumentPreset) -> Any:
    e_edges = _log_edges(*p.energy_reco, 12)
    e = _centres(e_edges, True)
    if p.bkg_kind == "3d":
        xy = np.linspace(-p.offset_max - 0.5, p.offset_max + 0.5, 25)
        c = _centres(xy, False)
        off = np.hypot(c[:, None], c[None, :])
        rate = bkg_values(p, e[:, None, None], off[None])
        return Background3D.create(e_edges, xy, xy, rate.astype(np.float32))
    o_edges = np.linspace(0.0, p.offset_max + 0.5, 2 * p.n_offset + 3)
    rate = bkg_values(p, e[:, None], _centres(o_edges, False)[None])
    return Background2D.create(e_edges, o_edges, rate.astype(np.float32))


def make_response(preset: str | InstrumentPreset, **overrides: Any) -> Response:
    """Build the analytic response of a preset (a name of `PRESETS` or an `InstrumentPreset`).

    ``overrides`` replace preset fields (e.g. ``a0=1e5``).
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise GdaskError(f"unknown instrument preset {preset!r}; known: {sorted(PRESETS)}")
        preset = PRESETS[preset]
    p = replace(preset, **overrides) if overrides else preset
    e_edges = _log_edges(*p.energy_true, p.n_per_decade)
    o_edges = np.linspace(0.0, p.offset_max + 0.5, p.n_offset + 1)
    e_c, o_c = _centres(e_edges, True), _centres(o_edges, False)
    area = aeff_values(p, e_c[:, None], o_c[None])
    aeff = EffectiveArea2D.create(e_edges, o_edges, area)
    m_edges = np.linspace(0.2, 3.0, 281)
    m_c = _centres(m_edges, False)
    pdf = migration_pdf(p, e_c[:, None, None], m_c[None, :, None]) * np.ones((1, 1, o_c.size))
    edisp = EnergyDispersion2D.create(
        e_edges, m_edges, o_edges, pdf.astype(np.float32), point_like=p.point_like
    )
    psf = _make_psf(p, e_edges, o_edges)
    bkg = _make_bkg(p)
    meta = {
        "TELESCOP": p.telescop,
        "INSTRUME": p.name,
        "wobble": p.wobble,
        "livetime": p.livetime,
        "deadc": p.deadc,
        "GEOLON": p.location[0],
        "GEOLAT": p.location[1],
        "GEOALT": p.location[2],
    }
    thres = _header(LO_THRES=p.safe_range[0], HI_THRES=p.safe_range[1])
    if not p.point_like:
        aeff.ds.attrs["fits_header"] = thres
        irfs = {"aeff": aeff, "edisp": edisp, "psf": psf, "bkg": bkg}
        return Response(p.name, irfs, aeff, edisp, psf, bkg, None, p.offset_max, meta)
    # point-like: RAD_MAX = 68% containment radius at the reconstructed energy
    r_e_edges = _log_edges(*p.energy_reco, 8)
    r_e, r_o = np.meshgrid(_centres(r_e_edges, True), o_c, indexing="ij")
    rad_max = RadMax2D.create(r_e_edges, o_edges, 1.5096 * psf_sigma(p, r_e, r_o))
    cut = rad_max.evaluate(e_c[:, None, None] * m_c[None, :, None], o_c[None, None, :])
    contained = psf.containment(e_c[:, None, None], o_c[None, None, :], cut)
    weights = pdf * np.diff(m_edges)[None, :, None]
    eff = np.sum(weights * contained, axis=1) / np.sum(weights, axis=1)
    aeff_pl = EffectiveArea2D.create(e_edges, o_edges, area * eff, point_like=True)
    aeff_pl.ds.attrs["fits_header"] = thres
    irfs = {"aeff": aeff_pl, "edisp": edisp, "bkg": bkg, "rad_max": rad_max}
    return Response(p.name, irfs, aeff, edisp, psf, bkg, rad_max, p.offset_max, meta)


def response_from_archive(
    path: str | Path, obs_id: int, *, name: str | None = None, offset_max: float | None = None
) -> Response:
    """Use the real IRFs of one observation of a GADF archive as the response.

    Point-like IRFs come without a PSF: their source events are placed
    uniformly inside the RAD_MAX circle (so that the counts inside the cut are
    exactly those the point-like effective area predicts).
    """
    from gdask.dl3 import DL3Index, read_observation

    obs = read_observation(DL3Index.read(path), int(obs_id), require=("aeff", "edisp"))
    irfs = dict(obs.irfs)
    aeff = irfs["aeff"]
    rad_max = irfs.get("rad_max")
    if aeff.point_like and rad_max is None and aeff.rad_max is not None:
        rad_max = RadMax2D.from_irf(aeff)
    if offset_max is None:
        offset_max = float(aeff.edges("offset")[-1])
    meta: dict[str, Any] = {
        "INSTRUME": name or Path(path).name,
        "wobble": 0.5,
        "livetime": 1800.0,
        "deadc": 1.0,
    }
    if obs.events is not None:
        header = obs.events.header
        for key in ("TELESCOP", "INSTRUME", "GEOLON", "GEOLAT", "GEOALT", "ALTITUDE"):
            if key in header:
                meta[key] = header[key]
        meta["deadc"] = float(header.get("DEADC", 1.0))
    meta["source"] = f"{Path(path)}#{int(obs_id)}"
    psf = None if aeff.point_like else irfs.get("psf")
    return Response(
        name or f"{Path(path).name}-{int(obs_id)}",
        irfs,
        aeff,
        irfs["edisp"],
        psf,
        irfs.get("bkg"),
        rad_max,
        float(offset_max),
        meta,
    )


def get_response(spec: str | Response) -> Response:
    """A response from a preset name, ``PATH#OBS_ID`` (real IRFs), or a `Response` (returned)."""
    if isinstance(spec, Response):
        return spec
    if "#" in spec:
        path, obs_id = spec.rsplit("#", 1)
        return response_from_archive(path, int(obs_id))
    return make_response(spec)

"""Event sampling (pure numpy, seeded `numpy.random.Generator`).

Source events of a `SkyModel`: the number is Poisson with mean
``livetime x int dE dOmega phi(E) S(Omega) A(E, offset)`` (x the time-averaged
temporal norm); true energies and directions are drawn from that density
(a piecewise power law on a fine energy grid; a fine polar grid for extended
morphologies, with thinning by ``A(E, offset) / max_offset A(E, offset)``),
then moved by the PSF and the energy dispersion. Background events: Poisson
with mean ``ontime x int dE dOmega rate(E, fov)`` within ``offset_max``, drawn
on a polar grid of FoV cells. `expected_counts` returns the same integrals.

Sampling schemes of tabulated IRFs: an axis coordinate between two nodes picks
one of them with the linear-interpolation weights, which samples exactly the
interpolated cumulative distribution; the migration (or rad) is then uniform
(in migra, or in area) inside the chosen bin of the table, as the makers read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gdask.dl3.irf import PSF3Gauss, PSFKing, PSFTable
from gdask.dl3.irf.bkg import Background3D, trapz_loglog, upsample_log_edges
from gdask.dl3.irf.psf import table_cumulative
from gdask.dl3.irf.psf_analytic import multi_gauss_norms
from gdask.geometry.fov import offset_by, offset_to_fov, separation
from gdask.models import PointSpatialModel, SkyModel

__all__ = [
    "Run",
    "offset_by",
    "separation",
    "sample_source_events",
    "sample_background_events",
    "expected_counts",
]

_DEG = np.pi / 180.0
_M2_TO_CM2 = 1e4
_MEV_PER_TEV = 1e6
_E_PER_DECADE = 200  # fine true-energy grid of the source sampling
_N_RING, _N_SECTOR = 300, 120  # polar grid of extended morphologies


@dataclass(frozen=True)
class Run:
    """One simulated observation: pointing, times and dead time.

    Attributes
    ----------
    obs_id : int
    ra_pnt, dec_pnt : float
        Pointing (ICRS deg).
    tstart : float
        Start (s since ``mjdref``); one GTI ``[tstart, tstart + ontime]``.
    ontime : float
        Duration (s).
    deadc : float
        Dead-time correction: ``livetime = ontime * deadc``.
    mjdref : float
        Time reference (MJD, TT).
    """

    obs_id: int
    ra_pnt: float
    dec_pnt: float
    tstart: float
    ontime: float
    deadc: float = 1.0
    mjdref: float = 51910.0

    @property
    def livetime(self) -> float:
        """``ontime * deadc`` (s)."""
        return self.ontime * self.deadc

    @property
    def tstop(self) -> float:
        """End of the GTI (s since ``mjdref``)."""
        return self.tstart + self.ontime


# ------------------------------------------------------------------------- sky geometry


def _to_icrs(lon: np.ndarray, lat: np.ndarray, frame: str) -> tuple[np.ndarray, np.ndarray]:
    if frame == "icrs":
        return lon, lat
    from astropy.coordinates import SkyCoord

    c = SkyCoord(lon, lat, unit="deg", frame=frame).icrs
    return c.ra.deg, c.dec.deg


# ------------------------------------------------------------------------- sampling helpers


def _choose(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """``n`` indices drawn with probabilities proportional to the flat ``weights``."""
    cum = np.cumsum(weights.ravel())
    idx = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
    return np.minimum(idx, cum.size - 1)


def _powerlaw_draw(rng: np.random.Generator, x0, x1, y0, y1) -> np.ndarray:
    """Draw in each bin ``[x0, x1]`` from the power law through ``(x0, y0)``, ``(x1, y1)``."""
    u = rng.random(np.shape(x0))
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.log(y0 / y1) / np.log(x1 / x0)
    g = np.where(np.isfinite(g), g, 1.0)
    a = 1.0 - g
    flat = np.abs(a) < 1e-6
    a = np.where(flat, 1.0, a)
    with np.errstate(over="ignore", invalid="ignore"):
        pl = x0 * (1.0 + u * ((x1 / x0) ** a - 1.0)) ** (1.0 / a)
    out = np.where(flat | ~np.isfinite(pl), x0 * (x1 / x0) ** u, pl)
    return np.clip(out, x0, x1)


def _pick_node(rng: np.random.Generator, nodes: np.ndarray, x: np.ndarray, log: bool) -> np.ndarray:
    """Node index per value: one of the two bracketing nodes, with the linear-interpolation weights."""
    if nodes.size == 1:
        return np.zeros(np.shape(x), dtype=int)
    s, xs = (np.log(nodes), np.log(x)) if log else (nodes, np.asarray(x, float))
    i = np.clip(np.searchsorted(s, xs, side="right") - 1, 0, s.size - 2)
    t = np.clip((xs - s[i]) / (s[i + 1] - s[i]), 0.0, 1.0)
    return i + (rng.random(np.shape(x)) < t)


def _flat_cdf_draw(
    rng: np.random.Generator, cdf: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a bin per row of a table of CDFs ``cdf (n_rows, n_bins + 1)`` (0 to 1).

    Returns the bin index and the position inside it (0 to 1, uniform).
    Rows whose CDF is not normalised give bin -1.
    """
    n_bins = cdf.shape[1] - 1
    ok = cdf[:, -1] > 0.5
    flat = (cdf[:, 1:] + np.arange(cdf.shape[0])[:, None]).ravel()
    target = rows + rng.random(rows.size)
    k = np.clip(np.searchsorted(flat, target, side="left"), 0, flat.size - 1)
    row, b = np.divmod(k, n_bins)
    lo = cdf[row, b]
    hi = cdf[row, b + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip(np.nan_to_num((target - row - lo) / (hi - lo)), 0.0, 1.0)
    return np.where(ok[rows], b, -1), frac


def _normalised_cdf(weights: np.ndarray) -> np.ndarray:
    """CDF along the last axis with a leading 0, normalised (all-zero rows stay 0)."""
    cum = np.cumsum(np.clip(weights, 0.0, None), axis=-1)
    total = cum[..., -1:]
    cum = np.divide(cum, total, out=np.zeros_like(cum), where=total > 0)
    return np.concatenate([np.zeros(cum.shape[:-1] + (1,)), cum], axis=-1)


# ------------------------------------------------------------------------- IRF application


def apply_edisp(
    rng: np.random.Generator, edisp: Any, energy: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """Reconstructed energies (TeV; NaN where the migration pdf is zero)."""
    pdf = np.asarray(
        edisp.ds["migration_pdf"].transpose("energy_true", "offset", "migra").values, float
    )
    m_edges = edisp.edges("migra")
    cdf = _normalised_cdf(pdf * np.diff(m_edges))
    n_e, n_o = cdf.shape[:2]
    ie = _pick_node(rng, edisp.nodes("energy_true"), energy, log=True)
    io = _pick_node(rng, edisp.nodes("offset"), offset, log=False)
    b, frac = _flat_cdf_draw(rng, cdf.reshape(n_e * n_o, -1), ie * n_o + io)
    migra = m_edges[np.maximum(b, 0)] + frac * np.diff(m_edges)[np.maximum(b, 0)]
    return np.where(b >= 0, migra * energy, np.nan)


def apply_psf(
    rng: np.random.Generator, psf: Any, energy: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """Angular distances (deg) between true and reconstructed directions."""
    u = 1.0 - rng.random(energy.size)  # in (0, 1]
    if isinstance(psf, PSF3Gauss):
        pars = psf.evaluate_parameters(energy, offset)
        norms = multi_gauss_norms(**pars)
        cum = np.cumsum(norms, axis=0)
        comp = np.sum(rng.random(energy.size) * cum[-1] > cum, axis=0).clip(0, 2)
        sigma = np.choose(comp, [pars["sigma_1"], pars["sigma_2"], pars["sigma_3"]])
        return sigma * np.sqrt(-2.0 * np.log(u))
    if isinstance(psf, PSFKing):
        pars = psf.evaluate_parameters(energy, offset)
        g, s = pars["gamma"], pars["sigma"]
        return np.sqrt(2 * g * s**2 * (u ** (1.0 / (1.0 - g)) - 1.0))
    if isinstance(psf, PSFTable):
        values = np.asarray(psf.ds["psf"].transpose("energy_true", "offset", "rad").values, float)
        r_edges, r_nodes = psf._edges("rad"), psf._nodes("rad")
        ring = np.diff(table_cumulative(values, r_edges, r_nodes), axis=-1, prepend=0.0)
        cdf = _normalised_cdf(ring)
        n_e, n_o = cdf.shape[:2]
        ie = _pick_node(rng, psf._nodes("energy_true"), energy, log=True)
        io = _pick_node(rng, psf._nodes("offset"), offset, log=False)
        b, frac = _flat_cdf_draw(rng, cdf.reshape(n_e * n_o, -1), ie * n_o + io)
        b = np.maximum(b, 0)
        r0, r1 = r_edges[b], r_edges[b + 1]
        return np.sqrt(r0**2 + frac * (r1**2 - r0**2))
    raise TypeError(f"cannot sample from a PSF of type {type(psf).__name__}")


# ------------------------------------------------------------------------- source model


def _spatial_cells(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """Polar grid around an extended model: cell weights (sum ~1) and a cell sampler."""
    lon0, lat0 = model.position
    radius = float(model.evaluation_radius)
    r_edges = np.linspace(0.0, radius, _N_RING + 1)
    p_edges = np.linspace(0.0, 360.0, _N_SECTOR + 1)
    rc = 0.5 * (r_edges[1:] + r_edges[:-1])
    pc = 0.5 * (p_edges[1:] + p_edges[:-1])
    lon, lat = offset_by(lon0, lat0, rc[:, None], pc[None, :])
    value = model.evaluate(lon, lat, **model.canonical_pars())
    d_omega = (
        (np.cos(r_edges[:-1] * _DEG) - np.cos(r_edges[1:] * _DEG))[:, None]
        * (360.0 / _N_SECTOR)
        * _DEG
    )
    weights = np.clip(value, 0, None) * d_omega
    ra, dec = _to_icrs(lon, lat, model.frame)

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        k = _choose(rng, weights, n)
        i, j = np.divmod(k, _N_SECTOR)
        c0, c1 = np.cos(r_edges[i] * _DEG), np.cos(r_edges[i + 1] * _DEG)
        r = np.arccos(c0 + rng.random(n) * (c1 - c0)) / _DEG
        pa = p_edges[j] + rng.random(n) * (360.0 / _N_SECTOR)
        lo, la = offset_by(lon0, lat0, r, pa)
        return _to_icrs(lo, la, model.frame)

    return weights, ra, dec, draw


def _time_factor(model: SkyModel, run: Run) -> float:
    tm = model.temporal_model
    if tm is None:
        return 1.0
    t = run.mjdref + np.linspace(run.tstart, run.tstop, 2001) / 86400.0
    return float(np.mean(np.clip(tm(t), 0, None)))


def _draw_times(rng: np.random.Generator, model: SkyModel | None, run: Run, n: int) -> np.ndarray:
    if model is None or model.temporal_model is None:
        return run.tstart + rng.random(n) * run.ontime
    edges = np.linspace(run.tstart, run.tstop, 2001)
    w = np.clip(
        model.temporal_model(run.mjdref + 0.5 * (edges[1:] + edges[:-1]) / 86400.0), 0, None
    )
    k = _choose(rng, w, n)
    return edges[k] + rng.random(n) * np.diff(edges)[k]


def _energy_grid(aeff: Any, energy_range: tuple[float, float] | None) -> np.ndarray:
    edges = aeff.fill_edges("energy_true")
    lo, hi = edges[0] * (1 + 1e-9), edges[-1] * (1 - 1e-9)
    if energy_range is not None:
        lo, hi = max(lo, energy_range[0]), min(hi, energy_range[1])
    n = max(int(np.ceil(np.log10(hi / lo) * _E_PER_DECADE)), 2)
    return np.geomspace(lo, hi, n + 1)


class _SourcePlan:
    """The true-energy/direction density of one SkyModel in one run (rates in counts)."""

    def __init__(self, model: SkyModel, response: Any, run: Run, energy_range=None) -> None:
        self.model, self.run, self._aeff = model, run, response.aeff
        self.e = _energy_grid(response.aeff, energy_range)
        phi = model.spectral_model(self.e) * _M2_TO_CM2 * run.livetime * _time_factor(model, run)
        aeff = response.aeff
        spatial = model.spatial_model
        if spatial is None or isinstance(spatial, PointSpatialModel):
            lon, lat = (0.0, 0.0) if spatial is None else spatial.position
            ra, dec = _to_icrs(
                np.atleast_1d(lon), np.atleast_1d(lat), "icrs" if spatial is None else spatial.frame
            )
            self.ra, self.dec = float(ra[0]), float(dec[0])
            off = float(separation(run.ra_pnt, run.dec_pnt, self.ra, self.dec))
            self.env = aeff.evaluate(self.e, off)
            self.offsets, self.off_weights, self.draw = np.array([off]), np.array([1.0]), None
        else:
            weights, ra, dec, self.draw = _spatial_cells(spatial)
            off = separation(run.ra_pnt, run.dec_pnt, ra, dec)
            nodes = aeff.nodes("offset")
            probe = np.concatenate(
                [nodes[(nodes > off.min()) & (nodes < off.max())], [off.min(), off.max()]]
            )
            self.env = np.max(aeff.evaluate(self.e[:, None], probe[None]), axis=1)
            hist_edges = np.arange(0.0, off.max() + 0.02, 0.01)
            hw, _ = np.histogram(off, hist_edges, weights=weights)
            keep = hw > 0
            self.offsets = 0.5 * (hist_edges[1:] + hist_edges[:-1])[keep]
            self.off_weights = hw[keep]
        self.y_env = phi * self.env
        self.bins_env = trapz_loglog(self.y_env, self.e) * np.sum(self.off_weights)
        self.phi = phi

    def expected_true(self) -> np.ndarray:
        """Expected counts per fine true-energy bin, shape (n_offsets, n_bins)."""
        y = self.phi[None] * self.model_aeff(self.offsets)
        return trapz_loglog(y, self.e, axis=1) * self.off_weights[:, None]

    def model_aeff(self, offsets: np.ndarray) -> np.ndarray:
        return self._aeff.evaluate(self.e[None], offsets[:, None])

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = rng.poisson(float(np.sum(self.bins_env)))
        k = _choose(rng, self.bins_env, n)
        e = _powerlaw_draw(rng, self.e[k], self.e[k + 1], self.y_env[k], self.y_env[k + 1])
        if self.draw is None:
            return e, np.full(n, self.ra), np.full(n, self.dec)
        ra, dec = self.draw(rng, n)
        off = separation(self.run.ra_pnt, self.run.dec_pnt, ra, dec)
        env = np.interp(np.log(e), np.log(self.e), self.env)
        with np.errstate(invalid="ignore", divide="ignore"):
            keep = rng.random(n) * env < self._aeff.evaluate(e, off)
        return e[keep], ra[keep], dec[keep]


def sample_source_events(
    rng: np.random.Generator,
    model: SkyModel,
    response: Any,
    run: Run,
    energy_range: tuple[float, float] | None = None,
) -> dict[str, np.ndarray]:
    """Sample the events of one SkyModel in one run.

    Returns a dict of arrays ``ENERGY`` (reco, TeV), ``RA``, ``DEC`` (deg),
    ``TIME`` (s since MJDREF), ``ENERGY_TRUE``, ``RA_TRUE``, ``DEC_TRUE``.
    """
    plan = _SourcePlan(model, response, run, energy_range)
    e_true, ra_t, dec_t = plan.sample(rng)
    off = separation(run.ra_pnt, run.dec_pnt, ra_t, dec_t)
    e_reco = apply_edisp(rng, response.edisp, e_true, off)
    pa = rng.random(e_true.size) * 360.0
    if response.psf is not None:
        rad = apply_psf(rng, response.psf, e_true, off)
    elif response.rad_max is not None:  # point-like without PSF: uniform inside the cut
        rad = response.rad_max.evaluate(np.nan_to_num(e_reco, nan=1.0), off) * np.sqrt(
            rng.random(e_true.size)
        )
    else:
        rad = np.zeros(e_true.size)
    ra, dec = offset_by(ra_t, dec_t, rad, pa)
    keep = np.isfinite(e_reco)
    out = {
        "ENERGY": e_reco,
        "RA": ra,
        "DEC": dec,
        "ENERGY_TRUE": e_true,
        "RA_TRUE": ra_t,
        "DEC_TRUE": dec_t,
    }
    out = {k: v[keep] for k, v in out.items()}
    out["TIME"] = _draw_times(rng, model, run, int(np.sum(keep)))
    return out


# ------------------------------------------------------------------------- background


class _BackgroundPlan:
    """Background counts on (fine energy bin, polar FoV cell) cells."""

    def __init__(
        self,
        response: Any,
        run: Run,
        energy_edges: np.ndarray | None = None,
        energy_range: tuple[float, float] | None = None,
    ) -> None:
        bkg = response.bkg
        is_3d = isinstance(bkg, Background3D)
        if is_3d and bkg.fov_alignment != "RADEC":
            raise NotImplementedError(
                f"sampling a {bkg.fov_alignment}-aligned background is not supported"
            )
        omax = float(response.offset_max)
        if not is_3d:
            omax = min(omax, float(bkg.fill_edges("offset")[-1]))
        self.r_edges = np.linspace(0.0, omax, max(int(np.ceil(omax / 0.025)), 1) + 1)
        self.n_sec = 72 if is_3d else 1
        self.p_edges = np.linspace(0.0, 360.0, self.n_sec + 1)
        rc = 0.5 * (self.r_edges[1:] + self.r_edges[:-1])
        pc = 0.5 * (self.p_edges[1:] + self.p_edges[:-1])
        sep, pa = np.meshgrid(rc, pc, indexing="ij")
        if energy_edges is None:
            fe = bkg.fill_edges("energy")
            lo, hi = fe[0] * (1 + 1e-9), fe[-1] * (1 - 1e-9)
            if energy_range is not None:
                lo, hi = max(lo, energy_range[0]), min(hi, energy_range[1])
            energy_edges = np.geomspace(lo, hi, max(int(np.ceil(np.log10(hi / lo) * 40)), 2) + 1)
        self.e = np.asarray(energy_edges, float)
        e = self.e[:, None, None]
        if is_3d:
            lon, lat = offset_to_fov(sep, pa)
            rate = bkg.evaluate(e, lon[None], lat[None])
        else:
            rate = bkg.evaluate(e, sep[None])
        self.rate = rate.reshape(self.e.size, -1)
        d_omega = (
            (np.cos(self.r_edges[:-1] * _DEG) - np.cos(self.r_edges[1:] * _DEG))
            * (360.0 / self.n_sec)
            * _DEG
        )
        omega = np.repeat(d_omega, self.n_sec)
        self.counts = (
            trapz_loglog(self.rate, self.e, axis=0) * _MEV_PER_TEV * omega[None] * run.ontime
        )
        self.run = run

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = rng.poisson(float(np.sum(self.counts)))
        k = _choose(rng, self.counts, n)
        ie, cell = np.divmod(k, self.counts.shape[1])
        e = _powerlaw_draw(
            rng, self.e[ie], self.e[ie + 1], self.rate[ie, cell], self.rate[ie + 1, cell]
        )
        i, j = np.divmod(cell, self.n_sec)
        c0, c1 = np.cos(self.r_edges[i] * _DEG), np.cos(self.r_edges[i + 1] * _DEG)
        sep = np.arccos(c0 + rng.random(n) * (c1 - c0)) / _DEG
        pa = self.p_edges[j] + rng.random(n) * (360.0 / self.n_sec)
        ra, dec = offset_by(self.run.ra_pnt, self.run.dec_pnt, sep, pa)
        return {"ENERGY": e, "RA": ra, "DEC": dec, "TIME": _draw_times(rng, None, self.run, n)}


def sample_background_events(
    rng: np.random.Generator,
    response: Any,
    run: Run,
    energy_range: tuple[float, float] | None = None,
) -> dict[str, np.ndarray]:
    """Sample background events (``ENERGY``, ``RA``, ``DEC``, ``TIME``) within ``response.offset_max``."""
    return _BackgroundPlan(response, run, energy_range=energy_range).sample(rng)


# ------------------------------------------------------------------------- expectations


def expected_counts(
    response: Any, models: list[SkyModel], run: Run, energy_edges: np.ndarray | None = None
) -> dict[str, Any]:
    """Expected numbers of events, by the integrals the sampler draws from.

    Parameters
    ----------
    response : Response
    models : list of SkyModel
    run : Run
    energy_edges : array_like, optional
        Reconstructed-energy bin edges (TeV): also return counts per bin.

    Returns
    -------
    dict
        ``source`` (list, per model: all events, before energy dispersion
        losses), ``background`` (total within ``offset_max``) and, with
        ``energy_edges``, ``source_reco`` (per model, per bin, folded with the
        energy dispersion) and ``background_reco``.
    """
    out: dict[str, Any] = {"source": [], "source_reco": []}
    for model in models:
        plan = _SourcePlan(model, response, run)
        per_bin = plan.expected_true()
        out["source"].append(float(per_bin.sum()))
        if energy_edges is not None:  # fold with the edisp on 4x coarser energies, 0.1 deg offsets
            e4 = plan.e[::4] if (plan.e.size - 1) % 4 == 0 else np.append(plan.e[::4], plan.e[-1])
            grouped = np.add.reduceat(per_bin, np.arange(0, per_bin.shape[1], 4), axis=1)
            groups = np.floor(plan.offsets / 0.1).astype(int)
            reco = 0.0
            for g in np.unique(groups):
                sel = groups == g
                w = grouped[sel].sum(axis=0)
                off = np.average(plan.offsets[sel], weights=grouped[sel].sum(axis=1) + 1e-300)
                probs = response.edisp.reco_probabilities(
                    np.sqrt(e4[1:] * e4[:-1]), off, np.asarray(energy_edges, float), threshold=0.0
                )
                reco = reco + w @ probs
            out["source_reco"].append(np.asarray(reco))
    if response.bkg is not None:
        out["background"] = float(np.sum(_BackgroundPlan(response, run).counts))
        if energy_edges is not None:
            fine = upsample_log_edges(np.asarray(energy_edges, float), 10)
            counts = _BackgroundPlan(response, run, energy_edges=fine).counts.sum(axis=1)
            out["background_reco"] = counts.reshape(-1, 10).sum(axis=1)
    else:
        out["background"] = 0.0
    return out

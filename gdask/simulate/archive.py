"""Simulated GADF DL3 archives: wobble runs around a source, one archive per instrument."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from gdask import __version__
from gdask.dl3 import GTI, DL3Index, EventList, Observation, write_observations
from gdask.models import Models, PointSpatialModel, PowerLawSpectralModel, SkyModel
from gdask.simulate.events import Run, offset_by, sample_background_events, sample_source_events
from gdask.simulate.irfs import Response, get_response

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "CRAB_POSITION",
    "default_sky_model",
    "wobble_runs",
    "simulate_observation",
    "simulate_archive",
    "SimulationSummary",
    "load_sky_models",
]

DEFAULT_INSTRUMENTS = ("hess-like", "magic-like", "cta-like")
CRAB_POSITION = (83.633, 22.014)
MJDREF = 51910.0
MJD_START = 59215.8  # 2021-01-01 ~19:12 TT
_OBS_ID_BASE = {"hess-like": 100000, "magic-like": 200000, "cta-like": 300000}


def default_sky_model() -> SkyModel:
    """A bright (~2 Crab) point source at the Crab position with a power law of index 2.5."""
    return SkyModel(
        PowerLawSpectralModel(index=2.5, amplitude="8e-11 cm-2 s-1 TeV-1", reference="1 TeV"),
        PointSpatialModel(
            lon_0=f"{CRAB_POSITION[0]} deg", lat_0=f"{CRAB_POSITION[1]} deg", frame="icrs"
        ),
        name="crab-sim",
    )


def load_sky_models(path: str | Path) -> list[SkyModel]:
    """The SkyModels of a (Gammapy-compatible) models YAML file; FoV background models are ignored."""
    return [m for m in Models.read(path) if isinstance(m, SkyModel)]


def wobble_runs(
    n_runs: int,
    source: tuple[float, float],
    *,
    wobble: float = 0.5,
    ontime: float = 1800.0,
    deadc: float = 1.0,
    obs_id_start: int = 1,
    mjd_start: float = MJD_START,
    mjdref: float = MJDREF,
    gap: float = 300.0,
) -> list[Run]:
    """Consecutive runs pointing ``wobble`` deg from ``source`` (ICRS deg), cycling N, E, S, W."""
    runs = []
    t0 = (mjd_start - mjdref) * 86400.0
    for i in range(int(n_runs)):
        ra, dec = offset_by(source[0], source[1], wobble, 90.0 * (i % 4))
        runs.append(
            Run(
                obs_id=obs_id_start + i,
                ra_pnt=float(ra),
                dec_pnt=float(dec),
                tstart=t0 + i * (ontime + gap),
                ontime=float(ontime),
                deadc=float(deadc),
                mjdref=mjdref,
            )
        )
    return runs


def _events_header(run: Run, response: Response, object_name: str) -> fits.Header:
    mjdrefi = int(np.floor(run.mjdref))
    cards = [
        ("EXTNAME", "EVENTS"),
        ("HDUCLASS", "GADF"),
        ("HDUDOC", "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats"),
        ("HDUVERS", "0.3"),
        ("HDUCLAS1", "EVENTS"),
        ("OBS_ID", int(run.obs_id)),
        ("TELESCOP", str(response.meta.get("TELESCOP", "SIM"))),
        ("INSTRUME", str(response.meta.get("INSTRUME", response.name))),
        ("CREATOR", f"gdask.simulate {__version__}"),
        ("OBJECT", object_name),
        ("OBS_MODE", "POINTING"),
        ("RA_PNT", float(run.ra_pnt)),
        ("DEC_PNT", float(run.dec_pnt)),
        ("EQUINOX", 2000.0),
        ("RADECSYS", "ICRS"),
        ("RADESYS", "ICRS"),
        ("MJDREFI", mjdrefi),
        ("MJDREFF", float(run.mjdref - mjdrefi)),
        ("TIMEUNIT", "s"),
        ("TIMESYS", "TT"),
        ("TIMEREF", "LOCAL"),
        ("TSTART", float(run.tstart)),
        ("TSTOP", float(run.tstop)),
        ("ONTIME", float(run.ontime)),
        ("LIVETIME", float(run.livetime)),
        ("DEADC", float(run.deadc)),
        ("EUNIT", "TeV"),
    ]
    for key in ("GEOLON", "GEOLAT", "GEOALT", "ALTITUDE"):
        if key in response.meta:
            cards.append((key, float(response.meta[key])))
    return fits.Header(cards)


def _event_list(columns: dict[str, np.ndarray], header: fits.Header) -> EventList:
    spec = {
        "EVENT_ID": (np.int64, "K", None),
        "TIME": (np.float64, "D", "s"),
        "RA": (np.float64, "D", "deg"),
        "DEC": (np.float64, "D", "deg"),
        "ENERGY": (np.float32, "E", "TeV"),
        "MC_ID": (np.int32, "J", None),
    }
    cols = [
        fits.Column(name=name, format=fmt, unit=unit, array=np.asarray(columns[name], dtype=dt))
        for name, (dt, fmt, unit) in spec.items()
    ]
    hdu = fits.BinTableHDU.from_columns(cols, header=header)
    return EventList.from_hdu(hdu)


def simulate_observation(
    response: Response | str,
    models: Sequence[SkyModel],
    run: Run,
    rng: np.random.Generator,
    *,
    object_name: str = "SIM",
    background: bool = True,
) -> Observation:
    """Simulate one run: source and background events, GTI and the IRFs.

    Events are sorted by time; ``MC_ID`` is 0 for background and ``i + 1``
    for the events of ``models[i]``.
    """
    response = get_response(response)
    parts = []
    for i, model in enumerate(models):
        ev = sample_source_events(rng, model, response, run)
        ev["MC_ID"] = np.full(ev["ENERGY"].size, i + 1)
        parts.append(ev)
    if background and response.bkg is not None:
        ev = sample_background_events(rng, response, run)
        ev["MC_ID"] = np.zeros(ev["ENERGY"].size, dtype=int)
        parts.append(ev)
    keys = ("TIME", "RA", "DEC", "ENERGY", "MC_ID")
    cols = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in keys}
    order = np.argsort(cols["TIME"], kind="stable")
    cols = {k: v[order] for k, v in cols.items()}
    cols["EVENT_ID"] = np.arange(1, order.size + 1)
    events = _event_list(cols, _events_header(run, response, object_name))
    gti = GTI.create([run.tstart], [run.tstop], mjdref=run.mjdref, timesys="tt")
    meta = {
        "OBJECT": object_name,
        "TELESCOP": str(response.meta.get("TELESCOP", "SIM")),
        "INSTRUME": str(response.meta.get("INSTRUME", response.name)),
        "DEADC": float(run.deadc),
        "OBS_MODE": "POINTING",
        "ZEN_PNT": 20.0,
    }
    return Observation(
        obs_id=run.obs_id, events=events, gti=gti, irfs=dict(response.irfs), meta=meta
    )


@dataclass
class SimulationSummary:
    """What `simulate_archive` wrote: one archive folder per instrument."""

    outdir: Path
    archives: dict[str, Path] = field(default_factory=dict)
    obs_ids: dict[str, list[int]] = field(default_factory=dict)
    n_events: dict[str, int] = field(default_factory=dict)
    models_file: Path | None = None

    def format(self) -> str:
        """A short human-readable summary."""
        lines = [f"simulated archives in {self.outdir}:"]
        for name, path in self.archives.items():
            lines.append(
                f"  {name:<14} {len(self.obs_ids[name])} runs, {self.n_events[name]} events -> {path}"
            )
        if self.models_file is not None:
            lines.append(f"  injected models: {self.models_file}")
        return "\n".join(lines)


def simulate_archive(
    outdir: str | Path,
    instruments: Sequence[str | Response] = DEFAULT_INSTRUMENTS,
    n_runs: int = 4,
    sky_model: SkyModel | Sequence[SkyModel] | None = None,
    seed: int = 0,
    *,
    livetime: float | None = None,
    wobble: float | None = None,
    overwrite: bool = True,
) -> SimulationSummary:
    """Simulate a GADF DL3 archive per instrument (``outdir/<instrument>/``).

    Parameters
    ----------
    outdir : str or Path
        Output folder; the injected models are written to ``outdir/models.yaml``.
    instruments : sequence of str or Response
        Preset names (``hess-like``, ``magic-like``, ``cta-like``), ``PATH#OBS_ID``
        (the real IRFs of that observation) or `Response` objects.
    n_runs : int
        Runs per instrument, in wobble mode around the first model's position.
    sky_model : SkyModel or list of SkyModel, optional
        What to inject (default `default_sky_model`).
    seed : int
        Seed: run ``j`` of instrument ``i`` uses ``default_rng([seed, i, j])``.
    livetime, wobble : float, optional
        Override the instruments' run duration (s, ontime) and wobble offset (deg).
    overwrite : bool
        Overwrite existing files.
    """
    outdir = Path(outdir)
    models = (
        [default_sky_model()]
        if sky_model is None
        else ([sky_model] if isinstance(sky_model, SkyModel) else list(sky_model))
    )
    spatial = models[0].spatial_model
    source = CRAB_POSITION if spatial is None else tuple(float(x) for x in _icrs_position(spatial))
    summary = SimulationSummary(outdir=outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    summary.models_file = outdir / "models.yaml"
    Models(models).write(summary.models_file, overwrite=True)
    for i, spec in enumerate(instruments):
        response = get_response(spec)
        name = response.name
        base = _OBS_ID_BASE.get(name, 100000 * (i + 1))
        runs = wobble_runs(
            n_runs,
            source,
            wobble=float(wobble if wobble is not None else response.meta.get("wobble", 0.5)),
            ontime=float(
                livetime if livetime is not None else response.meta.get("livetime", 1800.0)
            ),
            deadc=float(response.meta.get("deadc", 1.0)),
            obs_id_start=base + 1,
            mjd_start=MJD_START + 0.2 * i,
        )
        observations = [
            simulate_observation(
                response,
                models,
                run,
                np.random.default_rng([int(seed), i, j]),
                object_name=models[0].name,
            )
            for j, run in enumerate(runs)
        ]
        index: DL3Index = write_observations(observations, outdir / name, overwrite=overwrite)
        summary.archives[name] = outdir / name
        summary.obs_ids[name] = list(index.obs_ids)
        summary.n_events[name] = int(sum(o.events.n_events for o in observations))
    return summary


def _icrs_position(spatial: Any) -> tuple[float, float]:
    lon, lat = spatial.position
    if spatial.frame == "icrs":
        return lon, lat
    c = spatial.position_skycoord().icrs
    return c.ra.deg, c.dec.deg

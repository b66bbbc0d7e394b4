"""The facts of one observation the makers need, read where Gammapy 2.1 reads them.

`ObservationInfo.from_observation` collects them from a `gdask.dl3.Observation`
(FITS or archive store): fixed pointing, on/live time, GTI start and time
reference, array location, effective-area thresholds, background FoV alignment.

Examples
--------
>>> from astropy.time import Time
>>> info = ObservationInfo(
...     obs_id=23523, ra_pnt=83.6, dec_pnt=22.5, ontime=1687.0, livetime=1581.7,
...     tstart=0.0, time_ref=Time(51910.0, format="mjd", scale="tt"), location=None,
... )
>>> info.pointing
(83.6, 22.5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation
from astropy.time import Time

from gdask.errors import FormatError

__all__ = ["ObservationInfo"]


@dataclass(frozen=True)
class ObservationInfo:
    """The facts of one observation the makers need, taken where Gammapy 2.1 takes them.

    Attributes
    ----------
    obs_id : int
    ra_pnt, dec_pnt : float
        Fixed pointing (deg ICRS) from the EVENTS header ``RA_PNT``/``DEC_PNT``
        (float64 there; the obs-index copy is float32).
    ontime : float
        Sum of the GTIs (s): Gammapy's ``observation_time_duration``.
    livetime : float
        ``ontime * (1 - (1 - DEADC))`` (s), DEADC from the EVENTS header.
    tstart : float
        Start of the first GTI (s since MJDREF).
    time_ref : Time
        MJDREF.
    location : EarthLocation or None
        From GEOLON/GEOLAT and GEOALT or ALTITUDE of the EVENTS header.
    aeff_thresholds : (float or None, float or None)
        ``LO_THRES``/``HI_THRES`` (TeV) of the effective-area header.
    bkg_reverse_lon : bool
        The background has reversed FoV longitudes
        (`gdask.dl3.Observation.background_fov_alignment`, old H.E.S.S. files).
    """

    obs_id: int
    ra_pnt: float
    dec_pnt: float
    ontime: float
    livetime: float
    tstart: float
    time_ref: Time
    location: EarthLocation | None
    aeff_thresholds: tuple[float | None, float | None] = (None, None)
    bkg_reverse_lon: bool = False

    @property
    def pointing(self) -> tuple[float, float]:
        """(ra, dec) in deg."""
        return self.ra_pnt, self.dec_pnt

    @property
    def time_start(self) -> Time:
        """Start of the first GTI as a Time."""
        return self.time_ref + self.tstart * u.s

    @classmethod
    def from_observation(cls, obs: Any) -> ObservationInfo:
        """Collect the facts from a `gdask.dl3.Observation` (FITS or archive store)."""
        events, gti = obs.events, obs.gti
        if events is None or gti is None:
            raise FormatError("the makers need events and GTI", obs_id=obs.obs_id, field="EVENTS")
        header = events.header
        mode = str(header.get("OBS_MODE", "POINTING")).strip().upper()
        if mode == "DRIFT":
            raise NotImplementedError(
                f"observation {obs.obs_id}: drift-mode pointing is not supported"
            )
        ra, dec = events.pointing
        start, stop = gti.start, gti.stop
        ontime = float(np.sum(stop - start))
        deadc = float(header.get("DEADC", events.ds.attrs.get("deadc", 1.0)))
        return cls(
            obs_id=int(obs.obs_id),
            ra_pnt=ra,
            dec_pnt=dec,
            ontime=ontime,
            livetime=ontime * (1.0 - (1.0 - deadc)),
            tstart=float(start[0]),
            time_ref=gti.time_reference,
            location=_location(header),
            aeff_thresholds=_aeff_thresholds(obs.irfs.get("aeff")),
            bkg_reverse_lon=obs.background_fov_alignment == "REVERSE_LON_RADEC",
        )


def _location(header: Any) -> EarthLocation | None:
    if "GEOLON" not in header or "GEOLAT" not in header:
        return None
    height = header.get("GEOALT", header.get("ALTITUDE"))
    if height is None:
        return None
    return EarthLocation(
        lon=float(header["GEOLON"]) * u.deg,
        lat=float(header["GEOLAT"]) * u.deg,
        height=float(height) * u.m,
    )


def _aeff_thresholds(aeff: Any) -> tuple[float | None, float | None]:
    if aeff is None:
        return None, None
    from astropy.io import fits

    text = aeff.ds.attrs.get("fits_header")
    header = fits.Header.fromstring(text) if text else {}
    out = []
    for key in ("LO_THRES", "HI_THRES"):
        value = header.get(key) if hasattr(header, "get") else None
        out.append(float(value) if value else None)  # 0 or missing: no threshold (as Gammapy)
    return out[0], out[1]

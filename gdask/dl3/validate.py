"""Physical plausibility of an observation's DL3 content, checked at ingest.

The readers check the *format* (HDUs, columns, units that convert); these
pure functions check that the *values* can be right: finite sky coordinates
within their ranges, positive energies in a range a gamma-ray instrument
measures, times and livetimes that fit together, IRFs that are not empty and
a migration pdf that integrates to at most one. Each returns a list of
`Issue`: an ``error`` where the data cannot be right (a wrong unit label, an
IRF of zeros or NaN), a ``warning`` where they may be (a few NaN events).
No Dask here; `gdask.archive.ingest` calls `validate_observation`.

Example
-------
>>> issues = validate_observation(obs, files={"events": "run.fits"})  # doctest: +SKIP
>>> warnings = raise_for_errors(issues)  # raises a FormatError on the first error
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdask.errors import FormatError

__all__ = [
    "Issue",
    "check_events",
    "check_times",
    "check_irf",
    "check_obs_row",
    "validate_observation",
    "raise_for_errors",
    "MJD_RANGE",
    "ENERGY_RANGE_TEV",
]

#: Plausible dates of an observation (MJD of 1950-01-01 and 2100-01-01).
MJD_RANGE = (33282.0, 88069.0)
#: Energies a gamma-ray instrument reconstructs, in TeV (1 MeV to 10 PeV).
ENERGY_RANGE_TEV = (1e-6, 1e4)
#: Accepted sky-coordinate ranges in deg (RA beyond [0, 360) occurs, e.g. MAGIC's 440 deg).
RA_RANGE = (-360.0, 720.0)
DEC_RANGE = (-90.0, 90.0)
#: Largest accepted integral of the migration pdf over migra (real IRFs reach 1.006).
EDISP_MAX_INTEGRAL = 1.05
#: Slack of the livetime <= ontime <= duration checks (real obs-indexes round: 1188 s vs 1184 s).
_REL, _ABS_S = 0.02, 10.0
#: Longest accepted ONTIME / LIVETIME in s (even without TSTART/TSTOP to compare with).
MAX_RUN_SECONDS = 1e9
#: obs-index columns GADF defines as numbers.
NUMERIC_OBS_COLUMNS = (
    "RA_PNT",
    "DEC_PNT",
    "ALT_PNT",
    "AZ_PNT",
    "ZEN_PNT",
    "ONTIME",
    "LIVETIME",
    "DEADC",
    "TSTART",
    "TSTOP",
    "EVENT_COUNT",
    "N_TELS",
)


@dataclass(frozen=True)
class Issue:
    """One problem found: ``severity`` is ``"error"`` or ``"warning"``."""

    severity: str
    message: str
    field: str
    file: str | None = None
    obs_id: int | None = None

    def to_error(self) -> FormatError:
        """The issue as a `FormatError` naming file, observation and field."""
        return FormatError(self.message, file=self.file, obs_id=self.obs_id, field=self.field)

    def __str__(self) -> str:
        return str(self.to_error())


def _finite_fraction_issues(
    values: np.ndarray, what: str, field: str, file: str | None, obs_id: int | None
) -> list[Issue]:
    """An error if no value is finite, a warning if some are not."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return []
    bad = ~np.isfinite(values)
    if bad.all():
        return [Issue("error", f"{what}: every value is NaN or infinite", field, file, obs_id)]
    if bad.any():
        return [
            Issue(
                "warning",
                f"{what}: {int(bad.sum())} of {values.size} values are NaN or infinite",
                field,
                file,
                obs_id,
            )
        ]
    return []


def _unit(events, name: str) -> str:
    return str(events.ds[name].attrs.get("units", "") or events._default_unit(name))


def check_events(
    events, *, energy_range: tuple[float, float] | None = None, obs_id: int | None = None
) -> list[Issue]:
    """Check an `~gdask.dl3.EventList`'s RA, DEC, ENERGY and TIME values.

    Parameters
    ----------
    events : EventList
        The events (units already checked convertible by the reader).
    energy_range : (float, float), optional
        The effective area's true-energy range in TeV; then most energies must
        lie within a factor 10 of it.
    obs_id : int, optional
        The observation named in the issues.
    """
    file = events.file
    obs_id = events.obs_id if obs_id is None else obs_id
    out: list[Issue] = []
    if events.n_events == 0:
        return out
    ra, dec = events.radec
    for name, values, (lo, hi) in (("RA", ra, RA_RANGE), ("DEC", dec, DEC_RANGE)):
        field = f"EVENTS.{name}"
        issues = _finite_fraction_issues(values, f"{name} of the events", field, file, obs_id)
        out += issues
        if any(i.severity == "error" for i in issues):
            continue
        finite = values[np.isfinite(values)]
        if finite.min() < lo or finite.max() > hi:
            out.append(
                Issue(
                    "error",
                    f"{name} values {finite.min():.6g}..{finite.max():.6g} deg (converted from "
                    f"{_unit(events, name)!r}) are outside [{lo:g}, {hi:g}] deg: is the unit "
                    "label right?",
                    field,
                    file,
                    obs_id,
                )
            )
    energy = events.energy.value
    field = "EVENTS.ENERGY"
    issues = _finite_fraction_issues(energy, "ENERGY of the events", field, file, obs_id)
    out += issues
    if not any(i.severity == "error" for i in issues):
        finite = energy[np.isfinite(energy)]
        if (finite <= 0).any():
            out.append(
                Issue(
                    "error",
                    f"{int((finite <= 0).sum())} event energies are zero or negative "
                    f"(min {finite.min():.6g} TeV)",
                    field,
                    file,
                    obs_id,
                )
            )
        else:
            median = float(np.median(finite))
            lo, hi = ENERGY_RANGE_TEV
            unit = _unit(events, "ENERGY")
            if not lo <= median <= hi:
                out.append(
                    Issue(
                        "error",
                        f"median event energy {median:.6g} TeV (converted from {unit!r}) is "
                        f"outside the plausible {lo:g}..{hi:g} TeV: is the unit label right?",
                        field,
                        file,
                        obs_id,
                    )
                )
            elif energy_range is not None:
                e_lo, e_hi = energy_range
                inside = np.mean((finite >= e_lo / 10) & (finite <= e_hi * 10))
                if inside < 0.5:
                    out.append(
                        Issue(
                            "error",
                            f"only {inside:.0%} of the event energies (converted from {unit!r}) "
                            f"lie within 10x of the effective area's {e_lo:.4g}..{e_hi:.4g} TeV: "
                            "is the unit label right?",
                            field,
                            file,
                            obs_id,
                        )
                    )
    out += _finite_fraction_issues(events.met, "TIME of the events", "EVENTS.TIME", file, obs_id)
    out += _pointing_issues(events, file, obs_id)
    return out


def _pointing_issues(events, file: str | None, obs_id: int | None) -> list[Issue]:
    """EVENTS header RA_PNT/DEC_PNT: in range; numbers written as strings are a warning."""
    out: list[Issue] = []
    header = events.header
    for key in ("RA_PNT", "DEC_PNT", "ONTIME", "LIVETIME", "DEADC", "TSTART", "TSTOP"):
        if isinstance(header.get(key), str):
            out.append(
                Issue(
                    "warning",
                    f"header keyword {key} is the string {header[key]!r} (GADF: a number); "
                    "read as a number",
                    f"EVENTS.{key}",
                    file,
                    obs_id,
                )
            )
    a = events.ds.attrs
    for key, name, (lo, hi) in (("RA_PNT", "ra_pnt", RA_RANGE), ("DEC_PNT", "dec_pnt", DEC_RANGE)):
        value = a.get(name)
        if value is not None and not (np.isfinite(value) and lo <= float(value) <= hi):
            out.append(
                Issue(
                    "error",
                    f"pointing {key} {float(value):.6g} deg is outside [{lo:g}, {hi:g}]",
                    f"EVENTS.{key}",
                    file,
                    obs_id,
                )
            )
    return out


def _livetime_issues(
    values: Mapping[str, Any], field_prefix: str, file: str | None, obs_id: int | None
) -> list[Issue]:
    """LIVETIME <= ONTIME <= TSTOP - TSTART, all finite and >= 0 (those present)."""
    out: list[Issue] = []
    nums: dict[str, float] = {}
    for key in ("LIVETIME", "ONTIME", "TSTART", "TSTOP", "DEADC"):
        v = values.get(key)
        if v is None or isinstance(v, str | bool):
            continue
        v = float(v)
        if not np.isfinite(v):
            out.append(Issue("error", f"{key} is {v}", f"{field_prefix}{key}", file, obs_id))
            continue
        nums[key] = v
    for key in ("LIVETIME", "ONTIME"):
        if nums.get(key, 0.0) > MAX_RUN_SECONDS:  # whatever else is known
            out.append(
                Issue(
                    "error",
                    f"{key} {nums[key]:.6g} s is longer than {MAX_RUN_SECONDS:g} s (30 years)",
                    f"{field_prefix}{key}",
                    file,
                    obs_id,
                )
            )
        if nums.get(key, 0.0) < 0:
            out.append(
                Issue(
                    "error",
                    f"{key} {nums[key]:.6g} s is negative",
                    f"{field_prefix}{key}",
                    file,
                    obs_id,
                )
            )
    if "DEADC" in nums and not 0.0 <= nums["DEADC"] <= 1.0:
        out.append(
            Issue(
                "error",
                f"DEADC {nums['DEADC']:.6g} is outside [0, 1]",
                f"{field_prefix}DEADC",
                file,
                obs_id,
            )
        )
    duration = nums["TSTOP"] - nums["TSTART"] if "TSTART" in nums and "TSTOP" in nums else None
    if duration is not None and duration < 0:
        out.append(
            Issue(
                "error",
                f"TSTOP {nums['TSTOP']:.10g} s is before TSTART {nums['TSTART']:.10g} s",
                f"{field_prefix}TSTOP",
                file,
                obs_id,
            )
        )
        duration = None
    for small, big, big_value in (
        ("LIVETIME", "ONTIME", nums.get("ONTIME")),
        ("ONTIME", "TSTOP - TSTART", duration),
        ("LIVETIME", "TSTOP - TSTART", duration if "ONTIME" not in nums else None),
    ):
        if (
            small in nums
            and big_value is not None
            and nums[small] > big_value * (1 + _REL) + _ABS_S
        ):
            out.append(
                Issue(
                    "error",
                    f"{small} {nums[small]:.6g} s exceeds {big} = {big_value:.6g} s",
                    f"{field_prefix}{small}",
                    file,
                    obs_id,
                )
            )
    return out


def _mjd_issue(
    mjdref: float | None, met: float | None, what: str, field: str, file, obs_id
) -> list[Issue]:
    if mjdref is None or met is None:
        return []
    mjd = float(mjdref) + float(met) / 86400.0
    lo, hi = MJD_RANGE
    if not np.isfinite(mjd) or not lo <= mjd <= hi:
        if lo <= float(mjdref) <= hi:  # the reference is plausible: the offset is not
            field = field.rsplit(".", 1)[0] + ".TSTART" if field.endswith("MJDREFI") else field
        return [
            Issue(
                "error",
                f"{what} is at MJD {mjd:.6g} (MJDREF {float(mjdref):.10g} + {float(met):.6g} s), "
                f"outside {lo:g}..{hi:g} (years 1950..2100)",
                field,
                file,
                obs_id,
            )
        ]
    return []


def check_times(events, gti, *, obs_id: int | None = None) -> list[Issue]:
    """Check the EVENTS header times (MJDREF, TSTART, ONTIME, LIVETIME, DEADC) and the GTI."""
    out: list[Issue] = []
    if events is not None:
        a = events.ds.attrs
        keys = {"livetime": "LIVETIME", "ontime": "ONTIME", "tstart": "TSTART", "tstop": "TSTOP"}
        header = {k: a[name] for name, k in keys.items() if name in a}
        if "deadc" in a:
            header["DEADC"] = a["deadc"]
        out += _livetime_issues(header, "EVENTS.", events.file, obs_id)
        out += _mjd_issue(
            a.get("mjdref"), a.get("tstart"), "the run start", "EVENTS.MJDREFI", events.file, obs_id
        )
    if gti is not None and len(gti):
        start = gti.start
        out += _finite_fraction_issues(start, "GTI START", "GTI.START", gti.file, obs_id)
        if np.isfinite(start).any():
            out += _mjd_issue(
                gti.ds.attrs.get("mjdref"),
                float(np.nanmin(start)),
                "the first GTI",
                "GTI.START",
                gti.file,
                obs_id,
            )
    return out


def _column_names(irf: Any) -> dict[str, str]:
    """Dataset variable -> FITS column of an IRF class (table and PSF classes spell it apart)."""
    specs = getattr(irf, "columns", ()) or getattr(irf, "_columns", ()) or ()
    return {spec.var: spec.column for spec in specs}


def check_irf(
    irf, hdu_type: str, *, file: str | None = None, obs_id: int | None = None
) -> list[Issue]:
    """Check one IRF: values not all NaN, AEFF/BKG/PSF not all zero, EDISP integral <= 1."""
    out: list[Issue] = []
    ext = str(irf.ds.attrs.get("extname", hdu_type.upper()))
    names = _column_names(irf)
    for var in irf.ds.data_vars:
        values = np.asarray(irf.ds[var].values, dtype=float)
        field = f"{ext}.{names.get(str(var), var)}"
        issues = _finite_fraction_issues(values, f"{hdu_type} {var}", field, file, obs_id)
        out += issues
        if any(i.severity == "error" for i in issues):
            continue
        if hdu_type in ("aeff", "bkg", "psf") and not (values[np.isfinite(values)] > 0).any():
            if hdu_type == "psf" and var != "psf":  # analytic PSF parameters may be <= 0
                continue
            out.append(
                Issue(
                    "error",
                    f"{hdu_type} {var} is zero (or negative) everywhere",
                    field,
                    file,
                    obs_id,
                )
            )
    if hdu_type == "edisp" and "migration_pdf" in irf.ds and not out:
        pdf = irf.ds["migration_pdf"].transpose("energy_true", "migra", "offset").values
        dmigra = np.diff(irf.edges("migra"))
        integral = np.nansum(np.asarray(pdf, float) * dmigra[None, :, None], axis=1)
        worst = float(np.max(integral)) if integral.size else 0.0
        if worst > EDISP_MAX_INTEGRAL:
            out.append(
                Issue(
                    "error",
                    f"the migration pdf integrates to up to {worst:.4g} over migra (at most 1 "
                    "for probabilities): are the MATRIX axes in the right order (TDIM)?",
                    f"{ext}.{names.get('migration_pdf', 'MATRIX')}",
                    file,
                    obs_id,
                )
            )
    return out


def check_obs_row(
    row: Mapping[str, Any], *, file: str | None = None, obs_id: int | None = None
) -> list[Issue]:
    """Check an obs-index row: GADF's numeric columns hold numbers that fit together."""
    out: list[Issue] = []
    for key in NUMERIC_OBS_COLUMNS:
        value = row.get(key)
        if isinstance(value, str):
            out.append(
                Issue(
                    "error",
                    f"obs-index column {key} holds the string {value!r}; GADF requires a number",
                    key,
                    file,
                    obs_id,
                )
            )
    out += _livetime_issues(row, "", file, obs_id)
    for key, (lo, hi) in (("RA_PNT", RA_RANGE), ("DEC_PNT", DEC_RANGE)):
        v = row.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool) and not lo <= v <= hi:
            out.append(
                Issue(
                    "error",
                    f"obs-index {key} {v:.6g} deg is outside [{lo:g}, {hi:g}]",
                    key,
                    file,
                    obs_id,
                )
            )
    return out


def validate_observation(
    obs,
    *,
    files: Mapping[str, str] | None = None,
    index_file: str | None = None,
    obs_row: Mapping[str, Any] | None = None,
) -> list[Issue]:
    """All checks of an `~gdask.dl3.Observation`: events, times, IRFs and its obs-index row.

    Parameters
    ----------
    obs : Observation
        As read by `~gdask.dl3.read_observation`.
    files : mapping, optional
        The file of each HDU type (``{"aeff": "run.fits"}``), named in the issues.
    index_file : str, optional
        The obs-index file, named in issues of the obs-index row.
    obs_row : mapping, optional
        The obs-index row to check (default ``obs.meta``); pass
        `~gdask.dl3.DL3Index.obs_values` to catch infinite values.
    """
    files = files or {}
    obs_id = int(obs.obs_id)
    out = check_obs_row(obs.meta if obs_row is None else obs_row, file=index_file, obs_id=obs_id)
    aeff = obs.irfs.get("aeff")
    energy_range = None
    if aeff is not None:
        edges = np.asarray(aeff.edges("energy_true"), dtype=float)
        if np.isfinite(edges).all() and edges.size:
            energy_range = (float(edges.min()), float(edges.max()))
    if obs.events is not None:
        out += check_events(obs.events, energy_range=energy_range, obs_id=obs_id)
    out += check_times(obs.events, obs.gti, obs_id=obs_id)
    for hdu_type, irf in obs.irfs.items():
        out += check_irf(irf, hdu_type, file=files.get(hdu_type), obs_id=obs_id)
    return out


def raise_for_errors(issues: list[Issue]) -> list[str]:
    """Raise the first error as a `FormatError` (noting how many more); return the warnings."""
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        first = errors[0]
        more = (
            f" (and {len(errors) - 1} more problem(s): "
            + "; ".join(f"{e.field}: {e.message}" for e in errors[1:])
            + ")"
            if len(errors) > 1
            else ""
        )
        raise FormatError(
            first.message + more, file=first.file, obs_id=first.obs_id, field=first.field
        )
    return [f"{i.message} [field {i.field}]" for i in issues if i.severity == "warning"]

"""Validation of configuration documents: sections, typed values, paths and the YAML loader.

Shared by the analysis configuration (`gdask.config.analysis`) and the joint
run configuration: every problem is a `~gdask.errors.ConfigError` whose
message starts with the key path (``datasets.geom.wcs.binsz: must be > 0``).

Examples
--------
>>> sec = Section({"binsz": 0.02}, "datasets.geom.wcs")
>>> as_number(sec.take("binsz"), sec.key("binsz"), positive=True)
0.02
>>> sec.take("proj", "CAR")
'CAR'
>>> sec.done()
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gdask.errors import ConfigError

__all__ = [
    "MISSING",
    "MAX_NBIN",
    "Section",
    "fail",
    "as_number",
    "as_int",
    "as_bool",
    "as_str",
    "as_list",
    "as_energy",
    "as_path",
    "as_store_path",
    "check_nbin",
    "read_yaml",
]

#: most bins of one energy axis
MAX_NBIN = 1000
#: marks a required key (`Section.take` without a default)
MISSING = object()


class Section:
    """A mapping being validated: ``take`` keys one by one, then ``done`` rejects the rest."""

    def __init__(self, value: Any, path: str) -> None:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(
                f"{path or '<top>'}: must be a mapping, got {type(value).__name__}",
                field=path or None,
            )
        self.data = dict(value)
        self.path = path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def take(self, name: str, default: Any = MISSING) -> Any:
        if name in self.data:
            return self.data.pop(name)
        if default is MISSING:
            fail(self.key(name), "required")
        return default

    def section(self, name: str) -> Section:
        return Section(self.take(name, None), self.key(name))

    def done(self) -> None:
        for name in self.data:
            fail(self.key(str(name)), "unknown key")


def fail(path: str, message: str) -> None:
    """Raise the `ConfigError` ``"<path>: <message>"`` naming ``path`` as its field."""
    raise ConfigError(f"{path}: {message}", field=path)


def as_number(value: Any, path: str, *, positive: bool = False, nonneg: bool = False) -> float:
    """``value`` as a float (not a bool), optionally > 0 or >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(path, f"must be a number, got {type(value).__name__} {value!r}")
    if positive and not value > 0:
        fail(path, f"must be > 0, got {value}")
    if nonneg and not value >= 0:
        fail(path, f"must be >= 0, got {value}")
    return float(value)


def as_int(value: Any, path: str, *, positive: bool = False) -> int:
    """``value`` as an int (not a bool), optionally > 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(path, f"must be an integer, got {type(value).__name__} {value!r}")
    if positive and value <= 0:
        fail(path, f"must be > 0, got {value}")
    return int(value)


def as_bool(value: Any, path: str) -> bool:
    """``value`` if it is true or false."""
    if not isinstance(value, bool):
        fail(path, f"must be true or false, got {value!r}")
    return value


def as_str(value: Any, path: str, choices: tuple[str, ...] | None = None) -> str:
    """``value`` as a string, optionally one of ``choices``."""
    if not isinstance(value, str):
        fail(path, f"must be a string, got {type(value).__name__} {value!r}")
    if choices is not None and value not in choices:
        fail(path, f"must be one of {list(choices)}, got {value!r}")
    return value


def as_list(value: Any, path: str, item: Callable[[Any, str], Any]) -> tuple:
    """A list validated item by item with ``item(value, "<path>[i]")``."""
    if not isinstance(value, list | tuple):
        fail(path, f"must be a list, got {type(value).__name__} {value!r}")
    return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))


def as_energy(value: Any, path: str, unit: str) -> float:
    """An energy in TeV from a number (in ``unit``) or a string such as ``"0.7 TeV"``."""
    import astropy.units as u

    if isinstance(value, str):
        try:
            q = u.Quantity(value)
            out = (
                q.to_value(u.TeV)
                if q.unit != u.dimensionless_unscaled
                else (q.value * u.Unit(unit)).to_value(u.TeV)
            )
        except (ValueError, TypeError, u.UnitsError) as exc:
            fail(path, f"not an energy: {value!r} ({exc})")
    else:
        out = (as_number(value, path) * u.Unit(unit)).to_value(u.TeV)
    if not out > 0:
        fail(path, f"must be > 0, got {value}")
    return float(out)


def as_path(value: Any, path: str, base: Path) -> Path:
    p = Path(as_str(value, path)).expanduser()
    return p if p.is_absolute() else (base / p)


def as_store_path(value: Any, path: str, base: Path) -> Path:
    """A zarr store folder: absent (created later) or a directory, never a file."""
    p = as_path(value, path, base)
    if p.exists() and not p.is_dir():
        fail(path, f"{p} exists and is not a directory (a zarr store is a folder)")
    return p


def check_nbin(n: int, path: str) -> int:
    """``n`` if it is at most `MAX_NBIN` energy bins."""
    if n > MAX_NBIN:
        fail(path, f"{n} energy bins is more than the maximum of {MAX_NBIN}")
    return n


def read_yaml(p: Path) -> Any:
    """The parsed YAML document of a config file (UTF-8), or a ConfigError naming it."""
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r})",
            file=str(p),
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc}", file=str(p)) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=str(p)) from exc

"""Interpolation of tables (pure numpy): value scales, cell location, regular grids.

The one interpolation module of gdask: the IRF tables (`gdask.dl3.irf`), the
fast sky-grid IRF evaluation (`gdask.dl3.irf.fast`) and the tabulated spectral
models (`gdask.models`) share its scales (`scale_forward`, `scale_inverse`:
``"lin"``, ``"log"``, ``"sqrt"``) and its cell location (`locate`).

The semantics follow what Gammapy 2.1 does for its IRFs, so that gdask and
Gammapy agree to float rounding:

- each axis is interpolated in its own scale (``"log"`` for energies,
  ``"lin"`` otherwise) between the bin *centres* (nodes);
- the values can be interpolated in ``"lin"`` or ``"log"`` scale; the log
  scale clips values at the smallest normal number of their dtype (so zeros
  become ``log(tiny)``) and maps results below ``2 * tiny(float64)`` back to 0;
- axes with a single node are ignored (the table is constant along them);
- outside the nodes the interpolation extrapolates linearly (in the scaled
  space) from the outermost cell, and results are clipped at zero;
- optionally, points outside the axis *edges* (``x < edges[0]`` or
  ``x > edges[-1]`` or not finite) get ``fill_value``, as do non-finite
  results. Which axes must be outside for a point to be filled is chosen by
  ``outside_mode``: ``"any"`` (default) or a callable combining the per-axis
  flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product

import numpy as np

__all__ = [
    "locate",
    "scale_forward",
    "scale_inverse",
    "interpolate_grid",
    "outside_edges",
    "GridInterpolator",
]

_TINY64 = np.finfo(np.float64).tiny


def scale_forward(values: np.ndarray, scale: str) -> np.ndarray:
    """Map values (or coordinates) to the interpolation scale ``"lin"``, ``"log"`` or ``"sqrt"``.

    ``"log"`` clips at the smallest normal number of the array's float dtype
    and takes the logarithm in that dtype (as Gammapy does); ``"sqrt"`` is
    ``sign(v) sqrt(|v|)``.

    Examples
    --------
    >>> scale_forward(np.array([1.0, 4.0]), "sqrt")
    array([1., 2.])
    """
    values = np.asarray(values)
    if scale in ("lin", "linear"):
        return values
    if scale == "sqrt":
        return np.sign(values) * np.sqrt(np.abs(values))
    if scale == "log":
        dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float32
        tiny = np.finfo(dtype).tiny
        with np.errstate(invalid="ignore"):
            return np.log(np.clip(values, tiny, np.inf))
    raise ValueError(f"unknown interpolation scale {scale!r}")


def scale_inverse(values: np.ndarray, scale: str) -> np.ndarray:
    """Inverse of `scale_forward` (log: exp, with results below 2 tiny set to 0)."""
    if scale in ("lin", "linear"):
        return values
    if scale == "sqrt":
        return np.power(values, 2)
    out = np.exp(values)
    return np.where(np.abs(out) - _TINY64 <= _TINY64, 0.0, out)


def locate(xp: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell index (clipped to the grid) and fractional position of ``x`` on nodes ``xp``.

    Outside the nodes the index is that of the outermost cell and the fraction
    is below 0 or above 1 (linear extrapolation).

    Examples
    --------
    >>> locate(np.array([0.0, 1.0, 3.0]), np.array([0.5, 2.0, 4.0]))
    (array([0, 1, 1]), array([0.5, 0.5, 1.5]))
    """
    i = np.searchsorted(xp, x, side="right") - 1
    i = np.clip(i, 0, xp.size - 2)
    with np.errstate(invalid="ignore"):
        t = (x - xp[i]) / (xp[i + 1] - xp[i])
    return i, t


def interpolate_grid(
    nodes: Sequence[np.ndarray],
    values_scaled: np.ndarray,
    coords: Sequence[np.ndarray],
    *,
    scales: Sequence[str],
    method: str = "linear",
) -> np.ndarray:
    """Multilinear (or nearest) interpolation with linear extrapolation.

    Parameters
    ----------
    nodes : sequence of 1-d arrays
        Grid nodes per axis, in their natural units (increasing).
    values_scaled : ndarray
        Grid values, already in the value scale, shape ``[len(n) for n in nodes]``.
    coords : sequence of arrays
        Coordinates per axis; broadcast together.
    scales : sequence of {"lin", "log"}
        Scale of each axis.
    method : {"linear", "nearest"}

    Returns
    -------
    ndarray
        Interpolated (still scaled) values with the broadcast shape of ``coords``.
    """
    coords = np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in coords])
    shape = coords[0].shape if coords else ()
    active = [k for k, n in enumerate(nodes) if len(n) > 1]
    table = np.asarray(values_scaled, dtype=float)
    # drop single-node axes (the table is constant along them)
    table = table.reshape([len(nodes[k]) for k in active]) if active else table.reshape(())
    if not active:
        return np.broadcast_to(table, shape).copy()
    idx, frac = [], []
    for k in active:
        xp = np.asarray(scale_forward(np.asarray(nodes[k], dtype=float), scales[k]), dtype=float)
        x = scale_forward(coords[k], scales[k])
        i, t = locate(xp, x)
        idx.append(i)
        frac.append(t)
    if method == "nearest":
        sel = tuple(np.where(t <= 0.5, i, i + 1) for i, t in zip(idx, frac, strict=True))
        out = table[sel].astype(float)
        nan = np.zeros(shape, bool)
        for t in frac:
            nan |= np.isnan(t)
        out[nan] = np.nan
        return out
    if method != "linear":
        raise ValueError(f"unknown interpolation method {method!r}")
    out = np.zeros(shape, dtype=float)
    for corner in product((0, 1), repeat=len(active)):
        weight = np.ones(shape, dtype=float)
        cell: list[np.ndarray] = []
        for c, i, t in zip(corner, idx, frac, strict=True):
            weight = weight * (t if c else 1.0 - t)
            cell.append(i + c)
        out += table[tuple(cell)] * weight
    return out


def outside_edges(edges: Sequence[np.ndarray], coords: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per axis, whether each coordinate lies outside ``[edges[0], edges[-1]]`` or is not finite."""
    coords = np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in coords])
    out = []
    for e, x in zip(edges, coords, strict=True):
        with np.errstate(invalid="ignore"):
            out.append(~np.isfinite(x) | (x < e[0]) | (x > e[-1]))
    return out


class GridInterpolator:
    """Interpolator of a table on a regular (rectilinear) grid.

    Parameters
    ----------
    nodes : sequence of 1-d arrays
        Node (bin centre) coordinates per axis.
    values : ndarray
        Table values, shape ``[len(n) for n in nodes]``.
    scales : sequence of {"lin", "log"}, optional
        Interpolation scale per axis (default all ``"lin"``).
    values_scale : {"lin", "log"}
        Scale the values are interpolated in.
    edges : sequence of 1-d arrays, optional
        Bin edges per axis, used with ``fill_value``.
    fill_value : float or None
        Value for points outside the edges (None: extrapolate everywhere).
    outside_mode : "any" or callable
        How per-axis outside flags combine into the fill mask.
    method : {"linear", "nearest"}
    clip : bool
        Clip results at zero (before filling).
    """

    def __init__(
        self,
        nodes: Sequence[np.ndarray],
        values: np.ndarray,
        *,
        scales: Sequence[str] | None = None,
        values_scale: str = "lin",
        edges: Sequence[np.ndarray] | None = None,
        fill_value: float | None = 0.0,
        outside_mode: str | Callable[[list[np.ndarray]], np.ndarray] = "any",
        method: str = "linear",
        clip: bool = True,
    ) -> None:
        self.nodes = [np.asarray(n, dtype=float) for n in nodes]
        values = np.asarray(values)
        if values.shape != tuple(n.size for n in self.nodes):
            raise ValueError(f"values shape {values.shape} does not match the nodes")
        self.scales = list(scales) if scales is not None else ["lin"] * len(self.nodes)
        self.values_scale = values_scale
        self.values_scaled = np.asarray(scale_forward(values, values_scale), dtype=float)
        self.edges = None if edges is None else [np.asarray(e, dtype=float) for e in edges]
        self.fill_value = fill_value
        self.outside_mode = outside_mode
        self.method = method
        self.clip = clip
        if fill_value is not None and self.edges is None:
            raise ValueError("fill_value needs edges")

    def __call__(self, *coords: np.ndarray, method: str | None = None) -> np.ndarray:
        """Evaluate at coordinates (one array per axis, broadcast together)."""
        if len(coords) != len(self.nodes):
            raise ValueError(f"expected {len(self.nodes)} coordinate arrays, got {len(coords)}")
        out = interpolate_grid(
            self.nodes, self.values_scaled, coords, scales=self.scales, method=method or self.method
        )
        out = np.asarray(scale_inverse(out, self.values_scale), dtype=float)
        if self.clip:
            out = np.clip(out, 0.0, np.inf)
        if self.fill_value is not None and self.edges is not None:  # (__init__: both or neither)
            flags = outside_edges(self.edges, coords)
            mode = self.outside_mode
            if mode == "any":
                mask = np.any(flags, axis=0) if flags else np.zeros(out.shape, bool)
            elif callable(mode):
                mask = mode(flags)
            else:
                raise ValueError(f"outside_mode must be 'any' or a callable, got {mode!r}")
            out = np.where(mask | ~np.isfinite(out), self.fill_value, out)
        return out

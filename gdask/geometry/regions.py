"""ON/OFF and exclusion regions: containment masks for events and pixels.

Sky regions are those of the `regions` package (``CircleSkyRegion``,
``EllipseSkyRegion``, ``RectangleSkyRegion``, ``PolygonSkyRegion``, compound
regions, ds9 files). Containment of sky positions is decided in a gnomonic
(TAN) projection centred on the region, as Gammapy's ``RegionGeom`` does, so
event selections agree with Gammapy's. Point-like analyses use `RadMaxRegion`:
a point with an energy-dependent radius (the IRF's RAD_MAX cut).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.coordinates import Angle, SkyCoord, angular_separation
from astropy.wcs import WCS
from numpy.typing import ArrayLike, NDArray
from regions import (
    CircleSkyRegion,
    CompoundSkyRegion,
    PixCoord,
    PixelRegion,
    PointSkyRegion,
    Regions,
    SkyRegion,
)

from gdask.errors import FileReadError, FormatError

__all__ = [
    "circle_region",
    "parse_regions",
    "read_ds9",
    "region_center",
    "region_wcs",
    "region_contains",
    "regions_pixel_mask",
    "RadMaxRegion",
]


def circle_region(lon: float, lat: float, radius: float, frame: str = "icrs") -> CircleSkyRegion:
    """Circle of ``radius`` deg at (lon, lat) deg in ``frame``."""
    center = SkyCoord(lon, lat, unit="deg", frame=frame)
    return CircleSkyRegion(center=center, radius=Angle(radius, "deg"))


def parse_regions(regions: Any) -> list[SkyRegion | PixelRegion]:
    """List of regions from a region, a list, a ``Regions`` object, a ds9 string or a SkyCoord."""
    if regions is None:
        return []
    if isinstance(regions, str):
        return list(Regions.parse(regions, format="ds9"))
    if isinstance(regions, SkyRegion | PixelRegion):
        return [regions]
    if isinstance(regions, SkyCoord):
        return [PointSkyRegion(center=c) for c in np.atleast_1d(regions)]
    return list(regions)


def read_ds9(path: str | Path) -> list[SkyRegion | PixelRegion]:
    """Regions of a ds9 region file."""
    path = Path(path)
    if not path.exists():
        raise FileReadError("region file not found", file=str(path))
    try:
        return list(Regions.read(str(path), format="ds9"))
    except Exception as exc:  # the regions parser raises many types
        raise FormatError(f"cannot parse ds9 regions: {exc}", file=str(path)) from exc


def _flatten(region: SkyRegion) -> list[SkyRegion]:
    if isinstance(region, CompoundSkyRegion):
        return _flatten(region.region1) + _flatten(region.region2)
    return [region]


def region_center(region: SkyRegion) -> SkyCoord:
    """Centre of a region; for a compound region the mean direction of its parts."""
    parts = _flatten(region)
    if len(parts) == 1:
        return parts[0].center
    frame = parts[0].center.frame.name
    xyz = np.sum([p.center.transform_to(frame).cartesian.xyz.value for p in parts], axis=0)
    lon = np.arctan2(xyz[1], xyz[0])
    lat = np.arctan2(xyz[2], np.hypot(xyz[0], xyz[1]))
    return SkyCoord(np.rad2deg(lon) % 360.0, np.rad2deg(lat), unit="deg", frame=frame)


def region_wcs(region: SkyRegion, binsz: float = 0.1) -> WCS:
    """TAN projection centred on the region (in the frame of its centre)."""
    from gdask.geometry.wcs import WcsGeom

    center = region_center(region)
    frame = "galactic" if center.frame.name == "galactic" else "icrs"
    return WcsGeom.create(skydir=center, binsz=binsz, npix=1, frame=frame, proj="TAN").wcs


def region_contains(
    region: SkyRegion | list[SkyRegion],
    lon: ArrayLike | SkyCoord,
    lat: ArrayLike | None = None,
    frame: str = "icrs",
    wcs: WCS | None = None,
) -> NDArray[np.bool_]:
    """Mask of sky positions inside a region (or inside any of a list of regions).

    Parameters
    ----------
    region : SkyRegion or list
        Region(s). Point regions have no area: use `RadMaxRegion` for them.
    lon, lat : array_like
        Positions in deg in ``frame`` (or ``lon`` a SkyCoord and ``lat`` None).
    frame : str
        Frame of ``lon``/``lat``.
    wcs : WCS, optional
        Projection in which containment is decided; by default a TAN
        projection centred on each region.
    """
    sky = lon if isinstance(lon, SkyCoord) else SkyCoord(lon, lat, unit="deg", frame=frame)
    mask = np.zeros(sky.shape, dtype=bool)
    for reg in parse_regions(region):
        if not isinstance(reg, SkyRegion):
            raise TypeError(f"region_contains needs sky regions, got {type(reg).__name__}")
        if any(isinstance(p, PointSkyRegion) for p in _flatten(reg)):
            raise ValueError("a PointSkyRegion contains no area; use RadMaxRegion")
        mask |= np.asarray(reg.contains(sky, wcs if wcs is not None else region_wcs(reg)))
    return mask


def regions_pixel_mask(
    regions: list[SkyRegion | PixelRegion], wcs: WCS, shape: tuple[int, int]
) -> NDArray[np.bool_]:
    """Mask ``shape = (ny, nx)`` of pixels of ``wcs`` whose centre lies in any region.

    A ``PointSkyRegion`` marks the pixels within one pixel of the point in both
    axes (those with non-zero bilinear weight), as Gammapy does.
    """
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    mask = np.zeros(shape, dtype=bool)
    for reg in regions:
        parts = _flatten(reg) if isinstance(reg, SkyRegion) else [reg]
        points = [p for p in parts if isinstance(p, PointSkyRegion)]
        for p in points:
            x0, y0 = p.center.to_pixel(wcs)
            mask |= (np.abs(xx - x0) < 1) & (np.abs(yy - y0) < 1)
        if len(points) == len(parts) and points:
            continue
        if points:  # compound with some points: handle the extended parts one by one
            others = [p for p in parts if not isinstance(p, PointSkyRegion)]
        else:
            others = [reg]
        for other in others:
            pix = other.to_pixel(wcs) if isinstance(other, SkyRegion) else other
            mask |= np.asarray(pix.contains(PixCoord(xx, yy)), dtype=bool)
    return mask


@dataclass(frozen=True)
class RadMaxRegion:
    """A point-like ON region: a position with an energy-dependent radius (RAD_MAX).

    Parameters
    ----------
    center : SkyCoord
        Region centre.
    energy_edges : ndarray
        Reconstructed-energy bin edges (TeV) of the RAD_MAX table, ``n + 1``.
    rad_max : ndarray
        Radius in deg per energy bin, ``n`` (already taken at the observation's
        offset, see `from_table`).
    fill_value : float or None
        Radius for energies outside ``energy_edges`` (0 selects nothing, as
        Gammapy does for a RAD_MAX_2D table read from file); None extends the
        first and last values (Gammapy's fixed RAD_MAX keyword).
    """

    center: SkyCoord
    energy_edges: NDArray[np.float64]
    rad_max: NDArray[np.float64]
    fill_value: float | None = 0.0

    def __post_init__(self) -> None:
        edges = np.asarray(self.energy_edges, dtype=float)
        rad = np.atleast_1d(np.asarray(self.rad_max, dtype=float))
        if edges.ndim != 1 or rad.shape != (edges.size - 1,):
            raise FormatError("rad_max needs one value per energy bin", field="RAD_MAX")
        object.__setattr__(self, "energy_edges", edges)
        object.__setattr__(self, "rad_max", rad)

    @classmethod
    def fixed(
        cls, center: SkyCoord, radius: float, emin: float = 1e-6, emax: float = 1e6
    ) -> RadMaxRegion:
        """Energy-independent radius (the global RAD_MAX keyword of point-like IRFs)."""
        return cls(center, np.array([emin, emax]), np.array([radius]), fill_value=None)

    @classmethod
    def from_table(
        cls,
        center: SkyCoord,
        energy_edges: ArrayLike,
        offset_edges: ArrayLike,
        rad_max_2d: ArrayLike,
        offset: float,
        fill_value: float | None = 0.0,
    ) -> RadMaxRegion:
        """Radius vs energy at ``offset`` deg from a RAD_MAX_2D table ``(energy, offset)``.

        The offset bin is chosen by nearest bin centre (as Gammapy's "nearest"
        evaluation of RadMax2D); an offset outside the table gives
        ``fill_value`` at all energies (unless it is None).
        """
        off_edges = np.asarray(offset_edges, dtype=float)
        centres = 0.5 * (off_edges[:-1] + off_edges[1:])
        table = np.asarray(rad_max_2d, dtype=float)
        i = _nearest_node(np.asarray([offset], dtype=float), centres)[0]
        values = table[:, i].copy()
        if fill_value is not None and not off_edges[0] <= offset <= off_edges[-1]:
            values[:] = fill_value
        return cls(center, np.asarray(energy_edges, dtype=float), values, fill_value=fill_value)

    @property
    def is_fixed(self) -> bool:
        """True if the radius does not depend on energy."""
        return bool(np.all(self.rad_max == self.rad_max[0]))

    def radius(self, energy: ArrayLike) -> NDArray[np.float64]:
        """RAD_MAX in deg at reconstructed ``energy`` (TeV).

        Nearest energy node in log scale, nodes being the bin centres
        (Gammapy's ``method="nearest"``); ``fill_value`` outside the edges.
        """
        edges = self.energy_edges
        log_centres = 0.5 * (np.log(edges[:-1]) + np.log(edges[1:]))
        energy = np.asarray(energy, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(energy)
        radius = self.rad_max[_nearest_node(x, log_centres)]
        if self.fill_value is not None:
            with np.errstate(invalid="ignore"):
                outside = ~((energy >= edges[0]) & (energy <= edges[-1]))
            radius = np.where(outside, self.fill_value, radius)
        return radius

    def contains(
        self,
        lon: ArrayLike | SkyCoord,
        lat: ArrayLike | None,
        energy: ArrayLike,
        frame: str = "icrs",
    ) -> NDArray[np.bool_]:
        """Events within RAD_MAX(energy) of the centre (``separation <= rad_max``)."""
        sky = lon if isinstance(lon, SkyCoord) else SkyCoord(lon, lat, unit="deg", frame=frame)
        sky = sky.transform_to(self.center.frame)
        sep = angular_separation(
            self.center.spherical.lon.rad,
            self.center.spherical.lat.rad,
            sky.spherical.lon.rad,
            sky.spherical.lat.rad,
        )
        return np.rad2deg(np.asarray(sep)) <= self.radius(energy)

    def to_circle(self, energy: float) -> CircleSkyRegion:
        """The circle at one energy."""
        return CircleSkyRegion(center=self.center, radius=Angle(float(self.radius(energy)), "deg"))


def _nearest_node(x: NDArray, nodes: NDArray) -> NDArray[np.intp]:
    """Index of the nearest node (ties to the lower node), clipped to the ends."""
    if nodes.size == 1:
        return np.zeros(np.shape(x), dtype=np.intp)
    i = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, nodes.size - 2)
    with np.errstate(invalid="ignore"):
        frac = (x - nodes[i]) / (nodes[i + 1] - nodes[i])
    return np.where(frac <= 0.5, i, i + 1).astype(np.intp)

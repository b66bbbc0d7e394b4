"""Reflected-regions and wobble OFF-region finders, and exclusion masks.

Pure functions and small frozen dataclasses (numpy/astropy/regions, no Dask).
The algorithms are those of Gammapy 2.1 (``ReflectedRegionsFinder``,
``WobbleRegionsFinder``), step for step, so that the same OFF regions come out:

- a reference grid: TAN projection centred on the rotation point (the
  pointing), pixel size ``binsz`` (0.01 deg), width ``4 * d + 0.3`` deg with
  ``d`` the distance ON-region centre to pointing;
- the exclusion mask is looked up at the reference pixel centres (nearest
  pixel; positions off the mask are allowed);
- the ON region is converted to a pixel region of the reference grid and
  rotated around the pointing pixel; a trial region is rejected if it contains
  the centre of any excluded reference pixel.

An exclusion mask is an ``xarray.DataArray`` of booleans on dims
``("lat", "lon")`` whose ``attrs`` carry the WCS (`WcsGeom.to_attrs`), with
Gammapy's convention: True where the sky may be used, False where excluded.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.coordinates import Angle, SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from numpy.typing import NDArray
from regions import (
    CirclePixelRegion,
    CircleSkyRegion,
    PixCoord,
    PixelRegion,
    PointSkyRegion,
    SkyRegion,
)

from gdask.errors import FileReadError, FormatError
from gdask.geometry import SKY_DIMS, WcsGeom, regions_pixel_mask

__all__ = [
    "ReflectedRegionsFinder",
    "WobbleRegionsFinder",
    "find_reflected_regions",
    "make_exclusion_mask",
    "read_exclusion_mask",
    "exclusion_mask_geom",
    "reference_geom",
    "as_exclusion_mask",
    "off_region_centers",
    "regions_radii",
]

FULL_CIRCLE = 2 * np.pi


# -- exclusion masks ---------------------------------------------------------------


def make_exclusion_mask(geom: WcsGeom, regions: Any) -> xr.DataArray:
    """Exclusion mask on ``geom``: False in pixels whose centre is inside any region.

    Parameters
    ----------
    geom : WcsGeom
        The grid.
    regions : region, list of regions, ds9 string
        The excluded regions.
    """
    data = ~geom.region_mask(regions)
    return xr.DataArray(data, dims=SKY_DIMS, attrs=geom.to_attrs(), name="exclusion_mask")


def read_exclusion_mask(path: str | Path, hdu: int | str = 0) -> xr.DataArray:
    """Read a FITS image (e.g. ``exclusion_mask_crab.fits.gz``) as a boolean exclusion mask.

    Non-zero pixels are usable (Gammapy's convention), zeros are excluded.
    """
    path = Path(path)
    if not path.exists():
        raise FileReadError("exclusion mask file not found", file=str(path))
    with fits.open(path) as hdul:
        image = hdul[hdu]
        if image.data is None:
            raise FormatError("HDU has no image data", file=str(path), field=str(hdu))
        data = np.asarray(image.data)
        header = image.header.copy()
    if data.ndim > 2:  # squash extra (length-1) axes as Gammapy's sum_over_axes does
        data = data.reshape((-1,) + data.shape[-2:]).sum(axis=0)
    geom = WcsGeom.from_header(header)
    if geom.shape != data.shape:
        raise FormatError(
            f"image shape {data.shape} does not match the WCS {geom.shape}", file=str(path)
        )
    return xr.DataArray(
        data.astype(bool), dims=SKY_DIMS, attrs=geom.to_attrs(), name="exclusion_mask"
    )


def exclusion_mask_geom(mask: xr.DataArray) -> WcsGeom:
    """The grid of an exclusion mask."""
    return WcsGeom.from_dataset(mask)


def reference_geom(region: SkyRegion, center: SkyCoord, binsz: float = 0.01) -> WcsGeom:
    """The reference grid of the finders: TAN at ``center``, width ``4 * d + 0.3`` deg."""
    frame = region.center.frame.name
    frame = "galactic" if frame == "galactic" else "icrs"
    width = 4 * region.center.separation(center).deg + 0.3
    return WcsGeom.create(skydir=center, binsz=binsz, width=width, frame=frame, proj="TAN")


def _excluded_pixels(ref: WcsGeom, exclusion_mask: xr.DataArray | None) -> PixCoord:
    """Reference pixels that are excluded (nearest mask pixel False; off-mask is allowed)."""
    if exclusion_mask is None:
        return PixCoord(np.zeros(0), np.zeros(0))
    mgeom = exclusion_mask_geom(exclusion_mask)
    lon, lat = ref.get_coord()
    if mgeom.frame == ref.frame:
        ix, iy = mgeom.coord_to_idx(lon, lat)
    else:
        ix, iy = mgeom.coord_to_idx(SkyCoord(lon, lat, unit="deg", frame=ref.frame))
    values = np.asarray(exclusion_mask.values, dtype=bool)
    allowed = np.ones(ref.shape, dtype=bool)
    inside = (ix >= 0) & (iy >= 0)
    allowed[inside] = values[iy[inside], ix[inside]]
    pix_y, pix_x = np.nonzero(~allowed)
    return PixCoord(pix_x, pix_y)


# -- finders --------------------------------------------------------------------------


def _angle(value: Any) -> float:
    """An angle in rad from a float (rad), a string or a Quantity."""
    if isinstance(value, int | float | np.floating):
        return float(value)
    return float(Angle(value).to_value(u.rad))


def _region_angular_size(region: SkyRegion, ref: WcsGeom, center_pix: PixCoord) -> float:
    """Largest angle (rad) subtended at ``center_pix`` by the reference pixels inside ``region``."""
    mask = regions_pixel_mask([region], ref.wcs, ref.shape)
    pix_y, pix_x = np.nonzero(mask)
    angles = Angle(np.arctan2(center_pix.x - pix_x, center_pix.y - pix_y), "rad")
    size = np.max(angles) - np.min(angles)
    if size.value > np.pi:
        wrapped = angles.wrap_at(0 * u.rad)
        size = np.max(wrapped) - np.min(wrapped)
    return float(size.to_value(u.rad))


@dataclass(frozen=True)
class ReflectedRegionsFinder:
    """Reflected regions: the ON region rotated around the pointing, avoiding exclusions.

    Defaults are Gammapy 2.1's. Angles are in rad (floats) or anything
    `astropy.coordinates.Angle` accepts; ``binsz`` is in deg.

    Parameters
    ----------
    angle_increment : float or str
        Rotation step after a rejected trial region.
    min_distance : float or str
        Extra angle between consecutive OFF regions.
    min_distance_input : float or str
        Extra angle between the ON region and the first/last OFF region.
    max_region_number : int
        Stop after this many regions.
    binsz : float
        Pixel size (deg) of the reference grid.
    """

    angle_increment: float | str = 0.1
    min_distance: float | str = 0.0
    min_distance_input: float | str = 0.1
    max_region_number: int = 10000
    binsz: float = 0.01

    def __post_init__(self) -> None:
        if _angle(self.angle_increment) <= 0:
            raise ValueError("angle_increment is too small")

    def run(
        self, region: SkyRegion, center: SkyCoord, exclusion_mask: xr.DataArray | None = None
    ) -> tuple[list[SkyRegion], WCS]:
        """OFF regions for ``region`` rotated around ``center``.

        Returns
        -------
        regions : list of SkyRegion
            The OFF regions (empty if none fits).
        wcs : WCS
            The reference projection; OFF-region containment is decided in it.
        """
        if isinstance(region, PointSkyRegion):
            raise TypeError(
                "ReflectedRegionsFinder needs a region with an area; use WobbleRegionsFinder"
            )
        ref = reference_geom(region, center, self.binsz)
        center_pix = PixCoord.from_sky(center, ref.wcs)
        region_pix = region.to_pixel(ref.wcs)
        excluded = _excluded_pixels(ref, exclusion_mask)

        angle_min = _region_angular_size(region, ref, center_pix) + _angle(self.min_distance)
        min_input = _angle(self.min_distance_input)
        angle_max = FULL_CIRCLE - angle_min - min_input
        increment = _angle(self.angle_increment)

        found: list[PixelRegion] = []
        angle = angle_min + min_input
        while angle < angle_max:
            trial = region_pix.rotate(center_pix, angle * u.rad)
            if not np.any(trial.contains(excluded)):
                found.append(trial)
                if len(found) >= self.max_region_number:
                    break
                angle += angle_min
            else:
                angle += increment
        return _to_sky(found, ref.wcs), ref.wcs


@dataclass(frozen=True)
class WobbleRegionsFinder:
    """``n_off_regions`` OFF regions at equal angles around the pointing (Gammapy's wobble finder).

    Regions touching the exclusion mask are dropped (for a point region: when
    an excluded reference pixel is within one pixel of it). If extended OFF
    regions overlap each other, no region is returned.
    """

    n_off_regions: int
    binsz: float = 0.01

    def run(
        self, region: SkyRegion, center: SkyCoord, exclusion_mask: xr.DataArray | None = None
    ) -> tuple[list[SkyRegion], WCS]:
        """OFF regions and the reference projection (see `ReflectedRegionsFinder.run`)."""
        ref = reference_geom(region, center, self.binsz)
        center_pix = PixCoord.from_sky(center, ref.wcs)
        region_pix = region.to_pixel(ref.wcs)
        excluded = _excluded_pixels(ref, exclusion_mask)
        n_positions = self.n_off_regions + 1
        increment = Angle(FULL_CIRCLE, "rad") / n_positions
        point = isinstance(region, PointSkyRegion)
        found: list[PixelRegion] = []
        for i in range(1, n_positions):
            trial = region_pix.rotate(center_pix, i * increment)
            hit = False
            if exclusion_mask is not None:
                if point:
                    hit = bool((excluded.separation(trial.center) < 1).any())
                else:
                    hit = bool(np.any(trial.contains(excluded)))
            if not hit:
                found.append(trial)
        if not point and _pixel_regions_overlap(found, ref.shape):
            return [], ref.wcs
        return _to_sky(found, ref.wcs), ref.wcs


def _to_sky(regions: list[PixelRegion], wcs: WCS) -> list[SkyRegion]:
    """Pixel regions to sky regions; circles vectorised with the arithmetic of ``CirclePixelRegion.to_sky``."""
    if not regions or not all(isinstance(r, CirclePixelRegion) for r in regions):
        return [r.to_sky(wcs) for r in regions]
    x = np.array([r.center.x for r in regions])
    y = np.array([r.center.y for r in regions])
    centers = wcs.pixel_to_world(x, y)
    # pixel scale along the North direction at each centre (regions' pixel_scale_angle_at_skycoord)
    offset = 1 * u.arcsec
    x0, y0 = wcs.world_to_pixel(centers)
    x1, y1 = wcs.world_to_pixel(centers.directional_offset_by(0.0, offset))
    scale = offset.to(u.arcsec) / (np.hypot(x1 - x0, y1 - y0) * u.pixel)
    out: list[SkyRegion] = []
    for i, r in enumerate(regions):
        radius = Angle(r.radius * u.pix * scale[i], "arcsec")
        out.append(CircleSkyRegion(centers[i], radius, meta=r.meta.copy(), visual=r.visual.copy()))
    return out


def _pixel_regions_overlap(regions: list[PixelRegion], shape: tuple[int, int]) -> bool:
    masks = [r.to_mask().to_image(shape) > 0 for r in regions]
    return any(np.any(a & b) for a, b in combinations(masks, 2))


def find_reflected_regions(
    region: SkyRegion | SkyCoord,
    center: SkyCoord,
    exclusion_mask: xr.DataArray | None = None,
    finder: ReflectedRegionsFinder | WobbleRegionsFinder | None = None,
) -> tuple[list[SkyRegion], WCS]:
    """OFF regions for an ON region and a pointing (default: Gammapy's reflected finder).

    ``region`` may be a SkyCoord, taken as a point region (which needs a
    `WobbleRegionsFinder`).
    """
    if isinstance(region, SkyCoord):
        region = PointSkyRegion(center=region)
    finder = ReflectedRegionsFinder() if finder is None else finder
    return finder.run(region, center, exclusion_mask)


def off_region_centers(regions: list[SkyRegion]) -> SkyCoord:
    """Centres of OFF regions as one SkyCoord array."""
    return SkyCoord([r.center for r in regions]) if regions else SkyCoord([], [], unit="deg")


def regions_radii(regions: list[SkyRegion]) -> NDArray[np.float64]:
    """Radii (deg) of circle regions (NaN for other shapes)."""
    return np.array(
        [r.radius.to_value(u.deg) if isinstance(r, CircleSkyRegion) else np.nan for r in regions]
    )


def as_exclusion_mask(mask: Any) -> xr.DataArray | None:
    """An exclusion mask from a DataArray, a FITS path, or None."""
    if mask is None or isinstance(mask, xr.DataArray):
        return mask
    if isinstance(mask, str | Path):
        return read_exclusion_mask(mask)
    raise TypeError(
        f"exclusion mask must be an xarray.DataArray or a path, got {type(mask).__name__}"
    )

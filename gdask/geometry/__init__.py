"""Geometry: energy and other binned axes, WCS sky grids and regions, as xarray coordinates.

Plain numpy/astropy/regions; no Dask.
"""

from gdask.geometry.axes import ENERGY_AXIS_NAMES, Axis, EnergyAxis
from gdask.geometry.regions import (
    RadMaxRegion,
    circle_region,
    parse_regions,
    read_ds9,
    region_center,
    region_contains,
    region_wcs,
    regions_pixel_mask,
)
from gdask.geometry.wcs import SKY_COORDS, SKY_DIMS, WCS_ATTR, WcsGeom

__all__ = [
    "Axis",
    "EnergyAxis",
    "ENERGY_AXIS_NAMES",
    "WcsGeom",
    "WCS_ATTR",
    "SKY_DIMS",
    "SKY_COORDS",
    "RadMaxRegion",
    "circle_region",
    "parse_regions",
    "read_ds9",
    "region_center",
    "region_contains",
    "region_wcs",
    "regions_pixel_mask",
]

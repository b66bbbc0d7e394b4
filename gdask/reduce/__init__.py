"""Data reduction: per-observation makers (pure numpy/xarray) reproducing Gammapy 2.1.

- `gdask.reduce.maps`: counts, exposure, background, PSF and energy-dispersion
  maps and `make_map_dataset` (one observation -> one map dataset);
- `gdask.reduce.safe_mask`: safe data-range masks;
- `gdask.reduce.fov_background`: field-of-view background normalisation.

No Dask here: graph builders wrap these functions.
"""

from gdask.reduce.fov_background import apply_fov_background, fov_background_norm
from gdask.reduce.maps import (
    BINSZ_IRF_DEFAULT,
    default_rad_axis,
    irf_geom,
    make_background,
    make_counts,
    make_edisp_kernel_map,
    make_exposure,
    make_map_dataset,
    make_psf_map,
)
from gdask.reduce.safe_mask import SAFE_MASK_METHODS, make_safe_mask

__all__ = [
    "BINSZ_IRF_DEFAULT",
    "SAFE_MASK_METHODS",
    "apply_fov_background",
    "default_rad_axis",
    "fov_background_norm",
    "irf_geom",
    "make_background",
    "make_counts",
    "make_edisp_kernel_map",
    "make_exposure",
    "make_map_dataset",
    "make_psf_map",
    "make_safe_mask",
]

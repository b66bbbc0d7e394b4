"""Wrap the makers' `xarray.Dataset` outputs as DL4 dataset objects.

- `to_map_dataset`: `gdask.reduce.maps.make_map_dataset` -> `gdask.datasets.MapDataset`
  (exposure m2 s -> cm2 s; the PSF/edisp maps and their exposures, already in
  cm2 s, are taken over unchanged);
- `to_spectrum_dataset`: `gdask.reduce.spectrum.make_spectrum_onoff` ->
  `gdask.datasets.SpectrumDatasetOnOff` (exposure m2 s -> cm2 s; the exposure
  without containment correction is kept as ``edisp_exposure`` in cm2 s, the
  weight of the energy dispersion when stacking).

Counts, background, masks and kernels are copied bit for bit; the only
arithmetic is the unit conversion (a multiplication by 1e4). Per-run facts
(OBS_ID, pointing, livetime, ontime, FoV background norm, ...) go to
``meta``; a one-row META_TABLE carries OBS_ID and the pointing as in Gammapy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from astropy.table import Table

from gdask.datasets.axes import BandAxis
from gdask.datasets.irf_maps import EXPOSURE_UNIT, EDispKernelMap, PSFMap
from gdask.datasets.map import MapDataset
from gdask.datasets.spectrum import SpectrumDatasetOnOff
from gdask.dl3.gti import GTI
from gdask.geometry.axes import Axis, EnergyAxis
from gdask.geometry.wcs import WCS_ATTR, WcsGeom

__all__ = [
    "M2_TO_CM2",
    "to_map_dataset",
    "to_spectrum_dataset",
    "MAP_META_KEYS",
    "SPECTRUM_META_KEYS",
]

#: m2 -> cm2
M2_TO_CM2 = 1e4

#: attrs of ``make_map_dataset``'s output copied into ``MapDataset.meta``
MAP_META_KEYS = (
    "obs_id",
    "ra_pnt",
    "dec_pnt",
    "livetime",
    "ontime",
    "tstart",
    "mjdref",
    "bkg_norm",
    "bkg_norm_error",
)
#: attrs of ``make_spectrum_onoff``'s output copied into ``SpectrumDatasetOnOff.meta``
SPECTRUM_META_KEYS = (
    "obs_id",
    "offset",
    "ra_pnt",
    "dec_pnt",
    "n_off_regions",
    "on_region",
    "off_regions",
    "is_pointlike",
    "containment_correction",
)


def _values(ds: xr.Dataset, name: str, dims: tuple[str, ...]) -> np.ndarray:
    return np.asarray(ds[name].transpose(*dims).values)


def _to_cm2(da: xr.DataArray, dims: tuple[str, ...], default: str = "m2 s") -> np.ndarray:
    """Exposure-like values in cm2 s from ``attrs["units"]``, else the makers' documented unit
    ``default`` (``make_map_dataset`` drops variable attrs: exposure m2 s, IRF exposures cm2 s)."""
    values = np.asarray(da.transpose(*dims).values)
    unit = str(da.attrs.get("units") or default).replace(" ", "")
    if unit in ("m2s", "sm2"):
        return values * M2_TO_CM2
    if unit in ("cm2s", "scm2"):
        return values
    import astropy.units as u

    return u.Quantity(values, da.attrs.get("units") or default).to_value(EXPOSURE_UNIT)


def _axis(ds: xr.Dataset, dim: str) -> BandAxis:
    """The energy axis on dim ``dim`` from its bounds (units from the coordinate, its bounds,
    else TeV), named ``dim`` without an IRF prefix."""
    bounds = np.asarray(ds[f"{dim}_bounds"].transpose(dim, "bound").values, dtype=float)
    edges = np.append(bounds[:, 0], bounds[-1, 1])
    unit = ds[dim].attrs.get("units") or ds[f"{dim}_bounds"].attrs.get("units") or "TeV"
    name = dim.removeprefix("psf_").removeprefix("edisp_")
    return BandAxis(EnergyAxis(edges, name=name, unit=unit))


def _irf_geom(ds: xr.Dataset, prefix: str) -> WcsGeom | None:
    if ds.attrs.get(f"{prefix}_geom", "wcs") == "region":
        return None
    return WcsGeom.from_header(ds.attrs[f"{prefix}_{WCS_ATTR}"])


def _psf_map(ds: xr.Dataset, e_true: BandAxis | None) -> PSFMap:
    """The PSF map of a maker output (true-energy PSF on the ``psf_`` grid)."""
    e_dim = "psf_energy_true" if "psf_energy_true" in ds.dims else "psf_energy"
    axis = _axis(ds, e_dim).renamed(e_dim.removeprefix("psf_"))
    if e_true is not None and axis.equal(e_true):
        axis = e_true
    rb = np.asarray(ds["rad_bounds"].transpose("rad", "bound").values, dtype=float)
    rad = BandAxis(
        Axis(
            np.append(rb[:, 0], rb[-1, 1]),
            name="rad",
            interp="lin",
            unit=ds["rad_bounds"].attrs.get("units") or "deg",
        )
    )
    sky = ("psf_lat", "psf_lon")
    exposure = (
        _to_cm2(ds["psf_exposure"], (e_dim,) + sky, EXPOSURE_UNIT) if "psf_exposure" in ds else None
    )
    return PSFMap(
        _values(ds, "psf", (e_dim, "rad") + sky), axis, rad, _irf_geom(ds, "psf"), exposure
    )


def _edisp_map(ds: xr.Dataset, e_true: BandAxis | None, e_reco: BandAxis) -> EDispKernelMap:
    """The energy-dispersion kernel map of a maker output (on the ``edisp_`` grid)."""
    et = _axis(ds, "edisp_energy_true").renamed("energy_true")
    er = _axis(ds, "edisp_energy").renamed("energy")
    et = e_true if e_true is not None and et.equal(e_true) else et
    er = e_reco if er.equal(e_reco) else er
    sky = ("edisp_lat", "edisp_lon")
    exposure = (
        _to_cm2(ds["edisp_exposure"], ("edisp_energy_true",) + sky, EXPOSURE_UNIT)
        if "edisp_exposure" in ds
        else None
    )
    data = _values(ds, "edisp", ("edisp_energy_true", "edisp_energy") + sky)
    return EDispKernelMap(data, et, er, _irf_geom(ds, "edisp"), exposure)


def _meta(attrs: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for k in keys:
        if k in attrs:
            v = attrs[k]
            out[k] = v.item() if isinstance(v, np.generic) else v
    if "obs_id" in out:
        out["obs_ids"] = [int(out["obs_id"])]
    return out


def _meta_table(attrs: dict[str, Any]) -> Table | None:
    if "obs_id" not in attrs:
        return None
    return Table(
        {
            "OBS_ID": np.array([int(attrs["obs_id"])], dtype=np.int64),
            "RA_PNT": np.array([float(attrs.get("ra_pnt", np.nan))]),
            "DEC_PNT": np.array([float(attrs.get("dec_pnt", np.nan))]),
        }
    )


def to_map_dataset(
    ds: xr.Dataset, *, gti: GTI | None = None, name: str | None = None
) -> MapDataset:
    """A `MapDataset` from the output of `gdask.reduce.maps.make_map_dataset`.

    Parameters
    ----------
    ds : xarray.Dataset
        ``counts``, ``exposure`` (m2 s), ``background``, ``mask_safe`` and the
        IRF maps, as ``make_map_dataset`` returns them.
    gti : GTI, optional
        The observation's good time intervals (kept with the dataset).
    name : str, optional
        Dataset name (default ``attrs["name"]``, else the OBS_ID).

    Returns
    -------
    MapDataset
        Exposure in cm2 s; everything else bit for bit; ``meta`` with OBS_ID,
        pointing, livetime, ontime and the FoV background norm.
    """
    geom = WcsGeom.from_header(ds.attrs[WCS_ATTR])
    e_reco = _axis(ds, "energy")
    e_true = _axis(ds, "energy_true") if "energy_true" in ds.coords else None
    sky = ("energy", "lat", "lon")
    kwargs: dict[str, Any] = {}
    for key in ("counts", "background"):
        if key in ds:
            kwargs[key] = _values(ds, key, sky)
    if "mask_safe" in ds:
        kwargs["mask_safe"] = _values(ds, "mask_safe", sky).astype(bool)
    if "exposure" in ds:
        kwargs["exposure"] = _to_cm2(ds["exposure"], ("energy_true", "lat", "lon"))
    psf = _psf_map(ds, e_true) if "psf" in ds else None
    edisp = _edisp_map(ds, e_true, e_reco) if "edisp" in ds else None
    if name is None:
        name = str(ds.attrs.get("name", ds.attrs.get("obs_id", "")))
    return MapDataset(
        geom,
        e_reco,
        e_true,
        psf=psf,
        edisp=edisp,
        gti=gti,
        name=name,
        meta=_meta(ds.attrs, MAP_META_KEYS),
        meta_table=_meta_table(ds.attrs),
        **kwargs,
    )


def to_spectrum_dataset(
    ds: xr.Dataset, *, gti: GTI | None = None, name: str | None = None
) -> SpectrumDatasetOnOff:
    """A `SpectrumDatasetOnOff` from the output of `gdask.reduce.spectrum.make_spectrum_onoff`.

    Parameters
    ----------
    ds : xarray.Dataset
        ``counts``, ``counts_off``, ``acceptance``, ``acceptance_off``,
        ``exposure`` and ``edisp_exposure`` (m2 s), ``edisp``, ``mask_safe``
        and ``livetime``.
    gti : GTI, optional
        The observation's good time intervals.
    name : str, optional
        Dataset name (default the OBS_ID).

    Returns
    -------
    SpectrumDatasetOnOff
        The dataset (its exposure in cm2 s) plus a variable ``edisp_exposure``
        ``(energy_true)`` in cm2 s; ``meta`` with OBS_ID, offset, pointing,
        number and ds9 strings of the ON/OFF regions.
    """
    livetime = float(np.asarray(ds["livetime"].values))
    e_reco = _axis(ds, "energy")
    e_true = _axis(ds, "energy_true")
    exposure = _to_cm2(ds["exposure"], ("energy_true",))
    if name is None:
        name = str(ds.attrs.get("name", ds.attrs.get("obs_id", "")))
    out = SpectrumDatasetOnOff(
        e_reco,
        e_true,
        counts=np.asarray(ds["counts"].values),
        counts_off=np.asarray(ds["counts_off"].values),
        acceptance=np.asarray(ds["acceptance"].values),
        acceptance_off=np.asarray(ds["acceptance_off"].values),
        exposure=exposure if livetime > 0 else None,
        effective_area=None if livetime > 0 else np.zeros_like(exposure),
        edisp=_values(ds, "edisp", ("energy_true", "energy")),
        mask_safe=np.asarray(ds["mask_safe"].values, dtype=bool),
        livetime=livetime,
        name=name,
        gti=gti,
        meta=_meta(ds.attrs, SPECTRUM_META_KEYS),
    )
    if "edisp_exposure" in ds:
        out.ds["edisp_exposure"] = (
            ("energy_true",),
            _to_cm2(ds["edisp_exposure"], ("energy_true",)),
            {"units": EXPOSURE_UNIT},
        )
    return out

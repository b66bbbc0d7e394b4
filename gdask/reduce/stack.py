"""Stacking of DL4 datasets: `stack_pair`, `stack_all` and `stack_into`.

Semantics (those of Gammapy 2.1's ``MapDataset.stack``,
``MapDatasetOnOff.stack`` and ``SpectrumDatasetOnOff.stack`` applied to an
empty accumulator, i.e. ``Datasets.stack_reduce``):

- ``counts``, ``background``, ``counts_off`` and ``acceptance`` are summed,
  each dataset weighted by its ``mask_safe`` (bins outside a dataset's safe
  mask contribute nothing); the background enters as its prediction, i.e.
  scaled by the dataset's FoV background norm (``bkg_norm`` in its attrs or
  ``meta``), and the stacked dataset carries no norm (Gammapy stacks
  ``npred_background()``);
- ``exposure`` is summed where the dataset's safe-mask image (OR over
  reconstructed energy) is True, for all true energies; the livetime of a
  dataset counts only if that image has any True pixel;
- PSF and energy-dispersion maps are averaged weighted by their exposure maps
  (``psf_exposure``/``edisp_exposure``, summed). Weights: the PSF uses the
  safe-mask image at the counts pixel nearest to each IRF pixel centre (False
  outside the counts grid); the kernel uses, per reconstructed-energy bin,
  the safe mask at the nearest counts pixel (extrapolated at the border), and
  its exposure the OR of that over energy. Gammapy 2.1 interpolates the
  boolean mask *linearly* for the kernel, which turns a 1e-16 rounding leak
  from the neighbouring energy bin into True (so bins below a run's energy
  threshold are not masked in its stacked kernel); gdask does not reproduce
  that bug;
- ``mask_safe`` and ``mask_fit`` are OR-ed, GTIs unioned, obs ids collected;
- ON/OFF: ``alpha`` of the stacked dataset is
  ``sum(alpha_i off_i) / sum(off_i)`` (masked), kept in the acceptances as
  ``acceptance = sum(acceptance_i)`` and ``acceptance_off = acceptance *
  sum(off_i) / sum(alpha_i off_i)``; in bins without OFF counts the average
  alpha of all bins is used.

Stacked datasets are flagged (``attrs["stacked"]``) and taken as already
masked when stacked again (as Gammapy's in-place accumulator), so that
``stack_pair(stack_pair(a, b), c)`` equals ``stack_pair(a, stack_pair(b, c))``
to float rounding: a tree reduction gives the sequential result.

All functions are pure: inputs are never modified. They accept gdask dataset
objects or their `xarray.Dataset` (e.g. straight from
`gdask.reduce.make_map_dataset`) and return the same kind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import reduce
from typing import Any, TypeVar

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.table import Table, vstack
from numpy.typing import NDArray

from gdask.datasets.irf_maps import _sky_geom
from gdask.datasets.map import MapDataset, MapDatasetOnOff
from gdask.datasets.spectrum import SpectrumDatasetOnOff
from gdask.dl3.gti import GTI
from gdask.geometry.wcs import WcsGeom
from gdask.reduce.safe_mask import nearest_index_ties_down

__all__ = ["stack_pair", "stack_all", "stack_into", "empty_like", "STACKED_ATTR"]

T = TypeVar("T", MapDataset, MapDatasetOnOff, SpectrumDatasetOnOff, xr.Dataset)

#: attrs flag of stacked (already masked) datasets
STACKED_ATTR = "stacked"
EXPOSURE_UNIT = "cm2 s"
_ONOFF = ("counts_off", "acceptance", "alpha_off")
#: meta keys that do not carry over to a stacked dataset (the background norm is applied)
_PER_RUN_META = (
    "obs_ids",
    "livetime",
    "LIVETIME",
    "OBS_ID",
    "obs_id",
    "bkg_norm",
    "bkg_norm_error",
)
_SKY_VARS = (
    "counts",
    "background",
    "mask_safe",
    "mask_fit",
    "counts_off",
    "acceptance",
    "alpha_off",
    "exposure",
)


# -- helpers -------------------------------------------------------------------------
def _unwrap(d: Any) -> tuple[xr.Dataset, type | None]:
    if isinstance(d, xr.Dataset):
        return d, None
    if isinstance(d, MapDataset | SpectrumDatasetOnOff):
        return d.ds, type(d)
    raise TypeError(f"cannot stack a {type(d).__name__}")


def _wrap(ds: xr.Dataset, kind: type | None) -> Any:
    return ds if kind is None else kind.from_dataset(ds)


def _kind(ds: xr.Dataset) -> str:
    return str(ds.attrs.get("dataset_type", "MapDataset"))


def _meta(ds: xr.Dataset) -> dict:
    try:
        return json.loads(ds.attrs.get("meta", "{}"))
    except (TypeError, ValueError):
        return {}


def _livetime(ds: xr.Dataset) -> float:
    if "livetime" in ds.attrs:
        return float(ds.attrs["livetime"])
    meta = _meta(ds)
    for key in ("livetime", "LIVETIME"):
        if key in meta:
            return float(meta[key])
    return 0.0


def _bkg_norm(ds: xr.Dataset) -> float:
    """The FoV background norm of a dataset (1 if it has none)."""
    value = ds.attrs.get("bkg_norm", _meta(ds).get("bkg_norm"))
    return 1.0 if value is None else float(value)


def _obs_ids(ds: xr.Dataset) -> list:
    meta = _meta(ds)
    if "obs_ids" in meta:
        return list(meta["obs_ids"])
    for value in (ds.attrs.get("obs_id"), meta.get("OBS_ID"), meta.get("obs_id")):
        if value is not None:
            return [value]
    name = str(ds.attrs.get("name", ""))
    return [int(name)] if name.isdigit() else []


def _values(ds: xr.Dataset, key: str, dims: tuple[str, ...]) -> NDArray | None:
    if key not in ds:
        return None
    return np.asarray(ds[key].transpose(*dims).values)


def _factor(ds: xr.Dataset, key: str, unit: str | None) -> float:
    """Conversion factor of ``ds[key]`` to ``unit``."""
    src = ds[key].attrs.get("units", "")
    if unit is None or not src or not unit or u.Unit(src) == u.Unit(unit):
        return 1.0
    return float(u.Unit(src).to(unit))


def _nearest_idx(pix: NDArray, n: int, mode: str) -> NDArray[np.int64]:
    """Nearest pixel index: ``"up"`` ties go up, -1 outside (Gammapy's ``get_by_coord``);
    ``"clip"`` ties go down and outside is clamped (scipy ``nearest`` with extrapolation)."""
    if mode == "up":
        idx = np.floor(pix + 0.5)
        return np.where(np.isfinite(idx) & (idx >= 0) & (idx < n), idx, -1).astype(int)
    return nearest_index_ties_down(pix, n)


def _sample_mask(mask: NDArray, geom: WcsGeom, irf_geom: WcsGeom | None, mode: str) -> NDArray:
    """``mask(..., lat, lon)`` on ``geom`` at the pixel centres of ``irf_geom``."""
    if irf_geom is None:
        return mask.any(axis=(-2, -1))[..., None, None]
    lon, lat = irf_geom.get_coord()
    x, y = geom.coord_to_pix(lon, lat)
    ix = _nearest_idx(np.asarray(x), geom.npix[0], mode)
    iy = _nearest_idx(np.asarray(y), geom.npix[1], mode)
    ok = (ix >= 0) & (iy >= 0)
    out = mask[..., np.where(ok, iy, 0), np.where(ok, ix, 0)]
    return out & ok


# -- per-dataset contributions ----------------------------------------------------------
def _map_terms(ds: xr.Dataset) -> dict[str, Any]:
    """Masked sums of one map dataset on its own grids."""
    geom = WcsGeom.from_dataset(ds)
    sky3 = ("energy", "lat", "lon")
    shape = (ds.sizes["energy"],) + geom.shape
    masked = bool(ds.attrs.get(STACKED_ATTR, False))
    m = _values(ds, "mask_safe", sky3)
    m = np.ones(shape, bool) if m is None else m.astype(bool)
    w = np.ones(shape, bool) if masked else m
    img = w.any(axis=0)
    t: dict[str, Any] = {"mask_safe": m, "livetime": _livetime(ds) if img.any() else 0.0}
    for key in ("counts", "background", "counts_off", "acceptance"):
        arr = _values(ds, key, sky3)
        if arr is not None:
            t[key] = np.where(w, np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0), 0)
    if "background" in t:
        t["background"] = t["background"] * _bkg_norm(ds)
    if "counts_off" in t:
        acc_off = _values(ds, "acceptance_off", sky3)
        acc = _values(ds, "acceptance", sky3)
        if acc is None or acc_off is None:
            raise ValueError(f"dataset {ds.attrs.get('name')!r}: incomplete ON/OFF dataset")
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(acc_off > 0, acc / np.where(acc_off > 0, acc_off, 1), 0.0)
        t["alpha_off"] = np.where(w, np.nan_to_num(alpha * t["counts_off"]), 0.0)
    fit = _values(ds, "mask_fit", sky3)
    if fit is not None:
        t["mask_fit"] = fit.astype(bool)
    exp = _values(ds, "exposure", ("energy_true", "lat", "lon"))
    if exp is not None:
        exp = np.nan_to_num(exp) * _factor(ds, "exposure", EXPOSURE_UNIT)
        t["exposure"] = np.where(img, exp, 0.0)
    for p in ("psf", "edisp"):
        if p not in ds or f"{p}_exposure" not in ds:
            continue
        irf = np.asarray(ds[p].values, dtype=float)
        iexp = np.asarray(ds[f"{p}_exposure"].values, dtype=float)
        iexp = iexp * _factor(ds, f"{p}_exposure", EXPOSURE_UNIT)
        g = _sky_geom(ds, p)
        if masked:
            wi = np.ones(irf.shape[1:] if p == "edisp" else irf.shape[2:], bool)
        elif p == "psf":
            wi = _sample_mask(m.any(axis=0), geom, g, "up")
        else:
            wi = _sample_mask(m, geom, g, "clip")
        if p == "psf":
            num = irf * (iexp * wi)[:, None]
            den = iexp * wi
        else:
            num = irf * iexp[:, None] * wi[None]
            den = iexp * wi.any(axis=0)
        t[f"{p}_num"], t[f"{p}_exposure"] = np.nan_to_num(num), np.nan_to_num(den)
    return t


def _spectrum_terms(ds: xr.Dataset) -> dict[str, Any]:
    masked = bool(ds.attrs.get(STACKED_ATTR, False))
    m = np.asarray(ds["mask_safe"].values, bool)
    w = np.ones_like(m) if masked else m
    anym = bool(w.any())
    livetime = float(ds.attrs.get("livetime", 0.0))
    t: dict[str, Any] = {"mask_safe": m, "livetime": livetime if anym else 0.0}
    for key in ("counts", "counts_off", "acceptance"):
        if key in ds:
            t[key] = np.where(w, np.nan_to_num(np.asarray(ds[key].values)), 0)
    if "counts_off" in t:
        acc, acc_off = np.asarray(ds["acceptance"].values), np.asarray(ds["acceptance_off"].values)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(acc_off > 0, acc / np.where(acc_off > 0, acc_off, 1), 0.0)
        t["alpha_off"] = np.where(w, alpha * t["counts_off"], 0.0)
    if "effective_area" in ds:
        exp = np.asarray(ds["effective_area"].values, float) * livetime
        t["exposure"] = exp * anym
        if "edisp" in ds:
            k = np.asarray(ds["edisp"].transpose("energy_true", "energy").values, float)
            wexp = exp
            if "edisp_exposure" in ds:  # exposure without containment correction
                wexp = np.asarray(ds["edisp_exposure"].values, float)
                wexp = wexp * _factor(ds, "edisp_exposure", EXPOSURE_UNIT)
            t["edisp_num"] = k * wexp[:, None] * w[None, :]
            t["edisp_exposure"] = wexp * anym
    return t


def _terms(ds: xr.Dataset) -> dict[str, Any]:
    t = _spectrum_terms(ds) if _kind(ds) == SpectrumDatasetOnOff.tag else _map_terms(ds)
    t["obs_ids"] = _obs_ids(ds)
    t["gti"] = _gti(ds)
    t["meta_table"] = MapDataset.from_dataset(ds).meta_table if "meta_table" in ds.attrs else None
    return t


def _gti(ds: xr.Dataset) -> GTI | None:
    if "gti_START" not in ds:
        return None
    g = xr.Dataset({"START": ds["gti_START"], "STOP": ds["gti_STOP"]})
    g.attrs.update(json.loads(ds.attrs.get("gti_attrs", "{}")))
    return GTI(g)


# -- combination --------------------------------------------------------------------------
def _gti_union(a: GTI | None, b: GTI | None) -> GTI | None:
    """Union of two GTIs in the time reference of the first (overlaps merged)."""
    if a is None or b is None:
        return a if b is None else b
    shift = 0.0
    try:
        shift = float((b.time_reference - a.time_reference).to_value("s"))
    except Exception:  # noqa: BLE001 - missing MJDREF: assume a common reference
        shift = 0.0
    start = np.concatenate([a.start, b.start + shift])
    stop = np.concatenate([a.stop, b.stop + shift])
    order = np.argsort(start, kind="stable")
    starts: list[float] = []
    stops: list[float] = []
    for s0, s1 in zip(start[order], stop[order], strict=True):
        if starts and s0 <= stops[-1]:
            stops[-1] = max(stops[-1], s1)
        else:
            starts.append(float(s0))
            stops.append(float(s1))
    out = xr.Dataset(
        {
            "START": ("gti", np.array(starts), dict(a.ds["START"].attrs, units="s")),
            "STOP": ("gti", np.array(stops), dict(a.ds["STOP"].attrs, units="s")),
        },
        attrs=dict(a.ds.attrs),
    )
    return GTI(out)


def _meta_table_union(a: Table | None, b: Table | None) -> Table | None:
    if a is None or b is None:
        return a if b is None else b
    try:
        return vstack([a, b], join_type="exact", metadata_conflicts="silent")
    except Exception:  # noqa: BLE001 - differing columns: keep the common ones
        return vstack([a, b], join_type="inner", metadata_conflicts="silent")


def _add(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Sum of two term dicts on the same grids."""
    out: dict[str, Any] = {}
    for key in set(a) | set(b):
        x, y = a.get(key), b.get(key)
        if x is None or y is None:
            out[key] = x if y is None else y
        elif key in ("mask_safe", "mask_fit"):
            out[key] = x | y
        elif key == "obs_ids":
            out[key] = list(x) + list(y)
        elif key == "gti":
            out[key] = _gti_union(x, y)
        elif key == "meta_table":
            out[key] = _meta_table_union(x, y)
        else:
            if np.shape(x) != np.shape(y):
                raise ValueError(f"cannot stack {key}: shapes {np.shape(x)} and {np.shape(y)}")
            out[key] = x + y
    return out


def _alpha_acceptance_off(t: dict[str, Any]) -> NDArray:
    """OFF acceptance giving ``alpha = sum(alpha_i off_i) / sum(off_i)``."""
    acc, off, aoff = t["acceptance"], t["counts_off"], t["alpha_off"]
    with np.errstate(divide="ignore", invalid="ignore"):
        acc_off = acc * off / aoff
        average = np.sum(aoff) / np.sum(off)
        zero = off == 0
        acc_off = np.where(zero, acc / average, acc_off)
    return np.asarray(acc_off, dtype=float)


def _ratio(num: NDArray, den: NDArray) -> NDArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(num / den)


def _common_meta(metas: Sequence[dict]) -> dict:
    first = metas[0]
    return {
        k: v
        for k, v in first.items()
        if k not in _PER_RUN_META and all(m.get(k) == v for m in metas[1:])
    }


def _set(ds: xr.Dataset, key: str, arr: NDArray) -> None:
    ds[key] = ds[key].copy(data=np.asarray(arr).astype(np.result_type(arr), copy=False))


def _finalize(
    template: xr.Dataset, t: dict[str, Any], metas: Sequence[dict], name: str | None
) -> xr.Dataset:
    """Write summed terms into a copy of ``template``."""
    ds = template.copy(deep=True)
    spectrum = _kind(ds) == SpectrumDatasetOnOff.tag
    for key in ("counts", "background", "counts_off", "acceptance", "mask_safe", "mask_fit"):
        if key in t and key in ds:
            _set(ds, key, t[key])
    if "counts_off" in t and "acceptance_off" in ds:
        _set(ds, "acceptance_off", _alpha_acceptance_off(t))
    livetime = float(t.get("livetime", 0.0))
    if spectrum:
        if "exposure" in t and "effective_area" in ds:
            _set(
                ds,
                "effective_area",
                t["exposure"] / livetime if livetime > 0 else t["exposure"] * 0,
            )
        if "edisp_num" in t and "edisp" in ds:
            k = _ratio(t["edisp_num"], t["edisp_exposure"][:, None])
            if "edisp_exposure" in ds:
                _set(
                    ds,
                    "edisp_exposure",
                    t["edisp_exposure"] / _factor(ds, "edisp_exposure", EXPOSURE_UNIT),
                )
            dims = ds["edisp"].dims
            ds["edisp"] = (("energy_true", "energy"), k, ds["edisp"].attrs)
            ds["edisp"] = ds["edisp"].transpose(*dims)
        if "areascal" in ds:
            ds = ds.drop_vars("areascal")
    else:
        if "exposure" in t and "exposure" in ds:
            _set(ds, "exposure", t["exposure"] / _factor(ds, "exposure", EXPOSURE_UNIT))
        for p in ("psf", "edisp"):
            if f"{p}_num" in t and p in ds:
                den = t[f"{p}_exposure"]
                bshape = (
                    (den.shape[0], 1) + den.shape[1:]
                    if p == "psf"
                    else den.shape[:1] + (1,) + den.shape[1:]
                )
                _set(ds, p, _ratio(t[f"{p}_num"], den.reshape(bshape)))
                _set(ds, f"{p}_exposure", den / _factor(ds, f"{p}_exposure", EXPOSURE_UNIT))
    # GTI
    for var in ("gti_START", "gti_STOP"):
        if var in ds:
            ds = ds.drop_vars(var)
    gti = t.get("gti")
    if gti is not None:
        g = gti.to_dataset()
        for var in ("START", "STOP"):
            ds[f"gti_{var}"] = g[var]
        ds.attrs["gti_attrs"] = json.dumps(dict(g.attrs), default=str)
    # metadata
    meta = _common_meta(metas)
    meta["obs_ids"] = [v.item() if isinstance(v, np.generic) else v for v in t.get("obs_ids", [])]
    if spectrum:
        ds.attrs["livetime"] = livetime
    else:
        meta["livetime"] = livetime
        if "livetime" in ds.attrs:
            ds.attrs["livetime"] = livetime
        for key in ("obs_id", "bkg_norm", "bkg_norm_error"):
            ds.attrs.pop(key, None)
    ds.attrs["meta"] = json.dumps(meta, default=str)
    table = t.get("meta_table")
    if table is not None:
        from gdask.datasets.map import _table_to_json

        ds.attrs["meta_table"] = _table_to_json(table)
    if name is not None:
        ds.attrs["name"] = str(name)
    ds.attrs[STACKED_ATTR] = 1
    return ds


def _check_compatible(a: xr.Dataset, b: xr.Dataset) -> None:
    if _kind(a) != _kind(b):
        raise TypeError(f"cannot stack a {_kind(a)} with a {_kind(b)}")
    for key in ("exposure", "psf_exposure", "edisp_exposure"):
        if key in a and key in b:
            ua, ub = a[key].attrs.get("units", ""), b[key].attrs.get("units", "")
            if bool(ua) != bool(ub):
                raise ValueError(f"cannot stack {key} with and without units ({ua!r}, {ub!r})")
    for dim in ("energy", "energy_true"):
        if dim in a.coords and dim in b.coords:
            if f"{dim}_bounds" not in a or f"{dim}_bounds" not in b:
                ea, eb = a[dim].values, b[dim].values
            else:
                ea, eb = a[f"{dim}_bounds"].values, b[f"{dim}_bounds"].values
            if ea.shape != eb.shape or not np.allclose(ea, eb, rtol=1e-6):
                raise ValueError(f"cannot stack datasets with different {dim} axes")


# -- public API -----------------------------------------------------------------------------
def stack_all(datasets: Iterable[T], name: str | None = None) -> T:
    """Stack datasets on one grid into one (pure).

    Parameters
    ----------
    datasets : iterable of MapDataset, MapDatasetOnOff, SpectrumDatasetOnOff or xarray.Dataset
        Datasets of one type, on the same sky grid and energy axes.
    name : str, optional
        Name of the result (default: the first dataset's).

    Returns
    -------
    stacked : same type as the inputs
        Flagged as stacked (``attrs["stacked"]``).
    """
    items = [_unwrap(d) for d in datasets]
    if not items:
        raise ValueError("nothing to stack")
    dss = [ds for ds, _ in items]
    for ds in dss[1:]:
        _check_compatible(dss[0], ds)
        if _kind(ds) != SpectrumDatasetOnOff.tag and WcsGeom.from_dataset(
            ds
        ) != WcsGeom.from_dataset(dss[0]):
            raise ValueError("datasets on different sky grids: use stack_into")
    total = reduce(_add, (_terms(ds) for ds in dss))
    out = _finalize(dss[0], total, [_meta(ds) for ds in dss], name)
    return _wrap(out, items[0][1])


def stack_pair(a: T, b: T) -> T:
    """Stack two datasets on the same grid (pure; the result takes ``a``'s name).

    Parameters
    ----------
    a, b : MapDataset, MapDatasetOnOff, SpectrumDatasetOnOff or xarray.Dataset

    Returns
    -------
    stacked : same type as ``a``
    """
    return stack_all([a, b])


def _place(t: dict[str, Any], slices: dict[str, tuple]) -> dict[str, Any]:
    """Terms of a cutout placed into zero arrays of the parent grids."""
    out: dict[str, Any] = {}
    for key, arr in t.items():
        grid = (
            "sky"
            if key in _SKY_VARS
            else key.split("_")[0]
            if key.startswith(("psf", "edisp"))
            else None
        )
        if grid is None or not isinstance(arr, np.ndarray):
            out[key] = arr
            continue
        shape, (big, small) = slices[grid]
        full = np.zeros(arr.shape[:-2] + shape, dtype=arr.dtype)
        full[(Ellipsis,) + tuple(big)] = arr[(Ellipsis,) + tuple(small)]
        out[key] = full
    return out


def _slices(parent: WcsGeom | None, child: WcsGeom | None, what: str) -> tuple:
    if parent is None or child is None:
        raise ValueError(f"{what}: cutout stacking needs WCS grids")
    if parent == child:
        full = (slice(None), slice(None))
        return parent.shape, (full, full)
    if not parent.is_aligned(child):
        raise ValueError(f"{what} grid is not an aligned cutout of the parent grid")
    sl = child.cutout_slices(parent)
    return parent.shape, (sl["parent-slices"], sl["cutout-slices"])


def stack_into(parent: T, dataset: T) -> T:
    """Stack a (cutout) map dataset into a dataset on a larger aligned grid (pure).

    The dataset's maps are masked on its own grids (as in `stack_pair`), then
    added into the parent's counts and IRF grids where they overlap.

    Parameters
    ----------
    parent : MapDataset, MapDatasetOnOff or xarray.Dataset
        Accumulator on the full grid, e.g. `empty_like` of a full-grid dataset
        or ``MapDataset.create(...)``.
    dataset : same type
        Dataset on an aligned sub-grid (or the same grid).

    Returns
    -------
    stacked : same type as ``parent``
    """
    pds, kind = _unwrap(parent)
    cds, _ = _unwrap(dataset)
    _check_compatible(pds, cds)
    if _kind(pds) == SpectrumDatasetOnOff.tag:
        return stack_pair(parent, dataset)
    slices = {"sky": _slices(WcsGeom.from_dataset(pds), WcsGeom.from_dataset(cds), "counts")}
    for p in ("psf", "edisp"):
        if f"{p}_exposure" in pds and f"{p}_exposure" in cds:
            slices[p] = _slices(_sky_geom(pds, p), _sky_geom(cds, p), p)
    tc = _terms(cds)
    for p in ("psf", "edisp"):
        if p not in slices:
            tc.pop(f"{p}_num", None)
            tc.pop(f"{p}_exposure", None)
    total = _add(_terms(pds), _place(tc, slices))
    out = _finalize(pds, total, [_meta(pds), _meta(cds)], None)
    return _wrap(out, kind)


def empty_like(dataset: T, name: str = "stacked") -> T:
    """Stacked-flagged copy of ``dataset`` with all maps zero and masks False (pure)."""
    ds, kind = _unwrap(dataset)
    out = ds.copy(deep=True)
    for key in list(out.data_vars):
        if key.endswith("_bounds") or key.startswith("gti_"):
            continue
        out[key] = out[key].copy(data=np.zeros_like(out[key].values))
    for var in ("gti_START", "gti_STOP"):
        if var in out:
            out = out.drop_vars(var)
    if _kind(out) == SpectrumDatasetOnOff.tag:
        out.attrs["livetime"] = 0.0
    elif "livetime" in out.attrs:
        out.attrs["livetime"] = 0.0
    out.attrs["meta"] = json.dumps({"obs_ids": [], "livetime": 0.0})
    out.attrs.pop("meta_table", None)
    out.attrs.pop("obs_id", None)
    out.attrs["name"] = name
    out.attrs[STACKED_ATTR] = 1
    return _wrap(out, kind)

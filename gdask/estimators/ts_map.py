"""TS maps: a source kernel's amplitude fitted at every pixel of a map dataset.

Gammapy's TSMapEstimator semantics: the dataset's reconstructed energy bins
are grouped by ``energy_edges`` (counts and background summed over safe
bins, the safe mask OR-ed); the kernel is the source model (spatial model
at the grid centre, spectrum ``kernel_model.spectral_model``) folded with
the PSF and the energy dispersion at the grid centre and the exposure of
the nearest pixel with exposure, on an odd-sized grid of ``kernel_width``,
normalised to unit sum; the per-pixel predicted counts per unit amplitude
are the exposure times the reference spectrum through the dispersion at
the grid centre.  The amplitude fit itself is `gdask.estimators.amplitude`
and runs tile by tile (`gdask.estimators.tiles`), on a cluster when a
client is given.

``norm`` is relative to the kernel's spectrum; ``flux = norm * F_ref`` with
``F_ref`` its integral flux over the energy group (cm-2 s-1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gdask.errors import GdaskError
from gdask.estimators.amplitude import fit_amplitudes
from gdask.estimators.maps_io import EstimatorMaps
from gdask.estimators.tiles import map_tiles
from gdask.geometry.wcs import WcsGeom
from gdask.likelihood.evaluator import DatasetIRFs, SourceEvaluator
from gdask.likelihood.psf_kernel import PSFKernelMaker, round_up_to_odd
from gdask.models import PointSpatialModel, PowerLawSpectralModel, SkyModel

__all__ = ["TSMapEstimator", "energy_groups", "reco_exposure_center_edisp"]

Array = NDArray[np.float64]


def energy_groups(edges: Array, energy_edges: Any | None) -> list[tuple[int, int]]:
    """Reco-bin index ranges ``[i0, i1)`` of the groups nearest to ``energy_edges`` (TeV).

    Examples
    --------
    >>> energy_groups(np.array([1.0, 2.0, 4.0, 8.0]), [1.0, 7.0])
    [(0, 3)]
    """
    edges = np.asarray(edges, float)
    if energy_edges is None:
        return [(i, i + 1) for i in range(len(edges) - 1)]
    req = [float(e.to_value("TeV")) if hasattr(e, "to_value") else float(e) for e in energy_edges]
    idx = np.unique([int(np.argmin(np.abs(np.log(edges / e)))) for e in req])
    return [(int(a), int(b)) for a, b in zip(idx[:-1], idx[1:], strict=True) if b > a]


def _center_edisp(dataset: Any) -> Array | None:
    """Energy-dispersion matrix ``(n_true, n_reco)`` at the IRF map centre."""
    ed = dataset.edisp
    if ed is None:
        return None
    data = np.asarray(ed.data, float)
    if ed.geom is None:
        return data.reshape(data.shape[:2])
    x, y = ed.geom.center_pix
    ly, lx = data.shape[2:]
    ix = int(np.clip(np.floor(x + 0.5), 0, lx - 1))
    iy = int(np.clip(np.floor(y + 0.5), 0, ly - 1))
    return data[:, :, iy, ix]


def _true_flux(dataset: Any, spectral: Any) -> Array:
    """Reference-spectrum integral per true-energy bin times exposure units (dimensionless)."""
    import astropy.units as u

    e = np.asarray(dataset.energy_axis_true.axis.edges, float)
    scale = float((u.Unit(spectral.output_unit or "") * u.TeV * u.Unit("cm2 s")).to(""))
    return np.asarray(spectral.integral(e[:-1], e[1:]), float) * scale


def reco_exposure_center_edisp(dataset: Any, spectral: Any) -> Array:
    """Predicted counts of ``spectral`` per pixel and reco bin (dispersion at the centre).

    ``(n_reco, ny, nx)``: ``sum_t exposure[t] F_t K[t, r]``.
    """
    expo = np.asarray(dataset.ds["exposure"].values, float)
    f = _true_flux(dataset, spectral)
    k = _center_edisp(dataset)
    if k is None:
        return expo * f[:, None, None]
    return np.einsum("tyx,t,tr->ryx", expo, f, k)


def _nearest_exposure_pixel(expo: Array) -> tuple[int, int]:
    ny, nx = expo.shape[1:]
    has = np.any(expo > 0, axis=0)
    yc, xc = (ny - 1) / 2, (nx - 1) / 2
    iy, ix = int(np.floor(yc + 0.5)), int(np.floor(xc + 0.5))
    if has[iy, ix] or not has.any():
        return iy, ix
    yy, xx = np.nonzero(has)
    j = int(np.argmin((yy - yc) ** 2 + (xx - xc) ** 2))
    return int(yy[j]), int(xx[j])


def _model_theta(model: Any) -> Array:
    return np.array([p.canonical_value for p in model.parameters], float)


@dataclass
class TSMapEstimator:
    """Per-pixel amplitude fit of a source kernel (Gammapy's TSMapEstimator).

    Parameters
    ----------
    kernel_model : SkyModel, optional
        Source kernel; default point source with a power law of index 2.
    kernel_width : float
        Kernel grid width (deg).
    energy_edges : sequence, optional
        Reco-energy group edges (TeV or Quantity); default each dataset bin.
    n_sigma, n_sigma_ul : float
        Error and upper-limit levels.
    ul : bool
        Compute upper limits.
    rtol : float
        Relative precision of the amplitudes.
    tile : int, optional
        Tile size in pixels (default 64 in-process, 32 on a cluster, for
        balance: tiles around bright sources cost more).

    Examples
    --------
    >>> est = TSMapEstimator(kernel_width=0.5, energy_edges=[0.7, 10])
    >>> # maps = est.run(dataset, client=None); maps["sqrt_ts"]
    """

    kernel_model: Any = None
    kernel_width: float = 0.5
    energy_edges: Any = None
    n_sigma: float = 1.0
    n_sigma_ul: float = 2.0
    ul: bool = True
    rtol: float = 1e-10
    max_niter: int = 100
    tile: int | None = None
    _model: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.kernel_model is None:
            self.kernel_model = SkyModel(
                spectral_model=PowerLawSpectralModel(index=2.0),
                spatial_model=PointSpatialModel(),
                name="ts-kernel",
            )

    # ------------------------------------------------------------ kernel
    def kernel_geom(self, geom: WcsGeom) -> WcsGeom:
        """Odd-sized grid of ``kernel_width`` centred on ``geom``'s centre."""
        binsz = float(np.max(geom.pixel_scales))
        npix = round_up_to_odd(float(self.kernel_width) / binsz)
        return WcsGeom.create(
            skydir=geom.center_coord, binsz=binsz, npix=npix, frame=geom.frame, proj=geom.projection
        )

    def estimate_kernel(self, dataset: Any) -> Array:
        """Kernel ``(n_reco, k, k)`` normalised to unit sum in each reco bin."""
        kgeom = self.kernel_geom(dataset.geom)
        expo = np.asarray(dataset.ds["exposure"].values, float)
        iy, ix = _nearest_exposure_pixel(expo)
        k = kgeom.shape[0]
        e_true = dataset.energy_axis_true
        irfs = DatasetIRFs(
            geom=kgeom,
            exposure=np.broadcast_to(expo[:, iy, ix][:, None, None], (expo.shape[0], k, k)).copy(),
            energy_true_edges=np.asarray(e_true.axis.edges, float),
            energy_true_center=np.asarray(e_true.center, float),
            energy_reco_center=np.asarray(dataset.energy_axis.center, float),
            psf=PSFKernelMaker(dataset.psf) if dataset.psf is not None else None,
            psf_is_reco=bool(dataset.psf is not None and dataset.psf.is_reco),
            edisp=dataset.edisp,
            mask_image=None,
            gti=None,
        )
        model = self.kernel_model
        spatial = model.spatial_model
        lon, lat = kgeom.center_coord
        spatial.parameters["lon_0"].value = lon
        spatial.parameters["lat_0"].value = lat
        spatial.frame = kgeom.frame
        ev = SourceEvaluator(model, irfs)
        npred = np.zeros((len(irfs.energy_reco_center), k, k))
        cut = ev.npred(_model_theta(model))
        if cut is not None:
            npred[(slice(None),) + ev.slices] = cut
        with np.errstate(invalid="ignore", divide="ignore"):
            npred = npred / npred.sum(axis=(1, 2), keepdims=True)
        return np.nan_to_num(npred)

    # --------------------------------------------------------------- run
    def _group_inputs(self, dataset: Any, npred: Array | None) -> list[dict[str, Any]]:
        ds = dataset.ds
        name = getattr(dataset, "name", "") or "dataset"
        if not float(self.kernel_width) > 0:
            raise GdaskError(
                f"kernel_width must be > 0 deg, got {self.kernel_width}", field="kernel_width"
            )
        if "counts_off" in ds:
            raise GdaskError(
                f"{name}: TS maps need a known background (Cash); this is an ON/OFF dataset",
                field="counts_off",
            )
        for key in ("counts", "exposure") + (("background",) if npred is None else ()):
            if key not in ds:
                raise GdaskError(f"{name}: no {key} map", field=key)
        counts = np.asarray(ds["counts"].values, float)
        bkg = np.asarray(ds["background"].values, float) if npred is None else npred
        mask = np.ones(counts.shape, bool)
        if "mask_safe" in ds:
            mask &= np.asarray(ds["mask_safe"].values, bool)
        mask_all = mask.copy()
        if "mask_fit" in ds:
            mask_all &= np.asarray(ds["mask_fit"].values, bool)
        expo_r = reco_exposure_center_edisp(dataset, self.kernel_model.spectral_model)
        edges = np.asarray(dataset.energy_axis.axis.edges, float)
        kernels = self.estimate_kernel(dataset)
        out = []
        for i0, i1 in energy_groups(edges, self.energy_edges):
            sl = slice(i0, i1)
            m3 = mask_all[sl] & np.isfinite(bkg[sl])
            c = (counts[sl] * m3).sum(axis=0)
            b = np.where(m3, bkg[sl], 0.0).sum(axis=0)
            e_sum = (expo_r[sl] * m3).sum(axis=0)
            planes, kern = _mask_pattern_planes(e_sum, m3, kernels[sl])
            f_ref = float(
                np.asarray(self.kernel_model.spectral_model.integral(edges[i0], edges[i1])).ravel()[
                    0
                ]
            )
            out.append(
                dict(
                    counts=c,
                    background=b,
                    exposure=planes,
                    mask=m3.any(axis=0),
                    kernel=kern,
                    f_ref=f_ref,
                    edges=(edges[i0], edges[i1]),
                )
            )
        return out

    def run(self, dataset: Any, npred: Array | None = None, client: Any = None) -> EstimatorMaps:
        """TS, sqrt(TS), amplitude, errors, upper limits and iterations per pixel.

        Parameters
        ----------
        dataset : MapDataset
            With counts, background, exposure (and PSF, energy dispersion).
        npred : ndarray, optional
            ``(n_reco, ny, nx)`` predicted counts of the null hypothesis
            (default: the dataset's background).
        client : distributed.Client, optional
            One task per tile on this cluster; in-process when None.
        """
        groups = self._group_inputs(dataset, npred)
        if not groups:
            raise GdaskError(
                f"energy_edges {self.energy_edges} select no reco-energy bin", field="energy_edges"
            )
        if not any(np.any(g["mask"] & (g["background"] > 0)) for g in groups):
            raise GdaskError(
                f"{getattr(dataset, 'name', '')}: no pixel with a safe bin and background > 0",
                field="mask_safe",
            )
        maps: dict[str, list[Array]] = {}
        for g in groups:
            kernel = g["kernel"]
            h = kernel.shape[-1] // 2
            valid = g["mask"] & (g["background"] > 0)
            res = map_tiles(
                fit_amplitudes,
                (g["counts"], g["background"], *g["exposure"]),
                h,
                valid,
                tile=self.tile or (64 if client is None else 32),
                client=client,
                kernel=kernel,
                n_sigma=self.n_sigma,
                n_sigma_ul=self.n_sigma_ul,
                ul=self.ul,
                rtol=self.rtol,
                max_niter=self.max_niter,
            )
            res["sqrt_ts"] = np.where(res["norm"] > 0, 1.0, -1.0) * np.sqrt(np.abs(res["ts"]))
            res["sqrt_ts"][~np.isfinite(res["ts"])] = np.nan
            for key in ("norm", "norm_err", "norm_ul"):
                if key in res:
                    res["flux" + key[4:]] = res[key] * g["f_ref"]
            for key, val in res.items():
                maps.setdefault(key, []).append(val)
        edges = np.array([groups[0]["edges"][0]] + [g["edges"][1] for g in groups])
        return EstimatorMaps(
            geom=dataset.geom,
            energy_edges=edges,
            maps={k: np.stack(v) for k, v in maps.items()},
            meta={"estimator": "ts_map", "kernel_width": float(self.kernel_width)},
        )


def _mask_pattern_planes(
    e_sum: Array, mask: NDArray[np.bool_], kernels: Array
) -> tuple[Array, Array]:
    """Exposure planes and kernels, one per pattern of safe reco bins.

    Within a group the kernel at a cutout pixel is the mean of the per-bin
    kernels over that pixel's safe bins (Gammapy's mask-weighted kernel);
    pixels sharing a pattern of safe bins share it, so the model is
    ``sum_P kernel_P[k] * (e_sum * [pattern == P])[p + k]``.
    """
    n = mask.shape[0]
    flat = mask.reshape(n, -1).T
    pats, inv = np.unique(flat, axis=0, return_inverse=True)
    inv = inv.reshape(mask.shape[1:])
    planes, kern = [], []
    for j, pat in enumerate(pats):
        if not pat.any():
            continue
        planes.append(np.where(inv == j, e_sum, 0.0))
        kern.append(kernels[pat].mean(axis=0))
    if not planes:
        return np.zeros((1,) + e_sum.shape), np.zeros((1,) + kernels.shape[1:])
    return np.stack(planes), np.stack(kern)

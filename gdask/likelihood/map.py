"""The likelihood term of a map (3D) dataset: cash or wstat and its gradient from one pass.

``npred = sum_sources npred_source + background * norm(E_reco)`` where each
source is evaluated on a cutout by a `~gdask.likelihood.evaluator.SourceEvaluator`
(Gammapy's MapEvaluator semantics) and ``norm`` is the spectral model of the
dataset's `~gdask.models.FoVBackgroundModel` at the reconstructed-energy bin
centres.  The statistic is Gammapy's cash over ``mask_safe & mask_fit``
(negative npred clipped to 0, then truncated at 1e-25).

The hot loop works on precomputed masked arrays: the sum of ``npred`` over the
fitted bins uses per-energy background sums plus the source cutouts, and
``log(npred)`` is only evaluated where counts are positive.

A `~gdask.datasets.MapDatasetOnOff` (ring background) is fitted with
``stat="wstat"`` by default, as Gammapy does: the background is profiled from
``counts_off`` and ``alpha`` bin by bin (`gdask.stats.WStatStatistic` on the
fitted bins, the source signal ``npred_signal`` as prediction) and no
background model applies. With ``stat="cash"`` its known background is
``alpha * counts_off`` (Gammapy's ``MapDatasetOnOff.background``).

The term is pure (see `gdask.likelihood.term`): component offsets come from
the `~gdask.models.ParameterLayout`, the models are never written, and a
`~gdask.likelihood.Request` restricts the fitted bins through its own cached
set of masked arrays (the sources' IRF setups are shared between requests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from gdask.datasets.map import MapDataset, MapDatasetOnOff
from gdask.errors import ConfigError
from gdask.likelihood.energy_scale import ScaledSource, bind_energy_scale
from gdask.likelihood.evaluator import DatasetIRFs, SourceEvaluator
from gdask.likelihood.folding import energy_range_mask
from gdask.likelihood.psf_kernel import PSFKernelMaker
from gdask.likelihood.term import LikelihoodTerm, Request, TermSpec, register_term
from gdask.models import FoVBackgroundModel, Models, ParameterLayout, SkyModel
from gdask.stats import STATISTICS, TRUNCATION_VALUE, Statistic, make_statistic

__all__ = ["MapTerm", "build_map_term", "read_map_dataset"]

Array = NDArray[np.float64]
#: most fitted-bin selections (requests) a term keeps
_MAX_VIEWS = 32
_NO_VIEW = object()


def _gti_mjd(dataset: MapDataset) -> tuple[Array, Array] | None:
    gti = dataset.gti
    if gti is None or len(gti) == 0:
        return None
    return (np.asarray(gti.time_start.mjd, float), np.asarray(gti.time_stop.mjd, float))


class MapTerm(LikelihoodTerm):
    """Cash likelihood of one `~gdask.datasets.MapDataset` for a joint set of models.

    Parameters
    ----------
    dataset : MapDataset
    models : Models
        The joint models (all datasets); those applying to this dataset are used.
    name : str, optional
        Dataset name (default: the dataset's).
    energy_min, energy_max : float, optional
        Fit range in TeV: only reco-energy bins fully inside are fitted (Gammapy's
        ``geom.energy_mask`` as ``mask_fit``).
    stat : {"cash", "wstat"}, optional
        The statistic (a key of `gdask.stats.STATISTICS`); default ``"wstat"``
        for a `~gdask.datasets.MapDatasetOnOff`, else ``"cash"``.
    layout : ParameterLayout, optional
        Layout of the joint vector (default: ``models.layout()``); every offset
        the term uses comes from it.
    """

    def __init__(
        self,
        dataset: MapDataset,
        models: Models,
        name: str | None = None,
        energy_min: float | None = None,
        energy_max: float | None = None,
        stat: str | None = None,
        layout: ParameterLayout | None = None,
    ) -> None:
        self.name = name or dataset.name
        on_off = isinstance(dataset, MapDatasetOnOff) and "counts_off" in dataset.ds
        self.stat_type = stat or ("wstat" if on_off else "cash")
        if self.stat_type not in STATISTICS:
            raise ConfigError(
                f"unknown statistic {self.stat_type!r}; use one of {sorted(STATISTICS)}",
                field="stat",
            )
        if self.stat_type == "wstat" and not on_off:
            raise ConfigError(f"dataset {self.name!r} has no OFF counts for wstat", field="stat")
        self.models = models
        self.layout = layout = layout if layout is not None else models.layout()
        self.n_parameters = layout.n_parameters
        self.to_canonical = layout.to_canonical

        ds = dataset.ds
        geom = dataset.geom
        counts = np.asarray(ds["counts"].values, dtype=float)
        shape = counts.shape
        mask = np.ones(shape, bool)
        for key in ("mask_safe", "mask_fit"):
            if key in ds:
                mask &= np.asarray(ds[key].values, bool)
        self._edges = np.asarray(dataset.energy_axis.to_unit("TeV").axis.edges, float)
        if energy_min is not None or energy_max is not None:
            mask &= energy_range_mask(self._edges, energy_min, energy_max)[:, None, None]
        if "background" in ds:
            bkg = np.asarray(ds["background"].values, float)
        elif on_off:
            bkg = np.asarray(dataset.alpha.values, float) * np.asarray(ds["counts_off"].values)
        else:
            bkg = np.zeros(shape)
        self._off: tuple[Array, Array] | None = None
        if self.stat_type == "wstat":
            self._off = (
                np.asarray(ds["counts_off"].values, float),
                np.asarray(dataset.alpha.values, float),
            )
            bkg = np.zeros(shape)  # profiled, not modelled
        self.shape = shape
        self.counts = counts
        self.background = bkg
        #: the term's own fitted bins; a `Request` selects a subset of them
        self.fit_mask = mask
        self._views: dict[Request | None, dict[str, Any]] = {}
        self._view_key: Any = _NO_VIEW
        self._use(None)
        self.e_reco_center = np.asarray(dataset.energy_axis.center, float)

        irfs = self._irfs(dataset, geom, mask)
        self.irfs = irfs
        # the components of this dataset and their slices, from the layout
        self.sources: list[tuple[SourceEvaluator, slice]] = []
        self.bkg_model: FoVBackgroundModel | None = None
        self.bkg_slice = slice(0, 0)
        self.energy_scale = bind_energy_scale(models, self.name, layout)
        for comp in layout.for_dataset(self.name):
            m = models[comp.name]
            if isinstance(m, FoVBackgroundModel):
                if self.statistic is not None:
                    raise ConfigError(
                        f"FoVBackgroundModel {m.name!r} does not apply to {self.name!r}: "
                        "wstat profiles the background",
                        field="models",
                    )
                if self.bkg_model is None:
                    self.bkg_model, self.bkg_slice = m, comp.part("spectral")
            elif isinstance(m, SkyModel):
                src = m if self.energy_scale is None else ScaledSource.of(m)
                self.sources.append((SourceEvaluator(src, irfs), comp.slice))
        self.depends_on = layout.positions(self.name)
        self._signal = np.zeros(shape)
        self._box_cache: dict[tuple, tuple] = {}
        self._src_cache: dict[tuple, tuple] = {}

    @staticmethod
    def _irfs(dataset: MapDataset, geom: Any, mask: NDArray[np.bool_]) -> DatasetIRFs:
        ds = dataset.ds
        e_true = dataset.energy_axis_true
        psf = dataset.psf
        return DatasetIRFs(
            geom=geom,
            exposure=np.asarray(ds["exposure"].values, float),
            energy_true_edges=np.asarray(e_true.axis.edges, float),
            energy_true_center=np.asarray(e_true.center, float),
            energy_reco_center=np.asarray(dataset.energy_axis.center, float),
            psf=PSFKernelMaker(psf) if psf is not None else None,
            psf_is_reco=bool(psf is not None and psf.is_reco),
            edisp=dataset.edisp,
            mask_image=mask.any(axis=0),
            gti=_gti_mjd(dataset),
        )

    # ------------------------------------------------------------ fitted bins
    def _make_view(self, mask: NDArray[np.bool_]) -> dict[str, Any]:
        """Everything the hot loop needs that depends on the fitted bins."""
        counts, bkg, shape = self.counts, self.background, self.shape
        flat = np.flatnonzero(mask & (counts > 0))
        statistic: Statistic | None = None
        if self._off is not None:
            n_off, alpha = self._off
            statistic = make_statistic("wstat", counts[mask], n_off=n_off[mask], alpha=alpha[mask])
        return {
            "mask": mask,
            "statistic": statistic,
            "bkg_masked_sum": np.where(mask, bkg, 0.0).sum(axis=(1, 2)),
            "pos_idx": flat,
            "pos_counts": counts.ravel()[flat],
            "pos_bkg": bkg.ravel()[flat],
            "pos_energy": flat // (shape[1] * shape[2]),
            "_box_cache": {},
            "_src_cache": {},
        }

    def _use(self, request: Request | None) -> None:
        """Select the fitted bins of ``request`` (None: the term's own); views are cached."""
        if request == self._view_key:
            return
        if self._view_key is not _NO_VIEW:  # keep the caches of the view left
            old = self._views[self._view_key]
            old["_box_cache"], old["_src_cache"] = self._box_cache, self._src_cache
        view = self._views.get(request)
        if view is None:
            mask = self.fit_mask
            if request is not None:
                mask = mask & request.energy_mask(self._edges)[:, None, None]
            view = self._make_view(mask)
            self._views[request] = view
            while len(self._views) > _MAX_VIEWS:
                del self._views[next(k for k in self._views if k is not None)]
        for key, val in view.items():
            setattr(self, key, val)
        self._view_key = request

    # ------------------------------------------------------------ parameters
    def _canonical(self, values: np.ndarray) -> Array:
        """Canonical parameters from the joint vector; the models are never written.

        ``_theta`` keeps them for the gradient of the same evaluation.
        """
        values = np.asarray(values, dtype=float)
        if values.shape != (self.n_parameters,):
            raise ValueError(f"expected {self.n_parameters} parameter values, got {values.shape}")
        self._theta = values * self.to_canonical
        return self._theta

    def _src_theta(self, theta: Array, sl: slice, ev: SourceEvaluator) -> Array:
        """A source's canonical parameters (with ``k`` after the spectral ones if scaled)."""
        if self.energy_scale is None:
            return theta[sl]
        k, _ = self.energy_scale.factor(theta)
        return self.energy_scale.source_theta(theta[sl], ev.n_spec - 1, k)

    def _src_grad(self, gcan: Array, sl: slice, ev: SourceEvaluator, g: Array) -> None:
        """Add a source's gradient (and its ``d/dk`` times ``dk/dp``) to the canonical one."""
        if self.energy_scale is None:
            gcan[sl] += g
            return
        own, d_k = self.energy_scale.split_grad(g, ev.n_spec - 1)
        gcan[sl] += own
        gcan[self.energy_scale.position] += d_k * self.energy_scale.factor(self._theta)[1]

    def _bkg_norm(self, theta: Array, grad: bool) -> tuple[Array, Array | None]:
        if self.bkg_model is None:
            return np.ones(len(self.e_reco_center)), None
        sm = self.bkg_model.spectral_model
        th = theta[self.bkg_slice]
        norm = np.asarray(sm.evaluate_theta(self.e_reco_center, theta=th), float)
        g = (
            np.asarray(sm.evaluate_grad_theta(self.e_reco_center, theta=th), float)
            if grad
            else None
        )
        return norm, g

    # ---------------------------------------------------------------- core
    def _box_info(self, box: tuple[int, int, int, int]) -> tuple:
        if box not in self._box_cache:
            y0, y1, x0, x1 = box
            ne, ny, nx = self.shape
            iz, iy, ix = np.unravel_index(self.pos_idx, self.shape)
            inside = (iy >= y0) & (iy < y1) & (ix >= x0) & (ix < x1)
            local = np.ravel_multi_index(
                (iz[inside], iy[inside] - y0, ix[inside] - x0), (ne, y1 - y0, x1 - x0)
            )
            mask_box = self.mask[:, y0:y1, x0:x1]
            bkg_box_sum = np.where(mask_box, self.background[:, y0:y1, x0:x1], 0).sum(axis=(1, 2))
            self._box_cache = {box: (np.flatnonzero(inside), local, mask_box, bkg_box_sum)}
        return self._box_cache[box]

    def _source_info(self, ev: SourceEvaluator) -> tuple:
        """Constants of a source's IRF setup for the sparse path (mask folded into the kernel)."""
        key = (id(ev), ev.setup.key)
        if key not in self._src_cache:
            ys, xs = ev.slices
            k = ev.kernel_edisp
            if k is None:
                k = np.eye(len(self.e_reco_center))
            km2 = 2.0 * np.einsum("tr,ryx->tyx", k, self.mask[:, ys, xs].astype(float))
            iz, iy, ix = np.unravel_index(self.pos_idx, self.shape)
            inside = np.flatnonzero(
                (iy >= ys.start) & (iy < ys.stop) & (ix >= xs.start) & (ix < xs.stop)
            )
            cy, cx = iy[inside] - ys.start, ix[inside] - xs.start
            q = cy * (xs.stop - xs.start) + cx
            kpos = np.ascontiguousarray(k[:, iz[inside]])
            self._src_cache = {kk: v for kk, v in self._src_cache.items() if kk[0] != id(ev)}
            self._src_cache[key] = (km2, inside, q, kpos)
        return self._src_cache[key]

    def _evaluate(
        self, values: np.ndarray, grad: bool, request: Request | None = None
    ) -> tuple[float, Array | None]:
        self._use(request)
        if self.statistic is not None:
            return self._evaluate_statistic(values, grad)
        theta = self._canonical(values)
        norm, dnorm = self._bkg_norm(theta, grad)
        if norm.min() >= 0 and all(ev.folds_after_psf for ev, _ in self.sources):
            parts = []
            for ev, sl in self.sources:
                m = ev.npred_true(self._src_theta(theta, sl, ev), grad=grad)
                if m is not None:
                    parts.append((ev, sl, m))
            if all(ev.is_nonnegative for ev, _, _ in parts):
                return self._evaluate_sparse(norm, dnorm, parts, grad)
        return self._evaluate_dense(theta, norm, dnorm, grad)

    def _stat_from_pos(self, total: float, mu_pos: Array) -> tuple[float, Array]:
        mu_t = np.maximum(mu_pos, TRUNCATION_VALUE)
        stat = 2.0 * (total - float(self.pos_counts @ np.log(mu_t)))
        ratio = np.where(mu_pos > TRUNCATION_VALUE, self.pos_counts / mu_t, 0.0)
        return stat, ratio

    def _bkg_grad(
        self, gcan: Array, dnorm: Array, ratio: Array, nbin: int, low: Array | None = None
    ) -> None:
        d_norm = 2.0 * self.bkg_masked_sum - 2.0 * np.bincount(
            self.pos_energy, weights=ratio * self.pos_bkg, minlength=nbin
        )
        if low is not None:
            d_norm -= low
        start = self.bkg_slice.start
        gcan[start : start + dnorm.shape[0]] = dnorm @ d_norm

    def _evaluate_sparse(
        self, norm: Array, dnorm: Array | None, parts: list, grad: bool
    ) -> tuple[float, Array | None]:
        """All sources non-negative and folded by dispersion last: never build dense npred."""
        mu_pos = self.pos_bkg * norm[self.pos_energy]
        total = float(self.bkg_masked_sum @ norm)
        infos = []
        for ev, _sl, m in parts:
            km2, inside, q, kpos = self._source_info(ev)
            total += 0.5 * float(np.einsum("tyx,tyx->", km2, m))
            mflat = m.reshape(m.shape[0], -1)
            mu_pos[inside] += np.einsum("tp,tp->p", kpos, mflat[:, q])
            infos.append((km2, inside, q, kpos))
        stat, ratio = self._stat_from_pos(total, mu_pos)
        if not grad:
            return stat, None
        gcan = np.zeros(self.n_parameters)
        if dnorm is not None:
            self._bkg_grad(gcan, dnorm, ratio, len(norm))
        for (ev, sl, _m), (km2, inside, q, kpos) in zip(parts, infos, strict=True):
            g = km2.copy()
            gflat = g.reshape(g.shape[0], -1)
            contrib = 2.0 * ratio[inside] * kpos
            for t in range(g.shape[0]):
                gflat[t] -= np.bincount(q, weights=contrib[t], minlength=gflat.shape[1])
            self._src_grad(gcan, sl, ev, ev.backward_true(g))
        return stat, gcan * self.to_canonical

    def _evaluate_dense(
        self, theta: Array, norm: Array, dnorm: Array | None, grad: bool
    ) -> tuple[float, Array | None]:
        """General path: dense npred on the box covering all source cutouts."""
        sig = self._signal
        parts = []
        box = None
        for ev, sl in self.sources:
            out = ev.npred(self._src_theta(theta, sl, ev), grad=grad)
            if out is None:
                continue
            ys, xs = ev.slices
            sig[:, ys, xs] += out
            parts.append((ev, sl, ys, xs))
            b = (ys.start, ys.stop, xs.start, xs.stop)
            box = (
                b
                if box is None
                else (min(box[0], b[0]), max(box[1], b[1]), min(box[2], b[2]), max(box[3], b[3]))
            )
        mu_pos = self.pos_bkg * norm[self.pos_energy]
        total = float(self.bkg_masked_sum @ norm)
        if box is not None:
            y0, y1, x0, x1 = box
            in_box, local, mask_box, bkg_box_sum = self._box_info(box)
            bkg_box = self.background[:, y0:y1, x0:x1]
            mu_box = bkg_box * norm[:, None, None] + sig[:, y0:y1, x0:x1]
            total += float(np.sum(np.maximum(mu_box, TRUNCATION_VALUE), where=mask_box)) - float(
                bkg_box_sum @ norm
            )
            mu_pos[in_box] = mu_box.ravel()[local]
            sig[:, y0:y1, x0:x1] = 0.0
        stat, ratio = self._stat_from_pos(total, mu_pos)
        if not grad:
            return stat, None
        gcan = np.zeros(self.n_parameters)
        if dnorm is not None:
            low = None
            if box is not None:
                # fitted bins with truncated npred do not depend on the norm
                low = 2.0 * np.where(mask_box & (mu_box <= TRUNCATION_VALUE), bkg_box, 0).sum(
                    axis=(1, 2)
                )
            self._bkg_grad(gcan, dnorm, ratio, len(norm), low)
        if parts:
            w_box = np.where(mask_box & (mu_box > TRUNCATION_VALUE), 2.0, 0.0)
            w_flat = w_box.reshape(-1)
            w_flat[local] -= 2.0 * ratio[in_box]
            for ev, sl, ys, xs in parts:
                w = w_box[:, ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
                self._src_grad(gcan, sl, ev, ev.backward(np.ascontiguousarray(w)))
        return stat, gcan * self.to_canonical

    def _evaluate_statistic(self, values: np.ndarray, grad: bool) -> tuple[float, Array | None]:
        """A statistic of the signal alone (wstat): dense signal on the fitted bins."""
        theta = self._canonical(values)
        sig = np.zeros(self.shape)
        parts = []
        for ev, sl in self.sources:
            out = ev.npred(self._src_theta(theta, sl, ev), grad=grad)
            if out is not None:
                ys, xs = ev.slices
                sig[:, ys, xs] += out
                parts.append((ev, sl, ys, xs))
        if not grad:
            return self.statistic.stat_sum(sig[self.mask]), None
        value, dmu = self.statistic.stat_sum_and_grad(sig[self.mask])
        w = np.zeros(self.shape)
        w[self.mask] = dmu
        gcan = np.zeros(self.n_parameters)
        for ev, sl, ys, xs in parts:
            self._src_grad(gcan, sl, ev, ev.backward(np.ascontiguousarray(w[:, ys, xs])))
        return value, gcan * self.to_canonical

    # ------------------------------------------------------------ interface
    supports_requests = True

    def stat(self, values: np.ndarray, request: Request | None = None) -> float:
        """The statistic at the joint parameter vector ``values`` (stored units).

        ``request`` restricts the fitted bins (see `~gdask.likelihood.Request`).
        """
        return self._evaluate(values, grad=False, request=request)[0]

    def stat_and_grad(
        self, values: np.ndarray, request: Request | None = None
    ) -> tuple[float, np.ndarray]:
        """The statistic and its gradient per stored unit of every joint parameter."""
        stat, g = self._evaluate(values, grad=True, request=request)
        return stat, g

    def npred_signal(self, values: np.ndarray) -> Array:
        """Predicted source counts ``(energy, lat, lon)``."""
        self._use(None)
        theta = self._canonical(values)
        out = np.zeros(self.shape)
        for ev, sl in self.sources:
            part = ev.npred(self._src_theta(theta, sl, ev))
            if part is not None:
                ys, xs = ev.slices
                out[:, ys, xs] += part
        return out

    def npred(self, values: np.ndarray) -> Array:
        """Total predicted counts ``(energy, lat, lon)`` (negative values clipped to 0).

        With wstat the background is the profiled one on the fitted bins (0 elsewhere).
        """
        sig = self.npred_signal(values)  # on the term's own fitted bins
        if self.statistic is not None:
            bkg = np.zeros(self.shape)
            bkg[self.mask] = self.statistic.npred_background(sig[self.mask])
            return np.clip(sig + bkg, 0, None)
        norm, _ = self._bkg_norm(np.asarray(values, float) * self.to_canonical, False)
        return np.clip(sig + self.background * norm[:, None, None], 0, None)

    def info(self) -> dict[str, Any]:
        """Name, shape, number of fitted bins and counts in them."""
        self._use(None)
        return {
            "name": self.name,
            "stat_type": self.stat_type,
            "shape": self.shape,
            "n_fit_bins": int(self.mask.sum()),
            "counts": float(self.counts[self.mask].sum()),
            "energy_reco_center": self.e_reco_center.tolist(),
        }


def read_map_dataset(source: str, name: str | None = None) -> MapDataset:
    """Read a map dataset from a GADF-DL4 FITS file or ``"<dataset store path>::<name>"``.

    A FITS file with a ``COUNTS_OFF`` HDU is read as a `~gdask.datasets.MapDatasetOnOff`.
    """
    from gdask.datasets.store import DatasetStore, split_store_source

    in_store = split_store_source(source)
    if in_store is not None:
        path, group = in_store
        return DatasetStore(path).read(group, lazy=False)
    path = Path(source)
    try:
        with fits.open(path) as hdul:
            on_off = "COUNTS_OFF" in hdul
    except OSError:
        on_off = False  # MapDataset.read names the unreadable file
    cls = MapDatasetOnOff if on_off else MapDataset
    return cls.read(path, name=name, require=("counts", "exposure"))


@register_term("map")
def build_map_term(spec: TermSpec) -> MapTerm:
    """Build a `MapTerm` from a `TermSpec` (``source``: FITS file or ``store::name``).

    Options: ``energy_min``, ``energy_max`` (TeV, the fit range) and ``stat``
    (``"cash"`` or ``"wstat"``, see `MapTerm`); unknown options raise ``ValueError``.
    """
    unknown = set(spec.options) - {"stat", "energy_min", "energy_max"}
    if unknown:
        raise ValueError(f"unknown map term options {sorted(unknown)}")
    dataset = read_map_dataset(spec.source, name=spec.name)
    models = Models.from_dict(spec.models)
    return MapTerm(
        dataset,
        models,
        name=spec.name,
        energy_min=spec.options.get("energy_min"),
        energy_max=spec.options.get("energy_max"),
        stat=spec.options.get("stat"),
        layout=spec.layout,
    )

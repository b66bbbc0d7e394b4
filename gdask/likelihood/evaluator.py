"""Per-source evaluation of predicted counts on a map dataset, as Gammapy's MapEvaluator.

For one `~gdask.models.SkyModel` on one dataset the predicted counts are

    npred[r] = sum_t K[t, r] * expo[t] * T * F_t * (PSF_t (*) s)        (true-energy PSF)
    npred[r] = PSF_r (*) sum_t K[t, r] * expo[t] * T * F_t * s          (reco-energy PSF)

with ``F_t`` the spectral integral per true-energy bin, ``s`` the spatial
integral per pixel, ``T`` the temporal norm averaged over the GTIs, ``K`` the
energy-dispersion kernel and ``expo`` the exposure, all on a cutout around
the source.

Evaluation is a pure function of the source's parameters (the model objects
are read for their functional form only, never for their values, and never
written).  The PSF kernel, the energy dispersion and the cutout are taken at
the *anchor*: the position the source had when the evaluator was built while
it is within ``evaluation_radius + 0.1 deg`` of it (Gammapy's update rule with
the build position as the last update), else its current position.  The
cutout is ``psf_width + 2 (evaluation_radius + 0.1 deg)`` wide (odd pixels,
trimmed at the border) with the radius at the current parameters; sources
whose cutout misses the fit mask are skipped.  Gammapy's evaluator instead
keeps the IRFs of its last update (its first spatial change always updates),
which makes its values depend on the evaluation path; the two agree whenever
Gammapy's last update was at the build position (see
``tests/validation/test_likelihood3d_vs_gammapy.py``).

The setups (IRFs and cutout per anchor) and the spectral, temporal and spatial
integrals are cached, each keyed on everything it depends on (anchor, cutout,
parameters), so the cache never changes a value.  `SourceEvaluator.backward`
turns ``d stat / d npred`` on the cutout into the gradient with respect to
the model's canonical parameters, through the (linear) PSF and dispersion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.nddata.utils import NoOverlapError
from numpy.typing import NDArray

from gdask.datasets.irf_maps import EDispKernelMap
from gdask.geometry.wcs import WcsGeom
from gdask.likelihood.psf_kernel import KernelConvolver, PSFKernelMaker, round_up_to_odd
from gdask.likelihood.spatial_integration import (
    SpatialIntegral,
    SpatialIntegrator,
    cutout_slices,
    spatial_geometry_at,
)
from gdask.models.spatial import sky_geometry

__all__ = ["DatasetIRFs", "SourceEvaluator", "CUTOUT_MARGIN"]

Array = NDArray[np.float64]
#: margin (deg) of cutouts and of the position-update rule (Gammapy's CUTOUT_MARGIN)
CUTOUT_MARGIN = 0.1


@dataclass
class DatasetIRFs:
    """Plain arrays of a map dataset that sources are evaluated with.

    Attributes
    ----------
    geom : WcsGeom
        Counts grid.
    exposure : ndarray
        ``(n_true, ny, nx)`` in cm2 s.
    energy_true_edges, energy_true_center, energy_reco_center : ndarray
        Energy axes (TeV).
    psf : PSFKernelMaker or None
    psf_is_reco : bool
        PSF in reconstructed energy (applied after the dispersion).
    edisp : EDispKernelMap or None
    mask_image : ndarray or None
        ``(ny, nx)`` bool: pixels with any fitted bin.
    gti : tuple of ndarray or None
        GTI start and stop (MJD).
    """

    geom: WcsGeom
    exposure: Array
    energy_true_edges: Array
    energy_true_center: Array
    energy_reco_center: Array
    psf: PSFKernelMaker | None
    psf_is_reco: bool
    edisp: EDispKernelMap | None
    mask_image: NDArray[np.bool_] | None
    gti: tuple[Array, Array] | None


#: IRF setups (and IRFs per position) kept per source
_N_CACHED = 4


@dataclass
class _Setup:
    """What a source is evaluated with at one IRF position: dispersion, PSF, cutout."""

    key: tuple
    kernel_edisp: Array | None
    slices: tuple[slice, slice]
    cut_geom: WcsGeom
    exposure: Array | None
    convolver: KernelConvolver | None
    integrator: SpatialIntegrator | None
    contributes: bool


def _to_frame(lon: float, lat: float, frame: str, target: str) -> tuple[float, float]:
    if frame == target:
        return lon, lat
    c = SkyCoord(lon, lat, unit="deg", frame=frame).transform_to(target)
    return float(c.spherical.lon.deg), float(c.spherical.lat.deg)


class SourceEvaluator:
    """Predicted counts of one sky model on one dataset, with caching and gradients.

    Parameters
    ----------
    model : SkyModel
    irfs : DatasetIRFs
    """

    def __init__(self, model: Any, irfs: DatasetIRFs) -> None:
        self.model = model
        self.irfs = irfs
        self.spectral = model.spectral_model
        self.spatial = model.spatial_model
        self.temporal = model.temporal_model
        self.n_spec = len(self.spectral.parameters)
        self.n_spat = len(self.spatial.parameters) if self.spatial is not None else 0
        self.n_temp = len(self.temporal.parameters) if self.temporal is not None else 0
        self.unit_scale = self._unit_scale()
        theta0 = (
            np.asarray(self.spatial.parameters.canonical_value, float)
            if self.spatial is not None
            else np.zeros(0)
        )
        pos0, radius, _ = spatial_geometry_at(self.spatial, theta0)
        self.local = radius is not None
        #: where the source was when the term was built: the IRFs are taken here
        #: while the source stays within ``evaluation_radius + CUTOUT_MARGIN`` of it
        self.anchor0 = pos0
        self.setup: _Setup | None = None
        self._setups: dict[tuple, _Setup] = {}
        self._selected: dict[tuple, _Setup] = {}
        self._selected: dict[tuple, _Setup] = {}
        self._irf_at: dict[tuple, tuple] = {}
        self._spec_cache: tuple | None = None
        self._spat_cache: tuple | None = None
        self._temp_cache: tuple | None = None
        self.n_updates = 0

    def _unit_scale(self) -> float:
        """Factor making spectral integral x spatial integral x exposure dimensionless."""
        import astropy.units as u

        unit = u.Unit(self.spectral.output_unit or "") * u.TeV
        if self.spatial is not None:
            unit = unit * u.Unit(getattr(self.spatial, "output_unit", "sr-1") or "sr-1") * u.sr
        if self.model.apply_irf["exposure"]:
            unit = unit * u.Unit("cm2 s")
        return float(unit.to(""))

    # ------------------------------------------------------------ IRF setup
    def _anchor(self, th_spat: Array) -> tuple[tuple[float, float] | None, float | None]:
        """Where the IRFs are taken for these spatial parameters, and the evaluation radius.

        The build position while the source is within ``evaluation_radius +
        CUTOUT_MARGIN`` of it (Gammapy's update rule, with the build position as
        the last update), else the current position: a function of ``th_spat`` only.
        """
        if self.spatial is None:
            return None, None
        pos, radius, _ = spatial_geometry_at(self.spatial, th_spat)
        if pos is None or radius is None or self.anchor0 is None:
            return self.anchor0, radius
        sep = float(sky_geometry(pos[0], pos[1], *self.anchor0)["sep"])
        if sep > np.radians(float(radius) + CUTOUT_MARGIN):
            return (float(pos[0]), float(pos[1])), radius
        return self.anchor0, radius

    def select(self, th_spat: Array) -> _Setup:
        """The IRF setup (PSF, dispersion, cutout) for these spatial parameters; cached."""
        anchor, radius = self._anchor(th_spat)
        geom = self.irfs.geom
        if anchor is None:
            pos, frame = geom.center_coord, geom.frame
        else:
            pos, frame = anchor, self.spatial.frame
        irf_key = (float(pos[0]), float(pos[1]), frame)
        pre = irf_key + (radius,)
        setup = self._selected.get(pre)
        if setup is not None:
            self.setup = setup
            return setup
        if irf_key not in self._irf_at:
            self._irf_at = {irf_key: self._irfs_at(pos, frame), **self._irf_at}
            while len(self._irf_at) > _N_CACHED:
                self._irf_at.pop(next(reversed(self._irf_at)))
        kernel_edisp, kernel = self._irf_at[irf_key]
        psf_width = kernel.shape[-1] * float(np.max(geom.pixel_scales)) if kernel is not None else 0
        ny, nx = geom.shape
        sl = (slice(0, ny), slice(0, nx))
        contributes = True
        if self.local and radius is not None:
            radius = float(radius)
            contributes = self._check_contributes(pos, frame, radius, psf_width)
            if contributes:
                width = psf_width + 2 * (radius + CUTOUT_MARGIN)
                binsz = np.asarray(geom.pixel_scales, float)
                size = tuple(round_up_to_odd(v) for v in np.clip(width / binsz[::-1], 1, None))
                x, y = geom.coord_to_pix(_to_frame(pos[0], pos[1], frame, geom.frame))
                sl = cutout_slices(geom.shape, float(x), float(y), size)
        key = irf_key + (contributes, sl[0].start, sl[0].stop, sl[1].start, sl[1].stop)
        setup = self._setups.get(key)
        if setup is None:
            setup = self._make_setup(key, kernel_edisp, kernel, sl, contributes)
            self._setups[key] = setup
            while len(self._setups) > _N_CACHED:
                self._setups.pop(next(iter(self._setups)))
        self._selected[pre] = setup
        while len(self._selected) > _N_CACHED:
            self._selected.pop(next(iter(self._selected)))
        self.setup = setup
        return setup

    def _irfs_at(self, pos: tuple[float, float], frame: str) -> tuple:
        """Energy dispersion matrix and PSF kernel at a sky position."""
        irfs = self.irfs
        kernel_edisp = self._edisp_matrix(pos, frame)
        kernel = None
        if irfs.psf is not None and self.spatial is not None and self.model.apply_irf["psf"]:
            centers = irfs.energy_reco_center if irfs.psf_is_reco else irfs.energy_true_center
            kernel = irfs.psf.kernel(irfs.geom, centers, pos[0], pos[1], frame)
        return kernel_edisp, kernel

    def _make_setup(
        self,
        key: tuple,
        kernel_edisp: Array | None,
        kernel: Array | None,
        sl: tuple,
        contributes: bool,
    ) -> _Setup:
        self.n_updates += 1
        geom = self.irfs.geom
        cut_wcs = geom.wcs.slice(sl)
        cut_geom = WcsGeom(cut_wcs, (sl[1].stop - sl[1].start, sl[0].stop - sl[0].start))
        exposure = (
            np.ascontiguousarray(self.irfs.exposure[(slice(None),) + sl])
            if self.model.apply_irf["exposure"]
            else None
        )
        return _Setup(
            key=key,
            kernel_edisp=kernel_edisp,
            slices=sl,
            cut_geom=cut_geom,
            exposure=exposure,
            convolver=KernelConvolver(kernel, cut_geom.shape) if kernel is not None else None,
            integrator=(
                SpatialIntegrator(self.spatial, cut_geom, self.irfs.energy_true_center)
                if self.spatial is not None
                else None
            ),
            contributes=contributes,
        )

    # the current setup's pieces (set by `select`, i.e. by the last npred call)
    @property
    def slices(self) -> tuple[slice, slice]:
        """Cutout ``(y, x)`` slices of the current setup."""
        return self.setup.slices

    @property
    def kernel_edisp(self) -> Array | None:
        """Dispersion matrix ``(n_true, n_reco)`` of the current setup (None: identity)."""
        return self.setup.kernel_edisp

    @property
    def contributes(self) -> bool:
        """Whether the current setup's cutout touches the fitted region."""
        return self.setup is None or self.setup.contributes

    @property
    def exposure(self) -> Array | None:
        """Exposure on the current cutout (None without ``apply_irf["exposure"]``)."""
        return self.setup.exposure

    @property
    def convolver(self) -> KernelConvolver | None:
        """PSF convolution of the current setup."""
        return self.setup.convolver

    @property
    def integrator(self) -> SpatialIntegrator | None:
        """Spatial integration on the current cutout."""
        return self.setup.integrator

    @property
    def cut_geom(self) -> WcsGeom:
        """Geometry of the current cutout."""
        return self.setup.cut_geom

    def _check_contributes(self, pos, frame, radius, psf_width) -> bool:
        mask = self.irfs.mask_image
        if mask is None:
            return True
        geom = self.irfs.geom
        width = 2 * radius + CUTOUT_MARGIN + psf_width
        x, y = geom.coord_to_pix(_to_frame(pos[0], pos[1], frame, geom.frame))
        binsz = np.asarray(geom.pixel_scales, float)
        try:
            sl = cutout_slices(
                geom.shape, float(x), float(y), tuple(np.clip(width / binsz[::-1], 1, None))
            )
        except (NoOverlapError, ValueError):
            return False
        return bool(np.any(mask[sl]))

    def _edisp_matrix(self, pos, frame) -> Array | None:
        irfs = self.irfs
        ed = irfs.edisp
        if ed is None or not self.model.apply_irf["edisp"]:
            n_t, n_r = len(irfs.energy_true_center), len(irfs.energy_reco_center)
            if n_t != n_r:
                raise NotImplementedError("no energy dispersion and true != reco energy axes")
            return None
        data = np.asarray(ed.data, dtype=float)
        if ed.geom is None:
            return data.reshape(data.shape[:2])
        lon, lat = _to_frame(pos[0], pos[1], frame, ed.geom.frame)
        x, y = ed.geom.coord_to_pix((lon, lat))
        ly, lx = data.shape[2:]
        valid = np.any(data > 0, axis=(0, 1))
        ix = int(np.floor(float(x) + 0.5))
        iy = int(np.floor(float(y) + 0.5))
        inside = 0 <= ix < lx and 0 <= iy < ly
        if (not inside or not valid[iy, ix]) and valid.any():
            glon, glat = ed.geom.get_coord()
            sep = np.where(valid, sky_geometry(glon, glat, lon, lat)["sep"], np.inf)
            iy, ix = np.unravel_index(np.argmin(sep), sep.shape)
        else:
            ix = int(np.clip(np.ceil(float(x) - 0.5), 0, lx - 1))
            iy = int(np.clip(np.ceil(float(y) - 0.5), 0, ly - 1))
        return np.ascontiguousarray(data[:, :, iy, ix])

    # ---------------------------------------------------------------- forward
    def _spectral(self, theta: Array, grad: bool) -> tuple[Array, Array | None]:
        key = tuple(theta)
        c = self._spec_cache
        if c is not None and c[0] == key and (c[2] is not None) == grad:  # same function
            return c[1], c[2]
        e = self.irfs.energy_true_edges
        if grad:
            f, df = self.spectral.integral_and_grad_theta(e[:-1], e[1:], theta)
            f, df = f * self.unit_scale, df * self.unit_scale
        else:
            f, df = self.spectral.integral_theta(e[:-1], e[1:], theta) * self.unit_scale, None
        self._spec_cache = (key, np.asarray(f, float), None if df is None else np.asarray(df))
        return self._spec_cache[1], self._spec_cache[2]

    def _temporal(self, theta: Array, grad: bool) -> tuple[float, Array | None]:
        if self.temporal is None or self.irfs.gti is None:
            return 1.0, None
        key = tuple(theta)
        c = self._temp_cache
        if c is not None and c[0] == key and (c[2] is not None) == grad:  # same function
            return c[1], c[2]
        start, stop = self.irfs.gti
        t, dt = self.temporal.mean_norm_theta(start, stop, theta, grad)
        self._temp_cache = (key, t, dt)
        return t, dt

    def _spatial_conv(self, theta: Array, grad: bool) -> tuple[SpatialIntegral | None, Array]:
        """Spatial integral and its PSF-convolved version ``(n_true or 1, cy, cx)``."""
        key = (self.setup.key, tuple(theta))
        c = self._spat_cache
        if c is not None and c[0] == key and (c[3] or not grad):
            return c[1], c[2]
        if self.integrator is None:
            s = SpatialIntegral(np.ones(self.cut_geom.shape))
            conv = s.value[None]
        else:
            s = self.integrator.integrate(theta, grad=grad)
            if self.convolver is not None and not self.irfs.psf_is_reco:
                if s.sparse is not None:
                    iy, ix, w, _ = s.sparse
                    conv = self.convolver.convolve_sparse(iy, ix, w)
                else:
                    conv = self.convolver.convolve(s.value)
            else:
                conv = s.value if s.value.ndim == 3 else s.value[None]
        self._spat_cache = (key, s, conv, grad)
        return s, conv

    def npred(self, theta: Array, grad: bool = False) -> Array | None:
        """Predicted counts on the cutout ``(n_reco, cy, cx)``; None if not contributing.

        ``theta`` holds the model's canonical parameters (spectral, spatial, temporal).
        With ``grad`` the intermediates needed by `backward` are kept.
        """
        m = self._true_counts(theta, grad)
        if m is None:
            return None
        out = self._apply_edisp(m)
        if self.convolver is not None and self.irfs.psf_is_reco:
            out = self.convolver.convolve(out)
        return out

    @property
    def is_nonnegative(self) -> bool:
        """Whether the last spectral integrals and temporal norm are all >= 0."""
        spec = self._spec_cache
        temp = self._temp_cache
        return bool((spec is None or spec[1].min() >= 0) and (temp is None or temp[1] >= 0))

    @property
    def folds_after_psf(self) -> bool:
        """True when npred is ``K^T M`` with `npred_true`'s ``M`` (no reco-energy PSF)."""
        reco_psf = self.irfs.psf is not None and self.irfs.psf_is_reco
        return not (reco_psf and self.spatial is not None and self.model.apply_irf["psf"])

    def npred_true(self, theta: Array, grad: bool = False) -> Array | None:
        """Counts per true-energy bin on the cutout before dispersion ``(n_true, cy, cx)``.

        Only for sources with `folds_after_psf`; npred is ``einsum("tr,tyx->ryx", K, M)``.
        """
        return self._true_counts(theta, grad)

    def _true_counts(self, theta: Array, grad: bool) -> Array | None:
        """Shared start of `npred` and `npred_true`: ``(n_true, cy, cx)`` counts before edisp.

        Refreshes the cutout when the position moved, keeps the parameters in
        ``_last`` for `backward`; None if the source does not contribute.
        """
        ns, np_ = self.n_spec, self.n_spat
        th_spec, th_spat, th_temp = theta[:ns], theta[ns : ns + np_], theta[ns + np_ :]
        self.select(th_spat)
        if not self.contributes:
            return None
        f, _ = self._spectral(th_spec, grad)
        t, _ = self._temporal(th_temp, grad)
        _, conv = self._spatial_conv(th_spat, grad)
        m = conv * (f * t)[:, None, None]
        if self.exposure is not None:
            m = m * self.exposure
        self._last = (th_spec, th_spat, th_temp)
        return m

    def _apply_edisp(self, m: Array) -> Array:
        k = self.kernel_edisp
        if k is None:
            return m
        return np.einsum("tr,tyx->ryx", k, m)

    # --------------------------------------------------------------- backward
    def backward(self, w: Array) -> Array:
        """Gradient of the statistic w.r.t. the model's canonical parameters.

        ``w`` is ``d stat / d npred`` on the cutout ``(n_reco, cy, cx)``; call
        after `npred` with ``grad=True`` at the same parameters.
        """
        if self.convolver is not None and self.irfs.psf_is_reco:
            w = self.convolver.adjoint(w, sum_planes=False)
        k = self.kernel_edisp
        g = np.einsum("tr,ryx->tyx", k, w) if k is not None else w
        return self.backward_true(g)

    def backward_true(self, g: Array) -> Array:
        """Gradient from ``g = d stat / d M`` (see `npred_true`), shape ``(n_true, cy, cx)``."""
        th_spec, th_spat, th_temp = self._last
        f, df = self._spectral(th_spec, True)
        t, dt = self._temporal(th_temp, True)
        s, conv = self._spatial_conv(th_spat, True)
        if self.exposure is not None:
            g = g * self.exposure
        # g = d stat / d (F_t T S_t) per pixel
        d_ft = (
            np.einsum("tyx,tyx->t", g, conv)
            if conv.shape[0] == g.shape[0]
            else np.einsum("tyx,yx->t", g, conv[0])
        )
        out = np.zeros(self.n_spec + self.n_spat + self.n_temp)
        out[: self.n_spec] = df @ (d_ft * t)
        if dt is not None:
            out[self.n_spec + self.n_spat :] = dt * float(d_ft @ f)
        if self.n_spat and self.integrator is not None:
            a = g * (f * t)[:, None, None]  # d stat / d conv
            if self.convolver is not None and not self.irfs.psf_is_reco:
                if s.sparse is not None:
                    iy, ix, _, dw = s.sparse
                    ds = self.convolver.adjoint_sparse(a, iy, ix)
                    out[self.n_spec : self.n_spec + 2] = dw @ ds
                    return out
                ds = self.convolver.adjoint(a, sum_planes=s.value.ndim == 2)
            else:
                ds = a.sum(axis=0) if s.value.ndim == 2 else a
            if s.sparse is not None:
                iy, ix, _, dw = s.sparse
                out[self.n_spec : self.n_spec + 2] = dw @ ds[iy, ix]
            else:
                axes = tuple(range(1, s.grad.ndim))
                out[self.n_spec : self.n_spec + self.n_spat] = np.tensordot(
                    s.grad, ds, axes=(axes, tuple(range(ds.ndim)))
                )
        return out

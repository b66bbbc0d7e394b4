"""The 1D spectrum likelihood term (WSTAT or cash) with analytic gradients.

Predicted signal counts follow Gammapy 2.1's evaluation of a `SkyModel` on a
spectrum dataset::

    npred_sig[j] = sum_i  F_i * T * exposure[i] * edisp[i, j]

with ``F_i`` the spectral model integrated over true-energy bin ``i``
(`SpectralModel.integral_theta`, Gammapy's quadrature) and ``T`` the time
average of the temporal model over the dataset's GTIs (1 without a temporal
model).  As in Gammapy for an OGIP spectrum (region without PSF), the spatial
model is ignored.  ``apply_irf`` switches of the SkyModel are honoured
(``edisp: False`` uses the diagonal response).  Only SkyModels whose
``datasets_names`` is None or contains the dataset name contribute.

Statistics (the term names one of `gdask.stats.STATISTICS` and evaluates it
through the `gdask.stats.Statistic` interface on the fitted bins):

``wstat``
    default when the dataset has OFF counts; background profiled
    (`gdask.stats.WStatStatistic`, NaN set to 0 as Gammapy's ``nan_to_num``).
``cash``
    default without OFF counts; known background: the dataset's
    ``background`` variable if present, else ``alpha * counts_off``, else 0;
    ``mu = max(npred_sig + bkg, 0)`` (Gammapy's npred clipping) into
    `gdask.stats.CashStatistic`. A `FoVBackgroundModel` bound to the dataset
    (``datasets_names``) scales the known background by its spectral model at
    the reco-energy bin centres, as Gammapy's ``npred_background`` of a
    ``SpectrumDataset``.

Fitted bins are ``mask_safe & mask_fit (if stored) & energy range``; the
energy range keeps reco bins fully inside ``[energy_min, energy_max]``, as
Gammapy's ``geom.energy_mask``.

Energy-scale nuisance: an `~gdask.models.EnergyScaleModel` naming the dataset
in ``datasets_names`` (either parametrisation, see `gdask.models.nuisance`);
or, the older form, the option ``energy_scale`` naming a parameter ``s``: the
dataset's true-energy bin ``[E1, E2]`` receives the photons of physical
energies ``[(1+s) E1, (1+s) E2]``; i.e. the flux seen through the IRFs is
``(1+s) phi((1+s) E)`` (photon number conserved).  ``s > 0`` means the
instrument reports energies ``1+s`` times too low.  The parameter is read
as a dimensionless number (its canonical value).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from astropy import units as u
from numpy.typing import NDArray

from gdask.datasets.spectrum import SpectrumDatasetOnOff
from gdask.errors import ConfigError
from gdask.likelihood.folding import (
    diagonal_response,
    energy_range_mask,
    fold_kernel,
    integration_grid,
    scaled_integral_and_grads,
    subset_ndecade,
)
from gdask.likelihood.term import LikelihoodTerm, Request, TermSpec, register_term
from gdask.models import (
    ComponentLayout,
    EnergyScaleModel,
    FoVBackgroundModel,
    Models,
    ParameterLayout,
    SkyModel,
)
from gdask.models.integrate import DEFAULT_NDECADE
from gdask.models.nuisance import EnergyScale
from gdask.stats import STATISTICS, Statistic, make_statistic, wstat_mu_bkg

__all__ = ["SpectrumOnOffTerm", "build_spectrum_term", "STATS"]

STATS = tuple(STATISTICS)
Array = NDArray[np.float64]
#: most fitted-bin selections (requests) a term keeps
_MAX_VIEWS = 32
_OPTIONS = ("stat", "energy_min", "energy_max", "energy_scale", "ndecade")


@dataclass
class _Group:
    """One folding kernel (per ``apply_irf`` combination): rows, matrix, grid density."""

    rows: NDArray[np.intp]
    kernel: Array  # (len(rows), n_fit)
    ndecade: float
    full: Array  # (n_true, n_reco) exposure x edisp on the full axes, for npred


@dataclass
class _Source:
    """One contributing SkyModel: where its parameters sit and its cached flux."""

    name: str
    spectral: Any
    spec_pos: NDArray[np.intp]
    temporal: Any
    temp_pos: NDArray[np.intp]
    t_min: Array | None
    t_max: Array | None
    group: int
    grid: Array | None = None
    cache: dict[str, Any] = field(default_factory=dict)


def _tev(x: Any) -> float | None:
    if x is None:
        return None
    if isinstance(x, (str, u.Quantity)):
        return float(u.Quantity(x).to_value("TeV"))
    return float(x)


def _param_position(layout: ParameterLayout, name: str) -> int:
    """`ParameterLayout.position`, as a configuration error naming ``energy_scale``."""
    try:
        return layout.position(name)
    except KeyError:
        raise ConfigError(
            f"energy_scale parameter {name!r} not found (or ambiguous) in the models; "
            "use '<model>.<type>.<name>'",
            field="energy_scale",
        ) from None


class SpectrumOnOffTerm(LikelihoodTerm):
    """Likelihood term of one 1D spectrum dataset.

    Parameters
    ----------
    dataset : SpectrumDatasetOnOff
        The data (loaded into memory at construction).
    models : Models
        The joint models; the term reads/writes the full ``models.parameters`` vector.
    name : str, optional
        Dataset name (default: the dataset's).
    stat : {"wstat", "cash"}, optional
        Default ``"wstat"`` with OFF counts, else ``"cash"``.
    energy_min, energy_max : float or Quantity, optional
        Fit range in TeV (reco bins fully inside are fitted).
    energy_scale : str, optional
        Name of an energy-scale nuisance parameter (see module doc).
    ndecade : float
        Points per decade of numerical spectral integrals (Gammapy: 100).
    layout : ParameterLayout, optional
        Layout of the joint vector (default: ``models.layout()``); every offset
        the term uses comes from it.
    """

    def __init__(
        self,
        dataset: SpectrumDatasetOnOff,
        models: Models,
        *,
        name: str | None = None,
        stat: str | None = None,
        energy_min: Any = None,
        energy_max: Any = None,
        energy_scale: str | None = None,
        ndecade: float = DEFAULT_NDECADE,
        layout: ParameterLayout | None = None,
    ) -> None:
        self.name = str(name if name is not None else dataset.name)
        self._ndecade = float(ndecade)
        self.models = models
        self.layout = layout = layout if layout is not None else models.layout()
        self.n_parameters = layout.n_parameters
        self._to_canonical = layout.to_canonical
        self._x0 = models.parameters.value
        ds = dataset.ds
        has_off = "counts_off" in ds
        stat = stat or ("wstat" if has_off else "cash")
        if stat not in STATS:
            raise ConfigError(f"unknown statistic {stat!r}; use one of {STATS}", field="stat")
        if stat == "wstat" and not has_off:
            raise ConfigError(f"dataset {self.name!r} has no OFF counts for wstat", field="stat")
        self.stat_type = stat
        self._views: dict[Request, SpectrumOnOffTerm] = {}

        # -- data and masks ---------------------------------------------------------
        self.edges = dataset.energy_axis.quantity_edges.to_value("TeV").astype(float)
        self.edges_true = dataset.energy_axis_true.quantity_edges.to_value("TeV").astype(float)
        n_reco = self.edges.size - 1
        self.counts = np.asarray(ds["counts"].values, dtype=float)
        self.counts_off = np.asarray(ds["counts_off"].values, float) if has_off else None
        self.alpha = np.asarray(dataset.alpha.values, float) if has_off else None
        mask = (
            np.asarray(ds["mask_safe"].values, bool) if "mask_safe" in ds else np.ones(n_reco, bool)
        )
        if "mask_fit" in ds:
            mask = mask & np.asarray(ds["mask_fit"].values, bool)
        self.energy_min, self.energy_max = _tev(energy_min), _tev(energy_max)
        file_edges, file_unit = dataset.energy_edges_as_read()
        self.mask = mask & energy_range_mask(
            file_edges, self.energy_min, self.energy_max, unit=file_unit
        )
        self._file_edges = (file_edges, file_unit)  # what a `Request`'s range is applied to
        self._cols = np.flatnonzero(self.mask)
        self._n_on = self.counts[self._cols]
        cols = self._cols
        if stat == "cash":
            if "background" in ds:
                bkg = np.asarray(ds["background"].values, float)
            elif has_off:
                bkg = self.alpha * self.counts_off
            else:
                bkg = np.zeros(n_reco)
            self.background = bkg
            self._bkg = bkg[cols]
        # the FoV background model bound to this dataset (cash only), set below
        self._bkg_model: Any = None
        self._bkg_pos = np.zeros(0, np.intp)
        self.statistic: Statistic = make_statistic(
            stat,
            self._n_on,
            n_off=self.counts_off[cols] if has_off else None,
            alpha=self.alpha[cols] if has_off else None,
            background=self._bkg if stat == "cash" else None,
        )

        # -- IRFs -------------------------------------------------------------------
        exposure = dataset.exposure
        self.exposure = (
            np.zeros(self.edges_true.size - 1)
            if exposure is None
            else np.asarray(exposure.values, float)
        )
        self.edisp = (
            np.asarray(ds["edisp"].transpose("energy_true", "energy").values, float)
            if "edisp" in ds
            else diagonal_response(self.edges_true, self.edges)
        )
        self._groups: list[_Group] = []
        self._group_keys: dict[tuple[bool, bool], int] = {}

        # -- contributing models --------------------------------------------------------
        self._sources: list[_Source] = []
        self._escale_pos: int | None = None
        self._escale_factor = EnergyScale.factor
        gti = dataset.gti
        for comp in layout.for_dataset(self.name):
            m = models[comp.name]
            if isinstance(m, FoVBackgroundModel):
                self._bind_background_model(m, comp)
            if isinstance(m, EnergyScaleModel):
                self._bind_energy_scale(m, comp)
            if isinstance(m, SkyModel) and m.spectral_model is not None:
                self._sources.append(self._make_source(m, comp, gti))
        if energy_scale is not None:  # a parameter named in the options: the "scale" form
            if self._escale_pos is not None:
                raise ConfigError(
                    f"dataset {self.name!r} has an EnergyScaleModel and an energy_scale option",
                    field="energy_scale",
                )
            self._escale_pos = _param_position(layout, energy_scale)
        own = layout.positions(self.name)
        self.depends_on = own if self._escale_pos is None else np.union1d(own, [self._escale_pos])
        self._last: Array = self._x0.copy()

    # ------------------------------------------------------------------ setup helpers
    def _bind_background_model(self, m: FoVBackgroundModel, comp: ComponentLayout) -> None:
        if self.stat_type != "cash":
            raise ConfigError(
                f"FoVBackgroundModel {m.name!r} needs the cash statistic on spectrum "
                f"dataset {self.name!r} ({self.stat_type} profiles the background)",
                field="models",
            )
        if self._bkg_model is not None:
            raise ConfigError(
                f"two FoVBackgroundModels bound to spectrum dataset {self.name!r}",
                field="models",
            )
        self._bkg_model = m.spectral_model
        sp = comp.part("spectral")
        self._bkg_pos = np.arange(sp.start, sp.stop)
        self._e_center = np.sqrt(self.edges[:-1] * self.edges[1:])[self._cols]
        self.statistic = make_statistic("cash", self._n_on)  # background enters mu_sig

    def _bind_energy_scale(self, m: EnergyScaleModel, comp: ComponentLayout) -> None:
        if self._escale_pos is not None:
            raise ConfigError(
                f"two EnergyScaleModels apply to spectrum dataset {self.name!r}", field="models"
            )
        self._escale_pos = comp.start
        self._escale_factor = m.energy_scale.factor

    def _bkg_norm(
        self, values: Array, grad: bool, energy: Array | None = None
    ) -> tuple[Array, Array | None]:
        """The FoV model's norm at the fitted bins' reco centres (or ``energy``), and d/dtheta."""
        energy = self._e_center if energy is None else energy
        theta = values[self._bkg_pos] * self._to_canonical[self._bkg_pos]
        sm = self._bkg_model
        norm = np.asarray(sm.evaluate_theta(energy, theta=theta), float)
        if not grad:
            return norm, None
        return norm, np.asarray(sm.evaluate_grad_theta(energy, theta=theta), float)

    def _group(self, apply_irf: dict[str, bool]) -> int:
        key = (bool(apply_irf.get("exposure", True)), bool(apply_irf.get("edisp", True)))
        if key not in self._group_keys:
            expo = self.exposure if key[0] else np.ones_like(self.exposure)
            edisp = self.edisp if key[1] else diagonal_response(self.edges_true, self.edges)
            rows, _, kernel = fold_kernel(expo, edisp, self.mask)
            nd = subset_ndecade(self.edges_true[:-1], self.edges_true[1:], rows, self._ndecade)
            self._groups.append(_Group(rows, kernel, nd, expo[:, None] * edisp))
            self._group_keys[key] = len(self._groups) - 1
        return self._group_keys[key]

    def _make_source(self, m: SkyModel, comp: ComponentLayout, gti: Any) -> _Source:
        sp, tp = comp.part("spectral"), comp.part("temporal")
        spec_pos = np.arange(sp.start, sp.stop)
        temporal = m.temporal_model
        temp_pos = np.arange(tp.start, tp.stop)
        t_min = t_max = None
        if temporal is not None:
            if gti is None or len(gti) == 0:
                raise ConfigError(
                    f"model {m.name!r} has a temporal model but dataset {self.name!r} has no GTI",
                    field="temporal",
                )
            ref = gti.time_reference
            t_min = getattr(ref + gti.start * u.s, temporal.scale).mjd
            t_max = getattr(ref + gti.stop * u.s, temporal.scale).mjd
        gi = self._group(m.apply_irf)
        g = self._groups[gi]
        grid = None
        if g.rows.size:
            grid = integration_grid(
                m.spectral_model,
                self.edges_true[:-1][g.rows],
                self.edges_true[1:][g.rows],
                g.ndecade,
            )
        return _Source(
            m.name, m.spectral_model, spec_pos, temporal, temp_pos, t_min, t_max, gi, grid
        )

    # ------------------------------------------------------------------ evaluation
    def _scale(self, values: Array) -> float:
        return self._scale_and_derivative(values)[0]

    def _scale_and_derivative(self, values: Array) -> tuple[float, float]:
        """The factor ``k`` of the folded ``k phi(k E)`` and ``dk/dp`` (stored unit of p)."""
        if self._escale_pos is None:
            return 1.0, 0.0
        c = self._to_canonical[self._escale_pos]
        k, dk = self._escale_factor(float(values[self._escale_pos] * c))
        return k, dk * c

    def _source_flux(self, src: _Source, values: Array, scale: float, grad: bool) -> dict:
        """Cached true-energy flux (and derivatives) of one source on its group's rows."""
        pos = np.concatenate([src.spec_pos, src.temp_pos])
        key = values[pos].tobytes() + np.float64(scale).tobytes()
        c = src.cache
        if c.get("key") == key and c.get("grad") == grad:  # the same function of theta
            return c
        g = self._groups[src.group]
        if g.rows.size == 0:  # nothing fitted: no contribution
            z = np.zeros(0)
            src.cache = {
                "key": key,
                "grad": grad,
                "flux": z,
                "tnorm": 1.0,
                "dtnorm": None,
                "dflux": np.zeros((src.spec_pos.size, 0)),
                "dscale": z,
            }
            return src.cache
        lo, hi = self.edges_true[:-1][g.rows], self.edges_true[1:][g.rows]
        theta = values[src.spec_pos] * self._to_canonical[src.spec_pos]
        flux, dflux, dscale = scaled_integral_and_grads(
            src.spectral,
            lo,
            hi,
            theta,
            scale,
            g.ndecade,
            grad=grad,
            grad_scale=grad and self._escale_pos is not None,
            grid=src.grid,
        )
        tnorm, dtnorm = 1.0, None
        if src.temporal is not None:
            tt = values[src.temp_pos] * self._to_canonical[src.temp_pos]
            tnorm, dtnorm = src.temporal.mean_norm_theta(src.t_min, src.t_max, tt, grad)
        src.cache = {
            "key": key,
            "grad": grad,
            "flux": flux,
            "dflux": dflux,
            "dscale": dscale,
            "tnorm": tnorm,
            "dtnorm": dtnorm,
        }
        return src.cache

    def _mu_sig(self, values: Array, grad: bool) -> tuple[Array, list, float]:
        scale = self._scale(values)
        per_group = [np.zeros(g.rows.size) for g in self._groups]
        parts = []
        for src in self._sources:
            c = self._source_flux(src, values, scale, grad)
            per_group[src.group] += c["flux"] * c["tnorm"]
            parts.append(c)
        mu = np.zeros(self._cols.size)
        for g, f in zip(self._groups, per_group, strict=True):
            mu += f @ g.kernel
        return mu, parts, scale

    supports_requests = True

    def _view(self, request: Request) -> SpectrumOnOffTerm:
        """The term restricted to ``request``'s bins (`restrict`, cached per request)."""
        view = self._views.get(request)
        if view is None:
            edges, unit = self._file_edges
            view = self.restrict(request.energy_mask(edges, unit=unit))
            view._views = {}
            self._views[request] = view
            while len(self._views) > _MAX_VIEWS:
                del self._views[next(iter(self._views))]
        return view

    def stat(self, values: np.ndarray, request: Request | None = None) -> float:
        """Statistic at the joint parameter vector ``values`` (stored units).

        ``request`` restricts the fitted bins (see `~gdask.likelihood.Request`).
        """
        term = self if request is None else self._view(request)
        return term._stat(values)

    def _stat(self, values: np.ndarray) -> float:
        values = np.asarray(values, dtype=float)
        self._last = values.copy()
        mu, _, _ = self._mu_sig(values, grad=False)
        if self._bkg_model is not None:
            mu = mu + self._bkg * self._bkg_norm(values, grad=False)[0]
        return self.statistic.stat_sum(mu)

    def stat_and_grad(
        self, values: np.ndarray, request: Request | None = None
    ) -> tuple[float, np.ndarray]:
        """Statistic and its gradient with respect to every entry of ``values``."""
        term = self if request is None else self._view(request)
        return term._stat_and_grad(values)

    def _stat_and_grad(self, values: np.ndarray) -> tuple[float, np.ndarray]:
        values = np.asarray(values, dtype=float)
        self._last = values.copy()
        mu, parts, scale = self._mu_sig(values, grad=True)
        dnorm = None
        if self._bkg_model is not None:
            norm, dnorm = self._bkg_norm(values, grad=True)
            mu = mu + self._bkg * norm
        value, dmu = self.statistic.stat_sum_and_grad(mu)
        out = np.zeros(self.n_parameters)
        vg = [g.kernel @ dmu for g in self._groups]  # d stat / d (flux x T) per true row
        dscale = 0.0
        for src, c in zip(self._sources, parts, strict=True):
            v = vg[src.group]
            out[src.spec_pos] += (c["dflux"] @ v) * c["tnorm"]
            if c["dtnorm"] is not None and src.temp_pos.size:
                out[src.temp_pos] += c["dtnorm"] * float(c["flux"] @ v)
            if self._escale_pos is not None:
                dscale += float(c["dscale"] @ v) * c["tnorm"]
        if dnorm is not None:
            out[self._bkg_pos] += dnorm @ (dmu * self._bkg)
        out *= self._to_canonical
        if self._escale_pos is not None:
            out[self._escale_pos] += dscale * self._scale_and_derivative(values)[1]
        return value, out

    # ------------------------------------------------------------------ sub-ranges
    def restrict(self, mask: np.ndarray) -> SpectrumOnOffTerm:
        """This term fitted on ``self.mask & mask`` only (data and IRFs shared, nothing re-read).

        What an estimator needs to evaluate the source in one energy bin (flux
        points, light-curve bins) on the already built term; Gammapy's
        ``slice_by_energy`` keeps the same fitted bins.

        Parameters
        ----------
        mask : array of bool
            One entry per reco-energy bin.

        Examples
        --------
        >>> sub = term.restrict(np.arange(term.counts.size) < 3)  # doctest: +SKIP
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.mask.shape:
            raise ValueError(f"mask of shape {mask.shape}, expected {self.mask.shape}")
        new = copy.copy(self)
        new.mask = self.mask & mask
        new._cols = cols = np.flatnonzero(new.mask)
        new._n_on = self.counts[cols]
        has_off = self.counts_off is not None
        if self.stat_type == "cash":
            new._bkg = self.background[cols]
        if self._bkg_model is not None:
            new._e_center = np.sqrt(self.edges[:-1] * self.edges[1:])[cols]
            new.statistic = make_statistic("cash", new._n_on)
        else:
            new.statistic = make_statistic(
                self.stat_type,
                new._n_on,
                n_off=self.counts_off[cols] if has_off else None,
                alpha=self.alpha[cols] if has_off else None,
                background=new._bkg if self.stat_type == "cash" else None,
            )
        keys = {gi: key for key, gi in self._group_keys.items()}
        new._groups, new._group_keys = [], {}
        sources = []
        for src in self._sources:
            key = keys[src.group]
            gi = new._group({"exposure": key[0], "edisp": key[1]})
            g = new._groups[gi]
            grid = None
            if g.rows.size:
                grid = integration_grid(
                    src.spectral,
                    self.edges_true[:-1][g.rows],
                    self.edges_true[1:][g.rows],
                    g.ndecade,
                )
            sources.append(replace(src, group=gi, grid=grid, cache={}))
        new._sources = sources
        new._last = self._last.copy()
        return new

    # ------------------------------------------------------------------ diagnostics
    def npred_signal(self, values: np.ndarray | None = None) -> Array:
        """Predicted signal counts on the full reco axis (all bins, not only fitted ones)."""
        values = self._last if values is None else np.asarray(values, dtype=float)
        scale = self._scale(values)
        lo, hi = self.edges_true[:-1], self.edges_true[1:]
        out = np.zeros(self.edges.size - 1)
        for src in self._sources:
            theta = values[src.spec_pos] * self._to_canonical[src.spec_pos]
            flux, _, _ = scaled_integral_and_grads(
                src.spectral, lo, hi, theta, scale, self._ndecade, grad=False
            )
            if src.temporal is not None:
                tt = values[src.temp_pos] * self._to_canonical[src.temp_pos]
                flux = flux * src.temporal.mean_norm_theta(src.t_min, src.t_max, tt)[0]
            out += flux @ self._groups[src.group].full
        return out

    def npred_background(self, values: np.ndarray | None = None) -> Array:
        """Background counts in the ON region: ``alpha * mu_off`` profiled (wstat) or known (cash)."""
        if self.stat_type == "cash":
            if self._bkg_model is None:
                return self.background.copy()
            values = self._last if values is None else np.asarray(values, dtype=float)
            centres = np.sqrt(self.edges[:-1] * self.edges[1:])
            return self.background * self._bkg_norm(values, False, centres)[0]
        mu_sig = self.npred_signal(values)
        with np.errstate(invalid="ignore", divide="ignore"):
            b = self.alpha * wstat_mu_bkg(self.counts, self.counts_off, self.alpha, mu_sig)
        return np.nan_to_num(b)

    def npred(self, values: np.ndarray | None = None) -> Array:
        """Total predicted counts (signal + background, clipped at 0) on the full reco axis."""
        total = self.npred_signal(values) + self.npred_background(values)
        return np.where(total < 0, 0.0, total)

    def info(self, values: np.ndarray | None = None) -> dict[str, Any]:
        """Arrays for residual plots at ``values`` (default: the last evaluated point)."""
        values = self._last if values is None else np.asarray(values, dtype=float)
        return {
            "name": self.name,
            "stat_type": self.stat_type,
            "energy_edges": self.edges.copy(),
            "mask": self.mask.copy(),
            "counts": self.counts.copy(),
            "counts_off": None if self.counts_off is None else self.counts_off.copy(),
            "alpha": None if self.alpha is None else self.alpha.copy(),
            "npred_sig": self.npred_signal(values),
            "npred_bkg": self.npred_background(values),
            "stat": self.stat(values),
        }

    def __repr__(self) -> str:
        return (
            f"SpectrumOnOffTerm(name={self.name!r}, stat={self.stat_type!r}, "
            f"n_fit_bins={self._cols.size}, sources={[s.name for s in self._sources]})"
        )


def _load_dataset(source: str, name: str) -> SpectrumDatasetOnOff:
    from gdask.datasets.store import DatasetStore, split_store_source

    in_store = split_store_source(source)
    if in_store is not None:
        store, group = in_store
        ds = DatasetStore(store).read(group or name, lazy=False)
        if not isinstance(ds, SpectrumDatasetOnOff):
            raise ConfigError(f"{source!r} is not a spectrum dataset", field="source")
        return ds
    return SpectrumDatasetOnOff.read(source, name=name)


@register_term("spectrum")
def build_spectrum_term(spec: TermSpec) -> SpectrumOnOffTerm:
    """Build a `SpectrumOnOffTerm` from a `TermSpec` (``kind="spectrum"``).

    ``spec.source`` is an OGIP PHA file or ``"<store path>::<dataset name>"``;
    ``spec.options`` may hold ``stat``, ``energy_min``, ``energy_max`` (TeV),
    ``energy_scale`` and ``ndecade``.
    """
    unknown = set(spec.options) - set(_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown spectrum options {sorted(unknown)}; known: {list(_OPTIONS)}", field="options"
        )
    dataset = _load_dataset(spec.source, spec.name)
    models = Models.from_dict(spec.models)
    opts = dict(spec.options)
    nd = opts.pop("ndecade", DEFAULT_NDECADE)
    return SpectrumOnOffTerm(
        dataset, models, name=spec.name, ndecade=nd, layout=spec.layout, **opts
    )

"""Flux points: a norm on the source's spectral model fitted per energy bin.

Gammapy 2.1's ``FluxPointsEstimator`` semantics: each bin keeps the reco-energy
bins of every dataset lying inside it (as ``slice_by_energy``; the datasets'
safe and fit masks still apply), and `gdask.estimators.norm.estimate_norm`
fits the norm there with every other parameter at its current value.  The
reference fluxes of a bin (``ref_dnde`` at ``e_ref = sqrt(e_min e_max)``,
``ref_flux``, ``ref_eflux``, ``ref_e2dnde``) come from the source's spectral
model; a point's ``dnde`` is ``norm * ref_dnde`` (and so on per SED type).

Bins are independent requests on the already built terms: in-process by
default; with a Dask ``client`` each bin is one task next to a resident copy
of all terms (`~gdask.fit.Coordinator.replicate`), and a bin whose worker was
lost is simply recomputed (the estimation is a pure function of the terms and
the parameter vector, so the result does not change).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from gdask.datasets.sed import FluxPoints
from gdask.errors import ConfigError

from .norm import estimate_norm, norm_positions, restrict_terms, selection

__all__ = ["FluxPoints", "FluxPointsEstimator", "bin_masks"]

log = logging.getLogger(__name__)

_PER_BIN = ("norm", "norm_err", "norm_errn", "norm_errp", "norm_ul", "ts", "stat", "stat_null")
_PER_DATASET = ("counts", "npred", "npred_excess")


def bin_masks(edges: np.ndarray, e_min: float, e_max: float) -> np.ndarray:
    """Reco bins of ``edges`` (TeV) lying inside ``[e_min, e_max]`` (1e-6 relative slack)."""
    edges = np.asarray(edges, float)
    lo, hi = edges[:-1], edges[1:]
    return (lo >= e_min * (1 - 1e-6)) & (hi <= e_max * (1 + 1e-6))


def snap_edges(edges: Sequence[float] | np.ndarray, axis_edges: np.ndarray) -> np.ndarray:
    """Flux-point edges moved to the nearest dataset edges (as Gammapy), duplicates dropped."""
    axis_edges = np.asarray(axis_edges, float)
    idx = [int(np.argmin(np.abs(np.log(axis_edges / e)))) for e in edges]
    return axis_edges[np.unique(idx)]


def _reference_fluxes(spectral: Any, edges: np.ndarray) -> dict[str, np.ndarray]:
    lo, hi = edges[:-1], edges[1:]
    e_ref = np.sqrt(lo * hi)
    dnde = np.asarray(spectral(e_ref), float)
    return {
        "ref_dnde": dnde,
        "ref_flux": np.asarray(spectral.integral(lo, hi), float),
        "ref_eflux": np.asarray(spectral.energy_flux(lo, hi), float),
        "ref_e2dnde": dnde * e_ref**2,
    }


def _estimate_bin(
    terms: Sequence[Any], values: np.ndarray, pos: np.ndarray, lo: float, hi: float, opts: dict
) -> dict[str, Any]:
    masks = [bin_masks(t.edges, lo, hi) for t in terms]
    return estimate_norm(restrict_terms(terms, masks), values, pos, **opts)


def _bin_task(group: Any, values: np.ndarray, pos: np.ndarray, lo: float, hi: float, opts: dict):
    return _estimate_bin(group.terms, values, pos, lo, hi, opts)


class FluxPointsEstimator:
    """Flux points of one source from likelihood terms (Gammapy's ``FluxPointsEstimator``).

    Parameters
    ----------
    source : str
        Name of the SkyModel whose norm is fitted per bin.
    energy_edges : sequence of float
        Bin edges in TeV (snapped to the datasets' reco edges).
    selection_optional : {"all"} or list of {"errn-errp", "ul", "scan"}, optional
    n_sigma, n_sigma_ul : float
        Error and upper-limit widths (Gammapy's 1 and 2).
    norm_scan : sequence of float, optional
        Norm grid of ``stat_scan`` (default: Gammapy's 11 log values 0.2-5).
    reoptimize : bool
        Only False (Gammapy's default) is implemented.

    Examples
    --------
    >>> est = FluxPointsEstimator("crab", [1, 3, 10], selection_optional="all")  # doctest: +SKIP
    >>> fp = est.run(terms, models)  # doctest: +SKIP
    >>> fp.dnde, fp.is_ul  # doctest: +SKIP
    """

    def __init__(
        self,
        source: str,
        energy_edges: Sequence[float],
        *,
        selection_optional: Sequence[str] | str | None = None,
        n_sigma: float = 1.0,
        n_sigma_ul: float = 2.0,
        norm_scan: Sequence[float] | None = None,
        reoptimize: bool = False,
    ) -> None:
        if reoptimize:
            raise ConfigError("reoptimize=True is not implemented yet", field="reoptimize")
        self.source = source
        self.energy_edges = np.asarray(energy_edges, float)
        self.selection_optional = sorted(selection(selection_optional))
        self.n_sigma, self.n_sigma_ul = float(n_sigma), float(n_sigma_ul)
        self.norm_scan = None if norm_scan is None else np.asarray(norm_scan, float)
        #: bin tasks resubmitted after worker losses in the last distributed `run`
        self.n_resubmitted = 0

    def _opts(self) -> dict[str, Any]:
        return {
            "selection_optional": self.selection_optional,
            "n_sigma": self.n_sigma,
            "n_sigma_ul": self.n_sigma_ul,
            "norm_scan": self.norm_scan,
        }

    def run(self, terms: Sequence[Any] | Any, models: Any, client: Any = None) -> FluxPoints:
        """Estimate every bin.

        Parameters
        ----------
        terms : sequence of LikelihoodTerm or Coordinator
            In-process terms, or a `~gdask.fit.Coordinator` (its specs give the
            terms: built here in-process, or replicated on the workers of its client).
        models : Models
            The joint models at the values to estimate around (e.g. best fit).
        client : distributed.Client, optional
            Overrides the coordinator's client (None: the coordinator's, or in-process).
        """
        values = np.asarray(models.parameters.value, float)
        pos = norm_positions(models, self.source)
        coordinator: Any = None if isinstance(terms, (list, tuple)) else terms
        if coordinator is not None:
            client = client if client is not None else coordinator.client
            infos = coordinator.infos()
            axis = infos[0]["energy_edges"]
            names = coordinator.names
        else:
            axis = terms[0].edges
            names = [t.name for t in terms]
        edges = snap_edges(self.energy_edges, axis)
        opts = self._opts()
        bins = list(zip(edges[:-1], edges[1:], strict=True))
        if coordinator is None:
            rows = [_estimate_bin(terms, values, pos, lo, hi, opts) for lo, hi in bins]
        elif client is None:
            group = coordinator.replicate()[0]
            rows = [_bin_task(group, values, pos, lo, hi, opts) for lo, hi in bins]
        else:
            rows, self.n_resubmitted = _run_distributed(
                coordinator, client, values, pos, bins, opts
            )
        data = _stack(rows)
        data.update(_reference_fluxes(models[self.source].spectral_model, edges))
        return FluxPoints(edges, data, list(names), self.n_sigma, self.n_sigma_ul)


def _stack(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    data: dict[str, np.ndarray] = {}
    for key in rows[0]:
        data[key] = np.array([r[key] for r in rows])
    return data


def _run_distributed(
    coordinator: Any, client: Any, values: np.ndarray, pos: np.ndarray, bins: list, opts: dict
) -> tuple[list[dict[str, Any]], int]:
    """One task per bin next to a replica; bins lost with a worker are resubmitted.

    Returns the rows and the number of resubmissions.
    """
    from distributed import wait

    from gdask.fit.coordinator import _is_worker_loss

    replicas = coordinator.replicate()
    try:
        futs = {
            k: client.submit(
                _bin_task, replicas[k % len(replicas)], values, pos, lo, hi, opts, pure=False
            )
            for k, (lo, hi) in enumerate(bins)
        }
        log.info("flux points: %d bin tasks on %d replicas", len(futs), len(replicas))
        results: dict[int, Any] = {}
        tries = 0
        while futs:
            wait(list(futs.values()))
            for k, fut in list(futs.items()):
                if fut.status == "finished":
                    try:
                        results[k] = fut.result()
                        del futs[k]
                        continue
                    except Exception as exc:  # noqa: BLE001 - lost between wait and result
                        err: BaseException | None = exc
                else:
                    err = fut.exception() if fut.status == "error" else None
                if not _is_worker_loss(err):
                    assert err is not None
                    raise err
                tries += 1
                if tries > coordinator.max_retries * max(1, len(bins)):
                    raise RuntimeError("flux point tasks lost too often; giving up") from err
                for r in replicas:
                    r.release()
                replicas = coordinator.replicate()
                lo, hi = bins[k]
                futs[k] = client.submit(
                    _bin_task, replicas[k % len(replicas)], values, pos, lo, hi, opts, pure=False
                )
        return [results[k] for k in range(len(bins))], tries
    finally:
        for r in replicas:
            r.release()

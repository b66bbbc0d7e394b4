"""The flat fit problem: free unique parameters, scaling, bounds, priors and penalties.

A `FitProblem` is a *snapshot* of a `~gdask.models.Models` taken when it is
built: values, frozen flags, links, bounds, scales, priors.  Every method is a
pure function of that snapshot, so several minimisations (profile points,
MINOS, contours) can run at once from threads without touching the models;
results are written back with :meth:`FitProblem.apply`.

Vectors
-------
``full``
    ``Models.parameters.value`` (every parameter, linked ones repeated, stored
    units): what a `~gdask.likelihood.LikelihoodTerm` receives.
``unique``
    one value per slot of the `~gdask.models.ParameterLayout` (linked parameters share
    a slot), in the unit of the slot's representative (its first parameter).
``factors``
    the free slots divided by their scale: what the minimiser sees (Gammapy's
    ``factor = value / scale``, ``scale10`` autoscaling by default).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["FitProblem"]


def _autoscale(value: float, method: str | None) -> float:
    if method == "scale10" and value != 0 and math.isfinite(value):
        return 10.0 ** math.floor(math.log10(abs(value)))
    if method == "factor1" and value != 0 and math.isfinite(value):
        return abs(value)
    return 1.0


class FitProblem:
    """Free unique parameters of a joint fit and the statistic terms the coordinator adds.

    Parameters
    ----------
    models : `~gdask.models.Models`
        The joint models (read, never modified except by :meth:`apply`).
    penalties : dict, optional
        Extra Gaussian penalties ``{name: (mu, sigma)}`` adding
        ``((value - mu) / sigma) ** 2`` to the statistic; ``name`` is a unique
        name ``<model>.<type>.<name>`` (values in the parameter's unit).
    autoscale : bool
        Scale free parameters as Gammapy does (``scale_method``); else use
        each parameter's current ``scale``.
    """

    def __init__(
        self,
        models: Any,
        penalties: Mapping[str, tuple[float, float]] | None = None,
        autoscale: bool = True,
    ) -> None:
        pars = models.parameters
        self.layout = lay = models.layout()
        self.index = lay.index
        self.n_parameters = lay.n_parameters
        reps = [pars[int(i)] for i in lay.first]
        self.names: list[str] = lay.unique_names
        self.units: list[str] = [p.unit.to_string() for p in reps]
        # conversion from the representative's unit to each member's unit
        self.conv = lay.conv
        self.values = np.array([p.value for p in reps], dtype=float)
        self.free = np.array([not p.frozen for p in reps], dtype=bool)
        self.min = np.array([p.min for p in reps], dtype=float)
        self.max = np.array([p.max for p in reps], dtype=float)
        self.errors0 = np.array([p.error for p in reps], dtype=float)
        self.scales = np.array(
            [_autoscale(p.value, p.scale_method) if autoscale else p.scale for p in reps]
        )
        self.priors: list[Any] = [p.prior for p in reps]
        self.penalties: dict[int, tuple[float, float]] = {}
        for name, (mu, sigma) in (penalties or {}).items():
            self.penalties[self.slot(name)] = (float(mu), float(sigma))
        self.owners = lay.datasets_of_slot()
        # user convenience only: find a slot from a Parameter object
        self._slot_of_id = {id(p): int(s) for p, s in zip(pars, lay.index, strict=True)}

    # ------------------------------------------------------------- naming
    def slot(self, key: str | int | Any) -> int:
        """Slot of a parameter given by unique name, slot index or `Parameter` object.

        A plain parameter name (``"index"``) is accepted when it is unambiguous.
        """
        if isinstance(key, (int, np.integer)):
            return int(key)
        if not isinstance(key, str):
            if id(key) in self._slot_of_id:
                return self._slot_of_id[id(key)]
            raise KeyError(f"parameter {key!r} is not one of the fitted models' parameters")
        if key in self.names:
            return self.names.index(key)
        hits = [i for i, n in enumerate(self.names) if n.endswith("." + key)]
        if len(hits) == 1:
            return hits[0]
        raise KeyError(f"parameter {key!r} is unknown or ambiguous; have {self.names}")

    @property
    def free_slots(self) -> np.ndarray:
        """Indices of the free slots."""
        return np.flatnonzero(self.free)

    @property
    def n_free(self) -> int:
        """Number of free unique parameters."""
        return int(self.free.sum())

    @property
    def free_names(self) -> list[str]:
        """Unique names of the free parameters."""
        return [self.names[i] for i in self.free_slots]

    def datasets_of(self, key: str | int) -> frozenset[str] | None:
        """Datasets depending on a parameter (None: every dataset)."""
        return self.owners[self.slot(key)]

    # ------------------------------------------------------------ vectors
    @property
    def free_scales(self) -> np.ndarray:
        """Scales of the free slots."""
        return self.scales[self.free]

    def factors0(self) -> np.ndarray:
        """Starting factors of the free slots."""
        return self.values[self.free] / self.free_scales

    def factor_bounds(self) -> list[tuple[float | None, float | None]]:
        """Bounds of the free factors (None: unbounded)."""
        out = []
        for lo, hi, s in zip(
            self.min[self.free], self.max[self.free], self.free_scales, strict=True
        ):
            out.append((None if np.isnan(lo) else lo / s, None if np.isnan(hi) else hi / s))
        return out

    def factor_steps(self) -> np.ndarray:
        """Initial minimiser steps: error / scale, or 1 without an error (as Gammapy)."""
        err = self.errors0[self.free]
        ok = np.isfinite(err) & (err > 0)
        return np.where(ok, err / self.free_scales, 1.0)

    def unique_from_factors(self, factors: Sequence[float]) -> np.ndarray:
        """Unique-slot values with the free slots set from ``factors``."""
        out = self.values.copy()
        out[self.free] = np.asarray(factors, dtype=float) * self.free_scales
        return out

    def full_from_unique(self, unique: np.ndarray) -> np.ndarray:
        """The per-parameter vector a term receives."""
        return self.layout.expand(unique)

    def full_from_factors(self, factors: Sequence[float]) -> np.ndarray:
        """The per-parameter vector from minimiser factors."""
        return self.full_from_unique(self.unique_from_factors(factors))

    def unique_grad(self, full_grad: np.ndarray) -> np.ndarray:
        """Gradient over unique slots from a per-parameter gradient."""
        return self.layout.reduce_grad(full_grad)

    # -------------------------------------------------- priors, penalties
    def extra_stat_and_grad(self, unique: np.ndarray) -> tuple[float, np.ndarray]:
        """Priors and penalties: statistic and gradient over unique slots."""
        stat, grad = 0.0, np.zeros(len(unique))
        for i, prior in enumerate(self.priors):
            if prior is None:
                continue
            stat += float(prior.stat(unique[i]))
            if self.free[i]:
                grad[i] += float(prior.stat_grad(unique[i]))
        for i, (mu, sigma) in self.penalties.items():
            z = (unique[i] - mu) / sigma
            stat += z * z
            grad[i] += 2.0 * z / sigma
        return stat, grad

    def combine(
        self, unique: np.ndarray, term_stat: float, term_grad_full: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """Joint statistic and gradient with respect to the free factors."""
        extra, extra_grad = self.extra_stat_and_grad(unique)
        g = self.unique_grad(term_grad_full) + extra_grad
        return term_stat + extra, g[self.free] * self.free_scales

    # ----------------------------------------------------------- variants
    def fixed(self, values: Mapping[str | int, float]) -> FitProblem:
        """A copy with some slots frozen at given values (for profiles and scans)."""
        out = self.copy()
        for key, val in values.items():
            i = out.slot(key)
            out.values[i] = float(val)
            out.free[i] = False
        return out

    def with_factors(self, factors: Sequence[float]) -> FitProblem:
        """A copy whose values are set from free factors (scales unchanged)."""
        out = self.copy()
        out.values = self.unique_from_factors(factors)
        return out

    def copy(self) -> FitProblem:
        """Independent copy (priors are shared read-only)."""
        out = copy.copy(self)
        for name in ("values", "free", "min", "max", "errors0", "scales"):
            setattr(out, name, getattr(self, name).copy())
        out.penalties = dict(self.penalties)
        return out

    def covariance_unique(self, cov_factors: np.ndarray) -> np.ndarray:
        """Covariance over all unique slots (zeros for frozen) from the factor covariance."""
        n = len(self.values)
        s = self.free_scales
        cov = np.zeros((n, n))
        idx = self.free_slots
        cov[np.ix_(idx, idx)] = np.asarray(cov_factors) * np.outer(s, s)
        return cov

    # -------------------------------------------------------- write back
    def apply(self, models: Any, unique: np.ndarray, covariance: np.ndarray | None = None) -> None:
        """Write values (all slots), scales and errors (free slots) into ``models``."""
        pars = models.parameters
        pars.set_unique_values(unique)
        uniq = pars.unique_parameters
        for i, p in enumerate(uniq):
            if self.free[i]:
                p.scale = float(self.scales[i])
        if covariance is not None:
            models.covariance = covariance
            for j, p in enumerate(pars):
                i = self.index[j]
                if self.free[i]:
                    var = covariance[i, i]
                    err = math.sqrt(var) if var >= 0 else math.nan
                    p.error = err * self.conv[j]

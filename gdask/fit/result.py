"""`FitResult`: best-fit values, errors, covariance, statistics and Gammapy-layout output."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FitResult"]


@dataclass
class FitResult:
    """Outcome of `Fit.run` / `Fit.optimize`.

    Attributes
    ----------
    names, units : list of str
        Unique names (``<model>.<type>.<name>``) and units of the free parameters.
    values, errors : ndarray
        Best-fit values and 1-sigma errors (NaN before the covariance step).
    covariance : ndarray or None
        Covariance of the free parameters (``len(names)`` square, stored units).
    total_stat : float
        Joint statistic at the best fit (terms + priors + penalties).
    stats : dict
        Statistic of each dataset at the best fit.
    prior_stat : float
        Priors and penalties part of ``total_stat``.
    success, message, backend, method
        Outcome of the minimisation.
    covariance_success, covariance_message, covariance_method
        Outcome of the covariance step.
    n_fcn, n_grad, n_evaluations, n_round_trips
        Statistic and gradient calls by the minimiser, coordinator evaluations
        (one gives both) and coordinator round trips.
    models : Models
        Copy of the models with the best-fit values, errors and covariance
        (Gammapy layout: over all unique parameters, zeros for frozen).
    """

    names: list[str]
    units: list[str]
    values: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray | None
    total_stat: float
    stats: dict[str, float]
    prior_stat: float
    success: bool
    message: str
    backend: str
    method: str
    n_fcn: int
    n_grad: int
    n_evaluations: int
    n_round_trips: int
    models: Any
    covariance_success: bool | None = None
    covariance_message: str = ""
    covariance_method: str = ""
    optimizer: Any = field(default=None, repr=False, compare=False)

    # ---------------------------------------------------------------- access
    def __getitem__(self, name: str) -> float:
        """Best-fit value of a free parameter by unique (or unambiguous short) name."""
        return float(self.values[self._index(name)])

    def _index(self, name: str) -> int:
        if name in self.names:
            return self.names.index(name)
        hits = [i for i, n in enumerate(self.names) if n.endswith("." + name)]
        if len(hits) != 1:
            raise KeyError(f"no (unique) free parameter {name!r}; have {self.names}")
        return hits[0]

    def error(self, name: str) -> float:
        """1-sigma error of a free parameter."""
        return float(self.errors[self._index(name)])

    @property
    def correlation(self) -> np.ndarray | None:
        """Correlation matrix of the free parameters."""
        if self.covariance is None:
            return None
        d = np.sqrt(np.diag(self.covariance))
        return self.covariance / np.outer(d, d)

    # -------------------------------------------------------------------- io
    def info_dict(self) -> dict[str, Any]:
        """Gammapy's ``OptimizeResult`` / ``CovarianceResult`` entries."""
        out: dict[str, Any] = {
            "OptimizeResult": {
                "backend": self.backend,
                "method": self.method,
                "success": bool(self.success),
                "message": str(self.message),
                "nfev": int(self.n_fcn),
                "total_stat": float(self.total_stat),
                "ngrad": int(self.n_grad),
                "n_evaluations": int(self.n_evaluations),
            }
        }
        if self.covariance_success is not None:
            out["CovarianceResult"] = {
                "backend": self.backend,
                "method": self.covariance_method,
                "success": bool(self.covariance_success),
                "message": self.covariance_message,
            }
        return out

    def to_dict(self, full_output: bool = True) -> dict[str, Any]:
        """Models dictionary (Gammapy layout) plus the fit information."""
        data = self.models.to_dict(full_output)
        data.update(self.info_dict())
        return data

    def to_yaml(self, full_output: bool = True) -> str:
        """Models YAML (Gammapy layout, best-fit values and errors) plus fit information."""
        from gdask.models.io import to_yaml

        return to_yaml(self.to_dict(full_output))

    def parameters_table(self) -> Any:
        """`astropy.table.Table` of every unique parameter (free and frozen)."""
        from astropy.table import Table

        pars = self.models.parameters
        lay = pars.flat_layout()
        uniq = [pars[int(i)] for i in lay.first]
        unique_names = self.models.parameters_unique_names
        rows = {
            "name": unique_names,
            "value": [p.value for p in uniq],
            "error": [p.error if not p.frozen else 0.0 for p in uniq],
            "unit": [p.unit.to_string() for p in uniq],
            "min": [p.min for p in uniq],
            "max": [p.max for p in uniq],
            "frozen": [bool(p.frozen) for p in uniq],
            "link": [p.link or "" for p in uniq],
            "prior": [type(p.prior).__name__ if p.prior is not None else "" for p in uniq],
        }
        table = Table(rows)
        table.meta.update(
            {
                "total_stat": float(self.total_stat),
                "backend": self.backend,
                "success": bool(self.success),
            }
        )
        return table

    def write(self, path: str | Path, overwrite: bool = False, full_output: bool = True) -> None:
        """Write ``path`` (models YAML + fit info), ``<stem>_covariance.dat`` and
        ``<stem>_parameters.ecsv``."""
        from gdask.models.io import to_yaml

        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"file exists already: {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        models = copy.deepcopy(self.models)
        if models.covariance is not None:
            cov_name = path.stem + "_covariance.dat"
            models.write_covariance(path.parent / cov_name, overwrite=overwrite)
            models._covar_file = cov_name
        data = models.to_dict(full_output)
        data.update(self.info_dict())
        path.write_text(to_yaml(data))
        self.parameters_table().write(
            str(path.parent / (path.stem + "_parameters.ecsv")),
            format="ascii.ecsv",
            overwrite=overwrite,
        )

    def __str__(self) -> str:
        lines = [
            f"FitResult ({self.backend}/{self.method})",
            f"  success      : {self.success}",
            f"  message      : {self.message}",
            f"  total stat   : {self.total_stat:.4f}",
            f"  evaluations  : {self.n_evaluations} (fcn {self.n_fcn}, grad {self.n_grad}, "
            f"round trips {self.n_round_trips})",
        ]
        for n, v, e, un in zip(self.names, self.values, self.errors, self.units, strict=True):
            lines.append(f"  {n:40s} {v: .6g} +/- {e:.3g} {un}")
        return "\n".join(lines)

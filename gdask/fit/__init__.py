"""The coordinator of joint fits: one parameter vector, resident terms, iminuit/scipy.

`FitProblem` (free unique parameters, scaling, priors, penalties),
`Coordinator` (terms built and kept on Dask workers, or in-process),
`Fit` (MIGRAD + HESSE, scipy, MINOS, parallel profiles, contours) and
`FitResult` (values, errors, covariance, Gammapy-layout YAML).
"""

from .backends import Objective, hessian_from_gradient, minimize
from .coordinator import Coordinator, Evaluation, TermGroup, local_coordinator
from .fit import Fit
from .problem import FitProblem
from .result import FitResult

__all__ = [
    "Coordinator",
    "Evaluation",
    "Fit",
    "FitProblem",
    "FitResult",
    "Objective",
    "TermGroup",
    "hessian_from_gradient",
    "local_coordinator",
    "minimize",
]

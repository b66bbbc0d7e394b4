"""Closed-form optimum and covariance of toy-linear problems (for the tests)."""

from __future__ import annotations

import numpy as np

from gdask.fit import FitProblem
from gdask.likelihood import build_term


def linear_solution(models, specs, penalties=None) -> tuple[np.ndarray, np.ndarray]:
    """Best-fit free unique values and their covariance for toy-linear terms.

    Gaussian priors on unique parameters are included, like the penalties.
    """
    prob = FitProblem(models, penalties=penalties)
    free = prob.free_slots
    base = prob.values.copy()
    base[free] = 0.0
    c = prob.full_from_unique(base)
    M = np.zeros((prob.n_parameters, len(free)))
    for j, s in enumerate(prob.index):
        hit = np.flatnonzero(free == s)
        if hit.size:
            M[j, hit[0]] = prob.conv[j]
    N = np.zeros((len(free), len(free)))
    b = np.zeros(len(free))
    for spec in specs:
        t = build_term(spec)
        AM = t.A @ M
        w = 1.0 / t.sigma**2
        N += AM.T @ (AM * w[:, None])
        b += AM.T @ (w * (t.y - t.A @ c))
    extra = dict(prob.penalties)
    for i, prior in enumerate(prob.priors):
        if prior is not None:
            extra[i] = (prior.parameters["mu"].value, prior.parameters["sigma"].value)
    for slot, (mu, sigma) in extra.items():
        k = int(np.flatnonzero(free == slot)[0])
        N[k, k] += 1 / sigma**2
        b[k] += mu / sigma**2
    cov = np.linalg.inv(N)
    return cov @ b, cov

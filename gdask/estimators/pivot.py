"""Pivot (decorrelation) energy of a power law from its fit covariance."""

from __future__ import annotations

import numpy as np


def power_law_pivot_energy(
    reference: float, amplitude: float, var_index: float, cov_index_amplitude: float
) -> float:
    """Energy where the relative error of a power law's dN/dE is smallest.

    ``ln f = ln A - index * ln(E/E0)``; its variance is quadratic in ``ln(E/E0)``
    with minimum at ``ln(E/E0) = cov(index, A) / (A var(index))``.

    Examples
    --------
    >>> power_law_pivot_energy(1.0, 1e-12, 0.01, 0.0)
    1.0
    """
    return float(reference * np.exp(cov_index_amplitude / (amplitude * var_index)))

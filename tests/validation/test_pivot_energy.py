import numpy as np

from gdask.estimators.pivot import power_law_pivot_energy


def test_power_law_pivot_matches_gammapy() -> None:
    from gammapy.modeling.models import PowerLawSpectralModel

    model = PowerLawSpectralModel(index=2.3, amplitude="3e-12 cm-2 s-1 TeV-1", reference="1 TeV")
    cov = np.array([[0.01, 2e-14], [2e-14, 1e-25]])
    model.covariance = np.pad(cov, ((0, 1), (0, 1)))
    expected = model.pivot_energy.to_value("TeV")
    ours = power_law_pivot_energy(1.0, 3e-12, 0.01, 2e-14)
    np.testing.assert_allclose(ours, expected, rtol=1e-6)

"""Models YAML interoperability with Gammapy 2.1 for whole sky models (spectral x spatial x temporal)."""

from __future__ import annotations

import numpy as np
import pytest
from gammapy.modeling.models import Models as GpModels

from gdask.models import (
    ConstantSpatialModel,
    DiskSpatialModel,
    ExpDecayTemporalModel,
    GaussianSpatialModel,
    GaussianTemporalModel,
    GeneralizedGaussianSpatialModel,
    LinearTemporalModel,
    LogParabolaSpectralModel,
    Models,
    PointSpatialModel,
    PowerLawSpectralModel,
    Shell2SpatialModel,
    ShellSpatialModel,
    SineTemporalModel,
    SkyModel,
)

pytestmark = pytest.mark.validation

SPATIAL = [
    (PointSpatialModel, dict(lon_0=83.6, lat_0=22.1)),
    (GaussianSpatialModel, dict(lon_0=83.6, lat_0=22.1, sigma=0.3, e=0.4, phi=30.0)),
    (DiskSpatialModel, dict(lon_0=83.6, lat_0=22.1, r_0=0.5, e=0.2, phi=10.0, edge_width=0.05)),
    (
        GeneralizedGaussianSpatialModel,
        dict(lon_0=83.6, lat_0=22.1, r_0=0.4, eta=0.7, e=0.1, phi=5.0),
    ),
    (ShellSpatialModel, dict(lon_0=83.6, lat_0=22.1, radius=0.6, width=0.2)),
    (Shell2SpatialModel, dict(lon_0=83.6, lat_0=22.1, r_0=0.6, eta=0.3)),
    # Gammapy writes the constant spatial model without parameters, so only its default round-trips
    (ConstantSpatialModel, dict()),
]
TEMPORAL = [
    None,
    (LinearTemporalModel, dict(alpha=1.5, beta=0.2, t_ref=55555.0)),
    (ExpDecayTemporalModel, dict(t0=3.0, t_ref=55555.0)),
    (GaussianTemporalModel, dict(t_ref=55555.0, sigma=2.0)),
    (SineTemporalModel, dict(amp=0.5, omega=0.3, t_ref=55555.0)),
]


def _param_table(models) -> dict[str, tuple]:
    """(value, unit, frozen, min, max) per '<model>.<type>.<name>' for gdask or Gammapy models."""
    out = {}
    for m in models:
        for kind in ("spectral_model", "spatial_model", "temporal_model"):
            comp = getattr(m, kind, None)
            if comp is None:
                continue
            for p in comp.parameters:
                unit = str(p.unit) if str(p.unit) not in ("", "dimensionless") else ""
                out[f"{m.name}.{kind.split('_')[0]}.{p.name}"] = (
                    float(p.value),
                    unit,
                    bool(p.frozen),
                    float(p.min),
                    float(p.max),
                )
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        va, vb = a[key], b[key]
        assert va[0] == pytest.approx(vb[0], rel=1e-12), key
        assert va[2] == vb[2], key
        for x, y in zip(va[3:], vb[3:], strict=True):
            assert (np.isnan(x) and np.isnan(y)) or x == pytest.approx(y, rel=1e-12), key
        # units compare as astropy units (string spellings may differ)
        import astropy.units as u

        assert u.Unit(va[1] or "") == u.Unit(vb[1] or ""), key


def _gdask_models(i: int, spatial, temporal) -> Models:
    cls, pars = spatial
    frame = "galactic" if i % 2 else "icrs"
    spatial_model = cls(frame=frame, **pars)
    temporal_model = None if temporal is None else temporal[0](**temporal[1])
    src = SkyModel(
        PowerLawSpectralModel(index=2.3, amplitude="3e-12 cm-2 s-1 TeV-1", reference="1 TeV"),
        spatial_model,
        temporal_model,
        name=f"src{i}",
        datasets_names=["run-a", "run-b"],
    )
    other = SkyModel(
        LogParabolaSpectralModel(alpha=2.1, beta=0.15),
        PointSpatialModel(lon_0=84, lat_0=22),
        name=f"other{i}",
    )
    other.spectral_model.parameters["beta"].frozen = True
    return Models([src, other])


@pytest.mark.parametrize(
    "i, spatial, temporal",
    [(i, s, TEMPORAL[i % len(TEMPORAL)]) for i, s in enumerate(SPATIAL)],
    ids=[s[0].__name__ for s in SPATIAL],
)
def test_sky_models_gdask_to_gammapy_and_back(tmp_path, i, spatial, temporal):
    models = _gdask_models(i, spatial, temporal)
    path = tmp_path / "models.yaml"
    models.write(path)
    gp = GpModels.read(path)
    assert [m.name for m in gp] == models.names
    assert gp[0].datasets_names == ["run-a", "run-b"]
    assert gp[0].spatial_model.frame == models[0].spatial_model.frame
    _assert_same(_param_table(models), _param_table(gp))
    # and back: Gammapy's own writing reads in gdask with the same parameters
    back = tmp_path / "gammapy.yaml"
    gp.write(back)
    _assert_same(_param_table(Models.read(back)), _param_table(gp))


def test_fermi_model_file_through_both(tmp_path, data_dir):
    src = data_dir / "fermi-3fhl-crab" / "Fermi-LAT-3FHL_models.yaml"
    ours = Models.read(src)
    theirs = GpModels.read(src)
    _assert_same(_param_table(ours), _param_table(theirs))
    out = tmp_path / "m.yaml"
    ours.write(out)
    _assert_same(_param_table(GpModels.read(out)), _param_table(theirs))

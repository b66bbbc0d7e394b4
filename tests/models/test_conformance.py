"""Conformance checks run over every registered model class.

In the spirit of scikit-learn's ``parametrize_with_checks``: every class in
`gdask.models.MODEL_REGISTRY` (spectral, spatial, temporal, prior, energy_scale) is checked
for

- value vs integral (spectral: ``integral`` vs quadrature of the value;
  temporal: ``integral`` vs quadrature, normalised by the summed interval
  length; spatial: the value integrates to one over the sky for normalised
  models; priors: no integral),
- gradient vs central finite differences (value, and integral where there is one),
- the YAML round trip (``to_dict`` -> YAML text -> ``model_from_dict``),
- pickling (what a Dask worker receives).

A new model class registers itself by subclassing `ModelBase` with a ``tag``
and is checked here without any edit. If it cannot be built without arguments
(a template, a compound), ``test_every_model_has_an_instance`` fails until an
example is added to `EXAMPLES` below.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate
import yaml
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS

import gdask.models as gm
from gdask.models import MODEL_REGISTRY, ModelBase, model_from_dict

# --------------------------------------------------------------- instances


def _template_header(nx: int = 30, ny: int = 24, binsz: float = 0.05) -> str:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [83.6, 22.0]
    w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    w.wcs.cdelt = [-binsz, binsz]
    return w.to_header().tostring()


def _template_spatial(tmp: Path) -> ModelBase:
    yy, xx = np.mgrid[0:24, 0:30]
    data = np.exp(-((xx - 14.3) ** 2 + (yy - 11.7) ** 2) / 40.0) + 0.01
    header = fits.Header.fromstring(_template_header())
    fits.PrimaryHDU(data, header=header).writeto(tmp / "template.fits", overwrite=True)
    return gm.TemplateSpatialModel.read(tmp / "template.fits", normalize=True)


def _template_spectral(tmp: Path) -> ModelBase:
    energy = np.geomspace(0.1, 100, 30)
    values = 1e-12 * energy**-2.4 * np.exp(-energy / 30)
    return gm.TemplateSpectralModel(energy * u.TeV, values * u.Unit("cm-2 s-1 TeV-1"))


def _light_curve(tmp: Path) -> ModelBase:
    nodes = np.array([0.0, 0.5, 1.2, 2.0, 3.1, 4.0])
    norms = np.array([0.2, 1.0, 0.7, 1.5, 0.4, 0.9])
    model = gm.LightCurveTemplateTemporalModel(nodes, norms, t_ref=55000.25)
    model.write(tmp / "light_curve.fits")  # the YAML layout refers to the file
    return model


#: Classes that cannot be built without arguments, or whose defaults sit on a
#: kink of the model: a factory ``f(tmp_dir)`` of a typical instance.
EXAMPLES: dict[type, Callable[[Path], ModelBase]] = {
    gm.CompoundSpectralModel: lambda tmp: gm.CompoundSpectralModel(
        gm.PowerLawSpectralModel(), gm.ExpCutoffPowerLawNormSpectralModel(lambda_=0.1), "mul"
    ),
    gm.PiecewiseNormSpectralModel: lambda tmp: gm.PiecewiseNormSpectralModel(
        [0.1, 1.0, 10.0, 100.0] * u.TeV, norms=[1.2, 0.8, 1.1, 0.6]
    ),
    gm.ScaleSpectralModel: lambda tmp: gm.ScaleSpectralModel(gm.PowerLawSpectralModel(), norm=1.7),
    # the defaults have index1 == index2, where the sign of beta' flips (a kink)
    gm.SmoothBrokenPowerLawSpectralModel: lambda tmp: gm.SmoothBrokenPowerLawSpectralModel(
        index1=1.7, index2=2.8, ebreak=2.3, beta=1.3
    ),
    gm.TemplateSpectralModel: _template_spectral,
    gm.TemplateSpatialModel: _template_spatial,
    gm.LightCurveTemplateTemporalModel: _light_curve,
}

#: Classes whose YAML layout (Gammapy's) carries no parameters: only the defaults survive.
YAML_WITHOUT_PARAMETERS = {gm.ConstantSpatialModel}

ALL_CLASSES = sorted(
    {cls for reg in MODEL_REGISTRY.values() for cls in reg.values()},
    key=lambda c: (c.type, c.__name__),
)
IDS = [f"{c.type}-{c.__name__}" for c in ALL_CLASSES]


def _by_type(*types: str) -> list[type]:
    return [c for c in ALL_CLASSES if c.type in types]


def instance(cls: type, tmp: Path) -> ModelBase:
    """A typical instance of ``cls`` (its defaults, or the factory in `EXAMPLES`)."""
    if cls in EXAMPLES:
        return EXAMPLES[cls](tmp)
    return cls()


# ----------------------------------------------------------- coordinates

ENERGY = np.geomspace(0.13, 77.0, 23)  # TeV, avoids the default nodes and breaks
EMIN = np.array([0.2, 0.9, 3.3, 20.0])
EMAX = np.array([0.5, 2.1, 7.7, 45.0])
T_MIN = np.array([55000.5, 55001.7, 55003.0])
T_MAX = np.array([55001.1, 55002.9, 55004.2])
TIMES = np.linspace(55000.43, 55004.31, 29)


def _spatial_points(model: ModelBase, n: int = 60, seed: int = 3) -> tuple[np.ndarray, ...]:
    """Points around the model's position, inside its extent, off its edges."""
    rng = np.random.default_rng(seed)
    lon0, lat0 = _centre(model)
    half = 0.4 if model.evaluation_radius is None else 0.8 * model.evaluation_radius
    half = min(half, 2.0)
    return lon0 + rng.uniform(-half, half, n), lat0 + rng.uniform(-half, half, n)


def coordinates(model: ModelBase) -> tuple[np.ndarray, ...]:
    """Coordinates at which ``model`` is evaluated, in its canonical input units."""
    if model.type == "spectral":
        return (ENERGY,)
    if model.type == "spatial":
        return _spatial_points(model)
    if model.type == "temporal":
        return (TIMES,)
    pars = model.canonical_pars()
    if "min" in pars and "max" in pars:  # bounded priors: inside the bounds
        lo, hi = pars["min"], pars["max"]
        return (np.geomspace(lo, hi, 19)[1:-1] if lo > 0 else np.linspace(lo, hi, 19)[1:-1],)
    return (np.linspace(-2.0, 3.0, 17) * 0.9 + 0.05,)


def _value(model: ModelBase, x: tuple[np.ndarray, ...], theta: np.ndarray) -> np.ndarray:
    if model.type == "prior":
        pars = dict(zip(model.parameters.names, theta, strict=True))
        return np.asarray(model.evaluate(*x, **pars), dtype=float)
    return np.asarray(model.evaluate_theta(*x, theta=theta), dtype=float)


def _centre(model: ModelBase) -> tuple[float, float]:
    if "lon_0" not in model.parameters.names:
        return (83.6, 22.0)
    lon0, lat0 = model.position
    if np.isnan(lon0):  # a template centred on its map
        lon0, lat0 = model.map_center
    return lon0, lat0


def _step(theta: np.ndarray, i: int) -> float:
    return min(1e-6 * abs(theta[i]), 1e-4) if theta[i] != 0 else 1e-6


def _fd(f: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, i: int) -> np.ndarray:
    h = _step(theta, i)
    tp, tm = theta.copy(), theta.copy()
    tp[i] += h
    tm[i] -= h
    return (f(tp) - f(tm)) / (2 * h)


def _assert_close_grad(
    analytic: np.ndarray, numeric: np.ndarray, label: str, noise: float = 0.0
) -> None:
    """Agreement to 1e-4, up to the round-off ``noise`` of the finite differences."""
    scale = max(np.abs(numeric).max(), np.abs(analytic).max(), 1e-300)
    atol = max(1e-5 * scale, noise)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=atol, err_msg=label)


def _has_value_on_a_grid(model: ModelBase) -> bool:
    # a point source is a delta function: the likelihood integrates it through the PSF
    return not isinstance(model, gm.PointSpatialModel)


# ---------------------------------------------------------------- checks


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_every_model_has_an_instance(cls: type, tmp_path: Path) -> None:
    model = instance(cls, tmp_path)
    assert isinstance(model, cls)
    assert model.type in ("spectral", "spatial", "temporal", "prior", "energy_scale")
    assert model.tag and all(MODEL_REGISTRY[model.type][t] is cls for t in model.tag)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_gradient_vs_finite_differences(cls: type, tmp_path: Path) -> None:
    model = instance(cls, tmp_path)
    if not _has_value_on_a_grid(model):
        pytest.skip("a point source has no value on a coordinate grid (tested through the PSF)")
    theta = np.asarray(model.parameters.canonical_value, dtype=float)
    x = coordinates(model)
    if model.type == "prior":
        pars = dict(zip(model.parameters.names, theta, strict=True))
        (value,) = x
        analytic = np.asarray(model.evaluate_value_grad(value, **pars), dtype=float)
        h = 1e-6 * np.maximum(np.abs(value), 1e-2 * np.abs(value).max())
        numeric = (model.evaluate(value + h, **pars) - model.evaluate(value - h, **pars)) / (2 * h)
        inside = np.isfinite(numeric) & np.isfinite(analytic)
        assert inside.any()
        _assert_close_grad(analytic[inside], numeric[inside], "d prior / d value")
        return
    value = _value(model, x, theta)
    assert np.all(np.isfinite(value))
    grad = model.evaluate_grad_theta(*x, theta=theta)
    assert grad.shape == (theta.size,) + value.shape
    for i, name in enumerate(model.parameters.names):
        numeric = _fd(lambda t: _value(model, x, t), theta, i)
        noise = 1e-10 * np.abs(value).max() / _step(theta, i)
        _assert_close_grad(grad[i], numeric, name, noise)


@pytest.mark.parametrize("cls", _by_type("spectral"), ids=lambda c: c.__name__)
def test_spectral_integral_vs_value(cls: type, tmp_path: Path) -> None:
    model = instance(cls, tmp_path)
    theta = np.asarray(model.parameters.canonical_value, dtype=float)
    integral, grad = model.integral_and_grad_theta(EMIN, EMAX, theta)
    np.testing.assert_allclose(model.integral_theta(EMIN, EMAX, theta), integral, rtol=1e-12)
    for k in range(EMIN.size):
        ref, _ = scipy.integrate.quad(
            lambda e: float(model.evaluate_theta(np.array([e]), theta=theta)[0]),
            EMIN[k],
            EMAX[k],
            epsrel=1e-10,
        )
        # the numerical integral (log-log trapezoid, Gammapy's rule) is good to ~1e-3
        rtol = 1e-8 if model.analytic_integral else 2e-3
        assert integral[k] == pytest.approx(ref, rel=rtol), (EMIN[k], EMAX[k])
    for i, name in enumerate(model.parameters.names):
        numeric = _fd(lambda t: model.integral_theta(EMIN, EMAX, t), theta, i)
        noise = 1e-10 * np.abs(integral).max() / _step(theta, i)
        _assert_close_grad(grad[i], numeric, f"d integral / d {name}", noise)


@pytest.mark.parametrize("cls", _by_type("temporal"), ids=lambda c: c.__name__)
def test_temporal_integral_vs_value(cls: type, tmp_path: Path) -> None:
    model = instance(cls, tmp_path)
    pars = model.canonical_pars()
    integral = model.integral(T_MIN, T_MAX)
    total = np.sum(T_MAX - T_MIN)
    for k in range(T_MIN.size):
        ref, _ = scipy.integrate.quad(
            lambda t: float(np.asarray(model.evaluate(np.array([t]), **pars)).ravel()[0]),
            T_MIN[k],
            T_MAX[k],
            epsrel=1e-10,
            limit=200,
        )
        assert integral[k] == pytest.approx(ref / total, rel=1e-6, abs=1e-12)
    grad = model.integral_grad(T_MIN, T_MAX)
    theta = np.array([pars[n] for n in model.parameters.names])
    for i, name in enumerate(model.parameters.names):

        def f(t: np.ndarray) -> np.ndarray:
            return np.asarray(
                model.evaluate_integral(T_MIN, T_MAX, **dict(zip(pars, t, strict=True)))
            )

        numeric = _fd(f, theta, i)
        analytic = np.broadcast_to(grad[name], numeric.shape)
        _assert_close_grad(analytic, numeric, f"d integral / d {name}")


@pytest.mark.parametrize("cls", _by_type("spatial"), ids=lambda c: c.__name__)
def test_spatial_value_integrates_to_one(cls: type, tmp_path: Path) -> None:
    model = instance(cls, tmp_path)
    if not _has_value_on_a_grid(model):
        pytest.skip("a point source has no value on a coordinate grid (tested through the PSF)")
    if isinstance(model, gm.ConstantSpatialModel):
        # not normalisable on the sphere: the value is the constant everywhere
        lon, lat = coordinates(model)
        np.testing.assert_allclose(model(lon, lat), model.value.value)
        return
    lon0, lat0 = _centre(model)
    radius = model.evaluation_radius
    half = 3.0 if radius is None else min(1.3 * radius, 10.0)
    n = 801
    step = 2 * half / (n - 1)
    lat = lat0 + np.linspace(-half, half, n)
    dlon = step / np.cos(np.radians(lat))  # equal-area cells along each row
    total = 0.0
    for row, lat_k in enumerate(lat):
        lon = lon0 + np.arange(-(n // 2), n // 2 + 1) * dlon[row]
        values = model(lon, np.full(lon.size, lat_k))
        total += values.sum() * np.radians(step) ** 2
    assert total == pytest.approx(1.0, rel=1e-2)


def _same_model(a: ModelBase, b: ModelBase) -> None:
    assert type(a) is type(b)
    assert yaml.safe_dump(a.to_dict()) == yaml.safe_dump(b.to_dict())  # NaN == NaN here
    if a.type == "prior":
        x = coordinates(a)[0]
        np.testing.assert_array_equal(a(x), b(x))
        return
    if not _has_value_on_a_grid(a):
        assert _centre(a) == _centre(b)
        return
    x = coordinates(a)
    theta = np.asarray(a.parameters.canonical_value, dtype=float)
    np.testing.assert_allclose(_value(b, x, theta), _value(a, x, theta), rtol=1e-12, atol=0)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_yaml_round_trip(cls: type, tmp_path: Path) -> None:
    model = instance(cls, tmp_path)
    for p in model.parameters:
        if cls in YAML_WITHOUT_PARAMETERS:
            break
        if p.name not in ("reference", "t_ref", "lon_0", "lat_0") and np.isfinite(p.value):
            p.value = p.value * 1.01 if p.value != 0 else 0.01  # not the defaults
    text = yaml.safe_dump(model.to_dict(), sort_keys=False)
    back = model_from_dict(yaml.safe_load(text))
    written = yaml.safe_load(text)[cls.type]["type"]
    if written not in cls.tag:  # a gdask-only model written as its Gammapy equivalent
        assert written in type(back).tag
        x = coordinates(model)
        np.testing.assert_allclose(
            _value(back, x, back.parameters.canonical_value),
            _value(model, x, model.parameters.canonical_value),
            rtol=1e-12,
        )
        return
    _same_model(model, back)
    assert [p.value for p in back.parameters] == [p.value for p in model.parameters]
    assert [p.frozen for p in back.parameters] == [p.frozen for p in model.parameters]


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=IDS)
def test_pickle_round_trip(cls: type, tmp_path: Path) -> None:
    model = instance(cls, tmp_path)
    back = pickle.loads(pickle.dumps(model))
    _same_model(model, back)

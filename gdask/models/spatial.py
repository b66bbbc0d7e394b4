"""Spatial models: sky brightness profiles in sr^-1 with analytic gradients.

Conventions (shared with Gammapy 2.1's models YAML):

* coordinates ``lon``, ``lat`` are degrees in the model's ``frame``
  (``"icrs"`` or ``"galactic"``); callers transform pixel coordinates into
  that frame before evaluating (see :meth:`SpatialModel.lonlat_in_frame`);
* angular parameters (``lon_0``, ``lat_0``, ``sigma``, ``r_0``, ``phi``,
  ``radius``, ``width``) are canonical in degrees, ``e``, ``eta`` and
  ``edge_width`` are dimensionless, values are in sr^-1;
* separations and position angles use exact spherical trigonometry;
  gradients (``evaluate_grad``) are derivatives with respect to the canonical
  (degree) parameter values;
* elongated models use Gammapy's effective radius: for a point at position
  angle ``pa`` from the centre, the major semi-axis ``a`` is replaced by
  ``a * sqrt(1 - e^2) / sqrt(1 - e^2 cos^2(phi - pa))``.

The pure functions (``*_profile`` and ``*_profile_grad``) carry the numerics;
the classes only bind them to parameters, frames and YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.special
from astropy import units as u

from .core import ModelBase
from .parameters import ParameterSpec

__all__ = [
    "SpatialModel",
    "PointSpatialModel",
    "GaussianSpatialModel",
    "GeneralizedGaussianSpatialModel",
    "DiskSpatialModel",
    "ShellSpatialModel",
    "Shell2SpatialModel",
    "ConstantSpatialModel",
    "sky_geometry",
    "disk_norm",
]

DEG = np.pi / 180.0
#: erf argument giving the 95% -> 5% drop of the disk edge over ``edge_width``
_EDGE_K = 2.326174307353347
_FRAMES = ("icrs", "galactic")
#: trapezoid nodes for the (periodic, smooth) disk normalisation integral
_DISK_NODES = 2048


# --------------------------------------------------------------------- geometry
def sky_geometry(lon: Any, lat: Any, lon_0: float, lat_0: float) -> dict[str, np.ndarray]:
    """Separation and position angle of points from a centre, with derivatives.

    Parameters
    ----------
    lon, lat : array_like
        Points (deg).
    lon_0, lat_0 : float
        Centre (deg).

    Returns
    -------
    geo : dict
        ``sep`` (rad), ``pa`` (rad, east of north seen from the centre),
        ``one_minus_cos`` (``1 - cos(sep)``), ``dcos_dlon0``/``dcos_dlat0``
        (derivatives of ``cos(sep)``), ``dsep_dlon0``/``dsep_dlat0`` and
        ``dpa_dlon0``/``dpa_dlat0``, all per radian of the centre coordinate.
        Derivatives of ``sep`` and ``pa`` are set to 0 at the centre itself.
    """
    lon = np.asarray(lon, dtype=float) * DEG
    lat = np.asarray(lat, dtype=float) * DEG
    l0, b0 = lon_0 * DEG, lat_0 * DEG
    dl = lon - l0
    sl, cl = np.sin(lat), np.cos(lat)
    s0, c0 = np.sin(b0), np.cos(b0)
    sd, cd = np.sin(dl), np.cos(dl)
    n1 = cl * sd
    n2 = c0 * sl - s0 * cl * cd
    den = s0 * sl + c0 * cl * cd
    r = np.hypot(n1, n2)
    sep = np.arctan2(r, den)
    pa = np.arctan2(n1, n2)
    dcos_dlon0 = c0 * cl * sd
    dcos_dlat0 = n2
    ok = r > 0
    inv_r = np.divide(1.0, r, out=np.zeros_like(r), where=ok)
    inv_r2 = inv_r * inv_r
    dn1_dlon0 = -cl * cd
    dn2_dlon0 = -s0 * cl * sd
    return {
        "sep": sep,
        "pa": pa,
        "one_minus_cos": 2.0 * np.sin(0.5 * sep) ** 2,
        "dcos_dlon0": dcos_dlon0,
        "dcos_dlat0": dcos_dlat0,
        "dsep_dlon0": -dcos_dlon0 * inv_r,
        "dsep_dlat0": -dcos_dlat0 * inv_r,
        "dpa_dlon0": (n2 * dn1_dlon0 - n1 * dn2_dlon0) * inv_r2,
        "dpa_dlat0": (n1 * den) * inv_r2,
    }


def _ellipse_factor(e: float, phi: float, pa: np.ndarray) -> tuple[np.ndarray, ...]:
    """Effective-radius factor ``g`` with ``d ln g / d e`` and ``d ln g / d phi`` (per rad)."""
    dphi = phi * DEG - pa
    c, s = np.cos(dphi), np.sin(dphi)
    q = 1.0 - e * e
    den = 1.0 - e * e * c * c
    g = np.sqrt(q / den)
    dlng_de = -e / q + e * c * c / den
    dlng_dphi = -e * e * c * s / den
    return g, dlng_de, dlng_dphi


def _position_grads(
    geo: Mapping[str, np.ndarray],
    d_cos: np.ndarray | float,
    d_sep: np.ndarray | float,
    d_pa: np.ndarray | float,
) -> dict[str, np.ndarray]:
    """Chain rule to ``lon_0``/``lat_0`` (per degree) from partials on cos(sep), sep, pa."""
    out = {}
    for k in ("lon0", "lat0"):
        g = d_cos * geo[f"dcos_d{k}"] + d_sep * geo[f"dsep_d{k}"] + d_pa * geo[f"dpa_d{k}"]
        out[{"lon0": "lon_0", "lat0": "lat_0"}[k]] = g * DEG
    return out


# ---------------------------------------------------------------- Gaussian
def gaussian_profile(lon, lat, lon_0, lat_0, sigma, e, phi, grad=False):
    """Gaussian on the sphere (Gammapy's form); value in sr^-1 and optional gradient.

    Symmetric (``e == 0``): ``exp(-(1 - cos d) / (2 A)) / (4 pi A (1 - exp(-1/A)))``
    with ``A = 1 - cos(sigma)``, normalised exactly on the sphere.  Elongated:
    ``A = 1 - cos(sigma_eff)`` and the flat-sky norm ``1 / (2 pi sigma^2 sqrt(1-e^2))``.
    """
    geo = sky_geometry(lon, lat, lon_0, lat_0)
    u_ = geo["one_minus_cos"]
    sig = sigma * DEG
    if e == 0:
        a = 2.0 * np.sin(0.5 * sig) ** 2  # 1 - cos(sigma), without cancellation
        emx = np.exp(-1.0 / a)
        norm = 1.0 / (4 * np.pi * a * -np.expm1(-1.0 / a))
        value = norm * np.exp(-0.5 * u_ / a)
        if not grad:
            return value
        dlnf_da = -1.0 / a + emx / (a * a * -np.expm1(-1.0 / a)) + 0.5 * u_ / a**2
        zero = np.zeros_like(value)
        out = _position_grads(geo, value * 0.5 / a, 0.0, 0.0)
        out.update(sigma=value * dlnf_da * np.sin(sig) * DEG, e=zero, phi=zero)
        return value, out
    g, dlng_de, dlng_dphi = _ellipse_factor(e, phi, geo["pa"])
    seff = sig * g
    a = 2.0 * np.sin(0.5 * seff) ** 2
    q = 1.0 - e * e
    norm = 1.0 / (2 * np.pi * sig * sig * np.sqrt(q))
    value = norm * np.exp(-0.5 * u_ / a)
    if not grad:
        return value
    # d ln f / d ln(seff)
    dlnf_dlns = 0.5 * u_ / a**2 * np.sin(seff) * seff
    out = _position_grads(geo, value * 0.5 / a, 0.0, -value * dlnf_dlns * dlng_dphi)
    out["sigma"] = value * (-2.0 / sig + dlnf_dlns / sig) * DEG
    out["e"] = value * (e / q + dlnf_dlns * dlng_de)
    out["phi"] = value * dlnf_dlns * dlng_dphi * DEG
    return value, out


# ------------------------------------------------------ generalized Gaussian
def gen_gaussian_profile(lon, lat, lon_0, lat_0, r_0, eta, e, phi, grad=False):
    """Generalised Gaussian ``exp(-(d / r_eff)^(1/eta))``, flat-sky normalised (sr^-1)."""
    geo = sky_geometry(lon, lat, lon_0, lat_0)
    g, dlng_de, dlng_dphi = _ellipse_factor(e, phi, geo["pa"])
    r0 = r_0 * DEG
    reff = r0 * g
    q = 1.0 - e * e
    z = geo["sep"] / reff
    p = 1.0 / eta
    t = z**p
    norm = 1.0 / (2 * np.pi * r0 * r0 * np.sqrt(q) * eta * scipy.special.gamma(2 * eta))
    value = norm * np.exp(-t)
    if not grad:
        return value
    dt_dz = p * np.where(z > 0, z ** (p - 1.0), 1.0 if p == 1 else 0.0)
    zdt = z * dt_dz  # = p * t
    with np.errstate(divide="ignore", invalid="ignore"):
        dt_deta = np.where(z > 0, -t * np.log(np.where(z > 0, z, 1.0)) / eta**2, 0.0)
    out = _position_grads(geo, 0.0, -value * dt_dz / reff, -value * zdt * dlng_dphi)
    out["r_0"] = value * (-2.0 / r0 + zdt / r0) * DEG
    out["eta"] = value * (-1.0 / eta - 2.0 * scipy.special.digamma(2 * eta) - dt_deta)
    out["e"] = value * (e / q + zdt * dlng_de)
    out["phi"] = value * zdt * dlng_dphi * DEG
    return value, out


# ------------------------------------------------------------------- disk
def disk_norm(r_0: float, e: float, grad: bool = False):
    """Normalisation of the (sharp) elliptical disk on the sphere, sr^-1.

    ``1 / (2 * int_0^pi 1 - sqrt(1 - 1/(A cos^2 x + B sin^2 x)) dx)`` with
    ``A = 1/sin^2(a)``, ``B = 1/sin^2(b)``, ``b = a sqrt(1-e^2)``; the integrand is
    smooth and pi-periodic, so the trapezoid rule converges exponentially.
    With ``grad``, also returns ``(d norm / d r_0 [per deg], d norm / d e)``.
    """
    a = r_0 * DEG
    sq = np.sqrt(1.0 - e * e)
    b = a * sq
    x = np.arange(_DISK_NODES) * (np.pi / _DISK_NODES)
    c2, s2 = np.cos(x) ** 2, np.sin(x) ** 2
    big_a, big_b = 1.0 / np.sin(a) ** 2, 1.0 / np.sin(b) ** 2
    d = big_a * c2 + big_b * s2
    root = np.sqrt(1.0 - 1.0 / d)
    w = np.pi / _DISK_NODES
    integral = w * np.sum(1.0 - root)
    norm = 0.5 / integral
    if not grad:
        return norm
    dh_dd = -0.5 / (root * d * d)
    da_da = -2.0 * np.cos(a) / np.sin(a) ** 3
    db_db = -2.0 * np.cos(b) / np.sin(b) ** 3
    di_da = w * np.sum(dh_dd * (c2 * da_da + s2 * db_db * sq))
    di_de = w * np.sum(dh_dd * s2 * db_db) * (-a * e / sq if sq > 0 else 0.0)
    return norm, -norm / integral * di_da * DEG, -norm / integral * di_de


def disk_profile(lon, lat, lon_0, lat_0, r_0, e, phi, edge_width, grad=False):
    """Elliptical disk with an erf-smoothed edge (sr^-1), Gammapy's definition.

    ``norm(r_0, e) * (1 - erf(k (d - r_eff) / (r_eff * edge_width))) / 2`` with
    ``k = 2.3262`` so that the edge drops from 95% to 5% over ``edge_width * r_eff``.
    """
    geo = sky_geometry(lon, lat, lon_0, lat_0)
    if e == 0:
        g = np.ones_like(geo["sep"])
        dlng_de = dlng_dphi = np.zeros_like(g)
    else:
        g, dlng_de, dlng_dphi = _ellipse_factor(e, phi, geo["pa"])
    seff = r_0 * DEG * g
    sep = geo["sep"]
    res = disk_norm(r_0, e, grad=grad)
    norm = res[0] if grad else res
    with np.errstate(divide="ignore", invalid="ignore"):
        z = _EDGE_K * (sep - seff) / (seff * edge_width)
    edge = 0.5 * (1.0 - scipy.special.erf(z))
    value = norm * edge
    if not grad:
        return value
    _, dn_dr0, dn_de = res
    de_dz = -np.exp(-z * z) / np.sqrt(np.pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        dz_dsep = np.where(np.isfinite(z), _EDGE_K / (seff * edge_width), 0.0)
        dz_dlns = -dz_dsep * sep  # d z / d ln(seff)
        dz_dw = np.where(np.isfinite(z), -z / edge_width, 0.0)
    de_dz = np.where(np.isfinite(z), de_dz, 0.0)
    dv_dlns = norm * de_dz * dz_dlns
    out = _position_grads(geo, 0.0, norm * de_dz * dz_dsep, -dv_dlns * dlng_dphi)
    out["r_0"] = dn_dr0 * edge + dv_dlns / r_0
    out["e"] = dn_de * edge + dv_dlns * dlng_de
    out["phi"] = dv_dlns * dlng_dphi * DEG
    out["edge_width"] = norm * de_dz * dz_dw
    return value, out


# ------------------------------------------------------------------ shells
def _shell(geo, r_in, r_out, grad):
    """Projected homogeneous shell between ``r_in`` and ``r_out`` (rad); flat-sky norm."""
    sep = geo["sep"]
    norm = 3.0 / (2 * np.pi * (r_out**3 - r_in**3))
    inside_out = sep <= r_out
    inside_in = sep < r_in
    v_out = np.sqrt(np.where(inside_out, r_out**2 - sep**2, 0.0))
    v_in = np.sqrt(np.where(inside_in, r_in**2 - sep**2, 0.0))
    value = norm * np.where(inside_out, v_out - v_in, 0.0)
    if not grad:
        return value
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_out = np.where(inside_out & (v_out > 0), 1.0 / v_out, 0.0)
        inv_in = np.where(inside_in & (v_in > 0), 1.0 / v_in, 0.0)
        sep_over_sin = np.where(sep > 0, sep / np.sin(sep), 1.0)
    dlnn = 3.0 / (r_out**3 - r_in**3)
    d_rout = -dlnn * r_out**2 * value + norm * r_out * inv_out
    d_rin = dlnn * r_in**2 * value - norm * r_in * inv_in
    # d value / d cos(sep) = d value / d sep * (-1 / sin sep), d/dsep = -sep (inv_out - inv_in)
    d_cos = norm * (inv_out - inv_in) * sep_over_sin
    return value, _position_grads(geo, d_cos, 0.0, 0.0), d_rout * DEG, d_rin * DEG


def shell_profile(lon, lat, lon_0, lat_0, radius, width, grad=False):
    """Shell with inner radius ``radius`` and width ``width`` (deg), sr^-1."""
    geo = sky_geometry(lon, lat, lon_0, lat_0)
    res = _shell(geo, radius * DEG, (radius + width) * DEG, grad)
    if not grad:
        return res
    value, out, d_rout, d_rin = res
    out.update(radius=d_rout + d_rin, width=d_rout)
    return value, out


def shell2_profile(lon, lat, lon_0, lat_0, r_0, eta, grad=False):
    """Shell with outer radius ``r_0`` (deg) and relative width ``eta``, sr^-1."""
    geo = sky_geometry(lon, lat, lon_0, lat_0)
    res = _shell(geo, (1 - eta) * r_0 * DEG, r_0 * DEG, grad)
    if not grad:
        return res
    value, out, d_rout, d_rin = res
    out.update(r_0=d_rout + (1 - eta) * d_rin, eta=-r_0 * d_rin)
    return value, out


# ================================================================== classes
_LON = ParameterSpec("lon_0", 0.0, "deg")
_LAT = ParameterSpec("lat_0", 0.0, "deg", min=-90.0, max=90.0)
_E = ParameterSpec("e", 0.0, "", min=0.0, max=1.0, frozen=True)
_PHI = ParameterSpec("phi", 0.0, "deg", min=-180.0, max=180.0, frozen=True)


class SpatialModel(ModelBase):
    """Base class of spatial models: ``frame`` attribute, position, YAML layout.

    Parameters
    ----------
    frame : {"icrs", "galactic"}
        Frame of ``lon_0``/``lat_0`` and of the coordinates given to ``evaluate``.
    **kwargs
        Parameter values (see `ModelBase`).
    """

    type: ClassVar[str] = "spatial"
    input_units: ClassVar[tuple[str, ...]] = ("deg", "deg")
    output_unit: ClassVar[str] = "sr-1"

    def __init__(self, frame: str = "icrs", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if frame not in _FRAMES:
            raise ValueError(
                f"{type(self).__name__}: frame must be one of {_FRAMES}, got {frame!r}"
            )
        self.frame = frame

    @property
    def position(self) -> tuple[float, float]:
        """Centre ``(lon_0, lat_0)`` in deg, in :attr:`frame`."""
        return (self.parameters["lon_0"].canonical_value, self.parameters["lat_0"].canonical_value)

    def position_skycoord(self):
        """Centre as an `astropy.coordinates.SkyCoord`."""
        from astropy.coordinates import SkyCoord

        lon, lat = self.position
        return SkyCoord(lon * u.deg, lat * u.deg, frame=self.frame)

    def lonlat_in_frame(self, lon: Any, lat: Any, frame: str) -> tuple[np.ndarray, np.ndarray]:
        """Convert coordinates (deg) given in ``frame`` into the model's frame."""
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        if frame == self.frame:
            return lon, lat
        from astropy.coordinates import SkyCoord

        c = SkyCoord(lon * u.deg, lat * u.deg, frame=frame).transform_to(self.frame)
        return c.spherical.lon.deg, c.spherical.lat.deg

    @property
    def evaluation_radius(self) -> float | None:
        """Radius (deg) outside which the model is negligible; None: unbounded."""
        return None

    @property
    def evaluation_bin_size_min(self) -> float | None:
        """Largest pixel size (deg) resolving the model (sets oversampling); None: any."""
        return None

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        """Gammapy layout: ``{spatial: {type, frame, parameters}}``."""
        data = super().to_dict(full_output)["spatial"]
        return {
            "spatial": {"type": data["type"], "frame": self.frame, "parameters": data["parameters"]}
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **kwargs: Any) -> SpatialModel:
        """Build from ``{spatial: {...}}`` or the inner dictionary."""
        inner = cls._unwrap(data)
        if "frame" in inner:
            kwargs.setdefault("frame", inner["frame"])
        return super().from_dict(inner, **kwargs)


class PointSpatialModel(SpatialModel):
    """Point source at ``(lon_0, lat_0)``.

    A point source is a delta function: it has no value on a coordinate grid.
    The likelihood integrates it either through the PSF (the PSF evaluated at
    the separation from :attr:`position`; the ``lon_0``/``lat_0`` gradient
    follows from the PSF's radial derivative and the separation derivatives of
    :func:`sky_geometry`) or, without PSF, with :meth:`pixel_weights`.
    :meth:`evaluate` therefore raises.
    """

    tag = ("PointSpatialModel", "point")
    _defaults = (_LON, _LAT)

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0):
        """Not defined for a delta function; use `pixel_weights` or a PSF."""
        raise NotImplementedError(
            "PointSpatialModel is a delta function: integrate it with pixel_weights() "
            "or through the PSF at the separation from its position"
        )

    evaluate_grad = evaluate

    @property
    def evaluation_radius(self) -> float:
        """0 deg."""
        return 0.0

    @property
    def evaluation_bin_size_min(self) -> float:
        """0 deg."""
        return 0.0

    def pixel_weights(self, wcs_header: str, shape: tuple[int, int], grad: bool = False):
        """Pixel weights of the source on a WCS image (see `gdask.models.spatial_template.point_pixel_weights`)."""
        from .spatial_template import point_pixel_weights

        lon, lat = self.position
        return point_pixel_weights(wcs_header, shape, lon, lat, grad=grad)


class GaussianSpatialModel(SpatialModel):
    """Gaussian (optionally elongated: eccentricity ``e``, position angle ``phi``)."""

    tag = ("GaussianSpatialModel", "gauss")
    _defaults = (_LON, _LAT, ParameterSpec("sigma", 1.0, "deg", min=0.0), _E, _PHI)

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0, sigma, e, phi):
        """Value in sr^-1 (see `gaussian_profile`)."""
        return gaussian_profile(lon, lat, lon_0, lat_0, sigma, e, phi)

    @staticmethod
    def evaluate_grad(lon, lat, lon_0, lat_0, sigma, e, phi):
        """Derivatives per canonical unit of every parameter."""
        return gaussian_profile(lon, lat, lon_0, lat_0, sigma, e, phi, grad=True)[1]

    @property
    def evaluation_radius(self) -> float:
        """5 sigma (deg)."""
        return 5 * self.parameters["sigma"].canonical_value

    @property
    def evaluation_bin_size_min(self) -> float:
        """sigma / 3 (deg)."""
        return self.parameters["sigma"].canonical_value / 3.0


class GeneralizedGaussianSpatialModel(SpatialModel):
    """Generalised Gaussian ``exp(-(d/r_0)^(1/eta))`` (disk-like to Laplace), elongated."""

    tag = ("GeneralizedGaussianSpatialModel", "gauss-general")
    _defaults = (
        _LON,
        _LAT,
        ParameterSpec("r_0", 1.0, "deg"),
        ParameterSpec("eta", 0.5, "", min=0.01, max=1.0),
        _E,
        _PHI,
    )

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0, r_0, eta, e, phi):
        """Value in sr^-1 (see `gen_gaussian_profile`)."""
        return gen_gaussian_profile(lon, lat, lon_0, lat_0, r_0, eta, e, phi)

    @staticmethod
    def evaluate_grad(lon, lat, lon_0, lat_0, r_0, eta, e, phi):
        """Derivatives per canonical unit of every parameter."""
        return gen_gaussian_profile(lon, lat, lon_0, lat_0, r_0, eta, e, phi, grad=True)[1]

    @property
    def evaluation_radius(self) -> float:
        """``r_0 (1 + 8 eta)`` (deg)."""
        return self.parameters["r_0"].canonical_value * (1 + 8 * self.parameters["eta"].value)

    @property
    def evaluation_bin_size_min(self) -> float:
        """``r_0 / (3 + 8 eta) / (1 + e)`` (deg)."""
        p = self.parameters
        return p["r_0"].canonical_value / (3 + 8 * p["eta"].value) / (p["e"].value + 1)


class DiskSpatialModel(SpatialModel):
    """Uniform (elliptical) disk with a smooth edge of relative width ``edge_width``."""

    tag = ("DiskSpatialModel", "disk")
    _defaults = (
        _LON,
        _LAT,
        ParameterSpec("r_0", 1.0, "deg", min=0.0),
        _E,
        _PHI,
        ParameterSpec("edge_width", 0.01, "", min=0.0, max=1.0, frozen=True),
    )

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0, r_0, e, phi, edge_width):
        """Value in sr^-1 (see `disk_profile`)."""
        return disk_profile(lon, lat, lon_0, lat_0, r_0, e, phi, edge_width)

    @staticmethod
    def evaluate_grad(lon, lat, lon_0, lat_0, r_0, e, phi, edge_width):
        """Derivatives per canonical unit of every parameter."""
        return disk_profile(lon, lat, lon_0, lat_0, r_0, e, phi, edge_width, grad=True)[1]

    @property
    def evaluation_radius(self) -> float:
        """``1.1 r_0 (1 + edge_width)`` (deg)."""
        p = self.parameters
        return 1.1 * p["r_0"].canonical_value * (1 + p["edge_width"].value)

    @property
    def evaluation_bin_size_min(self) -> float:
        """``r_0 (1 - edge_width) / 10`` (deg)."""
        p = self.parameters
        return p["r_0"].canonical_value * (1 - p["edge_width"].value) / 10.0


class ShellSpatialModel(SpatialModel):
    """Projected homogeneous shell: inner radius ``radius``, width ``width``."""

    tag = ("ShellSpatialModel", "shell")
    _defaults = (
        _LON,
        _LAT,
        ParameterSpec("radius", 1.0, "deg"),
        ParameterSpec("width", 0.2, "deg"),
    )

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0, radius, width):
        """Value in sr^-1 (see `shell_profile`)."""
        return shell_profile(lon, lat, lon_0, lat_0, radius, width)

    @staticmethod
    def evaluate_grad(lon, lat, lon_0, lat_0, radius, width):
        """Derivatives per canonical unit (infinite slopes at the rims are set to 0)."""
        return shell_profile(lon, lat, lon_0, lat_0, radius, width, grad=True)[1]

    @property
    def evaluation_radius(self) -> float:
        """Outer radius (deg)."""
        p = self.parameters
        return p["radius"].canonical_value + p["width"].canonical_value

    @property
    def evaluation_bin_size_min(self) -> float:
        """The shell width (deg)."""
        return self.parameters["width"].canonical_value


class Shell2SpatialModel(SpatialModel):
    """Projected homogeneous shell: outer radius ``r_0``, width ``eta * r_0``."""

    tag = ("Shell2SpatialModel", "shell2")
    _defaults = (
        _LON,
        _LAT,
        ParameterSpec("r_0", 1.0, "deg"),
        ParameterSpec("eta", 0.2, "", min=0.02, max=1.0),
    )

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0, r_0, eta):
        """Value in sr^-1 (see `shell2_profile`)."""
        return shell2_profile(lon, lat, lon_0, lat_0, r_0, eta)

    @staticmethod
    def evaluate_grad(lon, lat, lon_0, lat_0, r_0, eta):
        """Derivatives per canonical unit (infinite slopes at the rims are set to 0)."""
        return shell2_profile(lon, lat, lon_0, lat_0, r_0, eta, grad=True)[1]

    @property
    def r_in(self) -> float:
        """Inner radius (deg)."""
        p = self.parameters
        return (1 - p["eta"].value) * p["r_0"].canonical_value

    @property
    def evaluation_radius(self) -> float:
        """Outer radius ``r_0`` (deg)."""
        return self.parameters["r_0"].canonical_value

    @property
    def evaluation_bin_size_min(self) -> float:
        """``eta * r_0`` (deg)."""
        p = self.parameters
        return p["eta"].value * p["r_0"].canonical_value


class ConstantSpatialModel(SpatialModel):
    """Isotropic model of constant ``value`` (sr^-1); no position, no frame in YAML."""

    tag = ("ConstantSpatialModel", "const")
    _defaults = (ParameterSpec("value", 1.0, "sr-1", frozen=True),)

    @staticmethod
    def evaluate(lon, lat, value):
        """``value`` broadcast to the coordinates."""
        return np.full(np.broadcast_shapes(np.shape(lon), np.shape(lat)), float(value))

    @staticmethod
    def evaluate_grad(lon, lat, value):
        """``{"value": 1}`` broadcast to the coordinates."""
        return {"value": np.ones(np.broadcast_shapes(np.shape(lon), np.shape(lat)))}

    @property
    def position(self) -> None:  # type: ignore[override]
        """No position."""
        return None

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        """Gammapy writes ``{spatial: {type: ConstantSpatialModel, parameters: []}}``."""
        return {"spatial": {"type": self.tag[0], "parameters": []}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **kwargs: Any) -> ConstantSpatialModel:
        """Build from a dictionary (an empty parameter list gives the defaults)."""
        inner = cls._unwrap(data)
        pars = (
            cls._parameters_from_dict(inner.get("parameters") or [], cls._defaults)
            if inner.get("parameters")
            else {}
        )
        return cls(frame=inner.get("frame", "icrs"), **pars, **kwargs)

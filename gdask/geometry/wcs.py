"""WCS sky grids mapped onto xarray coordinates.

`WcsGeom` is a 2D celestial pixel grid (any FITS projection; ICRS or Galactic
frame). Its pixel conventions follow Gammapy 2.1's ``WcsGeom`` exactly (same
CRPIX/CRVAL/CDELT, number of pixels, cutout alignment, resampling), so a map
binned on a gdask geometry matches Gammapy's bin for bin.

In xarray a sky image has dims ``("lat", "lon")`` (rows, columns; the numpy
order of a FITS image) and two 2D coordinates ``sky_lon`` and ``sky_lat``
holding the pixel-centre coordinates in degrees; the WCS travels as a FITS
header string in ``attrs["wcs_header"]``. (The 2D coordinates are not named
``lon``/``lat`` because a coordinate named like a dimension must be 1D in
xarray's data model.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from astropy.coordinates import Angle, SkyCoord, angular_separation, position_angle
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.nddata.utils import overlap_slices
from astropy.wcs import WCS
from astropy.wcs.utils import (
    celestial_frame_to_wcs,
    proj_plane_pixel_scales,
    wcs_to_celestial_frame,
)
from numpy.typing import ArrayLike, NDArray

from gdask.errors import FormatError
from gdask.geometry.axes import Axis

__all__ = ["WcsGeom", "WCS_ATTR", "SKY_DIMS", "SKY_COORDS"]

#: attrs key holding the WCS header string of a sky map
WCS_ATTR = "wcs_header"
#: xarray dims of a sky image (rows, columns)
SKY_DIMS = ("lat", "lon")
#: names of the 2D pixel-centre coordinates
SKY_COORDS = ("sky_lon", "sky_lat")

_FRAMES = ("icrs", "galactic")


def _pair(value: Any, name: str) -> tuple[float, float]:
    """(lon, lat) floats in deg from a scalar, a pair, a string or a Quantity."""
    if isinstance(value, tuple | list) and len(value) == 2:
        return float(Angle(value[0], "deg").deg), float(Angle(value[1], "deg").deg)
    angle = np.atleast_1d(Angle(value, "deg").deg).astype(float).ravel()
    if angle.size == 1:
        return float(angle[0]), float(angle[0])
    if angle.size == 2:
        return float(angle[0]), float(angle[1])
    raise ValueError(f"{name} must be a scalar or a (lon, lat) pair, got {value!r}")


class WcsGeom:
    """A 2D WCS sky grid.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        Celestial WCS (two axes).
    npix : tuple of int
        Number of pixels ``(nx, ny)`` along longitude and latitude.
    """

    def __init__(self, wcs: WCS, npix: tuple[int, int]) -> None:
        if wcs.naxis != 2 or not wcs.has_celestial:
            raise FormatError("WcsGeom needs a 2D celestial WCS", field="WCS")
        self._wcs = wcs.deepcopy()
        nx, ny = (int(np.max(n)) for n in npix)
        self._npix = (nx, ny)
        self._wcs.array_shape = (ny, nx)
        self._frame = wcs_to_celestial_frame(self._wcs).name
        if self._frame == "fk5":
            self._frame = "icrs"
        self._cache: dict[str, Any] = {}

    # -- construction --------------------------------------------------------
    @classmethod
    def create(
        cls,
        skydir: tuple[float, float] | SkyCoord | None = None,
        width: Any = None,
        binsz: Any = 0.5,
        frame: str = "icrs",
        proj: str = "CAR",
        npix: Any = None,
        refpix: tuple[float, float] | None = None,
    ) -> WcsGeom:
        """Grid centred on ``skydir`` with pixels of ``binsz`` degrees.

        Parameters
        ----------
        skydir : (lon, lat) in deg in ``frame``, or SkyCoord
            Reference position (CRVAL); (0, 0) by default.
        width : float or (float, float) or Quantity
            Size in degrees; ``npix = rint(width / binsz)``. All-sky if neither
            ``width`` nor ``npix`` is given.
        binsz : float or (float, float)
            Pixel size in degrees.
        frame : {"icrs", "galactic"}
            Celestial frame.
        proj : str
            FITS projection code (CAR, TAN, AIT, ...).
        npix : int or (int, int), optional
            Number of pixels; overrides ``width``.
        refpix : (float, float), optional
            1-based reference pixel; the image centre ``((nx + 1) / 2, (ny + 1) / 2)``
            by default.
        """
        if frame not in _FRAMES:
            raise ValueError(f"frame must be one of {_FRAMES}, got {frame!r}")
        if skydir is None:
            crval = (0.0, 0.0)
        elif isinstance(skydir, SkyCoord):
            sky = skydir.transform_to(frame)
            crval = (float(sky.data.lon.deg), float(sky.data.lat.deg))
        else:
            crval = (float(skydir[0]), float(skydir[1]))
        bx, by = _pair(binsz, "binsz")
        if npix is not None:
            nx, ny = (int(n) for n in _pair(npix, "npix"))
        else:
            wx, wy = _pair((360.0, 180.0) if width is None else width, "width")
            nx, ny = int(np.rint(wx / bx)), int(np.rint(wy / by))
        if refpix is None:
            refpix = ((nx + 1) / 2.0, (ny + 1) / 2.0)
        celestial = SkyCoord(np.nan, np.nan, frame=frame, unit="deg").frame
        wcs = celestial_frame_to_wcs(celestial, projection=proj)
        wcs.wcs.crpix = refpix
        wcs.wcs.crval = crval
        wcs.wcs.cdelt = (-bx, by)
        wcs.array_shape = (ny, nx)
        wcs.wcs.datfix()
        return cls(wcs, (nx, ny))

    @classmethod
    def from_header(cls, header: fits.Header | str) -> WcsGeom:
        """Geometry from a FITS header (object or string).

        The image size is read from ``WCSSHAPE`` (Gammapy) or ``NAXIS1/2``.
        """
        if isinstance(header, str):
            header = fits.Header.fromstring(header)
        wcs = WCS(header, naxis=2).sub(2)
        if "WCSSHAPE" in header:
            shape = [int(v) for v in str(header["WCSSHAPE"]).strip("()").split(",") if v.strip()]
            npix = (shape[0], shape[1])
        elif "NAXIS1" in header and "NAXIS2" in header:
            npix = (int(header["NAXIS1"]), int(header["NAXIS2"]))
        else:
            raise FormatError("header has neither WCSSHAPE nor NAXIS1/NAXIS2", field="WCSSHAPE")
        return cls(wcs, npix)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset | xr.DataArray) -> WcsGeom:
        """Geometry of an xarray object carrying ``attrs["wcs_header"]``."""
        if WCS_ATTR not in ds.attrs:
            raise FormatError(f"no attrs[{WCS_ATTR!r}] on the xarray object", field=WCS_ATTR)
        return cls.from_header(ds.attrs[WCS_ATTR])

    def to_header(self) -> fits.Header:
        """FITS header of the WCS plus ``WCSSHAPE = '(nx,ny)'`` (as Gammapy writes it)."""
        header = self._wcs.to_header()
        header["WCSSHAPE"] = f"({self._npix[0]},{self._npix[1]})"
        return header

    def to_header_string(self) -> str:
        """`to_header` as a string (what ``attrs["wcs_header"]`` holds)."""
        return self.to_header().tostring()

    def to_attrs(self) -> dict[str, str]:
        """Attributes to put on a sky map: the WCS header string and the frame."""
        return {WCS_ATTR: self.to_header_string(), "frame": self._frame}

    # -- basic properties ------------------------------------------------------
    @property
    def wcs(self) -> WCS:
        """The astropy WCS (do not modify)."""
        return self._wcs

    @property
    def npix(self) -> tuple[int, int]:
        """Number of pixels ``(nx, ny)``."""
        return self._npix

    @property
    def shape(self) -> tuple[int, int]:
        """Array shape ``(ny, nx)`` (dims ``("lat", "lon")``)."""
        return (self._npix[1], self._npix[0])

    @property
    def frame(self) -> str:
        """``"icrs"`` or ``"galactic"``."""
        return self._frame

    @property
    def projection(self) -> str:
        """FITS projection code, e.g. ``"CAR"``."""
        return self._wcs.wcs.ctype[0][5:]

    @property
    def binsz(self) -> tuple[float, float]:
        """Absolute pixel size ``(|CDELT1|, |CDELT2|)`` in deg."""
        cdelt = np.abs(self._wcs.wcs.cdelt)
        return float(cdelt[0]), float(cdelt[1])

    @property
    def pixel_scales(self) -> NDArray[np.float64]:
        """Pixel scales at the reference pixel in deg (``proj_plane_pixel_scales``)."""
        return proj_plane_pixel_scales(self._wcs)

    @property
    def width(self) -> tuple[float, float]:
        """Size ``(binsz_x * nx, binsz_y * ny)`` in deg."""
        bx, by = self.binsz
        return bx * self._npix[0], by * self._npix[1]

    @property
    def center_pix(self) -> tuple[float, float]:
        """0-based pixel coordinate of the image centre."""
        return (self._npix[0] - 1) / 2.0, (self._npix[1] - 1) / 2.0

    @property
    def center_skydir(self) -> SkyCoord:
        """Sky position of the image centre."""
        return SkyCoord.from_pixel(*self.center_pix, self._wcs)

    @property
    def center_coord(self) -> tuple[float, float]:
        """(lon, lat) of the image centre in deg."""
        lon, lat = self.pix_to_coord(*self.center_pix)
        return float(lon), float(lat)

    @property
    def is_allsky(self) -> bool:
        """True if the grid spans 360 x 180 deg."""
        w = self.width
        return bool(np.isclose(w[0], 360.0) and np.isclose(w[1], 180.0))

    # -- pixel <-> sky ------------------------------------------------------------
    def _lonlat(self, coords: Any, lat: ArrayLike | None = None) -> tuple[NDArray, NDArray]:
        if isinstance(coords, SkyCoord):
            sky = coords.transform_to(self._frame)
            return sky.data.lon.deg, sky.data.lat.deg
        if lat is None:
            coords, lat = coords
        return np.asarray(coords, dtype=float), np.asarray(lat, dtype=float)

    def coord_to_pix(self, coords: Any, lat: ArrayLike | None = None) -> tuple[NDArray, NDArray]:
        """0-based pixel coordinates ``(x, y)`` of sky positions.

        ``coords`` is a SkyCoord (any frame), a ``(lon, lat)`` pair, or the
        longitude with ``lat`` given separately (deg, in the geometry's frame).
        """
        lon, lat_ = self._lonlat(coords, lat)
        x, y = self._wcs.wcs_world2pix(lon, lat_, 0)
        return np.asarray(x), np.asarray(y)

    def pix_to_coord(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray, NDArray]:
        """(lon, lat) in deg at 0-based pixel coordinates; NaN outside the projection."""
        lon, lat = self._wcs.wcs_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
        return np.asarray(lon), np.asarray(lat)

    def coord_to_idx(self, coords: Any, lat: ArrayLike | None = None) -> tuple[NDArray, NDArray]:
        """Integer pixel indices ``(ix, iy)`` (nearest pixel); -1 outside the grid."""
        x, y = self.coord_to_pix(coords, lat)
        out = []
        for p, n in zip((x, y), self._npix, strict=True):
            p = np.atleast_1d(p)
            with np.errstate(invalid="ignore"):
                idx = np.floor(p + 0.5)
            ok = np.isfinite(idx) & (idx >= 0) & (idx < n)
            out.append(np.where(ok, np.nan_to_num(idx), -1).astype(int).reshape(np.shape(x)))
        return out[0], out[1]

    def contains(self, coords: Any, lat: ArrayLike | None = None) -> NDArray[np.bool_]:
        """Whether sky positions fall on a pixel of the grid."""
        ix, iy = self.coord_to_idx(coords, lat)
        return (ix >= 0) & (iy >= 0)

    def get_coord(self, mode: str = "center") -> tuple[NDArray, NDArray]:
        """(lon, lat) arrays in deg of pixel centres ``(ny, nx)`` or corners ``(ny+1, nx+1)``."""
        key = f"coord_{mode}"
        if key not in self._cache:
            if mode == "center":
                x, y = np.arange(self._npix[0], dtype=float), np.arange(self._npix[1], dtype=float)
            elif mode == "edges":
                x = np.arange(-0.5, self._npix[0], dtype=float)
                y = np.arange(-0.5, self._npix[1], dtype=float)
            else:
                raise ValueError(f"mode must be 'center' or 'edges', got {mode!r}")
            xx, yy = np.meshgrid(x, y)
            self._cache[key] = self.pix_to_coord(xx, yy)
        lon, lat = self._cache[key]
        return lon.copy(), lat.copy()

    @property
    def lon(self) -> NDArray[np.float64]:
        """Longitude of pixel centres, shape ``(ny, nx)``, deg."""
        return self.get_coord()[0]

    @property
    def lat(self) -> NDArray[np.float64]:
        """Latitude of pixel centres, shape ``(ny, nx)``, deg."""
        return self.get_coord()[1]

    def to_skycoord(self) -> SkyCoord:
        """Pixel centres as a SkyCoord of shape ``(ny, nx)``."""
        lon, lat = self.get_coord()
        return SkyCoord(lon, lat, unit="deg", frame=self._frame)

    def separation(self, center: Any) -> NDArray[np.float64]:
        """Angular distance in deg of every pixel centre from ``center``.

        ``center`` is a SkyCoord (any frame) or (lon, lat) in the geometry's frame.
        """
        clon, clat = self._lonlat(center)
        lon, lat = self.get_coord()
        sep = angular_separation(
            np.deg2rad(clon), np.deg2rad(clat), np.deg2rad(lon), np.deg2rad(lat)
        )
        return np.rad2deg(np.asarray(sep))

    def solid_angle(self) -> NDArray[np.float64]:
        """Solid angle of every pixel in sr, shape ``(ny, nx)``.

        Each pixel is two planar triangles spanned by its corners' great-circle
        side lengths and position angles (Gammapy's approximation, exact to
        ``O(binsz^2)`` relative).
        """
        if "solid_angle" not in self._cache:
            lon, lat = (np.deg2rad(a) for a in self.get_coord("edges"))

            def corner(dy: slice, dx: slice) -> tuple[NDArray, NDArray]:
                return lon[dy, dx], lat[dy, dx]

            a = corner(slice(None, -1), slice(None, -1))
            b = corner(slice(1, None), slice(None, -1))
            c = corner(slice(None, -1), slice(1, None))
            d = corner(slice(1, None), slice(1, None))
            s_ab = angular_separation(*a, *b)
            s_ac = angular_separation(*a, *c)
            s_cd = angular_separation(*c, *d)
            s_bd = angular_separation(*b, *d)
            ang_b = np.asarray(position_angle(*b, *d)) - np.asarray(position_angle(*b, *a))
            ang_c = np.asarray(position_angle(*c, *d)) - np.asarray(position_angle(*a, *c))
            area = 0.5 * s_ab * s_bd * np.sin(ang_b) + 0.5 * s_cd * s_ac * np.sin(ang_c)
            self._cache["solid_angle"] = np.abs(np.asarray(area, dtype=float))
        return self._cache["solid_angle"].copy()

    # -- derived grids -------------------------------------------------------------
    def _resampled(self, factor: float) -> WCS:
        """WCS with pixels ``factor`` times larger, aligned on the outer edges."""
        wcs = self._wcs.deepcopy()
        wcs.wcs.cdelt = wcs.wcs.cdelt * factor
        wcs.wcs.crpix = (wcs.wcs.crpix - 0.5) / factor + 0.5
        return wcs

    def upsample(self, factor: int) -> WcsGeom:
        """Grid with every pixel split into ``factor x factor`` pixels."""
        factor = int(factor)
        npix = (self._npix[0] * factor, self._npix[1] * factor)
        return WcsGeom(self._resampled(1.0 / factor), npix)

    def downsample(self, factor: int) -> WcsGeom:
        """Grid of ``factor x factor`` merged pixels; both sizes must divide by ``factor``."""
        factor = int(factor)
        if self._npix[0] % factor or self._npix[1] % factor:
            raise ValueError(f"spatial shape {self.shape} not divisible by {factor}")
        npix = (self._npix[0] // factor, self._npix[1] // factor)
        return WcsGeom(self._resampled(float(factor)), npix)

    def to_binsz(self, binsz: Any) -> WcsGeom:
        """Grid of the same centre, width, frame and projection with pixel size ``binsz``.

        ``geom.to_binsz(0.2)`` is the coarse geometry of IRF maps (PSF, energy
        dispersion) that Gammapy's ``MapDataset.create`` uses (``binsz_irf``).
        """
        return WcsGeom.create(
            skydir=self.center_skydir,
            width=self.width,
            binsz=binsz,
            frame=self._frame,
            proj=self.projection,
        )

    def cutout(
        self,
        position: Any,
        width: Any,
        mode: str = "trim",
        odd_npix: bool = False,
        min_npix: int = 1,
    ) -> WcsGeom:
        """Sub-grid of about ``width`` deg around ``position``, aligned with this grid.

        Parameters
        ----------
        position : SkyCoord or (lon, lat)
            Centre of the cutout.
        width : float or (lon, lat) or Quantity
            Size in degrees.
        mode : {"trim", "partial", "strict"}
            Behaviour at the grid border, as `~astropy.nddata.Cutout2D`.
        odd_npix : bool
            Round the size in pixels up to an odd number.
        min_npix : int
            Minimum size in pixels.
        """
        if not isinstance(position, SkyCoord):
            lon, lat = self._lonlat(position)
            position = SkyCoord(lon, lat, unit="deg", frame=self._frame)
        size = np.clip(np.array(_pair(width, "width")) / self.pixel_scales, min_npix, None)
        if odd_npix:
            size = (np.ceil(size) // 2 * 2 + 1).astype(int)
        dummy = np.empty(self.shape, dtype=bool)
        c2d = Cutout2D(dummy, position=position, size=size[::-1], wcs=self._wcs, mode=mode)
        return WcsGeom(c2d.wcs, c2d.shape[::-1])

    def cutout_slices(
        self, parent: WcsGeom, mode: str = "partial"
    ) -> dict[str, tuple[slice, slice]]:
        """Slices of ``parent`` (``"parent-slices"``) and of this grid (``"cutout-slices"``)
        covering their overlap, for an aligned cutout of ``parent``."""
        x, y = parent.coord_to_pix(self.center_skydir)
        big, small = overlap_slices(
            large_array_shape=parent.shape,
            small_array_shape=self.shape,
            position=(float(y), float(x)),
            mode=mode,
        )
        return {"parent-slices": big, "cutout-slices": small}

    # -- regions ----------------------------------------------------------------
    def region_mask(self, regions: Any, inside: bool = True) -> NDArray[np.bool_]:
        """Boolean ``(ny, nx)`` mask of pixels whose centre is inside any region.

        ``regions`` is a `regions` sky or pixel region, a list of them, a
        ``Regions`` object or a ds9 string. A ``PointSkyRegion`` marks the (up to
        four) pixels nearest to the point. With ``inside=False`` the mask is
        inverted (the exclusion-mask convention).
        """
        from gdask.geometry.regions import parse_regions, regions_pixel_mask

        mask = regions_pixel_mask(parse_regions(regions), self._wcs, self.shape)
        return mask if inside else ~mask

    # -- xarray ---------------------------------------------------------------
    def to_coords(self) -> dict[str, xr.DataArray]:
        """2D coordinates ``sky_lon``/``sky_lat`` (deg) on dims ``("lat", "lon")``."""
        lon, lat = self.get_coord()
        attrs = {"units": "deg", "frame": self._frame}
        return {
            SKY_COORDS[0]: xr.DataArray(lon, dims=SKY_DIMS, attrs=dict(attrs, axis="lon")),
            SKY_COORDS[1]: xr.DataArray(lat, dims=SKY_DIMS, attrs=dict(attrs, axis="lat")),
        }

    def to_cube_coords(self, axes: Axis | list[Axis]) -> dict[str, xr.DataArray]:
        """Coordinates of a cube: the axes' coordinates and bounds plus the sky coordinates.

        The data of such a cube have dims ``cube_dims(axes)``, e.g.
        ``("energy", "lat", "lon")``.
        """
        coords: dict[str, xr.DataArray] = {}
        for axis in [axes] if isinstance(axes, Axis) else list(axes):
            coords.update(axis.to_coords())
        coords.update(self.to_coords())
        return coords

    @staticmethod
    def cube_dims(axes: Axis | list[Axis]) -> tuple[str, ...]:
        """Dims of a cube with the given non-spatial axes (outermost first)."""
        axes = [axes] if isinstance(axes, Axis) else list(axes)
        return tuple(a.name for a in axes) + SKY_DIMS

    def empty(
        self, axes: Axis | list[Axis] | None = None, dtype: Any = float, name: str = "data"
    ) -> xr.Dataset:
        """Dataset with one zero-filled variable ``name`` on this grid (and axes).

        A Dataset rather than a DataArray because the CF bounds variables of the
        axes have the extra ``bound`` dimension; the WCS is in its attrs.
        """
        axes = [] if axes is None else ([axes] if isinstance(axes, Axis) else list(axes))
        dims = self.cube_dims(axes)
        shape = tuple(a.nbin for a in axes) + self.shape
        return xr.Dataset(
            {name: (dims, np.zeros(shape, dtype=dtype))},
            coords=self.to_cube_coords(axes),
            attrs=self.to_attrs(),
        )

    # -- comparison ----------------------------------------------------------
    def is_aligned(self, other: WcsGeom, tolerance: float = 1e-6) -> bool:
        """Same frame, projection and pixel size, and pixel grids shifted by whole pixels."""
        if self.frame != other.frame or self.projection != other.projection:
            return False
        if not np.allclose(self._wcs.wcs.cdelt, other.wcs.wcs.cdelt, rtol=tolerance):
            return False
        if not np.allclose(self._wcs.wcs.crval, other.wcs.wcs.crval, atol=tolerance):
            return False
        shift = np.asarray(self._wcs.wcs.crpix) - np.asarray(other.wcs.wcs.crpix)
        return bool(np.allclose(shift, np.round(shift), atol=tolerance))

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, WcsGeom):
            return False
        a, b = self._wcs.wcs, other.wcs.wcs
        return (
            self._npix == other.npix
            and self.frame == other.frame
            and list(a.ctype) == list(b.ctype)
            and np.allclose(a.crpix, b.crpix, rtol=0, atol=1e-9)
            and np.allclose(a.crval, b.crval, rtol=0, atol=1e-9)
            and np.allclose(a.cdelt, b.cdelt, rtol=1e-9, atol=0)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        lon, lat = self._wcs.wcs.crval
        return (
            f"WcsGeom(npix={self._npix}, binsz={self.binsz}, frame={self._frame!r}, "
            f"proj={self.projection!r}, crval=({lon:.4f}, {lat:.4f}))"
        )

"""DL4 map datasets: `MapDataset` and `MapDatasetOnOff`, and their GADF-DL4 FITS IO.

A map dataset is one `xarray.Dataset`:

- ``counts(energy, lat, lon)``, ``background(energy, lat, lon)``,
  ``mask_safe(energy, lat, lon)`` and ``mask_fit(energy, lat, lon)`` (bool);
- ``exposure(energy_true, lat, lon)`` in cm2 s;
- the IRF maps ``psf``/``psf_exposure`` and ``edisp``/``edisp_exposure`` on
  their own prefixed dims (see `gdask.datasets.irf_maps`);
- for `MapDatasetOnOff`: ``counts_off(energy, lat, lon)``,
  ``acceptance(energy, lat, lon)``, ``acceptance_off(energy, lat, lon)``;
- the GTI as ``gti_START``/``gti_STOP`` (dim ``gti``).

Attrs: ``wcs_header`` and ``frame`` (the sky grid), ``name``, ``dataset_type``,
``meta`` (JSON: livetime, obs ids, ... and the FITS primary header cards),
``meta_table`` (JSON of Gammapy's META_TABLE HDU) and ``gti_attrs``.
Energies are in TeV (files in keV/MeV/GeV are converted on reading).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.table import Table
from numpy.typing import ArrayLike

from gdask.datasets._fits import gadf_map_hdus, open_dataset_fits, read_gadf_map
from gdask.datasets.axes import BandAxis
from gdask.datasets.base import DatasetBase
from gdask.datasets.irf_maps import EXPOSURE_UNIT, EDispKernelMap, PSFMap
from gdask.dl3.gti import GTI
from gdask.errors import FormatError, GdaskError, MissingHDUError
from gdask.geometry.axes import Axis
from gdask.geometry.wcs import WCS_ATTR, WcsGeom

__all__ = ["MapDataset", "MapDatasetOnOff"]

RAD_AXIS_DEFAULT = Axis.from_bounds(0.0, 0.66, 66, name="rad", unit="deg")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _table_to_json(table: Table) -> str:
    cols = {
        name: {"values": np.asarray(table[name]).tolist(), "unit": str(table[name].unit or "")}
        for name in table.colnames
    }
    return json.dumps(cols, default=_json_default)


def _table_from_json(text: str) -> Table:
    cols = json.loads(text)
    table = Table()
    for name, col in cols.items():
        table[name] = np.asarray(col["values"])
        if col["unit"]:
            table[name].unit = col["unit"]
    return table


class MapDataset(DatasetBase):
    """A binned (DL4) map dataset on a WCS sky grid.

    Parameters
    ----------
    geom : `~gdask.geometry.WcsGeom`
        Sky grid of counts, background, exposure and masks.
    energy_axis : Axis or BandAxis
        Reconstructed energy axis (``energy``).
    energy_axis_true : Axis or BandAxis, optional
        True energy axis of the exposure; required with ``exposure``.
    counts, background : array_like, optional
        ``(energy, lat, lon)``; the dtype is kept.
    exposure : array_like, optional
        ``(energy_true, lat, lon)`` in cm2 s.
    mask_safe, mask_fit : array_like of bool, optional
        ``(energy, lat, lon)``.
    psf : `PSFMap`, optional
    edisp : `EDispKernelMap`, optional
    gti : `~gdask.dl3.GTI`, optional
    name : str
        Dataset name.
    meta : dict, optional
        JSON-serialisable metadata (``livetime`` in s, ``obs_ids``, ...).
    meta_table : `~astropy.table.Table`, optional
        Per-observation metadata table (Gammapy's META_TABLE).
    """

    tag = "MapDataset"
    _json_default = staticmethod(_json_default)
    _energy_vars: tuple[str, ...] = ("counts", "background")
    _hdu_vars: tuple[str, ...] = ("counts", "exposure", "background")

    def __init__(
        self,
        geom: WcsGeom,
        energy_axis: Axis | BandAxis,
        energy_axis_true: Axis | BandAxis | None = None,
        *,
        counts: ArrayLike | None = None,
        exposure: ArrayLike | None = None,
        background: ArrayLike | None = None,
        mask_safe: ArrayLike | None = None,
        mask_fit: ArrayLike | None = None,
        psf: PSFMap | None = None,
        edisp: EDispKernelMap | None = None,
        gti: GTI | None = None,
        name: str = "",
        meta: dict | None = None,
        meta_table: Table | None = None,
        **extra: ArrayLike | None,
    ) -> None:
        e_reco = BandAxis.wrap(energy_axis)
        if e_reco.name != "energy":
            raise ValueError(f"energy_axis must be named 'energy', got {e_reco.name!r}")
        coords = geom.to_coords()
        coords.update(e_reco.to_coords("energy"))
        dims = ("energy", "lat", "lon")
        shape = (e_reco.nbin,) + geom.shape
        data_vars: dict[str, Any] = {}
        arrays = {"counts": counts, "background": background, **extra}
        for key, arr in arrays.items():
            if arr is not None:
                data_vars[key] = (dims, self._check(key, np.asarray(arr), shape), {"units": ""})
        for key, arr in (("mask_safe", mask_safe), ("mask_fit", mask_fit)):
            if arr is not None:
                data_vars[key] = (dims, self._check(key, np.asarray(arr, dtype=bool), shape))
        if exposure is not None:
            if energy_axis_true is None:
                raise ValueError("exposure needs energy_axis_true")
            e_true = BandAxis.wrap(energy_axis_true)
            if e_true.name != "energy_true":
                e_true = e_true.renamed("energy_true")
            coords.update(e_true.to_coords("energy_true"))
            arr = self._check("exposure", np.asarray(exposure), (e_true.nbin,) + geom.shape)
            data_vars["exposure"] = (("energy_true", "lat", "lon"), arr, {"units": EXPOSURE_UNIT})
        ds = xr.Dataset(data_vars, coords=coords, attrs=geom.to_attrs())
        for irf in (psf, edisp):
            if irf is not None:
                part = irf.to_dataset()
                ds = xr.merge([ds, part], combine_attrs="override")
                ds.attrs.update(part.attrs)
        self._put_gti(ds, gti)
        ds.attrs.update(geom.to_attrs())
        self._put_attrs(ds, name, meta)
        if meta_table is not None:
            ds.attrs["meta_table"] = _table_to_json(meta_table)
        self.ds = ds

    # -- wrapping -------------------------------------------------------------
    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> MapDataset:
        """Wrap a dataset made by `to_dataset` (possibly lazy, e.g. from zarr)."""
        if WCS_ATTR not in ds.attrs:
            raise FormatError(f"no attrs[{WCS_ATTR!r}]: not a gdask map dataset", field=WCS_ATTR)
        kind = ds.attrs.get("dataset_type", cls.tag)
        out_cls = MapDatasetOnOff if kind == MapDatasetOnOff.tag else MapDataset
        if not issubclass(out_cls, cls):
            raise FormatError(f"dataset type {kind!r} is not a {cls.tag}", field="dataset_type")
        return out_cls._wrap(ds)

    # -- content ---------------------------------------------------------------
    @property
    def meta_table(self) -> Table | None:
        """Per-observation metadata table, if any."""
        text = self.ds.attrs.get("meta_table")
        return None if text is None else _table_from_json(text)

    @property
    def geom(self) -> WcsGeom:
        """Sky grid of counts, exposure, background and masks."""
        return WcsGeom.from_dataset(self.ds)

    @property
    def energy_axis(self) -> BandAxis:
        """Reconstructed energy axis."""
        return BandAxis.from_dataset(self.ds, "energy")

    @property
    def energy_axis_true(self) -> BandAxis | None:
        """True energy axis of the exposure."""
        return (
            BandAxis.from_dataset(self.ds, "energy_true")
            if "energy_true" in self.ds.coords
            else None
        )

    counts = property(lambda self: self._get("counts"), doc="Counts ``(energy, lat, lon)``.")
    exposure = property(
        lambda self: self._get("exposure"), doc="Exposure ``(energy_true, lat, lon)``, cm2 s."
    )
    background = property(
        lambda self: self._get("background"), doc="Background ``(energy, lat, lon)``."
    )
    mask_safe = property(
        lambda self: self._get("mask_safe"), doc="Safe mask ``(energy, lat, lon)``."
    )
    mask_fit = property(lambda self: self._get("mask_fit"), doc="Fit mask ``(energy, lat, lon)``.")

    @property
    def psf(self) -> PSFMap | None:
        """PSF map (loads its arrays)."""
        return PSFMap.from_dataset(self.ds)

    @property
    def edisp(self) -> EDispKernelMap | None:
        """Energy-dispersion kernel map (loads its arrays)."""
        return EDispKernelMap.from_dataset(self.ds)

    def __repr__(self) -> str:
        present = [
            k for k in self.ds.data_vars if not k.endswith("_bounds") and not k.startswith("gti_")
        ]
        return f"{type(self).__name__}(name={self.name!r}, geom={self.geom!r}, maps={present})"

    # -- creation ----------------------------------------------------------------
    @classmethod
    def create(
        cls,
        geom: WcsGeom,
        energy_axis: Axis | BandAxis,
        energy_axis_true: Axis | BandAxis | None = None,
        binsz_irf: float = 0.2,
        rad_axis: Axis | None = None,
        name: str = "",
        reco_psf: bool = False,
    ) -> MapDataset:
        """Empty dataset: zero maps, PSF and kernel maps on a ``binsz_irf`` grid, masks False.

        ``energy_axis_true`` defaults to a copy of ``energy_axis``.
        """
        e_reco = BandAxis.wrap(energy_axis)
        e_true = (
            BandAxis.wrap(energy_axis_true)
            if energy_axis_true is not None
            else e_reco.renamed("energy_true")
        )
        rad = BandAxis.wrap(rad_axis or RAD_AXIS_DEFAULT)
        geom_irf = geom.to_binsz(binsz_irf)
        shape, shape_irf = geom.shape, geom_irf.shape
        psf_energy = e_reco if reco_psf else e_true
        psf = PSFMap(
            np.zeros((psf_energy.nbin, rad.nbin) + shape_irf),
            psf_energy,
            rad,
            geom_irf,
            None if reco_psf else np.zeros((e_true.nbin,) + shape_irf),
        )
        edisp = EDispKernelMap(
            np.zeros((e_true.nbin, e_reco.nbin) + shape_irf),
            e_true,
            e_reco,
            geom_irf,
            np.zeros((e_true.nbin,) + shape_irf),
        )
        zeros = np.zeros((e_reco.nbin,) + shape)
        kwargs = {k: np.zeros_like(zeros) for k in cls._energy_vars}
        return cls(
            geom,
            e_reco,
            e_true,
            exposure=np.zeros((e_true.nbin,) + shape),
            mask_safe=np.zeros(zeros.shape, bool),
            psf=psf,
            edisp=edisp,
            name=name,
            **kwargs,
        )

    # -- FITS IO ----------------------------------------------------------------------
    @classmethod
    def from_hdulist(
        cls, hdulist: fits.HDUList, name: str | None = None, file: str | None = None
    ) -> MapDataset:
        """Dataset from the HDUs of a GADF-DL4 file (Gammapy's layout)."""
        primary = hdulist[0].header
        if name is None:
            name = str(primary.get("NAME", ""))
        meta: dict[str, Any] = {}
        skip = ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "NAME", "COMMENT", "HISTORY", "")
        for card in primary.cards:
            if card.keyword not in skip:
                meta[card.keyword] = card.value
        maps: dict[str, Any] = {}
        geom, e_reco, e_true = None, None, None
        for key in cls._hdu_vars + ("mask_safe", "mask_fit"):
            hdu = key.upper()
            if hdu not in hdulist:
                continue
            m = read_gadf_map(hdulist, hdu, file)
            if m.geom is None or len(m.axes) != 1:
                raise FormatError(
                    "map must be a WCS cube with one energy axis", file=file, field=hdu
                )
            axis = m.axes[0]
            if key == "exposure":
                e_true = axis if axis.name == "energy_true" else axis.renamed("energy_true")
                data = m.data
                if m.unit and u.Unit(m.unit) != u.Unit(EXPOSURE_UNIT):
                    data = u.Quantity(data, m.unit, dtype=float).to_value(EXPOSURE_UNIT)
                maps[key] = data
            else:
                if e_reco is None:
                    e_reco = axis
                elif not e_reco.equal(axis):
                    raise FormatError(
                        f"{hdu} energy axis differs from the counts'", file=file, field=hdu
                    )
                maps[key] = m.data.astype(bool) if key.startswith("mask") else m.data
            if geom is None:
                geom = m.geom
            elif m.geom != geom:
                raise FormatError(
                    f"{hdu} sky grid differs from the other maps'", file=file, field=hdu
                )
        if geom is None or e_reco is None:
            raise FormatError("no map with a reconstructed energy axis", file=file, field="COUNTS")
        psf = PSFMap.from_hdulist(hdulist, file) if "PSF" in hdulist else None
        edisp = EDispKernelMap.from_hdulist(hdulist, e_reco, file) if "EDISP" in hdulist else None
        gti = GTI.from_hdu(hdulist["GTI"], file=file) if "GTI" in hdulist else None
        meta_table = Table.read(hdulist["META_TABLE"]) if "META_TABLE" in hdulist else None
        if meta_table is not None and "OBS_ID" in meta_table.colnames:
            # one row per observation, or (a stacked Gammapy dataset) one row of OBS_ID vectors
            obs_ids = np.ravel(np.asarray(meta_table["OBS_ID"]))
            meta.setdefault("obs_ids", [int(v) for v in obs_ids])
        return cls(
            geom,
            e_reco,
            e_true,
            psf=psf,
            edisp=edisp,
            gti=gti,
            name=name,
            meta=meta,
            meta_table=meta_table,
            **maps,
        )

    @classmethod
    def read(
        cls, filename: str | Path, name: str | None = None, require: Sequence[str] = ()
    ) -> MapDataset:
        """Read a GADF-DL4 FITS file as written by Gammapy (``MapDataset.write``).

        Parameters
        ----------
        filename : str or Path
            The file (may be gzipped).
        name : str, optional
            Dataset name; the ``NAME`` card of the primary header by default.
        require : sequence of str
            Maps that must be present (e.g. ``("counts", "exposure")`` to fit).

        Raises
        ------
        FileReadError
            Missing, corrupt or truncated file.
        MissingHDUError
            A required map's HDU (or the BANDS HDU of a map) is absent.
        FormatError
            Inconsistent maps (axes, sky grids, shapes).

        Examples
        --------
        >>> MapDataset.read("stacked.fits", require=("counts", "exposure"))  # doctest: +SKIP
        """
        path = Path(filename)
        try:
            with open_dataset_fits(path) as hdulist:
                out = cls.from_hdulist(hdulist, name=name, file=str(path))
        except GdaskError as exc:
            raise exc.with_context(file=str(path)) from exc
        missing = [k for k in require if k not in out.ds]
        if missing:
            raise MissingHDUError(
                f"no HDU {missing[0].upper()!r}: a {', '.join(require)} map is needed",
                file=str(path),
                field=missing[0].upper(),
            )
        return out

    def to_hdulist(self) -> fits.HDUList:
        """HDUs in Gammapy's GADF-DL4 layout."""
        primary = fits.PrimaryHDU()
        primary.header["NAME"] = self.name
        for key, value in self.meta.items():
            if (
                isinstance(key, str)
                and len(key) <= 8
                and key.isupper()
                and not isinstance(value, list | dict)
            ):
                primary.header[key] = value
        hdus: list = [primary]
        geom, e_reco, e_true = self.geom, self.energy_axis, self.energy_axis_true
        for key in self._hdu_vars:
            if key in self.ds:
                axis = e_true if key == "exposure" else e_reco
                unit = self.ds[key].attrs.get("units", "")
                hdus += gadf_map_hdus(key.upper(), self.ds[key].values, [axis], geom, unit)
        if self.edisp is not None:
            hdus += self.edisp.to_hdus()
        if self.psf is not None:
            hdus += self.psf.to_hdus()
        for key in ("mask_safe", "mask_fit"):
            if key in self.ds:
                hdus += gadf_map_hdus(key.upper(), self.ds[key].values, [e_reco], geom, "")
        gti = self.gti
        if gti is not None:
            hdus.append(gti.to_hdu())
        table = self.meta_table
        if table is not None:
            hdus.append(fits.BinTableHDU(table, name="META_TABLE"))
        return fits.HDUList(hdus)

    def write(self, filename: str | Path, overwrite: bool = False) -> None:
        """Write a GADF-DL4 FITS file that Gammapy's ``MapDataset.read`` reads."""
        path = Path(filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.to_hdulist().writeto(path, overwrite=overwrite)


class MapDatasetOnOff(MapDataset):
    """A map dataset with OFF counts and acceptances (no background map).

    Takes the parameters of `MapDataset` plus ``counts_off``, ``acceptance``
    and ``acceptance_off`` (``(energy, lat, lon)``). The background estimate
    is ``alpha * counts_off`` with ``alpha = acceptance / acceptance_off``.
    """

    tag = "MapDatasetOnOff"
    _energy_vars = ("counts", "counts_off", "acceptance", "acceptance_off")
    _hdu_vars = ("counts", "exposure", "counts_off", "acceptance", "acceptance_off")

    counts_off = property(
        lambda self: self._get("counts_off"), doc="OFF counts ``(energy, lat, lon)``."
    )
    acceptance = property(lambda self: self._get("acceptance"), doc="ON acceptance.")
    acceptance_off = property(lambda self: self._get("acceptance_off"), doc="OFF acceptance.")

    @property
    def alpha(self) -> xr.DataArray | None:
        """``acceptance / acceptance_off`` (0 where ``acceptance_off`` is 0)."""
        if "acceptance" not in self.ds or "acceptance_off" not in self.ds:
            return None
        return self._alpha()

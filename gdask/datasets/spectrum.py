"""1D ON/OFF spectrum datasets and their OGIP IO (PHA, BKG, ARF, RMF).

`SpectrumDatasetOnOff` wraps one `xarray.Dataset`:

- ``counts(energy)``, ``counts_off(energy)``: ON and OFF counts;
- ``acceptance(energy)``, ``acceptance_off(energy)``: the ``BACKSCAL`` of the
  PHA and BKG files; ``alpha = acceptance / acceptance_off``;
- ``areascal(energy)``: the PHA ``AREASCAL`` (kept for round trips; like
  Gammapy, gdask does not apply it);
- ``mask_safe(energy)``: ``QUALITY == 0`` of the PHA file;
- ``effective_area(energy_true)``: the ARF, cm2; the property ``exposure`` is
  ``effective_area * livetime`` in cm2 s (stored this way so that files
  round-trip bit for bit);
- ``edisp(energy_true, energy)``: the RMF redistribution matrix;
- attrs ``name``, ``livetime`` (s, the PHA ``EXPOSURE``) and ``meta`` (JSON of
  the other PHA keywords: ``OBS_ID``, ``LO_THRES``, ``HI_THRES``, ...).

The PHA header names its companions (``ANCRFILE``, ``BACKFILE``,
``RESPFILE``), relative to the PHA file's folder. `write` produces
``pha_obs<name>.fits``, ``bkg_obs<name>.fits``, ``arf_obs<name>.fits`` and
``rmf_obs<name>.fits`` (the naming of Gammapy's OGIP reader and of the
joint-Crab spectra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.io import fits
from numpy.typing import ArrayLike, NDArray

from gdask.datasets._fits import open_dataset_fits
from gdask.datasets.axes import BandAxis
from gdask.datasets.base import DatasetBase
from gdask.dl3.gti import GTI
from gdask.errors import FormatError, GdaskError, MissingColumnError, MissingHDUError
from gdask.geometry.axes import EnergyAxis

__all__ = ["SpectrumDatasetOnOff"]

EXPOSURE_UNIT = "cm2 s"
#: ``meta`` key of the reco-energy edges in the read file's unit (``{"unit", "edges"}``)
FILE_EBOUNDS = "file_ebounds"
_PHA_OWN_KEYS = {
    "XTENSION",
    "BITPIX",
    "NAXIS",
    "NAXIS1",
    "NAXIS2",
    "PCOUNT",
    "GCOUNT",
    "TFIELDS",
    "EXTNAME",
    "EXPOSURE",
    "OBS_ID",
    "ANCRFILE",
    "BACKFILE",
    "RESPFILE",
    "HDUCLAS2",
    "DETCHANS",
    "COMMENT",
    "HISTORY",
    "",
}


def _open(path: Path) -> fits.HDUList:
    return open_dataset_fits(path)


def _hdu(hdulist: fits.HDUList, name: str, path: Path) -> fits.BinTableHDU:
    if name not in hdulist:
        raise MissingHDUError(f"no HDU {name!r}", file=str(path), field=name)
    return hdulist[name]


def _energy_edges(table: fits.FITS_rec, lo: str, hi: str, path: Path) -> NDArray[np.float64]:
    """Edges in TeV from two columns of a table."""
    for col in (lo, hi):
        if col not in table.columns.names:
            raise MissingColumnError(f"no column {col!r}", file=str(path), field=col)
    unit = table.columns[lo].unit or "keV"
    edges = np.append(np.asarray(table[lo], float), float(table[hi][-1]))
    return u.Quantity(edges, unit).to_value("TeV")


def _file_edges(table: fits.FITS_rec, lo: str, hi: str) -> dict[str, Any]:
    """The edges as the file stores them: ``{"unit", "edges"}`` (no conversion)."""
    unit = table.columns[lo].unit or "keV"
    edges = np.append(np.asarray(table[lo], float), float(table[hi][-1]))
    return {"unit": str(unit), "edges": edges.tolist()}


def _column_or_key(hdu: fits.BinTableHDU, name: str, n: int, default: float) -> NDArray[np.float64]:
    """Per-channel column, or its keyword broadcast (OGIP allows both)."""
    if name in hdu.columns.names:
        return np.asarray(hdu.data[name], dtype=float)
    return np.full(n, float(hdu.header.get(name, default)))


def _check_channels(value: Any, n: int, what: str, path: Path, field: str) -> None:
    """A channel count (DETCHANS keyword, number of rows) must be ``n`` when given."""
    if value is None:
        return
    try:
        ok = int(value) == n
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise FormatError(
            f"{field.split('.')[-1]} is {value!r} but the {what} give {n} channels",
            file=str(path),
            field=field,
        )


def _read_pha(path: Path) -> dict[str, Any]:
    with _open(path) as hdulist:
        if "SPECTRUM" not in hdulist and "COUNTS" in hdulist:
            raise MissingHDUError(
                "no HDU 'SPECTRUM': this is Gammapy's GADF-DL4 spectrum layout (the default of "
                "SpectrumDatasetOnOff.write); gdask reads OGIP spectra: write it with "
                "format='ogip'",
                file=str(path),
                field="SPECTRUM",
            )
        hdu = _hdu(hdulist, "SPECTRUM", path)
        n = len(hdu.data)
        if "COUNTS" not in hdu.columns.names:
            raise MissingColumnError("no column 'COUNTS'", file=str(path), field="SPECTRUM.COUNTS")
        _check_channels(hdu.header.get("DETCHANS"), n, "SPECTRUM rows", path, "SPECTRUM.DETCHANS")
        _check_channels(
            len(_hdu(hdulist, "EBOUNDS", path).data), n, "SPECTRUM rows", path, "EBOUNDS"
        )
        counts = np.asarray(hdu.data["COUNTS"])
        out = {
            "counts": counts.astype(counts.dtype.newbyteorder("=")),
            "backscal": _column_or_key(hdu, "BACKSCAL", n, 1.0),
            "areascal": _column_or_key(hdu, "AREASCAL", n, 1.0),
            "quality": _column_or_key(hdu, "QUALITY", n, 0.0).astype(int),
            "header": hdu.header,
            "edges": _energy_edges(_hdu(hdulist, "EBOUNDS", path).data, "E_MIN", "E_MAX", path),
            "ebounds": _file_edges(_hdu(hdulist, "EBOUNDS", path).data, "E_MIN", "E_MAX"),
            "gti": GTI.from_hdu(hdulist["GTI"], file=str(path)) if "GTI" in hdulist else None,
        }
    return out


def _read_rmf(path: Path) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(matrix (energy_true, energy), true-energy edges, reco-energy edges) in TeV."""
    with _open(path) as hdulist:
        hdu = (
            _hdu(hdulist, "MATRIX", path)
            if "MATRIX" in hdulist
            else _hdu(hdulist, "SPECRESP MATRIX", path)
        )
        data, header = hdu.data, hdu.header
        for col in ("N_GRP", "F_CHAN", "N_CHAN", "MATRIX"):
            if col not in hdu.columns.names:
                raise MissingColumnError(
                    f"no column {col!r}", file=str(path), field=f"MATRIX.{col}"
                )
        e_true = _energy_edges(data, "ENERG_LO", "ENERG_HI", path)
        e_reco = _energy_edges(_hdu(hdulist, "EBOUNDS", path).data, "E_MIN", "E_MAX", path)
        if "DETCHANS" not in header:
            raise FormatError("no DETCHANS keyword", file=str(path), field="MATRIX.DETCHANS")
        nchan = e_reco.size - 1
        _check_channels(header["DETCHANS"], nchan, "EBOUNDS rows", path, "MATRIX.DETCHANS")
        # F_CHAN counts from the column's TLMIN (OGIP; 0 when absent, as Gammapy writes)
        first = header.get(f"TLMIN{hdu.columns.names.index('F_CHAN') + 1}", 0)
        matrix = np.zeros((len(data), nchan), dtype=np.float64)
        # whole columns once: a FITS_rec row lookup decodes the field every time
        columns = [data[c] for c in ("N_GRP", "F_CHAN", "N_CHAN", "MATRIX")]
        for i, row in enumerate(zip(*columns, strict=True)):
            _fill_rmf_row(matrix[i], row, i, path, int(first))
    return matrix, e_true, e_reco


def _fill_rmf_row(out: NDArray[np.float64], row: Any, i: int, path: Path, first: int = 0) -> None:
    """Ungroup one RMF row ``(N_GRP, F_CHAN, N_CHAN, MATRIX)``: N_GRP groups of N_CHAN
    values from channel F_CHAN - ``first``."""
    ngrp = int(row[0])
    f_chan, n_chan = np.atleast_1d(row[1]), np.atleast_1d(row[2])
    values, start = np.atleast_1d(row[3]), 0
    if ngrp > min(f_chan.size, n_chan.size):
        raise FormatError(
            f"row {i}: N_GRP {ngrp} but {min(f_chan.size, n_chan.size)} F_CHAN/N_CHAN entries",
            file=str(path),
            field="MATRIX.N_GRP",
        )
    for k in range(ngrp):
        lo, n = int(f_chan[k]) - first, int(n_chan[k])
        if lo < 0 or n < 0 or lo + n > out.size:
            raise FormatError(
                f"row {i}: F_CHAN {lo + first} + N_CHAN {n} outside the {out.size} channels "
                f"numbered from {first} (DETCHANS, TLMIN of F_CHAN)",
                file=str(path),
                field="MATRIX.F_CHAN",
            )
        if start + n > values.size:
            raise FormatError(
                f"row {i}: N_CHAN add up to more than the {values.size} MATRIX values",
                file=str(path),
                field="MATRIX.N_CHAN",
            )
        out[lo : lo + n] = values[start : start + n]
        start += n


def _rmf_columns(matrix: NDArray) -> tuple[list, list, list, list]:
    """OGIP grouping of each row: N_GRP, F_CHAN (0-based), N_CHAN, MATRIX."""
    n_grp, f_chan, n_chan, values = [], [], [], []
    for row in matrix:
        pos = np.nonzero(row)[0]
        groups = np.split(pos, np.nonzero(np.diff(pos) != 1)[0] + 1) if pos.size else []
        n_grp.append(max(len(groups), 1))
        f_chan.append(np.array([g[0] for g in groups] or [0], dtype=np.int16))
        n_chan.append(np.array([g.size for g in groups] or [0], dtype=np.int16))
        values.append(row[pos].astype(np.float32))
    return n_grp, f_chan, n_chan, values


class SpectrumDatasetOnOff(DatasetBase):
    """ON/OFF spectrum dataset.

    Parameters
    ----------
    energy_axis : EnergyAxis
        Reconstructed energy axis (``energy``).
    energy_axis_true : EnergyAxis
        True energy axis (``energy_true``) of exposure and edisp.
    counts, counts_off : array_like
        ON and OFF counts per reconstructed-energy bin.
    acceptance, acceptance_off : array_like
        ON and OFF acceptance (OGIP ``BACKSCAL``).
    exposure : array_like, optional
        Effective area times livetime per true-energy bin, cm2 s (needs
        ``livetime > 0``); or give ``effective_area``.
    edisp : array_like, optional
        Redistribution matrix ``(energy_true, energy)``.
    mask_safe : array_like of bool, optional
        Safe energy bins (all True by default).
    livetime : float
        Livetime in s.
    name : str
        Dataset name (the OBS_ID for OGIP files).
    areascal : array_like, optional
        OGIP ``AREASCAL`` (kept, not applied).
    gti : GTI, optional
    meta : dict, optional
        Other metadata (JSON-serialisable).
    effective_area : array_like, optional
        ARF effective area per true-energy bin, cm2.
    background : array_like, optional
        Known background counts per reconstructed-energy bin (a dataset
        without OFF counts, Gammapy's ``SpectrumDataset``; fitted with cash).
    """

    tag = "SpectrumDatasetOnOff"

    def __init__(
        self,
        energy_axis: EnergyAxis | BandAxis,
        energy_axis_true: EnergyAxis | BandAxis,
        *,
        counts: ArrayLike,
        counts_off: ArrayLike | None = None,
        acceptance: ArrayLike | None = None,
        acceptance_off: ArrayLike | None = None,
        exposure: ArrayLike | None = None,
        edisp: ArrayLike | None = None,
        mask_safe: ArrayLike | None = None,
        livetime: float = 0.0,
        name: str = "",
        areascal: ArrayLike | None = None,
        gti: GTI | None = None,
        meta: dict | None = None,
        effective_area: ArrayLike | None = None,
        background: ArrayLike | None = None,
    ) -> None:
        if effective_area is None and exposure is not None:
            if livetime <= 0:
                raise ValueError("exposure needs livetime > 0 (or give effective_area)")
            effective_area = np.asarray(exposure, dtype=float) / livetime
        er, et = BandAxis.wrap(energy_axis), BandAxis.wrap(energy_axis_true)
        n, nt = er.nbin, et.nbin
        coords = {**er.to_coords("energy"), **et.to_coords("energy_true")}
        ones = np.ones(n)
        data_vars: dict[str, Any] = {}

        def put(
            key: str, arr: ArrayLike | None, dims: tuple[str, ...], shape: tuple, units: str = ""
        ) -> None:
            if arr is None:
                return
            a = self._check(key, np.asarray(arr), shape)
            data_vars[key] = (dims, a, {"units": units} if key != "mask_safe" else {})

        put("counts", counts, ("energy",), (n,))
        put("counts_off", counts_off, ("energy",), (n,))
        put("acceptance", ones if acceptance is None else acceptance, ("energy",), (n,))
        if counts_off is not None:
            put(
                "acceptance_off",
                ones if acceptance_off is None else acceptance_off,
                ("energy",),
                (n,),
            )
        put("areascal", areascal, ("energy",), (n,))
        put("background", background, ("energy",), (n,))
        put(
            "mask_safe",
            np.asarray(ones if mask_safe is None else mask_safe, dtype=bool),
            ("energy",),
            (n,),
        )
        put("effective_area", effective_area, ("energy_true",), (nt,), "cm2")
        put("edisp", edisp, ("energy_true", "energy"), (nt, n))
        ds = xr.Dataset(data_vars, coords=coords)
        self._put_gti(ds, gti)
        self._put_attrs(ds, name, meta, livetime=float(livetime))
        self.ds = ds

    # -- wrapping ------------------------------------------------------------
    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> SpectrumDatasetOnOff:
        """Wrap a dataset made by `to_dataset` (possibly lazy)."""
        if ds.attrs.get("dataset_type") != cls.tag:
            raise FormatError(f"not a {cls.tag} dataset", field="dataset_type")
        return cls._wrap(ds)

    # -- content ---------------------------------------------------------------
    livetime = property(
        lambda self: float(self.ds.attrs.get("livetime", 0.0)), doc="Livetime in s."
    )
    counts = property(lambda self: self._get("counts"), doc="ON counts ``(energy)``.")
    counts_off = property(lambda self: self._get("counts_off"), doc="OFF counts ``(energy)``.")
    acceptance = property(lambda self: self._get("acceptance"), doc="ON acceptance ``(energy)``.")
    acceptance_off = property(
        lambda self: self._get("acceptance_off"), doc="OFF acceptance ``(energy)``."
    )
    edisp = property(
        lambda self: self._get("edisp"), doc="Redistribution matrix ``(energy_true, energy)``."
    )
    mask_safe = property(lambda self: self._get("mask_safe"), doc="Safe mask ``(energy)``.")

    @property
    def exposure(self) -> xr.DataArray | None:
        """Exposure ``effective_area * livetime`` ``(energy_true)``, cm2 s."""
        if "effective_area" not in self.ds:
            return None
        out = self.ds["effective_area"] * self.livetime
        out.attrs["units"] = EXPOSURE_UNIT
        return out.rename("exposure")

    @property
    def alpha(self) -> xr.DataArray:
        """``acceptance / acceptance_off`` (0 where ``acceptance_off`` is 0)."""
        return self._alpha()

    @property
    def energy_axis(self) -> BandAxis:
        """Reconstructed energy axis (the same type as `MapDataset.energy_axis`)."""
        return BandAxis.from_dataset(self.ds, "energy")

    @property
    def energy_axis_true(self) -> BandAxis:
        """True energy axis."""
        return BandAxis.from_dataset(self.ds, "energy_true")

    def energy_edges_as_read(self) -> tuple[NDArray[np.float64], str]:
        """Reco-energy edges and unit as the OGIP file stored them (else the TeV edges).

        Gammapy selects fit-range bins on the file's own numbers (keV for most
        OGIP spectra); the TeV edges differ from them in the last digit.

        Examples
        --------
        >>> edges, unit = dataset.energy_edges_as_read()  # doctest: +SKIP
        """
        tev = self.energy_axis.quantity_edges.to_value("TeV")
        stored = self.meta.get(FILE_EBOUNDS)
        if isinstance(stored, dict) and len(stored.get("edges", ())) == tev.size:
            edges = np.asarray(stored["edges"], dtype=float)
            unit = str(stored.get("unit", "keV"))
            if np.allclose(u.Quantity(edges, unit).to_value("TeV"), tev, rtol=1e-9, atol=0):
                return edges, unit
        return tev, "TeV"

    def __repr__(self) -> str:
        return (
            f"SpectrumDatasetOnOff(name={self.name!r}, nbin={self.ds.sizes['energy']}, "
            f"nbin_true={self.ds.sizes['energy_true']}, livetime={self.livetime:.6g} s)"
        )

    # -- OGIP IO ---------------------------------------------------------------------
    @classmethod
    def read(cls, filename: str | Path, name: str | None = None) -> SpectrumDatasetOnOff:
        """Read an OGIP PHA file and the BKG, ARF and RMF files it names.

        Parameters
        ----------
        filename : str or Path
            The PHA file; ``ANCRFILE`` (required), ``BACKFILE`` and ``RESPFILE``
            are looked up as given, then relative to its folder.
        name : str, optional
            Dataset name; the PHA ``OBS_ID`` by default.
        """
        path = Path(filename)
        try:
            return cls._read(path, name)
        except GdaskError as exc:
            raise exc.with_context(file=str(path)) from exc

    @classmethod
    def _read(cls, path: Path, name: str | None) -> SpectrumDatasetOnOff:
        pha = _read_pha(path)
        header = pha["header"]

        def companion(key: str, required: bool) -> Path | None:
            value = str(header.get(key, "")).strip()
            if not value or value.upper() == "NONE":
                if required:
                    raise FormatError(f"PHA header has no {key}", file=str(path), field=key)
                return None
            p = Path(value)
            return p if p.exists() else path.parent / p

        livetime = float(header.get("EXPOSURE", 0.0))
        e_reco = EnergyAxis(pha["edges"], name="energy")
        arf_path = companion("ANCRFILE", True)
        with _open(arf_path) as hdulist:  # type: ignore[arg-type]
            arf = _hdu(hdulist, "SPECRESP", arf_path).data  # type: ignore[arg-type]
            e_true_edges = _energy_edges(arf, "ENERG_LO", "ENERG_HI", arf_path)  # type: ignore[arg-type]
            if "SPECRESP" not in arf.columns.names:
                raise MissingColumnError(
                    "no column 'SPECRESP'", file=str(arf_path), field="SPECRESP.SPECRESP"
                )
            aeff_unit = arf.columns["SPECRESP"].unit or "cm2"
            aeff = u.Quantity(np.asarray(arf["SPECRESP"], float), aeff_unit).to_value("cm2")
        e_true = EnergyAxis(e_true_edges, name="energy_true")
        kwargs: dict[str, Any] = {}
        bkg_path = companion("BACKFILE", False)
        if bkg_path is not None:
            bkg = _read_pha(bkg_path)
            if bkg["edges"].shape != pha["edges"].shape or not np.allclose(
                bkg["edges"], pha["edges"], rtol=1e-6
            ):
                raise FormatError(
                    "BKG energy bounds differ from the PHA's", file=str(bkg_path), field="EBOUNDS"
                )
            kwargs["counts_off"] = bkg["counts"]
            kwargs["acceptance_off"] = bkg["backscal"]
        rmf_path = companion("RESPFILE", False)
        if rmf_path is not None:
            matrix, rmf_true, rmf_reco = _read_rmf(rmf_path)
            ok = matrix.shape == (e_true.nbin, e_reco.nbin)
            if (
                not ok
                or not np.allclose(rmf_true, e_true_edges, rtol=1e-5)
                or not np.allclose(rmf_reco, pha["edges"], rtol=1e-5)
            ):
                raise FormatError(
                    "RMF axes differ from the ARF/PHA axes", file=str(rmf_path), field="MATRIX"
                )
            kwargs["edisp"] = matrix
        meta = {
            c.keyword: c.value
            for c in header.cards
            if c.keyword not in _PHA_OWN_KEYS
            and not c.keyword.startswith(("TTYPE", "TFORM", "TUNIT"))
        }
        obs_ids = [c.value for c in header.cards if c.keyword == "OBS_ID"]
        if len(obs_ids) > 1:  # a stacked spectrum lists every run
            meta["obs_ids"] = obs_ids
        # the reco edges in the file's own unit: the fit range selects bins on them as Gammapy
        meta[FILE_EBOUNDS] = pha["ebounds"]
        if name is None:
            stem = path.stem.removeprefix("pha_").removeprefix("obs")
            name = str(obs_ids[0]) if len(obs_ids) == 1 else stem
        return cls(
            e_reco,
            e_true,
            counts=pha["counts"],
            acceptance=pha["backscal"],
            areascal=pha["areascal"],
            mask_safe=pha["quality"] == 0,
            effective_area=aeff,
            livetime=livetime,
            name=name,
            gti=pha["gti"],
            meta=meta,
            **kwargs,
        )

    @staticmethod
    def filenames(name: str) -> dict[str, str]:
        """OGIP file names written for dataset ``name``."""
        return {k: f"{k}_obs{name}.fits" for k in ("pha", "bkg", "arf", "rmf")}

    def _ebounds_hdu(self) -> fits.BinTableHDU:
        edges, unit = self.energy_edges_as_read()  # a read file's numbers are written back
        cols = [
            fits.Column("CHANNEL", "I", array=np.arange(edges.size - 1, dtype=np.int16)),
            fits.Column("E_MIN", "D", unit=unit, array=edges[:-1]),
            fits.Column("E_MAX", "D", unit=unit, array=edges[1:]),
        ]
        hdu = fits.BinTableHDU.from_columns(cols, name="EBOUNDS")
        for key, value in (
            ("TELESCOP", "DUMMY"),
            ("INSTRUME", "DUMMY"),
            ("FILTER", "None"),
            ("CHANTYPE", "PHA"),
            ("DETCHANS", edges.size - 1),
            ("HDUCLASS", "OGIP"),
            ("HDUCLAS1", "RESPONSE"),
            ("HDUCLAS2", "EBOUNDS"),
            ("HDUVERS", "1.2.0"),
        ):
            hdu.header[key] = value
        return hdu

    def _spectrum_hdulist(self, bkg: bool, files: dict[str, str]) -> fits.HDUList:
        n = self.ds.sizes["energy"]
        counts = self.ds["counts_off" if bkg else "counts"].values
        backscal = self.ds["acceptance_off" if bkg else "acceptance"].values
        areascal = self.ds["areascal"].values if "areascal" in self.ds else np.ones(n)
        quality = (~self.ds["mask_safe"].values).astype(np.int16)
        cfmt = "J" if np.issubdtype(counts.dtype, np.integer) else "D"
        cols = [
            fits.Column("CHANNEL", "I", array=np.arange(n, dtype=np.int16)),
            fits.Column("COUNTS", cfmt, array=counts),
            fits.Column("QUALITY", "I", array=quality),
            fits.Column("BACKSCAL", "D", array=np.asarray(backscal, float)),
            fits.Column("AREASCAL", "D", array=np.asarray(areascal, float)),
        ]
        hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
        h = hdu.header
        for key, value in self.meta.items():
            if len(key) <= 8 and key not in h and not isinstance(value, list | dict):
                h[key] = value
        defaults = {
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "SPECTRUM",
            "HDUCLAS3": "COUNT",
            "HDUCLAS4": "TYPE:1",
            "CHANTYPE": "PHA",
            "POISSERR": True,
        }
        for key, value in defaults.items():
            h.setdefault(key, value)
        name = self.name
        obs_ids = self.meta.get("obs_ids") or [int(name) if name.isdigit() else name]
        h["OBS_ID"] = obs_ids[0]
        for obs_id in obs_ids[1:]:
            h.append(("OBS_ID", obs_id))
        h["DETCHANS"] = n
        h["EXPOSURE"] = self.livetime
        h["HDUCLAS2"] = "BKG" if bkg else "TOTAL"
        if not bkg:
            h["ANCRFILE"] = files["arf"]
            if "counts_off" in self.ds:
                h["BACKFILE"] = files["bkg"]
            if "edisp" in self.ds:
                h["RESPFILE"] = files["rmf"]
        hdus = [fits.PrimaryHDU(), hdu, self._ebounds_hdu()]
        gti = self.gti
        if gti is not None and not bkg:
            hdus.append(gti.to_hdu())
        return fits.HDUList(hdus)

    def _arf_hdulist(self) -> fits.HDUList:
        edges = self.energy_axis_true.edges
        aeff = self.ds["effective_area"].values
        cols = [
            fits.Column("ENERG_LO", "D", unit="TeV", array=edges[:-1]),
            fits.Column("ENERG_HI", "D", unit="TeV", array=edges[1:]),
            fits.Column("SPECRESP", "D", unit="cm2", array=aeff),
        ]
        hdu = fits.BinTableHDU.from_columns(cols, name="SPECRESP")
        for key, value in (
            ("HDUCLASS", "OGIP"),
            ("HDUCLAS1", "RESPONSE"),
            ("HDUCLAS2", "SPECRESP"),
        ):
            hdu.header[key] = value
        return fits.HDUList([fits.PrimaryHDU(), hdu])

    def _rmf_hdulist(self) -> fits.HDUList:
        edges = self.energy_axis_true.edges
        matrix = np.asarray(self.ds["edisp"].transpose("energy_true", "energy").values)
        n_grp, f_chan, n_chan, values = _rmf_columns(matrix)
        cols = [
            fits.Column("ENERG_LO", "E", unit="TeV", array=edges[:-1]),
            fits.Column("ENERG_HI", "E", unit="TeV", array=edges[1:]),
            fits.Column("N_GRP", "I", array=np.asarray(n_grp, dtype=np.int16)),
            fits.Column("F_CHAN", "PI()", array=np.array(f_chan, dtype=object)),
            fits.Column("N_CHAN", "PI()", array=np.array(n_chan, dtype=object)),
            fits.Column("MATRIX", "PE()", array=np.array(values, dtype=object)),
        ]
        hdu = fits.BinTableHDU.from_columns(cols, name="MATRIX")
        for key, value in (
            ("CHANTYPE", "PHA"),
            ("HDUCLASS", "OGIP"),
            ("HDUCLAS1", "RESPONSE"),
            ("HDUCLAS2", "RSP_MATRIX"),
            ("DETCHANS", matrix.shape[1]),
            ("NUMGRP", int(np.sum(n_grp))),
            ("NUMELT", int(sum(v.size for v in values))),
            ("TLMIN4", 0),
        ):
            hdu.header[key] = value
        return fits.HDUList([fits.PrimaryHDU(), hdu, self._ebounds_hdu()])

    def write(self, outdir: str | Path, overwrite: bool = False) -> Path:
        """Write ``pha_obs<name>.fits`` (+ bkg, arf, rmf) into ``outdir``; return the PHA path.

        The RMF matrix is stored as float32, as Gammapy writes it.
        """
        if "effective_area" not in self.ds:
            raise FormatError("OGIP output needs an effective area (ARF)", field="effective_area")
        if "background" in self.ds:
            raise FormatError(
                "OGIP files cannot hold a known background (no OFF counts); "
                "write the dataset to a DatasetStore instead",
                field="background",
            )
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        files = self.filenames(self.name)
        self._spectrum_hdulist(False, files).writeto(outdir / files["pha"], overwrite=overwrite)
        if "counts_off" in self.ds:
            self._spectrum_hdulist(True, files).writeto(outdir / files["bkg"], overwrite=overwrite)
        self._arf_hdulist().writeto(outdir / files["arf"], overwrite=overwrite)
        if "edisp" in self.ds:
            self._rmf_hdulist().writeto(outdir / files["rmf"], overwrite=overwrite)
        return outdir / files["pha"]

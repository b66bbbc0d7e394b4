"""The part shared by the DL4 dataset classes: one `xarray.Dataset` held in ``ds``.

`DatasetBase` gives wrapping (`to_dataset`, `_wrap`), data-variable access,
the ``name`` and ``meta`` attrs, the GTI stored as ``gti_START``/``gti_STOP``
(attrs ``gti_attrs``) and the ON/OFF ``alpha``. Subclasses set ``tag`` and may
set ``_json_default`` (how non-JSON values of ``meta`` and ``gti_attrs`` are
written; `str` by default).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from gdask.dl3.gti import GTI
from gdask.errors import FormatError

__all__ = ["DatasetBase"]


class DatasetBase:
    """Base of `MapDataset` and `SpectrumDatasetOnOff` (not used on its own)."""

    tag: ClassVar[str] = ""
    ds: xr.Dataset
    _json_default = staticmethod(str)

    # -- building --------------------------------------------------------------
    @staticmethod
    def _check(key: str, arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if arr.shape != shape:
            raise FormatError(f"{key} has shape {arr.shape}, expected {shape}", field=key)
        return arr

    def _dumps(self, value: Any) -> str:
        return json.dumps(value, default=self._json_default)

    def _put_gti(self, ds: xr.Dataset, gti: GTI | None) -> None:
        """Store ``gti`` in ``ds`` as ``gti_START``/``gti_STOP`` and attrs ``gti_attrs``."""
        if gti is None:
            return
        g = gti.to_dataset()
        for var in ("START", "STOP"):
            ds[f"gti_{var}"] = g[var]
        ds.attrs["gti_attrs"] = self._dumps(dict(g.attrs))

    def _put_attrs(self, ds: xr.Dataset, name: str, meta: dict | None, **extra: Any) -> None:
        """Attrs ``name``, ``dataset_type``, ``extra`` and ``meta`` (JSON), in this order."""
        ds.attrs.update(
            name=str(name), dataset_type=self.tag, **extra, meta=self._dumps(meta or {})
        )

    # -- wrapping --------------------------------------------------------------
    @classmethod
    def _wrap(cls, ds: xr.Dataset) -> Any:
        obj = cls.__new__(cls)
        obj.ds = ds
        return obj

    def to_dataset(self) -> xr.Dataset:
        """The underlying `xarray.Dataset` (not a copy)."""
        return self.ds

    # -- content ---------------------------------------------------------------
    def _get(self, key: str) -> xr.DataArray | None:
        return self.ds[key] if key in self.ds else None

    @property
    def name(self) -> str:
        """Dataset name."""
        return str(self.ds.attrs.get("name", ""))

    @property
    def meta(self) -> dict:
        """Metadata dict (livetime, obs ids, header keywords...)."""
        return json.loads(self.ds.attrs.get("meta", "{}"))

    @property
    def gti(self) -> GTI | None:
        """Good time intervals, if any."""
        if "gti_START" not in self.ds:
            return None
        g = xr.Dataset({"START": self.ds["gti_START"], "STOP": self.ds["gti_STOP"]})
        g.attrs.update(json.loads(self.ds.attrs.get("gti_attrs", "{}")))
        return GTI(g)

    def _alpha(self) -> xr.DataArray:
        """``acceptance / acceptance_off`` (0 where ``acceptance_off`` is 0)."""
        off = self.ds["acceptance_off"]
        return xr.where(off > 0, self.ds["acceptance"] / off.where(off > 0, 1), 0.0)

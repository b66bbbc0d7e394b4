"""Sky maps of an estimator: a set of named ``(n_energy, ny, nx)`` maps on one grid.

Written as one FITS file with a map HDU (and its ``_BANDS`` table) per
quantity, as Gammapy writes maps: ``gammapy.maps.Map.read(path, hdu="SQRT_TS")``
reads each of them.  `EstimatorMaps.plot` draws one energy plane with sky
axes (astropy WCSAxes) to a PNG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from gdask.datasets._fits import gadf_map_hdus, open_dataset_fits, read_gadf_map
from gdask.datasets.axes import BandAxis, make_axis
from gdask.errors import FormatError
from gdask.geometry.wcs import WcsGeom

__all__ = ["EstimatorMaps"]


@dataclass
class EstimatorMaps:
    """Named maps ``(n_energy, ny, nx)`` on ``geom`` with reco-energy group edges (TeV).

    Examples
    --------
    >>> import numpy as np
    >>> geom = WcsGeom.create(skydir=(83.6, 22.0), binsz=0.1, npix=5)
    >>> m = EstimatorMaps(geom, np.array([1.0, 10.0]), {"ts": np.zeros((1, 5, 5))})
    >>> m["ts"].shape
    (1, 5, 5)
    """

    geom: WcsGeom
    energy_edges: NDArray[np.float64]
    maps: dict[str, NDArray[np.float64]]
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> NDArray[np.float64]:
        return self.maps[name]

    def __contains__(self, name: str) -> bool:
        return name in self.maps

    @property
    def names(self) -> list[str]:
        """Quantities held."""
        return list(self.maps)

    def _axis(self) -> BandAxis:
        return BandAxis(make_axis(self.energy_edges, "energy", "log", "TeV"))

    def write(self, path: str | Path, overwrite: bool = False) -> None:
        """Write all maps to one FITS file (HDU names: the quantities, upper case)."""
        hdus: list[Any] = [fits.PrimaryHDU()]
        for name, data in self.maps.items():
            hdus += gadf_map_hdus(name.upper(), np.asarray(data, float), [self._axis()], self.geom)
        fits.HDUList(hdus).writeto(path, overwrite=overwrite)

    @classmethod
    def read(cls, path: str | Path) -> EstimatorMaps:
        """Read a file written by `write`."""
        maps: dict[str, NDArray[np.float64]] = {}
        geom = None
        edges = None
        with open_dataset_fits(path) as hdul:
            for hdu in hdul[1:]:
                if hdu.name.endswith("_BANDS") or hdu.data is None:
                    continue
                gm = read_gadf_map(hdul, hdu.name, file=str(path))
                maps[hdu.name.lower()] = np.asarray(gm.data, float)
                geom = gm.geom
                edges = np.asarray(gm.axes[0].axis.edges, float)
        if geom is None or edges is None:
            raise FormatError("no map HDU in the file", file=str(path))
        return cls(geom=geom, energy_edges=edges, maps=maps)

    def plot(self, path: str | Path, name: str = "sqrt_ts", energy_index: int = 0) -> None:
        """PNG of one map plane with sky axes (WCSAxes) and a colour bar."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1, projection=self.geom.wcs)
        im = ax.imshow(self.maps[name][energy_index], origin="lower", cmap="viridis")
        ax.set_xlabel("RA" if self.geom.frame == "icrs" else "GLON")
        ax.set_ylabel("Dec" if self.geom.frame == "icrs" else "GLAT")
        e0, e1 = self.energy_edges[energy_index], self.energy_edges[energy_index + 1]
        ax.set_title(f"{name}  {e0:.3g}-{e1:.3g} TeV")
        fig.colorbar(im, ax=ax)
        fig.savefig(path, dpi=80)

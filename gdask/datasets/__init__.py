"""DL4 datasets: map and spectrum datasets, their FITS (GADF-DL4, OGIP) IO and a zarr store."""

from gdask.datasets.axes import BandAxis
from gdask.datasets.irf_maps import EDispKernelMap, PSFMap, migra_to_kernel
from gdask.datasets.map import MapDataset, MapDatasetOnOff
from gdask.datasets.spectrum import SpectrumDatasetOnOff
from gdask.datasets.store import DatasetStore

__all__ = [
    "BandAxis",
    "EDispKernelMap",
    "PSFMap",
    "migra_to_kernel",
    "MapDataset",
    "MapDatasetOnOff",
    "SpectrumDatasetOnOff",
    "DatasetStore",
]

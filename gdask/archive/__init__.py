"""The zarr archive store: incremental, crash-safe ingest of DL3 archives and lazy reads."""

from gdask.archive.ingest import IngestReport, IngestSummary, ingest, plan_ingest
from gdask.archive.store import ArchiveStore, ObservationRecord

__all__ = [
    "ArchiveStore",
    "ObservationRecord",
    "IngestReport",
    "IngestSummary",
    "ingest",
    "plan_ingest",
]

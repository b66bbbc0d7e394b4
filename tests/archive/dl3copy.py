"""Helpers: small writable copies of real DL3 archives, and store digests."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
from astropy.table import Table

CRAB_RUNS = [23523, 23526, 23559, 23592]


def copy_archive(src: Path, dst: Path, obs_ids: list[int] | None = None) -> Path:
    """Copy a GADF archive (index files + the data files of ``obs_ids``) to ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    hdu = Table.read(next(src.glob("hdu-index.fits*")))
    obs = Table.read(next(src.glob("obs-index.fits*")))
    if obs_ids is not None:
        hdu = hdu[np.isin(hdu["OBS_ID"], obs_ids)]
        obs = obs[np.isin(obs["OBS_ID"], obs_ids)]
    for row in hdu:
        rel = Path(str(row["FILE_DIR"]).strip()) / str(row["FILE_NAME"]).strip()
        if str(row["FILE_DIR"]).strip() in ("--", ""):
            rel = Path(str(row["FILE_NAME"]).strip())
        target = dst / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, target)
    hdu.write(dst / "hdu-index.fits.gz", overwrite=True)
    obs.write(dst / "obs-index.fits.gz", overwrite=True)
    return dst


def tree_digest(path: Path) -> dict[str, str]:
    """SHA-256 of every file below ``path`` (relative names), lock file excluded."""
    out = {}
    for p in sorted(path.rglob("*")):
        if p.is_file() and p.name != ".ingest.lock":
            out[str(p.relative_to(path))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out

"""The staged-write protocol of gdask's stores: write aside, then rename into place.

A store folder has ``_staging/`` (writes in progress, invisible to readers) and
``_trash/`` (replaced or removed entries awaiting deletion). An entry is
written completely under ``_staging/<name>-<uuid>`` and made visible with one
directory rename; an older entry is first renamed into ``_trash/``, so a
reader sees the old entry, briefly none, or the new one, never half of one. A
killed writer leaves at most junk under ``_staging/`` and ``_trash/``, which
`StagedWrites.clean` removes (the caller holds the store's write lock).

Used by the archive store (`gdask.archive.store`) and the dataset store
(`gdask.datasets.store`).

Examples
--------
>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> writes = StagedWrites(root)
>>> staging = writes.new("obs")
>>> _ = (staging / "data.txt").write_text("x")
>>> writes.swap_in(staging, root / "obs", "obs")
>>> (root / "obs" / "data.txt").read_text()
'x'
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

__all__ = ["STAGING", "TRASH", "StagedWrites"]

STAGING = "_staging"
TRASH = "_trash"


class StagedWrites:
    """Staging, swap-in and removal by renames under one store folder ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _unique(self, sub: str, name: str) -> Path:
        return self.root / sub / f"{name}-{uuid.uuid4().hex}"

    def path(self, name: str) -> Path:
        """A fresh, unique path under ``_staging/`` for one write (not created)."""
        return self._unique(STAGING, name)

    def new(self, name: str) -> Path:
        """A fresh, unique folder under ``_staging/`` for one write (created)."""
        path = self.path(name)
        path.mkdir(parents=True)
        return path

    def swap_in(self, staging: Path, target: Path, name: str) -> None:
        """Move ``staging`` to ``target`` by renames, an older ``target`` via ``_trash/``."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            trash = self._unique(TRASH, name)
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(target, trash)
            os.rename(staging, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(staging, target)

    def remove(self, target: Path, name: str) -> None:
        """Remove ``target`` if present: invisible at once (renamed to ``_trash/``), then deleted."""
        if target.exists():
            trash = self._unique(TRASH, name)
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(target, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def clean(self) -> int:
        """Remove the leftovers of interrupted writes; return how many were removed."""
        n = 0
        for sub in (STAGING, TRASH):
            base = self.root / sub
            if base.is_dir():
                for p in base.iterdir():
                    shutil.rmtree(p, ignore_errors=True)
                    n += 1
        return n

"""Ingest benchmark: `gdask ingest` of H.E.S.S. DL3 DR1 against a plain astropy read of the same files.

Usage (from the repository root, after ``make install``)::

    .venv/bin/python benchmarks/bench_ingest.py [--data ../shared/data] [--workers N]

Prints, for the first (cold) ingest, the up-to-date re-ingest and a plain
serial astropy read of every HDU of the same files: wall time, runs/s and MB/s
(compressed source bytes), and the ratios between them. Each ingest is run as
the real command line in a subprocess, so interpreter start-up and imports are
included, as a user would see them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from astropy.io import fits
from astropy.table import Table


def plain_astropy_read(root: Path) -> tuple[float, int, int]:
    """Read every HDU of every file in the archive with astropy; return (seconds, runs, bytes)."""
    hdu_index = Table.read(next(root.glob("hdu-index.fits*")))
    files = sorted({(str(r["FILE_DIR"]).strip(), str(r["FILE_NAME"]).strip()) for r in hdu_index})
    paths = [root / d / n for d, n in files]
    t0 = time.perf_counter()
    for p in paths:
        with fits.open(p, memmap=False) as hdul:
            for h in hdul:
                _ = h.data
    dt = time.perf_counter() - t0
    n_runs = len(set(int(x) for x in hdu_index["OBS_ID"]))
    return dt, n_runs, sum(p.stat().st_size for p in paths)


def run_cli(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "gdask.cli", *args], capture_output=True, text=True, check=False
    )
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"gdask {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return dt, proc.stdout.strip()


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(here.parent / "shared" / "data"))
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    root = Path(args.data) / "hess-dl3-dr1"

    plain_s, n_runs, n_bytes = plain_astropy_read(root)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "hess.zarr"
        extra = ["--no-progress"] + (["--workers", str(args.workers)] if args.workers else [])
        cold_s, cold_out = run_cli(["ingest", str(root), "--store", str(store), *extra])
        warm_s, warm_out = run_cli(["ingest", str(root), "--store", str(store), *extra])
    mb = n_bytes / 1e6
    print(f"archive: {root} ({n_runs} runs, {mb:.1f} MB compressed)")
    print(f"{'':28s}{'seconds':>10s}{'runs/s':>10s}{'MB/s':>10s}")
    for name, sec in [
        ("plain astropy read (serial)", plain_s),
        ("gdask ingest (cold)", cold_s),
        ("gdask ingest (up to date)", warm_s),
    ]:
        print(f"{name:28s}{sec:10.2f}{n_runs / sec:10.1f}{mb / sec:10.1f}")
    print(
        f"cold ingest / plain read: {cold_s / plain_s:.2f}x the time "
        "(the ingest also validates, converts and writes the zarr store)"
    )
    print(f"up-to-date re-ingest / cold ingest: {100 * warm_s / cold_s:.1f}% of the time")
    print("cold:", cold_out.splitlines()[-1] if cold_out else "")
    print("warm:", warm_out.splitlines()[-1] if warm_out else "")


if __name__ == "__main__":
    main()

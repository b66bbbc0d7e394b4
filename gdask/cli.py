"""The ``gdask`` command.

Heavy modules (dask, distributed, xarray) are imported inside the commands
that need them, so that cheap commands (an up-to-date re-ingest) stay cheap.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gdask import __version__

__all__ = ["main", "build_parser"]


def _add_cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="Dask scheduler address (default: $DASK_SCHEDULER_ADDRESS, else an embedded LocalCluster)",
    )
    p.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: one per core)")
    p.add_argument(
        "--threads",
        action="store_true",
        help="run LocalCluster workers as threads in this process instead of processes",
    )
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gdask", description="Gamma-ray astronomy analysis on Dask (DL3 -> DL4 -> joint fits)."
    )
    parser.add_argument("--version", action="version", version=f"gdask {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="ingest a GADF DL3 archive into a zarr archive store")
    p.add_argument("source", help="DL3 folder (with hdu-index/obs-index) or an index file")
    p.add_argument("--store", required=True, help="archive store path (created if absent)")
    p.add_argument("--obs-id", type=int, nargs="+", default=None, help="only these observations")
    p.add_argument(
        "--checksum", action="store_true",
        help="verify SHA-256 of every source file, even when size and mtime are unchanged",
    )
    p.add_argument(
        "--chunk-events", type=int, default=None, help="events per zarr chunk (default 1,000,000)"
    )
    _add_cluster_args(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("info", help="summarise an archive store")
    p.add_argument("store", help="archive store path")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="the main job on an embedded LocalCluster (see README)")
    p.add_argument("--out", default="results/demo", help="output folder (default results/demo)")
    p.add_argument("--data", default=None, help="real-data folder (default ../shared/data or $GDASK_DATA)")
    _add_cluster_args(p)
    p.set_defaults(func=cmd_demo)
    return parser


def cmd_ingest(args: argparse.Namespace) -> int:
    from gdask.archive.ingest import DEFAULT_CHUNK_EVENTS, ingest

    summary = ingest(
        args.source,
        args.store,
        scheduler=args.scheduler,
        checksum=args.checksum,
        obs_ids=args.obs_id,
        progress=not args.no_progress,
        n_workers=args.workers,
        processes=not args.threads,
        chunk_events=args.chunk_events or DEFAULT_CHUNK_EVENTS,
    )
    print(summary.format())
    return 0 if summary.ok else 1


def cmd_info(args: argparse.Namespace) -> int:
    from gdask.archive.store import ArchiveStore

    store = ArchiveStore.open(args.store)
    records = store.records()
    n_events = sum(int(r.attrs.get("n_events", 0)) for r in records.values())
    print(f"{store.path}: {len(records)} observations, {n_events} events")
    for obs_id, rec in records.items():
        row = rec.index_row
        print(
            f"  {obs_id:>12}  events={rec.attrs.get('n_events', 0):>8}  "
            f"irfs={','.join(sorted(rec.attrs.get('irf_classes', {})))}  "
            f"object={row.get('OBJECT', row.get('TARGET_NAME', ''))}"
        )
    return 0


def _default_data_dir() -> Path:
    import os

    env = os.environ.get("GDASK_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[1]
    return here.parent / "shared" / "data"


def cmd_demo(args: argparse.Namespace) -> int:
    """Interim main job: ingest the real H.E.S.S. DR1 and joint-Crab DL3 archives on a LocalCluster."""
    from gdask.archive.ingest import ingest

    data = Path(args.data) if args.data else _default_data_dir()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    archives = {
        "hess-dl3-dr1": data / "hess-dl3-dr1",
        "joint-crab-magic": data / "joint-crab" / "dl3" / "magic",
        "joint-crab-veritas": data / "joint-crab" / "dl3" / "veritas",
        "joint-crab-fact": data / "joint-crab" / "dl3" / "fact",
        "magic-rad-max": data / "magic" / "rad_max" / "data",
        "veritas-point-like": data / "veritas" / "crab-point-like-ED",
    }
    missing = [str(p) for p in archives.values() if not p.is_dir()]
    if missing:
        print(f"demo: data folders not found: {missing} (set --data or GDASK_DATA)", file=sys.stderr)
        return 2
    ok = True
    for name, src in archives.items():
        summary = ingest(
            src, out / f"{name}.zarr", scheduler=args.scheduler, progress=not args.no_progress,
            n_workers=args.workers, processes=not args.threads,
        )
        print(summary.format())
        ok &= summary.ok
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from gdask.errors import GdaskError

        if isinstance(exc, GdaskError):
            print(f"gdask {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())

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
    p.add_argument(
        "--workers", type=int, default=None, help="LocalCluster workers (default: one per core)"
    )
    p.add_argument(
        "--threads",
        action="store_true",
        help="run LocalCluster workers as threads in this process instead of processes",
    )
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    _add_tls_args(p)


def _add_tls_args(p: argparse.ArgumentParser) -> None:
    """Mutual TLS to a remote scheduler (see gdask.security and docs/deployment.md)."""
    g = p.add_argument_group("TLS (remote scheduler; encryption is then required)")
    g.add_argument(
        "--tls-ca", metavar="PEM", default=None, help="cluster CA (default: $GDASK_TLS_CA)"
    )
    g.add_argument(
        "--tls-cert",
        metavar="PEM",
        default=None,
        help="client certificate signed by the CA (default: $GDASK_TLS_CERT)",
    )
    g.add_argument(
        "--tls-key",
        metavar="PEM",
        default=None,
        help="private key of --tls-cert (default: $GDASK_TLS_KEY)",
    )


def _security(args: argparse.Namespace):
    """TLS settings from --tls-* (else GDASK_TLS_*), or None for Dask's own configuration."""
    from gdask.cluster import scheduler_address
    from gdask.errors import ConfigError
    from gdask.security import resolve_security

    given = {k: getattr(args, f"tls_{k}", None) for k in ("ca", "cert", "key")}
    if any(given.values()) and not scheduler_address(getattr(args, "scheduler", None)):
        raise ConfigError(
            "--tls-* options need a remote scheduler (--scheduler tls://HOST:PORT)",
            field="--scheduler",
        )
    return resolve_security(**given)


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return value


def _check_cluster_args(args: argparse.Namespace) -> None:
    """--workers and --scheduler checked before any work starts (gdask.cluster's rules)."""
    from gdask.cluster import check_n_workers, check_scheduler_address

    check_n_workers(getattr(args, "workers", None))
    if getattr(args, "scheduler", None) is not None:
        check_scheduler_address(args.scheduler)


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
        "--checksum",
        action="store_true",
        help="verify SHA-256 of every source file, even when size and mtime are unchanged",
    )
    p.add_argument(
        "--chunk-events",
        type=_positive_int,
        default=None,
        help="events per zarr chunk, >= 1 (default 1,000,000)",
    )
    _add_cluster_args(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("info", help="summarise an archive store")
    p.add_argument("store", help="archive store path")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "simulate", help="simulate a GADF DL3 archive per instrument (see docs/simulation.md)"
    )
    p.add_argument("--out", required=True, help="output folder (one archive per instrument)")
    p.add_argument(
        "--instruments",
        default="hess-like,magic-like,cta-like",
        help="comma-separated presets (hess-like, magic-like, cta-like) or PATH#OBS_ID for real IRFs",
    )
    p.add_argument("--runs", type=int, default=4, help="runs per instrument (default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--model",
        default=None,
        help="models YAML of the injected sources (default: a Crab-like source)",
    )
    p.add_argument(
        "--livetime", type=float, default=None, help="run duration in s (default: per instrument)"
    )
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "config", help="print a commented default analysis configuration (see docs/reduction.md)"
    )
    p.set_defaults(func=cmd_config)

    p = sub.add_parser(
        "reduce", help="reduce DL3 runs into DL4 datasets as configured (see docs/reduction.md)"
    )
    p.add_argument("config", help="analysis configuration YAML")
    _add_cluster_args(p)
    p.set_defaults(func=cmd_reduce)

    p = sub.add_parser(
        "fit", help="joint fit of the datasets of one or several configs (see docs/analysis.md)"
    )
    p.add_argument(
        "config",
        nargs="+",
        help="a joint run config (with 'analyses'), or analysis config YAMLs (one per instrument)",
    )
    _add_fit_args(p, default_out="results/fit")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "run", help="ingest -> reduce per instrument -> one joint fit (see docs/analysis.md)"
    )
    p.add_argument("config", help="joint run config (with 'analyses') or one analysis config YAML")
    _add_fit_args(p, default_out="results/run")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "demo",
        help="the main job: simulated three-instrument joint fit on a LocalCluster (see README)",
    )
    p.add_argument("--out", default="results/demo", help="output folder (default results/demo)")
    p.add_argument("--runs", type=int, default=3, help="simulated runs per instrument (default 3)")
    p.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    _add_cluster_args(p)
    p.set_defaults(func=cmd_demo)
    return parser


def _add_fit_args(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument(
        "--out",
        default=None,
        help=f"results folder (default: the run config's 'output', else {default_out})",
    )
    p.add_argument(
        "--mode",
        choices=("auto", "distributed", "in-process"),
        default=None,
        help="where the likelihood terms live (default: the config's fit.mode, else auto: "
        "in-process for small problems, see docs/analysis.md)",
    )
    p.set_defaults(default_out=default_out)
    _add_cluster_args(p)


def cmd_config(args: argparse.Namespace) -> int:
    from gdask.config.template import default_config

    sys.stdout.write(default_config())
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from gdask.archive.ingest import DEFAULT_CHUNK_EVENTS, ingest

    summary = ingest(
        args.source,
        args.store,
        scheduler=args.scheduler,
        security=_security(args),
        checksum=args.checksum,
        obs_ids=args.obs_id,
        progress=not args.no_progress,
        n_workers=args.workers,
        processes=not args.threads,
        chunk_events=DEFAULT_CHUNK_EVENTS if args.chunk_events is None else args.chunk_events,
    )
    print(summary.format())
    return 0 if summary.ok else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    from gdask.simulate import load_sky_models, simulate_archive

    models = load_sky_models(args.model) if args.model else None
    instruments = [s.strip() for s in args.instruments.split(",") if s.strip()]
    summary = simulate_archive(
        args.out,
        instruments=instruments,
        n_runs=args.runs,
        sky_model=models,
        seed=args.seed,
        livetime=args.livetime,
    )
    print(summary.format())
    return 0


def cmd_reduce(args: argparse.Namespace) -> int:
    from gdask.config import AnalysisConfig
    from gdask.reduce.graph import reduce

    config = AnalysisConfig.read(args.config)
    summary = reduce(
        config,
        scheduler=args.scheduler,
        security=_security(args),
        progress=not args.no_progress,
        n_workers=args.workers,
        processes=not args.threads,
    )
    print(summary.format())
    # a failed run, or no run reduced at all (every run skipped, e.g. no OFF region), is an error
    return 0 if summary.ok and summary.count("done") else 1


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


def _fit_exit_code(outcome) -> int:
    r = outcome.result
    print(f"results in {outcome.out}/: {', '.join(f.name for f in outcome.files)}")
    return 0 if r.success and r.covariance_success else 1


def cmd_fit(args: argparse.Namespace) -> int:
    """Joint fit of what the dataset stores hold; exit 1 if MIGRAD or HESSE failed."""
    from gdask.analysis import fit_run
    from gdask.analysis.results import summary_text
    from gdask.run_config import load_run_config

    run = load_run_config(args.config)
    out = Path(args.out or run.output or args.default_out)
    outcome = fit_run(
        run,
        out,
        scheduler=args.scheduler,
        security=_security(args),
        n_workers=args.workers,
        processes=not args.threads,
        mode=args.mode,
    )
    print(summary_text(outcome))
    return _fit_exit_code(outcome)


def cmd_run(args: argparse.Namespace) -> int:
    """Ingest and reduce every analysis, then fit jointly; exit 1 if a run or the fit failed."""
    from gdask.analysis import ReduceFailed, run_pipeline
    from gdask.analysis.results import summary_text
    from gdask.run_config import load_run_config

    run = load_run_config([args.config])
    out = Path(args.out or run.output or args.default_out)
    try:
        outcome = run_pipeline(
            run,
            out,
            scheduler=args.scheduler,
            security=_security(args),
            n_workers=args.workers,
            processes=not args.threads,
            mode=args.mode,
            progress=not args.no_progress,
        )
    except ReduceFailed as exc:
        print(f"gdask run: {exc.message}", file=sys.stderr)
        return 1
    if outcome is None:  # no models: reduce only
        return 0
    print(summary_text(outcome))
    return _fit_exit_code(outcome)


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: simulate three instruments, ingest, reduce, joint fit on a Dask cluster.

    Exit code 0 only if the fit converged and every fitted value is within
    3 sigma of the injected one.
    """
    from gdask.analysis.demo import run_demo

    outcome = run_demo(
        args.out,
        n_runs=args.runs,
        seed=args.seed,
        scheduler=args.scheduler,
        security=_security(args),
        n_workers=args.workers,
        processes=not args.threads,
        progress=not args.no_progress,
    )
    return 0 if outcome.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import warnings

    shown = warnings.showwarning
    warnings.showwarning = _one_line_warning(args.command)  # restored below
    try:
        _check_cluster_args(args)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # the reader went away (``gdask info STORE | head``): stop quietly, like other tools
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by it
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from gdask.errors import GdaskError

        if isinstance(exc, GdaskError):
            print(f"gdask {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise
    finally:
        warnings.showwarning = shown


def _one_line_warning(command: str):
    """A `warnings.showwarning` printing ``gdask CMD: warning: MESSAGE`` (no source line)."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        try:
            print(f"gdask {command}: warning: {message}", file=file or sys.stderr)
        except OSError:  # stderr closed: nowhere to warn
            pass

    return show


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    import os

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests' StringIO)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())

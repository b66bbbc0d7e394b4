"""One way to get a Dask client: an address, ``DASK_SCHEDULER_ADDRESS``, or an embedded LocalCluster.

Library functions (ingest, reduce, the analysis) take ``client=None`` and get
their client through `ClientSource`: the given client, else the process's
current default client (``distributed.default_client()``, e.g. a ``Client()``
made by the calling script), else one from `get_client` -- the only place that
starts a LocalCluster -- started on first use and closed when done. One
`ClientSource` shared by the steps of a job (reduce with a DL3 path ingests
first) starts at most one cluster.

A LocalCluster with worker processes re-imports the main script in every
worker (Python's ``spawn``): a script without an ``if __name__ == "__main__":``
guard would run again in each of them. `get_client` refuses to start one from
such a script, with a message saying so.

The embedded LocalCluster listens on 127.0.0.1 only (scheduler, workers,
nannies and the dashboard, whose URL is printed on stderr): nothing of an
analysis on a laptop is reachable from the network.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator

from gdask.errors import ConfigError, GdaskError

__all__ = [
    "scheduler_address",
    "get_client",
    "current_client",
    "ClientSource",
    "check_n_workers",
    "check_scheduler_address",
    "ClusterConnectionError",
    "LOCAL_HOST",
    "quiet_gdask_errors",
    "worker_environ",
]

#: the only interface an embedded LocalCluster listens on
LOCAL_HOST = "127.0.0.1"
#: ``[PROTOCOL://]HOST:PORT`` with a bracketed IPv6 or a name/IPv4 host (or an in-process one)
_ADDRESS = re.compile(
    r"inproc://\S+|(?:(?:tcp|tls|ws|wss|ucx)://)?"
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[1-9]\d{0,4})"
)


class ClusterConnectionError(GdaskError):
    """The scheduler cannot be reached, or refused this client (e.g. TLS required)."""


def scheduler_address(address: str | None = None) -> str | None:
    """Return the scheduler to use: ``address`` if given, else ``$DASK_SCHEDULER_ADDRESS``, else None."""
    return address or os.environ.get("DASK_SCHEDULER_ADDRESS") or None


def check_scheduler_address(address: str, field: str = "--scheduler") -> str:
    """``address`` if it is a scheduler address ``[tcp|tls|ws|wss|ucx://]HOST:PORT``.

    Raises
    ------
    ConfigError
        Naming ``field`` (the option or variable the address came from).

    Examples
    --------
    >>> check_scheduler_address("tls://10.0.0.5:8786")
    'tls://10.0.0.5:8786'
    """
    m = _ADDRESS.fullmatch(address.strip()) if isinstance(address, str) else None
    if m is None or int(m["port"] or 1) > 65535:
        raise ConfigError(
            f"{field}: not a Dask scheduler address: {address!r} "
            "(expected PROTOCOL://HOST:PORT, e.g. tcp://127.0.0.1:8786 or tls://scheduler:8786)",
            field=field,
        )
    return address.strip()


def check_n_workers(n_workers: int | None, field: str = "--workers") -> int | None:
    """``n_workers`` if it is None (one per core) or a whole number >= 1.

    Examples
    --------
    >>> check_n_workers(2)
    2
    """
    if n_workers is not None and (
        isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1
    ):
        raise ConfigError(
            f"{field}: must be a whole number of workers >= 1, got {n_workers!r}", field=field
        )
    return n_workers


@contextlib.contextmanager
def get_client(
    address: str | None = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
    security=None,
) -> Iterator:
    """Yield a `distributed.Client`, closing whatever this call started.

    Parameters
    ----------
    address : str, optional
        Scheduler address; falls back to ``DASK_SCHEDULER_ADDRESS``. When neither
        is set an embedded LocalCluster is started (and shut down on exit).
    n_workers : int, optional
        Workers of the LocalCluster (default: one per core).
    threads_per_worker : int
        Threads per LocalCluster worker (the numerics release the GIL poorly, so 1).
    processes : bool
        LocalCluster workers as processes (default) or threads in this process.
    security : distributed.Security, optional
        TLS settings for a remote scheduler; default: from ``GDASK_TLS_CA``,
        ``GDASK_TLS_CERT``, ``GDASK_TLS_KEY`` if set, else Dask's configuration
        (see `gdask.security`).

    Raises
    ------
    ClusterConnectionError
        If the remote scheduler cannot be reached or refuses the connection.
    """
    from distributed import Client, LocalCluster

    n_workers = check_n_workers(n_workers)
    if processes and not address and not os.environ.get("DASK_SCHEDULER_ADDRESS"):
        check_main_guard()
    if address:
        address = check_scheduler_address(address)
    elif os.environ.get("DASK_SCHEDULER_ADDRESS"):
        address = check_scheduler_address(
            os.environ["DASK_SCHEDULER_ADDRESS"], "DASK_SCHEDULER_ADDRESS"
        )
    if address:
        if security is None:
            from gdask.security import security_from_env

            security = security_from_env()
        client = _connect(Client, address, security)
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    # Dask's nanny exports MALLOC_TRIM_THRESHOLD_=65536 to its workers; setting any MALLOC_*
    # variable switches off glibc's dynamic mmap threshold, so numpy temporaries above 128 kB
    # are mmap'ed and page-faulted afresh on every evaluation (map terms 3-4x slower than
    # in-process; a fixed MALLOC_MMAP_THRESHOLD_ still costs ~17%). Unset it (None: not
    # exported): workers get the same allocator as an in-process fit.
    with dask.config.set(worker_environ()):
        cluster = LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1,
            threads_per_worker=threads_per_worker,
            processes=processes,
            # scheduler, nannies and workers (threads talk in-process: inproc://, no socket)
            host=LOCAL_HOST if processes else None,
            dashboard_address=f"{LOCAL_HOST}:0",  # loopback, a free port (no clash on 8787)
            # in-process workers have no host to bind their HTTP server (/health, /metrics)
            # to and would listen on all interfaces: give them a loopback address
            worker_dashboard_address=None if processes else f"{LOCAL_HOST}:0",
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    client.register_worker_callbacks(quiet_gdask_errors)
    port = cluster.scheduler_info.get("services", {}).get("dashboard")
    if port:  # (cluster.dashboard_link names the inproc host of a threaded cluster, not 127.0.0.1)
        print(f"gdask: Dask dashboard at http://{LOCAL_HOST}:{port}/status", file=sys.stderr)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


#: imported by every LocalCluster worker as it starts (Dask preload), so that the first
#: build of likelihood terms does not pay seconds of imports (xarray, astropy) per worker
WORKER_PRELOAD = ("gdask.likelihood.spectrum", "gdask.likelihood.map")


def worker_environ() -> dict[str, object]:
    """Dask configuration of LocalCluster workers: glibc's allocator defaults, term modules preloaded.

    Examples
    --------
    >>> worker_environ()["distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"] is None
    True
    """
    return {
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
        "distributed.worker.preload": list(WORKER_PRELOAD),
    }


class _QuietGdaskErrors(logging.Filter):
    """Drops a worker's "Compute Failed" log (with its traceback) of a task that raised a
    `GdaskError`: the error reaches the caller, which reports it as one line. Other
    exceptions (bugs) are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if not str(record.msg).startswith("Compute Failed") or len(args) < 4:
            return True
        return str(args[3]).split("(", 1)[0] not in _gdask_error_names()


def _gdask_error_names() -> set[str]:
    names, todo = set(), [GdaskError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def quiet_gdask_errors(dask_worker=None) -> None:
    """Worker setup: no traceback log for tasks failing with a `GdaskError` (bad input).

    `get_client` installs it on the workers of its LocalCluster.

    Examples
    --------
    >>> quiet_gdask_errors()  # in this process (threaded workers log here)
    """
    logger = logging.getLogger("distributed.worker")
    if not any(isinstance(f, _QuietGdaskErrors) for f in logger.filters):
        logger.addFilter(_QuietGdaskErrors())


def _connect(Client, address: str, security):
    """`Client(address)` with an error that says what to check when it fails."""
    tls = security is not None and bool(getattr(security, "tls_client_cert", None))
    try:
        return Client(address, security=security) if security else Client(address)
    except (OSError, TimeoutError, RuntimeError, TypeError) as exc:
        if address.startswith("tls://") and not tls:
            hint = (
                "a tls:// scheduler needs the cluster CA and a client certificate: "
                "--tls-ca/--tls-cert/--tls-key or GDASK_TLS_CA/GDASK_TLS_CERT/GDASK_TLS_KEY"
            )
        elif "encryption required" in str(exc):
            hint = "TLS is configured (encryption required), so use the scheduler's tls:// address"
        elif not address.startswith("tls://"):
            hint = (
                "is the scheduler up? if it requires TLS, use its tls:// address and "
                "--tls-ca/--tls-cert/--tls-key"
            )
        else:
            hint = "is the scheduler up, and is the certificate signed by the cluster's CA?"
        raise ClusterConnectionError(
            f"cannot connect to the Dask scheduler at {address}: {type(exc).__name__}: {exc}; {hint}",
            field="scheduler",
        ) from exc


_GUARD = re.compile(r"""^\s*if\s+__name__\s*==\s*["']__main__["']\s*:""", re.MULTILINE)


def check_main_guard() -> None:
    """Refuse to start worker processes from a script without a ``__main__`` guard.

    Every worker process of a LocalCluster re-imports the main script; without
    ``if __name__ == "__main__":`` the script's code (an ingest, a fit...) runs
    again in each worker, which fails in confusing ways (e.g. "another ingest is
    writing this store"). Interactive sessions and ``python -c`` have no script
    and pass.

    Raises
    ------
    ConfigError
        Naming the script.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or getattr(main, "__spec__", None) is not None:
        return  # interactive, -c, or python -m (a module: its own guard is its business)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            source = fh.read()
    except OSError:
        return
    if not _GUARD.search(source):
        raise ConfigError(
            f"{path}: starting a LocalCluster with worker processes from a script needs its "
            'code under `if __name__ == "__main__":` (every worker process re-imports the '
            "script); add the guard, pass a client (distributed.Client), or use "
            "processes=False",
            file=str(path),
            field="__main__",
        )


def current_client():
    """The client this process already uses (``distributed.default_client()``), or None.

    Examples
    --------
    >>> current_client() is None  # no Client made in this process
    True
    """
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    try:
        return default_client()
    except ValueError:
        return None


class ClientSource:
    """Where a library function gets its Dask client, started at most once and on first use.

    ``client`` if given, else a client for ``scheduler`` if given, else the
    current default client (`current_client`), else `get_client` (a remote
    scheduler from ``DASK_SCHEDULER_ADDRESS`` or an embedded LocalCluster),
    which is closed by `close` (or at the end of a ``with`` block). Pass one
    `ClientSource` as ``client`` to several steps to share what it starts.

    Parameters
    ----------
    client : distributed.Client or ClientSource, optional
    scheduler : str, optional
    n_workers : int, optional
        LocalCluster workers (default: the ``n_tasks`` of the first `get`, at
        most one per core).
    processes : bool
    security : distributed.Security, optional

    Examples
    --------
    >>> with ClientSource(processes=False, n_workers=1) as source:  # doctest: +SKIP
    ...     client = source.get()
    """

    def __init__(
        self,
        client=None,
        scheduler: str | None = None,
        *,
        n_workers: int | None = None,
        processes: bool = True,
        security=None,
    ) -> None:
        self._parent = client if isinstance(client, ClientSource) else None
        self._client = None if self._parent is not None else client
        self.scheduler = scheduler
        self.n_workers = check_n_workers(n_workers)
        self.processes = processes
        self.security = security
        self._stack = contextlib.ExitStack()

    @classmethod
    def wrap(cls, client=None, scheduler: str | None = None, **kwargs) -> ClientSource:
        """``client`` if it is a `ClientSource`, else a new one with these settings."""
        if isinstance(client, ClientSource):
            return client
        return cls(client, scheduler, **kwargs)

    def get(self, n_tasks: int | None = None):
        """The client (starting or connecting on the first call)."""
        if self._parent is not None:
            return self._parent.get(n_tasks)
        if self._client is None:
            if self.scheduler is None:
                self._client = current_client()
            if self._client is None:
                n = self.n_workers
                if n is None and n_tasks is not None:
                    n = max(1, min(n_tasks, os.cpu_count() or 1))
                self._client = self._stack.enter_context(
                    get_client(
                        self.scheduler,
                        n_workers=n,
                        processes=self.processes,
                        security=self.security,
                    )
                )
        return self._client

    def close(self) -> None:
        """Close what `get` started (a given or default client is left open)."""
        self._stack.close()

    def __enter__(self) -> ClientSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

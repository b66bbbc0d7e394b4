"""One way to get a Dask client: an address, ``DASK_SCHEDULER_ADDRESS``, or an embedded LocalCluster.

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
    "check_n_workers",
    "check_scheduler_address",
    "ClusterConnectionError",
    "LOCAL_HOST",
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

    # Dask's nanny exports MALLOC_TRIM_THRESHOLD_=65536 to its workers, which pins glibc's
    # mmap threshold at 128 kB: every numpy temporary above it is mmap'ed and page-faulted
    # afresh (map-term evaluations 3-4x slower than in-process). Keep arrays < 64 MB on the heap.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 2**26}):
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
    port = cluster.scheduler_info.get("services", {}).get("dashboard")
    if port:  # (cluster.dashboard_link names the inproc host of a threaded cluster, not 127.0.0.1)
        print(f"gdask: Dask dashboard at http://{LOCAL_HOST}:{port}/status", file=sys.stderr)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


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

"""One way to get a Dask client: an address, ``DASK_SCHEDULER_ADDRESS``, or an embedded LocalCluster."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

__all__ = ["scheduler_address", "get_client"]


def scheduler_address(address: str | None = None) -> str | None:
    """Return the scheduler to use: ``address`` if given, else ``$DASK_SCHEDULER_ADDRESS``, else None."""
    return address or os.environ.get("DASK_SCHEDULER_ADDRESS") or None


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
        TLS settings for a remote scheduler.
    """
    from distributed import Client, LocalCluster

    address = scheduler_address(address)
    if address:
        client = Client(address, security=security) if security else Client(address)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=n_workers or os.cpu_count() or 1,
        threads_per_worker=threads_per_worker,
        processes=processes,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()

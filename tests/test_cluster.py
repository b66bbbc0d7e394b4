"""gdask.cluster: the embedded LocalCluster listens on 127.0.0.1 only; bad arguments fail at once."""

from __future__ import annotations

import os
import re

import psutil
import pytest

from gdask.cluster import LOCAL_HOST, check_n_workers, check_scheduler_address, get_client
from gdask.errors import ConfigError


def _listeners() -> set[tuple[int, str, int]]:
    """(pid, ip, port) of every listening TCP socket of this process and its descendants."""
    me = psutil.Process()
    out = set()
    for proc in [me, *me.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        out.update(
            (proc.pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN
        )
    return out


@pytest.mark.timeout(300)
def test_local_cluster_listens_on_loopback_only(monkeypatch, capsys):
    """Scheduler, dashboard, nannies and workers: every new listening socket is on 127.0.0.1."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    before = _listeners()
    with get_client(n_workers=2, processes=True) as client:
        client.wait_for_workers(2)
        new = _listeners() - before
        workers = client.scheduler_info()["workers"]
        dashboard = client.dashboard_link
    assert {ip for _, ip, _ in new} == {LOCAL_HOST}, sorted(new)
    pids = {pid for pid, _, _ in new}
    assert os.getpid() in pids and len(pids) >= 3  # the scheduler here, two worker processes
    ports = {port for _, _, port in new}
    for address in workers:  # the workers' own listeners are among them
        assert (
            address.startswith(f"tcp://{LOCAL_HOST}:") and int(address.rsplit(":", 1)[1]) in ports
        )
    assert dashboard.startswith(f"http://{LOCAL_HOST}:")
    assert int(dashboard.split(":")[2].split("/")[0]) in ports
    assert f"Dask dashboard at {dashboard}" in capsys.readouterr().err


def test_threaded_local_cluster_serves_only_the_dashboard_on_loopback(monkeypatch, capsys):
    """Worker threads talk in-process; the one socket left, the dashboard, is on 127.0.0.1."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    before = _listeners()
    with get_client(n_workers=2, processes=False) as client:
        assert client.submit(sum, [1, 2]).result() == 3
        new = _listeners() - before
    assert {ip for _, ip, _ in new} == {LOCAL_HOST}, sorted(new)
    printed = re.search(r"Dask dashboard at http://([\d.]+):(\d+)/status", capsys.readouterr().err)
    assert printed and printed[1] == LOCAL_HOST and int(printed[2]) in {p for _, _, p in new}


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_n_workers_below_one_is_an_error(bad):
    with pytest.raises(ConfigError) as err:
        check_n_workers(bad)
    assert err.value.field == "--workers"


def test_get_client_refuses_bad_arguments_before_starting_anything(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with pytest.raises(ConfigError, match="--workers"):
        with get_client(n_workers=-2):
            pass
    with pytest.raises(ConfigError, match="--scheduler"):
        with get_client("not a url"):
            pass
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "junk")
    with pytest.raises(ConfigError) as err:
        with get_client():
            pass
    assert err.value.field == "DASK_SCHEDULER_ADDRESS"


@pytest.mark.parametrize(
    "address",
    ["tcp://127.0.0.1:8786", "tls://scheduler:8786", "10.1.2.3:8786", "tcp://[::1]:8786"],
)
def test_scheduler_addresses_accepted(address):
    assert check_scheduler_address(address) == address


@pytest.mark.parametrize(
    "address", ["not a url", "localhost", "tcp://host", "tcp://h:0", "tcp://h:99999", "http://h:1"]
)
def test_scheduler_addresses_refused(address):
    with pytest.raises(ConfigError) as err:
        check_scheduler_address(address)
    assert err.value.field == "--scheduler" and repr(address) in str(err.value)


def test_worker_log_drops_only_gdask_error_tracebacks():
    """A task failing on bad input (GdaskError) is reported by the caller; bugs stay logged."""
    import logging

    from gdask.cluster import quiet_gdask_errors

    quiet_gdask_errors()
    quiet_gdask_errors()  # idempotent
    logger = logging.getLogger("distributed.worker")
    assert sum(type(f).__name__ == "_QuietGdaskErrors" for f in logger.filters) == 1

    def record(exc_text: str) -> logging.LogRecord:
        args = ("key", "executing", "task", exc_text, "tb")
        return logging.LogRecord(
            "distributed.worker", logging.ERROR, "", 0, "Compute Failed\n%s%s%s%r%r", args, None
        )

    assert not logger.filter(record('ArchiveError("damaged")'))
    assert not logger.filter(record('ConfigError("bad")'))
    assert logger.filter(record('ValueError("a bug")'))


def _malloc_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}


@pytest.mark.timeout(300)
def test_local_cluster_workers_keep_glibc_allocator_defaults(monkeypatch):
    """No MALLOC_* variable reaches the workers (Dask exports MALLOC_TRIM_THRESHOLD_=65536,
    which switches off glibc's dynamic mmap threshold: every large numpy temporary is then
    mmap'ed and page-faulted afresh); BLAS/OpenMP stay at one thread per worker."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    with get_client(n_workers=1, processes=True) as client:
        client.wait_for_workers(1)
        envs = list(client.run(_malloc_environ).values())
        omp = list(client.run(os.environ.get, "OMP_NUM_THREADS").values())
    assert envs == [{}]
    assert omp == ["1"]


def _imported(names: list[str]) -> list[bool]:
    import sys

    return [n in sys.modules for n in names]


@pytest.mark.timeout(300)
def test_local_cluster_workers_preload_the_term_modules(monkeypatch):
    """Workers import the likelihood term modules as they start, not in the first build."""
    from gdask.cluster import WORKER_PRELOAD

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with get_client(n_workers=1, processes=True) as client:
        client.wait_for_workers(1)
        loaded = list(client.run(_imported, list(WORKER_PRELOAD)).values())
    assert loaded == [[True] * len(WORKER_PRELOAD)]

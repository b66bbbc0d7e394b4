"""A real multi-process Dask cluster on 127.0.0.1: ``dask scheduler`` and ``dask worker`` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


class ProcessCluster:
    """One ``dask scheduler`` and ``n`` ``dask worker`` processes, each in its own session.

    Ports are chosen by the scheduler (``--port 0``) and read back from its
    scheduler file, so parallel test runs cannot collide. Workers run without
    a nanny: a killed worker stays dead, as a lost node would.
    """

    def __init__(self, workdir: Path, *, tls: dict[str, Path] | None = None, n_workers: int = 2):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.scheduler_file = self.workdir / "scheduler.json"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = dict(os.environ)
        self.env.pop("DASK_SCHEDULER_ADDRESS", None)
        for var in ("GDASK_TLS_CA", "GDASK_TLS_CERT", "GDASK_TLS_KEY"):
            self.env.pop(var, None)
        self.env["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"] = "5s"
        if tls:
            self.env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] = "True"
        self._start(
            "scheduler",
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(self.scheduler_file),
                *(["--protocol", "tls"] if tls else []),
                *self._tls_args(),
            ],
        )
        self.address = self._wait_address()
        for i in range(n_workers):
            self._start(
                f"worker-{i}",
                [
                    str(BIN / "dask"),
                    "worker",
                    "--scheduler-file",
                    str(self.scheduler_file),
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--name",
                    f"worker-{i}",
                    "--memory-limit",
                    "0",
                    *self._tls_args(),
                ],
            )
        self.wait_workers(n_workers)

    def _tls_args(self) -> list[str]:
        if not self.tls:
            return []
        return [
            "--tls-ca-file",
            str(self.tls["ca"]),
            "--tls-cert",
            str(self.tls["cert"]),
            "--tls-key",
            str(self.tls["key"]),
        ]

    def _start(self, name: str, cmd: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def _wait_address(self, timeout: float = 30) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.procs["scheduler"].poll() is not None:
                raise RuntimeError(f"scheduler exited:\n{self.log('scheduler')}")
            try:
                return json.loads(self.scheduler_file.read_text())["address"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                time.sleep(0.1)
        raise RuntimeError(f"scheduler did not start:\n{self.log('scheduler')}")

    def client_security(self):
        from gdask.security import tls_security

        return tls_security(self.tls["ca"], self.tls["cert"], self.tls["key"]) if self.tls else None

    def wait_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, security=self.client_security(), timeout="10s") as c:
            c.wait_for_workers(n, timeout=timeout)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def gdask_cmd(*args: str) -> list[str]:
    """The ``gdask`` command in a fresh interpreter (as a container would run it)."""
    return [sys.executable, "-m", "gdask.cli", *args]


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("DASK_SCHEDULER_ADDRESS", "GDASK_TLS_CA", "GDASK_TLS_CERT", "GDASK_TLS_KEY"):
        env.pop(var, None)
    env["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"] = "5s"
    return env


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, Path]:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        pytest.fail(
            "TLS tests need cryptography: install the deploy extra (pip install -e '.[deploy]')"
        )
    from gdask.security import make_certificates

    return make_certificates(tmp_path / "certs", ["localhost", "127.0.0.1"])

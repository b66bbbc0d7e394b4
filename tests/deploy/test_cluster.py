"""``gdask`` against a real multi-process cluster: plain TCP, a killed worker, and mutual TLS.

Each test starts ``dask scheduler`` and two ``dask worker`` processes on
127.0.0.1 (ports chosen by the OS) and runs the ``gdask`` command in its own
interpreter, as a container would. The stores must be byte-identical to the
one an embedded LocalCluster writes.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from astropy.table import Table

from gdask.archive import ArchiveStore, ingest
from gdask.cli import main
from tests.archive.dl3copy import tree_digest
from tests.deploy.conftest import ProcessCluster, clean_env, gdask_cmd

pytestmark = [pytest.mark.realdata, pytest.mark.slow, pytest.mark.timeout(180)]

N_RUNS = 12


def _digest(store: Path) -> dict[str, str]:
    """Every committed file of a store (not ``_staging/``, which holds uncommitted writes)."""
    return {
        k: v for k, v in tree_digest(store).items() if not k.startswith(("_staging/", "_trash/"))
    }


@pytest.fixture(scope="module")
def runs(hess_dir: Path) -> list[str]:
    return [str(r) for r in Table.read(hess_dir / "obs-index.fits.gz")["OBS_ID"][:N_RUNS]]


@pytest.fixture(scope="module")
def reference(hess_dir: Path, runs: list[str], tmp_path_factory) -> dict[str, str]:
    """The store written by an embedded LocalCluster (the default of ``gdask ingest``)."""
    store = tmp_path_factory.mktemp("ref") / "ref.zarr"
    s = ingest(
        hess_dir,
        store,
        obs_ids=[int(r) for r in runs],
        progress=False,
        n_workers=2,
        processes=False,
    )
    assert s.ok and s.count("ingested") == N_RUNS
    return _digest(store)


def _ingest_cmd(
    hess_dir: Path, store: Path, runs: list[str], address: str, *extra: str
) -> list[str]:
    return gdask_cmd(
        "ingest",
        str(hess_dir),
        "--store",
        str(store),
        "--obs-id",
        *runs,
        "--no-progress",
        "--scheduler",
        address,
        *extra,
    )


def test_ingest_on_process_cluster_matches_localcluster(
    hess_dir, runs, reference, tmp_path, monkeypatch, capsys
):
    cluster = ProcessCluster(tmp_path / "cluster")
    try:
        store = tmp_path / "s.zarr"
        r = subprocess.run(
            _ingest_cmd(hess_dir, store, runs, cluster.address),
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert f"{N_RUNS} new, 0 replaced, 0 unchanged, 0 failed" in r.stdout
        assert _digest(store) == reference
        # both workers did work: the tasks really were distributed
        log = cluster.log("scheduler")
        assert "name: worker-0" in log and "name: worker-1" in log
        # DASK_SCHEDULER_ADDRESS works as --scheduler (in this process): a re-run changes nothing
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.address)
        assert (
            main(
                ["ingest", str(hess_dir), "--store", str(store), "--obs-id", *runs, "--no-progress"]
            )
            == 0
        )
        assert f"{N_RUNS} unchanged" in capsys.readouterr().out
    finally:
        cluster.close()


def test_ingest_survives_a_killed_worker(hess_dir, runs, reference, tmp_path):
    """SIGKILL one of two worker processes mid-run: its tasks are rescheduled, the store is the same."""
    cluster = ProcessCluster(tmp_path / "cluster")
    try:
        store = tmp_path / "s.zarr"
        proc = subprocess.Popen(
            _ingest_cmd(hess_dir, store, runs, cluster.address),
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        obs_dir = store / "obs"
        deadline = time.time() + 90
        n = 0
        while time.time() < deadline and proc.poll() is None:
            n = len([p for p in obs_dir.iterdir() if p.name.isdigit()]) if obs_dir.is_dir() else 0
            if n >= 3:
                break
            time.sleep(0.02)
        assert 3 <= n < N_RUNS, f"the kill must happen mid-run ({n} of {N_RUNS} committed)"
        cluster.kill("worker-1")
        out, err = proc.communicate(timeout=150)
        assert proc.returncode == 0, out + err
        assert f"{N_RUNS} new, 0 replaced, 0 unchanged, 0 failed" in out, out
        log = cluster.log("scheduler")
        assert "Remove worker" in log and "name: worker-1" in log.split("Remove worker", 1)[1], log
        # the committed store is exactly the LocalCluster's
        assert _digest(store) == reference
        # a task killed mid-write leaves only an uncommitted folder under _staging/;
        # the next ingest finds every observation unchanged and clears it
        s = ingest(hess_dir, store, obs_ids=[int(r) for r in runs], progress=False, processes=False)
        assert s.ok and s.count("unchanged") == N_RUNS
        assert not any((store / "_staging").iterdir())
        assert ArchiveStore.open(store).obs_ids() == sorted(int(r) for r in runs)
    finally:
        cluster.close()


def test_ingest_over_mutual_tls(
    hess_dir, runs, reference, tls_files, tmp_path, monkeypatch, capsys
):
    """``require-encryption: true`` cluster: TLS ingest works; plain TCP and certificate-less clients are refused."""
    cluster = ProcessCluster(tmp_path / "cluster", tls=tls_files)
    try:
        assert cluster.address.startswith("tls://127.0.0.1:")
        store = tmp_path / "s.zarr"
        tls_args = [
            "--tls-ca",
            str(tls_files["ca"]),
            "--tls-cert",
            str(tls_files["cert"]),
            "--tls-key",
            str(tls_files["key"]),
        ]
        r = subprocess.run(
            _ingest_cmd(hess_dir, store, runs, cluster.address, *tls_args),
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert f"{N_RUNS} new, 0 replaced, 0 unchanged, 0 failed" in r.stdout
        assert _digest(store) == reference

        # the same through GDASK_TLS_* environment variables (as the containers do)
        env = clean_env() | {
            "GDASK_TLS_CA": str(tls_files["ca"]),
            "GDASK_TLS_CERT": str(tls_files["cert"]),
            "GDASK_TLS_KEY": str(tls_files["key"]),
        }
        r = subprocess.run(
            _ingest_cmd(hess_dir, store, runs, cluster.address),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0 and f"{N_RUNS} unchanged" in r.stdout, r.stdout + r.stderr

        # refusals are checked in this process (no interpreter start-up each time)
        _check_refusals(cluster, tls_files, runs[0], hess_dir, tmp_path, monkeypatch, capsys)
    finally:
        cluster.close()


def _check_refusals(cluster, tls_files, run, hess_dir, tmp_path, monkeypatch, capsys):
    from gdask.security import make_certificates

    for var in ("DASK_SCHEDULER_ADDRESS", "GDASK_TLS_CA", "GDASK_TLS_CERT", "GDASK_TLS_KEY"):
        monkeypatch.delenv(var, raising=False)
    other = tmp_path / "other.zarr"
    plain = cluster.address.replace("tls://", "tcp://")
    tls_args = [
        "--tls-ca",
        str(tls_files["ca"]),
        "--tls-cert",
        str(tls_files["cert"]),
        "--tls-key",
        str(tls_files["key"]),
    ]

    def run_cli(address, *extra):
        capsys.readouterr()
        code = main(
            [
                "ingest",
                str(hess_dir),
                "--store",
                str(other),
                "--obs-id",
                run,
                "--no-progress",
                "--scheduler",
                address,
                *extra,
            ]
        )
        return code, capsys.readouterr().err

    # a plain-TCP client is refused, with an error that says why and what to do
    code, err = run_cli(plain)
    assert code == 2, err
    assert f"cannot connect to the Dask scheduler at {plain}" in err
    assert "use its tls:// address and --tls-ca/--tls-cert/--tls-key" in err

    # a client with TLS settings refuses a tcp:// address itself (require_encryption)
    code, err = run_cli(plain, *tls_args)
    assert code == 2
    assert "encryption required" in err and "use the scheduler's tls:// address" in err

    # the tls:// address without a client certificate
    code, err = run_cli(cluster.address)
    assert code == 2
    assert "needs the cluster CA and a client certificate" in err

    # a certificate from another CA is refused by the scheduler (mutual TLS)
    rogue = make_certificates(tmp_path / "rogue")
    code, err = run_cli(
        cluster.address,
        "--tls-ca",
        str(tls_files["ca"]),
        "--tls-cert",
        str(rogue["cert"]),
        "--tls-key",
        str(rogue["key"]),
    )
    assert code == 2 and "cannot connect to the Dask scheduler" in err
    assert ArchiveStore.open(other).obs_ids() == []


@pytest.mark.parametrize("command", ["reduce", "run"])
def test_config_command_on_tls_cluster(command, hess_dir, tls_files, tmp_path):
    """``gdask reduce|run CONFIG`` as the containers run it, against a LocalCluster run.

    The config is deploy/analysis.yaml (the one the images run) on a two-run copy of the
    DL3 archive; on the cluster the address and certificates come from the environment.
    """
    import yaml

    from tests.archive.dl3copy import copy_archive

    cfg = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "deploy" / "analysis.yaml").read_text()
    )
    runs = cfg["observations"]["obs_ids"][:2]
    dl3 = copy_archive(hess_dir, tmp_path / "dl3", runs)
    cluster = ProcessCluster(tmp_path / "dask", tls=tls_files)
    tls_env = {
        "DASK_SCHEDULER_ADDRESS": cluster.address,
        "GDASK_TLS_CA": str(tls_files["ca"]),
        "GDASK_TLS_CERT": str(tls_files["cert"]),
        "GDASK_TLS_KEY": str(tls_files["key"]),
    }
    outs = {}
    try:
        for where, extra in (("cluster", tls_env), ("local", {})):
            out = outs[where] = tmp_path / where
            out.mkdir()
            c = dict(
                cfg,
                observations=dict(
                    cfg["observations"], dl3=str(dl3), store=str(out / "archive.zarr"), obs_ids=runs
                ),
                output=dict(cfg["output"], store=str(out / "datasets.zarr")),
            )
            (out / "analysis.yaml").write_text(yaml.safe_dump(c))
            r = subprocess.run(
                gdask_cmd(command, str(out / "analysis.yaml")),
                env=clean_env() | extra,
                capture_output=True,
                text=True,
                timeout=170,
                cwd=out,
            )
            assert r.returncode == 0, r.stdout + r.stderr
        assert "Receive client connection" in cluster.log("scheduler")
    finally:
        cluster.close()
    assert ArchiveStore.open(outs["cluster"] / "archive.zarr").obs_ids() == sorted(runs)
    for store in ("archive.zarr", "datasets.zarr"):
        got, want = (_digest(outs[w] / store) for w in ("cluster", "local"))
        assert got and got == want, store

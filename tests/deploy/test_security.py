"""gdask.security and the --tls-* options (no cluster needed)."""

from __future__ import annotations

import ssl

import pytest

from gdask.cli import main
from gdask.errors import ConfigError
from gdask.security import (
    TLS_ENV,
    make_certificates,
    resolve_security,
    security_from_env,
    tls_security,
)


def test_certificates_form_a_chain(tls_files):
    ctx = ssl.create_default_context(cafile=str(tls_files["ca"]))
    ctx.load_cert_chain(tls_files["cert"], tls_files["key"])  # the key matches the certificate
    assert oct(tls_files["key"].stat().st_mode & 0o777) == "0o600"
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(tls_files["cert"].read_bytes())
    ca = x509.load_pem_x509_certificate(tls_files["ca"].read_bytes())
    cert.verify_directly_issued_by(ca)


def test_tls_security_requires_encryption(tls_files):
    sec = tls_security(tls_files["ca"], tls_files["cert"], tls_files["key"])
    assert sec.require_encryption is True
    assert sec.tls_ca_file == str(tls_files["ca"].resolve())
    assert sec.tls_client_cert == sec.tls_worker_cert == str(tls_files["cert"].resolve())
    ctx = sec.get_connection_args("client")["ssl_context"]
    assert ctx.verify_mode == ssl.CERT_REQUIRED  # mutual TLS


def test_resolve_order(tls_files, tmp_path):
    env = {
        TLS_ENV["ca"]: str(tls_files["ca"]),
        TLS_ENV["cert"]: str(tls_files["cert"]),
        TLS_ENV["key"]: str(tls_files["key"]),
    }
    assert resolve_security(environ={}) is None
    assert security_from_env(env).tls_client_key == str(tls_files["key"].resolve())
    other = make_certificates(tmp_path / "other")
    sec = resolve_security(other["ca"], other["cert"], other["key"], environ=env)  # explicit wins
    assert sec.tls_ca_file == str(other["ca"].resolve())


def test_incomplete_or_missing_files_are_named(tls_files, tmp_path):
    with pytest.raises(ConfigError, match=r"missing --tls-ca"):
        resolve_security(cert=tls_files["cert"], key=tls_files["key"])
    with pytest.raises(ConfigError, match=r"missing \$GDASK_TLS_CERT"):
        security_from_env({TLS_ENV["ca"]: str(tls_files["ca"])})
    with pytest.raises(ConfigError, match=r"TLS key file not found .*nope.key"):
        tls_security(tls_files["ca"], tls_files["cert"], tmp_path / "nope.key")


def test_cli_tls_without_remote_scheduler_is_an_error(tls_files, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    code = main(
        [
            "ingest",
            str(tmp_path),
            "--store",
            str(tmp_path / "s.zarr"),
            "--tls-ca",
            str(tls_files["ca"]),
            "--tls-cert",
            str(tls_files["cert"]),
        ]
    )
    assert code == 2
    assert "--tls-* options need a remote scheduler" in capsys.readouterr().err


def test_cli_tls_missing_file_is_named(tls_files, tmp_path, capsys):
    code = main(
        [
            "ingest",
            str(tmp_path),
            "--store",
            str(tmp_path / "s.zarr"),
            "--scheduler",
            "tls://127.0.0.1:1",
            "--tls-ca",
            str(tmp_path / "missing.crt"),
            "--tls-cert",
            str(tls_files["cert"]),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "TLS ca file not found" in err and "missing.crt" in err


def test_cli_tls_options_do_not_leak_into_the_environment(tls_files, tmp_path, monkeypatch):
    import os

    for var in TLS_ENV.values():
        monkeypatch.delenv(var, raising=False)
    main(
        [
            "ingest",
            str(tmp_path / "nothing"),
            "--store",
            str(tmp_path / "s.zarr"),
            "--scheduler",
            "tls://127.0.0.1:1",
            "--tls-ca",
            str(tls_files["ca"]),
            "--tls-cert",
            str(tls_files["cert"]),
            "--tls-key",
            str(tls_files["key"]),
            "--no-progress",
        ]
    )
    assert not any(var in os.environ for var in TLS_ENV.values())

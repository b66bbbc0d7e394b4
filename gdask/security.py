"""TLS for a remote Dask cluster: build a `distributed.Security` from files or the environment.

The cluster uses *mutual* TLS with a dedicated certificate authority: the
scheduler, the workers and every client (the ``gdask`` coordinator) present a
certificate signed by the cluster CA, and anything else is refused. With TLS
configured, gdask always sets ``require_encryption=True``, so a plain
``tcp://`` address is refused as well rather than silently used.

Where the files come from, first match wins:

1. ``--tls-ca``, ``--tls-cert``, ``--tls-key`` on the ``gdask`` command line;
2. ``GDASK_TLS_CA``, ``GDASK_TLS_CERT``, ``GDASK_TLS_KEY`` in the environment;
3. Dask's own configuration (``distributed.comm.tls.*`` and
   ``distributed.comm.require-encryption``, e.g. ``deploy/dask.yaml`` or the
   ``DASK_DISTRIBUTED__COMM__TLS__CA_FILE``-style variables), which
   `distributed.Client` reads when gdask passes no security at all.

``make_certificates`` writes a CA and one certificate for a cluster (tests,
docker-compose, a laptop); production clusters take theirs from a
Kubernetes Secret or cert-manager (see ``docs/deployment.md``).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from gdask.errors import ConfigError

__all__ = [
    "TLS_ENV",
    "tls_security",
    "security_from_env",
    "resolve_security",
    "make_certificates",
]

#: Environment variables read by :func:`security_from_env`, by option name.
TLS_ENV = {"ca": "GDASK_TLS_CA", "cert": "GDASK_TLS_CERT", "key": "GDASK_TLS_KEY"}


def tls_security(
    ca: str | Path,
    cert: str | Path,
    key: str | Path | None = None,
    *,
    require_encryption: bool = True,
):
    """A `distributed.Security` for a client (and, identically, a scheduler or worker).

    Parameters
    ----------
    ca : path
        PEM file of the cluster's certificate authority.
    cert : path
        PEM certificate of this process, signed by ``ca``.
    key : path, optional
        PEM private key of ``cert`` (omit if it is appended to ``cert``).
    require_encryption : bool
        Refuse any unencrypted (``tcp://``) communication (default True).

    Raises
    ------
    ConfigError
        If a file does not exist; the error names the option.
    """
    from distributed import Security

    files = {"ca": ca, "cert": cert} | ({"key": key} if key else {})
    for name, path in files.items():
        if not Path(path).is_file():
            raise ConfigError(f"TLS {name} file not found", file=str(path), field=f"--tls-{name}")
    paths = {k: str(Path(v).resolve()) for k, v in files.items()}
    kwargs = {
        "tls_ca_file": paths["ca"],
        "tls_client_cert": paths["cert"],
        "tls_scheduler_cert": paths["cert"],
        "tls_worker_cert": paths["cert"],
    }
    if "key" in paths:
        kwargs |= {
            "tls_client_key": paths["key"],
            "tls_scheduler_key": paths["key"],
            "tls_worker_key": paths["key"],
        }
    return Security(require_encryption=require_encryption, **kwargs)


def resolve_security(
    ca: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
):
    """Security from explicit files, else from ``GDASK_TLS_*``, else None.

    None means "let `distributed` use Dask's configuration" (plain TCP unless
    the Dask config enables TLS). Explicit files and environment variables are
    not mixed: if any file is given explicitly, only explicit files are used.

    Raises
    ------
    ConfigError
        If only some of CA and certificate are given, or a file is missing.
    """
    if ca or cert or key:
        source = {"ca": ca, "cert": cert, "key": key}
        how = "--tls-{}"
    else:
        env = os.environ if environ is None else environ
        source = {k: env.get(v) or None for k, v in TLS_ENV.items()}
        how = "$GDASK_TLS_{}"
        if not any(source.values()):
            return None
    missing = [
        how.format(k.upper() if how.startswith("$") else k) for k in ("ca", "cert") if not source[k]
    ]
    if missing:
        raise ConfigError(
            "TLS needs the cluster CA and this process's certificate: missing "
            + " and ".join(missing),
            field=missing[0],
        )
    return tls_security(source["ca"], source["cert"], source["key"])


def security_from_env(environ: Mapping[str, str] | None = None):
    """Security from ``GDASK_TLS_CA``/``GDASK_TLS_CERT``/``GDASK_TLS_KEY``, or None if unset."""
    return resolve_security(environ=os.environ if environ is None else environ)


def make_certificates(
    directory: str | Path,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    *,
    days: int = 365,
    name: str = "gdask",
) -> dict[str, Path]:
    """Write a cluster CA and one certificate signed by it (``ca.crt``, ``tls.crt``, ``tls.key``).

    Every member of the cluster may use the same certificate (Dask checks
    the chain, not the host name); ``hosts`` become subject alternative
    names so the certificate also works where host names are checked.
    Needs the ``cryptography`` package (``pip install gdask[deploy]``).

    Returns
    -------
    dict
        ``{"ca": ..., "cert": ..., "key": ..., "ca_key": ...}`` paths.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} cluster CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def pem_key(k) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    paths = {
        "ca": out / "ca.crt",
        "cert": out / "tls.crt",
        "key": out / "tls.key",
        "ca_key": out / "ca.key",
    }
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for which, k in (("key", key), ("ca_key", ca_key)):
        paths[which].write_bytes(pem_key(k))
        paths[which].chmod(0o600)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gdask.security DIR [--host NAME ...]``: write a CA and a cluster certificate."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m gdask.security", description=main.__doc__)
    p.add_argument("directory", help="output folder (ca.crt, ca.key, tls.crt, tls.key)")
    p.add_argument(
        "--host",
        action="append",
        default=None,
        help="subject alternative name (repeatable; default localhost, 127.0.0.1)",
    )
    p.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    args = p.parse_args(argv)
    paths = make_certificates(
        args.directory, args.host or ("localhost", "127.0.0.1"), days=args.days
    )
    for which, path in paths.items():
        print(f"{which:>6}: {path}")
    print("keep ca.key offline: it signs new cluster members")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

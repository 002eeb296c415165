"""The OPC UA server's application instance certificate, generated on first start.

OPC 10000-6 §6.2.2 asks an application instance certificate for: an RSA key (2048 bits for
Basic256Sha256, OPC 10000-7 "Security Policy Basic256Sha256"), a SHA-256 signature, the
application URI as a URI in subjectAltName (plus the host names), keyUsage digitalSignature,
nonRepudiation, keyEncipherment, dataEncipherment, and extendedKeyUsage serverAuth and
clientAuth. Built with the ``cryptography`` package.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path
from typing import Final

__all__ = ["SILA_UUID_OID", "ensure_certificate", "ensure_tls_certificate", "make_certificate"]

#: the certificate extension that carries a SiLA server's UUID (SiLA 2 Part B)
SILA_UUID_OID: Final = "1.3.6.1.4.1.58583"


def make_certificate(
    application_uri: str,
    common_name: str,
    hosts: list[str],
    *,
    days: int = 3650,
    pem: bool = False,
    sila_uuid: str = "",
) -> tuple[bytes, bytes]:
    """A self-signed application certificate: (DER certificate, PEM private key); ``pem``:
    the certificate in PEM, marked as its own CA so a TLS client can take it as its root (the
    SiLA 2 server's gRPC channel); ``sila_uuid``: the SiLA server UUID in the extension
    1.3.6.1.4.1.58583 (SiLA 2 Part B, "Server Certificate": the UUID as ASCII)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgectl"),
        ]
    )
    alt: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for h in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            alt.append(x509.DNSName(h))
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=pem, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=pem,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if sila_uuid:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(SILA_UUID_OID), sila_uuid.encode("ascii")
            ),
            critical=False,
        )
    cert = builder.sign(key, hashes.SHA256())
    der = cert.public_bytes(serialization.Encoding.PEM if pem else serialization.Encoding.DER)
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return der, pem_key


def ensure_certificate(
    pki: Path, application_uri: str, common_name: str, hosts: list[str]
) -> tuple[Path, Path]:
    """The server's (certificate, key) files in ``pki``, generated when absent; the key file
    is created 0600. The ``trusted/`` folder for client certificates is created too."""
    pki.mkdir(parents=True, exist_ok=True)
    (pki / "trusted").mkdir(exist_ok=True)
    cert_path, key_path = pki / "server_cert.der", pki / "server_key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    der, pem = make_certificate(application_uri, common_name, hosts)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    cert_path.write_bytes(der)
    return cert_path, key_path


def ensure_tls_certificate(
    pki: Path, common_name: str, hosts: list[str], sila_uuid: str
) -> tuple[bytes, bytes]:
    """The SiLA 2 server's TLS (PEM certificate, PEM key) in ``pki``, generated when absent
    (or when it does not carry ``sila_uuid``)."""
    from cryptography import x509

    pki.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = pki / "server_cert.pem", pki / "server_key.pem"
    fresh = cert_path.exists() and key_path.exists()
    if fresh:
        try:
            ext = x509.load_pem_x509_certificate(cert_path.read_bytes()).extensions
            got = ext.get_extension_for_oid(x509.ObjectIdentifier(SILA_UUID_OID)).value
            fresh = getattr(got, "value", b"") == sila_uuid.encode()
        except (ValueError, x509.ExtensionNotFound):
            fresh = False
    if not fresh:
        cert, key = make_certificate(
            f"urn:edgectl:{common_name}", common_name, hosts, pem=True, sila_uuid=sila_uuid
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        cert_path.write_bytes(cert)
    return cert_path.read_bytes(), key_path.read_bytes()

"""TLS for the SMTP listener: the configured certificate and key, or a self-signed pair."""

from __future__ import annotations

import ipaddress
import logging
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.config import SmtpSettings
from gateway.errors import ConfigError

log = logging.getLogger("mail2sms.smtp")

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SELF_SIGNED_DAYS = 365


def server_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    """The context STARTTLS uses, None when it is off; an unusable file is a ConfigError."""
    if not settings.starttls:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if not settings.tls_cert:
        cert_pem, key_pem = self_signed(certificate_names(settings.host))
        _load(context, cert_pem, key_pem)
        fingerprint = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256())
        log.info("STARTTLS with a self-signed certificate, SHA-256 %s", fingerprint.hex(":"))
        return context
    _check_files(settings)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"smtp.tls_key: {settings.tls_key} does not go with the certificate in "
            f"smtp.tls_cert {settings.tls_cert} ({exc.reason}); give the key of that certificate"
        ) from None
    return context


def certificate_names(host: str) -> tuple[str, ...]:
    """Loopback names, and the listening host unless it means every interface."""
    unspecified = host in ("", "0.0.0.0", "::")
    return LOOPBACK_NAMES if unspecified or host in LOOPBACK_NAMES else (*LOOPBACK_NAMES, host)


def self_signed(names: tuple[str, ...]) -> tuple[bytes, bytes]:
    """A certificate for `names` (DNS names or IP addresses) and its key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.now(UTC)  # the real time: a frozen gateway clock must not expire it
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{key}: cannot read {path} ({exc.strerror}); give a readable PEM file"
        ) from None


def _check_files(settings: SmtpSettings) -> None:
    """Name the file at fault before OpenSSL answers in its own words."""
    cert_pem = _read(settings.tls_cert, "smtp.tls_cert")
    key_pem = _read(settings.tls_key, "smtp.tls_key")
    try:
        x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise ConfigError(
            f"smtp.tls_cert: {settings.tls_cert} holds no PEM certificate "
            "(-----BEGIN CERTIFICATE-----)"
        ) from None
    try:
        serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            f"smtp.tls_key: {settings.tls_key} holds no unencrypted PEM private key "
            "(-----BEGIN PRIVATE KEY-----)"
        ) from None


def _load(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    # OpenSSL reads certificates and keys from files only: a private directory, gone at once.
    with tempfile.TemporaryDirectory(prefix="mail2sms-tls-") as directory:
        cert_file, key_file = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        context.load_cert_chain(cert_file, key_file)

"""The STARTTLS certificate: given PEM files checked with errors naming the key, or self-signed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import SmtpSettings
from gateway.errors import ConfigError
from gateway.tls import certificate_names, self_signed, server_context


@pytest.fixture
def pem_files(tmp_path: Path) -> tuple[Path, Path]:
    cert_pem, key_pem = self_signed(("localhost",))
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    return tmp_path / "cert.pem", tmp_path / "key.pem"


def _settings(cert: Path, key: Path) -> SmtpSettings:
    return SmtpSettings(starttls=True, tls_cert=str(cert), tls_key=str(key))


def test_no_context_when_starttls_is_off() -> None:
    assert server_context(SmtpSettings()) is None


def test_given_files_make_a_context(pem_files: tuple[Path, Path]) -> None:
    assert server_context(_settings(*pem_files)) is not None


def test_one_file_holding_certificate_and_key_serves_as_both(
    pem_files: tuple[Path, Path], tmp_path: Path
) -> None:
    both = tmp_path / "both.pem"
    both.write_bytes(pem_files[0].read_bytes() + pem_files[1].read_bytes())
    assert server_context(_settings(both, both)) is not None


def test_a_missing_certificate_names_tls_cert(pem_files: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match=r"^smtp\.tls_cert: cannot read .*nope\.pem"):
        server_context(_settings(pem_files[0].with_name("nope.pem"), pem_files[1]))


def test_an_unreadable_key_names_tls_key(pem_files: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match=r"^smtp\.tls_key: cannot read"):
        server_context(_settings(pem_files[0], pem_files[1].parent))  # a directory


def test_a_certificate_that_is_not_pem_names_tls_cert(pem_files: tuple[Path, Path]) -> None:
    pem_files[0].write_text("hello\n")
    with pytest.raises(ConfigError, match=r"^smtp\.tls_cert: .* holds no PEM certificate"):
        server_context(_settings(*pem_files))


def test_a_key_that_is_not_pem_names_tls_key(pem_files: tuple[Path, Path]) -> None:
    pem_files[1].write_bytes(pem_files[0].read_bytes())  # a certificate where the key should be
    with pytest.raises(ConfigError, match=r"^smtp\.tls_key: .* holds no unencrypted PEM"):
        server_context(_settings(*pem_files))


def test_the_key_of_another_certificate_names_tls_key(
    pem_files: tuple[Path, Path], tmp_path: Path
) -> None:
    other = tmp_path / "other-key.pem"
    other.write_bytes(self_signed(("localhost",))[1])
    with pytest.raises(ConfigError, match=r"^smtp\.tls_key: .* does not go with the certificate"):
        server_context(_settings(pem_files[0], other))


def test_self_signed_names_add_the_listening_host() -> None:
    assert certificate_names("192.0.2.7") == ("localhost", "127.0.0.1", "::1", "192.0.2.7")
    assert certificate_names("mail.test") == ("localhost", "127.0.0.1", "::1", "mail.test")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "127.0.0.1", "localhost"])
def test_self_signed_names_are_the_loopback_ones_for_these_hosts(host: str) -> None:
    assert certificate_names(host) == ("localhost", "127.0.0.1", "::1")


def test_serve_with_an_unusable_certificate_exits_2_on_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        "[smtp]\nport = 0\nstarttls = true\n"
        f"tls_cert = '{tmp_path / 'nope.pem'}'\ntls_key = '{tmp_path / 'nope.pem'}'\n"
        f"[http]\nport = 0\n[database]\nurl = 'sqlite+aiosqlite:///{tmp_path / 'g.db'}'\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("mail2sms:")]
    assert errors == [
        f"mail2sms: smtp.tls_cert: cannot read {tmp_path / 'nope.pem'} "
        "(No such file or directory); give a readable PEM file"
    ]
    assert "Traceback" not in done.stderr

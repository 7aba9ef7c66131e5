"""Settings: file, environment overrides, and errors that name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_is_valid_and_matches_the_defaults() -> None:
    assert load_settings(ROOT / "config.example.toml", environ={}) == load_settings(environ={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[smtp]\nport = 2600\n")
    settings = load_settings(path, environ={"MAIL2SMS_SMTP__PORT": "2700"})
    assert settings.smtp.port == 2700


def test_environment_takes_json_for_lists() -> None:
    env = {"MAIL2SMS_SMTP__GATEWAY_ADDRESSES": '["a@b.fr", "C@D.fr"]'}
    assert load_settings(environ=env).smtp.gateway_addresses == ("a@b.fr", "c@d.fr")


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[smtp]\nprot = 1\n", "smtp.prot"),
        ("[smtp]\nport = 'abc'\n", "smtp.port"),
        ("[smtp]\nport = 70000\n", "smtp.port"),
        ("[database]\nurl = 'mysql://x'\n", "database.url"),
        ("[clock]\nfixed = '2026-11-29T21:00:00'\n", "clock.fixed"),
        ("[number_plan]\n'6' = 'mobile'\n", "number_plan"),
        ("[number_plan]\n'0612' = 'landline'\n", "number_plan.0612"),
        ("[[accounts]]\nkeyid = 'a'\ncredit = -1\n", "accounts.0.credit"),
        ("[[accounts]]\nkeyid = 'a'\nallowed_ips = ['nope']\n", "accounts.0.allowed_ips"),
        ("[[accounts]]\nkeyid = 'a'\n[[accounts]]\nkeyid = 'a'\n", "appears twice"),
        ("[unknown]\nx = 1\n", "unknown"),
        ("[smtp]\nstarttls = true\ntls_cert = 'c.pem'\n", "smtp.tls_cert and smtp.tls_key"),
        ("[smtp]\nstarttls = true\ntls_key = 'k.pem'\n", "smtp.tls_cert and smtp.tls_key"),
        ("[smtp]\ntls_cert = 'c.pem'\ntls_key = 'k.pem'\n", "smtp.starttls = true"),
        ("[smtp]\nauth = 'yes'\n", "smtp.auth"),
        ("[smtp]\nauth_required = true\n", 'smtp.auth_required = true needs smtp.auth = "any"'),
    ],
)
def test_bad_file_names_the_key(tmp_path: Path, toml: str, named: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(path, environ={})


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("MAIL2SMS_SMTPX__PORT", "unknown section 'smtpx'"),
        ("MAIL2SMS_SMTP__PROT", "unknown key smtp.prot"),
    ],
)
def test_bad_environment_names_the_variable(name: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ={name: "1"})


def test_environment_ignores_mail2sms_variables_not_of_the_section_key_form() -> None:
    env = {"MAIL2SMS_HOME": "/home/app", "MAIL2SMS_TOKEN": "t", "MAIL2SMS_ADMIN_TOKEN": "s"}
    assert load_settings(environ=env) == load_settings(environ={})


def test_environment_sets_a_whole_section_as_json() -> None:
    env = {"MAIL2SMS_ACCOUNTS": '[{"keyid": "a"}, {"keyid": "b"}]'}
    assert [a.keyid for a in load_settings(environ=env).accounts] == ["a", "b"]


def test_several_bad_keys_are_named_on_one_line() -> None:
    env = {"MAIL2SMS_SMTP__PORT": "x", "MAIL2SMS_HTTP__PORT": "y"}
    with pytest.raises(ConfigError) as raised:
        load_settings(environ=env)
    assert "\n" not in str(raised.value)
    assert "smtp.port" in str(raised.value) and "http.port" in str(raised.value)


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_command_line_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[http]\nport = 'x'\n")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(path), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "http.port" in done.stderr


@pytest.mark.parametrize(
    "fixed", ["0001-01-02T00:00:00+00:00", "1969-12-31T23:59:59Z", "9999-12-31T23:00:00-05:00"]
)
def test_a_fixed_clock_outside_1970_to_9999_names_clock_fixed(fixed: str) -> None:
    with pytest.raises(ConfigError, match=r"clock\.fixed.*1970"):
        load_settings(overrides={"clock": {"fixed": fixed}}, environ={})


@pytest.mark.parametrize(
    ("section", "values", "named"),
    [
        ("http", {"max_streams": 0}, "http.max_streams"),
        ("http", {"allowed_hosts": ["http://sandbox.example"]}, "http.allowed_hosts"),
        ("http", {"allowed_hosts": ["sandbox.example:8025"]}, "http.allowed_hosts"),
        ("accounts", [{"keyid": "a", "credit": 2**63}], "accounts.0.credit"),
        ("accounts", [{"keyid": "a", "rate_limit": 2**31}], "accounts.0.rate_limit"),
        ("accounts", [{"keyid": "k" * 65}], "accounts.0.keyid"),
        ("accounts", [{"keyid": "a", "company": "nul\x00"}], "accounts.0.company"),
    ],
)
def test_bad_http_and_account_values_name_the_key(section: str, values: Any, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(overrides={section: values}, environ={})


def test_account_text_limits_are_the_columns_lengths() -> None:
    from gateway.config import AccountSettings
    from gateway.store.tables import accounts

    for name, field in AccountSettings.model_fields.items():
        column = accounts.c[name]
        length = getattr(column.type, "length", None)
        if length is not None:
            limits = [m.max_length for m in field.metadata if hasattr(m, "max_length")]
            assert limits == [length], name

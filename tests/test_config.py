"""Settings: file, environment overrides, and errors that name the key."""

from __future__ import annotations

import importlib.util
import re
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
        ("[smtp]\nmax_message_size = 2048\nmax_inflight_bytes = 1024\n", "smtp.max_inflight"),
        ("[smtp]\nmax_message_size = 67108864\n", "must be at least smtp.max_message_size"),
        ("[smtp]\nmax_session_seconds = 0\n", "smtp.max_session_seconds"),
        ("[smtp]\nmax_recipients_per_session = 0\n", "smtp.max_recipients_per_session"),
        ("[smtp]\nauth_required = true\n", 'smtp.auth_required = true needs smtp.auth = "any"'),
        ("[runtime]\nevent_loop = 'trio'\n", "runtime.event_loop"),
    ],
)
def test_bad_file_names_the_key(tmp_path: Path, toml: str, named: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(path, environ={})


def test_uvloop_named_where_it_is_not_installed_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a)
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"MAIL2SMS_RUNTIME__EVENT_LOOP": "uvloop"})
    assert str(refused.value) == (
        "invalid configuration: runtime.event_loop (MAIL2SMS_RUNTIME__EVENT_LOOP): "
        'uvloop is not installed (it has no Windows build): pip install uvloop, or set "asyncio"'
    )
    assert load_settings(environ={}).runtime.event_loop == "asyncio"


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("MAIL2SMS_SMTPX__PORT", "unknown section 'smtpx'; did you mean MAIL2SMS_SMTP__PORT?"),
        ("MAIL2SMS_QWERTY__PORT", "unknown section 'qwerty'; use MAIL2SMS_<SECTION>__<KEY>"),
        ("MAIL2SMS_SMTP__PROT", "unknown key smtp.prot; did you mean MAIL2SMS_SMTP__PORT?"),
        ("MAIL2SMS_SMTP__QWERTY", "unknown key smtp.qwerty; known keys: ['auth', "),
    ],
)
def test_bad_environment_names_the_variable(name: str, named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"environment variable {name}: {named}")):
        load_settings(environ={name: "1"})


# Errors in plain words, naming the key and where it was set ---------------------------------


def _error(toml: str, path: Path, environ: dict[str, str] | None = None) -> str:
    path.write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ=environ or {})
    return str(raised.value)


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ("[smtp]\nport = 'abc'\n", "smtp.port (c.toml): a whole number (got 'abc')"),
        ("[smtp]\ntimeout = 'x'\n", "smtp.timeout (c.toml): a number (got 'x')"),
        ("[smtp]\nstarttls = 'maybe'\n", "smtp.starttls (c.toml): true or false (got 'maybe')"),
        ("[smtp]\nhost = 5\n", "smtp.host (c.toml): a string, in quotes (got 5)"),
        (
            "[smtp]\ngateway_addresses = 'a@b.fr'\n",
            'smtp.gateway_addresses (c.toml): a list of strings, e.g. ["a", "b"] (got \'a@b.fr\')',
        ),
        ("smtp = 5\n", "smtp (c.toml): a table of key = value (got 5)"),
        ("[smtp]\nport = 70000\n", "smtp.port (c.toml): at most 65535 (got 70000)"),
        ("[smtp]\ntimeout = 0\n", "smtp.timeout (c.toml): more than 0 (got 0)"),
        (
            "[smtp]\nauth = 'yes'\n",
            "smtp.auth (c.toml): one of 'off', 'any' or 'accounts' (got 'yes')",
        ),
        ("[[accounts]]\ncredit = 1\n", "accounts.0.keyid (c.toml): required"),
        ("[[accounts]]\nkeyid = ''\n", "accounts.0.keyid (c.toml): must not be empty (got '')"),
        ("accounts = 5\n", "accounts (c.toml): a list of [[accounts]] tables (got 5)"),
    ],
)
def test_a_wrong_value_is_said_in_plain_words(tmp_path: Path, toml: str, said: str) -> None:
    assert _error(toml, tmp_path / "c.toml") == f"invalid configuration: {said}".replace(
        "c.toml", str(tmp_path / "c.toml")
    )


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ("[smtp]\nprot = 1\n", "smtp.prot: unknown key, did you mean smtp.port?"),
        ("[smpt]\nport = 1\n", "smpt: unknown section, did you mean smtp?"),
        (
            "[[accounts]]\nkeyid = 'a'\ncredits = 5\n",
            "accounts.0.credits: unknown key, did you mean accounts.0.credit?",
        ),
        ("[clock]\nqwerty = 1\n", "clock.qwerty: unknown key; known: fixed"),
    ],
)
def test_an_unknown_key_in_a_file_suggests_the_closest_known_one(
    tmp_path: Path, toml: str, said: str
) -> None:
    key, _, problem = said.partition(": ")
    assert f"{key} ({tmp_path / 'c.toml'}): {problem}" in _error(toml, tmp_path / "c.toml")


def test_a_wrong_value_from_the_environment_names_its_variable(tmp_path: Path) -> None:
    error = _error("[smtp]\nport = 'x'\n", tmp_path / "c.toml", {"MAIL2SMS_HTTP__PORT": "y"})
    assert "http.port (MAIL2SMS_HTTP__PORT): a whole number (got 'y')" in error
    assert f"smtp.port ({tmp_path / 'c.toml'}): a whole number (got 'x')" in error


def test_a_wrong_override_is_named_without_an_origin() -> None:
    with pytest.raises(ConfigError, match=r"^invalid configuration: stop\.txt: unknown key"):
        load_settings(overrides={"stop": {"txt": "x"}}, environ={})


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


# Account items: what the rules can compare, for the file, the API and the CLI alike --------


def _account(**fields: object) -> dict[str, object]:
    settings = load_settings(overrides={"accounts": [{"keyid": "a", **fields}]}, environ={})
    return settings.accounts[0].model_dump()


def test_account_items_are_kept_as_the_rules_compare_them() -> None:
    account = _account(
        domains=[" Acme.TEST ", "société.fr"],
        senders=[" MaSociete ", "ACME 2"],
        allowed_ips=[" 10.0.0.0/8 "],
        blacklist=["06 01 02 03 04", "+33 (0)7 01 02 03 04", "0033601020305", "+44 20 7183 8750"],
    )
    assert account["domains"] == ("acme.test", "société.fr")
    assert account["senders"] == ("MaSociete", "ACME 2")
    assert account["allowed_ips"] == ("10.0.0.0/8",)
    assert account["blacklist"] == ("0601020304", "0701020304", "0601020305", "+442071838750")


@pytest.mark.parametrize(
    ("field", "item", "said"),
    [
        ("domains", "acme test", "'acme test' is not a domain name, e.g. example.com"),
        ("domains", "app@acme.test", "'app@acme.test' is not a domain name"),
        ("domains", "acme..test", "'acme..test' is not a domain name"),
        ("domains", "-acme.test", "'-acme.test' is not a domain name"),
        ("domains", "", "'' is not a domain name"),
        ("senders", "ABC", "'ABC' is not a sender id: 4 to 11 letters, digits or spaces"),
        ("senders", "MaSocieteXYZ", "'MaSocieteXYZ' is not a sender id"),
        ("senders", "0601020304", "'0601020304' is not a sender id"),
        ("senders", "Café", "'Café' is not a sender id"),
        ("blacklist", "12", "'12' is not a phone number: 10 digits starting with 0, or +"),
        ("blacklist", "06010203045", "'06010203045' is not a phone number"),
        ("blacklist", "", "'' is not a phone number"),
        ("allowed_ips", "10.0.0.300", "'10.0.0.300' is not an IP address or network"),
    ],
)
def test_a_malformed_account_item_in_a_file_names_it(
    tmp_path: Path, field: str, item: str, said: str
) -> None:
    error = _error(f"[[accounts]]\nkeyid = 'a'\n{field} = ['{item}']\n", tmp_path / "c.toml")
    assert error.startswith(f"invalid configuration: accounts.0.{field} ({tmp_path / 'c.toml'}): ")
    assert said in error


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

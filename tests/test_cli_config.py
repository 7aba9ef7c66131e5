"""`mail2sms config` (gateway/cli/config.py): the effective settings as TOML, run as users do."""

from __future__ import annotations

import tomllib
from pathlib import Path

from gateway.config import load_settings
from tests.test_cli_main import _run


def _printed(cwd: Path, *args: str, **variables: str) -> str:
    done = _run(cwd, *args, "config", **variables)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


def test_config_prints_every_default_as_toml_that_loads_back(tmp_path: Path) -> None:
    printed = tmp_path / "printed.toml"
    printed.write_text(_printed(tmp_path))
    assert load_settings(printed, environ={}) == load_settings(environ={})


def test_config_names_the_file_or_variable_of_each_given_setting(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[smtp]\nport = 2600\n[hlr]\n"+44" = "VODA"\n')
    lines = _printed(tmp_path, "--config", "c.toml", MAIL2SMS_HTTP__PORT="9000").splitlines()
    assert "port = 2600                               # c.toml" in lines
    assert "port = 9000                               # MAIL2SMS_HTTP__PORT" in lines
    assert '"+44" = "VODA"                            # c.toml' in lines
    assert 'host = "127.0.0.1"' in lines  # a default: no comment


def test_config_hides_the_passwords_and_tokens_given(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        '[http]\nadmin_token = "t0ken"\n[database]\nurl = "postgresql+asyncpg://u:pw@h/db"\n'
        '[[accounts]]\nkeyid = "a"\npassword = "s3cret"\n'
    )
    printed = _printed(tmp_path, "--config", "c.toml")
    assert "t0ken" not in printed and "s3cret" not in printed and ":pw@" not in printed
    shown = tomllib.loads(printed)
    assert shown["http"]["admin_token"] == shown["accounts"][0]["password"] == "***"
    assert shown["database"]["url"] == "postgresql+asyncpg://u:***@h/db"


def test_config_with_no_accounts_loads_back_without_the_demo(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("accounts = []\n")
    printed = tmp_path / "printed.toml"
    printed.write_text(_printed(tmp_path, "--config", "c.toml"))
    assert load_settings(printed, environ={}).accounts == ()

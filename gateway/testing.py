"""The pytest plugin for our users: a real gateway in-process on free loopback ports (SPEC §14).

Installing the package registers it (entry point `pytest11`); a test asks for a fixture:

    def test_welcome_sms(mail2sms_gateway):
        my_app.sign_up("0601020304")   # emails sendsms@… at smtp_host:smtp_port
        (sms,) = mail2sms_gateway.wait_for_sms(to="0601020304")
        assert sms["text"].startswith("Bienvenue")

`mail2sms_gateway` is a fresh gateway per test; `mail2sms_gateway_session` is one gateway for
the session, reset before each test; `@pytest.mark.mail2sms(config={...})` overrides settings
for one test's `mail2sms_gateway`. The provider's HTTP API is at `http_api_url`.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pytest

from gateway import runtime
from gateway.client import request_email, submit, wait_for_items
from gateway.config import Settings, load_settings
from gateway.core.model import ReplyKind
from gateway.errors import ConfigError
from gateway.web.models import MAX_LIMIT, MAX_WAIT

__all__ = ["FIXTURE_CLOCK", "RunningGateway", "fixture_settings"]

FIXTURE_CLOCK = "2026-12-01T10:00:00+01:00"  # a Tuesday, business hours, Paris
DEFAULT_SENDER = "app@example.com"  # a sender of the demo account's domain
_T = TypeVar("_T")
Item = dict[str, Any]


def _hide_from_tracebacks(info: pytest.ExceptionInfo[BaseException] | None) -> bool:
    """A failure the plugin raises on purpose (a wait that timed out, an API refusal) is the
    test's: its traceback stops at the test's own line. Any other exception is ours: its
    frames stay, to be reported."""
    return info is not None and info.errisinstance((AssertionError, ValueError))


# pytest reads `__tracebackhide__` in each frame's locals, then its module's globals: so it
# applies to every function of this module.
__tracebackhide__ = _hide_from_tracebacks


def fixture_settings(database: Path, config: Mapping[str, Any] | None = None) -> Settings:
    """The plugin's settings: free loopback ports, SQLite at `database`, the clock frozen at
    FIXTURE_CLOCK, replies kept (no relay), the demo account; `config` overrides them
    section by section. MAIL2SMS_* environment variables are ignored."""
    base: dict[str, Any] = {
        "smtp": {"host": "127.0.0.1", "port": 0},
        "http": {"host": "127.0.0.1", "port": 0},
        "database": {"url": f"sqlite+aiosqlite:///{database}"},
        "clock": {"fixed": FIXTURE_CLOCK},
        "relay": {"host": ""},
    }
    for section, values in (config or {}).items():
        if isinstance(values, Mapping) and isinstance(base.get(section), dict):
            base[section] = {**base[section], **values}
        else:
            base[section] = values
    return load_settings(overrides=base, environ={})


class RunningGateway:
    """A gateway on its own event loop in a background thread, driven from any test.

    Where to send: `smtp_host`, `smtp_port`, `address` (the gateway address to mail),
    `keyid` (the first configured account's, `demo` by default); the provider's HTTP API at
    `http_api_url` (the base URL of its clients, ".../cgi-bin"); our API at `api_url`.
    Lists return the API's items, newest first. Usable as a context manager.
    """

    def __init__(self, settings: Settings) -> None:
        from gateway.app import Gateway

        self.settings = settings
        self.gateway = Gateway(settings)
        self._loop = runtime.loop_factory(settings.runtime.event_loop)()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mail2sms", daemon=True)
        self._thread.start()
        try:
            self._call(self.gateway.start(), timeout=60)
        except BaseException:
            self._halt()
            raise
        self.smtp_host: str = settings.smtp.host
        self.smtp_port: int = self.gateway.smtp_port
        self.api_url = f"http://{settings.http.host}:{self.gateway.http_port}"
        self.http_api_url = f"{self.api_url}/cgi-bin"
        self.address: str = settings.smtp.gateway_addresses[0]
        self.keyid: str = settings.accounts[0].keyid if settings.accounts else ""
        # Writes are JSON (SPEC §16), the bodiless DELETEs included.
        self._http = httpx.Client(
            base_url=self.api_url,
            timeout=MAX_WAIT + 10,
            headers={"Content-Type": "application/json"},
        )
        self._stopped = False

    def _call(self, coroutine: Coroutine[Any, Any, _T], timeout: float = 30) -> _T:
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout)

    def stop(self) -> None:
        """Stop the gateway and its thread (once; later calls do nothing)."""
        if self._stopped:
            return
        self._stopped = True
        self._http.close()
        try:
            self._call(self.gateway.stop(), timeout=30)
        finally:
            self._halt()

    def _halt(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Sending ---------------------------------------------------------------------------

    def send(self, message: bytes | str | EmailMessage, *, mail_from: str | None = None) -> str:
        """Send one email to the gateway address over SMTP and return the server's answer
        ("250 2.0.0 OK: applied as email N": the email and its SMS and replies are
        committed). A refusal raises smtplib's exception (SMTPDataError for 451,
        SMTPSenderRefused for 552, …). The envelope sender is `mail_from`, else the
        address of the From: header."""
        if isinstance(message, EmailMessage):
            raw = message.as_bytes()
        elif isinstance(message, str):
            raw = message.encode("utf-8")
        else:
            raw = message
        if mail_from is None:
            header = BytesHeaderParser().parsebytes(raw).get("From", "")
            mail_from = parseaddr(str(header))[1] or DEFAULT_SENDER
        return submit(self.smtp_host, self.smtp_port, mail_from, self.address, raw)

    def request_email(
        self,
        body: str,
        *,
        sender: str = DEFAULT_SENDER,
        attachments: Sequence[tuple[str, bytes]] = (),
    ) -> EmailMessage:
        """A plain-text request email to the gateway, as an application writes it;
        `attachments` are (filename, content) pairs, e.g. ("mobiles.csv", b"0601020304")."""
        return request_email(body, sender=sender, to=self.address, attachments=attachments)

    # Reading ---------------------------------------------------------------------------

    def sms(self, **filters: Any) -> list[Item]:
        """The SMS sent, newest first; filters: to, account, tracker, email_id, channel ("mail"
        or "http": the provider's HTTP API) (and limit, offset)."""
        return self._list("sms", filters)

    def emails(self, **filters: Any) -> list[Item]:
        """The inbound emails, newest first, with status, reason, code and results;
        filters: status, email_id, account."""
        return self._list("emails", filters)

    def replies(self, **filters: Any) -> list[Item]:
        """The Ack and Not replies, newest first, with their XML `body`; filters: kind,
        email_id, to."""
        return self._list("replies", filters)

    def wait_for_sms(self, count: int = 1, timeout: float = 5, **filters: Any) -> list[Item]:
        """The SMS matching `filters` (those of `sms()`) once there are at least `count` (the
        API long-polls, nothing sleeps); AssertionError after `timeout` seconds, telling what
        arrived."""
        items = self._wait("sms", count, timeout, filters)
        if len(items) < count:
            raise AssertionError(
                f"expected {count} SMS matching {filters or 'any'}, got {len(items)} within "
                f"{timeout:g}s{_listed(items, _sms_line)}\n{self._recent_emails()}"
            )
        return items

    def wait_for_reply(self, kind: str, email_id: str | int, timeout: float = 5) -> Item:
        """The newest `kind` ("ack" or "not") reply for `email_id`, waiting for it up to
        `timeout` seconds; AssertionError when none comes, telling what became of the email."""
        if kind not in list(ReplyKind):
            known = " or ".join(repr(k.value) for k in ReplyKind)
            raise ValueError(f"kind: {known} (got {kind!r})")
        filters = {"kind": kind, "email_id": str(email_id)}
        items = self._wait("replies", 1, timeout, filters)
        if not items:
            raise AssertionError(
                f"no {kind} reply for emailId {email_id} within {timeout:g}s\n"
                f"{self._recent_emails()}"
            )
        return items[0]

    # Control ---------------------------------------------------------------------------

    def set_clock(self, instant: str | datetime | None) -> None:
        """Freeze the gateway's clock at an aware instant ("2026-11-29T21:00:00+01:00");
        None lets it run in real time."""
        if instant is None:
            self._checked(self._http.delete("/api/v1/clock"))
            return
        iso = instant.isoformat() if isinstance(instant, datetime) else instant
        self._checked(self._http.put("/api/v1/clock", json={"now": iso}))

    def add_account(self, **fields: Any) -> Item:
        """Create an account (the fields of [[accounts]]: domains, credit, senders, …) and
        return it with its generated keyid, login and password."""
        account: Item = self._checked(self._http.post("/api/v1/accounts", json=fields))
        return account

    def account(self, keyid: str | None = None) -> Item:
        """An account as the API shows it (credit included); the demo account by default."""
        found: Item = self._checked(self._http.get(f"/api/v1/accounts/{keyid or self.keyid}"))
        return found

    def update_account(self, keyid: str | None = None, **fields: Any) -> Item:
        """Change some fields of an account (the demo account by default); returns it."""
        path = f"/api/v1/accounts/{keyid or self.keyid}"
        updated: Item = self._checked(self._http.patch(path, json=fields))
        return updated

    def add_fault(
        self, code: int, count: int = 1, *, number: str | None = None, keyid: str | None = None
    ) -> Item:
        """The next `count` recipients (only `number`'s, only `keyid`'s when given) get the
        annex code `code` instead of being sent."""
        body = {"code": code, "count": count, "number": number, "keyid": keyid}
        fault: Item = self._checked(self._http.post("/api/v1/faults", json=body))
        return fault

    def reset(self) -> None:
        """Back to the start: no SMS, emails, replies or faults, emailIds new again, the clock
        at its starting point, the configured accounts (the demo) as configured, credit too.
        Accounts added by add_account stay."""
        self._checked(self._http.delete("/api/v1/messages"))
        self._checked(self._http.delete("/api/v1/faults"))
        self.set_clock(self.settings.clock.fixed or None)
        for account in self.settings.accounts:
            # login and password stay: empty ones are generated at seeding and never matter.
            fields = account.model_dump(mode="json", exclude={"keyid", "login", "password"})
            self.update_account(account.keyid, **fields)

    # Internals -------------------------------------------------------------------------

    def _list(self, path: str, filters: Mapping[str, Any]) -> list[Item]:
        # The largest page: lists are complete unless a test passes `limit`.
        params = {"limit": MAX_LIMIT, **{k: v for k, v in filters.items() if v is not None}}
        page = self._checked(self._http.get(f"/api/v1/{path}", params=params))
        items: list[Item] = page["items"]
        return items

    def _wait(
        self, path: str, count: int, timeout: float, filters: Mapping[str, Any]
    ) -> list[Item]:
        return wait_for_items(
            lambda waiting: self._list(path, {**filters, **waiting}), count, timeout
        )

    def _checked(self, response: httpx.Response) -> Any:
        """The JSON of a 2xx answer; a 4xx is the caller's mistake: ValueError with the
        API's message (it names the field)."""
        if response.is_client_error:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            request = response.request
            raise ValueError(f"{request.method} {request.url.path}: {message}")
        response.raise_for_status()
        return response.json()

    def _recent_emails(self) -> str:
        emails = self._list("emails", {"limit": 5})
        if not emails:
            return "the gateway received no email"
        return "the gateway's last emails:" + _listed(emails, _email_line)


def _listed(items: Sequence[Item], line: Any) -> str:
    return "".join(f"\n  {line(item)}" for item in items)


def _sms_line(item: Item) -> str:
    return f"SMS to {item['to']} (emailId {item['email_id']}): {item['text']!r}"


def _email_line(item: Item) -> str:
    results = ", ".join(f"{r['tel'] or '-'}: {r['code']}" for r in item.get("results") or [])
    reason = f" — {item['reason']}" if item.get("reason") else ""
    return (
        f"#{item['id']} emailId {item['email_id'] or '-'} from {item['sender']}: {item['status']}"
        f"{reason}" + (f" [{results}]" if results else "")
    )


# The plugin --------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mail2sms(config={...}): settings for the mail2sms_gateway fixture of one test"
    )


def _marker_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("mail2sms")
    if marker is None:
        return {}
    config = marker.kwargs.get("config", {})
    if marker.args or set(marker.kwargs) - {"config"} or not isinstance(config, Mapping):
        pytest.fail(
            "@pytest.mark.mail2sms takes one keyword: config={section: {key: value}}, "
            'e.g. config={"smtp": {"max_message_size": 2048}}',
            pytrace=False,
        )
    return dict(config)


def _started(settings: Callable[[], Settings]) -> RunningGateway:
    """A gateway on these settings; a setting of the marker it cannot use fails the test with
    the one line that names it."""
    try:
        return RunningGateway(settings())
    except ConfigError as exc:
        failure = f"@pytest.mark.mail2sms(config=...): {exc}"
    pytest.fail(failure, pytrace=False)  # out of `except`: no "during handling" traceback


@pytest.fixture
def mail2sms_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    """A fresh gateway for one test: free ports, its own SQLite file, the demo account,
    the clock frozen at FIXTURE_CLOCK, replies kept; `@pytest.mark.mail2sms(config=...)`
    changes its settings."""
    config = _marker_config(request)
    with _started(lambda: fixture_settings(tmp_path / "mail2sms.db", config)) as running:
        yield running


@pytest.fixture(scope="session")
def _mail2sms_session_gateway() -> Iterator[RunningGateway]:
    with (
        tempfile.TemporaryDirectory(prefix="mail2sms-") as folder,
        RunningGateway(fixture_settings(Path(folder) / "mail2sms.db")) as running,
    ):
        yield running


@pytest.fixture
def mail2sms_gateway_session(
    request: pytest.FixtureRequest, _mail2sms_session_gateway: RunningGateway
) -> RunningGateway:
    """One gateway for the whole session (faster), reset before each test (see reset())."""
    if request.node.get_closest_marker("mail2sms") is not None:
        pytest.fail(
            "@pytest.mark.mail2sms configures mail2sms_gateway only; the session gateway is "
            "shared: use mail2sms_gateway in this test",
            pytrace=False,
        )
    _mail2sms_session_gateway.reset()
    return _mail2sms_session_gateway

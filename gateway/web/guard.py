"""Who may use the admin API and the page (SPEC §16): the right Host, the token beyond loopback,
and writes that a browser page from elsewhere cannot forge (JSON only, same Origin)."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.config import HttpSettings, is_loopback
from gateway.web import models
from gateway.web.openapi import WRITE_METHODS

# The provider's API and its short links: authorised by keyid (SPEC §15), bodies read as
# JSON whatever their Content-Type; none of the admin rules apply.
PROVIDER_PREFIXES = ("/cgi-bin/", "/s/")
# Health checks come from orchestrators, by any address, without the token.
OPEN_PATHS = frozenset({"/healthz"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
DEFAULT_PORTS = {"http": "80", "https": "443"}


def _refusal(status: int, error: str, headers: Mapping[str, str] | None = None) -> Response:
    body = models.Error(error=error).model_dump_json(exclude_unset=True)
    return Response(body, status, headers, media_type="application/json")


def host_name(host: str) -> str:
    """The name of a Host header or setting, without its port; IPv6 in brackets, lowercase."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    if host.count(":") > 1:  # a bare IPv6 address, as http.host writes it
        return f"[{host}]"
    return host.partition(":")[0]


class Guard:
    """ASGI middleware in front of every route but the provider's. In order:
    421 when the Host is not one of the gateway's names (DNS rebinding), 401 without the token
    when listening beyond loopback (Bearer, or HTTP Basic with the token as the password),
    then for writes 403 for a foreign Origin and 415 for a body that is not JSON."""

    def __init__(self, app: ASGIApp, settings: HttpSettings) -> None:
        self.app = app
        self.names = LOOPBACK_NAMES | {host_name(settings.host)} | set(settings.allowed_hosts)
        # None: loopback, no token asked. b"": beyond loopback without one: nothing opens.
        self.token = None if is_loopback(settings.host) else settings.admin_token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(PROVIDER_PREFIXES):
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        if scope["path"] in OPEN_PATHS:
            return None
        headers = Headers(scope=scope)
        host = headers.get("host")
        if host is not None and host_name(host) not in self.names:
            return _refusal(
                421,
                f"this gateway does not answer for Host {host!r}; add that name to "
                f"http.allowed_hosts (it answers for {', '.join(sorted(self.names))})",
            )
        if self.token is not None and not self._authorised(headers.get("authorization", "")):
            return _refusal(
                401,
                "this gateway needs its admin token: the header Authorization: Bearer "
                "<http.admin_token>, or HTTP Basic with the token as the password",
                {"WWW-Authenticate": 'Basic realm="mail2sms", charset="UTF-8"'},
            )
        if scope["method"] not in WRITE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, host or ""):
            return _refusal(403, f"a write from another page (Origin {origin!r}) is refused")
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            return _refusal(
                415, "a write's body is JSON: send the header Content-Type: application/json"
            )
        return None

    def _authorised(self, authorization: str) -> bool:
        scheme, _, given = authorization.partition(" ")
        given = given.strip()
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(given, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            given = pair.partition(":")[2]  # any user name; the password is the token
        elif scheme.lower() != "bearer":
            return False
        # An empty configured token never matches: `serve` refuses it, an embedder gets 401s.
        return bool(self.token) and secrets.compare_digest(given.encode(), self.token or b"")


def _same_origin(origin: str, host: str) -> bool:
    """Whether a page at `origin` is the gateway's own, reached as `host` (ports compared,
    a scheme's default port written or not)."""
    parts = urlsplit(origin)
    default = DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.netloc:
        return False
    return _netloc(parts.netloc, default) == _netloc(host, default)


def _netloc(value: str, default_port: str) -> str:
    return value.strip().lower().removesuffix(f":{default_port}")

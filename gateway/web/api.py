"""The HTTP control API (SPEC §11): lists with long-polling, accounts, clock, faults, reset, SSE."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import __version__
from gateway.config import parse_instant
from gateway.core.codes import MESSAGES
from gateway.core.numbers import normalise
from gateway.events import Changes
from gateway.store import accounts, reads
from gateway.store.engine import write_transaction
from gateway.web import openapi, page
from gateway.web.provider import ProviderApi, ProviderDeps
from gateway.web.provider_accounts import ProviderAccounts

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("mail2sms.web")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_TIMEOUT = 30.0
DEFAULT_TIMEOUT = 5.0
# Other replicas write to the same database without waking us: look again this often.
RECHECK = 0.5
HEARTBEAT = 15.0
# Other replicas' writes reach the live page within this delay.
SSE_POLL = 2.0
# A burst of commits becomes one event (and one refetch by the page).
SSE_COALESCE = 0.2
PAGING = ("limit", "offset", "wait_for", "timeout")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The largest integer every backend stores (signed 64 bits), for offsets and counts.
MAX_INT = 2**62


class Refusal(HTTPException):
    """A 4xx answer naming the parameter or field at fault; rendered as JSON."""

    def __init__(self, status_code: int, message: str, field: str | None = None) -> None:
        super().__init__(status_code, message)
        self.field = field


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    body: dict[str, Any] = {"error": exc.detail}
    if isinstance(exc, Refusal) and exc.field is not None:
        body["field"] = exc.field
    return JSONResponse(body, exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "internal error; see the gateway's log"}, 500)


class AdminToken:
    """Writes need `Authorization: Bearer <http.admin_token>` (installed beyond loopback only)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        writes = scope["type"] == "http" and scope["method"] in WRITE_METHODS
        if writes and not self._allowed(scope):
            response = JSONResponse(
                {"error": "this write needs the header Authorization: Bearer <http.admin_token>"},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="mail2sms"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        scheme, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
        # An empty configured token never matches: `serve` refuses it, an embedder gets 401s.
        return (
            bool(self.token)
            and scheme.lower() == "bearer"
            and secrets.compare_digest(given.strip().encode(), self.token)
        )


# Parsing --------------------------------------------------------------------------------------


def _integer(
    params: Mapping[str, str], name: str, default: int | None, low: int, high: int
) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise Refusal(400, f"{name}: must be an integer from {low} to {high} (got {raw!r})", name)
    return value


def _seconds(params: Mapping[str, str], name: str, default: float, high: float) -> float:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= high:  # NaN fails too
        message = f"{name}: must be a number of seconds from 0 to {high:g} (got {raw!r})"
        raise Refusal(400, message, name)
    return value


class ListQuery:
    """The filters and paging of one list request, checked."""

    def __init__(self, request: Request, filters: tuple[str, ...]) -> None:
        params = request.query_params
        for name in params:
            if name not in filters and name not in PAGING:
                known = ", ".join((*filters, *PAGING))
                raise Refusal(400, f"{name}: unknown parameter; known: {known}", name)
        self.filters: dict[str, str] = {f: params[f] for f in filters if params.get(f)}
        self.limit = _integer(params, "limit", DEFAULT_LIMIT, 0, MAX_LIMIT) or 0
        self.offset = _integer(params, "offset", 0, 0, MAX_INT) or 0
        self.wait_for = _integer(params, "wait_for", None, 0, MAX_INT)
        self.timeout = _seconds(params, "timeout", DEFAULT_TIMEOUT, MAX_TIMEOUT)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise Refusal(400, "body: not valid JSON", "body") from None
    if not isinstance(body, dict):
        raise Refusal(400, "body: must be a JSON object", "body")
    return body


def _check_fields(body: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for name in body:
        if name not in known:
            raise Refusal(400, f"{name}: unknown field; known: {', '.join(known)}", name)


def _validation_refusal(exc: ValidationError) -> Refusal:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "body"
    return Refusal(400, f"{field}: {error['msg']} (got {error.get('input')!r})", field)


# The application ------------------------------------------------------------------------------

ListFunction = Callable[..., Awaitable[reads.Page]]


class Api:
    """The endpoints of one gateway; they use its settings, engine, clock, changes and metrics."""

    def __init__(self, gateway: Gateway, closing: asyncio.Event) -> None:
        self.settings = gateway.settings
        self.engine = gateway.engine
        self.clock = gateway.clock
        self.changes: Changes = gateway.changes
        self.metrics = gateway.metrics
        self.closing = closing
        self.provider = ProviderApi(
            ProviderDeps(
                engine=gateway.engine,
                clock=gateway.clock,
                rules=gateway.rules,
                hlr=dict(gateway.settings.hlr),
            )
        )

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics_text, methods=["GET"]),
            Route("/openapi.json", self.openapi_document, methods=["GET"]),
            Route("/api/v1/info", self.info, methods=["GET"]),
            Route("/api/v1/sms", self.list_sms, methods=["GET"]),
            Route("/api/v1/emails", self.list_emails, methods=["GET"]),
            Route("/api/v1/emails/{id:int}/raw", self.email_raw, methods=["GET"], name="email_raw"),
            Route("/api/v1/replies", self.list_replies, methods=["GET"]),
            Route("/api/v1/accounts", self.list_accounts, methods=["GET"]),
            Route("/api/v1/accounts", self.create_account, methods=["POST"]),
            Route("/api/v1/accounts/{keyid}", self.get_account, methods=["GET"]),
            Route("/api/v1/accounts/{keyid}", self.patch_account, methods=["PATCH"]),
            Route("/api/v1/clock", self.get_clock, methods=["GET"]),
            Route("/api/v1/clock", self.set_clock, methods=["PUT"]),
            Route("/api/v1/clock", self.release_clock, methods=["DELETE"]),
            Route("/api/v1/faults", self.list_faults, methods=["GET"]),
            Route("/api/v1/faults", self.add_fault, methods=["POST"]),
            Route("/api/v1/faults", self.clear_faults, methods=["DELETE"]),
            Route("/api/v1/messages", self.reset, methods=["DELETE"]),
            Route("/api/v1/events", self.events, methods=["GET"]),
            *page.routes(),
            *self.provider.routes(),
            *ProviderAccounts(self.provider.deps).routes(),
        ]

    # Lists, with long-polling ---------------------------------------------------------------

    async def _list(
        self, request: Request, topic: str, query: ListQuery, fetch: ListFunction
    ) -> reads.Page:
        """One query; with `wait_for`, again on each change and every RECHECK seconds until
        `total >= wait_for` or the timeout (the answer is the last result, 200 either way)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + query.timeout
        while True:
            seen = self.changes.versions.get(topic, 0)
            async with self.engine.connect() as conn:
                result = await fetch(conn, **query.filters, limit=query.limit, offset=query.offset)
            if query.wait_for is None or result.total >= query.wait_for:
                return result
            recheck = min(deadline, loop.time() + RECHECK)
            if recheck <= loop.time() or self.closing.is_set():
                return result
            # A change during the query counts: compare versions before sleeping.
            while (
                self.changes.versions.get(topic, 0) == seen and (left := recheck - loop.time()) > 0
            ):
                await self.changes.wait(left)
            if await request.is_disconnected():
                return result

    async def list_sms(self, request: Request) -> Response:
        query = ListQuery(request, ("to", "account", "tracker", "email_id"))
        if "to" in query.filters:
            query.filters["to"] = normalise(query.filters["to"])
        found = await self._list(request, "sms", query, reads.list_sms)
        return JSONResponse({"items": found.items, "total": found.total})

    async def list_emails(self, request: Request) -> Response:
        query = ListQuery(request, ("status", "email_id", "account"))
        status = query.filters.get("status")
        if status is not None and status not in reads.EMAIL_STATUSES:
            raise Refusal(400, f"status: one of {', '.join(reads.EMAIL_STATUSES)}", "status")
        found = await self._list(request, "emails", query, reads.list_emails)
        items = [
            {**item, "raw_url": str(request.url_for("email_raw", id=item["id"]))}
            for item in found.items
        ]
        return JSONResponse({"items": items, "total": found.total})

    async def email_raw(self, request: Request) -> Response:
        email_row: int = request.path_params["id"]
        async with self.engine.connect() as conn:
            raw = await reads.email_raw(conn, email_row)
        if raw is None:
            raise Refusal(404, f"no email with id {email_row}", "id")
        return Response(
            raw,
            media_type="message/rfc822",
            headers={"Content-Disposition": f'inline; filename="email-{email_row}.eml"'},
        )

    async def list_replies(self, request: Request) -> Response:
        query = ListQuery(request, ("kind", "email_id", "to"))
        kind = query.filters.get("kind")
        if kind is not None and kind not in reads.REPLY_KINDS:
            raise Refusal(400, f"kind: one of {', '.join(reads.REPLY_KINDS)}", "kind")
        found = await self._list(request, "replies", query, reads.list_replies)
        return JSONResponse({"items": found.items, "total": found.total})

    # Accounts --------------------------------------------------------------------------------

    async def list_accounts(self, request: Request) -> Response:
        async with self.engine.connect() as conn:
            items = await accounts.list_all(conn)
        return JSONResponse({"items": items, "total": len(items)})

    async def get_account(self, request: Request) -> Response:
        keyid: str = request.path_params["keyid"]
        async with self.engine.connect() as conn:
            account = await accounts.get(conn, keyid)
        if account is None:
            raise Refusal(404, f"no account with keyid {keyid!r}", "keyid")
        return JSONResponse(account)

    async def create_account(self, request: Request) -> Response:
        body = await _json_object(request)
        _check_fields(body, accounts.FIELDS)
        try:
            async with write_transaction(self.engine) as conn:
                account = await accounts.create(conn, body, self.clock.now())
        except ValidationError as exc:
            raise _validation_refusal(exc) from None
        except IntegrityError:
            raise await self._conflict(body) from None
        self.changes.publish(["accounts"])
        return JSONResponse(account, 201)

    async def patch_account(self, request: Request) -> Response:
        keyid: str = request.path_params["keyid"]
        body = await _json_object(request)
        _check_fields(body, accounts.FIELDS)
        if body.get("keyid", keyid) != keyid:
            raise Refusal(400, "keyid: cannot be changed", "keyid")
        try:
            async with write_transaction(self.engine) as conn:
                account = await accounts.patch(conn, keyid, body)
        except ValidationError as exc:
            raise _validation_refusal(exc) from None
        except IntegrityError:
            raise await self._conflict({"login": body.get("login")}) from None
        if account is None:
            raise Refusal(404, f"no account with keyid {keyid!r}", "keyid")
        self.changes.publish(["accounts"])
        return JSONResponse(account)

    async def _conflict(self, body: Mapping[str, Any]) -> Refusal:
        keyid = body.get("keyid")
        if isinstance(keyid, str):
            async with self.engine.connect() as conn:
                if await reads.account_exists(conn, keyid):
                    return Refusal(409, f"keyid: an account {keyid!r} already exists", "keyid")
        return Refusal(409, f"login: {body.get('login')!r} is taken by another account", "login")

    # Clock -----------------------------------------------------------------------------------

    def _clock_state(self) -> dict[str, Any]:
        return {"now": self.clock.now().isoformat(), "frozen": self.clock.frozen_at is not None}

    async def get_clock(self, request: Request) -> Response:
        return JSONResponse(self._clock_state())

    async def set_clock(self, request: Request) -> Response:
        body = await _json_object(request)
        _check_fields(body, ("now",))
        value = body.get("now")
        if not isinstance(value, str):
            raise Refusal(400, "now: an ISO 8601 instant, e.g. 2026-11-29T21:00:00+01:00", "now")
        try:
            self.clock.freeze(parse_instant(value))
        except ValueError as exc:
            raise Refusal(400, f"now: {exc}", "now") from None
        return JSONResponse(self._clock_state())

    async def release_clock(self, request: Request) -> Response:
        self.clock.unfreeze()
        return JSONResponse(self._clock_state())

    # Faults and reset ------------------------------------------------------------------------

    async def list_faults(self, request: Request) -> Response:
        async with self.engine.connect() as conn:
            items = await reads.list_faults(conn)
        return JSONResponse({"items": items, "total": len(items)})

    async def add_fault(self, request: Request) -> Response:
        body = await _json_object(request)
        _check_fields(body, ("code", "count", "number", "keyid"))
        code, count = body.get("code"), body.get("count", 1)
        if type(code) is not int or code == 0 or code not in MESSAGES:
            failures = ", ".join(str(c) for c in sorted(MESSAGES) if c)
            raise Refusal(400, f"code: one of the annex's failure codes ({failures})", "code")
        if type(count) is not int or not 1 <= count <= MAX_INT:
            raise Refusal(400, "count: an integer ≥ 1", "count")
        number, keyid = body.get("number"), body.get("keyid")
        if number is not None:
            if not isinstance(number, str) or not normalise(number):
                raise Refusal(400, "number: a phone number or null", "number")
            number = normalise(number)
        if keyid is not None and not isinstance(keyid, str):
            raise Refusal(400, "keyid: an account keyid or null", "keyid")
        async with write_transaction(self.engine) as conn:
            if keyid is not None and not await reads.account_exists(conn, keyid):
                raise Refusal(400, f"keyid: no account {keyid!r}", "keyid")
            fault = await reads.add_fault(
                conn, code=code, count=count, number=number, keyid=keyid, now=self.clock.now()
            )
        return JSONResponse(fault, 201)

    async def clear_faults(self, request: Request) -> Response:
        async with write_transaction(self.engine) as conn:
            deleted = await reads.clear_faults(conn)
        return JSONResponse({"deleted": deleted})

    async def reset(self, request: Request) -> Response:
        async with write_transaction(self.engine) as conn:
            deleted = await reads.reset_messages(conn)
        self.changes.publish(Changes.TOPICS)
        return JSONResponse({"deleted": deleted})

    # Operations ------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        try:
            async with asyncio.timeout(5), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            log.warning("health check: the database does not answer", exc_info=True)
            return JSONResponse({"status": "error", "error": "database unavailable"}, 503)
        return JSONResponse({"status": "ok"})

    async def metrics_text(self, request: Request) -> Response:
        return Response(
            self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def openapi_document(self, request: Request) -> Response:
        return JSONResponse(openapi.document())

    async def info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "version": __version__,
                "gateway_addresses": list(self.settings.smtp.gateway_addresses),
                "stop_text": self.settings.stop.text,
                "clock": self._clock_state(),
            }
        )

    # Live updates ----------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        return StreamingResponse(
            self._event_stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _event_stream(self) -> AsyncIterator[str]:
        """`event: change` with the topics' versions on every change (ours at once, other
        replicas' within SSE_POLL seconds), a comment every HEARTBEAT seconds; ends on close."""
        loop = asyncio.get_running_loop()
        others = dict.fromkeys(Changes.TOPICS, 0)
        marks = await self._marks()
        yield "retry: 2000\n\n"
        sent: dict[str, int] | None = None
        next_poll = loop.time() + SSE_POLL
        next_beat = loop.time() + HEARTBEAT
        while not self.closing.is_set():
            current = {t: self.changes.versions.get(t, 0) + others[t] for t in Changes.TOPICS}
            if current != sent:
                yield f"event: change\ndata: {json.dumps(current)}\n\n"
                sent = current
                await asyncio.sleep(SSE_COALESCE)
                continue
            now = loop.time()
            if now >= next_poll:
                fresh = await self._marks()
                for topic, mark in fresh.items():
                    if marks and mark != marks.get(topic):
                        others[topic] += 1
                marks = fresh or marks
                next_poll = now + SSE_POLL
            elif now >= next_beat:
                yield ": keepalive\n\n"
                next_beat = now + HEARTBEAT
            else:
                await self.changes.wait(min(next_poll, next_beat, now + RECHECK) - now)

    async def _marks(self) -> dict[str, tuple[Any, ...]]:
        try:
            async with self.engine.connect() as conn:
                return await reads.fingerprint(conn)
        except Exception:
            log.warning("live updates: cannot read the database", exc_info=True)
            return {}


def create_app(gateway: Gateway, closing: asyncio.Event | None = None) -> Starlette:
    """The ASGI app of one gateway. Setting `closing` ends long-polls and event streams
    (the HTTP server sets it on shutdown so that they do not hold it up)."""
    api = Api(gateway, closing or asyncio.Event())
    middleware = []
    if not gateway.settings.http_is_loopback:
        middleware.append(Middleware(AdminToken, token=gateway.settings.http.admin_token))
    return Starlette(
        routes=api.routes(),
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )

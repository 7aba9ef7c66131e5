"""The HTTP control API (SPEC §11): lists with long-polling, accounts, clock, faults, reset, SSE."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import __version__
from gateway.errors import (
    ConflictError,
    FieldError,
    InvalidFieldError,
    NotFoundError,
    invalid_field,
)
from gateway.events import Changes
from gateway.store import accounts, admin, reads
from gateway.web import models, openapi, page
from gateway.web.context import WebContext
from gateway.web.openapi import WRITE_METHODS, Operation
from gateway.web.provider import ProviderApi, ProviderDeps
from gateway.web.provider_accounts import ProviderAccounts

log = logging.getLogger("mail2sms.web")

# Other replicas write to the same database without waking us: look again this often.
RECHECK = 0.5
HEARTBEAT = 15.0
# Other replicas' writes reach the live page within this delay.
SSE_POLL = 2.0
# A burst of commits becomes one event (and one refetch by the page).
SSE_COALESCE = 0.2
PAGING = set(models.Paging.model_fields)
STATUS = {InvalidFieldError: 400, NotFoundError: 404, ConflictError: 409}
ABOUT = (
    "Inspection and control of an emulated iSendPro mail 2 SMS gateway. Writes need "
    "`Authorization: Bearer <http.admin_token>` when the server listens beyond loopback."
)
LISTED = (
    "Newest first (by insertion). With `wait_for=N`, answers as soon as `total ≥ N`, "
    "or after `timeout` seconds with what there is (200 either way)."
)
Model = TypeVar("Model", bound=BaseModel)


def _answer(
    model: type[BaseModel], data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """`data` checked by its model and written as JSON (keys it does not have stay out)."""
    body = model.model_validate(data).model_dump_json(exclude_unset=True)
    return Response(body, status, headers, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _answer(models.Error, {"error": exc.detail}, exc.status_code, exc.headers)


async def _field_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FieldError)
    status = STATUS.get(type(exc), 400)
    return _answer(models.Error, {"error": str(exc), "field": exc.field}, status)


async def _server_error(request: Request, exc: Exception) -> Response:
    return _answer(models.Error, {"error": "internal error; see the gateway's log"}, 500)


PROVIDER_PREFIX = "/cgi-bin/"


class AdminToken:
    """Writes need `Authorization: Bearer <http.admin_token>` (installed beyond loopback only)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        writes = scope["type"] == "http" and scope["method"] in WRITE_METHODS
        # The provider's API authorises by keyid (SPEC §15), not by our admin token.
        if writes and not scope["path"].startswith(PROVIDER_PREFIX) and not self._allowed(scope):
            response = _answer(
                models.Error,
                {"error": "this write needs the header Authorization: Bearer <http.admin_token>"},
                401,
                {"WWW-Authenticate": 'Bearer realm="mail2sms"'},
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


def _query(request: Request, model: type[Model]) -> Model:
    """The query's parameters checked by `model`; an empty value counts as absent."""
    given = {name: value for name, value in request.query_params.items() if value != ""}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise invalid_field(exc, model.model_fields, "unknown parameter") from None


async def _body(request: Request, model: type[Model]) -> Model:
    """The JSON object of the body checked by `model`."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise InvalidFieldError("body", "not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidFieldError("body", "must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_field(exc, model.model_fields) from None


ListFunction = Callable[..., Awaitable[reads.Page]]


class Api:
    """The endpoints of one gateway, on what app.py gives the web side."""

    def __init__(self, context: WebContext) -> None:
        self.settings = context.settings
        self.engine = context.engine
        self.clock = context.clock
        self.changes = context.changes
        self.metrics = context.metrics
        self.closing = context.closing
        self._document: bytes | None = None
        self.provider = ProviderApi(
            ProviderDeps(
                engine=context.engine,
                clock=context.clock,
                rules=context.rules,
                hlr=dict(context.settings.hlr),
                send=context.send,
            )
        )

    def operations(self) -> list[Operation]:
        """The route table: each endpoint with what the OpenAPI document tells of it."""
        op, error, page_of = Operation, models.Error, "the page and the count of all matches"
        no_account = (error, "no such account")
        return [
            op("GET", "/", page.index, "The live web page", {200: ("text/html", "HTML")}),
            op(
                "GET",
                "/healthz",
                self.healthz,
                "Liveness, with a database round trip",
                {
                    200: (models.Health, "the database answers"),
                    503: (models.Health, "the database does not answer"),
                },
            ),
            op(
                "GET",
                "/metrics",
                self.metrics_text,
                "Prometheus metrics",
                {200: ("text/plain", "text exposition format 0.0.4")},
            ),
            op(
                "GET",
                "/openapi.json",
                self.openapi_document,
                "This document",
                {200: (models.Document, "OpenAPI 3.1")},
            ),
            op(
                "GET",
                "/api/v1/info",
                self.info,
                "Gateway addresses, STOP text, clock",
                {200: (models.Info, "about this gateway")},
            ),
            op(
                "GET",
                "/api/v1/sms",
                self.list_sms,
                "Sent SMS",
                {200: (models.SmsPage, page_of)},
                query=models.SmsQuery,
                description=LISTED,
            ),
            op(
                "GET",
                "/api/v1/emails",
                self.list_emails,
                "Inbound emails",
                {200: (models.EmailPage, page_of)},
                query=models.EmailQuery,
                description=LISTED,
            ),
            op(
                "GET",
                "/api/v1/emails/{id:int}/raw",
                self.email_raw,
                "An inbound email as received",
                {200: ("message/rfc822", "the message"), 404: (error, "no such email")},
            ),
            op(
                "GET",
                "/api/v1/replies",
                self.list_replies,
                "Ack and Not replies",
                {200: (models.ReplyPage, page_of)},
                query=models.ReplyQuery,
                description=LISTED,
            ),
            op(
                "GET",
                "/api/v1/accounts",
                self.list_accounts,
                "All accounts",
                {200: (models.AccountPage, "newest first")},
            ),
            op(
                "POST",
                "/api/v1/accounts",
                self.create_account,
                "Create an account (login, password, keyid generated when absent)",
                {201: (models.Account, "created"), 409: (error, "keyid or login already used")},
                body=models.AccountFields,
            ),
            op(
                "GET",
                "/api/v1/accounts/{keyid}",
                self.get_account,
                "One account",
                {200: (models.Account, "the account"), 404: no_account},
            ),
            op(
                "PATCH",
                "/api/v1/accounts/{keyid}",
                self.patch_account,
                "Change fields (credit, flags, blacklist, domains, senders, …)",
                {
                    200: (models.Account, "updated"),
                    404: no_account,
                    409: (error, "login already used"),
                },
                body=models.AccountFields,
            ),
            op(
                "GET",
                "/api/v1/clock",
                self.get_clock,
                "The gateway's clock",
                {200: (models.Clock, "now, and whether frozen")},
            ),
            op(
                "PUT",
                "/api/v1/clock",
                self.set_clock,
                "Freeze the clock at an instant",
                {
                    200: (models.Clock, "frozen"),
                    400: (error, "`now` is not an ISO 8601 instant with offset"),
                },
                body=models.ClockBody,
            ),
            op(
                "DELETE",
                "/api/v1/clock",
                self.release_clock,
                "Back to real time",
                {200: (models.Clock, "running")},
            ),
            op(
                "GET",
                "/api/v1/faults",
                self.list_faults,
                "Active injected faults",
                {200: (models.FaultPage, "newest first")},
            ),
            op(
                "POST",
                "/api/v1/faults",
                self.add_fault,
                "The next `count` recipients (of that number / account) get `code`",
                {201: (models.Fault, "injected")},
                body=models.FaultBody,
            ),
            op(
                "DELETE",
                "/api/v1/faults",
                self.clear_faults,
                "Remove every fault",
                {200: (models.Deleted, "removed")},
            ),
            op(
                "DELETE",
                "/api/v1/messages",
                self.reset,
                "Forget all SMS, emails, emailIds and replies",
                {200: (models.Reset, "rows deleted per table")},
            ),
            op(
                "GET",
                "/api/v1/events",
                self.events,
                "Server-sent events: `change` with the topics' versions",
                {200: ("text/event-stream", "an event stream")},
                description=(
                    "`event: change` whose data is a JSON object of versions per topic (sms, "
                    "emails, replies, accounts), sent at once and on every change; a comment "
                    f"every {HEARTBEAT:g} s keeps the connection open."
                ),
            ),
        ]

    def routes(self) -> list[BaseRoute]:
        served: list[BaseRoute] = [
            Route(op.path, op.endpoint, methods=[op.method]) for op in self.operations()
        ]
        return [
            *served,
            *self.provider.routes(),
            *ProviderAccounts(self.provider.deps).routes(),
            page.static_files(),
        ]

    # Lists, with long-polling ---------------------------------------------------------------

    async def _list(
        self, request: Request, topic: str, query: models.Paging, fetch: ListFunction
    ) -> reads.Page:
        """One query; with `wait_for`, again on each change and every RECHECK seconds until
        `total >= wait_for` or the timeout (the answer is the last result, 200 either way)."""
        filters = query.model_dump(exclude=PAGING, exclude_none=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + query.timeout
        while True:
            seen = self.changes.versions.get(topic, 0)
            async with self.engine.connect() as conn:
                result = await fetch(conn, **filters, **query.page())
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
        query = _query(request, models.SmsQuery)
        found = await self._list(request, "sms", query, reads.list_sms)
        return _answer(models.SmsPage, found._asdict())

    async def list_emails(self, request: Request) -> Response:
        query = _query(request, models.EmailQuery)
        found = await self._list(request, "emails", query, reads.list_emails)
        items = [
            {**item, "raw_url": str(request.url_for("email_raw", id=item["id"]))}
            for item in found.items
        ]
        return _answer(models.EmailPage, {"items": items, "total": found.total})

    async def email_raw(self, request: Request) -> Response:
        email_row: int = request.path_params["id"]
        async with self.engine.connect() as conn:
            raw = await reads.email_raw(conn, email_row)
        if raw is None:
            raise NotFoundError("id", f"no email with id {email_row}")
        return Response(
            raw,
            media_type="message/rfc822",
            headers={"Content-Disposition": f'inline; filename="email-{email_row}.eml"'},
        )

    async def list_replies(self, request: Request) -> Response:
        query = _query(request, models.ReplyQuery)
        found = await self._list(request, "replies", query, reads.list_replies)
        return _answer(models.ReplyPage, found._asdict())

    # Accounts --------------------------------------------------------------------------------

    async def list_accounts(self, request: Request) -> Response:
        async with self.engine.connect() as conn:
            items = await accounts.list_all(conn)
        return _answer(models.AccountPage, {"items": items, "total": len(items)})

    async def get_account(self, request: Request) -> Response:
        keyid: str = request.path_params["keyid"]
        async with self.engine.connect() as conn:
            account = await accounts.get(conn, keyid)
        if account is None:
            raise NotFoundError("keyid", f"no account with keyid {keyid!r}")
        return _answer(models.Account, account)

    async def create_account(self, request: Request) -> Response:
        body = await _body(request, models.AccountFields)
        fields = body.model_dump(exclude_unset=True)
        account = await admin.create_account(self.engine, fields, self.clock.now())
        self.changes.publish(["accounts"])
        return _answer(models.Account, account, 201)

    async def patch_account(self, request: Request) -> Response:
        keyid: str = request.path_params["keyid"]
        body = await _body(request, models.AccountFields)
        account = await admin.patch_account(self.engine, keyid, body.model_dump(exclude_unset=True))
        self.changes.publish(["accounts"])
        return _answer(models.Account, account)

    # Clock -----------------------------------------------------------------------------------

    def _clock_state(self) -> dict[str, Any]:
        return {"now": self.clock.now().isoformat(), "frozen": self.clock.frozen_at is not None}

    async def get_clock(self, request: Request) -> Response:
        return _answer(models.Clock, self._clock_state())

    async def set_clock(self, request: Request) -> Response:
        body = await _body(request, models.ClockBody)
        self.clock.freeze(body.now)
        return _answer(models.Clock, self._clock_state())

    async def release_clock(self, request: Request) -> Response:
        self.clock.unfreeze()
        return _answer(models.Clock, self._clock_state())

    # Faults and reset ------------------------------------------------------------------------

    async def list_faults(self, request: Request) -> Response:
        async with self.engine.connect() as conn:
            items = await reads.list_faults(conn)
        return _answer(models.FaultPage, {"items": items, "total": len(items)})

    async def add_fault(self, request: Request) -> Response:
        body = await _body(request, models.FaultBody)
        fault = await admin.add_fault(self.engine, **body.model_dump(), now=self.clock.now())
        return _answer(models.Fault, fault, 201)

    async def clear_faults(self, request: Request) -> Response:
        return _answer(models.Deleted, {"deleted": await admin.clear_faults(self.engine)})

    async def reset(self, request: Request) -> Response:
        deleted = await admin.reset_messages(self.engine)
        self.changes.publish(Changes.TOPICS)
        return _answer(models.Reset, {"deleted": deleted})

    # Operations ------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        try:
            async with asyncio.timeout(5), self.engine.connect() as conn:
                await reads.ping(conn)
        except Exception:
            log.warning("health check: the database does not answer", exc_info=True)
            return _answer(models.Health, {"status": "error", "error": "database unavailable"}, 503)
        return _answer(models.Health, {"status": "ok"})

    async def metrics_text(self, request: Request) -> Response:
        return Response(
            self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def openapi_document(self, request: Request) -> Response:
        if self._document is None:
            self._document = json.dumps(openapi.document(self.operations(), ABOUT)).encode()
        return Response(self._document, media_type="application/json")

    async def info(self, request: Request) -> Response:
        about = {
            "version": __version__,
            "gateway_addresses": list(self.settings.smtp.gateway_addresses),
            "stop_text": self.settings.stop.text,
            "clock": self._clock_state(),
        }
        return _answer(models.Info, about)

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


def create_app(context: WebContext) -> Starlette:
    """The ASGI app of one gateway. Setting `context.closing` ends long-polls and event streams
    (the HTTP server sets it on shutdown so that they do not hold it up)."""
    api = Api(context)
    middleware = []
    if not context.settings.http_is_loopback:
        middleware.append(Middleware(AdminToken, token=context.settings.http.admin_token))
    return Starlette(
        routes=api.routes(),
        middleware=middleware,
        exception_handlers={
            HTTPException: _http_error,
            FieldError: _field_error,
            Exception: _server_error,
        },
    )

"""The HTTP control API (SPEC §11): lists with long-polling, accounts, clock, faults, reset, SSE."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

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
from gateway.web import guard, live, message, models, openapi, page
from gateway.web.context import WebContext
from gateway.web.live import Live
from gateway.web.openapi import Operation
from gateway.web.provider import ProviderApi, ProviderDeps
from gateway.web.provider_accounts import ProviderAccounts

log = logging.getLogger("mail2sms.web")

# A long-poll whose client left gives its place back within this delay.
DISCONNECT_CHECK = 5.0
PAGING = set(models.Paging.model_fields)
STATUS = {InvalidFieldError: 400, NotFoundError: 404, ConflictError: 409}
ABOUT = (
    "Inspection and control of an emulated iSendPro mail 2 SMS gateway. Beyond loopback, "
    "every request but /healthz needs `Authorization: Bearer <http.admin_token>` (or HTTP "
    "Basic with the token as the password). A write's body is JSON (`Content-Type: "
    "application/json`, else 415); a write from a page of another origin gets 403; a Host "
    "that is not one of the gateway's names gets 421."
)
LISTED = (
    "Newest first (by insertion). With `wait_for=N`, answers as soon as `total ≥ N`, "
    "or after `timeout` seconds with what there is (200 either way)."
)
# Items of a page checked and written between two turns of the event loop: an email of a
# 500-number request is ~0.5 ms of checking and writing, so a page of 1,000 of them held every
# other client up for a second (SPEC §16).
CHUNK = 4
Model = TypeVar("Model", bound=BaseModel)
_Found = TypeVar("_Found")
Endpoint = Callable[[Request], Awaitable[Response]]


def _answer(
    model: type[BaseModel], data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """`data` checked by its model and written as JSON (keys it does not have stay out)."""
    body = model.model_validate(data).model_dump_json(exclude_unset=True)
    return Response(body, status, headers, media_type="application/json")


async def _answer_page(
    model: type[models.Page[Any]], items: Sequence[Mapping[str, Any]], total: int
) -> Response:
    """`_answer` of a page, the same bytes, its items checked and written CHUNK at a time with
    the event loop let through in between."""
    adapter = _items_of(model)
    written: list[bytes] = []
    for start in range(0, len(items), CHUNK):
        chunk = adapter.validate_python(items[start : start + CHUNK])
        written.append(adapter.dump_json(chunk, exclude_unset=True)[1:-1])  # inside its [ ]
        await asyncio.sleep(0)
    envelope = model.model_validate({"items": [], "total": total})
    head, tail = envelope.model_dump_json(exclude_unset=True).encode().split(b"[]", 1)
    body = b"".join((head, b"[", b",".join(written), b"]", tail))
    return Response(body, media_type="application/json")


@functools.cache
def _items_of(model: type[models.Page[Any]]) -> TypeAdapter[list[Any]]:
    """The list of a page's items, checked and written as the page does."""
    items: Any = model.model_fields["items"].annotation
    return TypeAdapter(items)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _answer(models.Error, {"error": exc.detail}, exc.status_code, exc.headers)


async def _field_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FieldError)
    status = STATUS.get(type(exc), 400)
    return _answer(models.Error, {"error": str(exc), "field": exc.field}, status)


async def _server_error(request: Request, exc: Exception) -> Response:
    return _answer(models.Error, {"error": "internal error; see the gateway's log"}, 500)


KEYID_MAX = 64  # accounts.keyid


def _query(request: Request, model: type[Model]) -> Model:
    """The query's parameters checked by `model`: each known, given once, without NUL; an
    empty value counts as absent."""
    given: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in given:
            raise InvalidFieldError(name, "given more than once; give each parameter once")
        if "\x00" in value:
            raise InvalidFieldError(name, "contains a NUL character")
        given[name] = value
    try:
        return model.model_validate({name: value for name, value in given.items() if value})
    except ValidationError as exc:
        raise invalid_field(exc, model.model_fields, "unknown parameter") from None


async def _body(request: Request, model: type[Model]) -> Model:
    """The JSON object of the body checked by `model`."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidFieldError("body", "not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidFieldError("body", "must be a JSON object")
    for name, value in body.items():
        if _has_nul(value):
            raise InvalidFieldError(str(name), "contains a NUL character")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_field(exc, model.model_fields) from None


def _has_nul(value: Any) -> bool:
    # PostgreSQL cannot store U+0000 in text or JSON.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _keyid(request: Request) -> str:
    """The {keyid} of the path; one that no account can have (NUL, too long) is a 404."""
    keyid: str = request.path_params["keyid"]
    if "\x00" in keyid or len(keyid) > KEYID_MAX:
        raise NotFoundError("keyid", f"no account with keyid {keyid!r}")
    return keyid


def _takes_no_query(endpoint: Endpoint) -> Endpoint:
    async def checked(request: Request) -> Response:
        _query(request, models.NoQuery)
        return await endpoint(request)

    return checked


ListFunction = Callable[..., Awaitable[reads.Page]]


class Api:
    """The endpoints of one gateway, on what app.py gives the web side."""

    def __init__(self, context: WebContext) -> None:
        self.settings = context.settings
        self.engine = context.engine
        self.clock = context.clock
        self.changes = context.changes
        self.metrics = context.metrics
        self.live = Live(context.engine, context.changes, context.settings.http.max_streams)
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
        error, page_of = models.Error, "the page and the count of all matches"
        no_account = (error, "no such account")
        busy = (
            error,
            "with wait_for: http.max_streams long-polls and streams are open; Retry-After",
        )
        # An endpoint takes no query parameter unless it says which.
        op = functools.partial(Operation, query=models.NoQuery)

        return [
            # The page keeps its own filters in its URL's query.
            Operation("GET", "/", page.index, "The live web page", {200: ("text/html", "HTML")}),
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
                {200: (models.SmsPage, page_of), 503: busy},
                query=models.SmsQuery,
                description=LISTED,
            ),
            op(
                "GET",
                "/api/v1/emails",
                self.list_emails,
                "Inbound emails",
                {200: (models.EmailPage, page_of), 503: busy},
                query=models.EmailQuery,
                description=LISTED,
            ),
            op(
                "GET",
                "/api/v1/emails/{id:int}",
                self.get_email,
                "An inbound email with its headers, text and attachments",
                {200: (models.EmailDetail, "the email"), 404: (error, "no such email")},
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
                {200: (models.ReplyPage, page_of), 503: busy},
                query=models.ReplyQuery,
                description=LISTED,
            ),
            op(
                "GET",
                "/api/v1/accounts",
                self.list_accounts,
                "All accounts (never their passwords)",
                {200: (models.AccountPage, page_of), 503: busy},
                query=models.AccountQuery,
                description=LISTED,
            ),
            op(
                "POST",
                "/api/v1/accounts",
                self.create_account,
                "Create an account (login, password, keyid generated when absent)",
                {
                    201: (models.NewAccount, "created; the only answer that shows the password"),
                    409: (error, "keyid or login already used"),
                },
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
                {
                    200: ("text/event-stream", "an event stream"),
                    503: (error, "http.max_streams streams and long-polls are open; Retry-After"),
                },
                description=(
                    "`event: change` whose data is a JSON object of versions per topic (sms, "
                    "emails, replies, accounts, clock), sent at once and on every change; a "
                    f"comment every {live.HEARTBEAT:g} s keeps the connection open. Beyond "
                    "http.max_streams open streams and long-polls: 503 with Retry-After."
                ),
            ),
        ]

    def routes(self) -> list[BaseRoute]:
        served: list[BaseRoute] = [
            Route(
                op.path,
                _takes_no_query(op.endpoint) if op.query is models.NoQuery else op.endpoint,
                methods=[op.method],
                name=op.endpoint.__name__,
            )
            for op in self.operations()
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
        """One query; with `wait_for`, a held request (503 beyond http.max_streams) that queries
        again on each change of `topic` until `total >= wait_for` or the timeout (the answer
        is the last result, 200 either way). Waiting itself reads nothing."""
        filters = query.model_dump(exclude=PAGING, exclude_none=True)

        async def once() -> reads.Page:
            async with self.engine.connect() as conn:
                return await fetch(conn, **filters, **query.page())

        if query.wait_for is None:
            return await once()
        give_back = self.live.take()
        try:
            await self.live.watching()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + query.timeout
            check = loop.time() + DISCONNECT_CHECK
            while True:
                seen = self.changes.versions.get(topic, 0)
                result = await self.live.query(once)
                if result.total >= query.wait_for:
                    return result
                # A change during the query counts: compare versions before waiting.
                while self.changes.versions.get(topic, 0) == seen:
                    left = deadline - loop.time()
                    if left <= 0 or self.live.closing.is_set():
                        return result
                    await self.changes.wait(min(left, check - loop.time()))
                    if loop.time() >= check:
                        if await request.is_disconnected():
                            return result
                        check = loop.time() + DISCONNECT_CHECK
        finally:
            give_back()

    async def list_sms(self, request: Request) -> Response:
        query = _query(request, models.SmsQuery)
        found = await self._list(request, "sms", query, reads.list_sms)
        return await _answer_page(models.SmsPage, found.items, found.total)

    async def list_emails(self, request: Request) -> Response:
        query = _query(request, models.EmailQuery)
        found = await self._list(request, "emails", query, reads.list_emails)
        items = [
            {**item, "raw_url": str(request.url_for("email_raw", id=item["id"]))}
            for item in found.items
        ]
        return await _answer_page(models.EmailPage, items, found.total)

    async def _email(
        self, email_row: int, read: Callable[[Any, int], Awaitable[_Found | None]]
    ) -> _Found:
        """What `read` finds of the email with that id; 404 when there is none."""
        found = None
        if email_row <= models.MAX_ID:  # a larger id names no row: not asked of the database
            async with self.engine.connect() as conn:
                found = await read(conn, email_row)
        if found is None:
            raise NotFoundError("id", f"no email with id {email_row}")
        return found

    async def get_email(self, request: Request) -> Response:
        email_row: int = request.path_params["id"]
        item, raw = await self._email(email_row, reads.email)
        # Parsing a large message is CPU work: off the event loop.
        shown = await asyncio.to_thread(message.describe, raw)
        raw_url = str(request.url_for("email_raw", id=email_row))
        return _answer(models.EmailDetail, {**item, **shown, "raw_url": raw_url})

    async def email_raw(self, request: Request) -> Response:
        email_row: int = request.path_params["id"]
        raw = await self._email(email_row, reads.email_raw)
        return Response(
            raw,
            media_type="message/rfc822",
            headers={"Content-Disposition": f'inline; filename="email-{email_row}.eml"'},
        )

    async def list_replies(self, request: Request) -> Response:
        query = _query(request, models.ReplyQuery)
        found = await self._list(request, "replies", query, reads.list_replies)
        return await _answer_page(models.ReplyPage, found.items, found.total)

    # Accounts --------------------------------------------------------------------------------

    async def list_accounts(self, request: Request) -> Response:
        query = _query(request, models.AccountQuery)
        found = await self._list(request, "accounts", query, reads.list_accounts)
        return await _answer_page(models.AccountPage, found.items, found.total)

    async def get_account(self, request: Request) -> Response:
        keyid = _keyid(request)
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
        return _answer(models.NewAccount, account, 201)

    async def patch_account(self, request: Request) -> Response:
        keyid = _keyid(request)
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
        self.changes.publish(["clock"])
        return _answer(models.Clock, self._clock_state())

    async def release_clock(self, request: Request) -> Response:
        self.clock.unfreeze()
        self.changes.publish(["clock"])
        return _answer(models.Clock, self._clock_state())

    # Faults and reset ------------------------------------------------------------------------

    async def list_faults(self, request: Request) -> Response:
        async with self.engine.connect() as conn:
            items = await reads.list_faults(conn)
        return await _answer_page(models.FaultPage, items, len(items))

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
            found = openapi.document(self.operations(), ABOUT, guard.OPEN_PATHS)
            self._document = json.dumps(found).encode()
        return Response(self._document, media_type="application/json")

    async def info(self, request: Request) -> Response:
        about = {
            "version": __version__,
            "gateway_addresses": list(self.settings.smtp.gateway_addresses),
            "stop_text": self.settings.stop.text,
            "stop_http_text": self.settings.stop.http_text,
            "clock": self._clock_state(),
        }
        return _answer(models.Info, about)

    # Live updates ----------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        return self.live.events()


def create_app(context: WebContext) -> Starlette:
    """The ASGI app of one gateway; `app.state.live` ends its long-polls and event streams
    (the HTTP server closes it on shutdown so that they do not hold it up)."""
    api = Api(context)
    app = Starlette(
        routes=api.routes(),
        middleware=[Middleware(guard.Guard, settings=context.settings.http)],
        exception_handlers={
            HTTPException: _http_error,
            FieldError: _field_error,
            Exception: _server_error,
        },
    )
    app.state.live = api.live
    return app

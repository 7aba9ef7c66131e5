"""The provider's HTTP API channel under /cgi-bin (SPEC §15): fields in, the provider's JSON out.

Bodies are read as the provider reads them: a JSON object whatever the Content-Type (its own
curl example posts JSON as a form), else form fields; a field the body lacks comes from the
query string (the official clients post `/setlistenoire?keyid=…` with an empty body). Names
are matched case-insensitively, and PHP's `num[]` / `num[0]` are the list `num`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.clock import Clock
from gateway.core import codes, hlr, httpapi, numbers, rules
from gateway.core.httpapi import FieldValue, GeneralError, Refused
from gateway.core.model import Account, HttpCall, Intake, RuleSettings
from gateway.store import accounts, directories, provider
from gateway.store.engine import Database, write_transaction
from gateway.store.writer import Written

MAX_BODY = 1024 * 1024  # 500 numbers with their texts fit many times over
PARIS = ZoneInfo("Europe/Paris")
_LIST_SUFFIX = re.compile(r"\[\d*\]$")

Fields = dict[str, FieldValue]
Endpoint = Callable[["Call"], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Call:
    """One authorised call: its fields (lower-cased names) and the caller's account."""

    fields: Mapping[str, FieldValue]
    account: Account
    request: Request


@dataclass(frozen=True, slots=True)
class ProviderDeps:
    """What the channel needs from the gateway."""

    engine: Database
    clock: Clock
    rules: RuleSettings
    hlr: Mapping[str, str]
    send: Callable[[Intake], Awaitable[Written]] | None = None  # None: not running (tests)


async def read_fields(request: Request) -> Fields:
    """The call's fields: JSON object, else form, then the query string for what is missing."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Refused(GeneralError(codes.INTERNAL, "body", f"larger than {MAX_BODY} bytes"))
    fields: Fields = {}
    if body.strip():
        try:
            parsed: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if isinstance(parsed, dict):
            for name, value in parsed.items():
                fields[str(name).lower()] = value
        else:
            text = body.decode("utf-8", "replace")
            _add_pairs(fields, parse_qsl(text, keep_blank_values=True))
    query: Fields = {}
    _add_pairs(query, request.query_params.multi_items())
    for name, value in query.items():
        fields.setdefault(name, value)
    return fields


def _add_pairs(fields: Fields, pairs: list[tuple[str, str]]) -> None:
    for raw_name, value in pairs:
        listed = _LIST_SUFFIX.search(raw_name) is not None
        name = _LIST_SUFFIX.sub("", raw_name).lower()
        if name in fields:
            current = fields[name]
            fields[name] = [*(current if isinstance(current, list) else [current]), value]
        else:
            fields[name] = [value] if listed else value


def answer(body: Mapping[str, object], status: int = 200) -> Response:
    return JSONResponse(body, status)


def refusal(error: GeneralError) -> Response:
    """A general error: HTTP 400 with the code and message and no `tel`."""
    return JSONResponse(httpapi.error_body(error), 400)


async def caller(deps: ProviderDeps, key: str, request: Request) -> Account:
    """The account of a non-empty keyid, authorised: Refused with 3 (unknown keyid) or 14
    (the client's IP is not among the account's)."""
    async with deps.engine.connect() as conn:
        account = await accounts.snapshot(conn, key, lock=False)
    client_ip = request.client.host if request.client else ""
    code = rules.authorise_key(key, account, client_ip=client_ip)
    if code is not None or account is None:
        raise Refused(GeneralError(code or codes.BAD_CREDENTIALS, "keyid"))
    return account


def authorised(deps: ProviderDeps, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint: reads the fields, authorises the keyid (1, 3) and the client's
    IP (14), then calls `endpoint`; any general error, there or inside, answers 400."""

    async def handle(request: Request) -> Response:
        try:
            fields = await read_fields(request)
            account = await caller(deps, httpapi.keyid(fields), request)
            return await endpoint(Call(fields, account, request))
        except Refused as refused:
            return refusal(refused.error)

    return handle


@dataclass(frozen=True, slots=True)
class Send:
    """A send's call: its fields and non-empty keyid; the account is the writer's to read and
    authorise (it does, in its transaction), or `authorised()`'s when the call needs it first."""

    fields: Mapping[str, FieldValue]
    key: str
    request: Request
    deps: ProviderDeps

    async def authorised(self) -> Account:
        return await caller(self.deps, self.key, self.request)


def keyed(
    deps: ProviderDeps, endpoint: Callable[[Send], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """`authorised` for the sends, less the account's reading: an authorised send (the usual
    call) reads it once, in the writer, not twice; any general error answers 400."""

    async def handle(request: Request) -> Response:
        try:
            fields = await read_fields(request)
            return await endpoint(Send(fields, httpapi.keyid(fields), request, deps))
        except Refused as refused:
            return refusal(refused.error)

    return handle


def cgi_routes(
    deps: ProviderDeps, endpoints: list[tuple[str, Endpoint, list[str]]]
) -> list[BaseRoute]:
    return [
        Route(f"/cgi-bin{path}", authorised(deps, endpoint), methods=methods)
        for path, endpoint, methods in endpoints
    ]


def require_one(fields: Mapping[str, FieldValue], name: str) -> None:
    """The document's switches (`getListeNoire`, `rapportCampagne`…) must be "1"."""
    if (httpapi.text(fields, name) or "").strip() != "1":
        raise Refused(GeneralError(codes.INTERNAL, name, 'must be "1"'))


class ProviderApi:
    """The endpoints; each gets an authorised Call (keyid known, IP allowed) or answers 400."""

    def __init__(self, deps: ProviderDeps) -> None:
        self.deps = deps

    def routes(self) -> list[BaseRoute]:
        endpoints: list[tuple[str, Endpoint, list[str]]] = [
            ("/comptage", self.count, ["GET", "POST"]),
            ("/credit", self.credit, ["GET", "POST"]),
            ("/setlistenoire", self.set_blacklist, ["GET", "POST"]),
            ("/dellistenoire", self.del_blacklist, ["GET", "POST"]),
            ("/getlistenoire", self.get_blacklist, ["GET", "POST"]),
            ("/hlr", self.hlr, ["GET", "POST"]),
            ("/campagne", self.campaign, ["GET", "POST"]),
        ]
        return [
            Route("/cgi-bin/sms", keyed(self.deps, self.sms), methods=["POST"]),
            Route("/cgi-bin/smsmulti", keyed(self.deps, self.sms_multi), methods=["POST"]),
            *cgi_routes(self.deps, endpoints),
        ]

    # Sending ----------------------------------------------------------------------------------

    async def sms(self, call: Send) -> Response:
        return await self._send(call, multi=False)

    async def sms_multi(self, call: Send) -> Response:
        return await self._send(call, multi=True)

    async def _send(self, call: Send, *, multi: bool) -> Response:
        """Judged and committed through the same pipeline as mail (rules, credit, faults,
        rate limit); one entry per number in request order, or a general error (400) with
        nothing sent or debited. A keyid or IP error comes before any other: the account is
        read here when the call has another (or names a directory), else by the writer."""
        send = self.deps.send
        if send is None:
            raise RuntimeError("the provider's API sends only on a running gateway")
        directory = await self._directory(call) if multi else []
        request = httpapi.send_request(
            call.fields,
            multi=multi,
            now=self.deps.clock.now(),
            max_recipients=self.deps.rules.max_recipients,
            directory=directory,
        )
        if isinstance(request, GeneralError):
            await call.authorised()
            return refusal(request)
        client_ip = call.request.client.host if call.request.client else ""
        written = await send(HttpCall(request, client_ip))
        if written.code is not None:
            return refusal(GeneralError(written.code, "keyid"))
        entries = [
            {
                "code": str(code),
                "tel": recipient.tel,
                "message": codes.message(code),
                "smslong": str(parts),
            }
            for recipient, code, parts in zip(
                request.recipients, written.codes, written.parts, strict=True
            )
        ]
        return answer(httpapi.etat(entries))

    async def _directory(self, call: Send) -> list[str]:
        """The numbers of the `repertoireId` directory (this account's), sent after `num`."""
        given = (httpapi.text(call.fields, "repertoireId") or "").strip()
        if not given:
            return []
        account = await call.authorised()
        directory_id = int(given) if given.isascii() and given.isdigit() and len(given) <= 18 else 0
        async with self.deps.engine.connect() as conn:
            found = await directories.directory_numbers(conn, account.id, directory_id)
        if found is None:
            raise Refused(GeneralError(codes.INTERNAL, "repertoireId", "no such directory"))
        return found

    async def count(self, call: Call) -> Response:
        """`/comptage`: characters and SMS parts per number as a send would count them."""
        request = httpapi.send_request(
            call.fields,
            multi=isinstance(call.fields.get("num"), list),
            now=self.deps.clock.now(),
            max_recipients=self.deps.rules.max_recipients,
        )
        if isinstance(request, GeneralError):
            return refusal(request)
        entries = httpapi.count_entries(
            request, self.deps.rules, nostop_allowed=call.account.nostop_allowed
        )
        return answer(httpapi.etat(entries))

    # Credit -----------------------------------------------------------------------------------

    async def credit(self, call: Call) -> Response:
        """`credit=1`: the credit; `credit=2` adds its quantity. The emulator has no money:
        both are the account's credit in SMS."""
        kind = (httpapi.text(call.fields, "credit") or "").strip()
        if kind not in ("1", "2"):
            raise Refused(GeneralError(codes.INTERNAL, "credit", 'must be "1" or "2"'))
        async with self.deps.engine.connect() as conn:
            left = await provider.credit(conn, call.account.id)
        etat: dict[str, object] = {"credit": left}
        if kind == "2":
            etat["quantite"] = str(left)
        return answer({"etat": etat})

    # Blacklist --------------------------------------------------------------------------------

    async def set_blacklist(self, call: Call) -> Response:
        return await self._edit_blacklist(call, "setlisteNoire", provider.blacklist_add)

    async def del_blacklist(self, call: Call) -> Response:
        return await self._edit_blacklist(call, "delListeNoire", provider.blacklist_remove)

    async def _edit_blacklist(
        self,
        call: Call,
        switch: str,
        edit: Callable[[Any, int, list[str]], Awaitable[None]],
    ) -> Response:
        require_one(call.fields, switch)
        tels = httpapi.texts(call.fields, "num")
        if not tels:
            raise Refused(GeneralError(codes.INTERNAL, "num", "missing"))
        entries: list[dict[str, str]] = []
        valid: list[str] = []
        for tel in tels:
            code, number = numbers.check_format(tel, international_allowed=True)
            if code is None:
                valid.append(number)
                entries.append({"tel": tel, "listeNoire": "OK"})
            else:
                entries.append(
                    {"tel": tel, "listeNoire": "KO", "code": str(code),
                     "message": codes.message(code)}
                )
        if valid:
            async with write_transaction(self.deps.engine) as conn:
                await edit(conn, call.account.id, valid)
        return answer(httpapi.etat(entries))

    async def get_blacklist(self, call: Call) -> Response:
        """A zip holding `listenoire.csv`, one number a line."""
        require_one(call.fields, "getListeNoire")
        async with self.deps.engine.connect() as conn:
            listed = await provider.blacklist(conn, call.account.id)
        return _zip("listenoire.csv", [["numero"], *([n] for n in listed)])

    # HLR --------------------------------------------------------------------------------------

    async def hlr(self, call: Call) -> Response:
        """The operator of each number, from the number plan and the operator data by prefix."""
        tels = httpapi.texts(call.fields, "num")
        if not tels:
            raise Refused(GeneralError(codes.INTERNAL, "num", "missing"))
        entries = [
            {
                "tel": tel,
                "operateur": hlr.operator(
                    tel, plan=self.deps.rules.number_plan, overrides=self.deps.hlr
                ),
            }
            for tel in tels
        ]
        return answer(httpapi.etat(entries))

    # Campaign report --------------------------------------------------------------------------

    async def campaign(self, call: Call) -> Response:
        """A zip holding `campagne.csv`: the account's SMS of the period, oldest first."""
        require_one(call.fields, "rapportCampagne")
        start = _paris_minute(call.fields, "date_deb")
        end = _paris_minute(call.fields, "date_fin")
        if end < start:
            raise Refused(GeneralError(codes.INTERNAL, "date_fin", "before date_deb"))
        async with self.deps.engine.connect() as conn:
            found = await provider.sms_between(conn, call.account.id, start, end)
        rows = [
            [
                "date",
                "tel",
                "emetteur",
                "message",
                "nb_sms",
                "encodage",
                "tracker",
                "canal",
                "etat",
                "date_envoi",
            ]
        ]
        for item in found:
            due = item["due_at"]
            rows.append(
                [
                    _paris(item["created_at"]),
                    item["to"],
                    item["sender"],
                    item["text"],
                    str(item["parts"]),
                    item["encoding"],
                    item["tracker"],
                    item["channel"],
                    item["state"],
                    _paris(due) if due is not None else "",
                ]
            )
        return _zip("campagne.csv", rows)


def _paris_minute(fields: Mapping[str, FieldValue], name: str) -> datetime:
    written = (httpapi.text(fields, name) or "").strip()
    try:
        local = datetime.strptime(written, "%Y-%m-%d %H:%M")
    except ValueError:
        raise Refused(GeneralError(codes.INTERNAL, name, "format YYYY-MM-DD hh:mm")) from None
    if local.year < 1970:
        raise Refused(GeneralError(codes.INTERNAL, name, "year from 1970"))
    return local.replace(tzinfo=PARIS)


def _paris(instant: datetime) -> str:
    return instant.astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")


def _zip(name: str, rows: list[list[str]]) -> Response:
    text = io.StringIO()
    csv.writer(text, delimiter=";", lineterminator="\r\n").writerows(rows)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(name, text.getvalue().encode("utf-8"))
    stem = name.rsplit(".", 1)[0]
    return Response(
        archive.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{stem}.zip"'},
    )

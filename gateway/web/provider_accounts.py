"""The provider's HTTP API for directories, sub-accounts and short links (SPEC §15), and the
emulator's own redirect of the short links it hands out (`GET /s/<code>`, not under /cgi-bin).

Where the provider's document gives no success code, success is the annex's 0 with a message
naming what was done; it gives 230 (sub-account added) and 250 (short link), as numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.core import codes, httpapi, numbers
from gateway.core.httpapi import FieldValue, GeneralError, Refused
from gateway.store import directories, shortlinks, subaccounts
from gateway.store.engine import write_transaction
from gateway.web.provider import Call, Endpoint, ProviderDeps, answer, cgi_routes

CHAMPS = tuple(f"champ{n}" for n in range(1, 28))
NAME_MAX = 200  # directories.name
LOGIN_MAX = 64  # accounts.login
PASSWORD_MAX = 128  # accounts.password
MAX_CREDIT_MOVE = 2**62  # the largest credit every backend stores
MAX_URL = 2048
CODE_MAX = 16  # shortlinks.code
_PRICE = re.compile(r"\d{1,12}(?:[.,]\d{1,8})?")

SUBACCOUNT_ADDED = 230
SHORTLINK_MADE = 250
DIRECTORY_CREATED = "Le repertoire a ete cree"
NUMBER_ADDED = "Le numero a ete ajoute au repertoire"
NUMBER_REMOVED = "Le numero a ete supprime du repertoire"
NUMBER_ABSENT = "Le numero n'est pas dans le repertoire"
ACCOUNT_ADDED = "Le sous compte a ete ajoute"
CREDIT_MOVED = "Le credit a ete ajoute au sous compte"
RESTRICTION_SET = "Les restrictions du sous compte ont ete modifiees"
PRICE_SET = "Le prix du sous compte a ete enregistre"
SHORTLINK_MESSAGE = "Le lien court a ete genere"


def _refuse(field: str, detail: str) -> Refused:
    return Refused(GeneralError(codes.INTERNAL, field, detail))


class ProviderAccounts:
    """`/repertoire`, `/subaccount` and `/shortlink`; each gets an authorised Call."""

    def __init__(self, deps: ProviderDeps) -> None:
        self.deps = deps

    def routes(self) -> list[BaseRoute]:
        # The edit field says what to do, so either method does it: a client that posts a
        # form for everything still works.
        endpoints: list[tuple[str, Endpoint, list[str]]] = [
            ("/repertoire", self.repertoire, ["POST", "PUT"]),
            ("/subaccount", self.subaccount, ["POST", "PUT"]),
            ("/shortlink", self.shortlink, ["POST"]),
        ]
        return [
            *cgi_routes(self.deps, endpoints),
            Route("/s/{code}", self.follow, methods=["GET"], name="shortlink"),
        ]

    # Directories ------------------------------------------------------------------------------

    async def repertoire(self, call: Call) -> Response:
        edit = (httpapi.text(call.fields, "repertoireEdit") or "").strip()
        if edit == "create":
            return await self._create_directory(call)
        if edit in ("add", "del"):
            return await self._edit_directory(call, adding=edit == "add")
        raise _refuse("repertoireEdit", 'must be "create", "add" or "del"')

    async def _create_directory(self, call: Call) -> Response:
        name = (httpapi.text(call.fields, "repertoireNom", required=True) or "").strip()
        if not name or len(name) > NAME_MAX:
            raise _refuse("repertoireNom", f"from 1 to {NAME_MAX} characters")
        async with write_transaction(self.deps.engine) as conn:
            directory_id = await directories.create(
                conn, call.account.id, name, self.deps.clock.now()
            )
        entry = {"code": "0", "message": DIRECTORY_CREATED, "repertoireId": str(directory_id)}
        return answer(httpapi.etat([entry]))

    async def _edit_directory(self, call: Call, *, adding: bool) -> Response:
        """One entry per number, in order; a malformed number gets its code and is left out."""
        written_id = (httpapi.text(call.fields, "repertoireId", required=True) or "").strip()
        directory_id = int(written_id) if _is_digits(written_id, 18) else None
        tels = httpapi.texts(call.fields, "num")
        if not tels:
            raise _refuse("num", "missing")
        if len(tels) > self.deps.rules.max_recipients:
            raise Refused(GeneralError(codes.TOO_MANY_NUMBERS, "num"))
        champs = _champs(call.fields, len(tels)) if adding else {}
        checked = [numbers.check_format(tel, international_allowed=True) for tel in tels]
        wanted: dict[str, dict[str, str]] = {}  # normalised number → its fields; the last wins
        for index, (code, number) in enumerate(checked):
            if code is None:
                wanted[number] = {name: values[index] for name, values in champs.items()}
        owned, removed = False, set[str]()
        async with write_transaction(self.deps.engine) as conn:
            if directory_id is not None and adding:
                owned = await directories.add(
                    conn, call.account.id, directory_id, wanted, self.deps.clock.now()
                )
            elif directory_id is not None:
                gone = await directories.remove(conn, call.account.id, directory_id, [*wanted])
                owned, removed = gone is not None, gone or set()
        if not owned:
            raise _refuse("repertoireId", "no such directory for this account")
        entries = []
        for tel, (code, number) in zip(tels, checked, strict=True):
            if code is not None:
                message = codes.message(code)
            elif adding:
                message = NUMBER_ADDED
            else:
                message = NUMBER_REMOVED if number in removed else NUMBER_ABSENT
            entries.append(
                {"code": str(code or 0), "message": message, "tel": tel, "repertoireId": written_id}
            )
        return answer(httpapi.etat(entries))

    # Sub-accounts -----------------------------------------------------------------------------

    async def subaccount(self, call: Call) -> Response:
        edit = (httpapi.text(call.fields, "subAccountEdit") or "").strip()
        if edit == "addAccount":
            return await self._add_account(call)
        if edit in ("addCredit", "setRestriction", "setPrice"):
            return await self._edit_account(call, edit)
        raise _refuse(
            "subAccountEdit", 'must be "addAccount", "addCredit", "setRestriction" or "setPrice"'
        )

    async def _add_account(self, call: Call) -> Response:
        login = (httpapi.text(call.fields, "subAccountLogin", required=True) or "").strip()
        if not login or len(login) > LOGIN_MAX:
            raise _refuse("subAccountLogin", f"from 1 to {LOGIN_MAX} characters")
        password = httpapi.text(call.fields, "subAccountPassword", required=True) or ""
        if not password.strip() or len(password) > PASSWORD_MAX:
            raise _refuse("subAccountPassword", f"from 1 to {PASSWORD_MAX} characters")
        created = await subaccounts.create(
            self.deps.engine, call.account.id, login, password, self.deps.clock.now()
        )
        if created is None:
            raise _refuse("subAccountLogin", "already taken")
        entry = {
            "code": SUBACCOUNT_ADDED,
            "message": ACCOUNT_ADDED,
            "subAccountId": str(created["id"]),
            "subAccountKeyId": created["keyid"],
            "subAccountLogin": login,
        }
        return answer(httpapi.etat([entry]))

    async def _edit_account(self, call: Call, edit: str) -> Response:
        """addCredit, setRestriction or setPrice on a sub-account of the caller; every field is
        checked before anything is written."""
        fields = call.fields
        keyid = (httpapi.text(fields, "subAccountKeyId", required=True) or "").strip()
        if not keyid:
            raise _refuse("subAccountKeyId", "missing")
        if edit == "addCredit":
            amount = _positive_integer(fields, "subAccountAddCredit")
            message = CREDIT_MOVED
        elif edit == "setRestriction":
            stop = _switch(fields, "subAccountRestrictionStop")
            hours = _switch(fields, "subAccountRestrictionTime")
            if stop is None and hours is None:
                raise _refuse(
                    "subAccountRestrictionStop",
                    "give subAccountRestrictionStop or subAccountRestrictionTime",
                )
            message = RESTRICTION_SET
        else:
            price = (httpapi.text(fields, "subAccountPrice", required=True) or "").strip()
            if not _PRICE.fullmatch(price):
                raise _refuse("subAccountPrice", "a decimal number such as 0.045")
            message = PRICE_SET
        async with write_transaction(self.deps.engine) as conn:
            child_id = await subaccounts.child(conn, call.account.id, keyid)
            if child_id is None:
                raise _refuse("subAccountKeyId", "not a sub-account of this account")
            if edit == "addCredit":
                if not await subaccounts.move_credit(conn, call.account.id, child_id, amount):
                    raise Refused(GeneralError(codes.CREDIT_EXHAUSTED, "subAccountAddCredit"))
            elif edit == "setRestriction":
                # "1" = the restriction applies: the STOP mention is required, or quiet hours hold.
                await subaccounts.set_restrictions(
                    conn,
                    child_id,
                    nostop_allowed=None if stop is None else not stop,
                    quiet_hours_lifted=None if hours is None else not hours,
                )
            else:
                await subaccounts.set_price(conn, child_id, price)
        entry = {
            "code": "0",
            "message": message,
            "subAccountId": str(child_id),
            "subAccountKeyid": keyid,
        }
        return answer(httpapi.etat([entry]))

    # Short links ------------------------------------------------------------------------------

    async def shortlink(self, call: Call) -> Response:
        url = (httpapi.text(call.fields, "shortlink", required=True) or "").strip()
        if not _is_web_url(url):
            raise _refuse("shortlink", f"an http or https URL of at most {MAX_URL} characters")
        code = await shortlinks.create(
            self.deps.engine, call.account.id, url, self.deps.clock.now()
        )
        # Served by the emulator itself, on the host the client called.
        link = str(call.request.url_for("shortlink", code=code))
        entry = {"code": SHORTLINK_MADE, "message": SHORTLINK_MESSAGE, "shortlink": link}
        return answer(httpapi.etat([entry]))

    async def follow(self, request: Request) -> Response:
        """302 to the stored URL, the hit counted; 404 for an unknown code."""
        code = request.path_params["code"]
        url = await shortlinks.follow(self.deps.engine, code) if len(code) <= CODE_MAX else None
        if url is None:
            return JSONResponse({"error": f"unknown short link {code!r}"}, 404)
        return RedirectResponse(url, 302)


def _champs(fields: Mapping[str, FieldValue], count: int) -> dict[str, list[str]]:
    """The given champ1…champ27 lists, each with one value per number."""
    found: dict[str, list[str]] = {}
    for name in CHAMPS:
        values = httpapi.texts(fields, name)
        if values is None:
            continue
        if len(values) != count:
            raise _refuse(name, f"one value per number ({len(values)} for {count})")
        found[name] = values
    return found


def _positive_integer(fields: Mapping[str, FieldValue], name: str) -> int:
    written = (httpapi.text(fields, name, required=True) or "").strip()
    if not _is_digits(written, 19) or not 1 <= int(written) <= MAX_CREDIT_MOVE:
        raise _refuse(name, "a positive whole number of SMS")
    return int(written)


def _switch(fields: Mapping[str, FieldValue], name: str) -> bool | None:
    written = httpapi.text(fields, name)
    if written is None:
        return None
    if written.strip() not in ("0", "1"):
        raise _refuse(name, 'must be "0" or "1"')
    return written.strip() == "1"


def _is_digits(text: str, most: int) -> bool:
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def _is_web_url(url: str) -> bool:
    if not url or len(url) > MAX_URL or any(c.isspace() or not c.isprintable() for c in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)

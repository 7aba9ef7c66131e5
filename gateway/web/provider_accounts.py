"""The provider's HTTP API for directories (SPEC §15).

Where the provider's document gives no success code, success is the annex's 0 with a message
naming what was done.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway.core import codes, httpapi, numbers
from gateway.core.httpapi import FieldValue, GeneralError, Refused
from gateway.store import directories
from gateway.store.engine import write_transaction
from gateway.web.provider import Call, Endpoint, ProviderDeps, answer, cgi_routes

CHAMPS = tuple(f"champ{n}" for n in range(1, 28))
NAME_MAX = 200  # directories.name

DIRECTORY_CREATED = "Le repertoire a ete cree"
NUMBER_ADDED = "Le numero a ete ajoute au repertoire"
NUMBER_REMOVED = "Le numero a ete supprime du repertoire"
NUMBER_ABSENT = "Le numero n'est pas dans le repertoire"


def _refuse(field: str, detail: str) -> Refused:
    return Refused(GeneralError(codes.INTERNAL, field, detail))


class ProviderAccounts:
    """`/repertoire`; it gets an authorised Call."""

    def __init__(self, deps: ProviderDeps) -> None:
        self.deps = deps

    def routes(self) -> list[BaseRoute]:
        # The edit field says what to do, so either method does it: a client that posts a
        # form for everything still works.
        endpoints: list[tuple[str, Endpoint, list[str]]] = [
            ("/repertoire", self.repertoire, ["POST", "PUT"]),
        ]
        return cgi_routes(self.deps, endpoints)

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


def _is_digits(text: str, most: int) -> bool:
    return 0 < len(text) <= most and text.isascii() and text.isdigit()

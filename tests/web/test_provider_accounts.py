"""Directories, sub-accounts and short links of the provider's HTTP API, through real HTTP; every
success answer checked against the provider's own OpenAPI document."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.core import codes
from gateway.store import accounts, directories
from gateway.store.tables import directory_entries, shortlinks
from gateway.web.server import start_http, stop_http
from tests import provider_schema
from tests.web.conftest import Rows, make_settings


async def _call(client: httpx.AsyncClient, method: str, path: str, **fields: Any) -> httpx.Response:
    return await client.request(method, f"/cgi-bin{path}", json=fields)


def _ok(answer: httpx.Response, path: str, method: str) -> dict[str, Any]:
    """The single entry of a success answer, the answer checked against the document."""
    assert answer.status_code == 200, answer.text
    provider_schema.validate(path, method, 200, answer.json())
    (entry,) = answer.json()["etat"]["etat"]
    return dict(entry)


def _refused(answer: httpx.Response, path: str, method: str) -> dict[str, str]:
    """The entry of a general error (HTTP 400, no `tel`), checked against the document."""
    assert answer.status_code == 400, answer.text
    provider_schema.validate(path, method, 400, answer.json())
    (entry,) = answer.json()["etat"]["etat"]
    assert set(entry) == {"code", "message"}
    return dict(entry)


async def _account(client: httpx.AsyncClient, keyid: str) -> dict[str, Any]:
    found = await client.get(f"/api/v1/accounts/{keyid}")
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


async def _new_account(client: httpx.AsyncClient, **fields: Any) -> str:
    created = await client.post("/api/v1/accounts", json={"domains": ["example.org"], **fields})
    assert created.status_code == 201, created.text
    return str(created.json()["keyid"])


# -- the schema check itself --------------------------------------------------------------------


def test_the_schema_check_refuses_an_undocumented_field() -> None:
    body = {"etat": {"etat": [{"code": "0", "subAccountKeyId": "x"}]}}  # the edit says Keyid
    with pytest.raises(jsonschema.ValidationError):
        provider_schema.validate("/subaccount", "put", 200, body)


def test_the_schema_check_refuses_code_230_written_as_a_string() -> None:
    body = {"etat": {"etat": [{"code": "230", "message": "Le sous compte a ete ajoute"}]}}
    with pytest.raises(jsonschema.ValidationError):
        provider_schema.validate("/subaccount", "post", 200, body)


# -- directories --------------------------------------------------------------------------------


async def _directory(client: httpx.AsyncClient, keyid: str = "demo") -> str:
    answer = await _call(
        client, "POST", "/repertoire", keyid=keyid, repertoireEdit="create", repertoireNom="Clients"
    )
    return str(_ok(answer, "/repertoire", "post")["repertoireId"])


async def _numbers(gateway: Gateway, directory: str, keyid: str = "demo") -> list[str] | None:
    async with gateway.engine.connect() as conn:
        account_id = await Rows(gateway).account_id(keyid)
        return await directories.directory_numbers(conn, account_id, int(directory))


async def test_create_answers_the_new_directory_id(client: httpx.AsyncClient) -> None:
    answer = await _call(
        client, "POST", "/repertoire", keyid="demo", repertoireEdit="create", repertoireNom="Test"
    )
    entry = _ok(answer, "/repertoire", "post")
    assert entry["code"] == "0" and entry["message"] == "Le repertoire a ete cree"
    assert re.fullmatch(r"\d+", entry["repertoireId"])


async def test_each_directory_gets_its_own_id(client: httpx.AsyncClient) -> None:
    assert await _directory(client) != await _directory(client)


async def test_create_without_a_name_is_999_naming_repertoireNom(
    client: httpx.AsyncClient,
) -> None:
    answer = await _call(client, "POST", "/repertoire", keyid="demo", repertoireEdit="create")
    entry = _refused(answer, "/repertoire", "post")
    assert entry["code"] == "999" and "repertoireNom" in entry["message"]


async def test_an_unknown_edit_is_999_naming_repertoireEdit(client: httpx.AsyncClient) -> None:
    answer = await _call(client, "PUT", "/repertoire", keyid="demo", repertoireEdit="purge")
    entry = _refused(answer, "/repertoire", "put")
    assert entry["code"] == "999" and "repertoireEdit" in entry["message"]


async def test_add_answers_one_entry_per_number_in_order(client: httpx.AsyncClient) -> None:
    directory = await _directory(client)
    answer = await _call(
        client,
        "PUT",
        "/repertoire",
        keyid="demo",
        repertoireEdit="add",
        repertoireId=directory,
        num=["06 01 02 03 04", "12", "", "+33701020304"],
    )
    assert answer.status_code == 200, answer.text
    provider_schema.validate("/repertoire", "put", 200, answer.json())
    added = "Le numero a ete ajoute au repertoire"
    assert answer.json()["etat"]["etat"] == [
        {"code": "0", "message": added, "tel": "06 01 02 03 04", "repertoireId": directory},
        {"code": "7", "message": codes.MESSAGES[7], "tel": "12", "repertoireId": directory},
        {"code": "6", "message": codes.MESSAGES[6], "tel": "", "repertoireId": directory},
        {"code": "0", "message": added, "tel": "+33701020304", "repertoireId": directory},
    ]


async def test_added_numbers_are_stored_normalised_and_malformed_ones_left_out(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    directory = await _directory(client)
    await _call(
        client,
        "PUT",
        "/repertoire",
        keyid="demo",
        repertoireEdit="add",
        repertoireId=directory,
        num=["06 01 02 03 04", "12", "+33701020304"],
    )
    assert await _numbers(gateway, directory) == ["0601020304", "0701020304"]


async def test_added_numbers_keep_their_champ_values(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    directory = await _directory(client)
    await _call(
        client,
        "PUT",
        "/repertoire",
        keyid="demo",
        repertoireEdit="add",
        repertoireId=directory,
        num=["0601020304", "0601020305"],
        champ1=["Martin", "Durand"],
        champ27=["z1", "z2"],
    )
    async with gateway.engine.connect() as conn:
        rows = await conn.execute(
            select(directory_entries.c.number, directory_entries.c.fields).order_by(
                directory_entries.c.number
            )
        )
        stored = [tuple(row) for row in rows]
    assert stored == [
        ("0601020304", {"champ1": "Martin", "champ27": "z1"}),
        ("0601020305", {"champ1": "Durand", "champ27": "z2"}),
    ]


async def test_adding_a_number_again_keeps_one_entry_with_the_new_values(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    directory = await _directory(client)
    for name in ("Martin", "Durand"):
        await _call(
            client,
            "PUT",
            "/repertoire",
            keyid="demo",
            repertoireEdit="add",
            repertoireId=directory,
            num="0601020304",
            champ1=name,
        )
    async with gateway.engine.connect() as conn:
        rows = (await conn.execute(select(directory_entries.c.fields))).scalars().all()
    assert rows == [{"champ1": "Durand"}]


async def test_a_champ_list_not_aligned_with_num_is_999_naming_it(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    directory = await _directory(client)
    answer = await _call(
        client,
        "PUT",
        "/repertoire",
        keyid="demo",
        repertoireEdit="add",
        repertoireId=directory,
        num=["0601020304", "0601020305"],
        champ3=["only one"],
    )
    entry = _refused(answer, "/repertoire", "put")
    assert entry["code"] == "999" and "champ3" in entry["message"]
    assert await _numbers(gateway, directory) == []


async def test_del_removes_numbers_and_says_which_were_absent(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    directory = await _directory(client)
    await _call(
        client,
        "PUT",
        "/repertoire",
        keyid="demo",
        repertoireEdit="add",
        repertoireId=directory,
        num=["0601020304", "0601020305"],
    )
    answer = await _call(
        client,
        "PUT",
        "/repertoire",
        keyid="demo",
        repertoireEdit="del",
        repertoireId=directory,
        num=["+33 6 01 02 03 04", "0601020309"],
    )
    assert answer.status_code == 200, answer.text
    provider_schema.validate("/repertoire", "put", 200, answer.json())
    assert [e["message"] for e in answer.json()["etat"]["etat"]] == [
        "Le numero a ete supprime du repertoire",
        "Le numero n'est pas dans le repertoire",
    ]
    assert await _numbers(gateway, directory) == ["0601020305"]


async def test_a_directory_of_another_account_is_999_and_untouched(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    directory = await _directory(client)
    other = await _new_account(client)
    answer = await _call(
        client,
        "PUT",
        "/repertoire",
        keyid=other,
        repertoireEdit="add",
        repertoireId=directory,
        num="0601020304",
    )
    entry = _refused(answer, "/repertoire", "put")
    assert entry["code"] == "999" and "repertoireId" in entry["message"]
    assert await _numbers(gateway, directory) == []


@pytest.mark.parametrize("directory", ["424242", "abc", ""])
async def test_an_unknown_directory_is_999_naming_repertoireId(
    client: httpx.AsyncClient, directory: str
) -> None:
    answer = await _call(
        client,
        "PUT",
        "/repertoire",
        keyid="demo",
        repertoireEdit="del",
        repertoireId=directory,
        num="0601020304",
    )
    entry = _refused(answer, "/repertoire", "put")
    assert entry["code"] == "999" and "repertoireId" in entry["message"]


async def test_more_numbers_than_allowed_is_23(client: httpx.AsyncClient) -> None:
    directory = await _directory(client)
    answer = await _call(
        client,
        "PUT",
        "/repertoire",
        keyid="demo",
        repertoireEdit="add",
        repertoireId=directory,
        num=[f"06010{n:05d}" for n in range(501)],
    )
    assert _refused(answer, "/repertoire", "put")["code"] == "23"


async def test_directory_edits_from_a_php_form(client: httpx.AsyncClient, gateway: Gateway) -> None:
    directory = await _directory(client)
    answer = await client.put(
        "/cgi-bin/repertoire",
        data={
            "keyid": "demo",
            "repertoireEdit": "add",
            "repertoireId": directory,
            "num[]": ["0601020304", "0601020305"],
            "champ1[]": ["Martin", "Durand"],
        },
    )
    assert answer.status_code == 200, answer.text
    assert await _numbers(gateway, directory) == ["0601020304", "0601020305"]


async def test_directory_numbers_is_none_for_another_accounts_directory(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    directory = await _directory(client)
    other = await _new_account(client)
    assert await _numbers(gateway, directory, keyid=other) is None


# -- sub-accounts -------------------------------------------------------------------------------


async def _sub_account(
    client: httpx.AsyncClient, parent: str = "demo", login: str = "agence06"
) -> dict[str, Any]:
    answer = await _call(
        client,
        "POST",
        "/subaccount",
        keyid=parent,
        subAccountEdit="addAccount",
        subAccountLogin=login,
        subAccountPassword="s3cret",
    )
    return _ok(answer, "/subaccount", "post")


async def _edit(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await _call(client, "PUT", "/subaccount", **{"keyid": "demo", **fields})


async def test_add_account_answers_230_with_its_own_keyid(client: httpx.AsyncClient) -> None:
    entry = await _sub_account(client)
    assert entry["code"] == 230
    assert entry["message"] == "Le sous compte a ete ajoute"
    assert entry["subAccountLogin"] == "agence06"
    assert entry["subAccountKeyId"] not in ("", "demo")
    assert re.fullmatch(r"\d+", entry["subAccountId"])


async def test_a_sub_account_inherits_its_parent_with_no_credit(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    parent = await _new_account(
        client,
        senders=["Agence"],
        credit=50,
        nostop_allowed=True,
        quiet_hours_lifted=True,
        international_allowed=True,
    )
    created = await _sub_account(client, parent=parent)
    child = await _account(client, created["subAccountKeyId"])
    parent_row = await _account(client, parent)
    inherited = [
        "domains",
        "senders",
        "nostop_allowed",
        "quiet_hours_lifted",
        "international_allowed",
    ]
    assert {k: child[k] for k in inherited} == {k: parent_row[k] for k in inherited}
    assert (child["credit"], child["login"]) == (0, "agence06")
    assert await accounts.password_for(rows.gateway.engine, "agence06") == "s3cret"
    assert child["parent_id"] == await rows.account_id(parent)


async def test_a_sub_account_keyid_opens_the_api(client: httpx.AsyncClient) -> None:
    created = await _sub_account(client)
    answer = await client.get(
        "/cgi-bin/credit", params={"keyid": created["subAccountKeyId"], "credit": "1"}
    )
    assert answer.json() == {"etat": {"credit": 0}}


async def test_a_taken_login_is_999_naming_subAccountLogin(client: httpx.AsyncClient) -> None:
    answer = await _call(
        client,
        "POST",
        "/subaccount",
        keyid="demo",
        subAccountEdit="addAccount",
        subAccountLogin="demo",
        subAccountPassword="x",
    )
    entry = _refused(answer, "/subaccount", "post")
    assert entry["code"] == "999" and "subAccountLogin" in entry["message"]


async def test_an_unknown_sub_account_edit_is_999(client: httpx.AsyncClient) -> None:
    entry = _refused(await _edit(client, subAccountEdit="delete"), "/subaccount", "put")
    assert entry["code"] == "999" and "subAccountEdit" in entry["message"]


async def test_add_credit_moves_credit_from_the_parent(client: httpx.AsyncClient) -> None:
    created = await _sub_account(client)
    answer = await _edit(
        client,
        subAccountEdit="addCredit",
        subAccountKeyId=created["subAccountKeyId"],
        subAccountAddCredit="300",
    )
    assert _ok(answer, "/subaccount", "put") == {
        "code": "0",
        "message": "Le credit a ete ajoute au sous compte",
        "subAccountId": created["subAccountId"],
        "subAccountKeyid": created["subAccountKeyId"],
    }
    assert (await _account(client, "demo"))["credit"] == 700
    assert (await _account(client, created["subAccountKeyId"]))["credit"] == 300


async def test_add_credit_beyond_the_parents_credit_is_12_and_moves_nothing(
    client: httpx.AsyncClient,
) -> None:
    created = await _sub_account(client)
    answer = await _edit(
        client,
        subAccountEdit="addCredit",
        subAccountKeyId=created["subAccountKeyId"],
        subAccountAddCredit=1001,
    )
    assert _refused(answer, "/subaccount", "put") == {"code": "12", "message": codes.MESSAGES[12]}
    assert (await _account(client, "demo"))["credit"] == 1000
    assert (await _account(client, created["subAccountKeyId"]))["credit"] == 0


@pytest.mark.parametrize("amount", ["0", "-5", "1.5", "dix", "", 2**63])
async def test_add_credit_must_be_a_positive_whole_number(
    client: httpx.AsyncClient, amount: object
) -> None:
    created = await _sub_account(client)
    answer = await _edit(
        client,
        subAccountEdit="addCredit",
        subAccountKeyId=created["subAccountKeyId"],
        subAccountAddCredit=amount,
    )
    entry = _refused(answer, "/subaccount", "put")
    assert entry["code"] == "999" and "subAccountAddCredit" in entry["message"]


async def _concurrent_moves(client: httpx.AsyncClient) -> None:
    """20 moves of 75 SMS from a parent holding 1000, to two sub-accounts at once: 13 fit."""
    parent = await _new_account(client, credit=1000)
    children = [
        (await _sub_account(client, parent=parent, login=f"{parent}-{n}"))["subAccountKeyId"]
        for n in range(2)
    ]
    answers = await asyncio.gather(
        *(
            _edit(
                client,
                keyid=parent,
                subAccountEdit="addCredit",
                subAccountKeyId=children[n % 2],
                subAccountAddCredit="75",
            )
            for n in range(20)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 13 + [400] * 7
    assert {a.json()["etat"]["etat"][0]["code"] for a in answers if a.status_code == 400} == {"12"}
    left = (await _account(client, parent))["credit"]
    given = [(await _account(client, child))["credit"] for child in children]
    assert left == 25
    assert left + sum(given) == 1000


async def test_concurrent_credit_moves_never_overdraw_the_parent(
    client: httpx.AsyncClient,
) -> None:
    await _concurrent_moves(client)


@pytest.fixture
async def postgres_client(tmp_path: Path, postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(make_settings(tmp_path, database={"url": postgres_url}))
    await gateway.prepare_database()
    server, task, port = await start_http(gateway.web)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        await stop_http(server, task)
        await gateway.engine.dispose()


@pytest.mark.postgres
async def test_concurrent_credit_moves_never_overdraw_the_parent_on_postgresql(
    postgres_client: httpx.AsyncClient,
) -> None:
    await _concurrent_moves(postgres_client)


async def test_set_restriction_1_restricts_and_0_lifts(client: httpx.AsyncClient) -> None:
    created = await _sub_account(client)
    keyid = created["subAccountKeyId"]
    answer = await _edit(
        client,
        subAccountEdit="setRestriction",
        subAccountKeyId=keyid,
        subAccountRestrictionStop="0",
        subAccountRestrictionTime="0",
    )
    assert _ok(answer, "/subaccount", "put")["code"] == "0"
    lifted = await _account(client, keyid)
    assert (lifted["nostop_allowed"], lifted["quiet_hours_lifted"]) == (True, True)
    await _edit(
        client,
        subAccountEdit="setRestriction",
        subAccountKeyId=keyid,
        subAccountRestrictionStop="1",
    )
    stop_again = await _account(client, keyid)
    assert (stop_again["nostop_allowed"], stop_again["quiet_hours_lifted"]) == (False, True)


async def test_set_restriction_needs_one_of_its_fields(client: httpx.AsyncClient) -> None:
    created = await _sub_account(client)
    answer = await _edit(
        client, subAccountEdit="setRestriction", subAccountKeyId=created["subAccountKeyId"]
    )
    entry = _refused(answer, "/subaccount", "put")
    assert entry["code"] == "999" and "subAccountRestrictionStop" in entry["message"]


async def test_a_restriction_other_than_0_or_1_is_999(client: httpx.AsyncClient) -> None:
    created = await _sub_account(client)
    answer = await _edit(
        client,
        subAccountEdit="setRestriction",
        subAccountKeyId=created["subAccountKeyId"],
        subAccountRestrictionTime="yes",
    )
    entry = _refused(answer, "/subaccount", "put")
    assert entry["code"] == "999" and "subAccountRestrictionTime" in entry["message"]


async def test_set_price_is_recorded(client: httpx.AsyncClient) -> None:
    created = await _sub_account(client)
    answer = await _edit(
        client,
        subAccountEdit="setPrice",
        subAccountKeyId=created["subAccountKeyId"],
        subAccountPrice="0.045",
    )
    assert _ok(answer, "/subaccount", "put")["message"] == "Le prix du sous compte a ete enregistre"
    assert (await _account(client, created["subAccountKeyId"]))["price"] == "0.045"


async def test_a_price_must_be_a_number(client: httpx.AsyncClient) -> None:
    created = await _sub_account(client)
    answer = await _edit(
        client,
        subAccountEdit="setPrice",
        subAccountKeyId=created["subAccountKeyId"],
        subAccountPrice="cheap",
    )
    entry = _refused(answer, "/subaccount", "put")
    assert entry["code"] == "999" and "subAccountPrice" in entry["message"]


async def test_only_the_parent_may_edit_a_sub_account(client: httpx.AsyncClient) -> None:
    created = await _sub_account(client)
    other = await _new_account(client, credit=100)
    answer = await _edit(
        client,
        keyid=other,
        subAccountEdit="addCredit",
        subAccountKeyId=created["subAccountKeyId"],
        subAccountAddCredit="10",
    )
    entry = _refused(answer, "/subaccount", "put")
    assert entry["code"] == "999" and "subAccountKeyId" in entry["message"]
    assert (await _account(client, other))["credit"] == 100


async def test_an_account_is_not_its_own_sub_account(client: httpx.AsyncClient) -> None:
    answer = await _edit(
        client, subAccountEdit="setPrice", subAccountKeyId="demo", subAccountPrice="1"
    )
    entry = _refused(answer, "/subaccount", "put")
    assert entry["code"] == "999" and "subAccountKeyId" in entry["message"]


# -- short links --------------------------------------------------------------------------------


async def _shorten(client: httpx.AsyncClient, url: str) -> str:
    answer = await _call(client, "POST", "/shortlink", keyid="demo", shortlink=url)
    entry = _ok(answer, "/shortlink", "post")
    assert (entry["code"], entry["message"]) == (250, "Le lien court a ete genere")
    return str(entry["shortlink"])


async def test_a_short_link_is_served_by_the_emulator_on_the_called_host(
    client: httpx.AsyncClient, base_url: str
) -> None:
    link = await _shorten(client, "https://example.com/promo?id=1")
    assert re.fullmatch(re.escape(base_url) + r"/s/[A-Za-z0-9_-]{4,8}", link)


async def test_each_url_gets_its_own_code(client: httpx.AsyncClient) -> None:
    links = {await _shorten(client, "https://example.com/") for _ in range(5)}
    assert len(links) == 5


async def test_following_a_short_link_redirects_and_counts_the_hit(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    link = await _shorten(client, "https://example.com/promo?id=1")
    for _ in range(2):
        followed = await client.get(link, follow_redirects=False)
        assert followed.status_code == 302
        assert followed.headers["location"] == "https://example.com/promo?id=1"
    async with gateway.engine.connect() as conn:
        hits = (await conn.execute(select(shortlinks.c.hits))).scalar_one()
    assert hits == 2


async def test_an_unknown_short_link_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/s/nothing")).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "javascript:alert(1)",
        "example.com/promo",
        "https://",
        "https://example.com/a b",
        "https://example.com/" + "a" * 2030,
    ],
)
async def test_a_short_link_needs_an_http_url_of_at_most_2048_characters(
    client: httpx.AsyncClient, url: str
) -> None:
    answer = await _call(client, "POST", "/shortlink", keyid="demo", shortlink=url)
    entry = _refused(answer, "/shortlink", "post")
    assert entry["code"] == "999" and "shortlink" in entry["message"]


async def test_a_url_of_exactly_2048_characters_is_shortened(client: httpx.AsyncClient) -> None:
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    link = await _shorten(client, url)
    followed = await client.get(link, follow_redirects=False)
    assert followed.headers["location"] == url

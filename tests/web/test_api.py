"""The HTTP API over real HTTP: lists, long-polling, accounts, clock, faults, reset, operations."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import event, insert, text
from starlette.routing import Mount, Route

from gateway.app import Gateway
from gateway.core.codes import MESSAGES
from gateway.errors import ConfigError
from gateway.store import reads
from gateway.store.tables import email_ids
from gateway.testing import RunningGateway
from gateway.web import models
from gateway.web.api import CHUNK, _answer, _answer_page, create_app
from gateway.web.server import bind, start_http, stop_http
from tests.web.conftest import Rows, make_settings

pytestmark = pytest.mark.asyncio

JSON_TYPE = {"Content-Type": "application/json"}


async def items(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# SMS ------------------------------------------------------------------------------------------


async def test_sms_item_has_the_documented_fields(client: httpx.AsyncClient, rows: Rows) -> None:
    await rows.sms(tracker="t-1", email_id="42")
    body = await items(client, "/api/v1/sms")
    assert body["total"] == 1
    (item,) = body["items"]
    assert item == {
        "id": item["id"],
        "to": "0601020304",
        "sender": "MaSociete",
        "text": "Bonjour\r\nSTOP SMS au 36111",
        "parts": 1,
        "encoding": "gsm7",
        "tracker": "t-1",
        "account": "demo",
        "email_id": "42",
        "created_at": "2026-12-01T09:00:00+00:00",
        "channel": "mail",
        "state": "sent",
        "due_at": None,
    }


async def test_sms_filter_by_to_normalises_the_number(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    await rows.sms(to="0601020304")
    await rows.sms(to="0701020304")
    body = await items(client, "/api/v1/sms", to="+33 6 01 02 03 04")
    assert [i["to"] for i in body["items"]] == ["0601020304"]
    assert body["total"] == 1


async def test_sms_filter_by_account(client: httpx.AsyncClient, rows: Rows) -> None:
    await client.post("/api/v1/accounts", json={"keyid": "other"})
    await rows.sms(keyid="other", text="theirs")
    await rows.sms(text="ours")
    body = await items(client, "/api/v1/sms", account="other")
    assert [i["text"] for i in body["items"]] == ["theirs"]
    assert (await items(client, "/api/v1/sms", account="nobody"))["total"] == 0


async def test_sms_filter_by_tracker(client: httpx.AsyncClient, rows: Rows) -> None:
    await rows.sms(tracker="a")
    await rows.sms(tracker="b")
    assert [i["tracker"] for i in (await items(client, "/api/v1/sms", tracker="b"))["items"]] == [
        "b"
    ]


async def test_sms_filter_by_email_id(client: httpx.AsyncClient, rows: Rows) -> None:
    await rows.sms(email_id="7")
    await rows.sms(email_id="8")
    body = await items(client, "/api/v1/sms", email_id="8")
    assert [i["email_id"] for i in body["items"]] == ["8"]


async def test_empty_filter_values_are_ignored(client: httpx.AsyncClient, rows: Rows) -> None:
    await rows.sms()
    assert (await items(client, "/api/v1/sms", to="", account="", email_id=""))["total"] == 1


async def test_lists_are_newest_first_and_paginated_with_the_total(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    ids = [await rows.sms(text=f"n{n}") for n in range(5)]
    first = await items(client, "/api/v1/sms", limit=2)
    second = await items(client, "/api/v1/sms", limit=2, offset=2)
    last = await items(client, "/api/v1/sms", limit=2, offset=4)
    assert [i["id"] for i in first["items"]] == ids[::-1][:2]
    assert [i["id"] for i in second["items"]] == ids[::-1][2:4]
    assert [i["id"] for i in last["items"]] == ids[:1]
    assert first["total"] == second["total"] == last["total"] == 5


@pytest.mark.parametrize("path", ["/api/v1/sms", "/api/v1/emails", "/api/v1/replies"])
async def test_before_id_gives_the_page_below_that_id_with_the_total_of_all_matches(
    client: httpx.AsyncClient, rows: Rows, path: str
) -> None:
    write = {"/api/v1/sms": rows.sms, "/api/v1/emails": rows.email, "/api/v1/replies": rows.reply}
    ids = [await write[path]() for _ in range(5)]
    page = await items(client, path, limit=2, before_id=ids[3])
    assert [i["id"] for i in page["items"]] == [ids[2], ids[1]]
    assert page["total"] == (await items(client, path, limit=0))["total"]


async def test_limit_zero_gives_only_the_total(client: httpx.AsyncClient, rows: Rows) -> None:
    await rows.sms()
    assert await items(client, "/api/v1/sms", limit=0) == {"items": [], "total": 1}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", "1001"),
        ("limit", "-1"),
        ("limit", "ten"),
        ("offset", "-5"),
        ("before_id", "0"),
        ("wait_for", "x"),
        ("timeout", "31"),
        ("timeout", "nan"),
    ],
)
async def test_bad_paging_is_400_naming_the_parameter(
    client: httpx.AsyncClient, param: str, value: str
) -> None:
    response = await client.get("/api/v1/sms", params={param: value})
    assert response.status_code == 400
    assert response.json()["field"] == param
    assert param in response.json()["error"]


async def test_unknown_parameter_is_400_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/replies", params={"emailid": "42"})
    assert response.status_code == 400
    assert response.json()["field"] == "emailid"


# Emails ---------------------------------------------------------------------------------------


async def test_email_item_has_status_codes_and_raw_link(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    await rows.email(
        status="refused", reason="unknown keyid", code=3, email_id="9", warnings=["nostop ignored"]
    )
    (item,) = (await items(client, "/api/v1/emails"))["items"]
    assert {k: item[k] for k in ("status", "reason", "code", "email_id", "account", "sender")} == {
        "status": "refused",
        "reason": "unknown keyid",
        "code": 3,
        "email_id": "9",
        "account": "demo",
        "sender": "app@example.com",
    }
    assert item["results"] == [
        {"tel": "0601020304", "code": 0, "message": "Votre message a bien été envoyé"}
    ]
    assert item["warnings"] == ["nostop ignored"]
    assert item["received_at"] == "2026-12-01T09:00:00+00:00"
    raw = await client.get(item["raw_url"])
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.content.startswith(b"From: app@example.com\r\n")


async def test_raw_of_a_missing_email_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/emails/999/raw")
    assert response.status_code == 404
    assert "999" in response.json()["error"]


async def test_emails_filter_by_status(client: httpx.AsyncClient, rows: Rows) -> None:
    await rows.email(status="processed")
    await rows.email(status="not_processed", reason="HTML only")
    body = await items(client, "/api/v1/emails", status="not_processed")
    assert [i["reason"] for i in body["items"]] == ["HTML only"]


async def test_emails_filter_by_email_id_and_account(client: httpx.AsyncClient, rows: Rows) -> None:
    await client.post("/api/v1/accounts", json={"keyid": "other"})
    await rows.email(email_id="1")
    await rows.email(email_id="2", account_id=await rows.account_id("other"), keyid="other")
    by_email_id = await items(client, "/api/v1/emails", email_id="2")
    assert [i["email_id"] for i in by_email_id["items"]] == ["2"]
    by_account = await items(client, "/api/v1/emails", account="demo")
    assert [i["account"] for i in by_account["items"]] == ["demo"]


async def test_unknown_email_status_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/emails", params={"status": "sent"})
    assert (response.status_code, response.json()["field"]) == (400, "status")


# Replies --------------------------------------------------------------------------------------


async def test_reply_item_has_xml_and_delivery_state(client: httpx.AsyncClient, rows: Rows) -> None:
    await rows.reply(
        kind="not",
        to="not@example.com",
        email_id="5",
        state="pending",
        attempts=2,
        last_error="connection refused",
    )
    (item,) = (await items(client, "/api/v1/replies"))["items"]
    assert {k: item[k] for k in ("kind", "to", "email_id", "state", "attempts", "last_error")} == {
        "kind": "not",
        "to": "not@example.com",
        "email_id": "5",
        "state": "pending",
        "attempts": 2,
        "last_error": "connection refused",
    }
    assert item["body"].startswith('<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert (item["created_at"], item["delivered_at"]) == ("2026-12-01T09:00:00+00:00", None)


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"kind": "not"}, ["b"]), ({"email_id": "2"}, ["b"]), ({"to": "a@example.com"}, ["a"])],
)
async def test_replies_filters(
    client: httpx.AsyncClient, rows: Rows, params: dict[str, str], expected: list[str]
) -> None:
    await rows.reply(kind="ack", email_id="1", to="a@example.com", body="a")
    await rows.reply(kind="not", email_id="2", to="b@example.com", body="b")
    assert [
        i["body"] for i in (await items(client, "/api/v1/replies", **params))["items"]
    ] == expected


async def test_unknown_reply_kind_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/replies", params={"kind": "nack"})
    assert (response.status_code, response.json()["field"]) == (400, "kind")


# Long-polling ---------------------------------------------------------------------------------


async def test_wait_for_answers_as_soon_as_a_row_arrives(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiting = asyncio.create_task(
        client.get(
            "/api/v1/replies",
            params={"email_id": "42", "kind": "not", "wait_for": 1, "timeout": 20},
        )
    )
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await rows.reply(kind="not", email_id="42")
    response = await asyncio.wait_for(waiting, 5)
    assert response.status_code == 200
    assert response.json()["total"] == 1
    assert loop.time() - started < 5


async def test_wait_for_times_out_with_what_there_is(client: httpx.AsyncClient, rows: Rows) -> None:
    await rows.sms()
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await client.get("/api/v1/sms", params={"wait_for": 3, "timeout": 0.6})
    assert response.status_code == 200
    assert response.json()["total"] == 1
    assert 0.6 <= loop.time() - started < 3


async def test_wait_for_sees_rows_written_by_another_replica(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    waiting = asyncio.create_task(
        client.get("/api/v1/emails", params={"wait_for": 1, "timeout": 20})
    )
    await asyncio.sleep(0.1)
    await rows.email(publish=False)  # no in-process notification: only the re-query sees it
    response = await asyncio.wait_for(waiting, 3)
    assert response.json()["total"] == 1


async def test_wait_for_already_met_answers_at_once(client: httpx.AsyncClient, rows: Rows) -> None:
    await rows.sms()
    response = await asyncio.wait_for(
        client.get("/api/v1/sms", params={"wait_for": 1, "timeout": 30}), 2
    )
    assert response.json()["total"] == 1


# Accounts -------------------------------------------------------------------------------------


async def test_create_account_returns_its_credentials(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/accounts", json={"company": "Acme", "domains": ["acme.test"], "credit": 5}
    )
    assert response.status_code == 201
    account = response.json()
    assert account["keyid"] and account["login"] and account["password"]
    assert (account["company"], account["domains"], account["credit"]) == ("Acme", ["acme.test"], 5)
    fetched = await client.get(f"/api/v1/accounts/{account['keyid']}")
    assert fetched.json() == {k: v for k, v in account.items() if k != "password"}


async def test_accounts_list_includes_the_demo_account(client: httpx.AsyncClient) -> None:
    body = await items(client, "/api/v1/accounts")
    assert [a["keyid"] for a in body["items"]] == ["demo"]
    assert body["total"] == 1


async def test_patch_account_sets_credit_and_flags(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    before = gateway.changes.versions["accounts"]
    response = await client.patch(
        "/api/v1/accounts/demo",
        json={"credit": 3, "quiet_hours_lifted": True, "blacklist": ["+33 6 99 99 99 99"]},
    )
    assert response.status_code == 200
    account = response.json()
    assert (account["credit"], account["quiet_hours_lifted"]) == (3, True)
    assert account["blacklist"] == ["0699999999"]
    assert gateway.changes.versions["accounts"] == before + 1


async def test_unknown_account_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/accounts/nope")).status_code == 404
    assert (await client.patch("/api/v1/accounts/nope", json={"credit": 1})).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"credit": -1}, "credit"),
        ({"domains": "example.com"}, "domains"),
        ({"colour": "red"}, "colour"),
        ({"keyid": ""}, "keyid"),
        ({"allowed_ips": ["x"]}, "allowed_ips"),
        ({"domains": ["not a domain"]}, "domains"),
        ({"senders": ["AB"]}, "senders"),
        ({"blacklist": ["12"]}, "blacklist"),
    ],
)
async def test_bad_account_field_is_400_naming_it(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/accounts", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


async def test_bad_patch_field_is_400_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.patch("/api/v1/accounts/demo", json={"rate_limit": "fast"})
    assert (response.status_code, response.json()["field"]) == (400, "rate_limit")


async def test_account_body_must_be_a_json_object(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/accounts", content=b"[1, 2]", headers=JSON_TYPE)
    assert (response.status_code, response.json()["field"]) == (400, "body")
    response = await client.post("/api/v1/accounts", content=b"{nope", headers=JSON_TYPE)
    assert (response.status_code, response.json()["field"]) == (400, "body")


async def test_duplicate_keyid_or_login_is_409(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/accounts", json={"keyid": "demo"})
    assert (response.status_code, response.json()["field"]) == (409, "keyid")
    response = await client.post("/api/v1/accounts", json={"keyid": "new", "login": "demo"})
    assert (response.status_code, response.json()["field"]) == (409, "login")
    await client.post("/api/v1/accounts", json={"keyid": "b", "login": "b"})
    response = await client.patch("/api/v1/accounts/b", json={"login": "demo"})
    assert (response.status_code, response.json()["field"]) == (409, "login")


# Clock ----------------------------------------------------------------------------------------


async def test_clock_starts_at_the_configured_instant(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/clock")).json() == {
        "now": "2026-12-01T09:00:00+00:00",
        "frozen": True,
    }


async def test_put_clock_freezes_and_delete_releases(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    response = await client.put("/api/v1/clock", json={"now": "2026-11-29T21:00:00+01:00"})
    assert response.json() == {"now": "2026-11-29T20:00:00+00:00", "frozen": True}
    assert gateway.clock.now().isoformat() == "2026-11-29T20:00:00+00:00"
    released = await client.delete("/api/v1/clock", headers=JSON_TYPE)
    assert released.json()["frozen"] is False
    assert (await client.get("/api/v1/clock")).json()["frozen"] is False


@pytest.mark.parametrize("now", ["tomorrow", "2026-11-29T21:00:00", 12, None])
async def test_bad_clock_instant_is_400_naming_now(client: httpx.AsyncClient, now: Any) -> None:
    response = await client.put("/api/v1/clock", json={"now": now})
    assert (response.status_code, response.json()["field"]) == (400, "now")


# Faults ---------------------------------------------------------------------------------------


async def test_post_fault_stores_it_with_the_number_normalised(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/faults",
        json={"code": 29, "count": 3, "number": "+33 6 01 02 03 04", "keyid": "demo"},
    )
    assert response.status_code == 201
    fault = response.json()
    assert {k: fault[k] for k in ("code", "remaining", "number", "keyid")} == {
        "code": 29,
        "remaining": 3,
        "number": "0601020304",
        "keyid": "demo",
    }
    assert (await items(client, "/api/v1/faults"))["items"] == [fault]


async def test_fault_count_defaults_to_one_and_filters_are_optional(
    client: httpx.AsyncClient,
) -> None:
    fault = (await client.post("/api/v1/faults", json={"code": 12})).json()
    assert (fault["remaining"], fault["number"], fault["keyid"]) == (1, None, None)


async def test_delete_faults_clears_them(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/faults", json={"code": 29, "count": 1})
    await client.post("/api/v1/faults", json={"code": 21, "count": 1})
    assert (await client.delete("/api/v1/faults", headers=JSON_TYPE)).json() == {"deleted": 2}
    assert (await items(client, "/api/v1/faults"))["total"] == 0


async def test_spent_faults_are_not_listed(client: httpx.AsyncClient, gateway: Gateway) -> None:
    await client.post("/api/v1/faults", json={"code": 29, "count": 1})
    async with gateway.engine.begin() as conn:
        await conn.execute(text("UPDATE faults SET remaining = 0"))
    assert (await items(client, "/api/v1/faults"))["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": 4242}, "code"),
        ({"code": "29"}, "code"),
        ({"code": 0}, "code"),
        ({"code": True}, "code"),
        ({}, "code"),
        ({"code": 29, "count": 0}, "count"),
        ({"code": 29, "number": " "}, "number"),
        ({"code": 29, "keyid": "nobody"}, "keyid"),
        ({"code": 29, "when": "now"}, "when"),
    ],
)
async def test_bad_fault_is_400_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/faults", json=body)
    assert (response.status_code, response.json()["field"]) == (400, field)


# Reset ----------------------------------------------------------------------------------------


async def test_delete_messages_forgets_everything_and_notifies(
    client: httpx.AsyncClient, rows: Rows, gateway: Gateway
) -> None:
    email_row = await rows.email(email_id="77")
    await rows.sms(email_row=email_row)
    await rows.reply(email_row=email_row)
    async with gateway.engine.begin() as conn:
        await conn.execute(
            insert(email_ids).values(account_id=await rows.account_id(), email_id="77")
        )
    before = dict(gateway.changes.versions)
    response = await client.delete("/api/v1/messages", headers=JSON_TYPE)
    assert response.json() == {"deleted": {"sms": 1, "replies": 1, "email_ids": 1, "emails": 1}}
    for path in ("/api/v1/sms", "/api/v1/emails", "/api/v1/replies"):
        assert (await items(client, path))["total"] == 0
    assert all(gateway.changes.versions[t] == before[t] + 1 for t in before)
    assert (await items(client, "/api/v1/accounts"))["total"] == 1


# Operations -----------------------------------------------------------------------------------


async def test_healthz_is_ok_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_healthz_is_503_when_the_database_fails(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+asyncpg://mail2sms:x@127.0.0.1:{port}/gateway"
    gw = Gateway(make_settings(tmp_path, database={"url": url}))
    transport = httpx.ASGITransport(app=create_app(gw.web))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.get("/healthz")
    await gw.engine.dispose()
    assert response.status_code == 503
    assert response.json()["status"] == "error"


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient, gateway: Gateway) -> None:
    gateway.metrics.email_done("processed", [0, 21], 0.004)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'mail2sms_emails_total{status="processed"} 1.0' in response.text
    assert 'mail2sms_recipients_total{code="21"} 1.0' in response.text


async def test_openapi_documents_every_route_and_method(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    served: set[tuple[str, str]] = set()
    for route in create_app(gateway.web).routes:
        if isinstance(route, Mount):
            continue
        assert isinstance(route, Route)
        if route.path.startswith(("/cgi-bin/", "/s/")):
            continue  # the provider's API and its short links: its own document (SPEC §15)
        path = route.path.replace("{id:int}", "{id}")
        served |= {(path, m.lower()) for m in route.methods or () if m != "HEAD"}
    assert documented == served
    refs = set(_refs(document))
    components = {
        f"#/components/{kind}/{name}"
        for kind, group in document["components"].items()
        for name in group
    }
    assert refs <= components


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


async def test_info_gives_the_stop_text_and_addresses(client: httpx.AsyncClient) -> None:
    info = await items(client, "/api/v1/info")
    assert info["stop_text"] == "STOP SMS au 36111"
    assert info["gateway_addresses"] == ["sendsms@isendpro-api.com"]


async def test_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing")
    assert (response.status_code, response.json()) == (404, {"error": "Not Found"})


async def test_page_and_its_files_are_served_with_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for name in ("app.js", "app.css"):
        assert (await client.get(f"/static/{name}")).status_code == 200


# Admin token ----------------------------------------------------------------------------------


@pytest.fixture
async def exposed(tmp_path: Path) -> Any:
    gw = Gateway(make_settings(tmp_path, http={"host": "0.0.0.0", "admin_token": "s3cret"}))
    await gw.prepare_database()
    transport = httpx.ASGITransport(app=create_app(gw.web))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8025") as client:
        yield client
    await gw.engine.dispose()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "s3cret", "Basic s3cret"])
async def test_writes_beyond_loopback_need_the_admin_token(
    exposed: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in [
        ("DELETE", "/api/v1/messages"),
        ("PUT", "/api/v1/clock"),
        ("POST", "/api/v1/accounts"),
        ("PATCH", "/api/v1/accounts/demo"),
        ("POST", "/api/v1/faults"),
        ("DELETE", "/api/v1/faults"),
    ]:
        response = await exposed.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path)
        assert "admin_token" in response.json()["error"]


async def test_the_providers_api_needs_its_keyid_not_the_admin_token(
    exposed: httpx.AsyncClient,
) -> None:
    response = await exposed.post("/cgi-bin/credit", json={"keyid": "demo", "credit": "1"})
    assert response.status_code == 200
    assert response.json() == {"etat": {"credit": 1000}}


async def test_admin_token_opens_writes_and_reads(exposed: httpx.AsyncClient) -> None:
    token = {"Authorization": "Bearer s3cret"}
    assert (await exposed.get("/api/v1/sms", headers=token)).status_code == 200
    response = await exposed.delete("/api/v1/messages", headers={**token, **JSON_TYPE})
    assert response.status_code == 200


async def test_empty_admin_token_beyond_loopback_refuses_every_write(tmp_path: Path) -> None:
    gw = Gateway(make_settings(tmp_path, http={"host": "0.0.0.0"}))
    transport = httpx.ASGITransport(app=create_app(gw.web))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.delete(
            "/api/v1/faults", headers={"Authorization": "Bearer ", **JSON_TYPE}
        )
    await gw.engine.dispose()
    assert response.status_code == 401


# Live updates ---------------------------------------------------------------------------------


async def _next_change(lines: Any) -> dict[str, int]:
    kind = None
    async for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind == "change":
            data: dict[str, int] = json.loads(line.removeprefix("data: "))
            return data
    raise AssertionError("the event stream ended")


async def test_events_stream_sends_a_change_when_rows_arrive(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    async with client.stream("GET", "/api/v1/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        first = await asyncio.wait_for(_next_change(lines), 5)
        await rows.sms()
        second = await asyncio.wait_for(_next_change(lines), 5)
    assert second["sms"] > first["sms"]
    assert second["replies"] == first["replies"]


async def test_events_stream_sees_another_replicas_writes(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    async with client.stream("GET", "/api/v1/events") as response:
        lines = response.aiter_lines()
        first = await asyncio.wait_for(_next_change(lines), 5)
        await rows.reply(publish=False)
        second = await asyncio.wait_for(_next_change(lines), 6)
    assert second["replies"] > first["replies"]


async def test_server_shutdown_ends_open_streams_and_long_polls(gateway: Gateway) -> None:
    server, task, port = await start_http(gateway.web)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        polling = asyncio.create_task(
            client.get("/api/v1/sms", params={"wait_for": 1, "timeout": 30})
        )
        async with client.stream("GET", "/api/v1/events") as response:
            lines = response.aiter_lines()
            await asyncio.wait_for(_next_change(lines), 5)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await stop_http(server, task)
            assert [line async for line in lines if line.startswith("event")] == []
        assert (await polling).status_code == 200
        assert loop.time() - started < 3


async def test_cancelling_the_server_task_shuts_it_down(gateway: Gateway) -> None:
    _, task, port = await start_http(gateway.web)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/healthz")


# Server ---------------------------------------------------------------------------------------


async def test_a_taken_port_is_an_error_naming_http_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=r"http\.port"):
            bind("127.0.0.1", port)


# Big pages ------------------------------------------------------------------------------------

MANY = 45  # more than HEAVY_ROWS rows read at once, more than CHUNK items written at once
RESULTS = [{"tel": f"06{n:08d}", "code": n % 3, "message": MESSAGES[0]} for n in range(500)]


async def _big_pages(gateway: Gateway, rows: Rows) -> dict[str, tuple[Any, reads.Page]]:
    """Each list's page model and page over MANY emails of 500 results, their SMS (some with a
    tracker, some of the HTTP API) and their replies."""
    for n in range(MANY):
        email_row = await rows.email(publish=False, email_id=str(n), results=RESULTS)
        await rows.sms(publish=False, email_row=email_row, tracker=f"t{n}" if n % 2 else "")
        await rows.sms(publish=False, channel="http")
        await rows.reply(publish=False, email_row=email_row, kind="not", body="<x/>" * 2000)
    async with gateway.engine.connect() as conn:
        found = {
            "sms": (models.SmsPage, await reads.list_sms(conn, limit=1000)),
            "emails": (models.EmailPage, await reads.list_emails(conn, limit=1000)),
            "replies": (models.ReplyPage, await reads.list_replies(conn, limit=1000)),
            "accounts": (models.AccountPage, await reads.list_accounts(conn, limit=1000)),
        }
    emails_page = found["emails"][1]
    linked = [{**item, "raw_url": f"http://x/{item['id']}"} for item in emails_page.items]
    found["emails"] = (models.EmailPage, reads.Page(linked, emails_page.total))
    return found


async def test_a_page_is_read_whole_across_its_partitions(gateway: Gateway, rows: Rows) -> None:
    pages = await _big_pages(gateway, rows)
    for name, size in (("emails", MANY), ("replies", MANY), ("sms", 2 * MANY)):
        page = pages[name][1]
        ids = [item["id"] for item in page.items]
        assert (len(ids), page.total) == (size, size), name
        assert ids == sorted(ids, reverse=True), name  # newest first
    assert pages["emails"][1].items[0]["results"] == RESULTS


async def test_a_page_is_written_as_its_model_writes_it_a_few_items_at_a_time(
    gateway: Gateway, rows: Rows
) -> None:
    for name, (model, page) in (await _big_pages(gateway, rows)).items():
        whole = _answer(model, page._asdict()).body
        assert (await _answer_page(model, page.items, page.total)).body == whole, name
    empty = await _answer_page(models.FaultPage, [], 0)
    assert empty.body == _answer(models.FaultPage, {"items": [], "total": 0}).body


async def test_a_page_lets_the_event_loop_through_between_its_chunks(
    gateway: Gateway, rows: Rows
) -> None:
    model, page = (await _big_pages(gateway, rows))["emails"]
    turns = 0

    async def other_client() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    running = asyncio.create_task(other_client())
    await asyncio.sleep(0)
    before = turns
    await _answer_page(model, page.items, page.total)
    running.cancel()
    assert turns - before >= -(-MANY // CHUNK)


# Query plans ----------------------------------------------------------------------------------

# A number's SMS: from its entries in sms_to, and the newest (no entry yet) by walking the
# ids after the last entered, never a scan of every SMS (gateway/store/by_number.py).
BY_NUMBER = "SEARCH sms_to USING PRIMARY KEY (run=? AND to=?"
LIST_FILTERS = [
    (reads.list_sms, {"to": "0601020304"}, BY_NUMBER),
    # The total by account is read from the counts the writer keeps, not counted.
    (reads.list_sms, {"account": "demo"}, ("sms_counts", "ix_sms_groups_account_id_id")),
    (reads.list_sms, {"channel": "mail"}, ("sms_counts", "ix_sms_groups_channel_id")),
    (reads.list_sms, {"tracker": "t"}, "ix_sms_tracker_id"),
    (reads.list_sms, {"email_id": "1"}, "ix_sms_groups_email_id_id"),
    (reads.list_emails, {"status": "refused"}, "ix_emails_status_id"),
    (reads.list_emails, {"email_id": "1"}, "ix_emails_email_id_id"),
    (reads.list_emails, {"account": "demo"}, "ix_emails_account_id_id"),
    (reads.list_replies, {"kind": "not"}, "ix_replies_kind_id"),
    (reads.list_replies, {"email_id": "1"}, "ix_replies_email_id_id"),
    (reads.list_replies, {"to": "a@example.com"}, "ix_replies_to_id"),
    (reads.list_sms, {"email_row": 1}, "ix_sms_groups_email_row"),
    (reads.list_emails, {"number": "0601020304"}, BY_NUMBER),
    (reads.list_emails, {"tracker": "t"}, "ix_sms_tracker_id"),
    (reads.list_replies, {"number": "0601020304"}, BY_NUMBER),
    (reads.list_replies, {"account": "demo"}, "ix_emails_account_id_id"),
]


@pytest.mark.parametrize(("fetch", "filters", "index"), LIST_FILTERS)
async def test_filtered_lists_use_their_index_without_sorting(
    gateway: Gateway, rows: Rows, fetch: Any, filters: dict[str, str], index: str | tuple[str, str]
) -> None:
    email_row = await rows.email(status="refused")
    await rows.reply(kind="not", to="a@example.com", email_row=email_row)
    await rows.sms(tracker="t", email_row=email_row)
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, params))

    event.listen(gateway.engine.sync_engine, "before_cursor_execute", capture)
    async with gateway.engine.connect() as conn:
        await fetch(conn, **filters, limit=10, offset=0)
        event.remove(gateway.engine.sync_engine, "before_cursor_execute", capture)
        assert len(statements) == 2  # COUNT(*), then the page
        indexes = (index, index) if isinstance(index, str) else index
        for (statement, params), index in zip(statements, indexes, strict=True):
            plan = " | ".join(
                str(row[-1])
                for row in (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params))
            )
            assert index in plan, plan
            assert "TEMP B-TREE" not in plan, plan
            if index == BY_NUMBER:
                assert "SEARCH sms USING INTEGER PRIMARY KEY (rowid>?)" in plan, plan


# The page's filters on every list, and one email in detail ------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


async def test_sms_filter_by_email_row_gives_that_emails_sms(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    first = await rows.email(email_id="7")
    second = await rows.email(email_id="7", status="duplicate")
    await rows.sms(email_row=first, email_id="7", to="0601020304")
    await rows.sms(email_row=second, email_id="7", to="0701020304")
    body = await items(client, "/api/v1/sms", email_row=second)
    assert [i["to"] for i in body["items"]] == ["0701020304"]


async def test_emails_filter_by_number_gives_the_emails_that_texted_it(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    texted = await rows.email(email_id="1")
    await rows.sms(email_row=texted, to="0601020304")
    other = await rows.email(email_id="2")
    await rows.sms(email_row=other, to="0701020304")
    body = await items(client, "/api/v1/emails", number="+33 6 01 02 03 04")
    assert [i["id"] for i in body["items"]] == [texted]


async def test_emails_filter_by_tracker_gives_the_emails_with_that_tracker(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    tracked = await rows.email(email_id="1")
    await rows.sms(email_row=tracked, tracker="promo")
    await rows.sms(email_row=await rows.email(email_id="2"), tracker="other")
    body = await items(client, "/api/v1/emails", tracker="promo")
    assert [i["id"] for i in body["items"]] == [tracked]


@pytest.mark.parametrize(("channel", "total"), [("mail", 1), ("http", 0)])
async def test_emails_filter_by_channel(
    client: httpx.AsyncClient, rows: Rows, channel: str, total: int
) -> None:
    await rows.email()
    assert (await items(client, "/api/v1/emails", channel=channel))["total"] == total


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"account": "other"}, ["b"]),
        ({"number": "07 01 02 03 04"}, ["b"]),
        ({"tracker": "t-a"}, ["a"]),
        ({"channel": "mail"}, ["b", "a"]),
        ({"channel": "http"}, []),
    ],
)
async def test_replies_filtered_by_their_request(
    client: httpx.AsyncClient, rows: Rows, params: dict[str, str], expected: list[str]
) -> None:
    await client.post("/api/v1/accounts", json={"keyid": "other"})
    a = await rows.email(email_id="1")
    await rows.sms(email_row=a, to="0601020304", tracker="t-a")
    await rows.reply(email_row=a, body="a")
    b = await rows.email(email_id="2", account_id=await rows.account_id("other"), keyid="other")
    await rows.sms(email_row=b, to="0701020304", tracker="t-b", keyid="other")
    await rows.reply(email_row=b, body="b")
    found = await items(client, "/api/v1/replies", **params)
    assert [i["body"] for i in found["items"]] == expected


async def test_replies_filter_by_email_row(client: httpx.AsyncClient, rows: Rows) -> None:
    first = await rows.email(email_id="5")
    second = await rows.email(email_id="5", status="duplicate")
    await rows.reply(email_row=first, body="first")
    await rows.reply(email_row=second, body="second")
    body = await items(client, "/api/v1/replies", email_row=first)
    assert [i["body"] for i in body["items"]] == ["first"]


async def test_email_detail_has_headers_text_and_attachments(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    raw = (FIXTURES / "mail" / "thunderbird_csv_rfc2231.eml").read_bytes()
    email_row = await rows.email(email_id="1548", raw=raw)
    response = await client.get(f"/api/v1/emails/{email_row}")
    assert response.status_code == 200
    detail = response.json()
    assert (detail["id"], detail["email_id"], detail["status"]) == (email_row, "1548", "processed")
    assert {"name": "From", "value": "Jérôme Martin <jerome.martin@example.com>"} in detail[
        "headers"
    ]
    assert detail["text"].startswith("<envoi>\n<keyid>")
    assert detail["attachments"] == [
        {"filename": "mobiles.csv", "size": 82},
        {"filename": "message.csv", "size": 62},
    ]
    assert (await client.get(detail["raw_url"])).content == raw


@pytest.mark.parametrize("email_row", ["999", str(2**64)])
async def test_detail_of_a_missing_email_is_404(client: httpx.AsyncClient, email_row: str) -> None:
    response = await client.get(f"/api/v1/emails/{email_row}")
    assert response.status_code == 404
    assert response.json()["field"] == "id"


async def test_info_gives_the_stop_text_of_the_http_api(client: httpx.AsyncClient) -> None:
    assert (await items(client, "/api/v1/info"))["stop_http_text"] == "STOP 36111"


async def test_clock_changes_are_published_to_the_live_page(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    before = gateway.changes.versions["clock"]
    await client.put("/api/v1/clock", json={"now": "2026-11-29T21:00:00+01:00"})
    await client.delete("/api/v1/clock", headers={"Content-Type": "application/json"})
    assert gateway.changes.versions["clock"] == before + 2


async def test_page_filters_select_the_same_rows_on_each_database(
    gateway_on: RunningGateway,
) -> None:
    gw = gateway_on
    for number in ("0601020304", "0701020304"):
        body = (
            f"<envoi>\n<keyid>demo</keyid>\n<num1>{number}</num1>\n<sms>Bonjour</sms>\n"
            f"<emailAck>ack@example.com</emailAck>\n<emailId>{number}</emailId>\n</envoi>"
        )
        await asyncio.to_thread(gw.send, gw.request_email(body))
    async with httpx.AsyncClient(base_url=gw.api_url) as client:
        (email,) = (await items(client, "/api/v1/emails", number="07 01 02 03 04"))["items"]
        assert email["email_id"] == "0701020304"
        (reply,) = (await items(client, "/api/v1/replies", number="0701020304"))["items"]
        assert reply["email_id"] == "0701020304"
        assert (await items(client, "/api/v1/replies", account="demo"))["total"] == 2
        (sms,) = (await items(client, "/api/v1/sms", email_row=email["id"]))["items"]
        assert sms["to"] == "0701020304"
        assert (await items(client, "/api/v1/emails", channel="http"))["total"] == 0
        detail = await items(client, f"/api/v1/emails/{email['id']}")
        assert "<num1>0701020304</num1>" in detail["text"]


# Bad values (SPEC §16): a 4xx naming them, never a 500 -----------------------------------------


@pytest.fixture
async def on_backend(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a gateway on each backend in turn (PostgreSQL is the strict one)."""
    gw = Gateway(make_settings(tmp_path, database={"url": database_url}))
    await gw.prepare_database()
    server, task, port = await start_http(gw.web)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client
    await stop_http(server, task)
    await gw.engine.dispose()


@pytest.mark.parametrize(
    "now",
    [
        "0001-01-02T00:00:00+00:00",
        "1969-12-31T23:59:59+00:00",
        "1970-01-01T00:30:00+01:00",  # 1969 in UTC
        "9999-12-31T23:00:00-05:00",  # year 10000 in UTC
        "9999-12-31T12:00:00+00:00",  # its day ends beyond 9999 east of UTC
    ],
)
async def test_clock_outside_1970_to_9999_is_400_naming_now(
    client: httpx.AsyncClient, now: str
) -> None:
    response = await client.put("/api/v1/clock", json={"now": now})
    assert (response.status_code, response.json()["field"]) == (400, "now"), response.text
    assert "1970" in response.json()["error"]
    assert (await client.get("/api/v1/clock")).json()["now"] == "2026-12-01T09:00:00+00:00"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/accounts", {"keyid": "big", "credit": 2**63}, "credit"),
        ("POST", "/api/v1/accounts", {"keyid": "big", "credit": 2**64 + 1}, "credit"),
        ("PATCH", "/api/v1/accounts/demo", {"credit": 2**63}, "credit"),
        ("PATCH", "/api/v1/accounts/demo", {"rate_limit": 2**31}, "rate_limit"),
        ("PATCH", "/api/v1/accounts/demo", {"rate_limit": 2**63}, "rate_limit"),
        ("POST", "/api/v1/faults", {"code": 29, "count": 2**31}, "count"),
        ("POST", "/api/v1/faults", {"code": 29, "count": 2**64}, "count"),
        ("POST", "/api/v1/faults", {"code": 2**64}, "code"),
    ],
)
async def test_integers_beyond_what_the_database_stores_are_400_naming_them(
    on_backend: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = await on_backend.request(method, path, json=body)
    assert (response.status_code, response.json().get("field")) == (400, field), response.text


@pytest.mark.parametrize(
    ("param", "value"),
    [("offset", str(2**63)), ("limit", str(2**64)), ("wait_for", str(2**70))],
)
async def test_paging_beyond_64_bits_is_400_naming_it(
    on_backend: httpx.AsyncClient, param: str, value: str
) -> None:
    for path in ("/api/v1/sms", "/api/v1/emails", "/api/v1/replies", "/api/v1/accounts"):
        response = await on_backend.get(path, params={param: value})
        assert (response.status_code, response.json().get("field")) == (400, param), path


@pytest.mark.parametrize("email_row", ["0", "9223372036854775807", "12345678901234567890"])
async def test_a_raw_email_that_does_not_exist_is_404(
    on_backend: httpx.AsyncClient, email_row: str
) -> None:
    response = await on_backend.get(f"/api/v1/emails/{email_row}/raw")
    assert (response.status_code, response.json()["field"]) == (404, "id")


@pytest.mark.parametrize("keyid", ["a\x00b", "k" * 65])
async def test_an_account_keyid_that_cannot_exist_is_404(
    on_backend: httpx.AsyncClient, keyid: str
) -> None:
    path = f"/api/v1/accounts/{quote(keyid)}"
    assert (await on_backend.get(path)).status_code == 404
    assert (await on_backend.patch(path, json={"credit": 1})).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/accounts", {"keyid": "a\x00b"}, "keyid"),
        ("POST", "/api/v1/accounts", {"keyid": "k" * 65}, "keyid"),
        ("POST", "/api/v1/accounts", {"keyid": "c", "company": "x" * 201}, "company"),
        ("POST", "/api/v1/accounts", {"keyid": "c", "login": "l" * 65}, "login"),
        ("POST", "/api/v1/accounts", {"keyid": "c", "password": "p" * 129}, "password"),
        ("PATCH", "/api/v1/accounts/demo", {"company": "\x00"}, "company"),
        ("PATCH", "/api/v1/accounts/demo", {"senders": ["A\x00"]}, "senders"),
        ("POST", "/api/v1/faults", {"code": 29, "keyid": "a\x00"}, "keyid"),
        ("POST", "/api/v1/faults", {"code": 29, "number": "0601020304" * 4}, "number"),
    ],
)
async def test_text_the_database_cannot_store_is_400_naming_it(
    on_backend: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = await on_backend.request(method, path, json=body)
    assert (response.status_code, response.json().get("field")) == (400, field), response.text


@pytest.mark.parametrize("param", ["to", "account", "tracker", "email_id"])
async def test_a_nul_in_a_filter_is_400_naming_it(
    on_backend: httpx.AsyncClient, param: str
) -> None:
    response = await on_backend.get("/api/v1/sms", params={param: "1\x00"})
    assert (response.status_code, response.json().get("field")) == (400, param), response.text


async def test_a_body_nested_too_deep_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/accounts", content=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["field"]) == (400, "body")


# Query parameters: one of each, known, on every endpoint ---------------------------------------

NO_QUERY = [
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/api/v1/info"),
    ("GET", "/api/v1/accounts/demo"),
    ("GET", "/api/v1/clock"),
    ("GET", "/api/v1/faults"),
    ("GET", "/api/v1/events"),
    ("DELETE", "/api/v1/clock"),
    ("DELETE", "/api/v1/faults"),
    ("DELETE", "/api/v1/messages"),
    ("POST", "/api/v1/faults"),
]


@pytest.mark.parametrize(("method", "path"), NO_QUERY)
async def test_a_parameter_where_none_is_taken_is_400_naming_it(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(
        method,
        path,
        params={"bogus": "1"},
        json={"code": 29} if method == "POST" else None,
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, response.json().get("field")) == (400, "bogus"), path


@pytest.mark.parametrize("path", ["/api/v1/accounts", "/api/v1/sms"])
async def test_an_unknown_list_parameter_is_400_naming_it(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, params={"keyid": "demo"})
    assert (response.status_code, response.json().get("field")) == (400, "keyid")


@pytest.mark.parametrize(
    "path", ["/api/v1/sms", "/api/v1/emails", "/api/v1/replies", "/api/v1/accounts"]
)
async def test_a_repeated_parameter_is_400_naming_it(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(f"{path}?limit=1&limit=2")
    assert (response.status_code, response.json().get("field")) == (400, "limit"), response.text
    assert "once" in response.json()["error"]


async def test_the_page_takes_its_own_filters_in_the_query(client: httpx.AsyncClient) -> None:
    assert (await client.get("/", params={"number": "06", "email_id": "1"})).status_code == 200


async def test_accounts_are_paginated_newest_first(client: httpx.AsyncClient) -> None:
    for keyid in ("a", "b", "c"):
        await client.post("/api/v1/accounts", json={"keyid": keyid})
    page = await items(client, "/api/v1/accounts", limit=2, offset=1)
    assert ([a["keyid"] for a in page["items"]], page["total"]) == (["b", "a"], 4)
    assert await items(client, "/api/v1/accounts", limit=0) == {"items": [], "total": 4}

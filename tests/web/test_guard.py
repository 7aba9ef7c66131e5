"""Who may use the admin API (SPEC §16): the token beyond loopback, reads included; no
password listed; JSON-only writes, the Origin and the Host checked, on loopback too."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.web.api import create_app
from tests.web.conftest import Rows, make_settings
from tests.web.test_page import chromium

pytestmark = pytest.mark.asyncio

TOKEN = "s3cret"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
READS = [
    "/",
    "/static/app.js",
    "/api/v1/sms",
    "/api/v1/emails",
    "/api/v1/replies",
    "/api/v1/accounts",
    "/api/v1/accounts/demo",
    "/api/v1/faults",
    "/api/v1/clock",
    "/api/v1/info",
    "/metrics",
    "/openapi.json",
]


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


@pytest.fixture
async def exposed_gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = Gateway(make_settings(tmp_path, http={"host": "0.0.0.0", "admin_token": TOKEN}))
    await gw.prepare_database()
    yield gw
    await gw.engine.dispose()


@pytest.fixture
async def exposed(exposed_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway configured beyond loopback (http.host 0.0.0.0), reached as localhost."""
    transport = httpx.ASGITransport(app=create_app(exposed_gateway.web))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8025") as client:
        yield client


# Reads beyond loopback ------------------------------------------------------------------------


@pytest.mark.parametrize("path", READS)
async def test_reads_beyond_loopback_need_the_token(exposed: httpx.AsyncClient, path: str) -> None:
    response = await exposed.get(path)
    assert response.status_code == 401, path
    assert "admin_token" in response.json()["error"]


async def test_the_refusal_asks_the_browser_for_basic_credentials(
    exposed: httpx.AsyncClient,
) -> None:
    response = await exposed.get("/")
    challenges = response.headers.get_list("www-authenticate")
    assert any(c.startswith("Basic ") for c in challenges), challenges


@pytest.mark.parametrize("path", READS)
async def test_reads_beyond_loopback_open_with_the_bearer_token(
    exposed: httpx.AsyncClient, path: str
) -> None:
    assert (await exposed.get(path, headers=BEARER)).status_code == 200, path


@pytest.mark.parametrize("user", ["", "tester", "anything at all"])
async def test_basic_with_the_token_as_password_opens_the_page_and_the_api(
    exposed: httpx.AsyncClient, user: str
) -> None:
    for path in ("/", "/api/v1/sms"):
        assert (await exposed.get(path, headers=basic(user, TOKEN))).status_code == 200


@pytest.mark.parametrize(
    "headers", [basic("s3cret", "wrong"), basic("x", ""), {"Authorization": "Basic %%%"}]
)
async def test_basic_with_another_password_is_refused(
    exposed: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert (await exposed.get("/api/v1/sms", headers=headers)).status_code == 401


async def test_basic_with_the_token_opens_writes(exposed: httpx.AsyncClient) -> None:
    response = await exposed.delete(
        "/api/v1/faults", headers={**basic("me", TOKEN), "Content-Type": "application/json"}
    )
    assert response.status_code == 200


async def test_the_raw_email_needs_the_token(
    exposed: httpx.AsyncClient, exposed_gateway: Gateway
) -> None:
    email_row = await Rows(exposed_gateway).email()
    path = f"/api/v1/emails/{email_row}/raw"
    assert (await exposed.get(path)).status_code == 401
    assert (await exposed.get(path, headers=BEARER)).content.startswith(b"From: ")


async def test_healthz_stays_open_beyond_loopback(exposed: httpx.AsyncClient) -> None:
    assert (await exposed.get("/healthz")).status_code == 200


async def test_the_providers_api_and_short_links_stay_outside_the_token(
    exposed: httpx.AsyncClient,
) -> None:
    credit = await exposed.get("/cgi-bin/credit", params={"keyid": "demo", "credit": "1"})
    assert credit.json() == {"etat": {"credit": 1000}}
    link = await exposed.post(
        "/cgi-bin/shortlink", json={"keyid": "demo", "shortlink": "https://example.com/a"}
    )
    (entry,) = link.json()["etat"]["etat"]
    code = entry["shortlink"].rsplit("/", 1)[-1]
    followed = await exposed.get(f"/s/{code}")
    assert followed.status_code in (301, 302, 303, 307, 308)


# Passwords --------------------------------------------------------------------------------------


async def test_no_account_listed_or_fetched_carries_a_password(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/accounts", json={"keyid": "acme"})
    listed = (await client.get("/api/v1/accounts")).json()["items"]
    fetched = (await client.get("/api/v1/accounts/acme")).json()
    patched = (await client.patch("/api/v1/accounts/acme", json={"credit": 2})).json()
    assert created.json()["password"]  # creation shows it once (SPEC §11)
    for account in (*listed, fetched, patched):
        assert "password" not in account, account


async def test_the_openapi_document_lists_a_password_only_at_creation(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    responses = document["paths"]["/api/v1/accounts"]["post"]["responses"]["201"]
    created = responses["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "password" in schemas[created]["properties"]
    assert "password" not in schemas["Account"]["properties"]


# Browser-forged writes, on loopback ----------------------------------------------------------

WRITES = [
    ("POST", "/api/v1/accounts", {"keyid": "evil"}),
    ("PATCH", "/api/v1/accounts/demo", {"credit": 1}),
    ("PUT", "/api/v1/clock", {"now": "2026-11-29T21:00:00+01:00"}),
    ("DELETE", "/api/v1/clock", None),
    ("POST", "/api/v1/faults", {"code": 29}),
    ("DELETE", "/api/v1/faults", None),
    ("DELETE", "/api/v1/messages", None),
]
JSON_TYPE = {"Content-Type": "application/json"}


def _body(data: Any) -> bytes:
    import json

    return b"" if data is None else json.dumps(data).encode()


@pytest.mark.parametrize(("method", "path", "data"), WRITES)
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
    ],
)
async def test_a_write_that_is_not_json_is_415(
    client: httpx.AsyncClient, method: str, path: str, data: Any, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.request(method, path, content=_body(data), headers=headers)
    assert response.status_code == 415, (method, path, response.text)
    assert "application/json" in response.json()["error"]


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8"])
@pytest.mark.parametrize(("method", "path", "data"), WRITES)
async def test_a_json_write_is_served(
    client: httpx.AsyncClient, method: str, path: str, data: Any, content_type: str
) -> None:
    response = await client.request(
        method, path, content=_body(data), headers={"Content-Type": content_type}
    )
    assert response.status_code < 300, (method, path, response.text)


async def test_a_refused_write_changes_nothing(client: httpx.AsyncClient) -> None:
    await client.post(
        "/api/v1/accounts", content=b'{"keyid": "evil"}', headers={"Content-Type": "text/plain"}
    )
    accounts = (await client.get("/api/v1/accounts")).json()["items"]
    assert [a["keyid"] for a in accounts] == ["demo"]


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "http://127.0.0.1:1", "null", "http://localhost.evil.example"]
)
@pytest.mark.parametrize(("method", "path", "data"), WRITES)
async def test_a_write_from_a_foreign_origin_is_403(
    client: httpx.AsyncClient, method: str, path: str, data: Any, origin: str
) -> None:
    response = await client.request(
        method, path, content=_body(data), headers={**JSON_TYPE, "Origin": origin}
    )
    assert response.status_code == 403, (method, path, origin)
    assert "Origin" in response.json()["error"]


async def test_a_write_from_the_same_origin_is_served(
    client: httpx.AsyncClient, base_url: str
) -> None:
    response = await client.post("/api/v1/faults", json={"code": 29}, headers={"Origin": base_url})
    assert response.status_code == 201


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8025", "127.0.0.2", "localhost.evil.example", "[::2]"]
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/api/v1/accounts"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/emails/1/raw"),
        ("DELETE", "/api/v1/messages"),
    ],
)
async def test_a_foreign_host_is_421_reads_included(
    client: httpx.AsyncClient, method: str, path: str, host: str
) -> None:
    response = await client.request(method, path, headers={**JSON_TYPE, "Host": host})
    assert response.status_code == 421, (method, path, host)
    assert "http.allowed_hosts" in response.json()["error"]


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:8025", "127.0.0.1:1234", "[::1]:8025", "[::1]"]
)
async def test_the_loopback_names_are_served(client: httpx.AsyncClient, host: str) -> None:
    assert (await client.get("/api/v1/info", headers={"Host": host})).status_code == 200


async def test_the_configured_host_and_allowed_hosts_are_served(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        http={"host": "0.0.0.0", "admin_token": TOKEN, "allowed_hosts": ["sandbox.example"]},
    )
    gw = Gateway(settings)
    transport = httpx.ASGITransport(app=create_app(gw.web))
    async with httpx.AsyncClient(transport=transport, headers=BEARER) as client:
        named = await client.get("http://sandbox.example:8025/api/v1/info")
        wildcard = await client.get("http://0.0.0.0:8025/api/v1/info")
        other = await client.get("http://other.example:8025/api/v1/info")
    await gw.engine.dispose()
    assert (named.status_code, wildcard.status_code, other.status_code) == (200, 200, 421)


async def test_healthz_answers_whatever_the_host(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"Host": "10.1.2.3:8025"})
    assert response.status_code == 200


async def test_the_providers_api_reads_json_whatever_the_content_type_or_host(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/cgi-bin/credit",
        content=b'{"keyid": "demo", "credit": "1"}',
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "http://evil.example",
            "Host": "api.example",
        },
    )
    assert response.json() == {"etat": {"credit": 1000}}


# In a real browser ------------------------------------------------------------------------------

FORGING_PAGE = """<!doctype html>
<title>a page the developer happens to visit</title>
<form id="form" method="POST" action="{gateway}/api/v1/accounts" enctype="text/plain"
      target="sink"><input name='{{"keyid":"evil","company":"x' value='y"}}'></form>
<iframe name="sink"></iframe>
<script>
  const body = JSON.stringify({{code: 29, count: 5}});
  fetch("{gateway}/api/v1/faults", {{method: "POST", mode: "no-cors", body}});
  fetch("{gateway}/api/v1/faults", {{method: "POST", mode: "no-cors", body,
    headers: {{"Content-Type": "application/json"}}}});
  document.getElementById("form").submit();
</script>
"""


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """`app` on a web server of its own on loopback (a free port: an origin of its own)."""
    import uvicorn

    from gateway.web.server import bind

    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(app, log_config=None, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def other_origin(html: str) -> Any:
    """A second web server serving one page, `html`."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse(html)

    return serving(Starlette(routes=[Route("/", page)]))




@pytest.mark.browser
async def test_a_page_from_another_origin_cannot_create_accounts_or_faults(
    client: httpx.AsyncClient, base_url: str
) -> None:
    answered: list[tuple[str, int]] = []
    page_html = FORGING_PAGE.format(gateway=base_url)
    async with other_origin(page_html) as attacker, chromium() as browser:
        page = await browser.new_page()
        page.on(
            "response",
            lambda r: answered.append((r.url, r.status)) if r.url.startswith(base_url) else None,
        )
        await page.goto(attacker + "/")
        deadline = asyncio.get_running_loop().time() + 10
        while len(answered) < 3 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    # The three forged writes reached the gateway and were refused there, not by the browser.
    assert sorted(status for _, status in answered) == [403, 403, 403], answered
    accounts = (await client.get("/api/v1/accounts")).json()["items"]
    assert [a["keyid"] for a in accounts] == ["demo"]
    assert (await client.get("/api/v1/faults")).json()["total"] == 0


@pytest.mark.browser
async def test_beyond_loopback_the_page_works_through_http_basic_with_the_token(
    exposed_gateway: Gateway,
) -> None:
    from playwright.async_api import expect

    rows = Rows(exposed_gateway)
    await rows.sms()
    async with serving(create_app(exposed_gateway.web)) as url, chromium() as browser:
        context = await browser.new_context(
            http_credentials={"username": "tester", "password": TOKEN}
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        assert (await page.goto(url)).status == 200
        await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
        await expect(page.locator(".sms-row")).to_have_count(1, timeout=10_000)
        await page.click("#reset")
        await page.click("#reset-confirm")  # a DELETE: the browser's Basic token and JSON
        await expect(page.locator("#reset-token-field")).to_be_hidden()
        await expect(page.locator(".sms-row")).to_have_count(0, timeout=10_000)
        await context.close()
    assert errors == []

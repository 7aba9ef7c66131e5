"""The live page in a real headless Chromium: requests, SMS and replies appear without reload,
filters narrow every pane and live in the URL, detail view, export, clock, theme, phone width."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.conftest import NOW, Rows

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
LIGHT_BG = "rgb(242, 244, 247)"
DARK_BG = "rgb(13, 16, 21)"
BACKGROUND = "getComputedStyle(document.documentElement).backgroundColor"
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'

pytestmark = pytest.mark.browser


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Debian's Chromium, headless (a failure under CI=true when it cannot start)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@asynccontextmanager
async def chromium_page(
    url: str,
    viewport: dict[str, int] = DESKTOP,
    color_scheme: str = "light",
    expected_errors: str | None = None,
) -> AsyncIterator[Any]:
    """Debian's Chromium, headless, on `url`; fails the test on any page error (but those
    containing `expected_errors`)."""
    async with chromium() as browser:
        context = await browser.new_context(viewport=viewport, color_scheme=color_scheme)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(url)
        yield page
        await context.close()
    assert [e for e in errors if not (expected_errors and expected_errors in e)] == []


@pytest.fixture
async def browser_page(base_url: str) -> AsyncIterator[Any]:
    async with chromium_page(base_url) as page:
        yield page


@pytest.fixture
async def phone_page(base_url: str) -> AsyncIterator[Any]:
    async with chromium_page(base_url, PHONE) as page:
        yield page


async def live(page: Any) -> None:
    from playwright.async_api import expect

    await expect(page.locator("#live")).to_have_text("live", timeout=10_000)


async def counts(page: Any) -> tuple[int, int, int]:
    """Requests, SMS and replies shown."""
    return (
        await page.locator("#requests-list .request").count(),
        await page.locator("#sms-list .sms-row, #sms-list .bubble").count(),
        await page.locator("#replies-list .reply").count(),
    )


async def wait_for_counts(page: Any, expected: tuple[int, int, int]) -> None:
    """Poll what the panes show until it is `expected` (10 s deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (found := await counts(page)) != expected:
        assert loop.time() < deadline, f"{found} != {expected}"
        await page.wait_for_timeout(50)


async def no_horizontal_overflow(page: Any) -> None:
    width = await page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= await page.evaluate("innerWidth")


async def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


# Live rows ------------------------------------------------------------------------------------


async def test_new_sms_appears_as_a_compact_row_without_reload(
    browser_page: Any, rows: Rows
) -> None:
    from playwright.async_api import expect

    page = browser_page
    await live(page)
    await expect(page.locator("#sms-list .empty")).to_be_visible()
    await rows.sms(
        to="0601020304",
        sender="MaSociete",
        email_id="1548",
        tracker="promo-1",
        text="L'été est fini!\nSuper promo <b>-10%</b>\r\nSTOP SMS au 36111",
    )
    row = page.locator('.sms-row[data-number="0601020304"]')
    await expect(row).to_be_visible(timeout=10_000)
    await expect(row.locator(".to")).to_have_text("06 01 02 03 04")
    await expect(row.locator(".sender")).to_have_text("MaSociete")
    await expect(row.locator(".text")).to_have_text("L'été est fini!\nSuper promo <b>-10%</b>")
    await expect(row.locator(".stop")).to_have_text("STOP SMS au 36111")
    await expect(row.locator(".facts-line")).to_contain_text("1 part")
    await expect(row.locator(".facts-line")).to_contain_text("GSM 7-bit")
    await expect(row.locator(".facts-line")).to_contain_text("tracker promo-1")
    assert await row.locator("b").count() == 0  # markup in a text stays text


async def test_inbound_email_is_one_request_with_counts_per_code(
    browser_page: Any, rows: Rows
) -> None:
    from playwright.async_api import expect

    page = browser_page
    await live(page)
    await rows.email(
        email_id="1549",
        results=[
            {"tel": "0601020304", "code": 0, "message": "Votre message a bien été envoyé"},
            {"tel": "0601020305", "code": 0, "message": "Votre message a bien été envoyé"},
            {"tel": "0699000021", "code": 21, "message": "Le numéro n'est pas attribué"},
        ],
    )
    request = page.locator(".request.email")
    await expect(request).to_have_count(1, timeout=10_000)
    await expect(request.locator(".request-title")).to_have_text("emailId 1549")
    await expect(request.locator(".code-chip")).to_have_text(["0× 2", "21× 1"])
    await expect(request.locator(".badge")).to_have_text("processed")


async def test_request_expands_to_its_sms_and_numbers_not_sent(
    browser_page: Any, rows: Rows
) -> None:
    from playwright.async_api import expect

    page = browser_page
    email_row = await rows.email(
        email_id="7",
        results=[
            {"tel": "0601020304", "code": 0, "message": "Votre message a bien été envoyé"},
            {"tel": "0699000021", "code": 21, "message": "Le numéro n'est pas attribué"},
        ],
    )
    await rows.sms(email_row=email_row, email_id="7", to="0601020304")
    await rows.sms(to="0701020304", email_id="8")  # another email's
    await page.locator(f'.request[data-id="{email_row}"] .request-head').click()
    body = page.locator(f'.request[data-id="{email_row}"] .request-body')
    await expect(body.locator(".sms-row")).to_have_count(1, timeout=10_000)
    await expect(body.locator(".sms-row")).to_have_attribute("data-number", "0601020304")
    await expect(body.locator('.failure[data-code="21"] .numbers')).to_have_text("0699000021")


async def test_http_sms_are_grouped_into_calls_with_a_channel_badge(
    browser_page: Any, rows: Rows
) -> None:
    from playwright.async_api import expect

    page = browser_page
    for number in ("0601020304", "0601020305", "0601020306"):
        await rows.sms(channel="http", to=number, tracker="otp", text="Code 1234\r\nSTOP 36111")
    await rows.email(email_id="9")
    await expect(page.locator(".request")).to_have_count(2, timeout=10_000)
    call = page.locator(".request.http")
    await expect(call.locator(".badge")).to_have_text("HTTP")
    await expect(call.locator(".request-size")).to_have_text("3 SMS")
    await expect(call.locator(".request-sub")).to_contain_text("tracker otp")
    row = page.locator('#sms-list .sms-row[data-number="0601020306"]')
    await expect(row.locator(".badge")).to_have_text("HTTP")
    await expect(row.locator(".stop")).to_have_text("STOP 36111")


async def test_selected_number_shows_its_phone_newest_sms_on_top(
    browser_page: Any, rows: Rows
) -> None:
    from playwright.async_api import expect

    page = browser_page
    await rows.sms(to="0601020304", text="first")
    await rows.sms(to="0601020304", text="second")
    await rows.sms(to="0701020304", text="elsewhere")
    await page.locator('.sms-row[data-number="0601020304"] .to').first.click()
    phone = page.locator('.phone[data-number="0601020304"]')
    await expect(phone).to_be_visible(timeout=10_000)
    await expect(phone.locator(".sender")).to_have_text("MaSociete")
    await expect(phone.locator(".bubble .text")).to_have_text(["second", "first"])
    await expect(page.locator("#filter-number")).to_have_value("0601020304")
    await shoot(page, "page-number-desktop")


async def test_lists_are_paged_newest_first(browser_page: Any, rows: Rows) -> None:
    from playwright.async_api import expect

    page = browser_page
    email_row = await rows.email()
    for n in range(60):
        await rows.sms(email_row=email_row, text=f"n{n}", publish=False)
    rows.gateway.changes.publish(["sms"])
    texts = page.locator("#sms-list .sms-row .text")
    await expect(texts).to_have_count(50, timeout=10_000)
    await expect(texts.first).to_have_text("n59")
    await expect(page.locator("#sms-pager .range")).to_have_text("1–50 of 60")
    await page.locator("#sms-pager button[aria-label=Older]").click()
    await expect(texts).to_have_count(10)
    await expect(texts.first).to_have_text("n9")


async def test_requests_merge_emails_and_http_calls_newest_first_by_page(
    browser_page: Any, rows: Rows
) -> None:
    from playwright.async_api import expect

    page = browser_page
    ids = [await rows.email(email_id=str(n), publish=False) for n in range(25)]
    later = NOW + timedelta(seconds=1)
    for number in ("0601020304", "0601020305"):
        await rows.sms(channel="http", to=number, created_at=later, publish=False)
    rows.gateway.changes.publish(["emails", "sms"])
    cards = page.locator("#requests-list .request")
    await expect(cards).to_have_count(20, timeout=10_000)
    await expect(cards.first.locator(".request-size")).to_have_text("2 SMS")  # the newest
    await expect(cards.nth(1)).to_have_attribute("data-id", str(ids[-1]))
    await page.locator("#requests-pager button[aria-label=Older]").click()
    await expect(cards).to_have_count(6)
    await expect(cards.first).to_have_attribute("data-id", str(ids[5]))
    await expect(cards.last).to_have_attribute("data-id", str(ids[0]))
    await expect(page.locator("#requests-pager .range")).to_have_text("page 2")


# Filters --------------------------------------------------------------------------------------


async def two_requests_and_a_call(rows: Rows) -> None:
    """Email 1 (demo, 0601020304, tracker ta), email 2 (other, 0701020304, tracker tb), each
    with one reply, and an HTTP call of demo to 0601020304."""
    ours = await rows.email(email_id="1")
    await rows.sms(email_row=ours, email_id="1", to="0601020304", tracker="ta")
    await rows.reply(email_row=ours, email_id="1")
    theirs = await rows.email(
        email_id="2", account_id=await rows.account_id("other"), keyid="other"
    )
    await rows.sms(email_row=theirs, email_id="2", to="0701020304", tracker="tb", keyid="other")
    await rows.reply(email_row=theirs, email_id="2", kind="not")
    await rows.sms(channel="http", to="0601020304", tracker="th")


@pytest.fixture
async def other_account(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/accounts", json={"keyid": "other"})).status_code == 201


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("#filter-number", "06 01 02 03 04", (2, 2, 1)),
        ("#filter-email-id", "2", (1, 1, 1)),
        ("#filter-tracker", "tb", (1, 1, 1)),
        ("#filter-account", "other", (1, 1, 1)),
        ("#filter-channel", "http", (1, 1, 0)),
        ("#filter-channel", "mail", (2, 2, 2)),
    ],
)
async def test_a_filter_narrows_every_pane(
    browser_page: Any,
    rows: Rows,
    other_account: None,
    field: str,
    value: str,
    expected: tuple[int, int, int],
) -> None:
    page = browser_page
    await two_requests_and_a_call(rows)
    await wait_for_counts(page, (3, 3, 2))
    if field == "#filter-channel":
        await page.select_option(field, value)
    else:
        await page.fill(field, value)
    await wait_for_counts(page, expected)


async def test_filters_are_kept_in_the_url_and_survive_a_reload(
    browser_page: Any, rows: Rows, other_account: None
) -> None:
    from playwright.async_api import expect

    page = browser_page
    await two_requests_and_a_call(rows)
    # All three shown first: while they arrive the panes pass through (1, 1, 1) unfiltered.
    await wait_for_counts(page, (3, 3, 2))
    await page.fill("#filter-account", "demo")
    await page.fill("#filter-tracker", "ta")
    await wait_for_counts(page, (1, 1, 1))
    assert "account=demo" in page.url and "tracker=ta" in page.url
    await page.reload()
    await expect(page.locator("#filter-account")).to_have_value("demo")
    await expect(page.locator("#filter-tracker")).to_have_value("ta")
    await wait_for_counts(page, (1, 1, 1))


# Detail view ----------------------------------------------------------------------------------


async def test_detail_view_shows_headers_attachments_sms_and_replies(
    browser_page: Any, rows: Rows
) -> None:
    from playwright.async_api import expect

    page = browser_page
    raw = (FIXTURES / "mail" / "thunderbird_csv_rfc2231.eml").read_bytes()
    email_row = await rows.email(email_id="1548", raw=raw, subject="Envoi avec fichiers")
    await rows.sms(email_row=email_row, email_id="1548", to="0601020304")
    await rows.reply(email_row=email_row, email_id="1548", kind="not", to="not@masociete.com")
    await page.locator(f'.request[data-id="{email_row}"] .request-head').click()
    await page.locator(f'.request[data-id="{email_row}"] button', has_text="Details").click()
    detail = page.locator("#detail")
    await expect(detail).to_be_visible()
    await expect(detail.locator(".detail-title h2")).to_have_text("emailId 1548")
    await expect(detail.locator(".attachments li")).to_have_text(
        ["mobiles.csv82 bytes", "message.csv62 bytes"]
    )
    await expect(detail.locator(".header-table tr", has_text="From")).to_contain_text(
        "Jérôme Martin <jerome.martin@example.com>"
    )
    await expect(detail.locator(".mail-text")).to_contain_text("<emailId>1548</emailId>")
    await expect(detail.locator("a.raw")).to_have_attribute(
        "href", f"http://{page.url.split('/')[2]}/api/v1/emails/{email_row}/raw"
    )
    await expect(detail.locator(".sms-row")).to_have_attribute("data-number", "0601020304")
    await expect(detail.locator(".reply .card-title")).to_have_text("not@masociete.com")
    await shoot(page, "page-detail-desktop")


async def test_detail_view_is_in_the_url(browser_page: Any, rows: Rows) -> None:
    from playwright.async_api import expect

    page = browser_page
    email_row = await rows.email(email_id="77")
    await page.goto(page.url.split("?")[0] + f"?email={email_row}")
    await expect(page.locator("#detail .detail-title h2")).to_have_text("emailId 77")
    await page.locator("#detail-close").click()
    await expect(page.locator("#detail")).to_be_hidden()
    assert "email=" not in page.url


# Export ---------------------------------------------------------------------------------------


async def exported(page: Any, button: str) -> str:
    async with page.expect_download() as download:
        await page.click(button)
    path = await (await download.value).path()
    return Path(path).read_bytes().decode("utf-8-sig")


async def test_export_csv_has_every_sms_matching_the_filters(browser_page: Any, rows: Rows) -> None:
    from playwright.async_api import expect

    page = browser_page
    email_row = await rows.email()
    await rows.sms(email_row=email_row, to="0601020304", text='Hello, "you"\r\nSTOP SMS au 36111')
    await rows.sms(email_row=email_row, to="0701020304", text="filtered out")
    await page.fill("#filter-number", "0601020304")
    await expect(page.locator("#sms-list .bubble")).to_have_count(1, timeout=10_000)
    found = list(csv.DictReader(io.StringIO(await exported(page, "#export-csv"))))
    assert [(r["to"], r["text"], r["channel"]) for r in found] == [
        ("0601020304", 'Hello, "you"\r\nSTOP SMS au 36111', "mail")
    ]


async def test_export_json_is_the_apis_items(
    browser_page: Any, rows: Rows, client: httpx.AsyncClient
) -> None:
    from playwright.async_api import expect

    page = browser_page
    for n in range(3):
        await rows.sms(text=f"n{n}")
    await expect(page.locator("#sms-list .sms-row")).to_have_count(3, timeout=10_000)
    items = json.loads(await exported(page, "#export-json"))
    assert items == (await client.get("/api/v1/sms")).json()["items"]


# Clock, theme, reset --------------------------------------------------------------------------


async def test_clock_indicator_follows_a_freeze_through_the_api(
    browser_page: Any, client: httpx.AsyncClient
) -> None:
    from playwright.async_api import expect

    page = browser_page
    clock = page.locator("#clock")
    await expect(clock.locator(".clock-mode")).to_have_text("Frozen", timeout=10_000)
    await client.delete("/api/v1/clock", headers={"Content-Type": "application/json"})
    await expect(clock.locator(".clock-mode")).to_have_text("Real time", timeout=10_000)
    ticking = await clock.locator(".clock-now").text_content()
    await expect(clock.locator(".clock-now")).not_to_have_text(ticking, timeout=5_000)
    await client.put("/api/v1/clock", json={"now": "2026-11-29T21:00:00+01:00"})
    await expect(clock.locator(".clock-mode")).to_have_text("Frozen", timeout=10_000)
    await expect(clock.locator(".clock-now")).to_have_text("29/11/2026, 21:00:00")
    await expect(clock).to_have_attribute("data-frozen", "true")


async def test_dark_mode_follows_the_system(base_url: str) -> None:
    async with chromium_page(base_url, color_scheme="dark") as page:
        await live(page)
        assert await page.evaluate(BACKGROUND) == DARK_BG


async def test_theme_toggle_overrides_the_system_and_is_remembered(browser_page: Any) -> None:
    from playwright.async_api import expect

    page = browser_page
    assert await page.evaluate(BACKGROUND) == LIGHT_BG
    await page.click("#theme")  # auto → dark
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert await page.evaluate(BACKGROUND) == DARK_BG
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert await page.evaluate(BACKGROUND) == DARK_BG


async def test_reset_button_empties_the_page_after_confirmation(
    browser_page: Any, rows: Rows
) -> None:
    from playwright.async_api import expect

    page = browser_page
    await rows.sms()
    await expect(page.locator(".sms-row")).to_have_count(1, timeout=10_000)
    await page.click("#reset")
    await expect(page.locator("#reset-token-field")).to_be_hidden()
    await page.click("#reset-confirm")
    await expect(page.locator(".sms-row")).to_have_count(0, timeout=10_000)
    await expect(page.locator("#sms-list .empty")).to_be_visible()
    await expect(page.locator("#reset-dialog")).to_be_hidden()


LONG = "x" * 120


async def long_values(rows: Rows) -> int:
    email_row = await rows.email(
        email_id="1" * 60,
        sender=f"{LONG}@example.com",
        subject=LONG,
        reason=LONG,
        code=30,
        status="refused",
        warnings=[LONG],
        results=[{"tel": LONG, "code": 7, "message": LONG}],
        raw=f"Subject: {LONG}\r\nX-Long: {LONG}\r\n\r\n{LONG}".encode(),
    )
    await rows.sms(email_row=email_row, tracker=LONG, text=LONG, sender="S" * 11)
    await rows.reply(email_row=email_row, to=f"{LONG}@example.com", body=LONG, last_error=LONG)
    return email_row


@pytest.mark.parametrize("tab", ["requests", "sms", "replies"])
async def test_phone_width_does_not_overflow(phone_page: Any, rows: Rows, tab: str) -> None:
    from playwright.async_api import expect

    page = phone_page
    await long_values(rows)
    await page.click(f"#tabs button[data-tab={tab}]")
    shown = page.locator(f"#pane-{tab} [data-id], #pane-{tab} [data-key]").first
    await expect(shown).to_be_visible(timeout=10_000)
    if tab == "requests":
        await page.locator("#requests-list .request-head").first.click()
        await expect(page.locator("#requests-list .request-body .sms-row")).to_have_count(1)
    await page.locator("#filters-toggle").click()
    await expect(page.locator("#filter-number")).to_be_visible()
    await no_horizontal_overflow(page)


async def test_phone_width_detail_view_does_not_overflow(phone_page: Any, rows: Rows) -> None:
    from playwright.async_api import expect

    page = phone_page
    email_row = await long_values(rows)
    await page.goto(page.url.split("?")[0] + f"?email={email_row}")
    body = page.locator("#detail-body")
    await expect(body.locator(".reply")).to_have_count(1, timeout=10_000)
    await expect(body.locator(".sms-row")).to_have_count(1)
    await body.locator(".headers summary").click()
    assert await body.evaluate("node => node.scrollWidth <= node.clientWidth")
    await no_horizontal_overflow(page)


async def test_stored_markup_is_shown_as_text_everywhere(browser_page: Any, rows: Rows) -> None:
    from playwright.async_api import expect

    page = browser_page
    email_row = await rows.email(
        email_id=XSS,
        sender=XSS,
        subject=XSS,
        reason=XSS,
        warnings=[XSS],
        results=[{"tel": XSS, "code": 21, "message": XSS}, {"tel": "1", "code": 0, "message": XSS}],
        raw=(
            f"Subject: {XSS}\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            f"Content-Type: text/plain\r\n\r\n{XSS}\r\n--b\r\nContent-Type: text/csv\r\n"
            f'Content-Disposition: attachment; filename="{XSS.replace(chr(34), "")}"\r\n\r\n'
            "0601020304\r\n--b--\r\n"
        ).encode(),
    )
    await rows.sms(email_row=email_row, email_id=XSS, tracker=XSS, sender=XSS, text=XSS)
    await rows.sms(channel="http", tracker=XSS, text=XSS)
    await rows.reply(email_row=email_row, email_id=XSS, to=XSS, body=XSS, last_error=XSS)
    await expect(page.locator("#requests-list .request")).to_have_count(2, timeout=10_000)
    for head in await page.locator(".request-head").all():
        await head.click()
    await page.locator("#requests-list button", has_text="Details").click()
    await expect(page.locator("#detail .reply")).to_have_count(1, timeout=10_000)
    await expect(page.locator("#detail .attachments li")).to_have_count(1)
    await page.locator("#detail .headers summary").click()
    await page.locator("#detail .sms-row .to").click()  # the phone of that number
    await expect(page.locator(".phone")).to_be_visible()
    for pane in ("#panes", "#detail"):
        assert await page.locator(f"{pane} img, {pane} script").count() == 0
    assert await page.evaluate("window.__xss") is None
    await expect(page.locator(".phone .bubble .text").first).to_have_text(XSS)

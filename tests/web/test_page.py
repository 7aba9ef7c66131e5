"""The live page in a real headless Chromium: new SMS, emails and replies appear without reload."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Rows

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


@asynccontextmanager
async def chromium_page(url: str) -> AsyncIterator[Any]:
    """Debian's Chromium, headless, on `url`; fails the test on any page error."""
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
        context = await browser.new_context(viewport={"width": 1440, "height": 900})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(url)
        yield page
        await context.close()
        await browser.close()
        assert errors == []


@pytest.fixture
async def browser_page(base_url: str) -> AsyncIterator[Any]:
    async with chromium_page(base_url) as page:
        yield page


async def test_new_sms_appears_as_a_phone_screen_without_reload(
    browser_page: Any, rows: Rows
) -> None:
    from playwright.async_api import expect

    page = browser_page
    await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
    await expect(page.locator("#sms-list .empty")).to_be_visible()

    await rows.sms(
        to="0601020304",
        sender="MaSociete",
        email_id="1548",
        tracker="promo-1",
        text="L'été est fini!\nSuper promo <b>-10%</b>\r\nSTOP SMS au 36111",
    )
    phone = page.locator('.phone[data-number="0601020304"]')
    await expect(phone).to_be_visible(timeout=10_000)
    await expect(phone.locator(".sender")).to_have_text("MaSociete")
    await expect(phone.locator(".bubble .text")).to_have_text(
        "L'été est fini!\nSuper promo <b>-10%</b>", use_inner_text=True
    )
    await expect(phone.locator(".bubble .stop")).to_have_text("STOP SMS au 36111")
    await expect(phone.locator(".bubble .meta")).to_contain_text("1 part · GSM 7-bit")
    assert await phone.locator(".bubble b").count() == 0  # markup in a text stays text

    email_row = await rows.email(
        status="processed",
        email_id="1549",
        results=[
            {"tel": "0601020304", "code": 0, "message": "Votre message a bien été envoyé"},
            {
                "tel": "0699000021",
                "code": 21,
                "message": "Le numéro de téléphone n'est pas attribué",
            },
        ],
    )
    await rows.sms(
        email_row=email_row,
        to="0701020304",
        sender="36111",
        email_id="1549",
        encoding="ucs2",
        parts=2,
        text="Ça coûte 10 € « net »\nÀ bientôt",
    )
    await rows.reply(
        email_row=email_row,
        kind="not",
        to="errors@example.com",
        email_id="1549",
        body='<?xml version="1.0" encoding="ISO-8859-1"?>\n<retour>\n'
        "<etat1><tel>0601020304</tel><code>0</code></etat1>\n"
        "<etat2><tel>0699000021</tel><code>21</code></etat2>\n</retour>",
    )
    await rows.reply(
        email_row=email_row,
        kind="ack",
        to="ack@example.com",
        email_id="1549",
        state="delivered",
        body='<?xml version="1.0" encoding="ISO-8859-1"?>\n<retour><code>0</code></retour>',
    )
    await rows.email(
        status="refused",
        email_id="1550",
        code=30,
        results=[],
        reason="From: domain other.example is not one of the account's domains",
    )
    await expect(page.locator('.phone[data-number="0701020304"] .bubble .meta')).to_contain_text(
        "2 parts · UCS-2", timeout=10_000
    )
    await expect(page.locator(".email")).to_have_count(3, timeout=10_000)
    await expect(page.locator(".reply")).to_have_count(2, timeout=10_000)
    await expect(page.locator(".reply pre.xml").first).to_contain_text("<retour><code>0</code>")

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "page-rows.png"), full_page=True)


async def test_filters_narrow_the_lists(browser_page: Any, rows: Rows) -> None:
    from playwright.async_api import expect

    page = browser_page
    await rows.sms(to="0601020304", email_id="1")
    await rows.sms(to="0701020304", email_id="2")
    await expect(page.locator(".phone")).to_have_count(2, timeout=10_000)
    await page.fill("#filter-number", "07 01 02 03 04")
    await expect(page.locator(".phone")).to_have_count(1, timeout=10_000)
    await expect(page.locator(".phone")).to_have_attribute("data-number", "0701020304")
    await page.fill("#filter-number", "")
    await page.fill("#filter-email-id", "1")
    await expect(page.locator(".phone")).to_have_attribute(
        "data-number", "0601020304", timeout=10_000
    )


async def test_reset_button_empties_the_page_after_confirmation(
    browser_page: Any, rows: Rows
) -> None:
    from playwright.async_api import expect

    page = browser_page
    await rows.sms()
    await expect(page.locator(".phone")).to_have_count(1, timeout=10_000)
    page.once("dialog", lambda dialog: dialog.accept())
    await page.click("#reset")
    await expect(page.locator(".phone")).to_have_count(0, timeout=10_000)
    await expect(page.locator("#sms-list .empty")).to_be_visible()

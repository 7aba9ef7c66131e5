"""The page a tester keeps open: emails sent over SMTP appear on it without a reload, and a
campaign of 500 recipients stays readable at desktop and phone width, light and dark."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.testing import RunningGateway, fixture_settings
from tests.web.test_page import DESKTOP, PHONE, chromium_page, no_horizontal_overflow, shoot

REQUESTS = Path(__file__).resolve().parents[1] / "fixtures" / "requests"
CAMPAIGN = 500

pytestmark = pytest.mark.browser


@pytest.fixture
async def live_page(tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, Any]]:
    gw = await asyncio.to_thread(RunningGateway, fixture_settings(tmp_path / "g.db"))
    try:
        async with chromium_page(gw.api_url + "/") as page:
            yield gw, page
    finally:
        await asyncio.to_thread(gw.stop)


async def test_emails_sent_over_smtp_appear_live(live_page: tuple[RunningGateway, Any]) -> None:
    from playwright.async_api import expect

    gw, page = live_page
    await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
    await asyncio.to_thread(gw.send, (REQUESTS / "single.eml").read_bytes())
    row = page.locator('.sms-row[data-number="0601020304"]')
    await expect(row).to_be_visible(timeout=10_000)
    await expect(row.locator(".sender")).to_have_text("MaSociete")
    await expect(row.locator(".stop")).to_have_text("STOP SMS au 36111")
    await expect(page.locator(".reply")).to_have_count(2, timeout=10_000)

    await asyncio.to_thread(gw.send, (REQUESTS / "numx_own_text.eml").read_bytes())
    body = gw.request_email(
        "<envoi>\n<keyid>demo</keyid>\n<num1>0601020306</num1>\n<num2>0699000021</num2>\n"
        "<sms>Votre colis arrive demain ÖÀ bientôt</sms>\n"
        "<emailNot>not@masociete.com</emailNot>\n<emailId>1551</emailId>\n</envoi>"
    )
    await asyncio.to_thread(gw.send, body)
    await expect(page.locator(".request.email")).to_have_count(3, timeout=10_000)
    await expect(page.locator('.sms-row[data-number="0601020306"] .text')).to_have_text(
        "Votre colis arrive demain\nÀ bientôt", timeout=10_000
    )
    newest = page.locator(".request.email").first
    await expect(newest.locator(".request-title")).to_have_text("emailId 1551")
    await expect(newest.locator(".code-chip")).to_have_text(["0× 1", "21× 1"])


def campaign(gw: RunningGateway) -> Any:
    """One email, a CSV of CAMPAIGN numbers (every 50th a magic number answering 21)."""
    numbers = ["0699000021" if n % 50 == 49 else f"06{10_000_000 + n:08d}" for n in range(CAMPAIGN)]
    mobiles = "\r\n".join(f"{number};;Client {n}" for n, number in enumerate(numbers))
    return gw.request_email(
        "<envoi>\n<keyid>demo</keyid>\n<emetteur>MaSociete</emetteur>\n"
        "<emailNot>not@example.com</emailNot>\n<emailAck>ack@example.com</emailAck>\n"
        "<emailId>2001</emailId>\n</envoi>",
        attachments=[
            ("mobiles.csv", mobiles.encode()),
            ("message.csv", "Bonjour [1], votre rendez-vous est confirmé.".encode()),
        ],
    )


async def test_a_campaign_of_500_stays_readable_newest_first(
    live_page: tuple[RunningGateway, Any],
) -> None:
    from playwright.async_api import expect

    gw, page = live_page
    await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
    await asyncio.to_thread(gw.send, (REQUESTS / "single.eml").read_bytes())
    await asyncio.to_thread(gw.send, campaign(gw))
    sent = CAMPAIGN - CAMPAIGN // 50
    await expect(page.locator("#sms-count")).to_have_text(f"{sent + 1:,}", timeout=10_000)

    request = page.locator(".request.email").first
    await expect(request.locator(".request-title")).to_have_text("emailId 2001")
    await expect(request.locator(".code-chip")).to_have_text([f"0× {sent}", "21× 10"])
    rows = page.locator("#sms-list .sms-row")
    await expect(rows).to_have_count(50)
    # Newest first: the CSV's last mobile got the last SMS.
    await expect(rows.first.locator(".text")).to_have_text(
        f"Bonjour Client {CAMPAIGN - 2}, votre rendez-vous est confirmé."
    )
    await request.locator(".request-head").click()
    await expect(request.locator(".request-body .sms-row")).to_have_count(20)
    failed = request.locator('.failure[data-code="21"]')
    await expect(failed.locator(".code-chip")).to_have_text("21× 10")
    await expect(failed.locator(".numbers")).to_have_text(", ".join(["0699000021"] * 10))

    for width, scheme in [(DESKTOP, "light"), (DESKTOP, "dark"), (PHONE, "dark"), (PHONE, "light")]:
        await page.set_viewport_size(width)
        await page.emulate_media(color_scheme=scheme)
        name = "desktop" if width == DESKTOP else "phone"
        await shoot(page, f"page-campaign-{name}-{scheme}")
        await no_horizontal_overflow(page)
        height = await page.evaluate("document.scrollingElement.scrollHeight")
        # The desktop page is the window (panes scroll); a phone shows one pane of one page.
        assert height <= (width["height"] if width == DESKTOP else 4000), (name, height)
    await page.click("#tabs button[data-tab=sms]")
    await expect(page.locator("#pane-sms")).to_be_visible()
    await shoot(page, "page-campaign-phone-light-sms")
    await no_horizontal_overflow(page)
    assert await page.evaluate("document.scrollingElement.scrollHeight") <= 6000

    await page.emulate_media(color_scheme="dark")
    await page.locator("#sms-list .sms-row .to").first.click()
    await expect(page.locator(".phone .bubble")).to_have_count(1)
    await shoot(page, "page-campaign-phone-dark-number")
    await page.locator(".phone .filter-link", has_text="emailId 2001").click()
    await page.click("#tabs button[data-tab=requests]")
    await page.locator(".request-body button", has_text="Details").click()  # still expanded
    await expect(page.locator("#detail .sms-row")).to_have_count(50, timeout=10_000)
    await shoot(page, "page-campaign-phone-dark-detail")

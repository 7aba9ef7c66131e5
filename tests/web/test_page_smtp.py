"""The page a tester keeps open: emails sent over SMTP appear on it without a reload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.testing import RunningGateway, fixture_settings
from tests.web.test_page import ARTIFACTS, chromium_page

REQUESTS = Path(__file__).resolve().parents[1] / "fixtures" / "requests"

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
    phone = page.locator('.phone[data-number="0601020304"]')
    await expect(phone).to_be_visible(timeout=10_000)
    await expect(phone.locator(".sender")).to_have_text("MaSociete")
    await expect(phone.locator(".bubble .stop")).to_have_text("STOP SMS au 36111")
    await expect(page.locator(".reply")).to_have_count(2, timeout=10_000)

    await asyncio.to_thread(gw.send, (REQUESTS / "numx_own_text.eml").read_bytes())
    body = gw.request_email(
        "<envoi>\n<keyid>demo</keyid>\n<num1>0601020306</num1>\n<num2>0699000021</num2>\n"
        "<sms>Votre colis arrive demain ÖÀ bientôt</sms>\n"
        "<emailNot>not@masociete.com</emailNot>\n<emailId>1551</emailId>\n</envoi>"
    )
    await asyncio.to_thread(gw.send, body)
    await expect(page.locator(".email")).to_have_count(3, timeout=10_000)
    await expect(page.locator('.phone[data-number="0601020306"] .bubble .text')).to_have_text(
        "Votre colis arrive demain\nÀ bientôt", use_inner_text=True, timeout=10_000
    )
    await expect(page.locator(".email").first).to_contain_text("21")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "page.png"), full_page=True)

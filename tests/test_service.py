"""The service's memory of authorised senders: which emails skip the account lookup before
their attachments are decoded (the writer decides each one all the same)."""

from __future__ import annotations

import dataclasses

import pytest

from gateway import service
from gateway.core.model import Inbound, MailContent, Request
from gateway.service import AuthorisedSenders


class _Time:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _email(keyid: str = "demo", sender: str = "app@example.com") -> Inbound:
    request = Request(
        keyid=keyid,
        email_id="1",
        email_ack="",
        email_not="",
        emetteur=None,
        tracker="",
        smslong=None,
        nostop="",
        recipients=(),
        numbered=True,
    )
    content = MailContent(from_address=sender, text="<envoi></envoi>", reason="")
    return Inbound(b"", "app@example.com", "127.0.0.1", content, request)


def test_a_sender_found_authorised_is_known_for_the_window_only() -> None:
    time = _Time()
    senders = AuthorisedSenders(time)
    email = _email()
    assert email not in senders
    senders.add(email)
    assert email in senders
    time.now += service.AUTHORISED_FOR - 0.01
    assert email in senders
    time.now += 0.02
    assert email not in senders


def test_the_keyid_s_surrounding_spaces_do_not_make_another_sender() -> None:
    senders = AuthorisedSenders(_Time())
    senders.add(_email())
    assert _email(keyid=" demo\n") in senders


@pytest.mark.parametrize(
    "other",
    [
        _email(keyid="other"),
        _email(sender="app@elsewhere.test"),
        dataclasses.replace(_email(), envelope_from="bounce@elsewhere.test"),
        dataclasses.replace(_email(), client_ip="127.0.0.2"),
    ],
    ids=["keyid", "from", "envelope sender", "client ip"],
)
def test_an_email_differing_in_what_authorisation_reads_is_another_sender(other: Inbound) -> None:
    senders = AuthorisedSenders(_Time())
    senders.add(_email())
    assert other not in senders


def test_the_senders_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "AUTHORISED_KEPT", 3)
    senders = AuthorisedSenders(_Time())
    emails = [_email(keyid=f"k{n}") for n in range(4)]
    for email in emails[:3]:
        senders.add(email)
    assert all(email in senders for email in emails[:3])
    senders.add(emails[3])  # the fourth: the three before are forgotten
    assert emails[3] in senders
    assert not any(email in senders for email in emails[:3])

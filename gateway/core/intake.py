"""Reading one email for the rules: MIME, then the `<envoi>` element, then the Request."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import Message

from gateway.core import envoi, mime
from gateway.core import request as requests
from gateway.core.model import Attachment, Inbound, MailContent, ReadLimits

Parts = tuple[Message, ...]  # the attachments' MIME parts, not decoded yet


def read(
    raw: bytes,
    *,
    envelope_from: str,
    client_ip: str,
    limits: ReadLimits,
    attachments: bool = True,
) -> Inbound:
    """What the rules judge of an email; never raises, whatever the bytes are.

    `attachments=False` reads the body only (attachments named, not decoded, no CSV read):
    what is read of an email whose sender is not authorised yet (SPEC §16)."""
    inbound, parts = read_named(
        raw, envelope_from=envelope_from, client_ip=client_ip, limits=limits
    )
    return with_attachments(inbound, parts, limits) if attachments else inbound


def read_named(
    raw: bytes, *, envelope_from: str, client_ip: str, limits: ReadLimits
) -> tuple[Inbound, Parts]:
    """The email read without its attachments (named, not decoded; no CSV read), and their
    parts for `with_attachments`, once the sender is authorised: one parse either way."""
    content, parts = mime.extract_named(raw)
    return _inbound(raw, envelope_from, client_ip, content, (), limits), parts


def with_attachments(inbound: Inbound, parts: Sequence[Message], limits: ReadLimits) -> Inbound:
    """The email read whole: its attachments decoded and its CSV files merged."""
    if not parts:
        return inbound
    content = mime.decoded(inbound.content, parts)
    return _inbound(
        inbound.raw, inbound.envelope_from, inbound.client_ip, content, content.attachments, limits
    )


def _inbound(
    raw: bytes,
    envelope_from: str,
    client_ip: str,
    content: MailContent,
    attachments: tuple[Attachment, ...],
    limits: ReadLimits,
) -> Inbound:
    if content.text is None:
        return Inbound(raw, envelope_from, client_ip, content, None)
    parsed = envoi.parse(
        content.text,
        max_chars=limits.max_body_chars,
        max_tags=limits.max_tags,
        max_value_chars=limits.max_value_chars,
    )
    request = requests.build(parsed, attachments, max_recipients=limits.max_recipients)
    return Inbound(raw, envelope_from, client_ip, content, request)

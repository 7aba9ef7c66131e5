"""Reading one email for the rules: MIME, then the `<envoi>` element, then the Request."""

from __future__ import annotations

from gateway.core import envoi, mime
from gateway.core import request as requests
from gateway.core.model import Inbound, ReadLimits


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
    content = mime.extract(raw, attachments=attachments)
    if content.text is None:
        return Inbound(raw, envelope_from, client_ip, content, None)
    parsed = envoi.parse(
        content.text,
        max_chars=limits.max_body_chars,
        max_tags=limits.max_tags,
        max_value_chars=limits.max_value_chars,
    )
    request = requests.build(
        parsed, content.attachments if attachments else (), max_recipients=limits.max_recipients
    )
    return Inbound(raw, envelope_from, client_ip, content, request)

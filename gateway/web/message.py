"""What the detail view shows of an inbound email as received: headers, text, attachments."""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import re
from typing import Any

from gateway.core import mime

SHOWN_CHARS = 65536  # of the text: the whole message stays one click away (raw_url)
SHOWN_HEADERS = 200
_FOLD = re.compile(r"\r?\n[ \t]*")


def describe(raw: bytes) -> dict[str, Any]:
    """The headers (decoded, unfolded, in order), the text/plain body as the gateway read it
    (None when it read none) and each attachment's name and decoded size. Never raises."""
    content = mime.extract(raw)
    return {
        "headers": _headers(raw),
        "text": None if content.text is None else _clean(content.text[:SHOWN_CHARS]),
        "attachments": [
            {"filename": _clean(a.filename), "size": len(a.content)} for a in content.attachments
        ],
    }


def _headers(raw: bytes) -> list[dict[str, str]]:
    parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    found = []
    for name, value in itertools.islice(parsed.raw_items(), SHOWN_HEADERS):
        try:
            shown = str(parsed.policy.header_fetch_parse(name, value))
        except Exception:  # a header the library cannot decode is shown as it came
            shown = value
        found.append({"name": _clean(name), "value": _clean(_FOLD.sub(" ", shown).strip())})
    return found


def _clean(text: str) -> str:
    """Valid Unicode for JSON: undecodable bytes (kept as surrogates) become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")

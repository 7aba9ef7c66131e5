"""The sender id (`emetteur`): its codes (16, 33) and the STOP mention a custom sender needs."""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet

from gateway.core import codes

_FORMAT = re.compile(r"[A-Za-z0-9 ]{4,11}")
_LETTER = re.compile(r"[A-Za-z]")


def check_emetteur(
    emetteur: str | None, approved: AbstractSet[str], default_sender: str
) -> tuple[int | None, str, bool]:
    """(code, sender id to use, stop_needed) for the `emetteur` tag as the client wrote it.

    Absent: the default short code, no STOP. Approval is an exact, case-sensitive match
    of the trimmed value, because the operator shows the sender id exactly as registered.
    """
    if emetteur is None:
        return None, default_sender, False
    sender = emetteur.strip()
    if not sender:
        return codes.SENDER_EMPTY, sender, False
    if not well_formed(sender):
        return codes.SENDER_NOT_ALLOWED, sender, False
    if sender not in approved:
        return codes.SENDER_NOT_ALLOWED, sender, False
    return None, sender, True


def well_formed(sender: str) -> bool:
    """4 to 11 letters, digits or spaces, with a letter: the sender ids operators show."""
    return bool(_FORMAT.fullmatch(sender) and _LETTER.search(sender))


def with_stop(text: str, stop_text: str) -> str:
    """The message as delivered with the STOP mention the operators require."""
    return text + "\r\n" + stop_text

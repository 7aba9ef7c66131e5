"""The sender id (emetteur) codes and the STOP mention."""

from __future__ import annotations

import pytest

from gateway.core import codes
from gateway.core.segments import septets
from gateway.core.sender import check_emetteur, with_stop

APPROVED = frozenset({"MaSociete", "MaSociete7", "Ma Societe", "ABCD", "Shop 24", "ABCDEFGHIJK"})
DEFAULT = "36111"


def test_absent_emetteur_uses_the_default_sender_without_stop() -> None:
    assert check_emetteur(None, APPROVED, DEFAULT) == (None, DEFAULT, False)


@pytest.mark.parametrize("emetteur", ["", " ", "\t", "  \n "])
def test_present_but_empty_emetteur_is_code_16(emetteur: str) -> None:
    assert check_emetteur(emetteur, APPROVED, DEFAULT) == (codes.SENDER_EMPTY, "", False)


@pytest.mark.parametrize(
    ("emetteur", "sender"),
    [
        ("MaSociete", "MaSociete"),
        ("MaSociete7", "MaSociete7"),
        ("Ma Societe", "Ma Societe"),
        ("  MaSociete  ", "MaSociete"),
        ("\tMaSociete\n", "MaSociete"),
        ("ABCD", "ABCD"),  # 4 characters
        ("ABCDEFGHIJK", "ABCDEFGHIJK"),  # 11 characters
        ("Shop 24", "Shop 24"),
    ],
)
def test_approved_emetteur_is_used_trimmed_and_needs_stop(emetteur: str, sender: str) -> None:
    assert check_emetteur(emetteur, APPROVED, DEFAULT) == (None, sender, True)


@pytest.mark.parametrize(
    "emetteur",
    [
        "ABC",  # 3 characters
        "ABCDEFGHIJKL",  # 12 characters
        "36111",  # digits only
        "0601020304",
        "1234 5678",
        "Ma_Societe",
        "Ma-Societe",
        "MaSociété",
        "Ma.Societe",
        "Société",
        "MaSociete!",
    ],
)
def test_badly_formed_emetteur_is_code_33(emetteur: str) -> None:
    # Approved or not: the format is checked first.
    approved = APPROVED | {emetteur}
    code, _, stop = check_emetteur(emetteur, approved, DEFAULT)
    assert (code, stop) == (codes.SENDER_NOT_ALLOWED, False)


@pytest.mark.parametrize(
    "emetteur",
    [
        "Inconnu",
        "masociete",  # approval is case-sensitive
        "MASOCIETE",
        "Ma  Societe",  # inner spaces are compared as written
        "MaSociete8",
    ],
)
def test_well_formed_but_unapproved_emetteur_is_code_33(emetteur: str) -> None:
    code, sender, stop = check_emetteur(emetteur, APPROVED, DEFAULT)
    assert (code, sender, stop) == (codes.SENDER_NOT_ALLOWED, emetteur.strip(), False)


def test_account_without_approved_senders_refuses_every_emetteur() -> None:
    assert check_emetteur("MaSociete", frozenset(), DEFAULT)[0] == codes.SENDER_NOT_ALLOWED


def test_approved_may_be_any_set() -> None:
    assert check_emetteur("MaSociete", {"MaSociete"}, DEFAULT) == (None, "MaSociete", True)


@pytest.mark.parametrize(
    ("text", "stop", "expected"),
    [
        ("Bonjour", "STOP SMS au 36111", "Bonjour\r\nSTOP SMS au 36111"),
        ("", "STOP SMS au 36111", "\r\nSTOP SMS au 36111"),
        ("Promo\n-10%", "STOP au 12345", "Promo\n-10%\r\nSTOP au 12345"),
    ],
)
def test_with_stop_appends_crlf_and_stop_text(text: str, stop: str, expected: str) -> None:
    assert with_stop(text, stop) == expected


def test_default_stop_suffix_is_19_septets() -> None:
    assert septets(with_stop("", "STOP SMS au 36111")) == 19

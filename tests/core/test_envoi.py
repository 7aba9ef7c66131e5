"""Reading the `<envoi>` element: the document's examples, tolerance, safety and bounds."""

from __future__ import annotations

import re
import time
import unicodedata
from bisect import bisect_left

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import envoi as envoi_module
from gateway.core.envoi import parse
from gateway.core.model import Envoi

PROMO_10 = "L'été est fini! Super promo -10% à partir de 50€ d'achat !!!"
PROMO_20 = "L'été est fini! Super promo -20% à partir de 100€ d'achat !!!"
REPLIES = {
    "emetteur": "MaSociete",
    "emailnot": "not@masociete.com",
    "emailack": "ack@masociete.com",
    "emailid": "1548",
}


def fields(text: str) -> dict[str, str]:
    envoi = parse(text)
    assert (envoi.found, envoi.error) == (True, "")
    return dict(envoi.fields)


# -- the document's own examples ------------------------------------------------------------


def test_document_template_is_read() -> None:
    body = (
        "<envoi>\n<keyid>[CLE_IDENTIFICATION]</keyid>\n<num>[NUMERO_MOBILE]</num>\n"
        "<sms>[MESSAGE]</sms>\n<emailId>[ID_UNIQUE]</emailId>\n</envoi>\n"
    )
    assert fields(body) == {
        "keyid": "[CLE_IDENTIFICATION]",
        "num": "[NUMERO_MOBILE]",
        "sms": "[MESSAGE]",
        "emailid": "[ID_UNIQUE]",
    }


def test_document_single_recipient_example() -> None:
    body = f"""<envoi>
<keyid>a296464ce012b8ab710a</keyid>
<num>0601020304</num>
<sms>{PROMO_10}</sms>
<emetteur>MaSociete</emetteur>
<emailNot>not@masociete.com</emailNot>
<emailAck>ack@masociete.com</emailAck>
<emailId>1548</emailId>
</envoi>
"""
    assert fields(body) == {
        "keyid": "a296464ce012b8ab710a",
        "num": "0601020304",
        "sms": PROMO_10,
        **REPLIES,
    }


def test_document_two_recipients_with_one_message_example() -> None:
    body = f"""<envoi>
<keyid>a296464ce012b8ab710a</keyid>
<num1>0601020304</num1>
<num2>0601020305</num2>
<sms>{PROMO_10}</sms>
<emetteur>MaSociete</emetteur>
<emailNot>not@masociete.com</emailNot>
<emailAck>ack@masociete.com</emailAck>
<emailId>1548</emailId>
</envoi>
"""
    assert fields(body) == {
        "keyid": "a296464ce012b8ab710a",
        "num1": "0601020304",
        "num2": "0601020305",
        "sms": PROMO_10,
        **REPLIES,
    }


def test_document_two_recipients_with_their_own_messages_example() -> None:
    body = f"""<envoi>
<keyid>a296464ce012b8ab710a</keyid>
<num1>0601020304</num1>
<num2>0601020305</num2>
<sms1>{PROMO_10}</sms1>
<sms2>{PROMO_20}</sms2>
<emetteur>MaSociete</emetteur>
<emailNot>not@masociete.com</emailNot>
<emailAck>ack@masociete.com</emailAck>
<emailId>1548</emailId>
</envoi>
"""
    assert fields(body) == {
        "keyid": "a296464ce012b8ab710a",
        "num1": "0601020304",
        "num2": "0601020305",
        "sms1": PROMO_10,
        "sms2": PROMO_20,
        **REPLIES,
    }


def test_document_attachment_example_has_no_recipient_fields() -> None:
    body = """<envoi>
<keyid>a296464ce012b8ab710a</keyid>
<emetteur>MaSociete</emetteur>
<emailNot>not@masociete.com</emailNot>
<emailAck>ack@masociete.com</emailAck>
<emailId>1548</emailId>
</envoi>
"""
    assert fields(body) == {"keyid": "a296464ce012b8ab710a", **REPLIES}


def test_document_nostop_tag_is_read() -> None:
    assert fields("<envoi><nostop>1</nostop></envoi>") == {"nostop": "1"}


# -- finding the element --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "<ENVOI><KEYID>k</KEYID></ENVOI>",
        "<Envoi><KeyId>k</keyID></eNvOi>",
        "<envoi ><keyid >k</keyid ></envoi >",
        "<envoi>\r\n<keyid>k</keyid>\r\n</envoi>",
    ],
)
def test_tag_names_match_case_insensitively(body: str) -> None:
    assert fields(body) == {"keyid": "k"}


def test_field_names_are_lower_cased() -> None:
    assert fields("<envoi><emailID>7</emailID><emailAck>a@b.fr</emailAck></envoi>") == {
        "emailid": "7",
        "emailack": "a@b.fr",
    }


def test_element_is_found_anywhere_in_the_body() -> None:
    body = "Bonjour,\n\nvoici ma demande : <envoi><num>0601020304</num></envoi> merci.\n-- \nJean"
    assert fields(body) == {"num": "0601020304"}


def test_first_element_wins() -> None:
    body = "<envoi><num>0601020304</num></envoi>\n<envoi><num>0701020304</num></envoi>"
    assert fields(body) == {"num": "0601020304"}


def test_element_starts_at_its_nearest_opening_tag() -> None:
    body = "<envoi> draft <sms>lost\n<envoi><num>0601020304</num></envoi>"
    assert fields(body) == {"num": "0601020304"}


@pytest.mark.parametrize(
    "body",
    [
        "",
        "Bonjour, pas de requête ici.",
        "<keyid>k</keyid><num>0601020304</num>",
        "<envoi><keyid>k</keyid>",
        "</envoi><envoi><keyid>k</keyid>",
        "<envoi/><keyid>k</keyid>",
        "&lt;envoi&gt;<keyid>k</keyid>&lt;/envoi&gt;",
        "<envoix><keyid>k</keyid></envoix>",
    ],
)
def test_body_without_a_complete_element_is_not_found(body: str) -> None:
    assert parse(body) == Envoi(found=False)


def test_empty_element_is_found_without_fields() -> None:
    assert parse("<envoi></envoi>") == Envoi(found=True)


# -- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("I <3 you & me", "I <3 you & me"),
        ("a < b > c", "a < b > c"),
        ("Tom & Jerry &co", "Tom & Jerry &co"),
        ("x <b>gras</b> y", "x <b>gras</b> y"),
        ("x <unclosed y", "x <unclosed y"),
        ("prix > 10€ <", "prix > 10€ <"),
        ("&amp; &lt; &gt; &quot; &apos;", "& < > \" '"),
        ("&amp;lt;", "&lt;"),
        ("&#233;t&#xE9; &#XE9;", "été é"),
        ("&#128512;", "😀"),
        ("&eacute; &nbsp; &AMP; &#;", "&eacute; &nbsp; &AMP; &#;"),
        ("&#0; &#xD800; &#x110000; &#99999999;", "&#0; &#xD800; &#x110000; &#99999999;"),
        ("<![CDATA[I <3 &amp; you]]>", "I <3 &amp; you"),
        ("a &amp; <![CDATA[&amp;]]> &amp;", "a & &amp; &"),
        ("<![CDATA[unclosed &amp;", "<![CDATA[unclosed &"),
        ("tab\tinside", "tab\tinside"),
    ],
)
def test_value_text_is_read_tolerantly(raw: str, value: str) -> None:
    assert fields(f"<envoi><sms>{raw}</sms></envoi>") == {"sms": value}


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("  padded  ", "padded"),
        ("\n  0601020304\n", "0601020304"),
        ("un\ndeux", "un deux"),
        ("un\r\ndeux", "un deux"),
        ("un\rdeux", "un deux"),
        ("un   \r\n   deux", "un deux"),
        ("un \t\n\t deux", "un deux"),
        ("un\n\n\ndeux", "un deux"),
        ("un\n  \n deux\ntrois", "un deux trois"),
    ],
)
def test_raw_line_breaks_fold_to_one_space_and_values_are_trimmed(raw: str, value: str) -> None:
    assert fields(f"<envoi><sms>{raw}</sms></envoi>") == {"sms": value}


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("BonjourÖà demain", "Bonjour\nà demain"),
        ("ÖÖ", "\n\n"),
        (" Ö ", "\n"),  # trimmed before, so the line feed stays
        ("a ÖÖ b", "a \n\n b"),
        ("O\u0308k", "\nk"),  # O + combining diaeresis, NFC
        ("&#214;k", "\nk"),
        ("&#xD6;k", "\nk"),
        ("a&#10;b", "a\nb"),  # an encoded line feed is not a raw one
        ("öÔ", "öÔ"),
    ],
)
def test_o_umlaut_becomes_a_line_feed(raw: str, value: str) -> None:
    assert fields(f"<envoi><sms>{raw}</sms></envoi>") == {"sms": value}


def test_values_are_nfc_normalised() -> None:
    assert fields("<envoi><sms>e\u0301te\u0301</sms></envoi>") == {"sms": "été"}


def test_repeated_tag_keeps_the_first_value() -> None:
    body = "<envoi><num>0601020304</num><NUM>0701020304</NUM><num>x</num></envoi>"
    assert fields(body) == {"num": "0601020304"}


def test_self_closing_tag_is_an_empty_value() -> None:
    assert fields("<envoi><emetteur/><tracker /></envoi>") == {"emetteur": "", "tracker": ""}


def test_empty_tag_is_an_empty_value() -> None:
    assert fields("<envoi><emetteur></emetteur></envoi>") == {"emetteur": ""}


def test_unclosed_tag_is_text_and_later_tags_are_read() -> None:
    body = "<envoi><keyid>k<num>0601020304</num> <emailId>3</emailId></envoi>"
    assert fields(body) == {"num": "0601020304", "emailid": "3"}


def test_text_between_tags_is_ignored() -> None:
    body = "<envoi>Bonjour <keyid>k</keyid> et merci & à+ <3 </envoi>"
    assert fields(body) == {"keyid": "k"}


def test_comment_hides_the_tags_inside_it() -> None:
    body = "<envoi><!-- <num>0601020304</num> --><num>0701020304</num></envoi>"
    assert fields(body) == {"num": "0701020304"}


def test_tag_inside_a_value_is_part_of_the_value() -> None:
    body = "<envoi><sms>voir <num>0601020304</num> ici</sms></envoi>"
    assert fields(body) == {"sms": "voir <num>0601020304</num> ici"}


def test_numbered_tags_are_distinct_fields() -> None:
    body = (
        "<envoi>" + "".join(f"<num{i}>06010203{i:02}</num{i}>" for i in range(1, 12)) + "</envoi>"
    )
    assert fields(body) == {f"num{i}": f"06010203{i:02}" for i in range(1, 12)}


# -- safety ---------------------------------------------------------------------------------


def test_dtd_entities_are_never_expanded() -> None:
    body = (
        '<?xml version="1.0"?>\n<!DOCTYPE envoi [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n'
        '<!ENTITY lol "lol">\n<!ENTITY lol2 "&lol;&lol;&lol;&lol;">\n]>\n'
        "<envoi><keyid>k</keyid><sms>&xxe; &lol2;</sms></envoi>"
    )
    assert fields(body) == {"keyid": "k", "sms": "&xxe; &lol2;"}


def test_dtd_inside_the_element_is_ignored() -> None:
    body = '<envoi><!DOCTYPE x [<!ENTITY e "boom">]><sms>&e;</sms></envoi>'
    assert fields(body) == {"sms": "&e;"}


def test_processing_instruction_is_ignored() -> None:
    assert fields('<?xml version="1.0"?><envoi><?pi x?><num>1</num></envoi>') == {"num": "1"}


# -- bounds ---------------------------------------------------------------------------------


def test_body_too_large_is_refused_without_scanning() -> None:
    body = "<envoi><keyid>k</keyid></envoi>" + " " * 100
    assert parse(body, max_chars=100) == Envoi(found=False, error="body too large")


def test_body_at_the_size_limit_is_read() -> None:
    body = "<envoi><keyid>k</keyid></envoi>"
    assert parse(body, max_chars=len(body)).get("keyid") == "k"


def test_too_many_tags_keeps_the_first_ones() -> None:
    body = "<envoi>" + "".join(f"<num{i}>{i}</num{i}>" for i in range(1, 6)) + "</envoi>"
    envoi = parse(body, max_tags=3)
    assert (envoi.found, dict(envoi.fields), envoi.error) == (
        True,
        {"num1": "1", "num2": "2", "num3": "3"},
        "too many tags",
    )


def test_repeated_tags_count_towards_the_tag_limit() -> None:
    envoi = parse("<envoi>" + "<num>1</num>" * 4 + "<sms>x</sms></envoi>", max_tags=3)
    assert (dict(envoi.fields), envoi.error) == ({"num": "1"}, "too many tags")


def test_exactly_max_tags_is_fine() -> None:
    body = "<envoi>" + "".join(f"<num{i}>{i}</num{i}>" for i in range(1, 4)) + "</envoi>"
    assert parse(body, max_tags=3).error == ""


def test_default_tag_limit_allows_500_numbered_recipients_and_messages() -> None:
    body = "<envoi><keyid>k</keyid><emailId>1</emailId>"
    body += "".join(f"<num{i}>0601020304</num{i}><sms{i}>x</sms{i}>" for i in range(1, 501))
    envoi = parse(body + "</envoi>")
    assert (len(envoi.fields), envoi.error) == (1002, "")


def test_long_value_is_cut_and_noted() -> None:
    envoi = parse("<envoi><sms>" + "a" * 20 + "</sms><num>1</num></envoi>", max_value_chars=5)
    assert (dict(envoi.fields), envoi.error) == (
        {"sms": "aaaaa", "num": "1"},
        "value of <sms> cut to 5 characters",
    )


def test_value_is_measured_after_decoding() -> None:
    envoi = parse("<envoi><sms>&amp;&amp;&amp;</sms></envoi>", max_value_chars=3)
    assert (envoi.get("sms"), envoi.error) == ("&&&", "")


@pytest.mark.parametrize(
    "body",
    [
        "<envoi>" + "<a>" * 200_000 + "</envoi>",
        "<envoi><sms>" + " " * 500_000 + "x</sms></envoi>",
        "<envoi>" + "<!--" * 200_000 + "</envoi>",
        "<envoi><sms>" + "<![CDATA[" * 50_000 + "</sms></envoi>",
        "<envoi>" * 100_000 + "</envoi>",
        "<envoi>" + "".join(f"<t{i}>" for i in range(50_000)) + "</envoi>",
    ],
    ids=[
        "unclosed-tags",
        "space-run",
        "unclosed-comments",
        "unclosed-cdata",
        "reopened",
        "distinct-unclosed-tags",
    ],
)
def test_pathological_bodies_are_read_in_linear_time(body: str) -> None:
    started = time.perf_counter()
    envoi = parse(body)
    assert envoi.found
    assert time.perf_counter() - started < 5  # quadratic would take hours


# -- properties -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    assert isinstance(parse(text), Envoi)


TOKENS = st.sampled_from(
    [
        "<envoi>",
        "</envoi>",
        "<ENVOI >",
        "<sms>",
        "</sms>",
        "<SMS>",
        "</Sms >",
        "<num1>",
        "</num1>",
        "<x/>",
        "<",
        ">",
        "</",
        "&",
        "&amp;",
        "&#",
        "&#xD6;",
        "&#0;",
        ";",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "<!DOCTYPE",
        "<!ENTITY e 'x'>",
        "&e;",
        "\r\n",
        "\r",
        "\n",
        " ",
        "\t",
        "Ö",
        "O\u0308",
        "\u0308",
        "\ud800",
        "é",
        "k",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(TOKENS | st.text(max_size=5), max_size=60).map("".join))
def test_tag_soup_never_raises_and_stays_within_bounds(text: str) -> None:
    envoi = parse(text, max_tags=5, max_value_chars=8)
    assert len(envoi.fields) <= 5
    assert all(len(value) <= 8 for value in envoi.fields.values())
    assert all(name == name.lower() for name in envoi.fields)


NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(lambda n: n != "envoi")
PLAIN_VALUES = st.text(
    alphabet=st.characters(
        exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
        exclude_characters="<&Ö\u0308",
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(NAMES, PLAIN_VALUES, max_size=12))
def test_written_fields_are_read_back(written: dict[str, str]) -> None:
    body = "<envoi>\n" + "".join(f"<{n.upper()}>{v}</{n}>\n" for n, v in written.items())
    envoi = parse("Bonjour\n" + body + "</envoi>\n")
    normalised = {n: unicodedata.normalize("NFC", v) for n, v in written.items()}
    assert (envoi.found, dict(envoi.fields)) == (True, normalised)


# -- the scanner against the one it replaced --------------------------------------------------
# The scanner reads an element whose value holds no "<" in one match, and a value's common
# shape without folding it. The scanner as it was before (a close index and a binary search
# for every tag; every value folded), kept here as the oracle: both must read any tag soup
# the same.
_OPEN = re.compile(rf"<(?:(!--)|({envoi_module._NAME})\s*(/?)>)", envoi_module._TAGS)
_CLOSE = envoi_module._CLOSE


def _reference_children(
    inner: str, max_tags: int, max_value_chars: int
) -> tuple[dict[str, str], list[str]]:
    # Every closing tag is indexed once, so that an opening tag finds its close by a
    # binary search: no quadratic scan, however many unclosed "<name>" a body holds.
    closes: dict[str, tuple[list[int], list[int]]] = {}
    for match in _CLOSE.finditer(inner):
        starts, ends = closes.setdefault(match.group(1).lower(), ([], []))
        starts.append(match.start())
        ends.append(match.end())

    fields: dict[str, str] = {}
    errors: list[str] = []
    count = 0
    position = 0
    comments_close = True
    for match in _OPEN.finditer(inner):
        if match.start() < position:  # inside a value already read
            continue
        if match.group(1):
            end = inner.find("-->", match.end()) if comments_close else -1
            if end < 0:
                comments_close = False  # no later "<!--" can close either
            else:
                position = end + 3
            continue
        name = match.group(2).lower()
        if match.group(3):
            raw, position = "", match.end()
        else:
            starts, ends = closes.get(name, ([], []))
            i = bisect_left(starts, match.end())
            if i == len(starts):  # a "<" that opens nothing: text, skipped
                continue
            raw, position = inner[match.end() : starts[i]], ends[i]
        count += 1
        if count > max_tags:
            errors.append("too many tags")
            break
        if name in fields:  # a repeated tag: the first one wins
            continue
        value = _reference_value(raw)
        if len(value) > max_value_chars:
            value = value[:max_value_chars]
            errors.append(f"value of <{name}> cut to {max_value_chars} characters")
        fields[name] = value
    return fields, errors


def _reference_value(raw: str) -> str:
    folded = " ".join(
        line for line in (s.strip(" \t") for s in envoi_module._LINE_BREAK.split(raw)) if line
    )
    text = envoi_module._unwrap_cdata(folded.strip())
    return unicodedata.normalize("NFC", text).replace(envoi_module.LINE_FEED_MARK, "\n")


SOUP = TOKENS | st.sampled_from(["<a>", "</A>", "<b/>", "</b >", "<A >", "x", "1", "<num1>"])


@settings(max_examples=400, deadline=None)
@given(st.lists(SOUP | st.text(max_size=5), max_size=60).map("".join))
def test_the_scanner_reads_tag_soup_as_the_one_it_replaced(text: str) -> None:
    for max_tags, max_chars in ((5, 8), (2100, 10_000)):
        expected = _reference_children(text, max_tags, max_chars)
        assert envoi_module._children(text, max_tags, max_chars) == expected

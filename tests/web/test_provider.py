"""The provider's HTTP API under /cgi-bin, through real HTTP: reading fields, authorisation,
credit, blacklist, HLR and the campaign report."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime

import httpx

from gateway.app import Gateway
from gateway.core import codes
from gateway.store import accounts
from tests.provider_schema import validate
from tests.web.conftest import Rows


def _unzip(response: httpx.Response) -> tuple[str, list[list[str]]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        (name,) = bundle.namelist()
        text = bundle.read(name).decode("utf-8")
    return name, list(csv.reader(io.StringIO(text), delimiter=";"))


async def _create(client: httpx.AsyncClient, **fields: object) -> dict[str, object]:
    created = await client.post("/api/v1/accounts", json={"domains": ["example.com"], **fields})
    assert created.status_code == 201, created.text
    body: dict[str, object] = created.json()
    return body


# -- reading fields, authorisation ------------------------------------------------------------


async def test_credit_by_get_with_the_query_string(client: httpx.AsyncClient) -> None:
    answer = await client.get("/cgi-bin/credit", params={"keyid": "demo", "credit": "1"})
    assert answer.status_code == 200
    assert answer.json() == {"etat": {"credit": 1000}}


async def test_credit_2_adds_the_quantity_as_a_string(client: httpx.AsyncClient) -> None:
    answer = await client.post("/cgi-bin/credit", data={"keyid": "demo", "credit": "2"})
    assert answer.json() == {"etat": {"credit": 1000, "quantite": "1000"}}


async def test_json_is_read_whatever_the_content_type(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/cgi-bin/credit",
        content=json.dumps({"keyid": "demo", "credit": "1"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.json() == {"etat": {"credit": 1000}}


async def test_field_names_match_whatever_their_case(client: httpx.AsyncClient) -> None:
    answer = await client.post("/cgi-bin/credit", json={"KeyId": "demo", "CREDIT": "1"})
    assert answer.json() == {"etat": {"credit": 1000}}


async def test_body_fields_win_over_the_query_string(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/cgi-bin/credit?keyid=nobody&credit=1", json={"keyid": "demo"}
    )
    assert answer.json() == {"etat": {"credit": 1000}}


async def test_unknown_keyid_is_a_400_with_code_3_and_no_tel(client: httpx.AsyncClient) -> None:
    answer = await client.get("/cgi-bin/credit", params={"keyid": "nobody", "credit": "1"})
    assert answer.status_code == 400
    assert answer.json() == {"etat": {"etat": [{"code": "3", "message": codes.MESSAGES[3]}]}}


async def test_missing_keyid_is_code_1(client: httpx.AsyncClient) -> None:
    answer = await client.get("/cgi-bin/credit", params={"credit": "1"})
    assert answer.status_code == 400
    assert answer.json()["etat"]["etat"][0]["code"] == "1"


async def test_a_client_ip_outside_the_allow_list_is_code_14(client: httpx.AsyncClient) -> None:
    account = await _create(client, allowed_ips=["192.0.2.0/24"], credit=5)
    answer = await client.get("/cgi-bin/credit", params={"keyid": account["keyid"], "credit": 1})
    assert answer.status_code == 400
    assert answer.json()["etat"]["etat"][0]["code"] == "14"


async def test_a_bad_credit_kind_is_999_naming_the_field(client: httpx.AsyncClient) -> None:
    answer = await client.get("/cgi-bin/credit", params={"keyid": "demo", "credit": "3"})
    assert answer.status_code == 400
    (entry,) = answer.json()["etat"]["etat"]
    assert entry["code"] == "999" and "credit" in entry["message"]


# -- blacklist ----------------------------------------------------------------------------------


async def test_blacklist_as_the_official_client_posts_it(client: httpx.AsyncClient) -> None:
    # The generated clients put every parameter in the query string and post an empty form.
    added = await client.post(
        "/cgi-bin/setlistenoire?keyid=demo&setlisteNoire=1&num=06%2001%2002%2003%2004",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert added.json() == {"etat": {"etat": [{"tel": "06 01 02 03 04", "listeNoire": "OK"}]}}
    account = (await client.get("/api/v1/accounts/demo")).json()
    assert account["blacklist"] == ["0601020304"]
    removed = await client.post(
        "/cgi-bin/dellistenoire", params={"keyid": "demo", "delListeNoire": "1",
                                          "num": "0601020304"}
    )
    assert removed.json()["etat"]["etat"][0]["listeNoire"] == "OK"
    assert (await client.get("/api/v1/accounts/demo")).json()["blacklist"] == []


async def test_blacklist_names_in_any_case_and_php_lists(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/cgi-bin/setlistenoire",
        data={"keyid": "demo", "setListeNoire": "1", "num[]": ["0601020304", "0601020305"]},
    )
    assert [e["tel"] for e in answer.json()["etat"]["etat"]] == ["0601020304", "0601020305"]
    name, rows = _unzip(
        await client.post("/cgi-bin/getlistenoire", json={"keyid": "demo", "getListeNoire": "1"})
    )
    assert name == "listenoire.csv"
    assert rows == [["numero"], ["0601020304"], ["0601020305"]]


async def test_setlistenoire_feeds_the_blacklist_the_rules_read(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    await client.post(
        "/cgi-bin/setlistenoire", json={"keyid": "demo", "setlisteNoire": "1", "num": "0601020304"}
    )
    async with gateway.engine.connect() as conn:
        snapshot = await accounts.snapshot(conn, "demo", lock=False)
    assert snapshot is not None and "0601020304" in snapshot.blacklist


async def test_a_malformed_number_is_not_blacklisted(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/cgi-bin/setlistenoire", json={"keyid": "demo", "setlisteNoire": "1", "num": "12"}
    )
    (entry,) = answer.json()["etat"]["etat"]
    assert (entry["listeNoire"], entry["code"]) == ("KO", "7")


async def test_the_switch_must_be_1(client: httpx.AsyncClient) -> None:
    answer = await client.post("/cgi-bin/setlistenoire", json={"keyid": "demo", "num": "06"})
    assert answer.status_code == 400
    assert "setlisteNoire" in answer.json()["etat"]["etat"][0]["message"]


# -- HLR ----------------------------------------------------------------------------------------


async def test_hlr_gives_an_operator_per_number(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/cgi-bin/hlr",
        json={"keyid": "demo", "getHLR": "1", "num": ["0680010203", "0102030405"]},
    )
    assert answer.json() == {
        "etat": {
            "etat": [
                {"tel": "0680010203", "operateur": "ORAN"},
                {"tel": "0102030405", "operateur": ""},
            ]
        }
    }


# -- campaign report ----------------------------------------------------------------------------


async def test_campaign_report_is_a_zip_of_the_period(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    await rows.sms(created_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC), to="0601020301")
    await rows.sms(created_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC), to="0601020302")
    await rows.sms(created_at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC), to="0601020303")
    name, found = _unzip(
        await client.get(
            "/cgi-bin/campagne",
            params={
                "keyid": "demo",
                "rapportCampagne": "1",
                "date_deb": "2026-12-01 00:00",
                "date_fin": "2026-12-01 23:59",
            },
        )
    )
    assert name == "campagne.csv"
    assert found[0][:4] == ["date", "tel", "emetteur", "message"]
    assert [(r[0], r[1], r[3]) for r in found[1:]] == [
        ("2026-12-01 10:00:00", "0601020302", "Bonjour\r\nSTOP SMS au 36111")
    ]


async def test_campaign_dates_are_checked(client: httpx.AsyncClient) -> None:
    answer = await client.get(
        "/cgi-bin/campagne",
        params={"keyid": "demo", "rapportCampagne": "1", "date_deb": "hier", "date_fin": "x"},
    )
    assert answer.status_code == 400
    assert "date_deb" in answer.json()["etat"]["etat"][0]["message"]


# -- the answers as the provider's document describes them --------------------------------------


async def test_every_answer_here_has_the_shape_the_providers_document_gives(
    client: httpx.AsyncClient,
) -> None:
    calls = [
        ("/credit", "get", {"keyid": "demo", "credit": "2"}, 200),
        ("/credit", "get", {"keyid": "nobody", "credit": "1"}, 400),
        ("/setlistenoire", "post", {"keyid": "demo", "setlisteNoire": "1", "num": "0601020304"},
         200),
        ("/dellistenoire", "post", {"keyid": "demo", "delListeNoire": "1", "num": "0601020304"},
         200),
        ("/hlr", "post", {"keyid": "demo", "getHLR": "1", "num": ["0680010203"]}, 200),
        ("/hlr", "post", {"keyid": "", "getHLR": "1", "num": ["0680010203"]}, 400),
        ("/getlistenoire", "post", {"keyid": "demo"}, 400),
        ("/campagne", "get", {"keyid": "demo", "rapportCampagne": "1", "date_deb": "x"}, 400),
    ]  # fmt: skip
    for path, method, fields, status in calls:
        if method == "get":
            answer = await client.get(f"/cgi-bin{path}", params=fields)
        else:
            answer = await client.post(f"/cgi-bin{path}", json=fields)
        assert answer.status_code == status, (path, answer.text)
        validate(path, method, status, answer.json())

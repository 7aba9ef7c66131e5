"""A client generated from the provider's OpenAPI document (as its official libraries are),
unmodified but for its base URL, against the emulator: sends, credit, counting, HLR,
blacklist, directories and sub-accounts, read the way the official libraries read them."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from gateway.testing import RunningGateway
from tests.provider_schema import DOCUMENT

PACKAGE = "isendpro_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """openapi-python-client run on the provider's document, imported as a package."""
    where = tmp_path_factory.mktemp("client")
    tool = Path(sys.executable).parent / "openapi-python-client"
    env = {**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [str(tool), "generate", "--path", str(DOCUMENT), "--meta", "none",
         "--output-path", str(where / PACKAGE)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_the_generated_client_works_unchanged_but_for_its_base_url(
    generated: ModuleType, gateway_on: RunningGateway
) -> None:
    models = _module("models")
    with generated.Client(base_url=f"{gateway_on.api_url}/cgi-bin") as client:

        sent = _module("api.sms.send_sms").sync_detailed(
            client=client,
            body=models.SmsUniqueRequest(
                keyid="demo", num="0601020304", sms="Bonjour", emetteur="MaSociete"
            ),
        )
        assert sent.status_code == 200
        (entry,) = sent.parsed.etat.etat
        assert (entry.code, entry.tel, entry.smslong) == ("0", "0601020304", "1")

        multi = _module("api.sms.send_sms_multi").sync_detailed(
            client=client,
            body=models.SMSRequest(
                keyid="demo",
                num=["0601020305", "0699000021"],
                sms=["un", "deux"],
                tracker=["a", "b"],
            ),
        )
        assert [(e.tel, e.code) for e in multi.parsed.etat.etat] == [
            ("0601020305", "0"),
            ("0699000021", "21"),
        ]

        credit = _module("api.credit.get_credit").sync_detailed(
            client=client, keyid="demo", credit=models.GetCreditCredit("2")
        )
        assert (credit.parsed.etat.credit, credit.parsed.etat.quantite) == (998, "998")

        counted = _module("api.comptage.comptage").sync_detailed(
            client=client,
            body=models.ComptageRequest(
                comptage=models.ComptageRequestComptage("1"), keyid="demo", num="0601020304",
                sms="a" * 161,
            ),
        )
        assert counted.status_code == 200
        assert counted.parsed.etat.etat[0].nb_sms == "2"

        looked_up = _module("api.hlr.get_hlr").sync_detailed(
            client=client,
            body=models.HLRrequest(
                get_hlr=models.HLRrequestGetHLR("1"), keyid="demo", num=["0680010203"]
            ),
        )
        operators = [(e.tel, e.operateur) for e in looked_up.parsed.etat.etat]
        assert operators == [("0680010203", "ORAN")]

        listed = _module("api.set_liste_noire.set_liste_noire").sync_detailed(
            client=client,
            keyid="demo",
            setliste_noire=models.SetListeNoireSetlisteNoire("1"),
            num="0601020306",
        )
        assert [(e.tel, e.liste_noire) for e in listed.parsed.etat.etat] == [("0601020306", "OK")]
        refused = _module("api.sms.send_sms").sync_detailed(
            client=client, body=models.SmsUniqueRequest(keyid="demo", num="0601020306", sms="x")
        )
        assert refused.parsed.etat.etat[0].code == "11"

        directory = _module("api.repertoire.repertoire_crea").sync_detailed(
            client=client,
            body=models.REPERTOIREcreaterequest(
                keyid="demo",
                repertoire_edit=models.REPERTOIREcreaterequestRepertoireEdit("create"),
                repertoire_nom="Clients",
            ),
        )
        assert directory.parsed.etat.etat[0].repertoire_id

        sub = _module("api.add_subaccount.subaccount_add").sync_detailed(
            client=client,
            body=models.SubaccountAddRequest(
                keyid="demo",
                sub_account_edit=models.SubaccountAddRequestSubAccountEdit("addAccount"),
                sub_account_login="agence06",
                sub_account_password="secret",
            ),
        )
        (created,) = sub.parsed.etat.etat
        assert created.code == 230 and created.sub_account_key_id

        unknown = _module("api.sms.send_sms").sync_detailed(
            client=client, body=models.SmsUniqueRequest(keyid="nobody", num="0601020304", sms="x")
        )
        assert unknown.status_code == 400
        assert unknown.parsed.etat.etat[0].code == "3"

        assert {s["channel"] for s in gateway_on.sms()} == {"http"}

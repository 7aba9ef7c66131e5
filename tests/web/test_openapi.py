"""The generated OpenAPI document: valid OpenAPI 3.1, and made from the models and routes."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import UnresolvableParameterError
from referencing.exceptions import PointerToNowhere

from gateway.config import AccountSettings
from gateway.core.model import EmailStatus, ReplyState

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


async def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)


async def test_validator_refuses_a_path_parameter_that_is_not_declared(
    document: dict[str, Any],
) -> None:
    broken = copy.deepcopy(document)
    del broken["paths"]["/api/v1/accounts/{keyid}"]["get"]["parameters"]
    with pytest.raises(UnresolvableParameterError, match="keyid"):
        validate(broken)


async def test_validator_refuses_a_reference_to_no_schema(document: dict[str, Any]) -> None:
    broken = copy.deepcopy(document)
    broken["components"]["schemas"].pop("Health")
    with pytest.raises(PointerToNowhere, match="Health"):
        validate(broken)


async def test_account_body_has_the_keys_of_the_accounts_settings(
    document: dict[str, Any],
) -> None:
    body = document["components"]["schemas"]["AccountFields"]
    assert list(body["properties"]) == list(AccountSettings.model_fields)
    assert body["additionalProperties"] is False
    assert "required" not in body


async def test_enums_are_the_core_models(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["EmailStatus"]["enum"] == [s.value for s in EmailStatus]
    assert schemas["ReplyState"]["enum"] == [s.value for s in ReplyState]


async def test_list_parameters_come_from_the_query_model(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/api/v1/emails"]["get"]["parameters"]
    assert {p["name"] for p in parameters} == {
        "status",
        "email_id",
        "account",
        "number",
        "tracker",
        "channel",
        "limit",
        "offset",
        "before_id",
        "wait_for",
        "timeout",
    }
    (status,) = [p for p in parameters if p["name"] == "status"]
    assert status["schema"] == {"$ref": "#/components/schemas/EmailStatus"}


async def test_every_write_needs_the_admin_token(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method in ("post", "put", "patch", "delete"):
                assert {"adminToken": []} in operation["security"], (method, path)
                assert "401" in operation["responses"], (method, path)

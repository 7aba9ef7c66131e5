"""Checks an answer of the HTTP API against the provider's own OpenAPI document (its schemas are
what the official clients, generated from it, read).

The document lives beside the project (`../shared/reference/isendpro-openapi.json`, not copied
into it). Its schemas leave `additionalProperties` open; here they are closed, so that a field
the document does not name (a misspelt `subAccountKeyId`, say) fails too.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator

DOCUMENT = Path(__file__).resolve().parents[1].parent / "shared/reference/isendpro-openapi.json"


@cache
def document() -> dict[str, Any]:
    if not DOCUMENT.is_file():
        raise FileNotFoundError(f"the provider's OpenAPI document is expected at {DOCUMENT}")
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


def response_schema(path: str, method: str, status: int) -> dict[str, Any]:
    """The JSON schema the document gives for that answer, `$ref`s inlined, objects closed."""
    operation = document()["paths"][path][method.lower()]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    closed: dict[str, Any] = _closed(schema)
    return closed


# Where SPEC §15 decides against the document: codes in send answers are strings, as the
# document's own examples show ("code": "0"), though its SMSReponse schema says integer.
SPEC_DECIDES: dict[str, dict[str, Any]] = {
    "#/components/schemas/SMSReponse_etat_etat": {"code": {"type": "string"}},
}


def _closed(node: Any) -> Any:
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = document()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        resolved = _closed(target)
        for name, schema in SPEC_DECIDES.get(node["$ref"], {}).items():
            resolved["properties"][name] = schema
        return resolved
    inlined = {key: _closed(value) for key, value in node.items() if key != "example"}
    if "properties" in inlined:
        inlined.setdefault("additionalProperties", False)
    return inlined


def validate(path: str, method: str, status: int, body: object) -> None:
    """Raise jsonschema's ValidationError unless `body` is what the document says `path`
    answers to `method` with `status`."""
    OAS30Validator(response_schema(path, method, status)).validate(body)

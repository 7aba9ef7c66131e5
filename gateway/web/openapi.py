"""The OpenAPI 3.1 document, generated from the route table and the models (/openapi.json)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import Response

from gateway import __version__
from gateway.web.models import Error

JSON = "application/json"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PATH_PARAMETER = re.compile(r"\{(\w+)(?::(\w+))?\}")
_TYPES = {"": "string", "str": "string", "path": "string", "int": "integer", "float": "number"}
# A model answers in JSON; a media type ("text/html", …) answers with a body of its own.
Answer = tuple[type[BaseModel] | str, str]
Schema = dict[str, Any]


@dataclass(frozen=True)
class Operation:
    """One route of the API and what the document tells of it."""

    method: str
    path: str  # as Starlette matches it: converters included ({id:int})
    endpoint: Callable[[Request], Awaitable[Response]]
    summary: str
    answers: Mapping[int, Answer]  # status → what and when
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    description: str = ""


class _Schemas(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "title": "Email Id" next to the name email_id says nothing

    def default_schema(self, schema: Any) -> Schema:
        found: Schema = super().default_schema(schema)
        if found.get("default", 0) is None and "anyOf" not in found:
            del found["default"]  # None there means absent: the value itself is never null
        return found


def document(
    operations: Sequence[Operation], description: str, open_paths: Collection[str] = ()
) -> Schema:
    """The whole document: every operation with its parameters, body and answers; those of
    `open_paths` need no token and answer whatever the Host."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Error, "serialization"): None}
    for op in operations:
        for model in (op.query, op.body):
            if model is not None:
                wanted[model, "validation"] = None
        for kind, _ in op.answers.values():
            if not isinstance(kind, str):
                wanted[kind, "serialization"] = None
    refs, defs = models_json_schema(
        list(wanted), ref_template="#/components/schemas/{model}", schema_generator=_Schemas
    )
    schemas: dict[str, Schema] = defs.get("$defs", {})
    # A query model becomes parameters, not a schema of its own.
    queries = {
        model: schemas.pop(model.__name__)
        for model in {op.query for op in operations}
        if model is not None
    }
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = PATH_PARAMETER.sub(r"{\1}", op.path)
        query = queries[op.query] if op.query is not None else None
        guarded = op.path not in open_paths
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, query, refs, guarded)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mail2sms gateway emulator",
            "version": __version__,
            "description": description,
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer"},
                "adminTokenAsPassword": {"type": "http", "scheme": "basic"},
            },
        },
    }


def _operation(
    op: Operation, query: Schema | None, refs: Mapping[Any, Schema], guarded: bool
) -> Schema:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": _TYPES[converter]}}
        for name, converter in PATH_PARAMETER.findall(op.path)
    ]
    answers: dict[int, Answer] = {}
    if query is not None:
        required = query.get("required", [])
        for name, schema in query["properties"].items():
            parameter = {"name": name, "in": "query", "required": name in required}
            if "description" in schema:
                parameter["description"] = schema["description"]
            parameter["schema"] = {k: v for k, v in schema.items() if k != "description"}
            parameters.append(parameter)
        answers[400] = (Error, "a parameter is unknown, repeated or invalid (named in `field`)")
    found: Schema = {"summary": op.summary} | (
        {"description": op.description} if op.description else {}
    )
    if parameters:
        found["parameters"] = parameters
    if op.body is not None:
        body = refs[op.body, "validation"]
        found["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
        answers[400] = (Error, "a field is unknown or invalid (named in `field`)")
    if guarded:
        found["security"] = [{"adminToken": []}, {"adminTokenAsPassword": []}]
        answers[401] = (Error, "admin token missing or wrong (beyond loopback)")
        answers[421] = (Error, "the Host is not one of the gateway's names (http.allowed_hosts)")
    if op.method in WRITE_METHODS:
        answers[403] = (Error, "sent by a page of another origin (Origin)")
        answers[415] = (Error, "the body is not declared JSON (Content-Type: application/json)")
    answers.update(op.answers)
    found["responses"] = {
        str(status): {"description": about, "content": _content(kind, refs)}
        for status, (kind, about) in sorted(answers.items())
    }
    return found


def _content(kind: type[BaseModel] | str, refs: Mapping[Any, Schema]) -> Schema:
    if isinstance(kind, str):
        return {kind: {"schema": {"type": "string"}}}
    return {JSON: {"schema": refs[kind, "serialization"]}}

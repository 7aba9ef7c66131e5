"""The OpenAPI 3.1 description of the whole HTTP API, written by hand (served at /openapi.json)."""

from __future__ import annotations

from functools import cache
from typing import Any

from gateway import __version__

JSON = "application/json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _string(description: str = "", **extra: Any) -> Schema:
    return {"type": "string", **({"description": description} if description else {}), **extra}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def _list_of(item: str) -> Schema:
    return _object(
        {
            "items": {"type": "array", "items": _ref(item)},
            "total": {"type": "integer", "minimum": 0, "description": "all matches"},
        }
    )


def _json(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _query(name: str, description: str, schema: Schema | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


PAGING = [
    {"$ref": f"#/components/parameters/{p}"} for p in ("limit", "offset", "wait_for", "timeout")
]
WRITE: dict[str, Any] = {"security": [{"adminToken": []}]}


def _list_operation(summary: str, item: str, filters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "description": (
                "Newest first (by insertion). With `wait_for=N`, answers as soon as `total ≥ N`, "
                "or after `timeout` seconds with what there is (200 either way)."
            ),
            "parameters": [*filters, *PAGING],
            "responses": {
                "200": _json(_list_of(item), "the page and the count of all matches"),
                "400": _error("a parameter is unknown or invalid (named in `field`)"),
            },
        }
    }


ACCOUNT_FIELDS: dict[str, Schema] = {
    "keyid": _string("the account key (keyid in requests)", minLength=1),
    "login": _string(),
    "password": _string(),
    "company": _string("raison sociale"),
    "contact": _string(),
    "phone": _string(),
    "email": _string(),
    "domains": {
        "type": "array",
        "items": {"type": "string"},
        "description": "authorised sender domains (From: and envelope)",
    },
    "credit": {"type": "integer", "minimum": 0, "description": "in SMS parts"},
    "senders": {
        "type": "array",
        "items": {"type": "string"},
        "description": "approved sender ids (emetteur)",
    },
    "nostop_allowed": {"type": "boolean"},
    "quiet_hours_lifted": {"type": "boolean"},
    "international_allowed": {"type": "boolean"},
    "allowed_ips": {
        "type": "array",
        "items": {"type": "string"},
        "description": "addresses or networks; empty = any",
    },
    "blacklist": {"type": "array", "items": {"type": "string"}},
    "rate_limit": {"type": "integer", "minimum": 0, "description": "SMS parts/s, 0 = unlimited"},
}

SCHEMAS: dict[str, Schema] = {
    "Error": _object(
        {"error": _string("what is wrong"), "field": _string("the parameter or field at fault")},
        ["error"],
    ),
    "Sms": _object(
        {
            "id": {"type": "integer"},
            "to": _string("the recipient, normalised (0XXXXXXXXX)"),
            "sender": _string("the sender id shown on the phone"),
            "text": _string("as delivered, STOP mention included (after CR LF)"),
            "parts": {"type": "integer", "minimum": 1},
            "encoding": {"type": "string", "enum": ["gsm7", "ucs2"]},
            "tracker": _string(),
            "account": _string("keyid"),
            "email_id": _nullable(_string()),
            "created_at": _string("the gateway's clock", format="date-time"),
        }
    ),
    "Result": _object(
        {
            "tel": _string("the number as the client wrote it"),
            "code": {"type": "integer", "description": "0 = sent, else the annex's code"},
            "message": _string("the annex's message"),
        }
    ),
    "Email": _object(
        {
            "id": {"type": "integer"},
            "status": {
                "type": "string",
                "enum": ["processed", "duplicate", "refused", "not_processed"],
            },
            "reason": _string("why it was refused or not processed"),
            "code": _nullable({"type": "integer"}),
            "email_id": _nullable(_string()),
            "account": _nullable(_string("keyid, as given")),
            "sender": _string("From: address"),
            "envelope_from": _string(),
            "client_ip": _string(),
            "subject": _string(),
            "message_id": _string(),
            "received_at": _string(format="date-time"),
            "results": {"type": "array", "items": _ref("Result")},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "raw_url": _string("the message as received", format="uri"),
        }
    ),
    "Reply": _object(
        {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["ack", "not"]},
            "to": _string("emailAck or emailNot address"),
            "email_id": _nullable(_string()),
            "body": _string("the XML (sent encoded ISO-8859-1)"),
            "state": {"type": "string", "enum": ["pending", "delivered", "kept", "failed"]},
            "attempts": {"type": "integer"},
            "last_error": _string(),
            "created_at": _string(format="date-time"),
            "next_attempt_at": _nullable(_string(format="date-time")),
            "delivered_at": _nullable(_string(format="date-time")),
        }
    ),
    "AccountFields": {
        "type": "object",
        "properties": ACCOUNT_FIELDS,
        "additionalProperties": False,
        "description": "the keys of [[accounts]] in the configuration",
    },
    "Account": {
        **_object({**ACCOUNT_FIELDS, "created_at": _string(format="date-time")}),
    },
    "Clock": _object(
        {
            "now": _string("the gateway's current instant", format="date-time"),
            "frozen": {"type": "boolean"},
        }
    ),
    "ClockFreeze": {
        **_object(
            {
                "now": _string(
                    "ISO 8601 with offset",
                    format="date-time",
                    examples=["2026-11-29T21:00:00+01:00"],
                )
            }
        ),
        "additionalProperties": False,
    },
    "FaultRequest": {
        **_object(
            {
                "code": {"type": "integer", "description": "an annex code other than 0"},
                "count": {"type": "integer", "minimum": 1, "default": 1},
                "number": _nullable(_string("only this number")),
                "keyid": _nullable(_string("only this account")),
            },
            ["code"],
        ),
        "additionalProperties": False,
    },
    "Fault": _object(
        {
            "id": {"type": "integer"},
            "code": {"type": "integer"},
            "remaining": {"type": "integer", "description": "recipients it will still hit"},
            "number": _nullable(_string()),
            "keyid": _nullable(_string()),
            "created_at": _string(format="date-time"),
        }
    ),
    "Deleted": _object({"deleted": {"type": "integer"}}),
    "Reset": _object(
        {
            "deleted": _object(
                {name: {"type": "integer"} for name in ("sms", "replies", "email_ids", "emails")}
            )
        }
    ),
    "Health": _object(
        {"status": {"type": "string", "enum": ["ok", "error"]}, "error": _string()}, ["status"]
    ),
    "Info": _object(
        {
            "version": _string(),
            "gateway_addresses": {"type": "array", "items": {"type": "string"}},
            "stop_text": _string("the STOP mention appended for custom senders"),
            "clock": _ref("Clock"),
        }
    ),
}

PARAMETERS: dict[str, Schema] = {
    "limit": _query(
        "limit", "page size", {"type": "integer", "minimum": 0, "maximum": 1000, "default": 100}
    ),
    "offset": _query("offset", "matches to skip", {"type": "integer", "minimum": 0, "default": 0}),
    "wait_for": _query(
        "wait_for", "wait until at least this many match", {"type": "integer", "minimum": 0}
    ),
    "timeout": _query(
        "timeout",
        "longest wait, in seconds (with wait_for)",
        {"type": "number", "minimum": 0, "maximum": 30, "default": 5},
    ),
}

KEYID = {"name": "keyid", "in": "path", "required": True, "schema": {"type": "string"}}
ACCOUNT_404 = _error("no such account")


def _paths() -> dict[str, Any]:
    return {
        "/": {
            "get": {
                "summary": "The live web page",
                "responses": {
                    "200": {
                        "description": "HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness, with a database round trip",
                "responses": {
                    "200": _json(_ref("Health"), "the database answers"),
                    "503": _json(_ref("Health"), "the database does not answer"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "text exposition format 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        },
        "/api/v1/info": {
            "get": {
                "summary": "Gateway addresses, STOP text, clock",
                "responses": {"200": _json(_ref("Info"), "about this gateway")},
            }
        },
        "/api/v1/sms": _list_operation(
            "Sent SMS",
            "Sms",
            [
                _query("to", "recipient number (normalised before matching)"),
                _query("account", "account keyid"),
                _query("tracker", "the client's tracker"),
                _query("email_id", "emailId of the request"),
            ],
        ),
        "/api/v1/emails": _list_operation(
            "Inbound emails",
            "Email",
            [
                _query(
                    "status",
                    "outcome",
                    {
                        "type": "string",
                        "enum": ["processed", "duplicate", "refused", "not_processed"],
                    },
                ),
                _query("email_id", "emailId of the request"),
                _query("account", "account keyid"),
            ],
        ),
        "/api/v1/emails/{id}/raw": {
            "get": {
                "summary": "An inbound email as received",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {
                    "200": {
                        "description": "the message",
                        "content": {"message/rfc822": {"schema": {"type": "string"}}},
                    },
                    "404": _error("no such email"),
                },
            }
        },
        "/api/v1/replies": _list_operation(
            "Ack and Not replies",
            "Reply",
            [
                _query("kind", "ack or not", {"type": "string", "enum": ["ack", "not"]}),
                _query("email_id", "emailId of the request"),
                _query("to", "reply address"),
            ],
        ),
        "/api/v1/accounts": {
            "get": {
                "summary": "All accounts",
                "responses": {"200": _json(_list_of("Account"), "newest first")},
            },
            "post": {
                "summary": "Create an account (login, password, keyid generated when absent)",
                **WRITE,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("AccountFields")}},
                },
                "responses": {
                    "201": _json(_ref("Account"), "created"),
                    "400": _error("a field is unknown or invalid"),
                    "401": _error("admin token missing or wrong"),
                    "409": _error("keyid or login already used"),
                },
            },
        },
        "/api/v1/accounts/{keyid}": {
            "get": {
                "summary": "One account",
                "parameters": [KEYID],
                "responses": {
                    "200": _json(_ref("Account"), "the account"),
                    "404": ACCOUNT_404,
                },
            },
            "patch": {
                "summary": "Change fields (credit, flags, blacklist, domains, senders, …)",
                **WRITE,
                "parameters": [KEYID],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("AccountFields")}},
                },
                "responses": {
                    "200": _json(_ref("Account"), "updated"),
                    "400": _error("a field is unknown or invalid"),
                    "401": _error("admin token missing or wrong"),
                    "404": ACCOUNT_404,
                    "409": _error("login already used"),
                },
            },
        },
        "/api/v1/clock": {
            "get": {
                "summary": "The gateway's clock",
                "responses": {"200": _json(_ref("Clock"), "now, and whether frozen")},
            },
            "put": {
                "summary": "Freeze the clock at an instant",
                **WRITE,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("ClockFreeze")}},
                },
                "responses": {
                    "200": _json(_ref("Clock"), "frozen"),
                    "400": _error("`now` is not an ISO 8601 instant with offset"),
                    "401": _error("admin token missing or wrong"),
                },
            },
            "delete": {
                "summary": "Back to real time",
                **WRITE,
                "responses": {
                    "200": _json(_ref("Clock"), "running"),
                    "401": _error("admin token missing or wrong"),
                },
            },
        },
        "/api/v1/faults": {
            "get": {
                "summary": "Active injected faults",
                "responses": {"200": _json(_list_of("Fault"), "newest first")},
            },
            "post": {
                "summary": "The next `count` recipients (of that number / account) get `code`",
                **WRITE,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("FaultRequest")}},
                },
                "responses": {
                    "201": _json(_ref("Fault"), "injected"),
                    "400": _error("a field is invalid"),
                    "401": _error("admin token missing or wrong"),
                },
            },
            "delete": {
                "summary": "Remove every fault",
                **WRITE,
                "responses": {
                    "200": _json(_ref("Deleted"), "removed"),
                    "401": _error("admin token missing or wrong"),
                },
            },
        },
        "/api/v1/messages": {
            "delete": {
                "summary": "Forget all SMS, emails, emailIds and replies",
                **WRITE,
                "responses": {
                    "200": _json(_ref("Reset"), "rows deleted per table"),
                    "401": _error("admin token missing or wrong"),
                },
            }
        },
        "/api/v1/events": {
            "get": {
                "summary": "Server-sent events: `change` with the topics' versions",
                "description": (
                    "`event: change` whose data is a JSON object of versions per topic (sms, "
                    "emails, replies, accounts), sent at once and on every change; a comment "
                    "every 15 s keeps the connection open."
                ),
                "responses": {
                    "200": {
                        "description": "an event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mail2sms gateway emulator",
            "version": __version__,
            "description": (
                "Inspection and control of an emulated iSendPro mail 2 SMS gateway. Writes need "
                "`Authorization: Bearer <http.admin_token>` when the server listens beyond "
                "loopback."
            ),
        },
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
    }

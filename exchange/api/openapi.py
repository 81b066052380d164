"""The OpenAPI 3 description of every route (served at ``/v1/openapi.json``).

A test walks the router and fails when a route is missing here, so the description
cannot fall behind the code.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from exchange import __version__
from exchange.api.auth import allow
from exchange.model import Role

_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON_OBJECT = {"type": "object", "additionalProperties": True}
_UUID = {"type": "string", "format": "uuid"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Bad request",
        401: "No valid credentials",
        403: "Role not allowed",
        404: "Not found",
        409: "Conflict",
        410: "Withdrawn",
        413: "Too large",
        422: "Rule broken",
        429: "Over a per-system or per-address limit; come back after Retry-After seconds",
        503: "Not ready",
    }
    return {
        str(status): {"description": reasons[status], **_json(_ERROR)}
        for status in (401, 403, 429, *statuses)
    }


def _operation(
    summary: str, ok: dict[str, Any], *errors: int, public: bool = False, **extra: Any
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {**ok, **({} if public else _errors(*errors))},
    }
    if public:
        operation["security"] = []
    operation.update(extra)
    return operation


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _binary(media_type: str) -> dict[str, Any]:
    return {"content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_LIST = {
    "200": {
        "description": "A page of items",
        **_json(
            {
                "type": "object",
                "properties": {"items": {"type": "array", "items": _JSON_OBJECT}},
                "required": ["items"],
            }
        ),
    }
}
_OBJECT = {"200": {"description": "OK", **_json(_JSON_OBJECT)}}
_EDXML_BODY = {"required": True, **_binary("application/xml")}
_AGENCY = {
    "type": "object",
    "required": ["organ_id", "name"],
    "properties": {
        "organ_id": {"type": "string", "pattern": r"^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$"},
        "name": {"type": "string", "minLength": 1},
        "parent": {"type": "string"},
        "system": {"type": "string"},
        "mode": {"type": "string", "enum": ["pull", "push", "upstream"]},
        "endpoint": {"type": "string"},
        "signature_policy": {"type": "string", "enum": ["required", "if-present", "record", "off"]},
        "active": {"type": "boolean"},
        "allow_sha1": {"type": "boolean"},
    },
}


def build_spec() -> dict[str, Any]:
    limit = _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Most items to return")
    return {
        "openapi": "3.0.3",
        "info": {"title": "exchange: the e-document interconnection axis", "version": __version__},
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message", "details"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "details": {"type": "array", "items": _JSON_OBJECT},
                            },
                        }
                    },
                }
            },
        },
        "paths": {
            "/healthz": {"get": _operation("The process is up", _OBJECT, public=True)},
            "/readyz": {
                "get": _operation(
                    "The database answers and is migrated",
                    {**_OBJECT, "503": {"description": "Not ready", **_json(_ERROR)}},
                    public=True,
                )
            },
            "/metrics": {
                "get": _operation(
                    "Prometheus metrics (auditor or admin)",
                    {
                        "200": {
                            "description": "Text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                )
            },
            "/v1/openapi.json": {"get": _operation("This description", _OBJECT)},
            "/v1/packages": {
                "post": _operation(
                    "Submit an edoc or status package",
                    {
                        "201": {"description": "Accepted", **_json(_JSON_OBJECT)},
                        "200": {
                            "description": "The identical package was accepted before",
                            **_json(_JSON_OBJECT),
                        },
                    },
                    400,
                    409,
                    413,
                    422,
                    requestBody=_EDXML_BODY,
                )
            },
            "/v1/inbox": {
                "get": _operation(
                    "Deliveries waiting for the caller's agencies",
                    _LIST,
                    404,
                    422,
                    parameters=[
                        _query("kind", {"type": "string", "enum": ["edoc", "status"]}, "Only this kind"),
                        _query("recipient", {"type": "string"}, "Only this one of the caller's agencies"),
                        limit,
                    ],
                )
            },
            "/v1/deliveries/{delivery_id}/package": {
                "get": _operation(
                    "The package for its recipient (original bytes plus the axis's TraceHeader)",
                    {"200": {"description": "The package", **_binary("application/xml")}},
                    404,
                    410,
                    parameters=[_path("delivery_id", _UUID)],
                )
            },
            "/v1/deliveries/{delivery_id}/ack": {
                "post": _operation(
                    "Acknowledge a pulled delivery",
                    _OBJECT,
                    400,
                    404,
                    409,
                    422,
                    parameters=[_path("delivery_id", _UUID)],
                    requestBody={
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "required": ["result"],
                                "properties": {
                                    "result": {"type": "string", "enum": ["done", "fail"]},
                                    "reason": {"type": "string"},
                                },
                            }
                        ),
                    },
                )
            },
            "/v1/messages/{message_id}": {
                "get": _operation(
                    "A message with each recipient's state",
                    _OBJECT,
                    404,
                    parameters=[_path("message_id", _UUID)],
                )
            },
            "/v1/messages/{message_id}/trace": {
                "get": _operation(
                    "Every event of a document in time order",
                    _OBJECT,
                    404,
                    parameters=[_path("message_id", _UUID)],
                )
            },
            "/v1/messages/{message_id}/evidence": {
                "get": _operation(
                    "An evidence bundle (zip) that verifies offline",
                    {"200": {"description": "The bundle", **_binary("application/zip")}},
                    404,
                    409,
                    parameters=[_path("message_id", _UUID)],
                )
            },
            "/v1/documents": {
                "get": _operation(
                    "Search documents",
                    {"200": {"description": "A page", **_json(_JSON_OBJECT)}},
                    422,
                    parameters=[
                        _query("document_id", {"type": "string"}, "DocumentId"),
                        _query("sender", {"type": "string"}, "Sender OrganId"),
                        _query("recipient", {"type": "string"}, "Recipient OrganId"),
                        _query("status", {"type": "string"}, "Delivery state or business status code"),
                        _query("since", {"type": "string", "format": "date-time"}, "Received at or after"),
                        _query("until", {"type": "string", "format": "date-time"}, "Received before"),
                        _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                        _query(
                            "overdue",
                            {"type": "boolean"},
                            "Only documents past their DueDate that a "
                            "recipient has neither completed (06) nor refused (02)",
                        ),
                        limit,
                    ],
                )
            },
            "/v1/agencies": {"get": _operation("The registry", _LIST)},
            "/v1/axis/certificate": {
                "get": _operation(
                    "The axis signing certificate",
                    {
                        "200": {
                            "description": "PEM",
                            "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
                        }
                    },
                )
            },
            "/v1/admin/agencies": {
                "get": _operation("The registry with every field", _LIST),
                "post": _operation(
                    "Register agencies (all or none)",
                    {"201": {"description": "Registered", **_json(_JSON_OBJECT)}},
                    400,
                    409,
                    422,
                    requestBody={
                        "required": True,
                        **_json({"oneOf": [_AGENCY, {"type": "array", "items": _AGENCY}]}),
                    },
                ),
            },
            "/v1/admin/systems": {
                "get": _operation("Registered callers", _LIST),
                "post": _operation(
                    "Register a caller; the answer holds its API key",
                    {"201": {"description": "Registered", **_json(_JSON_OBJECT)}},
                    400,
                    409,
                    422,
                    requestBody={
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "role": {"type": "string", "enum": [r.value for r in Role]},
                                    "organ_ids": {"type": "array", "items": {"type": "string"}},
                                },
                            }
                        ),
                    },
                ),
            },
            "/v1/admin/systems/{name}/rotate-key": {
                "post": _operation(
                    "Give a caller a new API key",
                    _OBJECT,
                    404,
                    parameters=[_path("name", {"type": "string"})],
                )
            },
            "/v1/admin/deliveries": {
                "get": _operation(
                    "Deliveries by state",
                    _LIST,
                    422,
                    parameters=[
                        _query(
                            "state",
                            {
                                "type": "string",
                                "enum": [
                                    "queued",
                                    "sending",
                                    "delivered",
                                    "acked",
                                    "retry_wait",
                                    "failed",
                                    "expired",
                                    "withdrawn",
                                ],
                            },
                            "Only this state",
                        ),
                        limit,
                    ],
                )
            },
            "/v1/admin/deliveries/requeue": {
                "post": _operation(
                    "Re-queue failed or expired deliveries",
                    _OBJECT,
                    400,
                    422,
                    requestBody={
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "required": ["delivery_ids"],
                                "properties": {
                                    "delivery_ids": {"type": "array", "minItems": 1, "items": _UUID}
                                },
                            }
                        ),
                    },
                )
            },
        },
    }


_SPEC = build_spec()


@allow(Role.SYSTEM, Role.AUDITOR, Role.ADMIN)
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(_SPEC)

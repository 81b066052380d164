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
from exchange.store.reports import COUNTS

_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON_OBJECT = {"type": "object", "additionalProperties": True}
_UUID = {"type": "string", "format": "uuid"}
_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": "string", "nullable": True}
_MOMENT = {"type": "string", "format": "date-time"}
_MAYBE_MOMENT = {"type": "string", "format": "date-time", "nullable": True}
_MAYBE_UUID = {"type": "string", "format": "uuid", "nullable": True}
_KIND = {"type": "string", "enum": ["edoc", "status"]}
_MODE = {"type": "string", "enum": ["pull", "push", "upstream"]}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_STATES = ["queued", "sending", "delivered", "acked", "retry_wait", "failed", "expired", "withdrawn"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _record(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """An object with these fields (more may be added later: clients must ignore unknown ones)."""
    return {"type": "object", "required": sorted(required), "properties": {**required, **optional}}


# What the answers hold; the visibility rules decide which deliveries, statuses and events appear.
SCHEMAS: dict[str, Any] = {
    "Delivery": _record(
        {
            "delivery_id": _UUID,
            "message_id": _UUID,
            "recipient": _TEXT,
            "mode": _MODE,
            "state": {"type": "string", "enum": _STATES},
            "attempts": {"type": "integer", "minimum": 0},
            "next_attempt_at": _MAYBE_MOMENT,
            "last_error": _MAYBE_TEXT,
            "created_at": _MOMENT,
            "downloaded_at": _MAYBE_MOMENT,
            "delivered_at": _MAYBE_MOMENT,
            "acked_at": _MAYBE_MOMENT,
            "business_status": _MAYBE_TEXT,
        }
    ),
    "Message": _record(
        {
            "message_id": _UUID,
            "kind": _KIND,
            "sender": _TEXT,
            "document_id": _TEXT,
            "business_type": {"type": "integer", "minimum": 0, "maximum": 3},
            "status_code": _MAYBE_TEXT,
            "code": _MAYBE_TEXT,
            "subject": _MAYBE_TEXT,
            "urgency": {"type": "integer"},
            "due_date": {"type": "string", "format": "date", "nullable": True},
            "sha256": _SHA256,
            "size_bytes": {"type": "integer", "minimum": 0},
            "signature": _JSON_OBJECT,
            "related_message_id": _MAYBE_UUID,
            "received_at": _MOMENT,
        }
    ),
    "StatusEntry": _record(
        {
            "code": _TEXT,
            "label": _MAYBE_TEXT,
            "description": _MAYBE_TEXT,
            "staff": _MAYBE_TEXT,
            "reported_at": _MAYBE_TEXT,
            "received_at": _MOMENT,
            "status_message_id": _UUID,
            "flag": _MAYBE_TEXT,
        }
    ),
    "Event": _record(
        {
            "id": {"type": "integer"},
            "at": _MOMENT,
            "actor": _TEXT,
            "action": _TEXT,
            "message_id": _MAYBE_UUID,
            "delivery_id": _MAYBE_UUID,
            "details": _JSON_OBJECT,
        }
    ),
    "Accepted": _record(
        {
            "message_id": _UUID,
            "kind": _KIND,
            "document_id": _TEXT,
            "sender": _TEXT,
            "received_at": _MOMENT,
            "sha256": _SHA256,
            "signature": _record({"verdict": _TEXT, "signer": _MAYBE_TEXT}, reason=_MAYBE_TEXT),
            "deliveries": {
                "type": "array",
                "items": _record(
                    {"delivery_id": _UUID, "recipient": _TEXT, "state": {"type": "string", "enum": _STATES}}
                ),
            },
            "receipt": _TEXT,
        }
    ),
    "InboxItem": _record(
        {
            "delivery_id": _UUID,
            "message_id": _UUID,
            "kind": _KIND,
            "sender": _TEXT,
            "recipient": _TEXT,
            "document_id": _TEXT,
            "subject": _MAYBE_TEXT,
            "status_code": _MAYBE_TEXT,
            "received_at": _MOMENT,
            "attempts": {"type": "integer", "minimum": 0},
            "downloaded": {"type": "boolean"},
        }
    ),
    "Agency": _record(
        {
            "organ_id": _TEXT,
            "name": _TEXT,
            "parent": _MAYBE_TEXT,
            "mode": _MODE,
            "active": {"type": "boolean"},
        }
    ),
}
_NULLABLE_STRING = {"type": "string", "nullable": True}
# One signature inside an attached PDF, as judged at receipt (exchange.trust.pdf_signatures).
_PDF_SIGNATURE = {
    "type": "object",
    "required": [
        "verdict",
        "kind",
        "signer",
        "organization",
        "organ_id",
        "signed_at",
        "covers_whole_document",
        "reason",
    ],
    "properties": {
        "verdict": {"type": "string", "enum": ["valid", "invalid", "untrusted", "unverifiable"]},
        "kind": {"type": "string", "enum": ["person", "organization"], "nullable": True},
        "signer": _NULLABLE_STRING,
        "organization": _NULLABLE_STRING,
        "organ_id": _NULLABLE_STRING,
        "signed_at": {"type": "string", "format": "date-time", "nullable": True},
        "signed_at_source": {"type": "string", "enum": ["timestamp", "signer"], "nullable": True},
        "covers_whole_document": {"type": "boolean"},
        "changes_after": {
            "type": "string",
            "enum": ["none", "timestamps", "signatures", "annotations", "other"],
            "nullable": True,
        },
        "reason": {"type": "string"},
    },
}
_ATTACHMENT = {
    "type": "object",
    "required": ["name", "content_type", "sha256", "official", "signatures"],
    "properties": {
        "name": {"type": "string"},
        "content_type": _NULLABLE_STRING,
        "sha256": {"type": "string"},
        "size": {"type": "integer"},
        "signable": {"type": "boolean", "description": "false: not a PDF, not signable here"},
        "official": {"type": "boolean"},
        "official_reason": {"type": "string"},
        "main": {"type": "boolean"},
        "signatures": {"type": "array", "items": _PDF_SIGNATURE},
    },
}
_VIEW_FIELDS = {
    "overdue": {"type": "boolean"},
    "attachments": {"type": "array", "items": _ATTACHMENT},
    "official_document": {"type": "object", "nullable": True, "additionalProperties": True},
}
SCHEMAS["MessageView"] = {
    "allOf": [
        _ref("Message"),
        _record(
            {
                **_VIEW_FIELDS,
                "deliveries": {
                    "type": "array",
                    "items": {"allOf": [_ref("Delivery"), _record({"business_status_label": _MAYBE_TEXT})]},
                },
            }
        ),
    ]
}
SCHEMAS["Trace"] = {
    "allOf": [
        _ref("Message"),
        _record(
            {
                **_VIEW_FIELDS,
                "deliveries": {
                    "type": "array",
                    "items": {
                        "allOf": [
                            _ref("Delivery"),
                            _record({"statuses": {"type": "array", "items": _ref("StatusEntry")}}),
                        ]
                    },
                },
                "events": {"type": "array", "items": _ref("Event")},
            }
        ),
    ]
}


def _items(schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    page = _record({"items": {"type": "array", "items": schema}}, **more)
    return {"200": {"description": "A page of items", **_json(page)}}


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
    # 503 database_unavailable (with Retry-After) can answer any route while PostgreSQL is away.
    return {
        str(status): {"description": reasons[status], **_json(_ERROR)}
        for status in (401, 403, 429, *statuses, 503)
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
        "pending": {"type": "boolean"},
        "foreign_document_ids": {"type": "boolean"},
        "attachment_signature_policy": {"type": "string", "enum": ["off", "record", "official-required"]},
    },
}


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_COUNT = {"type": "integer", "minimum": 0}
_HOURS = {"type": "number", "nullable": True}
_REPORT_ITEM = {
    "type": "object",
    "required": ["organ_id", "name", "sent", "received", "processed_on_time", "late", "overdue", "rejected"],
    "properties": {
        "organ_id": {"type": "string"},
        "name": {"type": "string"},
        **dict.fromkeys(COUNTS, _COUNT),
        "median_hours_to_complete": _HOURS,
        "p90_hours_to_complete": _HOURS,
    },
}
_REPORT = {
    "type": "object",
    "required": ["from", "to", "items"],
    "properties": {
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
        "items": {"type": "array", "items": _REPORT_ITEM},
    },
}
# What this description leaves out on purpose, and where those routes are described instead.
_LEFT_OUT = (
    "The native REST API of the axis. Routes left out here: the VXP facade (POST /sendEdoc, "
    "/getReceivedEdocList, ... and GET /downloadEdoc, also under /vxp/; HMAC-authenticated, "
    "described in docs/vxp.md and README section 'Systems built for the national axis'), the "
    "auditor pages under /ui/ (HTML for people, README section 'Evidence and oversight'), and the "
    "public progress page and open-data feed under /public/ (anonymous, only when "
    "[public] enabled = true; README section 'Public progress' and docs/reports.md)."
)


def build_spec() -> dict[str, Any]:
    limit = _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Most items to return")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "exchange: the e-document interconnection axis",
            "version": __version__,
            "description": _LEFT_OUT,
        },
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
                },
                **SCHEMAS,
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
                        "201": {"description": "Accepted", **_json(_ref("Accepted"))},
                        "200": {
                            "description": "The identical package was accepted before",
                            **_json(_ref("Accepted")),
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
                    _items(_ref("InboxItem")),
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
                    {
                        "200": {
                            "description": "The delivery after the acknowledgement",
                            **_json(_ref("Delivery")),
                        }
                    },
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
                    "A message with the deliveries the caller may see (a recipient: its own)",
                    {"200": {"description": "The message", **_json(_ref("MessageView"))}},
                    404,
                    parameters=[_path("message_id", _UUID)],
                )
            },
            "/v1/messages/{message_id}/trace": {
                "get": _operation(
                    "Every event of a document the caller may see, in time order",
                    {"200": {"description": "The trace", **_json(_ref("Trace"))}},
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
                    _items(_ref("Message"), next_cursor=_MAYBE_TEXT),
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
            "/v1/reports/agencies": {
                "get": _operation(
                    "Per-agency figures for documents accepted in a period (docs/reports.md defines them)",
                    {
                        "200": {
                            "description": "JSON items, or a CSV / XLSX file with Vietnamese headers",
                            "content": {
                                "application/json": {"schema": _REPORT},
                                "text/csv": {"schema": {"type": "string"}},
                                _XLSX: {"schema": {"type": "string", "format": "binary"}},
                            },
                        }
                    },
                    422,
                    parameters=[
                        {
                            **_query("from", {"type": "string", "format": "date"}, "First day (Vietnam)"),
                            "required": True,
                        },
                        {
                            **_query("to", {"type": "string", "format": "date"}, "Last day, included"),
                            "required": True,
                        },
                        _query("format", {"type": "string", "enum": ["json", "csv", "xlsx"]}, "Default json"),
                    ],
                )
            },
            "/v1/agencies": {"get": _operation("The registry", _items(_ref("Agency")))},
            "/v1/axis/certificate": {
                "get": _operation(
                    "The axis signing certificate",
                    {
                        "200": {
                            "description": "PEM: the axis certificate, then its receipt certificate",
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
            **{
                f"/v1/admin/systems/{{name}}/{action}": {
                    "post": _operation(
                        summary, _OBJECT, 404, 409, 422, parameters=[_path("name", {"type": "string"})]
                    )
                }
                for action, summary in (
                    ("rotate-secret", "Give a document system a new VXP secret (shown once)"),
                    ("disable", "Refuse every credential of a system; hold its agencies' deliveries"),
                    ("enable", "Accept a disabled system's credentials again; its held deliveries resume"),
                )
            },
            **{
                f"/v1/admin/agencies/{{organ_id}}/{action}": {
                    "post": _operation(
                        summary, _OBJECT, 404, parameters=[_path("organ_id", {"type": "string"})]
                    )
                }
                for action, summary in (
                    ("approve", "Let an agency registered through the VXP facade send and receive"),
                    ("disable", "Stop an agency sending and receiving; hold its queued deliveries"),
                    ("enable", "Let a disabled agency send and receive again; its held deliveries resume"),
                )
            },
            "/v1/admin/deliveries": {
                "get": _operation(
                    "Deliveries by state",
                    _items(_ref("Delivery")),
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

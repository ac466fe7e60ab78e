"""Our own OpenAPI description (``/api/v4/openapi.json``), made to say what the server does.

FastAPI's generated document is close but not true of this API in three ways, fixed here once:
every handler answers errors in Mattermost's shape (``id``, ``message``, ``detailed_error``,
``request_id``, ``status_code``) with whatever status fits, never FastAPI's 422; and an ``…_id``
in the path is a 26-character id (``me`` too where Mattermost allows it), anything else a 400.
Schemathesis checks the server against this document in the test suite.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tidings.api.common import ME_ALLOWED

ID_PATTERN = "^[A-Za-z0-9]{26}$"
ID_OR_ME_PATTERN = "^([A-Za-z0-9]{26}|me)$"

APP_ERROR_SCHEMA: dict[str, Any] = {
    "title": "AppError",
    "description": "Mattermost's error body; ``detailed_error`` is empty unless developer mode.",
    "type": "object",
    "required": ["id", "message", "detailed_error", "request_id", "status_code"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "message": {"type": "string"},
        "detailed_error": {"type": "string"},
        "request_id": {"type": "string"},
        "status_code": {"type": "integer", "minimum": 400, "maximum": 599},
    },
}
ERROR_RESPONSE: dict[str, Any] = {
    "description": "A Mattermost error (400, 401, 403, 404, 405, 413, 429, 501…)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AppError"}}},
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def describe(app: FastAPI) -> dict[str, Any]:
    """The document FastAPI generates, corrected as the module docstring says."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    for path_item in document.get("paths", {}).values():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            for parameter in operation.get("parameters", ()):
                name = parameter.get("name", "")
                if parameter.get("in") == "path" and name.endswith("_id"):
                    pattern = ID_OR_ME_PATTERN if name in ME_ALLOWED else ID_PATTERN
                    parameter["schema"] = {"type": "string", "pattern": pattern}
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["default"] = ERROR_RESPONSE
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["AppError"] = APP_ERROR_SCHEMA
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`describe`'s document, built once on first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Checks that a response is what a Mattermost client expects: the status and body its OpenAPI
description documents (``/work/shared/reference/mattermost-openapi-v4.yaml``), the exact
``application/json`` Content-Type, and, for errors, the AppError JSON with the request id.

The description is OpenAPI 3.0, not plain JSON Schema: ``nullable`` becomes a ``"null"`` type
here, and ``$ref`` to ``#/components/...`` resolves against the whole document. Where the real
server and its clients overrule the description (the reference README lists the known cases),
the override is written down below with the reason.
"""

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path("/work/shared/reference/mattermost-openapi-v4.yaml")
BASE_URI = "urn:mattermost-openapi-v4"
PREFIX = "/api/v4"

# (method, path) documented as 201 whose real server answers 200; clients require 200.
ANSWERED_200 = frozenset({("post", "/users/login"), ("post", "/users/logout")})


def _openapi_to_json_schema(node: Any) -> Any:
    """A copy of ``node`` with OpenAPI's ``nullable: true`` turned into a ``"null"`` type."""
    if isinstance(node, list):
        return [_openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _openapi_to_json_schema(value) for key, value in node.items()}
    if converted.pop("nullable", False) is True:
        if "type" in converted:
            kind = converted["type"]
            converted["type"] = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


def _server_wins(document: dict[str, Any]) -> None:
    """Where clients depend on the real server's shape rather than the description."""
    schemas = document["components"]["schemas"]
    # Mattermost's User.Timezone is a string map: Go clients (mmctl, bots) cannot decode a
    # boolean there, and the web app accepts the strings "true"/"false".
    timezone = schemas["Timezone"]["properties"]
    timezone["useAutomaticTimezone"] = {"type": "string", "enum": ["true", "false"]}


@cache
def load_document() -> dict[str, Any]:
    with SPEC_PATH.open() as handle:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when available
        raw = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader
    document: dict[str, Any] = _openapi_to_json_schema(raw)
    _server_wins(document)
    return document


def _pointer_escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class Contract:
    """Validates responses against the operation the request matched in Mattermost's description."""

    def __init__(self) -> None:
        self.document = copy.deepcopy(load_document())
        self.registry: Registry[Any] = Registry().with_resource(
            BASE_URI, Resource.from_contents(self.document, default_specification=DRAFT4)
        )

    def schema_errors(self, pointer: str, data: Any) -> list[str]:
        """Validation errors of ``data`` against the schema at ``#pointer`` (``[]`` if valid)."""
        validator = Draft4Validator({"$ref": f"{BASE_URI}#{pointer}"}, registry=self.registry)
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in validator.iter_errors(data)
        ]

    def component(self, name: str, data: Any) -> None:
        """Assert ``data`` is a valid ``#/components/schemas/<name>``."""
        errors = self.schema_errors(f"/components/schemas/{_pointer_escape(name)}", data)
        assert not errors, f"{name}: {errors}"

    def operation_path(self, method: str, template: str) -> str:
        spec_path = PREFIX + template
        operation = self.document["paths"].get(spec_path, {}).get(method.lower())
        assert operation is not None, f"{method} {spec_path} is not in Mattermost's description"
        return f"/paths/{_pointer_escape(spec_path)}/{method.lower()}"

    def check(self, response: httpx.Response, template: str) -> Any:
        """Assert ``response`` matches the documented operation ``template`` (path under /api/v4,
        e.g. ``/users/{user_id}``) and return its JSON body."""
        method = response.request.method.lower()
        assert response.headers.get("content-type") == "application/json", response.headers
        body = response.json()
        if response.status_code >= 400:
            assert_app_error(response)
        op_pointer = self.operation_path(method, template)
        responses = self.document["paths"][PREFIX + template][method]["responses"]
        status = str(response.status_code)
        if status not in responses and (method, template) in ANSWERED_200 and status == "200":
            status = "201"
        if status not in responses:
            # 413 and 501 are undocumented on most operations; every error is still an AppError.
            assert response.status_code >= 400, (
                f"{response.status_code} is not documented for {method.upper()} {template}: "
                f"{sorted(responses)}"
            )
            self.component("AppError", body)
            return body
        documented = responses[status]
        pointer = f"{op_pointer}/responses/{status}"
        ref = documented.get("$ref")
        if ref:
            documented = self._resolve(ref)
            pointer = ref.removeprefix("#")
        if "application/json" in documented.get("content", {}):
            errors = self.schema_errors(f"{pointer}/content/application~1json/schema", body)
            assert not errors, f"{method.upper()} {template} {status}: {errors}"
        return body

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert isinstance(node, dict)
        return node


ID = re.compile(r"^[a-z0-9]{26}$")


def assert_app_error(
    response: httpx.Response, status: int | None = None, error_id: str | None = None
) -> dict[str, Any]:
    """Assert Mattermost's error JSON: id, message, detailed_error, the request id of the
    ``X-Request-ID`` header, and the status code; optionally the exact status and id."""
    if status is not None:
        assert response.status_code == status, f"{response.status_code} {response.text}"
    assert response.status_code >= 400
    assert response.headers.get("content-type") == "application/json", response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) >= {"id", "message", "detailed_error", "request_id", "status_code"}, body
    assert isinstance(body["id"], str)
    assert body["id"]
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["detailed_error"], str)
    assert body["status_code"] == response.status_code
    assert ID.match(response.headers["x-request-id"])
    assert body["request_id"] == response.headers["x-request-id"]
    if error_id is not None:
        assert body["id"] == error_id, body
    return body  # type: ignore[no-any-return]

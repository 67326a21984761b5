"""The proxy's OpenAPI 3.1 description, generated from the same pydantic models that validate
requests, so the document cannot drift from the code (schemathesis fuzzes the proxy from it)."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from openptc.proxy.wire import (
    CountTokensRequest,
    ErrorResponse,
    MessageResponse,
    MessagesRequest,
    ModelInfo,
    ModelList,
    TokenCount,
)

_MODELS = (
    MessagesRequest,
    CountTokensRequest,
    MessageResponse,
    TokenCount,
    ModelList,
    ModelInfo,
    ErrorResponse,
)
_ERRORS = {
    "400": "invalid request",
    "401": "missing or invalid API key",
    "404": "unknown model, container or route",
    "409": "the container changed concurrently",
    "413": "request body too large",
    "429": "too many containers for this key, or the backend is rate limited",
    "502": "the backend model failed",
}


def _ref(model: type) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


# With "stream": true the answer is server-sent events, each an event name and a JSON payload.
_SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}


def _responses(ok: type, *, streams: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": _ref(ok)}}
    if streams:
        content["text/event-stream"] = {"schema": _SSE_EVENT}
    responses: dict[str, Any] = {"200": {"description": "success", "content": content}}
    for status, text in _ERRORS.items():
        responses[status] = {
            "description": text,
            "content": {"application/json": {"schema": _ref(ErrorResponse)}},
        }
    return responses


_HEADERS = [
    {
        "name": "anthropic-version",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "enum": ["2023-06-01", "2026-10-21"]},
    },
    {"name": "anthropic-beta", "in": "header", "required": False, "schema": {"type": "string"}},
]


def openapi_document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}"
    )
    components = schemas.get("$defs", {})
    return {
        "openapi": "3.1.0",
        "info": {"title": "openptc proxy (Anthropic Messages API)", "version": "1"},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": {
            "/v1/messages": {
                "post": {
                    "operationId": "createMessage",
                    "parameters": _HEADERS,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(MessagesRequest)}},
                    },
                    "responses": _responses(MessageResponse, streams=True),
                }
            },
            "/v1/messages/count_tokens": {
                "post": {
                    "operationId": "countTokens",
                    "parameters": _HEADERS,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(CountTokensRequest)}},
                    },
                    "responses": _responses(TokenCount),
                }
            },
            "/v1/models": {
                "get": {"operationId": "listModels", "responses": _responses(ModelList)}
            },
            "/v1/models/{model_id}": {
                "get": {
                    "operationId": "getModel",
                    "parameters": [
                        {
                            "name": "model_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": _responses(ModelInfo),
                }
            },
        },
    }

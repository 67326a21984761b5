"""Reading a request before anything runs: its API key, ``anthropic-version``, and JSON body.

Each check fails with the ``ApiError`` (status and type) the Anthropic SDK expects, worded so the
client can fix the request: a missing or unknown key, an unsupported version or a field it
refuses, a body that is not JSON or too large, or one that does not match the request's model.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from openptc.proxy.config import ApiKey, ProxyConfig
from openptc.proxy.errors import ApiError, invalid

API_VERSIONS = ("2023-06-01", "2026-10-21")
SAMPLING_FIELDS = ("temperature", "top_p", "top_k")  # refused by 2026-10-21
M = TypeVar("M", bound=BaseModel)


def authenticate(request: Request, config: ProxyConfig) -> ApiKey:
    """The key presented in ``x-api-key`` or as a bearer token, if the config knows it."""
    presented = request.headers.get("x-api-key")
    if presented is None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" else None
    if not presented:
        raise ApiError(
            "authentication_error",
            "missing API key: send it in the x-api-key header or as 'Authorization: Bearer <key>'",
        )
    key = config.key_for(presented)
    if key is None:
        raise ApiError("authentication_error", "invalid x-api-key")
    return key


def api_version(request: Request) -> str:
    """The ``anthropic-version`` header, which must name a supported version."""
    version = request.headers.get("anthropic-version")
    if version is None:
        raise invalid("anthropic-version: header is required")
    if version not in API_VERSIONS:
        raise invalid(
            f"anthropic-version: '{version}' is not a supported version "
            f"(supported: {', '.join(API_VERSIONS)})"
        )
    return version


def refuse_sampling_fields(version: str, data: dict[str, Any]) -> None:
    """The 2026-10-21 version refuses the sampling fields the older one accepts."""
    if version == "2026-10-21":
        refused = [f for f in SAMPLING_FIELDS if f in data]
        if refused:
            raise invalid(f"{refused[0]}: not supported with anthropic-version 2026-10-21")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw JSON body, refused as soon as it passes ``limit`` bytes."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise invalid(f"content-type must be application/json (got '{content_type or 'none'}')")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError("request_too_large", f"request body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError("request_too_large", f"request body exceeds {limit} bytes")
    return bytes(body)


def decode_body(body: bytes) -> dict[str, Any]:
    """The body as a JSON object."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise invalid("the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise invalid("the request body must be a JSON object")
    return data


async def json_body(request: Request, limit: int) -> dict[str, Any]:
    return decode_body(await read_body(request, limit))


def parse(model: type[M], data: dict[str, Any]) -> M:
    """``data`` as ``model``; the first problem (and how many more) makes the error message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(_validation_message(exc)) from None


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    extra = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{extra}" if where else f"{first['msg']}{extra}"

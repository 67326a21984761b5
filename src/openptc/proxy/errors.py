"""API errors in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}}``.

Each error type has the HTTP status the official SDK maps to its exception classes, so a client
catches ``anthropic.BadRequestError``, ``NotFoundError``... exactly as against the real service.
"""

from __future__ import annotations

from typing import Literal

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "conflict_error",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
]

STATUS: dict[ErrorType, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class ApiError(Exception):
    """Raised anywhere in the proxy; the app turns it into the error response."""

    def __init__(
        self,
        type_: ErrorType,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message
        self.status = status if status is not None else STATUS[type_]
        self.headers = dict(headers or {})  # e.g. retry-after on a 503

    def body(self, request_id: str | None) -> dict[str, object]:
        body: dict[str, object] = {
            "type": "error",
            "error": {"type": self.type, "message": self.message},
        }
        if request_id is not None:
            body["request_id"] = request_id
        return body


def invalid(message: str) -> ApiError:
    return ApiError("invalid_request_error", message)


def not_found(message: str) -> ApiError:
    return ApiError("not_found_error", message)

"""Draining: what the proxy does between a SIGTERM and its exit.

While draining, new API requests are refused with a retryable 503 in the API's shape (a load
balancer or the SDK sends them again, to another replica), ``/readyz`` answers 503, and the
requests already in flight — a program running, a response still streaming — finish. The gate
is an ASGI middleware so that a streamed response counts until its last byte, not only until
its handler returned. ``serve.DrainingServer`` flips the switch and waits for ``in_flight``.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from openptc.proxy.containers import new_id
from openptc.proxy.errors import ApiError

# Set on a refusal while draining: a replica forwarding to this one serves the request itself.
DRAINING_HEADER = "x-openptc-draining"


@dataclass
class Drain:
    """Whether the proxy is draining, and how many HTTP requests are still in flight."""

    draining: bool = False
    in_flight: int = 0

    @property
    def busy(self) -> int:
        """Requests still in flight: what a drain waits for."""
        return self.in_flight


def draining_error() -> ApiError:
    return ApiError(
        "api_error",
        "this proxy is shutting down and takes no new requests; send the request again "
        "(another replica, or this proxy once restarted, will serve it)",
        status=503,
        headers={"retry-after": "1", "connection": "close", DRAINING_HEADER: "1"},
    )


class DrainGate:
    """Counts requests in flight; while draining, refuses new ``/v1/`` requests."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.drain.draining and str(scope.get("path", "")).startswith("/v1/"):
            error, request_id = draining_error(), new_id("req_")
            response = JSONResponse(
                error.body(request_id),
                status_code=error.status,
                headers={"request-id": request_id, **error.headers},
            )
            await response(scope, receive, send)
            return
        self.drain.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.in_flight -= 1

"""The HTTP route handlers: ``/v1/messages``, ``count_tokens``, ``/v1/models``, health, OpenAPI.

Every handler runs inside one guard that gives the request its id, logs it, and answers any
failure in Anthropic's error shape with the status the SDK expects; nothing a client sends can
disturb another request or container.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from openptc.logs import request_id_var
from openptc.models.base import ModelRequest
from openptc.models.resolve import split_base_url
from openptc.models.tokens import count_request_tokens
from openptc.proxy.config import ProxyConfig
from openptc.proxy.containers import ContainerManager, new_id
from openptc.proxy.drain import Drain
from openptc.proxy.errors import ApiError
from openptc.proxy.forwarding import FORWARDED_HEADER, Forwarder
from openptc.proxy.history import read_conversation
from openptc.proxy.openapi import openapi_document
from openptc.proxy.prompting import backend_tools
from openptc.proxy.request_parsing import (
    api_version,
    authenticate,
    decode_body,
    json_body,
    parse,
    read_body,
    refuse_sampling_fields,
)
from openptc.proxy.store_watch import WatchedStore
from openptc.proxy.tooling import read_tools
from openptc.proxy.turn_events import STARTED
from openptc.proxy.turn_responses import collect_message, opening, pump_events, stream_events
from openptc.proxy.turns import TurnRunner
from openptc.proxy.wire import (
    CountTokensRequest,
    MessagesRequest,
    ModelInfo,
    ModelList,
    TokenCount,
)
from openptc.sandbox.base import Sandbox

log = logging.getLogger("openptc.proxy")


@dataclass
class ProxyState:
    """What the routes share; built at startup, closed at shutdown."""

    config: ProxyConfig
    containers: ContainerManager
    runner: TurnRunner
    sandbox: Sandbox
    store: WatchedStore
    forwarder: Forwarder | None


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: a lone surrogate echoed from a request (in an error
    message, say) cannot be encoded as UTF-8 and would otherwise turn a 4xx into a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode()


def error_response(
    error: ApiError, request_id: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return AsciiJSONResponse(
        error.body(request_id),
        status_code=error.status,
        headers={"request-id": request_id, **(headers or {})},
    )


async def not_found_handler(request: Request, exc: Exception) -> Response:
    error = ApiError("not_found_error", f"no route for {request.method} {request.url.path}")
    return error_response(error, new_id("req_"))


async def method_not_allowed_handler(request: Request, exc: Exception) -> Response:
    error = ApiError(
        "invalid_request_error",
        f"{request.method} is not allowed on {request.url.path}",
        status=405,
    )
    return error_response(error, new_id("req_"))


_CREATED_AT = "2026-01-01T00:00:00Z"  # a proxy's names have no release date of their own


def model_infos(models: dict[str, str]) -> list[ModelInfo]:
    """What ``/v1/models`` lists: each configured name, and for ``"*"`` (which serves every
    name) its backend model under its own name, unless a configured name already reaches that
    backend. A client that picks its model from the list finds one that works either way."""
    infos = [
        ModelInfo(id=name, display_name=name, created_at=_CREATED_AT)
        for name in sorted(models)
        if name != "*"
    ]
    fallback = models.get("*")
    if fallback is not None and fallback not in {models[n] for n in models if n != "*"}:
        provider, _, rest = fallback.partition(":")
        backend, _ = split_base_url(rest)  # never show a URL: it may hold a password
        if backend and backend not in models:
            shown = f"{backend} (any model name is served by {provider}:{backend})"
            infos.append(ModelInfo(id=backend, display_name=shown, created_at=_CREATED_AT))
    return infos


class Api:
    """The route handlers, bound to one ``ProxyState``."""

    def __init__(self, state: Callable[[], ProxyState], drain: Drain) -> None:
        self._state = state
        self._drain = drain
        self._pumps: set[asyncio.Task[None]] = set()  # streaming turns in flight

    async def _guarded(
        self, request: Request, handler: Callable[[str], Awaitable[Response]]
    ) -> Response:
        request_id = new_id("req_")
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request_id)
            status = response.status_code
            response.headers["request-id"] = request_id
            return response
        except ApiError as exc:
            status = exc.status
            return error_response(exc, request_id, exc.headers)
        except Exception:
            log.exception("request failed")
            return error_response(ApiError("api_error", "internal error in the proxy"), request_id)
        finally:
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.url.path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)

    async def messages(self, request: Request) -> Response:
        async def handle(request_id: str) -> Response:
            config = self._state().config
            key = authenticate(request, config)
            version = api_version(request)
            raw = await read_body(request, config.max_body_bytes)
            data = decode_body(raw)
            refuse_sampling_fields(version, data)
            parsed = parse(MessagesRequest, data)
            forwarded = await self._forward(request, parsed, raw)
            if forwarded is not None:
                return forwarded
            events = self._state().runner.run(parsed, key)
            first = await anext(events)  # validation and the container happen before this
            assert first is STARTED
            message_id = new_id("msg_")
            if parsed.stream:
                queue: asyncio.Queue[object] = asyncio.Queue()
                pump = asyncio.create_task(pump_events(events, queue, request_id))
                self._pumps.add(pump)
                pump.add_done_callback(self._pumps.discard)
                try:
                    opened = await opening(queue)
                except asyncio.CancelledError:
                    pump.cancel()  # nobody will read the stream
                    raise
                return StreamingResponse(
                    stream_events(queue, pump, message_id, parsed.model, request_id, opened),
                    media_type="text/event-stream",
                    headers={"cache-control": "no-cache"},
                )
            return AsciiJSONResponse(await collect_message(events, message_id, parsed.model))

        return await self._guarded(request, handle)

    async def _forward(
        self, request: Request, parsed: MessagesRequest, raw: bytes
    ) -> Response | None:
        """Hand the request to the replica holding the container's live sandbox, if another."""
        state = self._state()
        container_id = parsed.container_id
        if state.forwarder is None or not container_id or FORWARDED_HEADER in request.headers:
            return None
        holder = await state.forwarder.holder(state.store, container_id)
        if holder is None:
            return None
        return await state.forwarder.forward(holder, "/v1/messages", raw, dict(request.headers))

    async def count_tokens(self, request: Request) -> Response:
        async def handle(request_id: str) -> Response:
            config = self._state().config
            authenticate(request, config)
            api_version(request)
            parsed = parse(CountTokensRequest, await json_body(request, config.max_body_bytes))
            config.model_string(parsed.model)
            tools = read_tools(list(parsed.tools or ()), parsed.tool_choice)
            conversation = read_conversation(parsed.messages)
            request_for_backend = ModelRequest(
                parsed.system_text(), tuple(conversation.messages), backend_tools(tools)
            )
            counted = count_request_tokens(request_for_backend)
            return AsciiJSONResponse(TokenCount(input_tokens=counted).model_dump())

        return await self._guarded(request, handle)

    def _model_infos(self) -> list[ModelInfo]:
        return model_infos(self._state().config.models)

    async def list_models(self, request: Request) -> Response:
        async def handle(request_id: str) -> Response:
            authenticate(request, self._state().config)
            infos = self._model_infos()
            page = ModelList(
                data=infos,
                first_id=infos[0].id if infos else None,
                last_id=infos[-1].id if infos else None,
            )
            return AsciiJSONResponse(page.model_dump(mode="json"))

        return await self._guarded(request, handle)

    async def get_model(self, request: Request) -> Response:
        async def handle(request_id: str) -> Response:
            authenticate(request, self._state().config)
            wanted = request.path_params["model_id"]
            found = next((m for m in self._model_infos() if m.id == wanted), None)
            if found is None:
                raise ApiError("not_found_error", f"model: {wanted}")
            return AsciiJSONResponse(found.model_dump(mode="json"))

        return await self._guarded(request, handle)

    async def health(self, request: Request) -> Response:
        state = self._state()
        return AsciiJSONResponse(
            {
                "status": "draining" if self._drain.draining else "ok",
                "containers": state.containers.live_count,
                "store": "ok" if state.store.reachable else "unreachable",
            }
        )

    async def ready(self, request: Request) -> Response:
        """Readiness for a load balancer: 503 once draining, so it sends new work elsewhere."""
        if self._drain.draining:
            return AsciiJSONResponse({"status": "draining"}, status_code=503)
        return AsciiJSONResponse({"status": "ready"})

    async def openapi(self, request: Request) -> Response:
        return AsciiJSONResponse(openapi_document())

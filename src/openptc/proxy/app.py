"""The HTTP surface: ``/v1/messages`` (plain and streaming), ``count_tokens``, ``/v1/models``.

Everything a client can get wrong is answered here in Anthropic's error shape with the status
the SDK expects; nothing a client sends can disturb another request or container.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openptc.logs import install_request_ids, request_id_var
from openptc.models.base import Model, ModelRequest
from openptc.models.resolve import model_from_string
from openptc.models.tokens import count_request_tokens
from openptc.proxy import sse
from openptc.proxy.config import ApiKey, ProxyConfig
from openptc.proxy.containers import ContainerManager, new_id
from openptc.proxy.errors import ApiError, invalid
from openptc.proxy.forwarding import FORWARDED_HEADER, Forwarder
from openptc.proxy.history import read_conversation
from openptc.proxy.openapi import openapi_document
from openptc.proxy.prompting import backend_tools
from openptc.proxy.store import MemoryStore, RecordStore
from openptc.proxy.tooling import read_tools
from openptc.proxy.turns import STARTED, TextDelta, TurnEnd, TurnEvent, TurnRunner
from openptc.proxy.wire import (
    CountTokensRequest,
    MessageResponse,
    MessagesRequest,
    ModelInfo,
    ModelList,
    ResponseBlock,
    TextContent,
    TokenCount,
)
from openptc.sandbox.base import Limits, Sandbox
from openptc.sandbox.local import LocalSandbox

log = logging.getLogger("openptc.proxy")

API_VERSIONS = ("2023-06-01", "2026-10-21")
SAMPLING_FIELDS = ("temperature", "top_p", "top_k")  # refused by 2026-10-21
PING_INTERVAL_S = 10.0
_END = object()  # the end of a streamed turn
M = TypeVar("M", bound=BaseModel)


@dataclass
class ProxyState:
    """What the routes share; built at startup, closed at shutdown."""

    config: ProxyConfig
    containers: ContainerManager
    runner: TurnRunner
    sandbox: Sandbox
    store: RecordStore
    forwarder: Forwarder | None


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: a lone surrogate echoed from a request (in an error
    message, say) cannot be encoded as UTF-8 and would otherwise turn a 4xx into a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode()


def _error_response(
    error: ApiError, request_id: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return AsciiJSONResponse(
        error.body(request_id),
        status_code=error.status,
        headers={"request-id": request_id, **(headers or {})},
    )


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    extra = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{extra}" if where else f"{first['msg']}{extra}"


class Api:
    """The route handlers, bound to one ``ProxyState``."""

    def __init__(self, state: Callable[[], ProxyState]) -> None:
        self._state = state
        self._pumps: set[asyncio.Task[None]] = set()  # streaming turns in flight

    # -- request plumbing -----------------------------------------------------------------------
    def _authenticate(self, request: Request) -> ApiKey:
        presented = request.headers.get("x-api-key")
        if presented is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            presented = token.strip() if scheme.lower() == "bearer" else None
        if not presented:
            raise ApiError(
                "authentication_error",
                "missing API key: send it in the x-api-key header or as "
                "'Authorization: Bearer <key>'",
            )
        key = self._state().config.key_for(presented)
        if key is None:
            raise ApiError("authentication_error", "invalid x-api-key")
        return key

    def _version(self, request: Request) -> str:
        version = request.headers.get("anthropic-version")
        if version is None:
            raise invalid("anthropic-version: header is required")
        if version not in API_VERSIONS:
            raise invalid(
                f"anthropic-version: '{version}' is not a supported version "
                f"(supported: {', '.join(API_VERSIONS)})"
            )
        return version

    async def _json_body(self, request: Request) -> dict[str, Any]:
        return self._decode(await self._read_body(request))

    @staticmethod
    def _decode(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid(f"the request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise invalid("the request body is nested too deeply") from None
        if not isinstance(data, dict):
            raise invalid("the request body must be a JSON object")
        return data

    async def _read_body(self, request: Request) -> bytes:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise invalid(f"content-type must be application/json (got '{content_type or 'none'}')")
        limit = self._state().config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError("request_too_large", f"request body exceeds {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError("request_too_large", f"request body exceeds {limit} bytes")
        return bytes(body)

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
            return _error_response(exc, request_id)
        except Exception:
            log.exception("request failed")
            return _error_response(ApiError("api_error", "internal error in the proxy"), request_id)
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

    @staticmethod
    def _parse(model: type[M], data: dict[str, Any]) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise invalid(_validation_message(exc)) from None

    # -- routes ---------------------------------------------------------------------------------
    async def messages(self, request: Request) -> Response:
        async def handle(request_id: str) -> Response:
            key = self._authenticate(request)
            version = self._version(request)
            raw = await self._read_body(request)
            data = self._decode(raw)
            if version == "2026-10-21":
                refused = [f for f in SAMPLING_FIELDS if f in data]
                if refused:
                    raise invalid(f"{refused[0]}: not supported with anthropic-version 2026-10-21")
            parsed = self._parse(MessagesRequest, data)
            forwarded = await self._forward(request, parsed, raw)
            if forwarded is not None:
                return forwarded
            events = self._state().runner.run(parsed, key)
            first = await anext(events)  # validation and the container happen before this
            assert first is STARTED
            message_id = new_id("msg_")
            if parsed.stream:
                queue: asyncio.Queue[object] = asyncio.Queue()
                pump = asyncio.create_task(self._pump(events, queue, request_id))
                self._pumps.add(pump)
                pump.add_done_callback(self._pumps.discard)
                return StreamingResponse(
                    self._stream(queue, pump, message_id, parsed.model, request_id),
                    media_type="text/event-stream",
                    headers={"cache-control": "no-cache"},
                )
            return AsciiJSONResponse(await self._collect(events, message_id, parsed.model))

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

    async def _collect(
        self, events: AsyncIterator[TurnEvent], message_id: str, model: str
    ) -> dict[str, Any]:
        blocks: list[ResponseBlock] = []
        end: TurnEnd | None = None
        async for event in events:
            if isinstance(event, TurnEnd):
                end = event
            elif isinstance(event, TextDelta):
                if blocks and isinstance(blocks[-1], TextContent):
                    blocks[-1] = TextContent(text=blocks[-1].text + event.text)
                else:
                    blocks.append(TextContent(text=event.text))
            elif event is not STARTED:
                blocks.append(event)  # type: ignore[arg-type]
        assert end is not None
        message = MessageResponse(
            id=message_id,
            model=model,
            content=blocks,
            stop_reason=end.stop_reason,
            usage=end.usage,
            container=end.container,
        )
        return message.model_dump(mode="json", exclude_none=False)

    async def _pump(
        self, events: AsyncIterator[TurnEvent], queue: asyncio.Queue[object], request_id: str
    ) -> None:
        """Run the turn to its end in its own task: a client that leaves (even before the first
        byte) cannot leave it suspended holding its container's lock."""
        token = request_id_var.set(request_id)
        try:
            async for event in events:
                queue.put_nowait(event)
            queue.put_nowait(_END)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            queue.put_nowait(exc)
        finally:
            request_id_var.reset(token)

    async def _stream(
        self,
        queue: asyncio.Queue[object],
        pump: asyncio.Task[None],
        message_id: str,
        model: str,
        request_id: str,
    ) -> AsyncIterator[bytes]:
        token = request_id_var.set(request_id)
        index = 0
        text_open = False  # a text block streaming from the backend, not yet closed
        try:
            yield sse.message_start(message_id, model)
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), PING_INTERVAL_S)
                except TimeoutError:
                    yield sse.ping()  # a long program: keep the connection alive
                    continue
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                event = item
                if isinstance(event, TextDelta):
                    if not text_open:
                        yield sse.text_start(index)
                        text_open = True
                    yield sse.text_delta(index, event.text)
                    continue
                if text_open:
                    yield sse.block_stop(index)
                    index, text_open = index + 1, False
                if isinstance(event, TurnEnd):
                    usage = event.usage.model_dump(mode="json", exclude_none=True)
                    container = event.container.model_dump(mode="json") if event.container else None
                    for chunk in sse.message_end(event.stop_reason, usage, container):
                        yield chunk
                elif event is not STARTED:
                    for chunk in sse.block_events(index, event):  # type: ignore[arg-type]
                        yield chunk
                    index += 1
        except ApiError as exc:
            yield sse.error(exc.body(request_id))
        except Exception:
            log.exception("streaming request failed")
            yield sse.error(ApiError("api_error", "internal error in the proxy").body(request_id))
        finally:
            if not pump.done():  # the client left mid-turn: stop the turn, let it clean up
                pump.cancel()
                await asyncio.shield(asyncio.gather(pump, return_exceptions=True))
            request_id_var.reset(token)

    async def count_tokens(self, request: Request) -> Response:
        async def handle(request_id: str) -> Response:
            self._authenticate(request)
            self._version(request)
            parsed = self._parse(CountTokensRequest, await self._json_body(request))
            self._state().config.model_string(parsed.model)
            tools = read_tools(list(parsed.tools or ()), parsed.tool_choice)
            conversation = read_conversation(parsed.messages)
            request_for_backend = ModelRequest(
                parsed.system_text(), tuple(conversation.messages), backend_tools(tools)
            )
            counted = count_request_tokens(request_for_backend)
            return AsciiJSONResponse(TokenCount(input_tokens=counted).model_dump())

        return await self._guarded(request, handle)

    def _model_infos(self) -> list[ModelInfo]:
        names = sorted(n for n in self._state().config.models if n != "*")
        return [ModelInfo(id=n, display_name=n, created_at="2026-01-01T00:00:00Z") for n in names]

    async def list_models(self, request: Request) -> Response:
        async def handle(request_id: str) -> Response:
            self._authenticate(request)
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
            self._authenticate(request)
            wanted = request.path_params["model_id"]
            found = next((m for m in self._model_infos() if m.id == wanted), None)
            if found is None:
                raise ApiError("not_found_error", f"model: {wanted}")
            return AsciiJSONResponse(found.model_dump(mode="json"))

        return await self._guarded(request, handle)

    async def health(self, request: Request) -> Response:
        state = self._state()
        return AsciiJSONResponse({"status": "ok", "containers": state.containers.live_count})

    async def openapi(self, request: Request) -> Response:
        return AsciiJSONResponse(openapi_document())


def _cached_models() -> Callable[[str], Model]:
    models: dict[str, Model] = {}

    def model_for(spec: str) -> Model:
        if spec not in models:
            models[spec] = model_from_string(spec)
        return models[spec]

    return model_for


def create_app(
    config: ProxyConfig,
    *,
    store: RecordStore | None = None,
    sandbox: Sandbox | None = None,
    model_for: Callable[[str], Model] | None = None,
) -> Starlette:
    """The proxy as an ASGI app. ``store``, ``sandbox`` and ``model_for`` default to what
    ``config`` says (memory or Redis, a local sandbox, model strings)."""
    holder: dict[str, ProxyState] = {}
    install_request_ids(log)

    def state() -> ProxyState:
        return holder["state"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        chosen_store = store or _store_from(config)
        limits = dataclasses.replace(config.sandbox_limits, timeout_s=config.program_timeout_s)
        chosen_sandbox = sandbox or _sandbox_from(config, limits)
        start = getattr(chosen_sandbox, "start", None)
        if start is not None:
            await start()  # probe isolation / reach the server, fill the pool, before requests
        containers = ContainerManager(config, chosen_store, chosen_sandbox)
        runner = TurnRunner(config, containers, model_for or _cached_models())
        forwarder = Forwarder(config.advertise_url) if config.advertise_url else None
        holder["state"] = ProxyState(
            config, containers, runner, chosen_sandbox, chosen_store, forwarder
        )
        containers.start()
        log.info("proxy started", extra={"models": sorted(config.models)})
        try:
            yield
        finally:
            await containers.aclose()
            if forwarder is not None:
                await forwarder.aclose()
            if sandbox is None:
                await chosen_sandbox.aclose()
            if store is None:
                await chosen_store.aclose()

    api = Api(state)
    routes = [
        Route("/v1/messages", api.messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", api.count_tokens, methods=["POST"]),
        Route("/v1/models", api.list_models, methods=["GET"]),
        Route("/v1/models/{model_id}", api.get_model, methods=["GET"]),
        Route("/health", api.health, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            404: _not_found_handler,
            405: _method_handler,
        },
    )


async def _not_found_handler(request: Request, exc: Exception) -> Response:
    error = ApiError("not_found_error", f"no route for {request.method} {request.url.path}")
    return _error_response(error, new_id("req_"))


async def _method_handler(request: Request, exc: Exception) -> Response:
    error = ApiError(
        "invalid_request_error",
        f"{request.method} is not allowed on {request.url.path}",
        status=405,
    )
    return _error_response(error, new_id("req_"))


def _sandbox_from(config: ProxyConfig, limits: Limits) -> Sandbox:
    if config.sandbox_url is None:
        return LocalSandbox(
            limits,
            pool_size=config.pool_size,
            idle_timeout_s=max(600.0, 2 * config.container_idle_s),
        )
    from openptc.sandbox.remote import RemoteSandbox

    assert config.sandbox_token is not None  # the config's validator requires it
    return RemoteSandbox(
        config.sandbox_url,
        config.sandbox_token.get_secret_value(),
        execution_timeout_s=config.program_timeout_s,
    )


def _store_from(config: ProxyConfig) -> RecordStore:
    if config.redis_url is None:
        return MemoryStore()
    from openptc.proxy.redis_store import RedisStore

    return RedisStore(config.redis_url)

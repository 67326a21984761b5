"""The proxy as an ASGI app: what it is built from, its startup and shutdown, its route table.

``create_app`` picks the record store (memory or Redis), the sandbox (local or remote) and the
backend models from the config unless given them, starts them before the first request and
closes what it opened at shutdown (the backend models included: each holds its connections).
The store is watched (``store_watch``: an outage is a 503, logged once) and the app gated
(``drain``: refused while draining). The handlers themselves are in ``routes``; ``/metrics``
(Prometheus, no API key: see ``metrics``) is served here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openptc.logs import install_request_ids
from openptc.models.base import Model, close_model
from openptc.models.resolve import model_from_string
from openptc.proxy.config import ProxyConfig
from openptc.proxy.containers import ContainerManager
from openptc.proxy.drain import Drain, DrainGate
from openptc.proxy.forwarding import Forwarder
from openptc.proxy.metrics import CONTENT_TYPE, ProxyMetrics, RequestMetrics
from openptc.proxy.routes import Api, ProxyState, method_not_allowed_handler, not_found_handler
from openptc.proxy.store import MemoryStore, RecordStore
from openptc.proxy.store_watch import WatchedStore
from openptc.proxy.turns import TurnRunner
from openptc.sandbox.base import Limits, Sandbox
from openptc.sandbox.choice import make_sandbox

log = logging.getLogger("openptc.proxy")


class BackendModels:
    """The backend model of each model string, made once on first use and closed at shutdown."""

    def __init__(self, make: Callable[[str], Model]) -> None:
        self._make = make
        self._models: dict[str, Model] = {}

    def __call__(self, spec: str) -> Model:
        if spec not in self._models:
            self._models[spec] = self._make(spec)
        return self._models[spec]

    async def aclose(self) -> None:
        """Close every model made (one serving several strings once); a failure is logged and
        the others are still closed."""
        models = list({id(m): m for m in self._models.values()}.values())
        self._models.clear()
        for model in models:
            try:
                await close_model(model)
            except Exception:
                log.exception("closing a backend model failed", extra={"model": model.name})


def create_app(
    config: ProxyConfig,
    *,
    store: RecordStore | None = None,
    sandbox: Sandbox | None = None,
    model_for: Callable[[str], Model] | None = None,
) -> Starlette:
    """The proxy as an ASGI app. ``store`` and ``sandbox`` default to what ``config`` says
    (memory or Redis, a local sandbox) and are closed at shutdown only then. ``model_for``
    makes the backend for a model string (by default from the string itself): it is called
    once per string, and the app closes what it returns at shutdown."""
    holder: dict[str, ProxyState] = {}
    drain = Drain()  # flipped by ``serve.DrainingServer`` on SIGTERM
    metrics = ProxyMetrics(config.models.values())
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
        watched = WatchedStore(chosen_store)
        await watched.check_at_startup()  # an outage, or a Redis that persists nothing: said now
        containers = ContainerManager(config, watched, chosen_sandbox, metrics)
        models = BackendModels(model_for or model_from_string)
        runner = TurnRunner(config, containers, models, metrics)
        forwarder = Forwarder(config.advertise_url) if config.advertise_url else None
        holder["state"] = ProxyState(config, containers, runner, chosen_sandbox, watched, forwarder)
        containers.start()
        log.info("proxy started", extra={"models": sorted(config.models)})
        try:
            yield
        finally:
            await containers.aclose()
            await models.aclose()
            if forwarder is not None:
                await forwarder.aclose()
            if sandbox is None:
                await chosen_sandbox.aclose()
            if store is None:
                await chosen_store.aclose()

    api = Api(state, drain)

    async def scrape(request: Request) -> Response:
        current = holder.get("state")
        containers = current.containers if current is not None else None
        exposition = metrics.render(containers, drain.in_flight)
        return Response(exposition, media_type=CONTENT_TYPE)

    routes = [
        Route("/v1/messages", api.messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", api.count_tokens, methods=["POST"]),
        Route("/v1/models", api.list_models, methods=["GET"]),
        Route("/v1/models/{model_id}", api.get_model, methods=["GET"]),
        Route("/health", api.health, methods=["GET"]),
        Route("/readyz", api.ready, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/metrics", scrape, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[  # outermost first: refusals while draining are counted too
            Middleware(RequestMetrics, metrics=metrics, routes=routes),
            Middleware(DrainGate, drain=drain),
        ],
        exception_handlers={
            404: not_found_handler,
            405: method_not_allowed_handler,
        },
    )
    app.state.drain = drain
    return app


def _sandbox_from(config: ProxyConfig, limits: Limits) -> Sandbox:
    token = config.sandbox_token.get_secret_value() if config.sandbox_token else None
    return make_sandbox(
        "local",
        limits,  # its wall clock is the program timeout
        pool_size=config.pool_size,
        idle_timeout_s=max(600.0, 2 * config.container_idle_s),
        url=config.sandbox_url,
        token=token,
    )


def _store_from(config: ProxyConfig) -> RecordStore:
    if config.redis_url is None:
        return MemoryStore()
    from openptc.proxy.redis_store import RedisStore

    return RedisStore(config.redis_url)

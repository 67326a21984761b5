"""Prometheus metrics of one proxy, in its own registry (no process-global state).

``GET /metrics`` answers without an API key, like the sandbox server's and like ``/health``:
scrapers hold no client key, and what it shows is counts only. Every label has a bounded set
of values an operator chose or the code fixed: route templates (not paths), status codes, the
configured backend model strings (without their base URL), outcome kinds. Nothing a client
sends (requested model names, container ids, keys) becomes a label. A proxy facing the
internet keeps ``/metrics`` off the public side (block the path at the load balancer).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openptc.models.resolve import split_base_url

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def backend_label(spec: str) -> str:
    """A configured model string as a label: ``"vllm:qwen3@http://10.0.0.5:8000/v1"`` ->
    ``"vllm:qwen3"`` (an address may hold credentials, and says nothing about the model)."""
    prefix, sep, rest = spec.partition(":")
    return f"{prefix}{sep}{split_base_url(rest)[0]}" if sep else spec


class ContainerCounts(Protocol):
    """What the container gauges are read from at scrape time."""

    @property
    def live_count(self) -> int: ...

    @property
    def sessions_held(self) -> int: ...

    @property
    def paused_count(self) -> int: ...


class ProxyMetrics:
    """Requests, backend model calls and tokens, programs and tool calls, containers."""

    def __init__(self, backends: Iterable[str] = ()) -> None:
        """``backends``: the configured model strings, shown at zero until first used."""
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "ptc_proxy_requests",
            "HTTP requests, by route template and status.",
            ["route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "ptc_proxy_request_seconds",
            "Request latency to the last byte (a streamed response until it ends).",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "ptc_proxy_requests_in_flight",
            "HTTP requests in flight, this scrape included.",
            registry=r,
        )
        self.model_calls = Counter(
            "ptc_proxy_model_calls",
            "Backend model calls, by backend and outcome (ok, error).",
            ["backend", "outcome"],
            registry=r,
        )
        self.model_call_seconds = Histogram(
            "ptc_proxy_model_call_seconds",
            "Backend model call latency, by backend.",
            ["backend"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "ptc_proxy_tokens",
            "Backend tokens, by backend and kind (input is fresh input: cache reads and writes "
            "are apart; reasoning is part of output), as reported in the responses' usage.",
            ["backend", "kind"],
            registry=r,
        )
        self.programs_started = Counter(
            "ptc_proxy_programs_started",
            "Programs the backends wrote and the proxy ran.",
            registry=r,
        )
        self.programs_finished = Counter(
            "ptc_proxy_programs_finished",
            "Programs that ended, by outcome: ok, the error kind (exception, timeout, memory, "
            "...), or why they could not go on (diverged, failed, stopped).",
            ["outcome"],
            registry=r,
        )
        self.program_pauses = Counter(
            "ptc_proxy_program_pauses",
            "Times a program paused to wait on client tools.",
            registry=r,
        )
        self.tool_calls = Counter(
            "ptc_proxy_tool_calls",
            "Client tool calls the proxy asked for, by caller (program, direct).",
            ["caller"],
            registry=r,
        )
        self.containers_created = Counter(
            "ptc_proxy_containers_created", "Containers created.", registry=r
        )
        self.containers_restored = Counter(
            "ptc_proxy_containers_restored",
            "Containers this replica rebuilt from their record (after a restart, or a request "
            "that another replica served before).",
            registry=r,
        )
        self.containers_live = Gauge(
            "ptc_proxy_containers_live", "Containers this replica holds.", registry=r
        )
        self.sessions_held = Gauge(
            "ptc_proxy_sandbox_sessions", "Sandbox sessions containers hold now.", registry=r
        )
        self.programs_paused = Gauge(
            "ptc_proxy_programs_paused", "Programs waiting on client tool results.", registry=r
        )
        for backend in {backend_label(b) for b in backends}:  # at zero from the start
            for outcome in ("ok", "error"):
                self.model_calls.labels(backend=backend, outcome=outcome)
            for kind in TOKEN_KINDS:
                self.tokens.labels(backend=backend, kind=kind)

    def model_call(
        self,
        backend: str,
        before: Mapping[str, int],
        after: Mapping[str, int],
        seconds: float,
    ) -> None:
        """One backend call that answered; its tokens are what it added to the turn's tally
        (``TokenTally.counts()`` before and after), so the metrics bill what the client is
        billed, the tokenizer's counts included when a backend reports no usage."""
        label = backend_label(backend)
        self.model_calls.labels(backend=label, outcome="ok").inc()
        self.model_call_seconds.labels(backend=label).observe(seconds)
        for kind in TOKEN_KINDS:
            added = after.get(kind, 0) - before.get(kind, 0)
            self.tokens.labels(backend=label, kind=kind).inc(max(added, 0))

    def model_call_failed(self, backend: str) -> None:
        self.model_calls.labels(backend=backend_label(backend), outcome="error").inc()

    def render(self, containers: ContainerCounts | None, in_flight: int) -> bytes:
        """The exposition, with the gauges read now."""
        if containers is not None:
            self.containers_live.set(containers.live_count)
            self.sessions_held.set(containers.sessions_held)
            self.programs_paused.set(containers.paused_count)
        self.in_flight.set(in_flight)
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware counting every HTTP request by route template and status, timed to its
    last byte; outermost, so refusals while draining count too."""

    def __init__(self, app: ASGIApp, metrics: ProxyMetrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    def _route(self, scope: Scope) -> str:
        for route in self.routes:
            matched, _ = route.matches(scope)
            if matched is not Match.NONE:
                return str(getattr(route, "path", UNMATCHED))
        return UNMATCHED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._route(scope)
        status = 500  # unless a response starts
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(route=route, status=str(status)).inc()
            self.metrics.request_seconds.labels(route=route).observe(time.perf_counter() - started)

"""Prometheus metrics of one server, in its own registry (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from openptc.sandbox.base import Execution

KILL_KINDS = ("timeout", "memory", "cpu", "crashed")


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sessions_active = Gauge(
            "ptc_sandbox_sessions_active", "Sessions open now.", registry=self.registry
        )
        self.sessions_total = Counter(
            "ptc_sandbox_sessions", "Sessions opened.", registry=self.registry
        )
        self.executions_total = Counter(
            "ptc_sandbox_executions",
            "Executions, by how they ended (ok, or the error kind).",
            ["outcome"],
            registry=self.registry,
        )
        self.execution_seconds = Histogram(
            "ptc_sandbox_execution_seconds",
            "Wall time of executions, tool calls included.",
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.tool_calls_total = Counter(
            "ptc_sandbox_tool_calls", "Tool calls relayed to orchestrators.", registry=self.registry
        )
        self.kills_total = Counter(
            "ptc_sandbox_kills",
            "Sandboxes killed, by reason (timeout, memory, cpu, crashed).",
            ["reason"],
            registry=self.registry,
        )

    def observe(self, execution: Execution) -> None:
        kind = execution.error.kind if execution.error is not None else "ok"
        self.executions_total.labels(outcome=kind).inc()
        self.execution_seconds.observe(execution.duration_ms / 1000)
        self.tool_calls_total.inc(len(execution.tool_calls))
        if kind in KILL_KINDS:
            self.kills_total.labels(reason=kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

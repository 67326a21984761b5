"""The sequential phase of ``ptc bench proxy``: text-only requests one after another, the
proxy against the backend's ``generate()`` called in-process and against the bare HTTP endpoint
(and through the official SDK when it is installed), interleaved in rounds.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from openptc.bench.proxy_figures import Comparison, Progress
from openptc.bench.proxy_requests import CLIENT, keep_alive_client, sequential
from openptc.bench.proxy_server import CpuMeter, Server
from openptc.bench.proxy_workload import (
    API_KEY,
    MAX_TOKENS,
    PROMPT,
    TEXT_ANSWER,
    TEXT_BODY,
    TEXT_MODEL,
    check_text,
    in_process_request,
    text_backend,
)
from openptc.bench.sandbox_bench import percentile
from openptc.models.tokens import count_request_tokens, count_response_tokens

OVERHEAD_TARGET_MS = 2.0


async def _timed_us(action: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        await action()
        timings.append((time.perf_counter() - started) * 1e6)
    return timings


async def _sdk_timings(url: str, count: int) -> list[float]:
    """The same request through the official SDK (parsing into its types included)."""
    import anthropic

    timings = []
    async with anthropic.AsyncAnthropic(api_key=API_KEY, base_url=url, max_retries=0) as sdk:
        for _ in range(count):
            started = time.perf_counter()
            message = await sdk.messages.create(
                model=TEXT_MODEL,
                max_tokens=MAX_TOKENS,
                messages=[{"role": "user", "content": PROMPT}],
            )
            timings.append((time.perf_counter() - started) * 1000)
            if message.content[0].type != "text" or message.content[0].text != TEXT_ANSWER:
                raise RuntimeError(f"unexpected SDK response: {message}")
    return timings


def _sdk_available() -> bool:
    return importlib.util.find_spec("anthropic") is not None


async def request_latency(
    proxy_server: Server, bare_server: Server, requests: int, rounds: int, progress: Progress
) -> list[Comparison]:
    """Sequential text-only requests: proxy vs in-process ``generate()`` vs bare HTTP."""
    backend = text_backend()
    model_request = in_process_request()
    per_round = max(1, requests // rounds)
    warm_up = min(50, requests)
    ours: list[float] = []
    bare_ms: list[float] = []
    in_process_us: list[float] = []
    sdk_ms: list[float] = []
    with_sdk = _sdk_available()
    proxy, bare = proxy_server.url, bare_server.url
    async with keep_alive_client() as proxy_client, keep_alive_client() as bare_client:
        await sequential(proxy_client, proxy, TEXT_BODY, warm_up, check_text)
        await sequential(bare_client, bare, TEXT_BODY, warm_up, check_text)
        await _timed_us(lambda: backend.generate(model_request), warm_up)
        if with_sdk:
            await _sdk_timings(proxy, min(10, warm_up))
        proxy_cpu, bare_cpu = CpuMeter(proxy_server), CpuMeter(bare_server)
        for _ in range(rounds):  # interleaved: drift on a shared machine hits all alike
            ours += await sequential(proxy_client, proxy, TEXT_BODY, per_round, check_text)
            bare_ms += await sequential(bare_client, bare, TEXT_BODY, per_round, check_text)
            in_process_us += await _timed_us(lambda: backend.generate(model_request), per_round)
            if with_sdk:
                sdk_ms += await _sdk_timings(proxy, per_round)
    proxy_cpu_ms = proxy_cpu.per_request(len(ours) + len(sdk_ms))  # the SDK's reach it too
    bare_cpu_ms = bare_cpu.per_request(len(bare_ms))
    response = await backend.generate(model_request)
    counting_us = [
        _time_us(lambda: count_request_tokens(model_request) + count_response_tokens(response))
        for _ in range(per_round)
    ]
    p50, p95 = percentile(ours, 0.5), percentile(ours, 0.95)
    bare_p50, bare_p95 = percentile(bare_ms, 0.5), percentile(bare_ms, 0.95)
    in_process_p50 = percentile(in_process_us, 0.5) / 1000
    overhead = p50 - in_process_p50
    sdk_p50 = percentile(sdk_ms, 0.5) if sdk_ms else None
    progress(
        f"request p50 {p50:.2f} ms (p95 {p95:.2f}) vs in-process generate() "
        f"{in_process_p50 * 1000:.1f} us: overhead {overhead:.2f} ms"
    )
    progress(
        f"bare HTTP p50 {bare_p50:.2f} ms (p95 {bare_p95:.2f}): the proxy's own cost "
        f"{p50 - bare_p50:.2f} ms ({p50 / bare_p50:.2f}x)"
        + (f"; through the anthropic SDK p50 {sdk_p50:.2f} ms" if sdk_p50 is not None else "")
    )
    common = {
        "client": CLIENT,
        "requests": len(ours),
        "rounds": rounds,
        "warm_up": warm_up,
        "request_bytes": len(TEXT_BODY),
        "proxy_p50_ms": p50,
        "proxy_p95_ms": p95,
        "bare_http_p50_ms": bare_p50,
        "bare_http_p95_ms": bare_p95,
        "in_process_p50_us": in_process_p50 * 1000,
        "in_process_p95_us": percentile(in_process_us, 0.95),
        "overhead_ms": overhead,
        "own_cost_ms": p50 - bare_p50,
        "ratio_to_in_process": p50 / in_process_p50 if in_process_p50 else None,
        "ratio_to_bare_http": p50 / bare_p50,
        "sdk_p50_ms": sdk_p50,
        "sdk_p95_ms": percentile(sdk_ms, 0.95) if sdk_ms else None,
        "token_counting_p50_us": statistics.median(counting_us),
        "server_cpu_per_request_ms": {"proxy": proxy_cpu_ms, "bare_http": bare_cpu_ms},
    }
    return [
        Comparison(
            "overhead_vs_in_process_p50",
            p50,
            in_process_p50,
            "ms",
            "the scripted backend's generate() called in-process",
            f"overhead <= {OVERHEAD_TARGET_MS:g} ms",
            overhead <= OVERHEAD_TARGET_MS,
            common,
        ),
        Comparison(
            "own_cost_vs_bare_http_p50",
            p50,
            bare_p50,
            "ms",
            "bare Starlette endpoint, same uvicorn setup, same response bytes",
            details={"samples_proxy_ms": ours, "samples_bare_http_ms": bare_ms},
        ),
        Comparison(
            "own_cost_vs_bare_http_p95",
            p95,
            bare_p95,
            "ms",
            "bare Starlette endpoint, same uvicorn setup, same response bytes",
        ),
    ]


def _time_us(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1e6

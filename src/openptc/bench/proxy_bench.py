"""``ptc bench proxy``: what the Anthropic-compatible proxy adds to a request, and how it holds
up when many requests arrive at once.

The proxy runs as ``ptc serve`` runs it (``create_app`` under uvicorn on 127.0.0.1, JSON logs at
info level, uvicorn's default loop and HTTP parser) in a child process of its own, with scripted
backends that answer in microseconds, so the proxy is what gets measured. The client is this
process. Baselines come from the same run, interleaved with the proxy's rounds:

* the backend's ``generate()`` called in-process: the request without any proxy;
* a bare Starlette endpoint on the same uvicorn setup (its own child process) that reads the
  request and answers the bytes the proxy answered: the HTTP floor on this machine.

Overhead is proxy p50 - in-process p50; the proxy's own cost is proxy p50 - bare HTTP p50.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from openptc.bench.report import report_header
from openptc.bench.sandbox_bench import percentile
from openptc.models.base import (
    Message,
    ModelRequest,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from openptc.models.scripted import ScriptedModel, Turn
from openptc.models.tokens import count_request_tokens, count_response_tokens

if TYPE_CHECKING:
    from starlette.applications import Starlette

Progress = Callable[[str], None]

API_KEY = "sk-bench-proxy"
API_VERSION = "2023-06-01"
TEXT_MODEL = "bench-text"
PTC_MODEL = "bench-ptc"
PROMPT = "Say hello in one short sentence."
TEXT_ANSWER = "Hello! This answer comes from a scripted backend, so the proxy is what is measured."
PTC_PROGRAM = "print(1+1)"
PTC_ANSWER = "1 + 1 = 2."
MAX_TOKENS = 64
CODE_TOOL = {"type": "code_execution_20260120", "name": "code_execution"}
CLIENT = "httpx.AsyncClient: one persistent client per phase, HTTP/1.1 keep-alive"
LOG_LEVEL = "info"  # ``ptc serve``'s default: one JSON log line per request
KEEP_ALIVE_S = 30  # uvicorn's default is 5 s; longer, so no idle connection closes mid-phase
OVERHEAD_TARGET_MS = 2.0
PTC_GAP_S = 0.3  # between isolated PTC requests: the warm pool refills (REFILL_DELAY_S + a spawn)
SERVER_START_TIMEOUT_S = 60.0


def _request_body(model: str, tools: Sequence[dict[str, Any]] = ()) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    if tools:
        body["tools"] = list(tools)
    return json.dumps(body).encode()


TEXT_BODY = _request_body(TEXT_MODEL)
PTC_BODY = _request_body(PTC_MODEL, [CODE_TOOL])
HEADERS = {
    "x-api-key": API_KEY,
    "anthropic-version": API_VERSION,
    "content-type": "application/json",
}


# -- the backends -------------------------------------------------------------------------------
def text_backend() -> ScriptedModel:
    """Answers every request with the same short text; no tools."""
    return ScriptedModel(lambda _request: TEXT_ANSWER, name="scripted:bench-text", about="bench")


def _ptc_turn(request: ModelRequest) -> Turn:
    last = request.messages[-1] if request.messages else None
    if last is not None and any(isinstance(b, ToolResultBlock) for b in last.content):
        return PTC_ANSWER  # the program ran: answer from its output
    return [ToolUseBlock(id="toolu_bench_code", name="code_execution", input={"code": PTC_PROGRAM})]


def ptc_backend() -> ScriptedModel:
    """Writes ``print(1+1)`` for the code execution tool, then answers; stateless, so any number
    of requests can run it at once."""
    return ScriptedModel(_ptc_turn, name="scripted:bench-ptc", about="bench")


def in_process_request() -> ModelRequest:
    """The request the proxy hands the text backend for ``TEXT_BODY``."""
    return ModelRequest(
        system="", messages=(Message.user(PROMPT),), tools=(), max_tokens=MAX_TOKENS
    )


# -- the servers (child processes) ---------------------------------------------------------------
def proxy_app() -> Starlette:
    """The real proxy with the two scripted backends; the default store and sandbox."""
    from pydantic import SecretStr

    from openptc.proxy.app import create_app
    from openptc.proxy.config import ApiKey, ProxyConfig

    backends = {"scripted:bench-text": text_backend(), "scripted:bench-ptc": ptc_backend()}
    config = ProxyConfig(
        # Every PTC request makes a container; the default limit per key (32) is lower than
        # the number this benchmark makes.
        api_keys=(ApiKey(key=SecretStr(API_KEY), name="bench", max_containers=100_000),),
        models={TEXT_MODEL: "scripted:bench-text", PTC_MODEL: "scripted:bench-ptc"},
    )
    return create_app(config, model_for=backends.__getitem__)


def bare_app(body: bytes) -> Starlette:
    """The HTTP floor: read the request, answer fixed JSON bytes."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def messages(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status": "ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def serve_main(argv: Sequence[str]) -> None:
    """Child process: serve ``proxy`` or ``bare`` (response body on stdin) on a free loopback
    port, print the port, and run until SIGTERM."""
    import uvicorn

    kind = argv[0]
    if kind == "proxy":
        from openptc.proxy.logs import configure

        configure(LOG_LEVEL)  # as ``ptc serve`` does
        app = proxy_app()
    elif kind == "bare":
        app = bare_app(sys.stdin.buffer.read())
    else:
        raise SystemExit(f"unknown server kind {kind!r}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        app, log_level=LOG_LEVEL, access_log=False, timeout_keep_alive=KEEP_ALIVE_S
    )
    uvicorn.Server(config).run(sockets=[sock])


@contextlib.asynccontextmanager
async def served(kind: str, log_dir: Path, body: bytes = b"") -> AsyncIterator[str]:
    """Start a server child process; yield its base URL once ``/health`` answers; stop it."""
    log_path = log_dir / f"{kind}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "openptc.bench.proxy_bench",
            kind,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(body)
        process.stdin.close()
        line = await asyncio.wait_for(process.stdout.readline(), SERVER_START_TIMEOUT_S)
        if not line.strip().isdigit():
            await process.wait()
            raise RuntimeError(f"the {kind} server did not start:\n{log_path.read_text()}")
        url = f"http://127.0.0.1:{int(line)}"
        await _wait_healthy(url, process, kind, log_path)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()  # uvicorn shuts down gracefully: the proxy closes its sandboxes
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_healthy(
    url: str, process: asyncio.subprocess.Process, kind: str, log_path: Path
) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            if process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server is not healthy:\n{log_path.read_text()}")
            await asyncio.sleep(0.02)


def _client(connections: int = 1) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(headers=HEADERS, limits=limits, timeout=httpx.Timeout(120))


# -- one request ----------------------------------------------------------------------------------
Check = Callable[[dict[str, Any]], str | None]


def check_text(body: dict[str, Any]) -> str | None:
    """What is wrong with a text-only response, or None."""
    content = body.get("content") or [{}]
    if body.get("stop_reason") != "end_turn" or content[-1].get("text") != TEXT_ANSWER:
        return f"unexpected response: {json.dumps(body)[:300]}"
    return None


def check_ptc(body: dict[str, Any]) -> str | None:
    """What is wrong with a PTC response (the program must have printed 2), or None."""
    types = [b.get("type") for b in body.get("content", [])]
    expected = ["server_tool_use", "code_execution_tool_result", "text"]
    if body.get("stop_reason") != "end_turn" or types != expected:
        return f"unexpected response: {json.dumps(body)[:300]}"
    result = body["content"][1]["content"]
    if result.get("stdout") != "2\n" or result.get("return_code") != 0:
        return f"the program did not print 2: {json.dumps(result)[:300]}"
    if not (body.get("container") or {}).get("id"):
        return "no container in the response"
    return None


@dataclass(frozen=True)
class Outcome:
    ms: float
    error: str | None
    container: str | None = None


async def attempt(client: httpx.AsyncClient, url: str, body: bytes, check: Check) -> Outcome:
    """One ``POST /v1/messages``, timed; any failure becomes the outcome's error."""
    started = time.perf_counter()
    try:
        response = await client.post(f"{url}/v1/messages", content=body)
        ms = (time.perf_counter() - started) * 1000
    except httpx.HTTPError as exc:
        return Outcome((time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}")
    if response.status_code != 200:
        return Outcome(ms, f"HTTP {response.status_code}: {response.text[:300]}")
    try:
        data = response.json()
    except ValueError:
        return Outcome(ms, f"not JSON: {response.text[:300]}")
    container = (data.get("container") or {}).get("id")
    return Outcome(ms, check(data), container)


async def _sequential(
    client: httpx.AsyncClient, url: str, body: bytes, count: int, check: Check
) -> list[float]:
    timings = []
    for _ in range(count):
        outcome = await attempt(client, url, body, check)
        if outcome.error is not None:
            raise RuntimeError(f"{url}: {outcome.error}")
        timings.append(outcome.ms)
    return timings


# -- the figures ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """One figure: ours, the baseline from the same run, their difference and their ratio."""

    name: str
    ours: float
    baseline: float
    unit: str
    baseline_label: str
    target: str = ""
    met: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def difference(self) -> float:
        return self.ours - self.baseline

    @property
    def ratio(self) -> float | None:
        return self.ours / self.baseline if self.baseline else None

    def report(self) -> dict[str, Any]:
        return asdict(self) | {"difference": self.difference, "ratio": self.ratio}


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
    proxy: str, bare: str, requests: int, rounds: int, progress: Progress
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
    async with _client() as proxy_client, _client() as bare_client:
        await _sequential(proxy_client, proxy, TEXT_BODY, warm_up, check_text)
        await _sequential(bare_client, bare, TEXT_BODY, warm_up, check_text)
        await _timed_us(lambda: backend.generate(model_request), warm_up)
        if with_sdk:
            await _sdk_timings(proxy, min(10, warm_up))
        for _ in range(rounds):  # interleaved: drift on a shared machine hits all alike
            ours += await _sequential(proxy_client, proxy, TEXT_BODY, per_round, check_text)
            bare_ms += await _sequential(bare_client, bare, TEXT_BODY, per_round, check_text)
            in_process_us += await _timed_us(lambda: backend.generate(model_request), per_round)
            if with_sdk:
                sdk_ms += await _sdk_timings(proxy, per_round)
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


@dataclass(frozen=True)
class Burst:
    """``count`` requests fired at once."""

    wall_ms: float
    outcomes: list[Outcome]

    @property
    def errors(self) -> list[str]:
        return [o.error for o in self.outcomes if o.error is not None]

    @property
    def timings(self) -> list[float]:
        return [o.ms for o in self.outcomes]


async def burst(
    client: httpx.AsyncClient, url: str, body: bytes, count: int, check: Check
) -> Burst:
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(attempt(client, url, body, check) for _ in range(count)))
    return Burst((time.perf_counter() - started) * 1000, list(outcomes))


def _burst_summary(bursts: Sequence[Burst], count: int) -> dict[str, Any]:
    timings = [t for b in bursts for t in b.timings]
    walls = [b.wall_ms for b in bursts]
    wall = statistics.median(walls)
    errors = [e for b in bursts for e in b.errors]
    return {
        "wall_ms": wall,
        "walls_ms": walls,
        "throughput_per_s": count / wall * 1000,
        "p50_ms": percentile(timings, 0.5),
        "p95_ms": percentile(timings, 0.95),
        "max_ms": max(timings),
        "errors": len(errors),
        "error_samples": errors[:5],
    }


async def concurrent_text(
    proxy: str, bare: str, count: int, bursts: int, progress: Progress
) -> Comparison:
    """``count`` text-only requests at once, ``bursts`` times, proxy and bare interleaved.

    The first burst of each opens the connections; it is reported apart and its errors count.
    """
    ours: list[Burst] = []
    floor: list[Burst] = []
    async with _client(count + 8) as proxy_client, _client(count + 8) as bare_client:
        first_proxy = await burst(proxy_client, proxy, TEXT_BODY, count, check_text)
        first_bare = await burst(bare_client, bare, TEXT_BODY, count, check_text)
        for _ in range(bursts):
            ours.append(await burst(proxy_client, proxy, TEXT_BODY, count, check_text))
            floor.append(await burst(bare_client, bare, TEXT_BODY, count, check_text))
    mine, base = _burst_summary(ours, count), _burst_summary(floor, count)
    errors = mine["errors"] + len(first_proxy.errors)
    progress(
        f"{count} concurrent text requests: {mine['wall_ms']:.0f} ms wall, "
        f"{mine['throughput_per_s']:.0f} req/s, {errors} errors "
        f"(bare HTTP {base['wall_ms']:.0f} ms, {base['throughput_per_s']:.0f} req/s)"
    )
    return Comparison(
        f"concurrent_{count}_text_wall",
        mine["wall_ms"],
        base["wall_ms"],
        "ms",
        f"{count} concurrent requests to the bare endpoint",
        "0 errors",
        errors == 0,
        {
            "concurrency": count,
            "bursts": bursts,
            "errors": errors,
            "proxy": mine,
            "bare_http": base,
            "first_burst_new_connections": {
                "proxy_wall_ms": first_proxy.wall_ms,
                "proxy_errors": len(first_proxy.errors),
                "bare_http_wall_ms": first_bare.wall_ms,
                "bare_http_errors": len(first_bare.errors),
                "error_samples": first_proxy.errors[:5],
            },
            "throughput_ratio": mine["throughput_per_s"] / base["throughput_per_s"],
        },
    )


async def _containers(url: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        return int((await client.get(f"{url}/health")).json()["containers"])


async def concurrent_ptc(
    proxy: str, count: int, batches: int, isolated: int, progress: Progress
) -> Comparison:
    """``count`` PTC requests at once (each makes a container and runs ``print(1+1)`` in a new
    sandbox session), against the same request sent alone with the warm pool refilled."""
    async with _client(count + 8) as client:
        warm = await _sequential(client, proxy, PTC_BODY, 2, check_ptc)  # isolation probe etc.
        alone: list[float] = []
        for _ in range(isolated):
            await asyncio.sleep(PTC_GAP_S)
            alone += await _sequential(client, proxy, PTC_BODY, 1, check_ptc)
        batches_done: list[Burst] = []
        for _ in range(batches):
            await asyncio.sleep(PTC_GAP_S)
            batches_done.append(await burst(client, proxy, PTC_BODY, count, check_ptc))
    live = await _containers(proxy)
    summary = _burst_summary(batches_done, count)
    ids = [o.container for b in batches_done for o in b.outcomes if o.container]
    made = len(warm) + len(alone) + sum(len(b.outcomes) - len(b.errors) for b in batches_done)
    alone_p50 = percentile(alone, 0.5)
    progress(
        f"{count} concurrent PTC requests: p50 {summary['p50_ms']:.0f} ms "
        f"(alone {alone_p50:.0f} ms), {summary['wall_ms']:.0f} ms wall, "
        f"{summary['errors']} errors, {live} containers live"
    )
    return Comparison(
        f"concurrent_{count}_ptc_p50",
        summary["p50_ms"],
        alone_p50,
        "ms",
        "the same PTC request sent alone, warm pool refilled",
        "0 errors",
        summary["errors"] == 0,
        {
            "concurrency": count,
            "batches": batches,
            "program": PTC_PROGRAM,
            "tool": CODE_TOOL,
            "errors": summary["errors"],
            "concurrent": summary,
            "alone_p50_ms": alone_p50,
            "alone_p95_ms": percentile(alone, 0.95),
            "alone_samples_ms": alone,
            "alone_requests": isolated,
            "distinct_containers_in_batches": len(set(ids)),
            "containers_made": made,
            "containers_live_after": live,
        },
    )


async def _isolation() -> dict[str, Any]:
    """The isolation the proxy's sandbox gets here (probed again in this process: the proxy's
    own probe happens in its process)."""
    from openptc.sandbox.isolation import Interpreter, choose_isolation

    choice = await asyncio.to_thread(choose_isolation, "auto", Interpreter.current())
    return asdict(choice.isolation)


async def run_proxy_bench(
    *,
    quick: bool = False,
    requests: int | None = None,
    concurrent: int = 200,
    ptc_concurrent: int = 20,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Every proxy figure, each against its baseline from this run; returns the JSON report."""
    sequential = requests if requests is not None else (60 if quick else 300)
    rounds = max(1, min(10, sequential // 10))
    bursts = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="ptc-bench-proxy-") as logs:
        log_dir = Path(logs)
        async with served("proxy", log_dir) as proxy:
            async with _client() as client:  # the proxy's own bytes are the bare endpoint's
                response = await client.post(f"{proxy}/v1/messages", content=TEXT_BODY)
                response.raise_for_status()
            async with served("bare", log_dir, response.content) as bare:
                figures = await request_latency(proxy, bare, sequential, rounds, progress)
                figures.append(await concurrent_text(proxy, bare, concurrent, bursts, progress))
            figures.append(
                await concurrent_ptc(
                    proxy, ptc_concurrent, 1 if quick else 3, 5 if quick else 15, progress
                )
            )
    return {
        **report_header("proxy"),
        "client": CLIENT,
        "server": {
            "app": "openptc.proxy.app.create_app, default store and sandbox, scripted backends",
            "uvicorn": "127.0.0.1, own process, loop/http 'auto', access log off, "
            f"proxy logs at {LOG_LEVEL} (as ptc serve), keep-alive {KEEP_ALIVE_S} s",
            "uvloop": importlib.util.find_spec("uvloop") is not None,
            "httptools": importlib.util.find_spec("httptools") is not None,
        },
        "response_bytes": len(response.content),
        "sandbox_isolation": await _isolation(),
        "figures": [f.report() for f in figures],
    }


if __name__ == "__main__":
    serve_main(sys.argv[1:])

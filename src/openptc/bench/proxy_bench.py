"""``ptc bench proxy``: what the Anthropic-compatible proxy adds to a request, and how it holds
up when many requests arrive at once.

The proxy runs as ``ptc serve`` runs it (``create_app`` under uvicorn on 127.0.0.1, JSON logs at
info level, uvicorn's default loop and HTTP parser) in a child process of its own, with scripted
backends that answer in microseconds, so the proxy is what gets measured. The client is this
process. Baselines come from the same run, interleaved with the proxy's rounds:

* the backend's ``generate()`` called in-process: the request without any proxy;
* a bare Starlette endpoint on the same uvicorn setup (its own child process) that reads the
  request and answers the bytes the proxy answered: the HTTP floor on this machine;
* for PTC requests, the same sandbox sessions opened and run on a ``LocalSandbox`` in-process.

Overhead is proxy p50 - in-process p50; the proxy's own cost is proxy p50 - bare HTTP p50.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import socket
import ssl
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
    ToolResultBlock,
    ToolUseBlock,
)
from openptc.models.scripted import ScriptedModel, Turn
from openptc.models.tokens import count_request_tokens, count_response_tokens
from openptc.sandbox.base import Isolation, Session
from openptc.sandbox.local import LocalSandbox

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
CLIENT = (
    "httpx.AsyncClient, HTTP/1.1 keep-alive: one persistent client for sequential requests; "
    "one client per request in flight for concurrent ones (see clients())"
)
LOG_LEVEL = "info"  # ``ptc serve``'s default: one JSON log line per request
KEEP_ALIVE_S = 30  # uvicorn's default is 5 s; longer, so no idle connection closes mid-phase
OVERHEAD_TARGET_MS = 2.0
PTC_GAP_S = 0.3  # before each PTC request alone and each batch: the warm pool refills
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
        from openptc.logs import configure

        configure(LOG_LEVEL)  # as ``ptc serve`` does
        app = proxy_app()
    elif kind == "bare":
        app = bare_app(sys.stdin.buffer.read())
    else:
        raise SystemExit(f"unknown server kind {kind!r}")
    # IPPROTO_TCP spelled out: asyncio turns Nagle off only on sockets whose proto says TCP, as
    # on the sockets uvicorn binds itself for ``ptc serve`` (with proto 0 every response after
    # the first waits ~40 ms for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        app, log_level=LOG_LEVEL, access_log=False, timeout_keep_alive=KEEP_ALIVE_S
    )
    uvicorn.Server(config).run(sockets=[sock])


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_ms(self) -> float | None:
        """CPU time the server process has used (user + system), or None off Linux."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") * 1000


@contextlib.asynccontextmanager
async def served(kind: str, log_dir: Path, body: bytes = b"") -> AsyncIterator[Server]:
    """Start a server child process; yield it once ``/health`` answers; stop it."""
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
            raise RuntimeError(f"the {kind} server did not start:\n{log_path.read_text()}")
        url = f"http://127.0.0.1:{int(line)}"
        await _wait_healthy(url, process, kind, log_path)
        yield Server(url, process.pid)
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


def _client(context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """A client of one keep-alive connection (``context``: unused on http://, but each client
    builds its own unless given one, which costs milliseconds)."""
    return httpx.AsyncClient(
        headers=HEADERS,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        timeout=httpx.Timeout(120),
        verify=context or True,
    )


@contextlib.asynccontextmanager
async def clients(count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """``count`` clients of one connection each, for ``count`` requests in flight at once.

    Not one client with ``count`` connections: httpcore's pool walks every connection on every
    request (encode/httpcore#1035), so 200 requests in flight in one pool took ~5 s of client
    CPU here, against ~0.1 s spread over 200 clients; it would measure httpcore, not the server.
    """
    context = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(_client(context)) for _ in range(count)]


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


class CpuMeter:
    """A server's CPU time over a whole phase, per request served in it.

    Read once at each end, not per stretch: the clock ticks in 10 ms steps, and a server that
    waits while the other is measured uses no CPU.
    """

    def __init__(self, server: Server) -> None:
        self._server = server
        self._started = server.cpu_ms()

    def per_request(self, requests: int) -> float | None:
        ended = self._server.cpu_ms()
        if ended is None or self._started is None or not requests:
            return None
        return (ended - self._started) / requests


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
    async with _client() as proxy_client, _client() as bare_client:
        await _sequential(proxy_client, proxy, TEXT_BODY, warm_up, check_text)
        await _sequential(bare_client, bare, TEXT_BODY, warm_up, check_text)
        await _timed_us(lambda: backend.generate(model_request), warm_up)
        if with_sdk:
            await _sdk_timings(proxy, min(10, warm_up))
        proxy_cpu, bare_cpu = CpuMeter(proxy_server), CpuMeter(bare_server)
        for _ in range(rounds):  # interleaved: drift on a shared machine hits all alike
            ours += await _sequential(proxy_client, proxy, TEXT_BODY, per_round, check_text)
            bare_ms += await _sequential(bare_client, bare, TEXT_BODY, per_round, check_text)
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


async def burst(fleet: Sequence[httpx.AsyncClient], url: str, body: bytes, check: Check) -> Burst:
    """One request per client, all at once."""
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(attempt(client, url, body, check) for client in fleet))
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
    proxy_server: Server, bare_server: Server, count: int, bursts: int, progress: Progress
) -> Comparison:
    """``count`` text-only requests at once, ``bursts`` times, proxy and bare interleaved.

    The first burst of each opens the connections; it is reported apart and its errors count.
    """
    proxy, bare = proxy_server.url, bare_server.url
    ours: list[Burst] = []
    floor: list[Burst] = []
    async with clients(count) as proxy_clients, clients(count) as bare_clients:
        first_proxy = await burst(proxy_clients, proxy, TEXT_BODY, check_text)
        first_bare = await burst(bare_clients, bare, TEXT_BODY, check_text)
        proxy_cpu, bare_cpu = CpuMeter(proxy_server), CpuMeter(bare_server)
        for _ in range(bursts):
            ours.append(await burst(proxy_clients, proxy, TEXT_BODY, check_text))
            floor.append(await burst(bare_clients, bare, TEXT_BODY, check_text))
        cpu = {
            "proxy": proxy_cpu.per_request(count * bursts),
            "bare_http": bare_cpu.per_request(count * bursts),
        }
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
            "server_cpu_per_request_ms": cpu,
        },
    )


async def reuse_burst(fleet: Sequence[httpx.AsyncClient], url: str, earlier: Burst) -> Burst:
    """The same request again, each in the container an earlier request made: no new session.

    A request whose earlier one failed has no container and makes a new one.
    """

    def body(container: str | None) -> bytes:
        data = json.loads(PTC_BODY)
        return json.dumps(data | ({"container": container} if container else {})).encode()

    def same_container(container: str | None) -> Check:
        def check(data: dict[str, Any]) -> str | None:
            problem = check_ptc(data)
            if problem is None and container and data["container"]["id"] != container:
                problem = f"answered in container {data['container']['id']}, not {container}"
            return problem

        return check

    pairs = list(zip(fleet, earlier.outcomes, strict=True))
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(
            attempt(client, url, body(o.container), same_container(o.container))
            for client, o in pairs
        )
    )
    return Burst((time.perf_counter() - started) * 1000, list(outcomes))


async def _containers(url: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        return int((await client.get(f"{url}/health")).json()["containers"])


async def direct_batch(sandbox: LocalSandbox, count: int) -> Burst:
    """The baseline of a PTC batch: ``count`` sessions opened and run at once, in-process."""
    sessions: list[Session] = []

    async def one() -> Outcome:
        started = time.perf_counter()
        try:
            session = await sandbox.open_session()
            sessions.append(session)
            execution = await session.execute(PTC_PROGRAM)
        except Exception as exc:
            return Outcome((time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - started) * 1000
        ok = execution.ok and execution.stdout == "2\n"
        return Outcome(ms, None if ok else f"the program did not print 2: {execution}")

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one() for _ in range(count)))
    wall_ms = (time.perf_counter() - started) * 1000
    await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    return Burst(wall_ms, list(outcomes))


async def _pool_refilled(sandbox: LocalSandbox) -> None:
    deadline = time.monotonic() + 10
    while not sandbox.pool_ready() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def concurrent_ptc(
    proxy: str, count: int, batches: int, isolated: int, progress: Progress
) -> tuple[Comparison, Isolation]:
    """``count`` PTC requests at once, each making a container and running ``print(1+1)`` in a
    new sandbox session; the baseline opens and runs the same sessions at once on a
    ``LocalSandbox`` with the proxy's pool size, in-process. Also reported: the request sent
    alone, and the batch again in the containers it made (no new session)."""
    from openptc.proxy.config import ProxyConfig

    pool_size = int(ProxyConfig.model_fields["pool_size"].default)
    async with clients(count) as fleet, LocalSandbox(pool_size=pool_size) as sandbox:
        client = fleet[0]
        warm = await _sequential(client, proxy, PTC_BODY, 2, check_ptc)  # isolation probe etc.
        alone: list[float] = []
        for _ in range(isolated):
            await asyncio.sleep(PTC_GAP_S)
            alone += await _sequential(client, proxy, PTC_BODY, 1, check_ptc)
        await direct_batch(sandbox, 2)  # warm-up
        new: list[Burst] = []
        reused: list[Burst] = []
        direct: list[Burst] = []
        for _ in range(batches):  # interleaved; each starts with its warm pool refilled
            await asyncio.sleep(PTC_GAP_S)
            new.append(await burst(fleet, proxy, PTC_BODY, check_ptc))
            reused.append(await reuse_burst(fleet, proxy, new[-1]))
            await _pool_refilled(sandbox)
            await asyncio.sleep(PTC_GAP_S)
            direct.append(await direct_batch(sandbox, count))
        isolation = sandbox.isolation
    live = await _containers(proxy)
    summary = _burst_summary(new, count)
    again = _burst_summary(reused, count)
    floor = _burst_summary(direct, count)
    errors = summary["errors"] + again["errors"]
    ids = [o.container for b in new for o in b.outcomes if o.container]
    made = len(warm) + len(alone) + sum(len(b.outcomes) - len(b.errors) for b in new)
    alone_p50 = percentile(alone, 0.5)
    progress(
        f"{count} concurrent PTC requests: p50 {summary['p50_ms']:.0f} ms, "
        f"{summary['wall_ms']:.0f} ms wall, {summary['errors']} errors, {live} containers live "
        f"(the same sessions in-process: p50 {floor['p50_ms']:.0f} ms; one request alone: "
        f"{alone_p50:.0f} ms); again in their containers: p50 {again['p50_ms']:.0f} ms, "
        f"{again['errors']} errors"
    )
    comparison = Comparison(
        f"concurrent_{count}_ptc_p50",
        summary["p50_ms"],
        floor["p50_ms"],
        "ms",
        f"{count} sessions opened and run at once on a LocalSandbox in-process "
        f"(pool of {pool_size}, as the proxy's)",
        "0 errors",
        errors == 0,
        {
            "concurrency": count,
            "batches": batches,
            "program": PTC_PROGRAM,
            "tool": CODE_TOOL,
            "errors": errors,
            "pool_size": pool_size,
            "concurrent": summary,
            "concurrent_in_existing_containers": again,
            "sandbox_in_process": floor,
            "alone_p50_ms": alone_p50,
            "alone_p95_ms": percentile(alone, 0.95),
            "alone_samples_ms": alone,
            "alone_requests": isolated,
            "ratio_to_alone": summary["p50_ms"] / alone_p50,
            "distinct_containers_in_batches": len(set(ids)),
            "containers_made": made,
            "containers_live_after": live,
        },
    )
    return comparison, isolation


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
    bursts = 1 if quick else 5
    load_at_start = os.getloadavg()  # other work on a shared machine moves every figure
    with tempfile.TemporaryDirectory(prefix="ptc-bench-proxy-") as logs:
        log_dir = Path(logs)
        async with served("proxy", log_dir) as proxy:
            async with _client() as client:  # the proxy's own bytes are the bare endpoint's
                response = await client.post(f"{proxy.url}/v1/messages", content=TEXT_BODY)
                response.raise_for_status()
            async with served("bare", log_dir, response.content) as bare:
                figures = await request_latency(proxy, bare, sequential, rounds, progress)
                figures.append(await concurrent_text(proxy, bare, concurrent, bursts, progress))
            ptc, isolation = await concurrent_ptc(
                proxy.url, ptc_concurrent, 1 if quick else 3, 5 if quick else 15, progress
            )
            figures.append(ptc)
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
        "load_average": {"at_start": load_at_start, "at_end": os.getloadavg()},
        # From the baseline's LocalSandbox: same machine and choice as the proxy's own.
        "sandbox_isolation": asdict(isolation),
        "figures": [f.report() for f in figures],
    }


if __name__ == "__main__":
    serve_main(sys.argv[1:])

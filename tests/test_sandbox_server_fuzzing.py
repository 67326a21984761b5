"""Whatever a client sends to `ptc sandbox-server`, the server answers in words and keeps serving.

A real server on 127.0.0.1 (uvicorn, on its own event loop in a thread) gets, from a raw
WebSocket client holding a valid token: binary frames, text that is not JSON or is nested past
any parser's depth, JSON that is not a message, messages of unknown types, executes and tool
results with fields of the wrong type, results for ids nobody waits for, cancels of anything,
frames over the size limit, and connections dropped without a close (also mid-execution, with
a tool call waiting). Every malformed frame gets one ``bad_message`` error frame saying what was
wrong and the connection goes on (the same connection then runs ``print(1)``); every session
of a client that left is closed; the server logs no error; and afterwards a well-behaved client
(``RemoteSandbox``) opens a session and runs ``print(1)``. A refusal, too, says what is true:
the session limit counts the sessions still starting.

Generation is derandomized and not shrunk (each example costs sandbox sessions); a failing
example is printed in full by the test itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import hypothesis
import pytest
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from fakes.fuzzing import BOUNDED
from fakes.harness import serve
from fakes.sandbox_server import TOKEN, running_server, server_config
from openptc.sandbox.base import SandboxError
from openptc.sandbox.local import LocalSandbox, LocalSession
from openptc.sandbox.remote import RemoteSandbox
from openptc.server.app import create_server_app

T = TypeVar("T")
# Hypothesis warns before it builds the repr of a 200 kB line; the tests print their own.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

HEADERS = {"authorization": f"Bearer {TOKEN}"}
WAIT_S = 30.0  # far past anything a reply needs: beyond it the server hangs
REPLY_TYPES = frozenset({"error", "done", "tool_calls", "blocked"})
ECHO = [{"name": "echo", "params": ["x"]}]
PROBE = "probe-print-1"  # longer than any generated id


# -- the server on its own loop, and what it logs ---------------------------------------------
class _Errors(logging.Handler):
    def __init__(self, seen: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.seen = seen

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(self.format(record))


@dataclass
class Server:
    loop: asyncio.AbstractEventLoop
    url: str = ""
    client: RemoteSandbox | None = None
    errors: list[str] = field(default_factory=list)  # logged at ERROR, or by the event loop

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/v1/sessions"

    def run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        future = asyncio.run_coroutine_threadsafe(make(), self.loop)
        try:
            return future.result(WAIT_S)
        except TimeoutError:
            future.cancel()
            raise AssertionError(f"no answer within {WAIT_S:g} s: a hang") from None

    def sessions(self) -> int:
        return int(httpx.get(f"{self.url}/readyz", timeout=WAIT_S).json()["sessions"])


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    # SDK clients other test modules left for the garbage collector close themselves on the
    # running loop of whichever thread collects them: collect them now, where none runs, so
    # that their failures are not taken for the server's.
    gc.collect()
    loop = asyncio.new_event_loop()
    served = Server(loop)
    loop.set_exception_handler(lambda _, context: served.errors.append(f"loop: {context}"))
    handler = _Errors(served.errors)
    loggers = [logging.getLogger(n) for n in ("openptc.server", "uvicorn.error", "uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()
    try:
        served.url = served.run(lambda: stack.enter_async_context(running_server()))
        served.client = served.run(
            lambda: stack.enter_async_context(RemoteSandbox(served.url, TOKEN))
        )
        yield served
    finally:
        served.run(stack.aclose)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
        for logger in loggers:
            logger.removeHandler(handler)


# -- a raw client -----------------------------------------------------------------------------
@contextlib.contextmanager
def _session(server: Server) -> Iterator[ClientConnection]:
    """A raw connection whose session is open (its ``session`` message read)."""
    with connect(
        server.ws_url, additional_headers=HEADERS, open_timeout=WAIT_S, max_size=None
    ) as ws:
        hello = json.loads(ws.recv(WAIT_S))
        assert hello["type"] == "session", hello
        yield ws


def _drop(ws: ClientConnection) -> None:
    """Gone without a close frame: a reset, as a crashed client or a cut network leaves it."""
    with contextlib.suppress(OSError):
        ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.close_socket()


def _replies_until_done(ws: ClientConnection, execution_id: Any) -> list[dict[str, Any]]:
    """Every reply up to and including the ``done`` of ``execution_id``."""
    replies: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_S
    while True:
        raw = ws.recv(max(0.01, deadline - time.monotonic()))
        reply = json.loads(raw)
        assert isinstance(reply, dict) and reply.get("type") in REPLY_TYPES, reply
        if reply["type"] == "error":
            assert isinstance(reply.get("code"), str) and reply["code"], reply
            assert isinstance(reply.get("message"), str) and reply["message"], reply
        replies.append(reply)
        if reply["type"] == "done" and reply.get("id") == execution_id:
            return replies


def _run_on(ws: ClientConnection, code: str, execution_id: Any) -> list[dict[str, Any]]:
    ws.send(json.dumps({"type": "execute", "id": execution_id, "code": code, "tools": []}))
    return _replies_until_done(ws, execution_id)


def _a_good_client_runs_print_1(server: Server) -> None:
    async def go() -> str:
        assert server.client is not None
        session = await server.client.open_session()
        try:
            return (await session.execute("print(1)")).stdout
        finally:
            await session.close()

    assert server.run(go) == "1\n"


def _every_session_closes(server: Server) -> None:
    deadline = time.monotonic() + WAIT_S
    while (left := server.sessions()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert left == 0, "the server kept the session of a client that left"


# -- what a client may send -------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    payload: str | bytes
    kind: str  # "bad" (must get a bad_message error), "execute", "tool_result", "cancel"
    execution: Any = None  # an execute's id


OMIT = object()
json_leaves = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
CODES = ["print(1)", "1/0", "x = 1", "print(await echo(x=1))", "import time\ntime.sleep(0.2)"]


def _field(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value, tagged with whether the server must accept it."""
    return good.map(lambda v: (v, True)) | bad.map(lambda v: (v, False))


not_str = st.none() | st.booleans() | st.integers() | st.floats() | st.lists(json_leaves)
execute_fields = {
    "id": _field(
        st.integers(-(2**70), 2**70) | st.text(max_size=8),
        st.just(OMIT) | st.none() | st.booleans() | st.floats() | st.lists(json_leaves),
    ),
    "code": _field(st.sampled_from(CODES) | st.text(max_size=30), st.just(OMIT) | not_str),
    "tools": _field(
        st.sampled_from([OMIT, [], ECHO]),
        st.sampled_from([None, "echo", [1], [{"name": "1x"}], [{"name": "class"}], ECHO + ECHO])
        | st.sampled_from([[{"name": "echo", "params": "x"}], [{"name": "echo", "params": [1]}]]),
    ),
    "timeout_s": _field(
        st.sampled_from([OMIT, None, 2**80, 1e300, 0.5, 3])
        | st.floats(min_value=1e-3, max_value=5),
        st.sampled_from([0, -1, "soon", True, [1], float("nan"), -float("inf")]),
    ),
    "output_bytes": _field(
        st.sampled_from([OMIT, None]) | st.integers(0, 2**70),
        st.sampled_from([-1, 1.5, "10", False, {}]),
    ),
    "report_blocked": _field(
        st.sampled_from([OMIT, True, False]), st.none() | st.integers() | st.text(max_size=5)
    ),
}


@st.composite
def executes(draw: st.DrawFn) -> Frame:
    message: dict[str, Any] = {"type": "execute"}
    good = True
    for name, strategy in execute_fields.items():
        value, ok = draw(strategy)
        good = good and ok
        if value is not OMIT:
            message[name] = value
    return Frame(json.dumps(message), "execute" if good else "bad", message.get("id"))


@st.composite
def tool_results(draw: st.DrawFn) -> Frame:
    not_int = st.just(OMIT) | st.none() | st.booleans() | st.floats() | st.text(max_size=5)
    call_id, id_ok = draw(_field(st.integers(-1, 3), not_int | st.lists(json_leaves)))
    ok, ok_ok = draw(_field(st.booleans(), st.just(OMIT) | st.none() | st.integers() | st.text()))
    error, error_ok = draw(
        _field(
            st.sampled_from([OMIT, None])
            | st.fixed_dictionaries({"type": st.text(max_size=8), "message": st.text(max_size=8)}),
            st.text(max_size=8) | st.lists(json_leaves) | st.just({"message": 1}),
        )
    )
    message = {"type": "tool_result", "execution": draw(st.integers(-1, 3) | json_values)}
    for name, value in (("id", call_id), ("ok", ok), ("error", error)):
        if value is not OMIT:
            message[name] = value
    message["value"] = draw(json_values)
    good = id_ok and ok_ok and (ok is not False or error_ok)
    return Frame(json.dumps(message), "tool_result" if good else "bad")


def _is_a_message(text: str) -> bool:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(message, dict) and message.get("type") in ("execute", "tool_result", "cancel")


def _bad(text: str | bytes) -> Frame:
    return Frame(text, "bad")


unknown_types = st.text(max_size=10).filter(lambda t: t not in ("execute", "tool_result", "cancel"))
frames = st.one_of(
    st.binary(max_size=40).map(_bad),
    st.text(max_size=40).filter(lambda t: not _is_a_message(t)).map(_bad),
    json_values.map(json.dumps).filter(lambda t: not _is_a_message(t)).map(_bad),
    st.sampled_from([2_000, 100_000]).map(lambda n: _bad("[" * n + "]" * n)),
    unknown_types.map(lambda t: _bad(json.dumps({"type": t}))),
    executes(),
    tool_results(),
    json_values.map(lambda v: Frame(json.dumps({"type": "cancel", "execution": v}), "cancel")),
)
ENDINGS = ("run-print-1-then-close", "close", "drop", "drop-while-a-tool-call-waits")


def _bad_then_good(server: Server, sent: list[Frame], ending: str) -> None:
    server.errors.clear()
    with _session(server) as ws:
        for frame in sent:
            ws.send(frame.payload)
        if ending == "run-print-1-then-close":  # ("close": leaving the block closes it)
            _the_same_connection_goes_on(ws, sent)
        elif ending == "drop":
            _drop(ws)
        elif ending == "drop-while-a-tool-call-waits":
            for frame in sent:  # a cancel first: an earlier execution may still be running
                if frame.kind == "execute":
                    ws.send(json.dumps({"type": "cancel", "execution": frame.execution}))
            message = {"type": "execute", "id": "waits", "code": CODES[3], "tools": ECHO}
            ws.send(json.dumps(message))
            while json.loads(ws.recv(WAIT_S))["type"] != "tool_calls":
                pass
            _drop(ws)
    _every_session_closes(server)
    _a_good_client_runs_print_1(server)
    assert server.errors == [], "the server logged an error"


def _the_same_connection_goes_on(ws: ClientConnection, sent: list[Frame]) -> None:
    for frame in sent:  # stop whatever still runs: the next execute would be refused as busy
        if frame.kind == "execute":
            ws.send(json.dumps({"type": "cancel", "execution": frame.execution}))
    replies = _run_on(ws, "print(1)", PROBE)
    bad = [r for r in replies if r["type"] == "error" and r["code"] == "bad_message"]
    executed = False
    expected = 0
    for frame in sent:
        executed = executed or frame.kind == "execute"
        expected += frame.kind == "bad" or (frame.kind == "tool_result" and not executed)
    assert len(bad) == expected, f"{expected} malformed frames, {len(bad)} answered: {bad}"
    done = replies[-1]["execution"]
    assert done["error"] is None and done["stdout"] == "1\n", done


def _shown(sent: list[Frame]) -> str:
    return "\n".join(
        f"  {f.kind}: {f.payload[:200]!r}{'...' if len(f.payload) > 200 else ''}" for f in sent
    )


@hypothesis.settings(BOUNDED, max_examples=40)
@hypothesis.given(sent=st.lists(frames, max_size=6), ending=st.sampled_from(ENDINGS))
def test_whatever_a_client_sends_the_server_keeps_serving(
    server: Server, sent: list[Frame], ending: str
) -> None:
    try:
        _bad_then_good(server, sent, ending)
    except BaseException as exc:  # name the input (pytest elides hypothesis' own report)
        exc.add_note(f"ending={ending}\nsent=\n{_shown(sent)}")
        raise


# -- each kind of malformed frame, and what the error frame says ------------------------------
def _execute(**fields: Any) -> str:
    return json.dumps({"type": "execute", "id": 7, "code": "print(1)", **fields})


RESULT = {"type": "tool_result", "execution": 1, "id": 1, "ok": False}


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (b'{"type": "execute", "id": 2, "code": "print(1)"}', "binary"),
        ("print(1)", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[1, 2]", "a JSON object, not an array"),
        ('{"code": "print(1)"}', "'type'"),
        ('{"type": "run"}', "unexpected message type 'run'"),
        (_execute(id=[1]), "'id'"),
        (_execute(code=None), "'code'"),
        (_execute(tools={"echo": ["x"]}), "'tools'"),
        (_execute(tools=[1]), "tools[0]"),
        (_execute(tools=[{"name": "get-user"}]), "not a Python identifier"),
        (_execute(tools=[{"name": "echo", "params": "x"}]), "params"),
        (_execute(tools=ECHO + ECHO), "unique"),
        (_execute(timeout_s="soon"), "'timeout_s'"),
        (_execute(timeout_s=-1), "'timeout_s'"),
        (_execute(output_bytes=1.5), "'output_bytes'"),
        (_execute(report_blocked="yes"), "'report_blocked'"),
        (json.dumps({**RESULT, "id": "1"}), "'id'"),
        (json.dumps({**RESULT, "ok": "no"}), "'ok'"),
        (json.dumps({**RESULT, "error": "boom"}), "'error'"),
    ],
)
def test_a_malformed_frame_gets_an_error_saying_what_was_wrong_and_the_session_goes_on(
    server: Server, frame: str | bytes, words: str
) -> None:
    server.errors.clear()
    with _session(server) as ws:
        assert _run_on(ws, "x = 41", 1)[-1]["execution"]["error"] is None
        ws.send(frame)
        reply = json.loads(ws.recv(WAIT_S))
        assert reply["type"] == "error" and reply["code"] == "bad_message", reply
        assert words in reply["message"]
        done = _run_on(ws, "print(x + 1)", 2)[-1]["execution"]
        assert done["stdout"] == "42\n" and not done["notices"], done  # the same interpreter
    assert server.errors == []


def test_a_tool_result_before_any_execution_is_named_as_such(server: Server) -> None:
    with _session(server) as ws:
        ws.send(json.dumps({**RESULT, "ok": True, "value": 1}))
        reply = json.loads(ws.recv(WAIT_S))
        assert reply["code"] == "bad_message" and "before any execute" in reply["message"]


def test_a_frame_over_the_size_limit_ends_that_connection_only(server: Server) -> None:
    server.errors.clear()
    with _session(server) as ws:
        ws.send("x" * (17 * 1024 * 1024))  # uvicorn's default limit is 16 MiB
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(WAIT_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # too big
    _every_session_closes(server)
    _a_good_client_runs_print_1(server)
    assert server.errors == []


def test_a_client_gone_mid_execution_has_its_execution_stopped_and_session_closed(
    server: Server,
) -> None:
    def disconnected() -> float:
        text = httpx.get(f"{server.url}/metrics", timeout=WAIT_S).text
        line = next(
            (x for x in text.splitlines() if 'outcome="disconnected"' in x and "_total" in x),
            "x 0",
        )
        return float(line.split()[-1])

    before = disconnected()
    with _session(server) as ws:
        ws.send(json.dumps({"type": "execute", "id": 1, "code": CODES[3], "tools": ECHO}))
        assert json.loads(ws.recv(WAIT_S))["type"] == "tool_calls"  # the program waits on it
        _drop(ws)
    _every_session_closes(server)
    deadline = time.monotonic() + WAIT_S
    while disconnected() == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert disconnected() == before + 1  # the execution ended, its client gone
    _a_good_client_runs_print_1(server)


# -- refusals say what is true ----------------------------------------------------------------
class GatedSandbox(LocalSandbox):
    """A local sandbox whose sessions start only when the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(pool_size=0)
        self.gate = asyncio.Event()
        self.waiting = 0

    async def open_session(self) -> LocalSession:
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        return await super().open_session()


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(int(WAIT_S / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition was never met")


async def test_the_session_limit_counts_sessions_still_starting() -> None:
    gated = GatedSandbox()
    app = create_server_app(server_config(max_sessions_per_token=2, pool_size=0), sandbox=gated)
    async with gated, serve(app, lifespan=True) as url, RemoteSandbox(url, TOKEN) as client:
        starting = [asyncio.create_task(client.open_session()) for _ in range(2)]
        await _until(lambda: gated.waiting == 2)
        with pytest.raises(SandboxError) as refused:
            await client.open_session()
        assert "holds 2 sessions, 2 of them still starting (its limit is 2)" in str(refused.value)
        gated.gate.set()
        first, second = await asyncio.gather(*starting)
        assert (await first.execute("print(1)")).stdout == "1\n"

        await second.close()
        gated.gate.clear()
        async with httpx.AsyncClient() as http:
            for _ in range(int(WAIT_S / 0.01)):
                if (await http.get(f"{url}/readyz")).json()["sessions"] == 1:
                    break
                await asyncio.sleep(0.01)
        third = asyncio.create_task(client.open_session())
        await _until(lambda: gated.waiting == 1)
        with pytest.raises(SandboxError) as refused:
            await client.open_session()
        assert "holds 2 sessions, 1 of them still starting (its limit is 2)" in str(refused.value)
        gated.gate.set()
        await third

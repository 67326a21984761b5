"""Whatever a program writes on the bridge, the host neither crashes nor hangs, and the session
runs the next program correctly.

The program runs in the same process as the runtime, so it can write anything on the bridge's
output descriptor (its number is in the JSON config in ``sys.argv[1]``): garbage, truncated or
deeply nested JSON, messages of unknown types, tool calls with bad ids or arguments, forged
``done`` messages, lines past the size cap. Through a real local sandbox, each hostile program
must come back as an ``Execution`` (its own result, or an error naming the bridge when what it
wrote was malformed), within its timeout; and the same session (or a restarted one, which says
so) must then run ``print(6*7)`` and answer ``42``. A cheaper layer feeds arbitrary bytes and
JSON to the host's decoding functions, where only ``BridgeError`` may come out.

Generation is derandomized (a run is the same run everywhere) and not shrunk (each example
costs a sandbox execution); failing inputs are printed as generated.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import hypothesis
import pytest
from hypothesis import strategies as st

from fakes.fuzzing import BOUNDED
from openptc import LocalSandbox, Toolbox, tool
from openptc.sandbox import protocol
from openptc.sandbox.base import Execution, ExecutionError, Limits
from openptc.sandbox.local import RESTART_NOTICE

T = TypeVar("T")
# Hypothesis warns before it builds the repr of a 200 kB line; the tests print their own.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

EXECUTION_TIMEOUT_S = 5.0
HANG_S = 60.0  # far past every timeout involved: beyond it the host hangs
KNOWN_TYPES = frozenset({"ready", "tool_calls", "blocked", "done"})


# -- a host on its own event loop, since hypothesis drives the test synchronously -------------
@dataclass
class Host:
    loop: asyncio.AbstractEventLoop
    sandbox: LocalSandbox
    tools: Toolbox
    loop_errors: list[str] = field(default_factory=list)

    def run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        future = asyncio.run_coroutine_threadsafe(make(), self.loop)
        try:
            return future.result(HANG_S)
        except TimeoutError:
            future.cancel()
            raise AssertionError(f"the host did not answer within {HANG_S:g} s: a hang") from None


@tool
async def echo(x: int) -> int:
    """Returns x."""
    return x


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    gc.collect()  # SDK clients left by other modules close on a running loop: not on this one
    loop = asyncio.new_event_loop()
    sandbox = LocalSandbox(Limits(timeout_s=2 * EXECUTION_TIMEOUT_S), pool_size=1)
    served = Host(loop, sandbox, Toolbox([echo]))
    # An exception escaping a transport callback is logged by the loop, not raised: catch it.
    loop.set_exception_handler(lambda _, context: served.loop_errors.append(str(context)))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        served.run(sandbox.start)
        yield served
    finally:
        served.run(sandbox.aclose)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


# -- what a hostile program writes, and what the host must make of it ------------------------
WRITER = """\
import json as _json, os as _os, sys as _sys
_fd = _json.loads(_sys.argv[1])["out_fd"]
for _chunk in {chunks!r}:
    _view = memoryview(_chunk)
    while _view:
        _view = _view[_os.write(_fd, _view):]
"""
TAILS = {  # what the program does after writing, and what it prints when left alone
    "": "",
    "print('after')": "after\n",
    "print(await echo(x=7))": "7\n",
    "import time\ntime.sleep(0.1)\nprint('slept')": "slept\n",
}


@dataclass(frozen=True)
class Outcome:
    first: Execution
    second: Execution
    restarted: bool  # the session's interpreter was replaced between the two


async def _hostile_then_42(host: Host, chunks: list[bytes], tail: str) -> Outcome:
    host.loop_errors.clear()  # only this example's count
    session = await host.sandbox.open_session()
    try:
        first = await session.execute(
            WRITER.format(chunks=chunks) + tail, host.tools, timeout_s=EXECUTION_TIMEOUT_S
        )
        pid = session.pid
        second = await session.execute("print(6*7)", host.tools, timeout_s=EXECUTION_TIMEOUT_S)
        return Outcome(first, second, session.pid != pid)
    finally:
        await session.close()


def _calls_are_well_formed(calls: Any) -> bool:
    return isinstance(calls, list) and all(
        isinstance(c, dict)
        and isinstance(c.get("id"), int)
        and isinstance(c.get("tool"), str)
        and isinstance(c.get("args"), dict)
        for c in calls
    )


def _verdict(line: bytes) -> str:
    """``malformed``, ``done`` (a forged end) or ``benign``: what a line alone tells the host."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return "malformed"
    kind = message.get("type") if isinstance(message, dict) else None
    if not isinstance(kind, str) or kind not in KNOWN_TYPES:
        return "malformed"
    if kind == "tool_calls" and not _calls_are_well_formed(message.get("calls")):
        return "malformed"
    return "done" if kind == "done" else "benign"


def _expected(data: bytes) -> str:
    """What the host sees first that is not benign. An unterminated fragment joins the
    runtime's own next line, which it breaks unless it is JSON whitespace."""
    *lines, fragment = data.split(b"\n")
    if fragment.strip(b" \t\r"):
        lines.append(fragment)
    for line in lines:
        verdict = _verdict(line)
        if verdict != "benign":
            return verdict
    return "benign"


def _names_the_bridge(error: ExecutionError | None) -> bool:
    return error is not None and "bridge" in error.message


def _check(host: Host, chunks: list[bytes], tail: str, outcome: Outcome) -> None:
    """Malformed traffic is an error naming the bridge; traffic that forges nothing leaves
    the program's own result (or such an error); a forged ``done`` may stand for the result.
    Whatever happened, the next program runs as if nothing had."""
    first, second = outcome.first, outcome.second
    assert isinstance(first, Execution) and isinstance(second, Execution)
    data = b"".join(chunks)
    expected = _expected(data)
    if expected == "malformed":
        assert _names_the_bridge(first.error), f"malformed bridge traffic was let through: {first}"
    elif expected == "benign" and not ("echo" in tail and b"tool_calls" in data):
        # Forged calls may carry the program's own call id and answer its call: left out.
        ran = first.error is None and first.stdout == TAILS[tail]
        assert ran or _names_the_bridge(first.error), f"the program's result was lost: {first}"
    assert second.error is None, f"the next program failed: {second.error}"
    assert second.stdout == "42\n", f"the next program got someone else's output: {second}"
    if outcome.restarted:
        assert RESTART_NOTICE in second.notices
    assert host.loop_errors == [], "an exception escaped into the host's event loop"


# -- strategies -------------------------------------------------------------------------------
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
tool_calls = st.fixed_dictionaries(
    {
        "id": st.integers(-1, 4) | json_values,
        "tool": st.sampled_from(["echo", "missing"]) | json_values,
        "args": st.fixed_dictionaries({"x": st.integers(0, 9) | json_values}) | json_values,
    }
)
errors = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["exception", "memory", "cpu", "timeout", "bridge"]) | json_values,
        "type": json_values,
        "message": json_values,
        "traceback": json_values,
        "line": json_values,
    },
)
messages = st.one_of(
    st.just({"type": "ready", "pid": 1, "python": "3"}),
    st.just({"type": "blocked"}),
    st.fixed_dictionaries(
        {"type": st.just("tool_calls"), "calls": st.lists(tool_calls, max_size=3) | json_values}
    ),
    st.fixed_dictionaries(
        {"type": st.just("done")},
        optional={
            "id": st.integers(0, 3) | json_values,
            "stdout": st.text(max_size=20) | json_values,
            "stderr": json_values,
            "stdout_truncated": json_values,
            "error": st.none() | errors | json_values,
            "notices": st.lists(st.text(max_size=10), max_size=2) | json_values,
        },
    ),
    st.fixed_dictionaries({"type": st.text(max_size=10) | json_values}),
)


def _line(value: Any) -> bytes:
    return json.dumps(value).encode() + b"\n"


def _truncated(value: Any) -> st.SearchStrategy[bytes]:
    text = json.dumps(value).encode()
    return st.integers(0, len(text)).map(lambda k: text[:k] + b"\n")


chunks = st.one_of(
    messages.map(_line),
    json_values.map(_line),
    messages.flatmap(_truncated),
    st.binary(max_size=40),
    st.sampled_from([10, 3_000, 100_000]).map(lambda n: b"[" * n + b"]" * n + b"\n"),
    st.integers(1, 200_000).map(lambda n: b'{"type":"blocked","pad":"' + b"x" * n + b'"}\n'),
)


# -- the real sandbox -------------------------------------------------------------------------
@hypothesis.settings(BOUNDED, max_examples=40)
@hypothesis.given(
    written=st.lists(chunks, min_size=1, max_size=4), tail=st.sampled_from(sorted(TAILS))
)
def test_whatever_a_program_writes_on_the_bridge_the_session_answers_42_next(
    host: Host, written: list[bytes], tail: str
) -> None:
    try:
        outcome = host.run(lambda: _hostile_then_42(host, written, tail))
        _check(host, written, tail, outcome)
    except BaseException as exc:  # name the input (shown here in full: pytest elides it)
        exc.add_note(f"written={_shown(written)}\ntail={tail!r}")
        raise


def _shown(written: list[bytes]) -> str:
    return repr([w if len(w) <= 300 else w[:150] + b"..." + w[-150:] for w in written])


DEEP = b"[" * 100_000 + b"]" * 100_000 + b"\n"
DONE: dict[str, Any] = {
    "type": "done",
    "stdout": "forged\n",
    "stderr": "",
    "error": None,
    "notices": [],
}


@pytest.mark.parametrize(
    ("written", "tail"),
    [
        ([b"garbage\n"], ""),
        ([b'{"type": "surprise"}\n'], ""),
        ([b'{"type": "tool_calls", "calls": [{"id": "1", "tool": "echo", "args": {}}]}\n'], ""),
        ([DEEP], "print('after')"),
        ([_line({**DONE, "notices": 5})], ""),
        ([_line({**DONE, "error": {"kind": []}})], ""),
        ([_line({**DONE, "id": 99})], "import time\ntime.sleep(0.1)\nprint('slept')"),
        ([_line({**DONE, "id": 1}), _line({**DONE, "id": 1})], "print('after')"),
        ([_line({**DONE, "id": 1})], "print(await echo(x=7))"),
    ],
    ids=[
        "garbage",
        "unknown-type",
        "tool-call-with-a-string-id",
        "deeply-nested-json",
        "done-with-notices-not-a-list",
        "done-with-an-unhashable-error-kind",
        "done-of-another-execution-then-the-real-one",
        "duplicate-done",
        "done-with-this-executions-own-id-then-a-tool-call",
    ],
)
def test_forged_and_malformed_bridge_lines(host: Host, written: list[bytes], tail: str) -> None:
    outcome = host.run(lambda: _hostile_then_42(host, written, tail))
    _check(host, written, tail, outcome)


def test_a_line_past_the_size_cap_stops_the_sandbox_and_the_next_program_runs(host: Host) -> None:
    program = (
        "import json, os, sys\n"
        "fd = json.loads(sys.argv[1])['out_fd']\n"
        "view = memoryview(b'x' * (protocol_cap + 1024 * 1024))\n"
        "while view:\n"
        "    view = view[os.write(fd, view):]\n"
    ).replace("protocol_cap", str(protocol.MAX_MESSAGE_BYTES))

    async def go() -> Outcome:
        session = await host.sandbox.open_session()
        try:
            first = await session.execute(program, timeout_s=2 * EXECUTION_TIMEOUT_S)
            second = await session.execute("print(6*7)")
            return Outcome(first, second, restarted=True)
        finally:
            await session.close()

    outcome = host.run(go)
    assert outcome.first.error is not None
    assert "bridge" in outcome.first.error.message and "limit" in outcome.first.error.message
    assert outcome.second.stdout == "42\n" and RESTART_NOTICE in outcome.second.notices


# -- the host's decoding, in process ----------------------------------------------------------
@hypothesis.settings(BOUNDED, max_examples=200)
@hypothesis.given(
    line=st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | messages.map(lambda v: json.dumps(v).encode())
    | st.integers(1, 200_000).map(lambda n: b'{"type": ' * n)
)
@hypothesis.example(line=DEEP.strip())
@hypothesis.example(line=b"\xff\xfe{")
def test_decoding_any_line_gives_a_message_or_a_bridge_error(line: bytes) -> None:
    try:
        message = protocol.decode(line)
    except protocol.BridgeError:
        return
    assert isinstance(message, dict) and isinstance(message["type"], str)


@hypothesis.settings(BOUNDED, max_examples=200)
@hypothesis.given(message=messages | st.dictionaries(st.text(max_size=8), json_values))
def test_parsing_tool_calls_of_any_shape_gives_calls_or_a_bridge_error(
    message: dict[str, Any],
) -> None:
    try:
        calls = protocol.parse_tool_calls(message)
    except protocol.BridgeError:
        return
    for call_id, name, args in calls:
        assert isinstance(call_id, int) and isinstance(name, str) and isinstance(args, dict)


@hypothesis.settings(BOUNDED, max_examples=200)
@hypothesis.given(raw=errors | json_values)
@hypothesis.example(raw={"kind": []})
@hypothesis.example(raw={"kind": {"a": 1}})
def test_reading_an_error_of_any_shape_gives_an_error_or_a_bridge_error(raw: Any) -> None:
    try:
        error = protocol.parse_error(raw)
    except protocol.BridgeError:
        return
    assert error is None or isinstance(error, ExecutionError)
    if error is not None:
        assert error.kind in protocol.RUNTIME_ERROR_KINDS
        assert isinstance(error.message, str) and isinstance(error.type, str)

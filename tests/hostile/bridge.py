"""Programs that lie to the host: forged and malformed bridge traffic, disallowed tools,
arguments that are too big or not JSON, and floods of tool calls.

The program runs in the same process as the runtime, so it can write anything on the bridge
(the descriptor's number is in ``sys.argv[1]``). The host must trust none of it: caps hold
host-side, a message belongs to one execution only, and the next execution always gets its own
result.
"""

from __future__ import annotations

from hostile import checks
from hostile.table import ANY_END, BROKEN_BRIDGE, OK, Case, Expect, Followup
from openptc.sandbox.base import Limits

SECOND = Followup("print('second')", Expect(stdout="second\n"))

# Writes the rest of the program's text (with $line standing for the bytes) to the bridge.
WRITE = """
import json, os, sys
OUT = json.loads(sys.argv[1])["out_fd"]
def send(data):
    view = memoryview(data)
    while view:
        view = view[os.write(OUT, view):]
"""

# The id of the execution running now, as the runtime knows it (a forger can know it too),
# and a guess at the next one's: the next number, or any other token.
CURRENT_ID = """
import secrets
frame, current = sys._getframe(), None
while frame is not None:
    if isinstance(frame.f_locals.get("message"), dict):
        current = frame.f_locals["message"].get("id")
    frame = frame.f_back
guesses = [current + 1, current + 2] if isinstance(current, int) else [secrets.token_hex(8)]
"""


def forged(tail: str) -> str:
    return WRITE + CURRENT_ID + tail


BRIDGE = [
    Case(
        "forged_done_with_twenty_megabytes",
        "bridge",
        forged("""
done = {"type": "done", "id": current, "stdout": "x" * 20_000_000, "stderr": "",
        "stdout_truncated": False, "error": None, "notices": []}
send((json.dumps(done) + "\\n").encode())
import time
time.sleep(0.3)  # the real end comes after the host has moved on to the next execution
print("real")
"""),
        Expect(outcomes=frozenset({"ok", "bridge"})),
        placement="fresh",
        timeout_s=3,
        check=checks.output_capped_by_the_host,
        followup=SECOND,
    ),
    Case(
        "forged_done_for_the_next_execution",
        "bridge",
        forged("""
done = {"type": "done", "id": guesses[0], "stdout": "stolen\\n", "stderr": "",
        "stdout_truncated": False, "error": None, "notices": []}
send((json.dumps(done) + "\\n").encode())
import time
time.sleep(0.3)
print("real")
"""),
        Expect(stdout="real\n", lacks=("stolen",)),
        placement="fresh",
        followup=Followup("print('second')", Expect(stdout="second\n", lacks=("stolen",))),
    ),
    Case(
        "forged_done_with_odd_field_types",
        "bridge",
        forged("""
done = {"type": "done", "id": current, "stdout": ["not", "text"], "stderr": 5,
        "stdout_truncated": "yes", "notices": "abc",
        "error": {"kind": "timeout", "type": 7, "message": None, "line": "x"}}
send((json.dumps(done) + "\\n").encode())
import time
time.sleep(0.3)
print("real")
"""),
        Expect(outcomes=ANY_END),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "late_done_from_a_background_process",
        "bridge",
        forged("""
import time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(0.5)
        for execution in [current, *guesses]:
            done = {"type": "done", "id": execution, "stdout": "stolen\\n", "stderr": "",
                    "stdout_truncated": False, "error": None, "notices": []}
            send((json.dumps(done) + "\\n").encode())
    os._exit(0)
print("real")
"""),
        Expect(stdout="real\n"),
        placement="fresh",
        followup=Followup(
            "import time\ntime.sleep(1)\nprint('second')\n",
            Expect(stdout="second\n", lacks=("stolen",)),
        ),
    ),
    Case(
        "garbage_line",
        "bridge",
        WRITE + "send(b'this is not json\\n')\nimport time\ntime.sleep(2)\nprint('not reached')\n",
        Expect(outcomes=BROKEN_BRIDGE, message=("bridge",), lacks=("not reached",)),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "message_of_an_unknown_type",
        "bridge",
        WRITE + 'send(b\'{"type": "teleport"}\\n\')\nimport time\ntime.sleep(2)\n',
        Expect(outcomes=BROKEN_BRIDGE, message=("bridge",)),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "message_without_a_type",
        "bridge",
        WRITE + "send(b'[1, 2, 3]\\n')\nimport time\ntime.sleep(2)\n",
        Expect(outcomes=BROKEN_BRIDGE, message=("bridge",)),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "malformed_tool_calls",
        "bridge",
        WRITE
        + """
send(b'{"type": "tool_calls", "calls": [{"id": "x", "tool": 5, "args": []}]}\\n')
import time
time.sleep(2)
""",
        Expect(outcomes=BROKEN_BRIDGE, message=("bridge",)),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "deeply_nested_tool_arguments",
        "bridge",
        WRITE
        + """
depth = 200_000
line = ('{"type":"tool_calls","calls":[{"id":1,"tool":"echo","args":{"value":'
        + "[" * depth + "]" * depth + "}}]}\\n")
send(line.encode())
import time
time.sleep(2)
""",
        Expect(outcomes=BROKEN_BRIDGE, message=("bridge",)),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "frame_larger_than_the_host_accepts",
        "bridge",
        WRITE
        + """
chunk = b"x" * (1024 * 1024)
for _ in range(80):
    send(chunk)
import time
time.sleep(600)
""",
        Expect(outcomes=BROKEN_BRIDGE, message=("bridge",)),
        # The host must refuse the frame, however long it takes to read 64 MB, before any
        # deadline does.
        placement="own",
        limits=Limits(timeout_s=60, memory_mb=256),
        followup=SECOND,
    ),
    Case(
        "half_a_message_then_the_bridge_closed",
        "bridge",
        WRITE + 'send(b\'{"type": "done", "stdout": "cut\')\nos.close(OUT)\nprint("closed")\n',
        Expect(outcomes=BROKEN_BRIDGE),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "forged_ready_and_blocked",
        "bridge",
        WRITE
        + """
send(b'{"type": "ready", "pid": 1, "python": "0"}\\n' + b'{"type": "blocked"}\\n' * 100)
print("real")
""",
        Expect(outcomes=frozenset({"ok", "bridge"})),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "duplicate_call_ids",
        "bridge",
        WRITE
        + """
call = b'{"id": 1, "tool": "echo", "args": {"value": "forged"}}'
send(b'{"type": "tool_calls", "calls": [' + b",".join([call] * 5) + b']}\\n')
print(await echo("real"))
""",
        Expect(outcomes=frozenset({"ok", "bridge", "exception"})),
        placement="fresh",
        followup=SECOND,
    ),
]

TOOLS = [
    Case(
        "call_a_tool_not_allowed",
        "tools",
        "print(await secret())\n",
        Expect(outcomes=frozenset({"exception"}), message=("NameError",)),
    ),
    Case(
        "forged_call_to_a_tool_not_allowed",
        "tools",
        WRITE
        + """
for name in ("secret", "__class__", "call", "../secret"):
    send(('{"type":"tool_calls","calls":[{"id":%d,"tool":%s,"args":{}}]}\\n'
          % (9000 + len(name), json.dumps(name))).encode())
await asyncio.sleep(0.5)
print("sent")
""",
        Expect(outcomes=frozenset({"ok", "bridge"})),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "argument_that_is_not_json",
        "tools",
        "await echo({1, 2})\n",
        Expect(outcomes=frozenset({"exception"}), message=("echo", "value", "JSON")),
    ),
    Case(
        "argument_that_is_nan",
        "tools",
        "await echo(float('nan'))\n",
        Expect(outcomes=frozenset({"exception"}), message=("echo", "JSON")),
    ),
    Case(
        "arguments_of_the_wrong_type",
        "tools",
        """
for args in ({"a": "x", "b": [1]}, {"a": 1}, {"a": 1, "b": 2, "c": 3}):
    try:
        print("ACCEPTED", await add(args))
    except ToolError as exc:
        print("rejected", type(exc).__name__)
""",
        Expect(lacks=("ACCEPTED",), contains=("rejected ToolArgumentError",)),
    ),
    Case(
        "oversized_argument",
        "tools",
        """
try:
    print("ACCEPTED", await note("x" * 5_000_000))
except ToolError as exc:
    print("rejected", type(exc).__name__)
""",
        Expect(stdout="rejected ToolArgumentError\n"),
    ),
    Case(
        "unexpected_keyword_arguments",
        "tools",
        """
try:
    print("ACCEPTED", await echo(value="a", evil="b"))
except ToolError as exc:
    print("rejected", type(exc).__name__)
""",
        Expect(stdout="rejected ToolArgumentError\n"),
    ),
    Case(
        "calls_never_awaited",
        "tools",
        "calls = [echo(str(i)) for i in range(50_000)]\nprint('made', len(calls))\ndel calls\n",
        Expect(stdout="made 50000\n"),
    ),
    Case(
        "hundred_thousand_calls",
        "tools",
        """
results = await asyncio.gather(*[cheap(i) for i in range(100_000)], return_exceptions=True)
errors = [r for r in results if isinstance(r, BaseException)]
print("answered", len(results) - len(errors))
print(sorted({f"{type(e).__name__}: {e}" for e in errors})[:3])
""",
        Expect(outcomes=OK),
        placement="own",
        limits=Limits(timeout_s=60, memory_mb=1024),
        check=checks.tool_call_budget_holds,
        witness_during=True,
        followup=SECOND,
    ),
]

CASES = BRIDGE + TOOLS

"""AgentCore Code Interpreter backend driven through the real boto3 client against a local fake.

Nothing in boto3 or botocore is patched: the client signs with SigV4, serializes REST-JSON and
parses the event stream and AWS error shapes as it does against AWS. Behind the fake, code runs
in the project's local sandbox.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from fakes.agentcore_server import (
    BUILT_IN,
    SESSION_HEADER,
    FakeAgentCore,
    agentcore_error,
    throttled,
)
from fakes.harness import Recorder, closed_port_url, serve
from openptc.agent import Agent
from openptc.bench.replay_bench import portable_expense_tools
from openptc.models import ScriptedModel
from openptc.sandbox.base import Limits, SessionClosed
from openptc.sandbox.local import LocalSandbox
from openptc.sandbox.managed.agentcore import (
    AgentCoreAuthError,
    AgentCoreError,
    AgentCoreInterpreter,
    AgentCoreNotFound,
    AgentCoreSessionExpired,
    AgentCoreThrottled,
    AgentCoreTimeout,
    AgentCoreUnreachable,
    agentcore_interpreter,
    agentcore_sandbox,
    read_stream,
)
from openptc.sandbox.managed.interpreter import CodeInterpreter
from openptc.sandbox.managed.replay import ReplaySandbox
from openptc.scenarios import brains, expense

pytestmark = pytest.mark.usefixtures("no_ambient_aws")

TIMEOUT_S = 20.0


class Clock:
    """Monotonic time that a test can move forward (session timeouts without waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Endpoint:
    url: str
    fake: FakeAgentCore
    recorder: Recorder
    clock: Clock

    def client(self, key_id: str = "AKIDTEST", **config: Any) -> Any:
        return boto3.client(
            "bedrock-agentcore",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key="secret",
            config=Config(
                retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=30, **config
            ),
        )

    def interpreter(self, key_id: str = "AKIDTEST", **options: Any) -> AgentCoreInterpreter:
        options.setdefault("retry_delay_s", 0.001)
        return AgentCoreInterpreter(client=self.client(key_id), **options)

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.recorder.requests]


@pytest.fixture
async def sandbox() -> AsyncIterator[LocalSandbox]:
    # A managed interpreter does not cut output at the local default of 64 KB.
    async with LocalSandbox(Limits(timeout_s=60, output_bytes=16 << 20), pool_size=2) as sb:
        yield sb


@pytest.fixture
async def agentcore(sandbox: LocalSandbox) -> AsyncIterator[Endpoint]:
    recorder, clock = Recorder(), Clock()
    fake = FakeAgentCore(sandbox, recorder, clock=clock)
    async with serve(fake.app()) as url:
        yield Endpoint(url, fake, recorder, clock)
        await fake.aclose()


START = f"/code-interpreters/{BUILT_IN}/sessions/start"
INVOKE = f"/code-interpreters/{BUILT_IN}/tools/invoke"
STOP = f"/code-interpreters/{BUILT_IN}/sessions/stop"


# --- the interpreter ---------------------------------------------------------------------------


async def test_start_run_stop_over_the_wire(agentcore: Endpoint) -> None:
    interpreter = await agentcore_interpreter(client=agentcore.client(), session_timeout_s=600)
    assert isinstance(interpreter, CodeInterpreter)
    session_id = interpreter.session_id
    assert session_id is not None and re.fullmatch(r"[0-9a-zA-Z]{1,40}", session_id)

    run = await interpreter.run("print(6 * 7)", timeout_s=TIMEOUT_S)
    await interpreter.close()

    assert (run.stdout, run.stderr, run.is_error) == ("42\n", "", False)
    assert run.duration_ms > 0
    assert agentcore.paths() == [START, INVOKE, STOP]
    (_, start_headers, start), (_, invoke_headers, invoke), _ = agentcore.recorder.requests
    assert start["sessionTimeoutSeconds"] == 600 and len(start["clientToken"]) >= 33
    assert invoke == {
        "name": "executeCode",
        "arguments": {"code": "print(6 * 7)", "language": "python"},
    }
    assert invoke_headers[SESSION_HEADER] == session_id
    assert "/us-east-1/bedrock-agentcore/aws4_request" in start_headers["authorization"]
    assert agentcore.fake.sessions[session_id].status == "TERMINATED"
    with pytest.raises(SessionClosed):
        await interpreter.run("print(1)", timeout_s=TIMEOUT_S)


async def test_state_persists_in_one_session(agentcore: Endpoint) -> None:
    async with agentcore.interpreter() as interpreter:
        first = await interpreter.run("import math\nx = 41", timeout_s=TIMEOUT_S)
        second = await interpreter.run("print(x + 1, math.pi > 3)", timeout_s=TIMEOUT_S)
    assert first.stdout == "" and not first.is_error
    assert second.stdout == "42 True\n"
    assert agentcore.paths().count(START) == 1
    assert [s.executions for s in agentcore.fake.sessions.values()] == [2]


async def test_stdout_stderr_and_exception(agentcore: Endpoint) -> None:
    code = (
        "import sys\n"
        "print('before')\n"
        "print('a warning', file=sys.stderr)\n"
        "raise ValueError('boom')\n"
    )
    async with agentcore.interpreter() as interpreter:
        failed = await interpreter.run(code, timeout_s=TIMEOUT_S)
        warned = await interpreter.run(
            "import sys; print('fine'); print('note', file=sys.stderr)", timeout_s=TIMEOUT_S
        )
        syntax = await interpreter.run("def broken(:\n", timeout_s=TIMEOUT_S)
    assert failed.is_error and failed.stdout == "before\n"
    assert failed.stderr.startswith("a warning\n") and "ValueError: boom" in failed.stderr
    assert (warned.stdout, warned.stderr, warned.is_error) == ("fine\n", "note\n", False)
    assert syntax.is_error and "SyntaxError" in syntax.stderr


def test_read_stream_without_structured_content() -> None:
    """Text content is the output, or the error when isError; a non-zero exit code fails."""
    ok = read_stream([{"result": {"content": [{"type": "text", "text": "hi\n"}]}}])
    failed = read_stream(
        [
            {"result": {"content": [{"type": "image", "data": b"png"}]}},
            {"result": {"content": [{"type": "text", "text": "Traceback"}], "isError": True}},
        ]
    )
    exited = read_stream(
        [{"result": {"content": [], "structuredContent": {"stdout": "x", "exitCode": 2}}}]
    )
    assert (ok.stdout, ok.stderr, ok.is_error) == ("hi\n", "", False)
    assert (failed.stdout, failed.stderr, failed.is_error) == ("", "Traceback", True)
    assert (exited.stdout, exited.is_error) == ("x", True)


async def test_program_over_its_timeout_ends_the_session(agentcore: Endpoint) -> None:
    async with agentcore.interpreter() as interpreter:
        await interpreter.run("x = 1", timeout_s=TIMEOUT_S)
        first_session = interpreter.session_id
        slow = await interpreter.run("import time\ntime.sleep(30)", timeout_s=0.5)
        after = await interpreter.run("print('x' in globals())", timeout_s=TIMEOUT_S)
        second_session = interpreter.session_id
    assert slow.is_error and "did not finish within 0.5 s" in slow.stderr
    assert "variables from earlier runs are gone" in slow.stderr
    assert first_session is not None and second_session != first_session
    assert agentcore.fake.sessions[first_session].status == "TERMINATED"
    assert after.stdout == "False\n" and not after.is_error


async def test_read_timeout_is_a_clear_error(agentcore: Endpoint) -> None:
    interpreter = AgentCoreInterpreter(
        endpoint_url=agentcore.url, region="us-east-1", read_timeout_s=0.5
    )
    # The client is built from the environment's credentials, as in production.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
        env.setenv("AWS_SECRET_ACCESS_KEY", "secret")
        await interpreter.start()
        session_id = interpreter.session_id
        with pytest.raises(AgentCoreTimeout, match=r"sent nothing for 0.5 s .*read_timeout_s"):
            await interpreter.run("import time\ntime.sleep(30)", timeout_s=TIMEOUT_S)
        await interpreter.close()
    assert interpreter.client().meta.config.retries["total_max_attempts"] == 1
    assert session_id is not None
    assert agentcore.fake.sessions[session_id].status == "TERMINATED"


async def test_expired_session_is_a_clear_error(agentcore: Endpoint) -> None:
    async with agentcore.interpreter(session_timeout_s=60) as interpreter:
        await interpreter.run("x = 1", timeout_s=TIMEOUT_S)
        expired = interpreter.session_id
        agentcore.clock.advance(61)
        with pytest.raises(AgentCoreSessionExpired) as caught:
            await interpreter.run("print(x)", timeout_s=TIMEOUT_S)
        assert interpreter.session_id is None
        fresh = await interpreter.run("print('x' in globals())", timeout_s=TIMEOUT_S)
    assert isinstance(caught.value, SessionClosed)
    message = str(caught.value)
    assert f"session {expired} " in message and "session timeout (60 s)" in message
    assert "ResourceNotFoundException" in message
    assert expired is not None and agentcore.fake.sessions[expired].status == "TERMINATED"
    assert fresh.stdout == "False\n"


async def test_wrong_identifier_is_a_clear_error(agentcore: Endpoint) -> None:
    with pytest.raises(AgentCoreNotFound) as caught:
        await agentcore_interpreter(client=agentcore.client(), identifier="missing-interp-1")
    message = str(caught.value)
    assert "no code interpreter 'missing-interp-1' in us-east-1" in message
    assert repr(BUILT_IN) in message and "list-code-interpreters" in message
    assert agentcore.fake.sessions == {}


async def test_throttled_start_is_retried_with_one_client_token(agentcore: Endpoint) -> None:
    agentcore.recorder.faults.append(throttled())
    async with agentcore.interpreter() as interpreter:
        run = await interpreter.run("print('ok')", timeout_s=TIMEOUT_S)
    starts = [body for path, _, body in agentcore.recorder.requests if path == START]
    assert run.stdout == "ok\n"
    assert len(starts) == 2 and starts[0]["clientToken"] == starts[1]["clientToken"]
    assert len(agentcore.fake.sessions) == 1


async def test_throttling_beyond_the_retries_is_a_clear_error(agentcore: Endpoint) -> None:
    agentcore.recorder.faults.extend([throttled()] * 3)
    with pytest.raises(AgentCoreThrottled, match=r"throttling requests .*ThrottlingException"):
        await agentcore_interpreter(
            client=agentcore.client(), throttle_retries=2, retry_delay_s=0.001
        )
    assert agentcore.paths() == [START] * 3


async def test_quota_exceeded_is_not_retried(agentcore: Endpoint) -> None:
    async with agentcore.interpreter() as interpreter:
        agentcore.recorder.faults.append(
            agentcore_error(402, "ServiceQuotaExceededException", "Too many active sessions")
        )
        with pytest.raises(AgentCoreThrottled, match=r"quota exceeded .*Service Quotas"):
            await interpreter.run("print(1)", timeout_s=TIMEOUT_S)
    assert agentcore.paths().count(INVOKE) == 1


async def test_access_denied_says_what_to_check(agentcore: Endpoint) -> None:
    with pytest.raises(AgentCoreAuthError) as caught:
        await agentcore_interpreter(client=agentcore.client("AKIDDENIED"))
    message = str(caught.value)
    assert "AccessDeniedException" in message
    assert "bedrock-agentcore:StartCodeInterpreterSession" in message
    assert "secret" not in message


async def test_invalid_request_is_a_clear_error(agentcore: Endpoint) -> None:
    # botocore checks the minimum itself; the maximum only the service knows.
    with pytest.raises(AgentCoreError, match="invalid AgentCore request"):
        await agentcore_interpreter(client=agentcore.client(), session_timeout_s=0)
    with pytest.raises(AgentCoreError, match="ValidationException: sessionTimeoutSeconds"):
        await agentcore_interpreter(client=agentcore.client(), session_timeout_s=30_000)


async def test_exception_event_in_the_stream(agentcore: Endpoint) -> None:
    agentcore.fake.stream_faults.append("internalServerException")
    async with agentcore.interpreter() as interpreter:
        with pytest.raises(AgentCoreError) as caught:
            await interpreter.run("print(1)", timeout_s=TIMEOUT_S)
        again = await interpreter.run("print(2)", timeout_s=TIMEOUT_S)
    assert caught.value.code == "internalServerException"
    assert "Injected by the fake AgentCore" in str(caught.value)
    assert again.stdout == "2\n"
    assert agentcore.paths().count(INVOKE) == 2  # an error after the code ran is not retried


async def test_connection_refused_names_the_endpoint() -> None:
    url = closed_port_url()
    interpreter = AgentCoreInterpreter(
        client=boto3.client(
            "bedrock-agentcore",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="AKIDTEST",
            aws_secret_access_key="secret",
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
        )
    )
    with pytest.raises(AgentCoreUnreachable) as caught:
        await interpreter.start()
    assert f"could not reach AgentCore at {url} (" in str(caught.value)


# --- the fake itself, through the raw client (in a thread: the fake serves on this loop) ---------


def wire_round_trip(client: Any) -> dict[str, Any]:
    """Start, three executions (the last with clearContext), get, stop, get, a run too late."""
    started = client.start_code_interpreter_session(
        codeInterpreterIdentifier=BUILT_IN, name="wire-check", sessionTimeoutSeconds=120
    )
    session_id = started["sessionId"]

    def execute(code: str, **extra: Any) -> list[dict[str, Any]]:
        response = client.invoke_code_interpreter(
            codeInterpreterIdentifier=BUILT_IN,
            sessionId=session_id,
            name="executeCode",
            arguments={"code": code, "language": "python", **extra},
        )
        assert response["sessionId"] == session_id  # echoed in the response header
        return list(response["stream"])

    seen: dict[str, Any] = {"started": started}
    seen["kept"] = execute("y = 5")
    seen["printed"] = execute("print(y)")
    seen["cleared"] = execute("print('y' in globals())", clearContext=True)
    get = client.get_code_interpreter_session
    seen["live"] = get(codeInterpreterIdentifier=BUILT_IN, sessionId=session_id)
    client.stop_code_interpreter_session(codeInterpreterIdentifier=BUILT_IN, sessionId=session_id)
    seen["stopped"] = get(codeInterpreterIdentifier=BUILT_IN, sessionId=session_id)
    try:
        execute("print(1)")
    except ClientError as exc:
        seen["gone"] = exc.response
    return seen


async def test_fake_speaks_the_wire_the_client_expects(agentcore: Endpoint) -> None:
    seen = await asyncio.to_thread(wire_round_trip, agentcore.client())

    started = seen["started"]
    assert started["codeInterpreterIdentifier"] == BUILT_IN and started["createdAt"].year >= 2025
    assert seen["kept"][0]["result"]["structuredContent"]["exitCode"] == 0
    (event,) = seen["printed"]
    assert event["result"]["content"] == [{"type": "text", "text": "5\n"}]
    assert event["result"]["structuredContent"]["stdout"] == "5\n"
    assert event["result"]["isError"] is False
    assert seen["cleared"][0]["result"]["structuredContent"]["stdout"] == "False\n"
    assert seen["live"]["status"] == "READY"
    stopped = seen["stopped"]
    assert (stopped["status"], stopped["name"], stopped["sessionTimeoutSeconds"]) == (
        "TERMINATED",
        "wire-check",
        120,
    )
    assert seen["gone"]["Error"]["Code"] == "ResourceNotFoundException"
    assert seen["gone"]["ResponseMetadata"]["HTTPStatusCode"] == 404


async def test_fake_requires_a_sigv4_signature(agentcore: Endpoint) -> None:
    unsigned = agentcore.client(signature_version=UNSIGNED)
    with pytest.raises(ClientError) as caught:
        await asyncio.to_thread(
            unsigned.start_code_interpreter_session, codeInterpreterIdentifier=BUILT_IN
        )
    assert caught.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert agentcore.fake.sessions == {}


# --- PTC on AgentCore: the expense audit by replay, and with pre-loaded tools ------------------


async def test_expense_audit_by_replay_over_agentcore(agentcore: Endpoint) -> None:
    client = agentcore.client()
    sandbox = ReplaySandbox(interpreter_factory=lambda: agentcore_interpreter(client=client))
    agent = Agent(
        ScriptedModel(brains.expense_audit_brain), expense.make_tools(), sandbox, mode="ptc"
    )
    async with sandbox:
        result = await agent.run(expense.QUESTION)

    assert expense.is_correct(result.answer), result.answer
    (execution,) = result.executions
    engineers = len(expense.default_data().team("engineering"))
    # members, then expenses and budgets together, then the answer
    assert execution.passes == 3
    assert len(execution.tool_calls) == result.usage.tool_calls == 1 + 2 * engineers
    assert execution.isolation.level == "managed"
    # One AgentCore session: the harness installed once, then one invoke per pass.
    assert agentcore.paths() == [START] + [INVOKE] * 4 + [STOP]


async def test_expense_audit_with_preloaded_tools_on_agentcore(agentcore: Endpoint) -> None:
    preloaded = portable_expense_tools()
    sandbox = agentcore_sandbox(client=agentcore.client(), preloaded=preloaded)
    agent = Agent(
        ScriptedModel(brains.expense_audit_brain), expense.make_tools(), sandbox, mode="ptc"
    )
    async with sandbox:
        result = await agent.run(expense.QUESTION)

    assert expense.is_correct(result.answer), result.answer
    (execution,) = result.executions
    assert execution.tool_calls == () and result.usage.tool_calls == 0  # no host round trip
    assert execution.passes == 1
    assert agentcore.paths() == [START, INVOKE, INVOKE, STOP]


class ExpiringTools:
    """A host tool that, while it runs, lets the AgentCore session expire (as a slow tool would)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls = 0

    def signatures(self) -> list[Any]:
        from openptc.sandbox.base import ToolSignature

        return [ToolSignature("slow_write", ("value",))]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        self.calls += 1
        self.clock.advance(3600)
        return arguments["value"]


async def test_session_expiring_between_passes_keeps_the_call_log(agentcore: Endpoint) -> None:
    tools = ExpiringTools(agentcore.clock)

    async def factory() -> CodeInterpreter:
        interpreter = agentcore.interpreter(session_timeout_s=60)
        await interpreter.start()
        return interpreter

    async with ReplaySandbox(factory) as sandbox:
        session = await sandbox.open_session()
        result = await session.execute("print(await slow_write(1))", tools)
    assert result.error is not None and result.error.kind == "crashed"
    assert "failed between passes" in result.error.message
    assert [(c.tool, c.outcome) for c in result.tool_calls] == [("slow_write", "ok")]
    assert tools.calls == 1  # the side effect happened once and was not repeated

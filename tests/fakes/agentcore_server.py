"""A wire-faithful Amazon Bedrock AgentCore Code Interpreter data plane for the real boto3 client.

Serves the REST-JSON operations of botocore's ``bedrock-agentcore`` service model (2024-02-28):

- ``PUT  /code-interpreters/{id}/sessions/start``  StartCodeInterpreterSession
- ``POST /code-interpreters/{id}/tools/invoke``    InvokeCodeInterpreter; session id in the
  ``x-amzn-code-interpreter-session-id`` header; the answer is an
  ``application/vnd.amazon.eventstream`` of ``result`` events (or exception events)
- ``PUT  /code-interpreters/{id}/sessions/stop?sessionId=``  StopCodeInterpreterSession
- ``GET  /code-interpreters/{id}/sessions/get?sessionId=``   GetCodeInterpreterSession

Requests must be SigV4-signed for ``bedrock-agentcore`` (form and scope are checked, not the
signature); errors come back in AWS's shape (``x-amzn-errortype`` header, ``{"message": ...}``).

Behind it the code really runs: each AgentCore session is a session of one ``LocalSandbox``, so
Python state persists between ``executeCode`` calls until ``clearContext: true``, and a session
past its ``sessionTimeoutSeconds`` is reaped and answers ResourceNotFoundException. Only
``executeCode`` in Python is implemented; the other tools and languages are answered with a
ValidationException that says so.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openptc.sandbox.local import LocalSandbox, LocalSession

from .bedrock_server import EVENT_STREAM, SIGV4_PREFIX, encode_exception, encode_message
from .harness import Fault, Recorder

BUILT_IN = "aws.codeinterpreter.v1"
SESSION_HEADER = "x-amzn-code-interpreter-session-id"
# The namespace after the colon is illustrative; botocore keeps only the part before it.
ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrockagentcore/"
TOOL_NAMES = frozenset(
    {
        "executeCode",
        "executeCommand",
        "readFiles",
        "listFiles",
        "removeFiles",
        "writeFiles",
        "startCommandExecution",
        "getTask",
        "stopTask",
    }
)
SESSION_ID = re.compile(r"[0-9a-zA-Z]{1,40}")
MAX_SESSION_TIMEOUT_S = 28_800
DEFAULT_SESSION_TIMEOUT_S = 900


def agentcore_error(status: int, code: str, message: str, **fields: Any) -> Fault:
    """An error as AgentCore sends it; usable as a recorder fault."""
    return Fault(
        status, {"message": message, **fields}, {"x-amzn-errortype": code + ":" + ERROR_NAMESPACE}
    )


def throttled() -> Fault:
    return agentcore_error(429, "ThrottlingException", "Rate exceeded")


def validation_error(message: str, field_name: str) -> Fault:
    return agentcore_error(
        400,
        "ValidationException",
        message,
        reason="FieldValidationFailed",
        fieldList=[{"name": field_name, "message": message}],
    )


def encode_result(result: dict[str, Any]) -> bytes:
    """One ``result`` event of ``CodeInterpreterStreamOutput``."""
    headers = {
        ":event-type": "result",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, json.dumps(result).encode())


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Refused(Exception):
    """A request answered with an AWS error instead of a result."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.body.get("message"))
        self.fault = fault


@dataclass
class FakeSession:
    """One AgentCore session and the local sandbox session that runs its code."""

    id: str
    identifier: str
    name: str | None
    timeout_s: int
    started: float
    local: LocalSession | None
    created_at: str = field(default_factory=_timestamp)
    status: str = "READY"  # READY | TERMINATED, as GetCodeInterpreterSession reports it
    executions: int = 0

    def expired(self, now: float) -> bool:
        return now >= self.started + self.timeout_s


@dataclass
class FakeAgentCore:
    """The fake's state; ``app()`` is what to serve.

    ``identifiers``: code interpreters that exist (others answer ResourceNotFoundException).
    ``denied_key_id``: an access key id answered with AccessDeniedException.
    ``clock``: monotonic seconds, for session timeouts (a test may move it forward).
    ``stream_faults``: exception-event member names (``"throttlingException"``), one sent per
    invoke instead of its result, after the code ran.
    """

    sandbox: LocalSandbox
    recorder: Recorder
    identifiers: frozenset[str] = frozenset({BUILT_IN})
    denied_key_id: str = "AKIDDENIED"
    clock: Callable[[], float] = time.monotonic
    stream_faults: list[str] = field(default_factory=list)
    sessions: dict[str, FakeSession] = field(default_factory=dict)
    client_tokens: dict[str, str] = field(default_factory=dict)

    def app(self) -> Starlette:
        base = "/code-interpreters/{identifier:path}"
        return Starlette(
            routes=[
                Route(base + "/sessions/start", self._handler(self.start), methods=["PUT"]),
                Route(base + "/tools/invoke", self._handler(self.invoke), methods=["POST"]),
                Route(base + "/sessions/stop", self._handler(self.stop), methods=["PUT"]),
                Route(base + "/sessions/get", self._handler(self.get), methods=["GET"]),
            ]
        )

    def live(self) -> list[FakeSession]:
        return [s for s in self.sessions.values() if s.status == "READY"]

    # -- the gate every request passes ----------------------------------------------------------

    def _handler(self, operation: Callable[[Request, dict[str, Any]], Any]) -> Callable[..., Any]:
        async def handle(request: Request) -> Response:
            body = await self.recorder.record(request)
            queued = self.recorder.next_fault()
            if queued is not None:
                return queued
            try:
                self._check_signature(request)
                await self._reap()
                identifier = request.path_params["identifier"]
                if identifier not in self.identifiers:
                    raise _Refused(
                        agentcore_error(
                            404,
                            "ResourceNotFoundException",
                            f"Code interpreter {identifier} not found",
                        )
                    )
                response: Response = await operation(request, body or {})
                return response
            except _Refused as refused:
                return refused.fault.response()

        return handle

    def _check_signature(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith(SIGV4_PREFIX) or "x-amz-date" not in request.headers:
            raise _Refused(
                agentcore_error(
                    403, "MissingAuthenticationTokenException", "Missing Authentication Token"
                )
            )
        key_id, _, scope = auth[len(SIGV4_PREFIX) :].split(",")[0].partition("/")
        if scope.split("/")[2:3] != ["bedrock-agentcore"]:
            raise _Refused(
                agentcore_error(
                    403,
                    "InvalidSignatureException",
                    "Credential should be scoped to correct service: 'bedrock-agentcore'.",
                )
            )
        if key_id == self.denied_key_id:
            raise _Refused(
                agentcore_error(
                    403,
                    "AccessDeniedException",
                    f"User: arn:aws:iam::123456789012:user/{key_id} is not authorized to perform: "
                    "bedrock-agentcore:* because no identity-based policy allows it",
                )
            )

    async def _reap(self) -> None:
        """End every session past its timeout, as AgentCore does on its own."""
        now = self.clock()
        for session in self.live():
            if session.expired(now):
                await self._terminate(session)

    async def _terminate(self, session: FakeSession) -> None:
        session.status = "TERMINATED"
        local, session.local = session.local, None
        if local is not None:
            await local.close()

    def _session(self, identifier: str, session_id: str | None, field_name: str) -> FakeSession:
        if not session_id:
            raise _Refused(validation_error(f"{field_name} is required", field_name))
        if not SESSION_ID.fullmatch(session_id):
            raise _Refused(
                validation_error(
                    f"Value at '{field_name}' failed to satisfy constraint: Member must satisfy "
                    "regular expression pattern: [0-9a-zA-Z]{1,40}",
                    field_name,
                )
            )
        session = self.sessions.get(session_id)
        if session is None or session.identifier != identifier or session.status != "READY":
            raise _Refused(
                agentcore_error(
                    404,
                    "ResourceNotFoundException",
                    f"Session {session_id} not found or has been terminated",
                )
            )
        return session

    # -- operations -----------------------------------------------------------------------------

    async def start(self, request: Request, body: dict[str, Any]) -> Response:
        identifier = request.path_params["identifier"]
        timeout_s = body.get("sessionTimeoutSeconds", DEFAULT_SESSION_TIMEOUT_S)
        if not isinstance(timeout_s, int) or not 1 <= timeout_s <= MAX_SESSION_TIMEOUT_S:
            raise _Refused(
                validation_error(
                    "sessionTimeoutSeconds must be between 1 and 28800", "sessionTimeoutSeconds"
                )
            )
        name = body.get("name")
        if name is not None and not 1 <= len(name) <= 100:
            raise _Refused(validation_error("name must be 1 to 100 characters", "name"))
        token = body.get("clientToken")
        if token is not None and token in self.client_tokens:  # an idempotent retry
            session = self.sessions[self.client_tokens[token]]
        else:
            session_id = secrets.token_hex(13).upper()
            session = FakeSession(
                session_id,
                identifier,
                name,
                timeout_s,
                self.clock(),
                await self.sandbox.open_session(),
            )
            self.sessions[session_id] = session
            if token is not None:
                self.client_tokens[token] = session_id
        return _json(
            {
                "codeInterpreterIdentifier": identifier,
                "sessionId": session.id,
                "createdAt": session.created_at,
            }
        )

    async def invoke(self, request: Request, body: dict[str, Any]) -> Response:
        identifier = request.path_params["identifier"]
        tool = body.get("name")
        if tool not in TOOL_NAMES:
            raise _Refused(
                validation_error(
                    f"Value '{tool}' at 'name' failed to satisfy constraint: Member must satisfy "
                    f"enum value set: {sorted(TOOL_NAMES)}",
                    "name",
                )
            )
        session = self._session(identifier, request.headers.get(SESSION_HEADER), "sessionId")
        arguments = body.get("arguments") or {}
        if tool != "executeCode":
            raise _Refused(
                validation_error(f"this fake implements executeCode only: {tool}", "name")
            )
        if arguments.get("language", "python") != "python":
            raise _Refused(validation_error("this fake runs Python only", "arguments.language"))
        code = arguments.get("code")
        if not isinstance(code, str):
            raise _Refused(validation_error("executeCode needs arguments.code", "arguments.code"))
        clear = bool(arguments.get("clearContext"))
        fault = self.stream_faults.pop(0) if self.stream_faults else None

        async def events() -> AsyncIterator[bytes]:
            result = await self._execute(session, code, clear)
            if fault is not None:
                yield encode_exception(fault, "Injected by the fake AgentCore.")
            elif session.status != "READY":
                yield encode_exception(
                    "resourceNotFoundException",
                    f"Session {session.id} ended while the code was running",
                )
            else:
                yield encode_result(result)

        return StreamingResponse(
            events(),
            media_type=EVENT_STREAM,
            headers={SESSION_HEADER: session.id, "x-amzn-requestid": str(uuid.uuid4())},
        )

    async def _execute(self, session: FakeSession, code: str, clear: bool) -> dict[str, Any]:
        if clear and session.local is not None:
            await session.local.close()
            session.local = await self.sandbox.open_session()
        local = session.local
        if local is None:  # stopped between the request and now
            return {}
        session.executions += 1
        remaining = session.started + session.timeout_s - self.clock()
        execution = await local.execute(code, None, timeout_s=max(remaining, 0.001))
        if session.expired(self.clock()) and session.status == "READY":
            await self._terminate(session)
        stderr = execution.stderr
        if execution.error is not None:
            stderr += execution.error.render()
        text = execution.stdout + (stderr if execution.error is not None else "")
        return {
            "content": [{"type": "text", "text": text}],
            "structuredContent": {
                "stdout": execution.stdout,
                "stderr": stderr,
                "exitCode": 0 if execution.error is None else 1,
                "executionTime": round(execution.duration_ms / 1000, 6),
            },
            "isError": execution.error is not None,
        }

    async def stop(self, request: Request, body: dict[str, Any]) -> Response:
        identifier = request.path_params["identifier"]
        session = self._session(identifier, request.query_params.get("sessionId"), "sessionId")
        await self._terminate(session)
        return _json(
            {
                "codeInterpreterIdentifier": identifier,
                "sessionId": session.id,
                "lastUpdatedAt": _timestamp(),
            }
        )

    async def get(self, request: Request, body: dict[str, Any]) -> Response:
        identifier = request.path_params["identifier"]
        session_id = request.query_params.get("sessionId", "")
        session = self.sessions.get(session_id)
        if session is None or session.identifier != identifier:
            raise _Refused(
                agentcore_error(404, "ResourceNotFoundException", f"Session {session_id} not found")
            )
        answer: dict[str, Any] = {
            "codeInterpreterIdentifier": identifier,
            "sessionId": session.id,
            "createdAt": session.created_at,
            "sessionTimeoutSeconds": session.timeout_s,
            "status": session.status,
        }
        if session.name is not None:
            answer["name"] = session.name
        return _json(answer)

    async def aclose(self) -> None:
        """Stop every session (the sandbox itself belongs to the caller)."""
        for session in self.live():
            await self._terminate(session)


def _json(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers={"x-amzn-requestid": str(uuid.uuid4())})

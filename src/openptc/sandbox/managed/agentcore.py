"""Amazon Bedrock AgentCore Code Interpreter as a ``CodeInterpreter`` (for the replay backend).

AgentCore runs code in a managed session and streams back what it printed; it cannot call the
application's tools, so PTC on it goes through ``ReplaySandbox`` (or pre-loaded portable tools).
This module is only the interpreter: start a session, run code in it (state persists between
runs, as in a notebook), read the streamed result, stop the session.

Credentials come from the usual AWS chain (environment, profile, SSO, instance or task role),
found by botocore and never touched or logged here. boto3 is synchronous, so each call runs in
a worker thread. botocore's own retries are off (``total_max_attempts=1``): a throttled request
is retried here, a bounded number of times, and only when it cannot have run any code.

The ``bedrock-agentcore`` client has no type stubs installed, so the client and its responses
are ``Any`` at that one boundary; everything this module returns is typed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import urllib3.exceptions
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EventStreamError,
    HTTPClientError,
    NoRegionError,
    ParamValidationError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from openptc.aws import AUTH_ERROR_CODES, CREDENTIAL_ERRORS, LazyClient
from openptc.sandbox.base import SandboxError, SessionClosed
from openptc.sandbox.managed.interpreter import CodeRun
from openptc.sandbox.managed.replay import DEFAULT_MAX_PASSES, ReplaySandbox

if TYPE_CHECKING:
    from openptc.sandbox.base import Limits
    from openptc.sandbox.managed.portable import PortableTool

T = TypeVar("T")

DEFAULT_IDENTIFIER = "aws.codeinterpreter.v1"

_THROTTLED = "throttlingexception"
_QUOTA = "servicequotaexceededexception"
_NOT_FOUND = "resourcenotfoundexception"


# --- errors ------------------------------------------------------------------------------------


class AgentCoreError(SandboxError):
    """AgentCore could not do what was asked; ``code`` is AWS's error code when there is one."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class AgentCoreAuthError(AgentCoreError):
    """Missing or rejected credentials, or an IAM policy that does not allow the call."""


class AgentCoreNotFound(AgentCoreError):
    """No code interpreter with this identifier in this region (or account)."""


class AgentCoreSessionExpired(AgentCoreError, SessionClosed):
    """The session ran past its timeout or was stopped; a new session is needed."""


class AgentCoreThrottled(AgentCoreError):
    """Throttled or over a service quota, after the bounded retries."""


class AgentCoreUnreachable(AgentCoreError):
    """The endpoint could not be reached (refused, DNS, TLS, connect timeout)."""


class AgentCoreTimeout(AgentCoreError):
    """AgentCore sent nothing within the read timeout."""


@dataclass(frozen=True)
class _Where:
    """What an error message names."""

    action: str  # "start", "invoke" or "stop"
    identifier: str
    session_id: str | None
    endpoint: str
    region: str
    session_timeout_s: int


def _client_error(exc: ClientError, where: _Where) -> AgentCoreError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    said = f"{code}: {error.get('Message') or exc}" if code else str(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    key = code.lower()
    if key == _THROTTLED or status == 429:
        return AgentCoreThrottled(
            f"AgentCore is throttling requests ({said}). Slow down (fewer parallel sessions or "
            f"runs), or ask for a higher request-rate quota in {where.region}.",
            code=code,
        )
    if key == _QUOTA or status == 402:
        return AgentCoreThrottled(
            f"AgentCore service quota exceeded ({said}): probably too many active code "
            "interpreter sessions. Stop sessions you no longer need (close() them) or request a "
            f"quota increase in Service Quotas for {where.region}.",
            code=code,
        )
    if key in AUTH_ERROR_CODES or status in (401, 403):
        return AgentCoreAuthError(
            f"AgentCore refused the request ({said}). Check the AWS credentials "
            "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE or the "
            "instance role, and that they have not expired), the region "
            f"({where.region}), and that the IAM policy allows "
            "bedrock-agentcore:StartCodeInterpreterSession, InvokeCodeInterpreter and "
            f"StopCodeInterpreterSession on code interpreter {where.identifier!r}.",
            code=code,
        )
    if key == _NOT_FOUND or status == 404:
        if where.action == "start":
            return AgentCoreNotFound(
                f"AgentCore has no code interpreter {where.identifier!r} in {where.region} "
                f"({said}). Check the identifier: the built-in one is {DEFAULT_IDENTIFIER!r}; a "
                "custom one's id is listed by `aws bedrock-agentcore-control "
                f"list-code-interpreters --region {where.region}`.",
                code=code,
            )
        return AgentCoreSessionExpired(
            f"AgentCore session {where.session_id} of {where.identifier!r} is gone ({said}): "
            f"it ran past its session timeout ({where.session_timeout_s} s) or was stopped. "
            "Start a new session; for longer work raise session_timeout_s (at most 28800).",
            code=code,
        )
    if key == "validationexception" or status == 400:
        return AgentCoreError(f"AgentCore rejected the request as invalid ({said})", code=code)
    if key == "conflictexception" or status == 409:
        return AgentCoreError(
            f"AgentCore session {where.session_id} is busy or changing state ({said}); run one "
            "program at a time per session.",
            code=code,
        )
    return AgentCoreError(
        f"AgentCore failed to {where.action} ({said}); it may work if tried again.", code=code
    )


def _agentcore_error(exc: Exception, where: _Where, read_timeout_s: float) -> AgentCoreError:
    """One of the SDK's exceptions, in words that say what to check."""
    if isinstance(exc, ClientError):
        return _client_error(exc, where)
    if isinstance(exc, CREDENTIAL_ERRORS):
        return AgentCoreAuthError(
            f"no usable AWS credentials for AgentCore ({exc}). Set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run where an instance or task role "
            "applies."
        )
    if isinstance(exc, NoRegionError):
        return AgentCoreError(
            "no AWS region for AgentCore: set AWS_REGION or AWS_DEFAULT_REGION (or region in "
            "~/.aws/config for your profile), or pass region=..."
        )
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):  # botocore's subclasses it
        return AgentCoreTimeout(
            f"AgentCore at {where.endpoint} sent nothing for {read_timeout_s:g} s (the read "
            "timeout); the program may still have been running. Raise read_timeout_s for "
            "long programs."
        )
    if isinstance(exc, (BotoConnectionError, HTTPClientError, urllib3.exceptions.HTTPError)):
        return AgentCoreUnreachable(
            f"could not reach AgentCore at {where.endpoint} ({exc}). Check endpoint_url, the "
            f"region ({where.region}) and the network."
        )
    if isinstance(exc, ParamValidationError):
        return AgentCoreError(f"invalid AgentCore request: {exc}")
    return AgentCoreError(f"AgentCore call failed ({type(exc).__name__}: {exc})")


_SDK_ERRORS = (ClientError, BotoCoreError, urllib3.exceptions.HTTPError)


# --- the streamed result -----------------------------------------------------------------------


@dataclass(frozen=True)
class StreamedOutput:
    """What the ``result`` events of one ``executeCode`` said."""

    stdout: str
    stderr: str
    is_error: bool


def read_stream(events: Iterable[Mapping[str, Any]]) -> StreamedOutput:
    """Put the ``result`` events of an ``invoke_code_interpreter`` stream together.

    ``structuredContent`` (stdout, stderr, exitCode) is preferred because it keeps the two
    streams apart; without it the text content is the output, or the error when ``isError``.
    Non-text content (images, files) is not part of a ``CodeRun``. An exception event raises
    ``EventStreamError`` from the iteration itself.
    """
    stdout: list[str] = []
    stderr: list[str] = []
    is_error = False
    for event in events:
        result = event.get("result")
        if result is None:
            continue
        failed = bool(result.get("isError"))
        structured = result.get("structuredContent") or {}
        if "stdout" in structured or "stderr" in structured:
            stdout.append(str(structured.get("stdout") or ""))
            stderr.append(str(structured.get("stderr") or ""))
        else:
            texts = "".join(
                str(c.get("text", "")) for c in result.get("content", ()) if c.get("type") == "text"
            )
            (stderr if failed else stdout).append(texts)
        exit_code = structured.get("exitCode")
        is_error = is_error or failed or (exit_code is not None and exit_code != 0)
    return StreamedOutput("".join(stdout), "".join(stderr), is_error)


# --- the interpreter ---------------------------------------------------------------------------


class AgentCoreInterpreter:
    """One AgentCore Code Interpreter session, reused by every ``run`` until ``close``.

    Runs go one at a time (a session runs one program at a time). A run that exceeds its
    ``timeout_s`` comes back as a failed ``CodeRun``, as on the local interpreter; its session
    is stopped (the program may still be running there) and the next run starts a new one.
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
        identifier: str = DEFAULT_IDENTIFIER,
        session_name: str | None = None,
        session_timeout_s: int = 900,
        read_timeout_s: float = 900,
        connect_timeout_s: float = 10,
        throttle_retries: int = 2,
        retry_delay_s: float = 0.5,
    ) -> None:
        """``client``: a ready ``bedrock-agentcore`` client, used as it is (give it
        ``Config(retries={"total_max_attempts": 1})``); else one is built from ``region``,
        ``profile`` and ``endpoint_url`` on first use."""
        self.identifier = identifier
        self.session_name = session_name
        self.session_timeout_s = session_timeout_s
        self.read_timeout_s = read_timeout_s
        self.throttle_retries = throttle_retries
        self.retry_delay_s = retry_delay_s
        self._clients = LazyClient(
            "bedrock-agentcore",
            client=client,
            region=region,
            profile=profile,
            endpoint_url=endpoint_url,
            read_timeout_s=read_timeout_s,
            connect_timeout_s=connect_timeout_s,
        )
        self._session_id: str | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def name(self) -> str:
        return f"agentcore:{self.identifier}"

    @property
    def session_id(self) -> str | None:
        """The live session's id, or None before ``start`` and after a timeout or ``close``."""
        return self._session_id

    def client(self) -> Any:
        """The boto3 client (untyped: no stubs for ``bedrock-agentcore``), made on first use."""
        return self._clients.get()

    async def start(self) -> str:
        """Start the session (if none is live) and return its id."""
        async with self._lock:
            return await self._ensure_session()

    async def run(self, code: str, *, timeout_s: float) -> CodeRun:
        """Run ``code`` in the session; raises ``AgentCoreError`` when AgentCore fails."""
        async with self._lock:
            session_id = await self._ensure_session()
            started = time.perf_counter()
            try:
                output = await asyncio.wait_for(
                    self._call("invoke", self._execute, session_id, code), timeout_s
                )
            except TimeoutError:
                await self._abandon_session()
                return CodeRun(
                    stdout="",
                    stderr=(
                        f"TimeoutError: the program did not finish within {timeout_s:g} s; its "
                        "AgentCore session was stopped and the next run starts a new one, so "
                        "variables from earlier runs are gone"
                    ),
                    is_error=True,
                    duration_ms=(time.perf_counter() - started) * 1000,
                )
            except AgentCoreTimeout:
                await self._abandon_session()
                raise
            except AgentCoreSessionExpired:
                self._session_id = None
                raise
            return CodeRun(
                output.stdout,
                output.stderr,
                output.is_error,
                (time.perf_counter() - started) * 1000,
            )

    async def close(self) -> None:
        """Stop the session; one that already expired is no error."""
        async with self._lock:
            self._closed = True
            try:
                if self._session_id is not None:
                    with contextlib.suppress(AgentCoreSessionExpired):
                        await self._call("stop", self._stop, self._session_id)
            finally:
                self._session_id = None

    async def __aenter__(self) -> AgentCoreInterpreter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- internals ------------------------------------------------------------------------------
    async def _ensure_session(self) -> str:
        if self._closed:
            raise SessionClosed(f"this {self.name} interpreter is closed; create a new one")
        if self._session_id is None:
            # One client token for every attempt: a retried start cannot open a second session.
            token = uuid.uuid4().hex + uuid.uuid4().hex[:8]
            self._session_id = await self._call("start", self._start, token)
        return self._session_id

    async def _abandon_session(self) -> None:
        """Stop a session whose program overran (best effort); the next run starts a new one."""
        try:
            if self._session_id is not None:
                with contextlib.suppress(AgentCoreError):
                    await self._call("stop", self._stop, self._session_id)
        finally:
            self._session_id = None

    async def _call(self, action: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one blocking SDK call in a thread, retrying throttling that ran no code."""
        attempt = 0
        while True:
            try:
                return await asyncio.to_thread(fn, *args)
            except _SDK_ERRORS as exc:
                error = _agentcore_error(exc, self._where(action), self.read_timeout_s)
                retry = (
                    error.code.lower() == _THROTTLED
                    and not isinstance(exc, EventStreamError)  # the code may have run already
                    and attempt < self.throttle_retries
                )
                if not retry:
                    raise error from exc
            await asyncio.sleep(self.retry_delay_s * 2**attempt)
            attempt += 1

    def _where(self, action: str) -> _Where:
        if self._clients.made is not None:
            meta = self._clients.made.meta
            endpoint, region = str(meta.endpoint_url), str(meta.region_name)
        else:
            region = self._clients.region or "the region of your AWS configuration"
            endpoint = self._clients.endpoint_url or f"AgentCore in {region}"
        return _Where(
            action, self.identifier, self._session_id, endpoint, region, self.session_timeout_s
        )

    # Blocking calls, run in a worker thread.
    def _start(self, client_token: str) -> str:
        request: dict[str, Any] = {
            "codeInterpreterIdentifier": self.identifier,
            "sessionTimeoutSeconds": self.session_timeout_s,
            "clientToken": client_token,
        }
        if self.session_name is not None:
            request["name"] = self.session_name
        return str(self.client().start_code_interpreter_session(**request)["sessionId"])

    def _execute(self, session_id: str, code: str) -> StreamedOutput:
        response = self.client().invoke_code_interpreter(
            codeInterpreterIdentifier=self.identifier,
            sessionId=session_id,
            name="executeCode",
            arguments={"code": code, "language": "python"},
        )
        stream = response["stream"]
        try:
            return read_stream(stream)
        finally:
            stream.close()

    def _stop(self, session_id: str) -> None:
        self.client().stop_code_interpreter_session(
            codeInterpreterIdentifier=self.identifier, sessionId=session_id
        )

    def __repr__(self) -> str:
        return f"AgentCoreInterpreter({self.identifier!r}, session={self._session_id})"


async def agentcore_interpreter(**options: Any) -> AgentCoreInterpreter:
    """A started ``AgentCoreInterpreter`` (options as its constructor's).

    Fits ``ReplaySandbox(interpreter_factory=lambda: agentcore_interpreter(region=...))``.
    """
    interpreter = AgentCoreInterpreter(**options)
    try:
        await interpreter.start()
    except BaseException:
        await interpreter.close()
        raise
    return interpreter


class _Factory:
    """Starts interpreters for a replay sandbox; later sessions reuse the first one's client."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = dict(options)

    async def __call__(self) -> AgentCoreInterpreter:
        interpreter = await agentcore_interpreter(**self._options)
        self._options["client"] = interpreter.client()
        return interpreter


def agentcore_sandbox(
    *,
    limits: Limits | None = None,
    max_passes: int = DEFAULT_MAX_PASSES,
    preloaded: Sequence[PortableTool] = (),
    **options: Any,
) -> ReplaySandbox:
    """A ``Sandbox`` whose sessions run on AgentCore Code Interpreter by deterministic replay.

    ``options`` go to ``AgentCoreInterpreter``; ``preloaded`` are portable tools installed in
    each session and called there, with no host round trip.
    """
    return ReplaySandbox(
        _Factory(options), limits=limits, max_passes=max_passes, preloaded=preloaded
    )


__all__ = [
    "DEFAULT_IDENTIFIER",
    "AgentCoreAuthError",
    "AgentCoreError",
    "AgentCoreInterpreter",
    "AgentCoreNotFound",
    "AgentCoreSessionExpired",
    "AgentCoreThrottled",
    "AgentCoreTimeout",
    "AgentCoreUnreachable",
    "StreamedOutput",
    "agentcore_interpreter",
    "agentcore_sandbox",
    "read_stream",
]

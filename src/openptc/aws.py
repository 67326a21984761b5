"""boto3 clients and errors the way every AWS-backed part of openptc needs them."""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    CredentialRetrievalError,
    NoAuthTokenError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    TokenRetrievalError,
)

# Error codes compared lower-cased: in an event stream they are member names
# ("throttlingException"), in HTTP errors shape names ("ThrottlingException").
AUTH_ERROR_CODES = frozenset(
    {
        "accessdeniedexception",
        "unrecognizedclientexception",
        "expiredtokenexception",
        "invalidsignatureexception",
        "incompletesignatureexception",
        "missingauthenticationtokenexception",
    }
)
CREDENTIAL_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    ProfileNotFound,
    NoAuthTokenError,
    TokenRetrievalError,
)


def make_client(
    service: str,
    *,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    config: Config,
) -> Any:
    """A client from the usual AWS configuration (env, profile, role); credentials never logged.

    botocore reads only AWS_DEFAULT_REGION; AWS_REGION is what most AWS SDKs read, so it is the
    fallback. Reading the configuration is blocking I/O: call this off the event loop.
    """
    session = boto3.Session(profile_name=profile, region_name=region)
    return session.client(
        service,  # type: ignore[call-overload]
        region_name=session.region_name or os.environ.get("AWS_REGION"),
        endpoint_url=endpoint_url,
        config=config,
    )


class LazyClient:
    """One service's client, made on first use from a worker thread, botocore's retries off.

    openptc's own retry policy is the only one; a client passed in is used as it is.
    """

    def __init__(
        self,
        service: str,
        *,
        client: Any = None,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        read_timeout_s: float,
        connect_timeout_s: float,
    ) -> None:
        self.service = service
        self.region = region
        self.profile = profile
        self.endpoint_url = endpoint_url
        self.made: Any = client
        self._owned = client is None
        self._lock = threading.Lock()
        self._config = Config(
            retries={"total_max_attempts": 1},
            read_timeout=read_timeout_s,
            connect_timeout=connect_timeout_s,
            user_agent_extra="openptc",
        )

    def get(self) -> Any:
        with self._lock:
            if self.made is None:
                self.made = make_client(
                    self.service,
                    profile=self.profile,
                    region=self.region,
                    endpoint_url=self.endpoint_url,
                    config=self._config,
                )
            return self.made

    def close(self) -> None:
        """Close the client made here (botocore's ``close`` frees its connection pool); a client
        passed in is borrowed and left open. The next ``get`` makes a new one."""
        with self._lock:
            made, self.made = self.made, (None if self._owned else self.made)
        if self._owned and made is not None:
            made.close()

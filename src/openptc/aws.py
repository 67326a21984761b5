"""boto3 clients built the way every AWS-backed part of openptc needs them."""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config


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

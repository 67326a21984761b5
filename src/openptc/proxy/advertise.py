"""``advertise_url = "auto"``: find the address other replicas reach this one at.

On ECS (Fargate) a task's IP is not known when its task definition is written; the container
metadata endpoint (``ECS_CONTAINER_METADATA_URI_V4``) tells it at run time. Elsewhere (a
Kubernetes pod, a VM) the host name resolves to the address to advertise.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Mapping

ECS_METADATA_ENV = "ECS_CONTAINER_METADATA_URI_V4"


class AdvertiseError(RuntimeError):
    """No address could be found; the message says what to set instead."""


def discover_advertise_url(port: int, env: Mapping[str, str] | None = None) -> str:
    """``http://<this replica's address>:<port>``."""
    environ = os.environ if env is None else env
    metadata = environ.get(ECS_METADATA_ENV)
    address = _ecs_task_address(metadata) if metadata else _host_address()
    return f"http://{address}:{port}"


def _ecs_task_address(metadata_uri: str) -> str:
    try:
        with urllib.request.urlopen(f"{metadata_uri.rstrip('/')}/task", timeout=3) as response:
            task = json.load(response)
        for container in task.get("Containers", []):
            for network in container.get("Networks", []):
                for address in network.get("IPv4Addresses", []):
                    return str(address)
    except (OSError, ValueError) as exc:
        raise AdvertiseError(
            f"could not read the task's address from the ECS metadata endpoint: {exc}; "
            "set --advertise-url (or PTC_ADVERTISE_URL) explicitly"
        ) from None
    raise AdvertiseError(
        "the ECS task metadata lists no IPv4 address; set --advertise-url explicitly"
    )


def _host_address() -> str:
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError as exc:
        raise AdvertiseError(
            f"could not resolve this host's address: {exc}; set --advertise-url explicitly"
        ) from None
    if address.startswith("127."):
        raise AdvertiseError(
            f"this host's name resolves to {address}, which other replicas cannot reach; "
            "set --advertise-url explicitly"
        )
    return address

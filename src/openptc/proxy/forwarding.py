"""Routing a container's requests to the replica that holds its live sandbox.

Behind a plain load balancer any replica may receive any request. The container's record names
its holder (the URL that replica advertises); a replica that is not the holder forwards the
request there, unchanged, over one internal hop. When the holder cannot be reached (it restarted
or is gone) or is draining, the request is served here instead, by rebuilding the container from
its record.
A forwarded request is never forwarded again.
"""

from __future__ import annotations

import logging

import httpx
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from openptc.proxy.drain import DRAINING_HEADER
from openptc.proxy.records import ContainerHistory
from openptc.proxy.store import RecordStore

log = logging.getLogger("openptc.proxy")

FORWARDED_HEADER = "x-openptc-forwarded"
PASSED_HEADERS = ("x-api-key", "authorization", "anthropic-version", "anthropic-beta")


class Forwarder:
    """Sends requests on to the holder of a container; owns one HTTP client."""

    def __init__(self, own_url: str, *, connect_timeout_s: float = 2.0) -> None:
        self.own_url = own_url.rstrip("/")
        timeout = httpx.Timeout(None, connect=connect_timeout_s)
        self._client = httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def holder(self, store: RecordStore, container_id: str) -> str | None:
        """Another replica's URL when it holds the container, else None (serve it here)."""
        record = await store.get(container_id)
        if record is None:
            return None
        holder = ContainerHistory.model_validate_json(record.payload).holder
        return holder if holder and holder.rstrip("/") != self.own_url else None

    async def forward(
        self, holder: str, path: str, body: bytes, headers: dict[str, str]
    ) -> Response | None:
        """The holder's response, streamed through; None when the holder cannot be reached."""
        sent = {k: v for k, v in headers.items() if k in PASSED_HEADERS}
        sent |= {"content-type": "application/json", FORWARDED_HEADER: "1"}
        request = self._client.build_request(
            "POST", holder.rstrip("/") + path, content=body, headers=sent
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            log.warning(
                "container holder unreachable; serving here",
                extra={"holder": holder, "reason": type(exc).__name__},
            )
            return None
        if response.status_code == 503 and DRAINING_HEADER in response.headers:
            await response.aclose()  # it is shutting down: rebuild the container here instead
            log.info("container holder is draining; serving here", extra={"holder": holder})
            return None
        log.info("forwarded to the container's holder", extra={"holder": holder})
        kept = {k: v for k, v in response.headers.items() if k in ("content-type", "request-id")}
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            headers=kept,
            background=BackgroundTask(response.aclose),
        )

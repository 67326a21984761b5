"""A turn's events as the HTTP response: one JSON message, or a stream of server-sent events.

A streaming turn runs in its own task (the pump) and feeds a queue that the response drains, so a
client that leaves mid-turn cannot leave the turn suspended holding its container's lock; a long
program keeps the connection alive with pings, and errors after the stream began are sent as an
``error`` event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from openptc.logs import request_id_var
from openptc.proxy import sse
from openptc.proxy.errors import ApiError
from openptc.proxy.turn_events import STARTED, TextDelta, TurnEnd, TurnEvent
from openptc.proxy.wire import MessageResponse, ResponseBlock, TextContent

log = logging.getLogger("openptc.proxy")

PING_INTERVAL_S = 10.0
_END = object()  # the end of a streamed turn


async def collect_message(
    events: AsyncIterator[TurnEvent], message_id: str, model: str
) -> dict[str, Any]:
    """The whole turn as one message, its text deltas joined into text blocks."""
    blocks: list[ResponseBlock] = []
    end: TurnEnd | None = None
    async for event in events:
        if isinstance(event, TurnEnd):
            end = event
        elif isinstance(event, TextDelta):
            if blocks and isinstance(blocks[-1], TextContent):
                blocks[-1] = TextContent(text=blocks[-1].text + event.text)
            else:
                blocks.append(TextContent(text=event.text))
        elif event is not STARTED:
            blocks.append(event)  # type: ignore[arg-type]
    assert end is not None
    message = MessageResponse(
        id=message_id,
        model=model,
        content=blocks,
        stop_reason=end.stop_reason,
        stop_sequence=end.stop_sequence,
        usage=end.usage,
        container=end.container,
    )
    return message.model_dump(mode="json", exclude_none=False)


async def pump_events(
    events: AsyncIterator[TurnEvent], queue: asyncio.Queue[object], request_id: str
) -> None:
    """Run the turn to its end in its own task: a client that leaves (even before the first
    byte) cannot leave it suspended holding its container's lock."""
    token = request_id_var.set(request_id)
    try:
        async for event in events:
            queue.put_nowait(event)
        queue.put_nowait(_END)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        queue.put_nowait(exc)
    finally:
        request_id_var.reset(token)


async def opening(queue: asyncio.Queue[object]) -> list[object]:
    """The pumped turn's first event, when it comes within a ping interval. A turn that fails
    before showing anything (a setting the backend refuses, say) is then answered with its
    error's HTTP status, as the API refuses a request, not as an event in a stream that began
    with 200; the client hears from the proxy within a ping interval either way."""
    try:
        item = await asyncio.wait_for(queue.get(), PING_INTERVAL_S)
    except TimeoutError:
        return []
    if isinstance(item, Exception):
        raise item
    return [item]


async def stream_events(
    queue: asyncio.Queue[object],
    pump: asyncio.Task[None],
    message_id: str,
    model: str,
    request_id: str,
    opened: list[object] | None = None,
) -> AsyncIterator[bytes]:
    """The pumped events (after those ``opened`` took) as server-sent events; leaving early
    cancels the pump."""
    token = request_id_var.set(request_id)
    index = 0
    text_open = False  # a text block streaming from the backend, not yet closed
    taken = list(opened or ())
    try:
        yield sse.message_start(message_id, model)
        while True:
            try:
                if taken:
                    item = taken.pop(0)
                else:
                    item = await asyncio.wait_for(queue.get(), PING_INTERVAL_S)
            except TimeoutError:
                yield sse.ping()  # a long program: keep the connection alive
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            event = item
            if isinstance(event, TextDelta):
                if not text_open:
                    yield sse.text_start(index)
                    text_open = True
                yield sse.text_delta(index, event.text)
                continue
            if text_open:
                yield sse.block_stop(index)
                index, text_open = index + 1, False
            if isinstance(event, TurnEnd):
                usage = event.usage.model_dump(mode="json", exclude_none=True)
                container = event.container.model_dump(mode="json") if event.container else None
                ending = sse.message_end(event.stop_reason, usage, container, event.stop_sequence)
                for chunk in ending:
                    yield chunk
            elif event is not STARTED:
                for chunk in sse.block_events(index, event):  # type: ignore[arg-type]
                    yield chunk
                index += 1
    except ApiError as exc:
        yield sse.error(exc.body(request_id))
    except Exception:
        log.exception("streaming request failed")
        yield sse.error(ApiError("api_error", "internal error in the proxy").body(request_id))
    finally:
        if not pump.done():  # the client left mid-turn: stop the turn, let it clean up
            pump.cancel()
            await asyncio.shield(asyncio.gather(pump, return_exceptions=True))
        request_id_var.reset(token)

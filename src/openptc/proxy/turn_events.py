"""What a turn yields: ``STARTED``, then response blocks and text deltas, then ``TurnEnd``.

Kept apart from the runner that makes them so the HTTP side, which turns them into one JSON
message or a stream of server-sent events, depends on these types alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from openptc.proxy.wire import Container, ResponseBlock, StopReason, Usage


@dataclass(frozen=True)
class TurnEnd:
    stop_reason: StopReason
    usage: Usage
    container: Container | None
    stop_sequence: str | None = None  # which one, when ``stop_reason`` is "stop_sequence"


@dataclass(frozen=True)
class TextDelta:
    """A piece of the backend's text, passed on while it generates (streaming requests)."""

    text: str


class Started:
    """Yielded once the request is valid and its container held: errors after it are streamed."""


STARTED = Started()

TurnEvent = ResponseBlock | TextDelta | TurnEnd | Started

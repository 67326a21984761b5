"""Docker's attached streams, demultiplexed: the container's stdout is the bridge, stderr stray.

Without a TTY the engine sends a container's stdout and stderr over one connection in frames:
an 8-byte header (stream type, three zero bytes, payload length as a big-endian uint32), then
the payload. Chunks read from the socket are neither frames nor messages: a frame may arrive in
pieces and one read may hold many frames, so bytes are buffered and split here, and lines are
split again by the bridge. What is written to the connection goes to the container's stdin as is.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Iterator

STDIN, STDOUT, STDERR = 0, 1, 2
HEADER = struct.Struct(">BxxxL")


class FrameSplitter:
    """Turns the bytes of an attach stream into (stream, payload) pairs, whatever the chunking."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self._buffer += data
        start = 0
        while len(self._buffer) - start >= HEADER.size:
            stream, size = HEADER.unpack_from(self._buffer, start)
            end = start + HEADER.size + size
            if end > len(self._buffer):
                break
            yield stream, bytes(self._buffer[start + HEADER.size : end])
            start = end
        del self._buffer[:start]

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest."""
        return len(self._buffer)


class AttachProtocol(asyncio.Protocol):
    """An attach connection on the event loop: frames to callbacks, the end to ``on_closed``.

    A protocol rather than a reader task: a tool call's round trip costs no extra loop hop.
    """

    def __init__(
        self,
        on_stdout: Callable[[bytes], None],
        on_stderr: Callable[[bytes], None],
        on_closed: Callable[[], None],
    ) -> None:
        self._frames = FrameSplitter()
        self._on_stdout = on_stdout
        self._on_stderr = on_stderr
        self._on_closed = on_closed

    def data_received(self, data: bytes) -> None:
        for stream, payload in self._frames.feed(data):
            if stream == STDERR:
                self._on_stderr(payload)
            else:
                self._on_stdout(payload)

    def eof_received(self) -> bool:
        return False  # close the transport: the container's streams have ended

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_closed()

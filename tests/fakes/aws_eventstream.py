"""AWS's wire pieces every fake AWS service shares: event-stream framing and the error shape.

The event stream is AWS's binary framing (``application/vnd.amazon.eventstream``): each message
has a prelude (total length, headers length, CRC32 of the two), typed headers, a payload and a
CRC32 of all before it; botocore checks both checksums. Errors carry their code in the
``x-amzn-errortype`` header and the message in a ``{"message": ...}`` body, which is how
botocore finds ``Error.Code``.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from .harness import Fault

EVENT_STREAM = "application/vnd.amazon.eventstream"
ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
SIGV4_PREFIX = "AWS4-HMAC-SHA256 Credential="


def _header(name: str, value: str) -> bytes:
    """One header of type 7 (string): name length (u8), name, type, value length (u16), value."""
    key, text = name.encode(), value.encode()
    return struct.pack(">B", len(key)) + key + b"\x07" + struct.pack(">H", len(text)) + text


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, CRC32 of the two),
    headers, payload, then the CRC32 of everything before it."""
    encoded = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def encode_event(event_type: str, body: dict[str, Any]) -> bytes:
    # AWS pads every event with a "p" field so that lengths do not leak content; clients ignore it.
    payload = json.dumps({**body, "p": "abcdefghijklmnopqrstuvwxyzABCDEF"[: 1 + len(body) * 7]})
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, payload.encode())


def encode_exception(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"message": message}).encode())


def aws_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Fault:
    """An error as Bedrock sends it; usable as a recorder fault."""
    wire_headers = {"x-amzn-errortype": f"{code}:{ERROR_NAMESPACE}", **(headers or {})}
    return Fault(status, {"message": message}, wire_headers)

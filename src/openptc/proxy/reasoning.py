"""A backend's reasoning as ``thinking`` blocks, and those blocks back as the backend's reasoning.

Every provider wants its reasoning back unchanged on the next request (Anthropic checks the
thinking block's signature, OpenAI decrypts the reasoning item, Bedrock checks its signature),
but the client only keeps what an Anthropic ``thinking`` or ``redacted_thinking`` block holds.
So the opaque part travels in the block's one opaque field:

- a block from an Anthropic-wire backend (the Anthropic API, Bedrock InvokeModel) is shown as
  it is: its own ``signature``, or its redacted ``data``, so a history stays valid against the
  real API too;
- anything else is wrapped in an envelope, ``openptc.<base64url JSON>``, holding the block's
  wire, signature, redacted content, id and encrypted content (and its text when the block is
  shown redacted), so that it comes back field for field whatever the backend.

A signature or data without the envelope's prefix is the Anthropic API's own, so histories made
against the real API keep working. The envelope is not secret and needs no seal: the backend
checks what it issued, as it would without the proxy.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, get_args

from openptc.models.base import ReasoningBlock, ReasoningWire
from openptc.proxy.errors import invalid
from openptc.proxy.wire import RedactedThinkingContent, ThinkingContent

PREFIX = "openptc."
WIRES: tuple[str, ...] = get_args(ReasoningWire)
_OPAQUE = ("signature", "redacted", "id", "encrypted")

ReasoningContent = ThinkingContent | RedactedThinkingContent


def _native(block: ReasoningBlock) -> ReasoningContent | None:
    """The block as the Anthropic API itself would show it, when that loses nothing."""
    if block.wire != "anthropic" or block.id is not None or block.encrypted is not None:
        return None
    if block.redacted is not None:
        if block.text or block.signature is not None or block.redacted.startswith(PREFIX):
            return None
        return RedactedThinkingContent(data=block.redacted)
    if block.signature is None or block.signature.startswith(PREFIX):
        return None
    return ThinkingContent(thinking=block.text, signature=block.signature)


def _seal(fields: dict[str, Any]) -> str:
    text = json.dumps(fields, separators=(",", ":"))  # ASCII: any string survives
    return PREFIX + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def to_content(block: ReasoningBlock, *, moved: bool = False) -> ReasoningContent:
    """The block as the client sees it. ``moved``: shown after text it came before (that text
    was streamed while the backend still wrote), so reading it back puts it first again."""
    native = None if moved else _native(block)
    if native is not None:
        return native
    fields: dict[str, Any] = {"wire": block.wire}
    fields |= {k: getattr(block, k) for k in _OPAQUE if getattr(block, k) is not None}
    if moved:
        fields["moved"] = True
    if block.redacted is not None:  # nothing readable to show: the text rides along, if any
        if block.text:
            fields["text"] = block.text
        return RedactedThinkingContent(data=_seal(fields))
    return ThinkingContent(thinking=block.text, signature=_seal(fields))


def _unseal(sealed: str, where: str) -> dict[str, Any]:
    problem = (
        f"{where}: this block's opaque field starts with '{PREFIX}' but is not one this proxy "
        "issued (it was changed or cut); send thinking blocks back exactly as they were received"
    )
    body = sealed[len(PREFIX) :]
    try:
        fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid(problem) from None
    if not isinstance(fields, dict) or fields.get("wire") not in WIRES:
        raise invalid(problem)
    kinds = {"wire": str, "moved": bool, "text": str, **dict.fromkeys(_OPAQUE, str)}
    if any(not isinstance(v, kinds.get(k, type(None))) or v is None for k, v in fields.items()):
        raise invalid(problem)
    return fields


def from_content(content: ReasoningContent, where: str) -> tuple[ReasoningBlock, bool]:
    """The backend's block again, and whether it was moved after its text (see ``to_content``).
    ``where`` names the block in the request, for the error when an envelope was changed."""
    if isinstance(content, ThinkingContent):
        opaque, text = content.signature, content.thinking
    else:
        opaque, text = content.data, ""
    if not opaque.startswith(PREFIX):  # the Anthropic API's own
        if isinstance(content, ThinkingContent):
            return ReasoningBlock(text, "anthropic", signature=opaque), False
        return ReasoningBlock("", "anthropic", redacted=opaque), False
    fields = _unseal(opaque, where)
    if isinstance(content, RedactedThinkingContent):
        text = fields.get("text", "")
    block = ReasoningBlock(
        text,
        fields["wire"],
        signature=fields.get("signature"),
        redacted=fields.get("redacted"),
        id=fields.get("id"),
        encrypted=fields.get("encrypted"),
    )
    return block, fields.get("moved") is True

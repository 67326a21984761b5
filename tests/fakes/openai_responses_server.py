"""``/v1/responses`` of the fake: response objects, their stream events, and reasoning items.

With ``reasoning`` asked for, a turn starts with a ``reasoning`` item (``rs_...``, summary parts
``summary_text``); its ``encrypted_content`` is there only when ``include`` asks for
``reasoning.encrypted_content``, and is a token the fake signs (HMAC, a key of its own) over the
item's id and summary, so that nothing else can make one and an altered item fails to verify.

``ReasoningLedger`` holds the fake to the rules the real API keeps with ``store=False``:

- a reasoning item sent back without its encrypted content cannot be resolved: 404
  "Item with id 'rs_...' not found. Items are not persisted when `store` is set to false...";
- an encrypted content that does not verify (forged, or the item altered): 400
  ``invalid_encrypted_content`` "The encrypted content gAAA...Rg== could not be verified.";
- a function call the fake made right after a reasoning item, sent back without that item
  before it in the same turn: 400 "Item 'fc_...' of type 'function_call' was provided without
  its required 'reasoning' item: 'rs_...'." (the real API checks this by item id; the fake,
  which is not sent item ids, by call id).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .openai_answer import Answer
from .openai_wire import WireError, new_id, pieces, sse

ENCRYPTED = "reasoning.encrypted_content"


@dataclass
class ReasoningLedger:
    """Signs the reasoning items the fake makes and checks the ones it is sent back."""

    secret: bytes
    items: list[dict[str, Any]] = field(default_factory=list)  # as the fake sent them
    before_call: dict[str, tuple[str, str]] = field(default_factory=dict)  # call -> (fc, rs)

    def seal(self, item_id: str, summary: list[str]) -> str:
        payload = json.dumps({"id": item_id, "summary": summary}, separators=(",", ":")).encode()
        mac = hmac.new(self.secret, payload, hashlib.sha256).hexdigest()[:32]
        return "gAAAAA" + base64.urlsafe_b64encode(payload).decode() + "." + mac

    def _verifies(self, item: dict[str, Any], token: str) -> bool:
        body, _, mac = token.removeprefix("gAAAAA").rpartition(".")
        try:
            payload = base64.urlsafe_b64decode(body.encode())
        except ValueError:
            return False
        good = hmac.new(self.secret, payload, hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(good, mac):
            return False
        summary = [part.get("text") for part in item.get("summary") or []]
        return bool(json.loads(payload) == {"id": item.get("id"), "summary": summary})

    def check(self, body: dict[str, Any]) -> None:
        """The rules of the module's docstring, for a ``store=False`` request."""
        if body.get("store", True) is not False:
            return
        items = body.get("input")
        turn: set[str] = set()  # reasoning items since the last user message or tool output
        for item in items if isinstance(items, list) else []:
            kind = item.get("type", "message")
            if kind == "reasoning":
                token = item.get("encrypted_content")
                if token is None:
                    raise WireError(
                        f"Item with id '{item.get('id')}' not found. Items are not persisted "
                        "when `store` is set to false. Try again with `store` set to true, or "
                        "remove this item from your input.",
                        "input",
                        status=404,
                    )
                if not self._verifies(item, token):
                    raise WireError(
                        f"The encrypted content {token[:4]}...{token[-4:]} could not be verified.",
                        code="invalid_encrypted_content",
                    )
                turn.add(item["id"])
            elif kind == "function_call" and item.get("call_id") in self.before_call:
                fc, rs = self.before_call[item["call_id"]]
                if rs not in turn:
                    raise WireError(
                        f"Item '{fc}' of type 'function_call' was provided without its "
                        f"required 'reasoning' item: '{rs}'.",
                        "input",
                    )
            elif kind == "function_call_output" or item.get("role") == "user":
                turn.clear()


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [part] if status == "completed" else [],
    }


def _call_item(item_id: str, call: tuple[str, str, str], status: str) -> dict[str, Any]:
    call_id, name, arguments = call
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments if status == "completed" else "",
    }


class ResponseObject:
    """One ``response`` object in its successive states, as the stream and JSON show it."""

    def __init__(
        self, answer: Answer, body: dict[str, Any], ledger: ReasoningLedger | None = None
    ) -> None:
        self.answer, self.body = answer, body
        self.id = new_id("resp_", 48)
        self.created = int(time.time())
        self.message_id = new_id("msg_", 48) if answer.text else None
        self.call_ids = [new_id("fc_", 48) for _ in answer.calls]
        self.reasoning: dict[str, Any] | None = None
        if answer.reasoning and ledger is not None:
            self.reasoning = self._reasoning_item(ledger)

    def _reasoning_item(self, ledger: ReasoningLedger) -> dict[str, Any]:
        seed = json.dumps([self.answer.reasoning, [c[0] for c in self.answer.calls]])
        item_id = "rs_" + hashlib.sha256(seed.encode()).hexdigest()[:48]
        parts = self.answer.reasoning
        item: dict[str, Any] = {
            "id": item_id,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": text} for text in parts],
        }
        if ENCRYPTED in (self.body.get("include") or []):
            item["encrypted_content"] = ledger.seal(item_id, parts)
        ledger.items.append(item)
        for fc, call in zip(self.call_ids, self.answer.calls, strict=True):
            ledger.before_call[call[0]] = (fc, item_id)
        return item

    def items(self, status: str) -> list[dict[str, Any]]:
        found = [self.reasoning] if self.reasoning else []
        if self.message_id:
            found.append(_message_item(self.message_id, self.answer.text, status))
        for item_id, call in zip(self.call_ids, self.answer.calls, strict=True):
            found.append(_call_item(item_id, call, status))
        return found

    def state(self, done: bool) -> dict[str, Any]:
        a, body = self.answer, self.body
        status, incomplete = "in_progress", None
        if done:
            status = "completed"
            if a.stop in ("max_tokens", "refusal"):
                status = "incomplete"
                reason = "max_output_tokens" if a.stop == "max_tokens" else "content_filter"
                incomplete = {"reason": reason}
        usage = None
        if done:
            usage = {
                "input_tokens": a.prompt,
                "input_tokens_details": {"cached_tokens": a.cached, "cache_write_tokens": 0},
                "output_tokens": a.completion,
                "output_tokens_details": {"reasoning_tokens": a.reasoning_tokens},
                "total_tokens": a.prompt + a.completion,
            }
        asked = body.get("reasoning") or {}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body["model"],
            "output": self.items("completed") if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": asked.get("effort"), "summary": asked.get("summary")},
            "safety_identifier": body.get("safety_identifier"),
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    def events(self) -> Iterator[str]:
        """``response.created`` … deltas … ``response.completed``, numbered in sequence."""
        counter = iter(range(1_000_000))

        def event(kind: str, **fields: Any) -> str:
            return sse({"type": kind, "sequence_number": next(counter), **fields}, kind)

        yield event("response.created", response=self.state(done=False))
        yield event("response.in_progress", response=self.state(done=False))
        index = 0
        if self.reasoning is not None:
            yield from self._reasoning_events(event, index)
            index += 1
        if self.message_id:
            yield from self._message_events(event, self.message_id, index)
            index += 1
        for item_id, call in zip(self.call_ids, self.answer.calls, strict=True):
            where = {"output_index": index}
            ids = {"item_id": item_id, **where}
            yield event(
                "response.output_item.added", item=_call_item(item_id, call, "in_progress"), **where
            )
            for piece in pieces(call[2], size=40):
                yield event("response.function_call_arguments.delta", delta=piece, **ids)
            yield event("response.function_call_arguments.done", arguments=call[2], **ids)
            yield event(
                "response.output_item.done", item=_call_item(item_id, call, "completed"), **where
            )
            index += 1
        final = self.state(done=True)
        terminal = "response.completed" if final["status"] == "completed" else "response.incomplete"
        yield event(terminal, response=final)

    def _reasoning_events(self, event: Any, index: int) -> Iterator[str]:
        item = self.reasoning
        assert item is not None
        where = {"output_index": index}
        ids = {"item_id": item["id"], **where}
        yield event("response.output_item.added", item={**item, "summary": []}, **where)
        for n, text in enumerate(self.answer.reasoning):
            part = {"type": "summary_text", "text": ""}
            yield event("response.reasoning_summary_part.added", summary_index=n, part=part, **ids)
            for piece in pieces(text):
                yield event(
                    "response.reasoning_summary_text.delta", summary_index=n, delta=piece, **ids
                )
            yield event("response.reasoning_summary_text.done", summary_index=n, text=text, **ids)
            done = {**part, "text": text}
            yield event("response.reasoning_summary_part.done", summary_index=n, part=done, **ids)
        yield event("response.output_item.done", item=item, **where)

    def _message_events(self, event: Any, message_id: str, index: int) -> Iterator[str]:
        text = self.answer.text
        where = {"output_index": index}
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        ids = {"item_id": message_id, **where}
        item = _message_item(message_id, text, "in_progress")
        yield event("response.output_item.added", item=item, **where)
        yield event("response.content_part.added", content_index=0, part=part, **ids)
        for piece in pieces(text):
            yield event(
                "response.output_text.delta", content_index=0, delta=piece, logprobs=[], **ids
            )
        yield event("response.output_text.done", content_index=0, text=text, logprobs=[], **ids)
        done_part = {**part, "text": text}
        yield event("response.content_part.done", content_index=0, part=done_part, **ids)
        yield event(
            "response.output_item.done", item=_message_item(message_id, text, "completed"), **where
        )

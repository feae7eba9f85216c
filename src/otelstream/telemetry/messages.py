"""The ``"messages"`` stream mode: which messages reach which consumer, once each.

LangGraph's rules (``langgraph/pregel/_messages.py``), reproduced without importing
LangChain: a message is a LangChain ``BaseMessage`` only if ``langchain_core`` is already
loaded (no message can exist otherwise), or otelstream's own :class:`AIMessageChunk`.

* Every consumer of ``"messages"`` keeps its own set of message ids seen (LangGraph keeps one
  per stream handler). The ids of messages in a node's input state are added when the node
  starts, so echoed history is never re-emitted.
* LLM tokens are always emitted and their id recorded; a whole LLM result or a message a node
  returned is emitted only if its id was not seen. A message without an id gets a uuid,
  assigned in place, as LangGraph does.
* Metadata is the node's run metadata in LangGraph's key order; ``ls_integration`` says
  where the message came from (``langgraph`` for node outputs).
"""

from __future__ import annotations

import dataclasses
import sys
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from otelstream.checkpoint.serde import register_type
from otelstream.engine.events import RunInfo, Task
from otelstream.engine.types import Command
from otelstream.telemetry.codec import encode, encode_tuple

if TYPE_CHECKING:
    from otelstream.telemetry.pipeline import SpanHandle, Streams, StreamTarget

__all__ = [
    "AIMessageChunk",
    "emit_message",
    "emit_node_output",
    "is_message",
    "llm_metadata",
    "node_metadata",
    "seed_input",
    "user_tags",
]

INTEGRATION_NODE = "langgraph"
"""``ls_integration`` of messages a node returned: LangGraph's value, so filters keep working."""


@dataclasses.dataclass(slots=True)
class AIMessageChunk:
    """A streamed LLM token when LangChain is not installed: LangChain's fields, plain data.

    With ``langchain-core`` installed otelstream streams LangChain's own ``AIMessageChunk``
    instead, so code written for LangGraph sees the type it expects.
    """

    content: str
    id: str | None = None
    response_metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    usage_metadata: dict[str, Any] | None = None
    tool_call_chunks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    chunk_position: str | None = None
    type: str = "AIMessageChunk"


# otelstream's own message type: replay and checkpoints may rebuild it
register_type(AIMessageChunk)


def _base_message_class() -> type | None:
    module = sys.modules.get("langchain_core.messages")
    return getattr(module, "BaseMessage", None) if module is not None else None


def is_message(value: Any) -> bool:
    """Return whether ``value`` is a message the ``"messages"`` mode streams."""
    if isinstance(value, AIMessageChunk):
        return True
    base = _base_message_class()
    return base is not None and isinstance(value, base)


def _state_values(obj: Any) -> Sequence[Any]:
    # top-level field values of a state object (dict, pydantic model, dataclass)
    if isinstance(obj, dict):
        return list(obj.values())
    fields = getattr(type(obj), "model_fields", None)
    if isinstance(fields, dict):
        return [getattr(obj, k) for k in fields]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [getattr(obj, f.name) for f in dataclasses.fields(obj)]
    return ()


def _messages_in(response: Any) -> Iterable[Any]:
    # LangGraph's _find_and_emit_messages: a message, a sequence of them, or a state whose
    # values are messages or sequences of messages (strings are sequences: skipped)
    if is_message(response):
        yield response
    elif isinstance(response, Sequence) and not isinstance(response, str):
        yield from (v for v in response if is_message(v))
    else:
        for value in _state_values(response):
            if is_message(value):
                yield value
            elif isinstance(value, Sequence) and not isinstance(value, str):
                yield from (v for v in value if is_message(v))


def node_output_messages(result: Any) -> list[Any]:
    """Return the messages a node's return value holds, ``Command.update`` included."""
    if isinstance(result, Command):
        return list(_messages_in(result.update))
    if isinstance(result, Sequence) and not isinstance(result, str) and any(isinstance(v, Command) for v in result):
        out: list[Any] = []
        for value in result:
            out.extend(_messages_in(value.update if isinstance(value, Command) else value))
        return out
    return list(_messages_in(result))


def seed_input(targets: Iterable[StreamTarget], state: Any) -> None:
    """Mark the ids of the messages in a node's input state as seen by ``targets``."""
    ids = [m.id for m in _messages_in(state) if getattr(m, "id", None) is not None]
    if ids:
        for target in targets:
            target.seen_messages.update(ids)


def node_metadata(task: Task, integration: str = INTEGRATION_NODE) -> dict[str, Any]:
    """Return ``task``'s run metadata in LangGraph's order, ``ls_integration`` set.

    LangGraph adds ``ls_integration`` to the run's callback metadata before any task's
    ``langgraph_*`` keys, so it sits right before ``langgraph_step``.
    """
    out: dict[str, Any] = {}
    for key, value in task.config.get("metadata", {}).items():
        if key == "langgraph_step":
            out["ls_integration"] = integration
        if key != "ls_integration":
            out[key] = value
    return out


def user_tags(tags: Iterable[str] | None) -> list[str] | None:
    """Drop LangChain's internal ``seq:step:*`` tags (LangGraph's ``filter_to_user_tags``)."""
    kept = [t for t in tags or () if not t.startswith("seq:step")]
    return kept or None


def llm_metadata(task: Task, *, provider: str, model: str, integration: str) -> dict[str, Any]:
    """Return the metadata of tokens from a non-LangChain LLM call in ``task``.

    The keys and their order are those LangChain gives a chat model's tokens: the node's
    metadata, ``checkpoint_ns``, then ``ls_provider`` / ``ls_model_name`` / ``ls_model_type``
    and the run's tags.
    """
    metadata = node_metadata(task, integration)
    metadata.setdefault("checkpoint_ns", task.checkpoint_ns)
    metadata["ls_provider"] = provider
    metadata["ls_model_name"] = model
    metadata["ls_model_type"] = "chat"
    tags = user_tags(task.config.get("tags"))
    if tags is not None:
        metadata["tags"] = tags
    return metadata


def emit_message(
    streams: Streams,
    run: RunInfo,
    task: Task,
    targets: Sequence[StreamTarget],
    message: Any,
    metadata: dict[str, Any],
    *,
    dedupe: bool,
    handle: SpanHandle | None = None,
    metadata_json: str | None = None,
) -> None:
    """Emit ``(message, metadata)`` to each of ``targets`` that has not seen its id (if ``dedupe``).

    A message without an id gets one, in place, as LangGraph does. ``metadata_json`` is the
    metadata already encoded: an LLM call encodes it once for all its tokens.
    """
    if getattr(message, "id", None) is None:
        message.id = str(uuid.uuid4())
    message_id = message.id
    fresh = [t for t in targets if not dedupe or message_id not in t.seen_messages]
    if not fresh:
        return
    for target in fresh:
        target.seen_messages.add(message_id)
    payload_json = None
    pipeline = streams.pipeline
    if metadata_json is not None and pipeline.encode_payloads:
        payload_json = encode_tuple([encode(message, pipeline.redactor), metadata_json])
    if handle is None:
        handle = task.handle if task.handle is not None else run.handle
    streams.emit(
        run.namespace,
        "messages",
        (message, metadata),
        graph=run.graph_name,
        node=task.name,
        handle=handle,
        targets=fresh,
        payload_json=payload_json,
    )


def emit_node_output(streams: Streams, run: RunInfo, task: Task, result: Any) -> None:
    """Emit the messages ``task``'s node returned, before its ``updates`` chunk."""
    targets = streams.targets_for(run.namespace, "messages")
    if not targets:
        return
    messages = node_output_messages(result)
    if not messages:
        return
    metadata = node_metadata(task)
    for message in messages:
        emit_message(streams, run, task, targets, message, metadata, dedupe=True)

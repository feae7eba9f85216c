"""Server-Sent Events frames for a run's stream, in otelstream's and LangGraph Server's flavours.

Both flavours send one frame per chunk: ``event:`` the mode (``mode|ns1|ns2`` for a subgraph's
chunk, as LangGraph Server spells it), ``id:`` the chunk's seq (strictly increasing, compared as
integers on resume), ``data:`` the chunk as one line of JSON. Lines end in CRLF, as
langgraph-api writes them.

- otelstream's flavour (``/runs/{id}/stream``) sends the payload exactly as otelstream encoded
  it (plain JSON, with ``{"$t": ...}`` tags only for what JSON cannot tell apart), so
  ``remote_stream`` decodes it back to the same Python objects; a gap is an ``event: gap``;
  the last frame is ``event: end`` with the outcome and every gap.
- LangGraph's flavour (``/threads/{tid}/runs/{rid}/stream``) sends plain JSON as LangGraph
  Server does (tuples as arrays, messages as their fields with ``type``), opens with
  ``event: metadata`` and closes with ``event: end``.
"""

from __future__ import annotations

import json
from typing import Any

from otelstream.serve._store import Entry, Run

__all__ = ["end_data", "frame", "langgraph_status", "plain"]

_MAX_DEPTH = 400
# LangChain's message classes carry their kind in a `type` field left at its default, which
# otelstream's encoding leaves out; LangGraph Server's JSON has it
_MESSAGE_TYPES = {
    "AIMessage": "ai",
    "HumanMessage": "human",
    "SystemMessage": "system",
    "ToolMessage": "tool",
    "FunctionMessage": "function",
    "ChatMessage": "chat",
    "RemoveMessage": "remove",
}
_LANGGRAPH_STATUS = {
    "completed": "success",
    "failed": "error",
    "interrupted": "interrupted",
    "abandoned": "interrupted",
    "cancelled": "interrupted",
}


def frame(event: str, data: str, event_id: int | None = None) -> bytes:
    """One SSE frame; ``data`` must be one line (JSON as ``json.dumps`` writes it is)."""
    head = f"event: {event}\r\ndata: {data}\r\n"
    if event_id is not None:
        head += f"id: {event_id}\r\n"
    return (head + "\r\n").encode("utf-8")


def langgraph_status(run: Run) -> str:
    """The run's status in LangGraph Server's words (``pending|running|success|error|...``)."""
    if not run.finished:
        return "running"
    return _LANGGRAPH_STATUS.get(run.outcome or "", "error" if run.gaps else "success")


def end_data(run: Run) -> dict[str, Any]:
    """What the closing ``end`` event says: the outcome, and what the stream lacks."""
    return {
        "run_id": run.run_id,
        "status": langgraph_status(run),
        "outcome": run.outcome,
        "event_count": run.event_count,
        "gaps": [{"first_seq": g.first_seq, "count": g.count} for g in sorted(run.gaps, key=lambda g: g.first_seq)],
        "conflicts": sorted(run.late_conflicts),
        "truncated": run.truncated,
        "complete": not run.gaps and run.event_count is not None and not run.truncated,
    }


def gap_data(entry: Entry) -> str:
    """The ``gap`` event's data."""
    assert entry.gap is not None
    return json.dumps({"first_seq": entry.gap.first_seq, "count": entry.gap.count}, separators=(",", ":"))


def plain(data: str) -> str:
    """Turn otelstream's tagged JSON into the plain JSON LangGraph Server would have sent."""
    try:
        return json.dumps(_untag(json.loads(data), 0), separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError):
        return json.dumps(data)


def _untag(raw: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return None
    if isinstance(raw, list):
        return [_untag(v, depth + 1) for v in raw]
    if not isinstance(raw, dict):
        return raw
    tag = raw.get("$t")
    if tag is None:
        return {k: _untag(v, depth + 1) for k, v in raw.items()}
    value = raw.get("v")
    if tag == "otelstream.truncated":
        return raw
    if tag in ("tuple", "set"):
        return _untag(value, depth + 1)
    if tag == "dict" and isinstance(value, list):
        return {
            _key(pair[0]): _untag(pair[1], depth + 1) for pair in value if isinstance(pair, list) and len(pair) == 2
        }
    if tag == "float":
        return None  # NaN and infinities have no JSON form
    if tag in ("model", "dataclass"):
        fields = _untag(value, depth + 1)
        kind = str(raw.get("type", "")).rpartition(":")[2]
        if isinstance(fields, dict) and "type" not in fields and tag == "model":
            fields["type"] = _MESSAGE_TYPES.get(kind, kind)
        return fields
    if tag == "send":
        return {"node": raw.get("node"), "arg": _untag(raw.get("arg"), depth + 1)}
    if tag == "exc":
        return {"error": str(raw.get("type", "")).rpartition(":")[2], "message": _untag(raw.get("args"), depth + 1)}
    if tag == "enum":
        return _untag(value, depth + 1)
    return value  # bytes (base64), datetimes (ISO text), repr text, truncation markers' heads


def _key(raw: Any) -> str:
    plain_key = _untag(raw, 0)
    return plain_key if isinstance(plain_key, str) else json.dumps(plain_key)

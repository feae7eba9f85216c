"""Projections of exported telemetry to plain data, for assertions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan

from otelstream.telemetry import semconv
from otelstream.telemetry.codec import decode


def stream_records(logs: Sequence[ReadableLogRecord]) -> list[ReadableLogRecord]:
    """The exported records that carry stream chunks, in sequence order per run."""
    chunks = [
        r
        for r in logs
        if (r.log_record.event_name or "").startswith(semconv.EVENT_PREFIX)
        and r.log_record.event_name != semconv.RUN_END_EVENT
    ]
    return sorted(
        chunks,
        key=lambda r: (str(_attrs(r)[semconv.RUN_ID]), int(_attrs(r)[semconv.SEQ])),
    )


def _attrs(record: ReadableLogRecord) -> dict[str, Any]:
    return dict(record.log_record.attributes or {})


def rebuild(logs: Sequence[ReadableLogRecord], run_id: str | None = None) -> list[tuple[Any, ...]]:
    """Rebuild ``(namespace, mode, payload)`` chunks of one run from exported records alone."""
    out = []
    for record in stream_records(logs):
        attrs = _attrs(record)
        if run_id is not None and attrs[semconv.RUN_ID] != run_id:
            continue
        ns = str(attrs[semconv.NAMESPACE])
        mode = (record.log_record.event_name or "")[len(semconv.EVENT_PREFIX) :]
        out.append((tuple(ns.split("|")) if ns else (), mode, decode(str(attrs[semconv.PAYLOAD]))))
    return out


def rebuild_from_spans_and_logs(
    spans: Sequence[ReadableSpan], logs: Sequence[ReadableLogRecord]
) -> list[tuple[Any, ...]]:
    """Rebuild one run's ``(namespace, mode, payload)`` chunks from span events and log records."""
    carried: list[tuple[str, dict[str, Any]]] = [
        (event.name, dict(event.attributes or {}))
        for span in spans
        for event in span.events
        if event.name.startswith(semconv.EVENT_PREFIX) and event.name != semconv.RUN_END_EVENT
    ]
    carried += [(r.log_record.event_name or "", _attrs(r)) for r in stream_records(logs)]
    carried.sort(key=lambda item: int(item[1][semconv.SEQ]))
    out = []
    for name, attrs in carried:
        ns = str(attrs[semconv.NAMESPACE])
        mode = name[len(semconv.EVENT_PREFIX) :]
        out.append((tuple(ns.split("|")) if ns else (), mode, decode(str(attrs[semconv.PAYLOAD]))))
    return out


def run_ids(logs: Sequence[ReadableLogRecord]) -> list[str]:
    """The run ids of the exported stream records, in order of first appearance."""
    seen: dict[str, None] = {}
    for record in stream_records(logs):
        seen.setdefault(str(_attrs(record)[semconv.RUN_ID]), None)
    return list(seen)


def span_summary(spans: Sequence[ReadableSpan]) -> list[dict[str, Any]]:
    """Name, parent name, status and otelstream/gen_ai attributes of each span, by start time."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    out = []
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = by_id.get(span.parent.span_id) if span.parent is not None else None
        attrs = {
            k: v
            for k, v in (span.attributes or {}).items()
            if k in (semconv.OUTCOME, semconv.NODE, semconv.GEN_AI_OPERATION_NAME, semconv.ERROR_TYPE)
        }
        out.append(
            {
                "name": span.name,
                "parent": parent.name if parent is not None else None,
                "status": span.status.status_code.name,
                **attrs,
            }
        )
    return out

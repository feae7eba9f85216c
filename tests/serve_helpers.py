"""Shared by the gateway's tests: real telemetry of a real run, as OTLP requests, and an SSE reader."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan


def logs_request(records: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
    request: ExportLogsServiceRequest = encode_logs(records)
    return request


def spans_request(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    request: ExportTraceServiceRequest = encode_spans(spans)
    return request


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The events of an SSE body: ``{"event", "data", "id"}`` each (comments skipped)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            if current:
                events.append(current)
                current = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        current[name] = value[1:] if value.startswith(" ") else value
    return events


def chunks_of(events: Iterable[dict[str, Any]]) -> list[tuple[str, Any, int]]:
    """``(event, data, id)`` of the chunk events (no gap/end/metadata)."""
    return [
        (e["event"], json.loads(e["data"]), int(e["id"]))
        for e in events
        if e["event"] not in ("end", "gap", "error", "metadata")
    ]

"""Reading OTLP protobuf: ``ExportLogsServiceRequest`` and ``ExportTraceServiceRequest`` messages.

The gateway receives these over OTLP/HTTP (``application/x-protobuf``) and OTLP/gRPC; the
message classes come from the ``opentelemetry-proto`` package the OTLP exporter installs.
Every record and span is handed to a :class:`~otelstream._otlp.records.Telemetry` exactly as
the OTLP-JSON reader hands it, so both encodings are understood the same way.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otelstream._otlp.records import Telemetry

__all__ = ["attributes", "load_logs", "load_spans"]

_MAX_DEPTH = 32


def load_logs(request: ExportLogsServiceRequest, telemetry: Telemetry, where: str) -> int:
    """Add every log record of ``request`` to ``telemetry``; return how many records it holds.

    Raises:
        ValueError: an attribute value nested absurdly deep (a forged request).
    """
    count = 0
    for resource in request.resource_logs:
        for scope in resource.scope_logs:
            for record in scope.log_records:
                count += 1
                telemetry.add_record(
                    record.event_name,
                    attributes(record.attributes),
                    record.time_unix_nano or record.observed_time_unix_nano,
                    where,
                    record.trace_id.hex(),
                )
    return count


def load_spans(request: ExportTraceServiceRequest, telemetry: Telemetry, where: str) -> int:
    """Add every span of ``request`` (and its events) to ``telemetry``; return how many spans.

    Raises:
        ValueError: an attribute value nested absurdly deep (a forged request).
    """
    count = 0
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                count += 1
                trace_id = span.trace_id.hex()
                telemetry.add_span(
                    span.name, attributes(span.attributes), trace_id, span.start_time_unix_nano, span.end_time_unix_nano
                )
                for event in span.events:
                    telemetry.add_record(
                        event.name, attributes(event.attributes), event.time_unix_nano, where, trace_id
                    )
    return count


def attributes(items: Any) -> dict[str, Any]:
    """Turn repeated ``KeyValue`` into a plain mapping of Python values."""
    return {item.key: _value(item.value, 0) for item in items}


def _value(value: AnyValue, depth: int) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if depth > _MAX_DEPTH:
        raise ValueError(f"attribute values nested deeper than {_MAX_DEPTH} levels")
    if kind == "array_value":
        return [_value(v, depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    return getattr(value, kind)

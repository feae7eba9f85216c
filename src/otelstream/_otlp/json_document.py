"""Reading OTLP-JSON: the protobuf JSON mapping of OTLP, as the spec defines it.

Not through protobuf's stock JSON parser, which would base64-decode the hex ``traceId``: ids
stay hex strings, int64 values are accepted as strings or numbers, unknown fields are ignored,
and both lowerCamelCase and the snake_case some exporters write are read.
"""

from __future__ import annotations

from typing import Any

from otelstream._otlp.records import Telemetry

__all__ = ["attributes", "load_document"]


def load_document(document: Any, telemetry: Telemetry, where: str) -> None:
    """Add every otelstream record and run span of one OTLP-JSON document to ``telemetry``.

    Lenient: what it cannot read becomes a line in ``telemetry.problems``. Ids stay the hex
    strings the JSON mapping writes; int64 values may be strings or numbers.
    """
    if not isinstance(document, dict):
        telemetry.problems.append(f"{where}: not an OTLP JSON object")
        return
    # Jaeger v2's API wraps the trace in "result", Tempo's in "trace" (or "batches")
    for wrapper in ("result", "trace", "data"):
        if isinstance(document.get(wrapper), dict):
            document = document[wrapper]
    resource_spans = _get(document, "resourceSpans", "resource_spans") or document.get("batches") or []
    resource_logs = _get(document, "resourceLogs", "resource_logs") or []
    if not resource_spans and not resource_logs:
        telemetry.problems.append(f"{where}: no resourceSpans or resourceLogs")
    for resource in _list(resource_spans):
        for scope in _list(_get(resource, "scopeSpans", "scope_spans", "instrumentationLibrarySpans")):
            for span in _list(_get(scope, "spans")):
                _load_otlp_span(span, telemetry, where)
    for resource in _list(resource_logs):
        for scope in _list(_get(resource, "scopeLogs", "scope_logs")):
            for record in _list(_get(scope, "logRecords", "log_records")):
                if not isinstance(record, dict):
                    continue
                name = _get(record, "eventName", "event_name") or ""
                telemetry.add_record(
                    str(name),
                    attributes(_get(record, "attributes")),
                    _nanos(_get(record, "timeUnixNano", "time_unix_nano")),
                    where,
                    _trace_id(_get(record, "traceId", "trace_id")),
                )


def _load_otlp_span(span: Any, telemetry: Telemetry, where: str) -> None:
    if not isinstance(span, dict):
        return
    telemetry.add_span(
        str(span.get("name", "")),
        attributes(_get(span, "attributes")),
        _trace_id(_get(span, "traceId", "trace_id")),
        _nanos(_get(span, "startTimeUnixNano", "start_time_unix_nano")),
        _nanos(_get(span, "endTimeUnixNano", "end_time_unix_nano")),
    )
    for event in _list(_get(span, "events")):
        if isinstance(event, dict):
            telemetry.add_record(
                str(event.get("name", "")),
                attributes(_get(event, "attributes")),
                _nanos(_get(event, "timeUnixNano", "time_unix_nano")),
                where,
                _trace_id(_get(span, "traceId", "trace_id")),
            )


def _get(node: Any, *keys: str) -> Any:
    if not isinstance(node, dict):
        return None
    for key in keys:
        if key in node:
            return node[key]
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _nanos(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _trace_id(value: Any) -> str:
    return value.lower() if isinstance(value, str) else ""  # hex ids are case-insensitive


def attributes(items: Any) -> dict[str, Any]:
    """Turn OTLP-JSON ``attributes`` (a list of ``{key, value}``) into a plain mapping."""
    if isinstance(items, dict):  # already a plain mapping (Phoenix's REST view)
        return dict(items)
    out: dict[str, Any] = {}
    for item in _list(items):
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = _any_value(item.get("value"))
    return out


def _any_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    for key, convert in _SCALARS:
        if key in value:
            try:
                return convert(value[key])
            except (TypeError, ValueError):
                return value[key]  # malformed (an intValue that is no integer): reported downstream
    array = _get(value, "arrayValue", "array_value")
    if isinstance(array, dict):
        return [_any_value(v) for v in _list(array.get("values"))]
    kvlist = _get(value, "kvlistValue", "kvlist_value")
    if isinstance(kvlist, dict):
        return attributes(kvlist.get("values"))
    return None


_SCALARS: tuple[tuple[str, Any], ...] = (
    ("stringValue", str),
    ("string_value", str),
    ("intValue", int),
    ("int_value", int),
    ("doubleValue", float),
    ("double_value", float),
    ("boolValue", bool),
    ("bool_value", bool),
    ("bytesValue", str),
    ("bytes_value", str),
)

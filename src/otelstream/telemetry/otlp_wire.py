"""Lean OTLP/HTTP exporters: otelstream's log records and spans written straight as protobuf.

The SDK's ``encode_logs`` / ``encode_spans`` build a protobuf object per record, attribute
and value in pure Python and hold the GIL throughout, so a 512-record batch stalls the
application's threads for milliseconds (bench/README.md has the measured costs).
otelstream's records and spans are simple — no log body, attributes
that are strings, integers, floats, booleans or lists of them — so they are written here
as protobuf bytes, with the resource and scope encoded once per batch and attribute keys
cached, in slices that let other threads run in between. Anything else (a log body,
another attribute type, text that is not UTF-8, an SDK without the HTTP client this relies
on) goes through the SDK's own exporter unchanged. The SDK internals it uses are read in
:mod:`otelstream.telemetry._sdk`.

Wire format: ``opentelemetry/proto/{logs,trace}/v1``; the tests parse what this writes with
the official protobuf classes and compare it with the SDK encoders' output.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from otelstream.telemetry import _sdk, semconv
from otelstream.telemetry.export import PRODUCERS_WAITING

__all__ = ["StreamLogExporter", "StreamSpanExporter", "encode_logs_request", "encode_spans_request"]

SLICE = 64
"""Records encoded between two GIL releases: keeps any other thread's wait well under 1 ms."""

_SMALL = [bytes((i,)) for i in range(0x80)]
_KEYS: dict[str, bytes] = {}


class _Unsupported(Exception):
    """A record the lean encoder does not write: the SDK encoder handles the batch."""


def _varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _SMALL[n]
    n &= (1 << 64) - 1  # int64 two's complement, as protobuf writes negative numbers
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate: not valid protobuf text
        raise _Unsupported("text that is not valid UTF-8") from exc


def _key(key: str) -> bytes:
    # a KeyValue's key field; otelstream writes few distinct keys, so they are cached
    encoded = _KEYS.get(key)
    if encoded is None:
        if len(_KEYS) > 4096:
            _KEYS.clear()  # someone else's records with unbounded keys: do not grow forever
        encoded = _KEYS[key] = _field(b"\x0a", _utf8(key))
    return encoded


def _any_value(value: Any) -> bytes:
    # AnyValue: string_value 1, bool_value 2, int_value 3, double_value 4, array_value 5
    if isinstance(value, str):
        return _field(b"\x0a", _utf8(value))
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise _Unsupported("integer attribute out of int64 range")
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, (list, tuple)):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    raise _Unsupported(f"attribute of type {type(value).__name__}")


def _log_record(readable: ReadableLogRecord) -> bytes:
    # LogRecord: time 1, severity_number 2, severity_text 3, body 5, attributes 6,
    # dropped_attributes_count 7, flags 8, trace_id 9, span_id 10, observed_time 11, event_name 12
    record = readable.log_record
    if record.body is not None or readable.dropped_attributes:
        raise _Unsupported("a record with a body or dropped attributes")
    parts = [b"\x09" + struct.pack("<Q", record.timestamp or 0)]
    severity = getattr(record.severity_number, "value", None)
    if severity:
        parts.append(b"\x10" + _varint(severity))
    if record.severity_text:
        parts.append(_field(b"\x1a", record.severity_text.encode()))
    parts.append(b"\x2a\x00")  # an empty body, as the SDK encoder writes for None
    parts.extend(_attributes(b"\x32", record.attributes))
    if record.trace_flags:
        parts.append(b"\x45" + struct.pack("<I", int(record.trace_flags)))
    if record.trace_id:
        parts.append(b"\x4a\x10" + record.trace_id.to_bytes(16, "big"))
    if record.span_id:
        parts.append(b"\x52\x08" + record.span_id.to_bytes(8, "big"))
    parts.append(b"\x59" + struct.pack("<Q", record.observed_timestamp or 0))
    if record.event_name:
        parts.append(_field(b"\x62", record.event_name.encode()))
    return b"".join(parts)


# whole encoded attributes whose value repeats record after record (run id, graph, node,
# namespace, mode lists): a stream record's attributes are mostly these, so each is encoded
# once per value instead of once per record
_REPEATED: dict[tuple[bytes, str, Any], bytes] = {}
_REPEATED_MAX_TEXT = 256


def _attribute(tag: bytes, key: str, value: Any) -> bytes:
    if isinstance(value, str) and len(value) <= _REPEATED_MAX_TEXT and key != semconv.PAYLOAD:
        cache_key = (tag, key, value)
        encoded = _REPEATED.get(cache_key)
        if encoded is None:
            if len(_REPEATED) > 4096:
                _REPEATED.clear()  # many distinct values: do not grow forever
            encoded = _REPEATED[cache_key] = _field(tag, _key(key) + _field(b"\x12", _any_value(value)))
        return encoded
    return _field(tag, _key(key) + _field(b"\x12", _any_value(value)))


def _attributes(tag: bytes, attributes: Any) -> list[bytes]:
    return [_attribute(tag, key, value) for key, value in (attributes or {}).items()]


def _request(items: Sequence[Any], encode: Any, slice_size: int) -> bytes | None:
    # ExportLogsServiceRequest / ExportTraceServiceRequest: resource_{logs,spans} 1; each
    # Resource{Logs,Spans}: resource 1, scope_{logs,spans} 2 (scope 1, items 2, schema_url 3),
    # schema_url 3 -- the same layout for both signals
    groups: dict[tuple[int, int], tuple[Any, Any, list[bytes]]] = {}
    try:
        for index, item in enumerate(items):
            if index and index % slice_size == 0 and not PRODUCERS_WAITING:
                # let the application's threads run between slices -- unless they are waiting
                # for this very export to make room, which yielding would only delay
                time.sleep(0)
            key = (id(item.resource), id(item.instrumentation_scope))
            group = groups.get(key)
            if group is None:
                group = groups[key] = (item.resource, item.instrumentation_scope, [])
            group[2].append(_field(b"\x12", encode(item)))
    except _Unsupported:
        return None
    by_resource: dict[int, tuple[Any, list[bytes]]] = {}
    for resource, scope, encoded in groups.values():
        try:
            scoped = _field(b"\x0a", _sdk.encode_scope(scope)) + b"".join(encoded)
        except TypeError:  # a scope attribute OTLP cannot carry: the SDK's encoder decides
            return None
        if scope is not None and scope.schema_url:
            scoped += _field(b"\x1a", _utf8(scope.schema_url))
        by_resource.setdefault(id(resource), (resource, []))[1].append(_field(b"\x12", scoped))
    out = []
    for resource, scopes in by_resource.values():
        try:
            body = _field(b"\x0a", _sdk.encode_resource(resource)) + b"".join(scopes)
        except TypeError:
            return None
        if resource.schema_url:
            body += _field(b"\x1a", _utf8(resource.schema_url))
        out.append(_field(b"\x0a", body))
    return b"".join(out)


def encode_logs_request(batch: Sequence[ReadableLogRecord], *, slice_size: int = SLICE) -> bytes | None:
    """Return ``batch`` as a serialized ``ExportLogsServiceRequest``, or None if it needs the SDK.

    The GIL is released after every ``slice_size`` records.
    """
    return _request(batch, _log_record, slice_size)


_KIND = {0: b"\x30\x01", 1: b"\x30\x02", 2: b"\x30\x03", 3: b"\x30\x04", 4: b"\x30\x05"}
# SpanFlags: the parent's is-remote bit is known (0x100), and set (0x200) for a remote parent
_LOCAL_FLAGS = b"\x85\x01" + struct.pack("<I", 0x100)
_REMOTE_FLAGS = b"\x85\x01" + struct.pack("<I", 0x300)


def _span(span: ReadableSpan) -> bytes:
    # Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6, start 7,
    # end 8, attributes 9, dropped_attributes 10, events 11, dropped_events 12, links 13,
    # dropped_links 14, status 15, flags 16
    context = span.get_span_context()
    if context is None:
        raise _Unsupported("a span without a context")
    parts = [b"\x0a\x10" + context.trace_id.to_bytes(16, "big"), b"\x12\x08" + context.span_id.to_bytes(8, "big")]
    if context.trace_state:
        parts.append(_field(b"\x1a", _utf8(",".join(f"{k}={v}" for k, v in context.trace_state.items()))))
    parent = span.parent
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    parts.append(_field(b"\x2a", _utf8(span.name)))
    parts.append(_KIND[span.kind.value])
    parts.append(b"\x39" + struct.pack("<Q", span.start_time or 0))
    parts.append(b"\x41" + struct.pack("<Q", span.end_time or 0))
    parts.extend(_attributes(b"\x4a", span.attributes))
    if span.dropped_attributes:
        parts.append(b"\x50" + _varint(span.dropped_attributes))
    for event in span.events:
        # Event: time 1, name 2, attributes 3, dropped_attributes 4
        event_parts = [b"\x09" + struct.pack("<Q", event.timestamp or 0), _field(b"\x12", _utf8(event.name))]
        event_parts.extend(_attributes(b"\x1a", event.attributes))
        if event.dropped_attributes:
            event_parts.append(b"\x20" + _varint(event.dropped_attributes))
        parts.append(_field(b"\x5a", b"".join(event_parts)))
    if span.dropped_events:
        parts.append(b"\x60" + _varint(span.dropped_events))
    for link in span.links:
        # Link: trace_id 1, span_id 2, attributes 4, dropped_attributes 5, flags 6
        link_parts = [
            b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + link.context.span_id.to_bytes(8, "big"),
        ]
        link_parts.extend(_attributes(b"\x22", link.attributes))
        if link.dropped_attributes:
            link_parts.append(b"\x28" + _varint(link.dropped_attributes))
        link_parts.append(b"\x35" + struct.pack("<I", 0x300 if link.context.is_remote else 0x100))
        parts.append(_field(b"\x6a", b"".join(link_parts)))
    if span.dropped_links:
        parts.append(b"\x70" + _varint(span.dropped_links))
    status = span.status
    status_parts = []
    if status.description:
        status_parts.append(_field(b"\x12", _utf8(status.description)))
    if status.status_code.value:
        status_parts.append(b"\x18" + _varint(status.status_code.value))
    parts.append(_field(b"\x7a", b"".join(status_parts)))
    parts.append(_REMOTE_FLAGS if parent is not None and parent.is_remote else _LOCAL_FLAGS)
    return b"".join(parts)


def encode_spans_request(spans: Sequence[ReadableSpan], *, slice_size: int = SLICE) -> bytes | None:
    """Return ``spans`` as a serialized ``ExportTraceServiceRequest``, or None if it needs the SDK."""
    return _request(spans, _span, slice_size)


_TOO_LARGE = 413


def _send(exporter: Any, items: Sequence[Any], encode: Any, sdk_export: Any, sdk_success: Any) -> list[Any]:
    """Send ``items``; return those that could not be sent.

    A request the collector refuses as too large (HTTP 413), or that exceeds the exporter's
    ``max_request_size``, is split in halves and each half sent on its own, down to single
    items: only what still cannot be sent is lost.
    """
    client = _sdk.exporter_client(exporter)
    data = encode(items) if client is not None else None
    if client is None or data is None:
        # the lean encoder does not handle these items: the SDK's own export, all or nothing
        return [] if sdk_export(items) is sdk_success else list(items)
    if client.fits(data):
        posted = client.post(data, len(items))
        if posted.ok:
            return []
        if posted.status != _TOO_LARGE:
            return list(items)
    if len(items) == 1:
        return list(items)
    middle = len(items) // 2
    return _send(exporter, items[:middle], encode, sdk_export, sdk_success) + _send(
        exporter, items[middle:], encode, sdk_export, sdk_success
    )


class StreamLogExporter(OTLPLogExporter):
    """The SDK's OTLP/HTTP log exporter (same settings, retries, environment variables), leaner."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Send ``batch``; records the lean encoder does not handle go through the SDK path."""
        return LogRecordExportResult.FAILURE if self.export_unsent(batch) else LogRecordExportResult.SUCCESS

    def export_unsent(self, batch: Sequence[ReadableLogRecord]) -> list[ReadableLogRecord]:
        """Send ``batch`` (a batch too large for the collector in halves); return what was not sent."""
        return _send(self, batch, encode_logs_request, super().export, LogRecordExportResult.SUCCESS)


class StreamSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter (same settings, retries, environment variables), leaner."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Send ``spans`` (too large a request in halves); spans the lean encoder does not handle go through the SDK."""
        unsent = _send(self, spans, encode_spans_request, super().export, SpanExportResult.SUCCESS)
        return SpanExportResult.FAILURE if unsent else SpanExportResult.SUCCESS

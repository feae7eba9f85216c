"""A lean OTLP/HTTP log exporter for otelstream's own records.

The SDK's ``encode_logs`` builds a protobuf object per record, attribute and value in pure
Python (~27 µs per stream record, measured in ``bench/``) and holds the GIL throughout, so a
512-record batch stalls the application's threads for 15-35 ms. otelstream's stream records
are simple — no body, attributes that are strings, integers, booleans or lists of them — so
they are written here straight as protobuf bytes, with the resource and scope encoded once
per batch and attribute keys cached (~8 µs per record), in slices that let other threads run
in between. Anything else (a record with a body, another attribute type, an SDK without the
HTTP client this relies on) goes through the SDK's own exporter unchanged.

Wire format: ``opentelemetry/proto/collector/logs/v1/logs_service.proto``; the tests parse
what this writes with the official protobuf classes and compare it with the SDK encoder's.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal import _encode_instrumentation_scope, _encode_resource
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult

__all__ = ["StreamLogExporter", "encode_logs_request"]

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
    attributes = record.attributes or {}
    for key, value in attributes.items():
        parts.append(_field(b"\x32", _key(key) + _field(b"\x12", _any_value(value))))
    if record.trace_flags:
        parts.append(b"\x45" + struct.pack("<I", int(record.trace_flags)))
    if record.trace_id:
        parts.append(b"\x4a\x10" + record.trace_id.to_bytes(16, "big"))
    if record.span_id:
        parts.append(b"\x52\x08" + record.span_id.to_bytes(8, "big"))
    parts.append(b"\x59" + struct.pack("<Q", record.observed_timestamp or 0))
    if record.event_name:
        parts.append(_field(b"\x62", record.event_name.encode()))
    return _field(b"\x12", b"".join(parts))


def encode_logs_request(batch: Sequence[ReadableLogRecord], *, slice_size: int = SLICE) -> bytes | None:
    """Return ``batch`` as a serialized ``ExportLogsServiceRequest``, or None if it needs the SDK.

    The GIL is released after every ``slice_size`` records.
    """
    groups: dict[tuple[int, int], tuple[Any, Any, list[bytes]]] = {}
    try:
        for index, readable in enumerate(batch):
            if index and index % slice_size == 0:
                time.sleep(0)  # let the application's threads run between slices
            key = (id(readable.resource), id(readable.instrumentation_scope))
            group = groups.get(key)
            if group is None:
                group = groups[key] = (readable.resource, readable.instrumentation_scope, [])
            group[2].append(_log_record(readable))
    except _Unsupported:
        return None
    out = []
    for resource, scope, records in groups.values():
        # ResourceLogs: resource 1, scope_logs 2, schema_url 3; ScopeLogs: scope 1, log_records 2, schema_url 3
        scope_logs = b"".join(records)
        if scope is not None:
            scope_logs = _field(b"\x0a", _encode_instrumentation_scope(scope).SerializeToString()) + scope_logs
            if scope.schema_url:
                scope_logs += _field(b"\x1a", scope.schema_url.encode())
        resource_logs = _field(b"\x0a", _encode_resource(resource).SerializeToString()) + _field(b"\x12", scope_logs)
        if resource.schema_url:
            resource_logs += _field(b"\x1a", resource.schema_url.encode())
        out.append(_field(b"\x0a", resource_logs))
    return b"".join(out)


class StreamLogExporter(OTLPLogExporter):
    """The SDK's OTLP/HTTP log exporter (same settings, retries, environment variables) with a lean encoder."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Send ``batch``; records the lean encoder does not handle go through the SDK path."""
        client = getattr(self, "_client", None)
        if getattr(self, "_shutdown", False) or client is None or not hasattr(client, "export"):
            return super().export(batch)
        data = encode_logs_request(batch)
        max_size = getattr(self, "_max_request_size", None)
        if data is None or (max_size is not None and len(data) > max_size):
            return super().export(batch)  # the SDK's own handling, warnings included
        metrics = getattr(self, "_metrics", None)
        if metrics is None:
            return LogRecordExportResult.SUCCESS if client.export(data).success else LogRecordExportResult.FAILURE
        with metrics.export_operation(len(batch)) as outcome:  # the SDK exporter's own metrics
            result = client.export(data)
            if not result.success:
                outcome.error = result.error
                return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS

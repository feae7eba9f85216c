"""Exporters that append OTLP-JSON lines to a local file: the embedded default sink.

Each export call writes one line, ``{"resourceSpans": [...]}`` or ``{"resourceLogs": [...]}``,
the format the OpenTelemetry Collector's ``file`` exporter writes and OTLP/HTTP JSON uses:
hex trace and span ids, integer enums, camelCase field names.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelstream.telemetry import _sdk

__all__ = ["OTLPJsonFile", "OTLPJsonFileLogExporter", "OTLPJsonFileSpanExporter"]

_ID_FIELDS = frozenset(("traceId", "spanId", "parentSpanId"))


def _hex_ids(node: Any) -> Any:
    # protobuf's JSON mapping writes bytes as base64; OTLP JSON wants ids in hex
    if isinstance(node, dict):
        return {
            k: (base64.b64decode(v).hex() if k in _ID_FIELDS and isinstance(v, str) else _hex_ids(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


class OTLPJsonFile:
    """An append-only OTLP-JSON lines file shared by the span and log exporters."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open (create) ``path`` for appending; parent folders are created."""
        self.path = os.fspath(path)
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")
        self._users = 0

    def acquire(self) -> OTLPJsonFile:
        """Register one more exporter writing here; the file closes when the last one shuts down."""
        with self._lock:
            self._users += 1
        return self

    def write(self, message: Any) -> None:
        """Append one export request as a JSON line."""
        data = _hex_ids(MessageToDict(message, use_integers_for_enums=True))
        line = json.dumps(data, separators=(",", ":"))
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        """Release one exporter's use; the last one closes the file (later writes are dropped)."""
        with self._lock:
            self._users -= 1
            if self._users <= 0:
                self._file.close()


def _encode_logs(batch: Sequence[ReadableLogRecord]) -> Any | None:
    # the SDK's encoder; without it (a release that moved it) otelstream's own, which writes
    # the same message for otelstream's records and declines anything else (None)
    message = _sdk.encode_logs(batch)
    if message is not None:
        return message
    # imported here: otlp_wire loads the OTLP/HTTP exporter, which the file export never needs
    from otelstream.telemetry.otlp_wire import encode_logs_request  # noqa: PLC0415

    data = encode_logs_request(batch)
    return None if data is None else ExportLogsServiceRequest.FromString(data)


class OTLPJsonFileSpanExporter(SpanExporter):
    """Writes spans to an :class:`OTLPJsonFile`."""

    def __init__(self, file: OTLPJsonFile) -> None:
        """Export into ``file``."""
        self._file = file.acquire()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append the spans as one ``resourceSpans`` line."""
        try:
            self._file.write(encode_spans(spans))
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the file."""
        self._file.close()


class OTLPJsonFileLogExporter(LogRecordExporter):
    """Writes log records to an :class:`OTLPJsonFile`."""

    def __init__(self, file: OTLPJsonFile) -> None:
        """Export into ``file``."""
        self._file = file.acquire()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Append the records as one ``resourceLogs`` line."""
        message = _encode_logs(batch)
        if message is None:
            return LogRecordExportResult.FAILURE
        try:
            self._file.write(message)
        except OSError:
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the file."""
        self._file.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Writes are flushed as they happen."""
        return True

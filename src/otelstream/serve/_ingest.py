"""OTLP input: an HTTP body or a gRPC message turned into the records the store takes.

What the OTLP specification asks of a receiver, and what happens otherwise:

- ``application/x-protobuf`` or ``application/json`` (else 415), answered in the same type;
- ``Content-Encoding: gzip`` (the Collector's default) or none (else 415);
- a body larger than ``max_body`` bytes, before *or after* decompression: 413;
- a body that does not decode, or OTLP-JSON whose structure or hex ids are wrong: 400 with the
  reason, and nothing of that request is stored;
- otelstream records that cannot be read (a missing seq, a payload that is not a string):
  the rest is stored and the answer is 200 with ``partial_success`` naming how many were
  rejected and why (clients must not retry those).
"""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from typing import Any, Literal

from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.rpc import status_pb2  # type: ignore[import-untyped]  # googleapis-common-protos: no stubs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otelstream._otlp import protobuf
from otelstream._otlp.json_document import load_document
from otelstream._otlp.records import Telemetry
from otelstream.serve._store import NodeSpan, node_span

__all__ = ["Batch", "OTLPError", "Received", "decode_grpc", "decode_http", "error_body", "success_body"]

Signal = Literal["logs", "traces"]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_HEX_ID = {"traceId": re.compile(r"^([0-9a-fA-F]{32})?$"), "spanId": re.compile(r"^([0-9a-fA-F]{16})?$")}
_GRPC_INVALID_ARGUMENT = 3
_MAX_PROBLEMS_IN_MESSAGE = 3


class OTLPError(Exception):
    """A request the gateway refuses: ``status`` is the HTTP status, the message the reason."""

    def __init__(self, status: int, message: str) -> None:
        """Refuse with HTTP ``status`` for ``message``."""
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(slots=True)
class Received(Telemetry):
    """One request's records, with the node spans the web page's timeline shows."""

    nodes: list[NodeSpan] = dataclasses.field(default_factory=list)

    def add_span(self, name: str, attributes: dict[str, Any], trace_id: str, start_ns: int, end_ns: int) -> None:
        """Take a span: a run span (for the stream) or a node span (for the timeline)."""
        # not super(): a slots dataclass is a new class, which zero-argument super() misses
        Telemetry.add_span(self, name, attributes, trace_id, start_ns, end_ns)
        node = node_span(name, attributes, trace_id, start_ns, end_ns)
        if node is not None:
            self.nodes.append(node)


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    """A decoded request: what to store, and how many items it held."""

    received: Received
    signal: Signal
    items: int

    @property
    def rejected(self) -> int:
        """How many otelstream records could not be read."""
        return len(self.received.problems)


def decode_http(
    body: bytes, content_type: str | None, content_encoding: str | None, signal: Signal, max_body: int
) -> tuple[Batch, str]:
    """Decode a ``POST /v1/logs`` or ``/v1/traces`` body; return it with the response type.

    Raises:
        OTLPError: the request is refused (415, 413 or 400).
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        raise OTLPError(415, f"Content-Type {content_type!r} is not {PROTOBUF} or {JSON}")
    if len(body) > max_body:
        raise OTLPError(413, f"request body of {len(body)} bytes is over the {max_body}-byte limit")
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, max_body)
    elif encoding not in ("identity", ""):
        raise OTLPError(415, f"Content-Encoding {content_encoding!r} is not supported (gzip or none)")
    received = Received()
    if media == PROTOBUF:
        items = _load_protobuf(body, signal, received)
    else:
        items = _load_json(body, signal, received)
    return Batch(received, signal, items), media


def decode_grpc(request: ExportLogsServiceRequest | ExportTraceServiceRequest) -> Batch:
    """Take a gRPC export request (already parsed and size-checked by gRPC).

    Raises:
        OTLPError: a request that cannot be read (400's meaning: INVALID_ARGUMENT).
    """
    received = Received()
    try:
        if isinstance(request, ExportLogsServiceRequest):
            return Batch(received, "logs", protobuf.load_logs(request, received, "gRPC"))
        return Batch(received, "traces", protobuf.load_spans(request, received, "gRPC"))
    except (ValueError, RecursionError) as exc:
        raise OTLPError(400, f"unreadable OTLP request: {exc}") from None


def _gunzip(body: bytes, max_body: int) -> bytes:
    # decompress in bounded steps: a small bomb must not expand past the limit in memory
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_body + 1)
        if len(out) > max_body or inflater.unconsumed_tail:
            raise OTLPError(413, f"request body is over the {max_body}-byte limit after decompression")
        out += inflater.flush()
    except zlib.error as exc:
        raise OTLPError(400, f"Content-Encoding is gzip but the body is not: {exc}") from None
    if len(out) > max_body:
        raise OTLPError(413, f"request body is over the {max_body}-byte limit after decompression")
    if not inflater.eof:
        raise OTLPError(400, "the gzip body is cut short")
    return out


def _load_protobuf(body: bytes, signal: Signal, received: Received) -> int:
    try:
        if signal == "logs":
            logs = ExportLogsServiceRequest()
            logs.ParseFromString(body)
            return protobuf.load_logs(logs, received, "OTLP/HTTP protobuf")
        spans = ExportTraceServiceRequest()
        spans.ParseFromString(body)
        return protobuf.load_spans(spans, received, "OTLP/HTTP protobuf")
    except (ProtobufDecodeError, ValueError, RecursionError) as exc:
        raise OTLPError(400, f"body is not an OTLP {signal} protobuf message: {exc}") from None


_PATHS: dict[Signal, tuple[str, str, str]] = {
    "logs": ("resourceLogs", "scopeLogs", "logRecords"),
    "traces": ("resourceSpans", "scopeSpans", "spans"),
}


def _load_json(body: bytes, signal: Signal, received: Received) -> int:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OTLPError(400, f"body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise OTLPError(400, f"an OTLP {signal} request is a JSON object, not {type(document).__name__}")
    outer, middle, inner = _PATHS[signal]
    items = 0
    for r, resource in enumerate(_array(document, outer, outer)):
        where = f"{outer}[{r}]"
        for s, scope in enumerate(_array(resource, middle, where)):
            for i, item in enumerate(_array(scope, inner, f"{where}.{middle}[{s}]")):
                _check_item(item, f"{where}.{middle}[{s}].{inner}[{i}]")
                items += 1
    # only this signal's part: a /v1/logs body that also holds resourceSpans is read as logs
    load_document({outer: document.get(outer) or []}, received, "OTLP/HTTP JSON")
    received.problems[:] = [p for p in received.problems if "no resourceSpans or resourceLogs" not in p]
    return items


def _array(node: Any, key: str, where: str) -> list[Any]:
    if not isinstance(node, dict):
        raise OTLPError(400, f"{where} is not a JSON object")
    value = node.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OTLPError(400, f"{where}.{key} is not a JSON array")
    return value


def _check_item(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise OTLPError(400, f"{where} is not a JSON object")
    for key, pattern in _HEX_ID.items():
        value = item.get(key)
        if value is not None and not (isinstance(value, str) and pattern.match(value)):
            # the JSON mapping writes ids as hex, not base64: anything else is malformed
            raise OTLPError(400, f"{where}.{key} is not a hex id: {str(value)[:40]!r}")
    attributes = item.get("attributes")
    if attributes is not None and not isinstance(attributes, list):
        raise OTLPError(400, f"{where}.attributes is not a JSON array")


def success_body(batch: Batch, media: str) -> bytes:
    """The 200 answer: empty success, or ``partial_success`` for rejected records."""
    message = "; ".join(batch.received.problems[:_MAX_PROBLEMS_IN_MESSAGE])
    if media == JSON:
        if not batch.rejected:
            return b"{}"
        key = "rejectedLogRecords" if batch.signal == "logs" else "rejectedSpans"
        return json.dumps({"partialSuccess": {key: str(batch.rejected), "errorMessage": message}}).encode()
    if batch.signal == "logs":
        logs = ExportLogsServiceResponse()
        if batch.rejected:
            logs.partial_success.rejected_log_records = batch.rejected
            logs.partial_success.error_message = message
        return bytes(logs.SerializeToString())
    spans = ExportTraceServiceResponse()
    if batch.rejected:
        spans.partial_success.rejected_spans = batch.rejected
        spans.partial_success.error_message = message
    return bytes(spans.SerializeToString())


def error_body(message: str, media: str) -> bytes:
    """A refusal's body: a ``google.rpc.Status`` in the request's encoding."""
    if media == PROTOBUF:
        return bytes(status_pb2.Status(code=_GRPC_INVALID_ARGUMENT, message=message).SerializeToString())
    return json.dumps({"code": _GRPC_INVALID_ARGUMENT, "message": message}).encode()

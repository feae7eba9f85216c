"""Each private SDK internal otelstream reads has a fallback that still gives correct records.

Every test forces a fallback by taking the internal away (as a release that renamed it
would) and compares the result with the fast path's. ``scripts/sdk-range.sh`` runs this file
on the lowest and the newest OpenTelemetry release ``pyproject.toml`` allows.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream
from otelstream import START, StateGraph, get_stream_writer
from otelstream.telemetry import _sdk, file_exporter
from otelstream.telemetry.otlp_wire import (
    StreamLogExporter,
    StreamSpanExporter,
    encode_logs_request,
    encode_spans_request,
)
from tests import otlp_receiver
from tests.conftest import Telemetry

ROOT = Path(__file__).resolve().parent.parent


def _concat(a: list[Any], b: list[Any]) -> list[Any]:
    return a + b


class State(TypedDict):
    log: Annotated[list[Any], _concat]


def _graph(writes: int = 3) -> otelstream.CompiledStateGraph:
    def write(state: State) -> dict[str, Any]:
        for i in range(writes):
            get_stream_writer()({"i": i, "text": "naïve ✓", "ratio": 0.5, "flag": True})
        return {"log": ["write"]}

    g = StateGraph(State)
    g.add_node("write", write)
    g.add_edge(START, "write")
    return g.compile(name="internals")


@pytest.fixture
def telemetry_with_resource() -> Iterator[Telemetry]:
    # a resource and scope with attributes of every kind the encoders must carry
    resource = Resource.create({"service.name": "internals", "n": 3, "ratio": 0.5, "on": True, "tags": ["a", "b"]})
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    otelstream.configure(tracer_provider=tracer_provider, logger_provider=logger_provider)
    yield Telemetry(tracer_provider, logger_provider, spans, logs)
    otelstream.configure()


def _run(telemetry: Telemetry) -> tuple[Sequence[ReadableSpan], Sequence[ReadableLogRecord]]:
    telemetry.spans.clear()
    telemetry.logs.clear()
    list(_graph().stream({"log": []}, stream_mode=["values", "updates", "custom"]))
    return telemetry.spans.get_finished_spans(), telemetry.logs.get_finished_logs()


def _project(logs: Sequence[ReadableLogRecord]) -> list[tuple[Any, ...]]:
    return [
        (
            r.log_record.event_name,
            {k: v for k, v in (r.log_record.attributes or {}).items() if k != "otelstream.run_id"},
            r.log_record.trace_id is not None and r.log_record.span_id is not None,
            dict(r.resource.attributes) if r.resource is not None else None,
            r.instrumentation_scope.name if r.instrumentation_scope is not None else None,
        )
        for r in logs
    ]


# --- suppression key ---------------------------------------------------------------------------


def test_without_the_apis_key_suppression_uses_the_plain_key(monkeypatch: pytest.MonkeyPatch) -> None:
    api_without_key = types.SimpleNamespace()
    keys = _sdk._suppress_keys(api_without_key)
    assert keys == ("suppress_instrumentation",)
    monkeypatch.setattr(_sdk, "_KEYS", keys)
    with _sdk.suppressed():
        assert _sdk.is_suppressed()
        assert not is_instrumentation_enabled()  # contrib still reads the plain key


# --- records without validation --------------------------------------------------------------


@pytest.mark.parametrize("internal", ["_CLEAN_RECORDS", "_LOGGER_LIMITS"])
def test_records_are_the_same_without_the_loggers_limits_or_the_record_fields(
    telemetry_with_resource: Telemetry, monkeypatch: pytest.MonkeyPatch, internal: str
) -> None:
    _, fast = _run(telemetry_with_resource)
    # the fast path ran: its chunk records keep the plain dict otelstream built (the run-end
    # record always goes the SDK's way)
    assert [isinstance(r.log_record.attributes, BoundedAttributes) for r in fast] == [False] * 6 + [True]
    monkeypatch.setattr(_sdk, internal, False if internal == "_CLEAN_RECORDS" else "_renamed_in_a_release")
    _, fallback = _run(telemetry_with_resource)
    assert all(isinstance(r.log_record.attributes, BoundedAttributes) for r in fallback)  # the SDK validated
    assert _project(fallback) == _project(fast)


def test_the_record_fields_check_recognises_this_sdk() -> None:
    assert _sdk._record_fields_known()


# --- span event limits -----------------------------------------------------------------------


def _carried(events: int, limits: SpanLimits | None, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int, list[Any]]:
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    tracer_provider = TracerProvider(span_limits=limits)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    otelstream.configure(tracer_provider=tracer_provider, logger_provider=logger_provider, span_event_modes=["custom"])
    try:
        streamed = list(_graph(events).stream({"log": []}, stream_mode="custom"))
    finally:
        otelstream.configure()
    [node] = [s for s in spans.get_finished_spans() if s.name == "invoke_node write"]
    as_events = sum(1 for e in node.events if e.name == "otelstream.custom")
    as_records = sum(1 for r in logs.get_finished_logs() if r.log_record.event_name == "otelstream.custom")
    assert node.dropped_events == 0  # nothing evicted by the SDK
    return as_events, as_records, streamed


def test_span_event_limits_are_respected_with_and_without_the_spans_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _carried(5, SpanLimits(max_events=3), monkeypatch)[:2] == (3, 2)
    # no limit at all: every chunk stays a span event (the SDK's UNSET)
    assert _carried(200, SpanLimits(max_events=SpanLimits.UNSET), monkeypatch)[:2] == (200, 0)
    # the fallback: the limit the environment gives every provider that sets none itself
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "4")
    monkeypatch.setattr(_sdk, "_SPAN_LIMITS", "_renamed_in_a_release")
    monkeypatch.setattr(_sdk, "_environment_limits", [])
    as_events, as_records, streamed = _carried(6, None, monkeypatch)
    assert (as_events, as_records) == (4, 2)
    assert [chunk["i"] for chunk in streamed] == list(range(6))


# --- OTLP protobuf pieces --------------------------------------------------------------------


def test_resource_and_scope_encode_the_same_without_the_sdks_encoders(
    telemetry_with_resource: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans, logs = _run(telemetry_with_resource)
    fast_logs, fast_spans = encode_logs_request(logs), encode_spans_request(spans)
    monkeypatch.setattr(_sdk, "_sdk_encode_resource", None)
    monkeypatch.setattr(_sdk, "_sdk_encode_scope", None)
    fallback_logs, fallback_spans = encode_logs_request(logs), encode_spans_request(spans)
    assert fast_logs is not None and fallback_logs is not None
    assert fast_spans is not None and fallback_spans is not None
    assert ExportLogsServiceRequest.FromString(fallback_logs) == encode_logs(logs)
    assert ExportLogsServiceRequest.FromString(fallback_logs) == ExportLogsServiceRequest.FromString(fast_logs)
    assert ExportTraceServiceRequest.FromString(fallback_spans) == encode_spans(spans)


def test_the_file_export_writes_the_same_lines_without_the_sdks_log_encoder(
    telemetry_with_resource: Telemetry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, logs = _run(telemetry_with_resource)
    lines = []
    for name, forced in (("fast", False), ("fallback", True)):
        if forced:
            monkeypatch.setattr(_sdk, "_sdk_encode_logs", None)
        file = file_exporter.OTLPJsonFile(tmp_path / f"{name}.jsonl")
        exporter = file_exporter.OTLPJsonFileLogExporter(file)
        assert exporter.export(logs).name == "SUCCESS"
        exporter.shutdown()
        lines.append(json.loads(Path(file.path).read_text()))
    assert lines[0] == lines[1]
    assert len(lines[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"]) == 7  # 6 chunks, the run end


# --- posting with the exporter's own client --------------------------------------------------


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    out = tmp_path / "received.jsonl"
    running = otlp_receiver.start(str(out))
    try:
        yield running.endpoint, out
    finally:
        running.stop()


def test_both_exporters_send_the_same_requests_without_the_exporters_client(
    telemetry_with_resource: Telemetry,
    receiver: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint, out = receiver
    spans, logs = _run(telemetry_with_resource)
    log_exporter = StreamLogExporter(endpoint=f"{endpoint}/v1/logs", timeout=10)
    span_exporter = StreamSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=10)
    sent: list[str] = []
    real_post = _sdk.ExporterClient.post

    def post(self: _sdk.ExporterClient, data: bytes, count: int) -> _sdk.Posted:
        sent.append("lean")
        return real_post(self, data, count)

    monkeypatch.setattr(_sdk.ExporterClient, "post", post)
    assert log_exporter.export(logs).name == "SUCCESS"
    assert span_exporter.export(spans).name == "SUCCESS"
    assert sent == ["lean", "lean"]  # the fast path ran
    monkeypatch.setattr(_sdk, "_CLIENT", "_renamed_in_a_release")
    assert log_exporter.export(logs).name == "SUCCESS"
    assert span_exporter.export(spans).name == "SUCCESS"
    assert sent == ["lean", "lean"]  # the SDK's own export() sent these
    log_exporter.shutdown()  # type: ignore[no-untyped-call] # unannotated in the SDK
    span_exporter.shutdown()  # type: ignore[no-untyped-call]
    received = [json.loads(line) for line in out.read_text().splitlines()]
    assert [next(iter(line)) for line in received] == ["resourceLogs", "resourceSpans"] * 2
    assert received[0] == received[2] and received[1] == received[3]


def test_a_shut_down_exporter_is_left_to_report_it_itself() -> None:
    exporter = StreamLogExporter(endpoint="http://127.0.0.1:9/v1/logs")
    assert _sdk.exporter_client(exporter) is not None
    exporter.shutdown()  # type: ignore[no-untyped-call] # unannotated in the SDK
    assert _sdk.exporter_client(exporter) is None

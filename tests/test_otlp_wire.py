"""The lean OTLP log encoder writes exactly what the SDK's encoder writes, for otelstream's records.

Both encodings of the same real records are parsed with the official protobuf classes and
compared message for message; records outside the lean encoder's scope fall back to the SDK.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

import otelstream
from otelstream import StreamMode
from otelstream.telemetry.otlp_wire import encode_logs_request
from tests.conftest import Telemetry


class State(TypedDict):
    text: str
    log: Annotated[list[Any], operator.add]


def _graph() -> otelstream.CompiledStateGraph:
    def write(state: State) -> dict[str, Any]:
        writer = otelstream.get_stream_writer()
        writer({"unicode": "naïve — 東京 🚀", "big": 2**62, "neg": -5, "flag": True, "ratio": 0.25, "none": None})
        otelstream.write_progress(3, 10, unit="records", message="Fetched 3/10 records")
        return {"log": [state["text"]]}

    def ask(state: State) -> dict[str, Any]:
        return {"log": [otelstream.interrupt({"approve": state["text"]})]}

    graph = otelstream.StateGraph(State)
    graph.add_node(write)
    graph.add_node(ask)
    graph.add_edge(otelstream.START, "write")
    graph.add_edge("write", "ask")
    return graph.compile(checkpointer=otelstream.InMemorySaver())


def _parse(data: bytes) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    request.ParseFromString(data)
    return request


def test_stream_records_encode_exactly_as_the_sdk_encodes_them(telemetry: Telemetry) -> None:
    modes: list[StreamMode] = ["values", "updates", "custom", "tasks", "debug", "checkpoints"]
    list(_graph().stream({"text": "x" * 3000, "log": []}, {"configurable": {"thread_id": "t"}}, stream_mode=modes))
    records = telemetry.logs.get_finished_logs()
    assert len(records) > 15

    ours = encode_logs_request(records, slice_size=4)
    assert ours is not None
    assert _parse(ours) == encode_logs(records)
    assert _parse(ours).SerializeToString(deterministic=True) == encode_logs(records).SerializeToString(
        deterministic=True
    )


def test_records_from_several_resources_keep_their_own_resource() -> None:
    batch: list[ReadableLogRecord] = []
    for name in ("svc-a", "svc-b"):
        exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        provider = LoggerProvider(resource=Resource.create({"service.name": name}))
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        otelstream.configure(logger_provider=provider)
        try:
            list(_graph().stream({"text": name, "log": []}, {"configurable": {"thread_id": name}}))
        finally:
            otelstream.configure()
        batch.extend(exporter.get_finished_logs())
    ours = encode_logs_request(batch)
    assert ours is not None
    parsed = _parse(ours)
    assert parsed == encode_logs(batch)
    assert len(parsed.resource_logs) == 2


def test_records_the_lean_encoder_does_not_handle_go_to_the_sdk_encoder() -> None:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("an-application")
    logger.emit(LogRecord(body="an application log line with a body"))
    logger.emit(LogRecord(event_name="app.event", attributes={"lone": "\ud800 surrogate"}))
    body, surrogate = exporter.get_finished_logs()
    assert encode_logs_request([body]) is None
    assert encode_logs_request([surrogate]) is None


def test_spans_encode_exactly_as_the_sdk_encodes_them(telemetry: Telemetry) -> None:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    from otelstream.telemetry.otlp_wire import encode_spans_request

    def boom(state: State) -> dict[str, Any]:
        raise ValueError("boom — ünïcode")

    failing = otelstream.StateGraph(State)
    failing.add_node(boom)
    failing.add_edge(otelstream.START, "boom")
    graph = _graph()
    thread = {"configurable": {"thread_id": "t"}}
    remote = SpanContext(
        trace_id=0x1234, span_id=0x99, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v")])
    )
    with trace.use_span(NonRecordingSpan(remote)):  # a run under a remote parent
        list(graph.stream({"text": "x", "log": []}, thread, subgraphs=True))
    list(graph.stream(otelstream.Command(resume="yes"), thread))  # linked to the first run
    try:
        list(failing.compile().stream({"text": "x", "log": []}))
    except ValueError:
        pass
    spans = telemetry.spans.get_finished_spans()
    assert any(s.links for s in spans) and any(s.events for s in spans)
    assert any(s.parent is not None and s.parent.is_remote for s in spans)

    ours = encode_spans_request(spans, slice_size=3)
    assert ours is not None
    parsed = ExportTraceServiceRequest()
    parsed.ParseFromString(ours)
    assert parsed == encode_spans(spans)

"""Export that keeps the promise: bursts arrive whole, losses are counted and reported."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, TypedDict

import pytest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream
from otelstream import START, StateGraph, get_stream_writer
from otelstream.telemetry import semconv
from otelstream.telemetry.export import BackpressureLogRecordProcessor, DropLedger


def _last(a: int, b: int) -> int:
    return b


class State(TypedDict):
    n: Annotated[int, _last]


def _burst_graph(events: int) -> otelstream.CompiledStateGraph:
    def burst(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(events):
            write(i)
        return {"n": events}

    g = StateGraph(State)
    g.add_node("burst", burst)
    g.add_edge(START, "burst")
    return g.compile(name="burst")


class CountingExporter(LogRecordExporter):
    """Counts what it receives; optionally slow, failing or stuck."""

    def __init__(self, *, delay: float = 0.0, fail: bool = False, block: threading.Event | None = None) -> None:
        self.seqs: list[int] = []
        self.delay = delay
        self.fail = fail
        self.block = block
        self.lock = threading.Lock()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self.block is not None:
            self.block.wait(timeout=30)
        if self.delay:
            time.sleep(self.delay)  # kept: a deliberately slow exporter; no test orders anything by it
        if self.fail:
            return LogRecordExportResult.FAILURE
        with self.lock:
            for record in batch:
                seq = (record.log_record.attributes or {}).get(semconv.SEQ)
                if isinstance(seq, int):
                    self.seqs.append(seq)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _configure(
    exporter: LogRecordExporter, **kwargs: Any
) -> tuple[BackpressureLogRecordProcessor, InMemorySpanExporter]:
    processor = BackpressureLogRecordProcessor(exporter, **kwargs)
    spans = InMemorySpanExporter()
    otelstream.configure(
        additional_log_record_processors=[processor],
        additional_span_processors=[SimpleSpanProcessor(spans)],
    )
    return processor, spans


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    otelstream.configure()


def test_a_100k_event_burst_reaches_the_exporter_whole_with_default_settings() -> None:
    exporter = CountingExporter(delay=0.001)  # an exporter slower than the burst
    processor, spans = _configure(exporter)
    streamed = list(_burst_graph(100_000).stream({"n": 0}, stream_mode="custom"))
    assert processor.force_flush(60_000)

    assert streamed == list(range(100_000))
    assert sorted(exporter.seqs) == list(range(100_000))
    assert processor.dropped == 0
    [run] = [s for s in spans.get_finished_spans() if s.name == "invoke_workflow burst"]
    assert semconv.DROPPED not in (run.attributes or {})


def test_a_failing_exporter_never_slows_the_app_and_every_loss_is_counted_on_the_run() -> None:
    processor, spans = _configure(CountingExporter(fail=True), max_queue_size=64, max_export_batch_size=16)
    streamed = list(_burst_graph(2_000).stream({"n": 0}, stream_mode=["custom", "updates"]))
    assert streamed[-1] == ("updates", {"burst": {"n": 2000}})
    assert len(streamed) == 2_001  # the in-process stream is whole

    [run] = [s for s in spans.get_finished_spans() if s.name == "invoke_workflow burst"]
    attributes: dict[str, Any] = dict(run.attributes or {})
    # drops seen before the run ended are on its span: dropped at the full queue, or in failed batches
    assert attributes[semconv.DROPPED] == attributes[f"{semconv.DROPPED}.custom"] + attributes.get(
        f"{semconv.DROPPED}.updates", 0
    )
    assert attributes[semconv.DROPPED] > 1_000
    processor.shutdown()


def test_a_stalled_exporter_blocks_the_app_at_most_briefly_then_drops_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    processor, spans = _configure(
        CountingExporter(block=release), max_queue_size=32, max_export_batch_size=8, stall_millis=100
    )
    try:
        streamed = list(_burst_graph(1_000).stream({"n": 0}, stream_mode="custom"))
    finally:
        release.set()
    assert streamed == list(range(1_000))
    [run] = [s for s in spans.get_finished_spans() if s.name == "invoke_workflow burst"]
    dropped: Any = (run.attributes or {})[f"{semconv.DROPPED}.custom"]
    assert dropped > 900
    assert [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()] == [
        "otelstream: the exporter is failing or stalled; stream records are being dropped "
        "(counted per run on the run span and the otelstream.run.end record)"
    ]
    processor.shutdown()


class _RecordingWaits(CountingExporter):
    """A stalled exporter: each export waits for ``block``, and records whether it was released."""

    def __init__(self, block: threading.Event) -> None:
        super().__init__()
        self.released: list[bool] = []
        self.gate = block

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.released.append(self.gate.wait(timeout=5))
        return super().export(batch)


def test_a_stalled_export_queue_does_not_delay_the_live_consumer() -> None:
    # the exporter holds chunk 0, the queue (size 1) chunk 1, so the export processor makes
    # the node wait at chunk 2; the consumer must see chunk 2 first, or nobody releases the
    # exporter and its wait times out
    received_chunk_2 = threading.Event()
    exporter = _RecordingWaits(received_chunk_2)
    processor, _ = _configure(exporter, max_queue_size=1, max_export_batch_size=1, stall_millis=60_000)
    streamed = []
    for chunk in _burst_graph(3).stream({"n": 0}, stream_mode="custom"):
        streamed.append(chunk)
        if chunk == 2:
            received_chunk_2.set()
    assert processor.force_flush(10_000)
    assert streamed == [0, 1, 2]
    assert exporter.released and all(exporter.released)  # never by the timeout
    assert sorted(exporter.seqs) == [0, 1, 2]
    processor.shutdown()


def test_drop_ledger_counts_only_active_runs() -> None:
    ledger = DropLedger()

    class Record:
        def __init__(self, run_id: str, name: str) -> None:
            self.log_record = type("R", (), {"event_name": name, "attributes": {semconv.RUN_ID: run_id}})()

    ledger.open("r1")
    ledger.record(Record("r1", "otelstream.custom"))
    ledger.record(Record("r1", "otelstream.custom"))
    ledger.record(Record("r1", "otelstream.values"))
    ledger.record(Record("gone", "otelstream.custom"))
    assert ledger.take("r1") == {"custom": 2, "values": 1}
    assert ledger.take("gone") == {}


def test_invalid_processor_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="must not exceed"):
        BackpressureLogRecordProcessor(CountingExporter(), max_queue_size=4, max_export_batch_size=8)


class _Text(TypedDict):
    text: str


def _say(state: _Text) -> dict[str, str]:
    return {"text": "x" * 298}


def test_a_logger_provider_with_attribute_limits_still_applies_them() -> None:
    # otelstream skips the SDK's per-value validation only where no limit could cut a value
    import json

    from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    import otelstream

    payloads = []
    for limits in (None, LogRecordLimits(max_attribute_length=40)):
        exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        provider = LoggerProvider() if limits is None else LoggerProvider(log_record_limits=limits)
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        otelstream.configure(logger_provider=provider)
        try:
            builder = otelstream.StateGraph(_Text)
            builder.add_node("say", _say)
            builder.add_edge(otelstream.START, "say")
            chunks = list(builder.compile().stream({"text": ""}, stream_mode="updates"))
        finally:
            otelstream.configure()
        assert chunks == [{"say": {"text": "x" * 298}}]  # the stream is never cut
        (record,) = [r for r in exporter.get_finished_logs() if r.log_record.event_name == "otelstream.updates"]
        payloads.append(str((record.log_record.attributes or {})["otelstream.payload"]))
    assert json.loads(payloads[0]) == {"say": {"text": "x" * 298}}
    assert len(payloads[1]) == 40  # the provider's limit applied

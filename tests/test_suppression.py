"""otelstream's own exports and log lines run with the SDK's instrumentation-suppression key set.

Instrumentations read ``opentelemetry.context._SUPPRESS_INSTRUMENTATION_KEY`` (contrib's
``is_instrumentation_enabled()``); a key of otelstream's own making would silence nothing.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import openai
import pytest
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, suppress_instrumentation
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

import otelstream
from otelstream import START, StateGraph, get_stream_writer
from otelstream.consumer.channel import RunChannel
from otelstream.integrations.openai import OpenAIInstrumentor
from otelstream.telemetry import file_exporter
from otelstream.telemetry._sdk import SUPPRESS_INSTRUMENTATION_KEY, is_suppressed, suppressed
from otelstream.telemetry.export import BackpressureLogRecordProcessor
from tests.conftest import Telemetry

ROOT = Path(__file__).resolve().parent.parent


def _last(a: int, b: int) -> int:
    return b


class State(TypedDict):
    n: Annotated[int, _last]


def _graph(chunks: int = 3) -> otelstream.CompiledStateGraph:
    def write(state: State) -> dict[str, int]:
        for i in range(chunks):
            get_stream_writer()(i)
        return {"n": chunks}

    g = StateGraph(State)
    g.add_node("write", write)
    g.add_edge(START, "write")
    return g.compile(name="suppression")


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    otelstream.configure()


def test_the_key_is_the_apis_own() -> None:
    assert SUPPRESS_INSTRUMENTATION_KEY is otel_context._SUPPRESS_INSTRUMENTATION_KEY
    assert not is_suppressed() and is_instrumentation_enabled()
    with suppressed():
        assert is_suppressed()
        assert otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY) is True
        assert not is_instrumentation_enabled()  # what contrib's instrumentations check
    assert not is_suppressed()
    with suppress_instrumentation():  # contrib's helper, as an application would use it
        assert is_suppressed()


class _RecordingExporter(LogRecordExporter):
    """Records, at each export, whether instrumentation was suppressed."""

    def __init__(self, result: LogRecordExportResult = LogRecordExportResult.SUCCESS) -> None:
        self.suppressed: list[bool] = []
        self.result = result

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.suppressed.append(not is_instrumentation_enabled())
        return self.result

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_the_backpressure_processor_exports_under_the_sdks_key() -> None:
    exporter = _RecordingExporter()
    processor = BackpressureLogRecordProcessor(exporter)
    otelstream.configure(additional_log_record_processors=[processor])
    assert list(_graph().stream({"n": 0}, stream_mode="custom")) == [0, 1, 2]
    assert processor.force_flush(10_000)
    assert exporter.suppressed and all(exporter.suppressed)
    processor.shutdown()


def test_every_write_of_the_file_export_runs_under_the_sdks_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bool]] = []
    real_write = file_exporter.OTLPJsonFile.write

    def write(self: file_exporter.OTLPJsonFile, message: Any) -> None:
        seen.append((type(message).__name__, not is_instrumentation_enabled()))
        real_write(self, message)

    monkeypatch.setattr(file_exporter.OTLPJsonFile, "write", write)
    otelstream.configure(export=otelstream.ExportOptions(file=str(tmp_path / "out.jsonl")))
    list(_graph().stream({"n": 0}, stream_mode="custom"))
    otelstream.shutdown()
    assert {name for name, _ in seen} == {"ExportLogsServiceRequest", "ExportTraceServiceRequest"}
    assert all(flag for _, flag in seen)


class _Watch(logging.Handler):
    """Keeps otelstream's log lines with whether instrumentation was suppressed as each was handled."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage(), not is_instrumentation_enabled()))


@pytest.fixture
def watch() -> Iterator[_Watch]:
    handler = _Watch()
    otel_logger = logging.getLogger("otelstream")
    otel_logger.addHandler(handler)
    level = otel_logger.level
    otel_logger.setLevel(logging.DEBUG)
    yield handler
    otel_logger.setLevel(level)
    otel_logger.removeHandler(handler)


# errors are logged once per place and exception type for the whole process: each test
# raises a type of its own, so no other test has logged it before


class _EveryChunkBug(Exception):
    pass


class _FirstBug(Exception):
    pass


class _OtherBug(Exception):
    pass


def test_an_internal_error_on_every_chunk_is_logged_once_under_suppression(
    telemetry: Telemetry, watch: _Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTELSTREAM_RAISE_INTERNAL")

    def broken_put(self: RunChannel, seq: int, chunk: Any) -> None:
        raise _EveryChunkBug("processor bug")

    monkeypatch.setattr(RunChannel, "put", broken_put)
    list(_graph(50).stream({"n": 0}, stream_mode="custom"))
    errors = [line for line in watch.lines if line[0] >= logging.ERROR]
    assert errors == [
        (logging.ERROR, "otelstream failed while routing a stream record; the application is unaffected", True)
    ]
    repeats = [line for line in watch.lines if line[1] == "otelstream failed again while routing a stream record"]
    assert len(repeats) >= 49 and all(flag for _, _, flag in repeats)


def test_a_different_internal_error_at_the_same_place_is_logged_too(
    telemetry: Telemetry, watch: _Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTELSTREAM_RAISE_INTERNAL")
    errors = iter([_FirstBug("first"), _FirstBug("again"), _OtherBug("other")])

    def broken_put(self: RunChannel, seq: int, chunk: Any) -> None:
        raise next(errors)

    monkeypatch.setattr(RunChannel, "put", broken_put)
    list(_graph(3).stream({"n": 0}, stream_mode="custom"))
    assert [line[0] for line in watch.lines if "routing a stream record" in line[1]] == [
        logging.ERROR,
        logging.DEBUG,
        logging.ERROR,
    ]


def test_the_drop_warning_is_logged_under_suppression(watch: _Watch) -> None:
    exporter = _RecordingExporter(LogRecordExportResult.FAILURE)
    processor = BackpressureLogRecordProcessor(exporter, max_queue_size=4, max_export_batch_size=2)
    otelstream.configure(additional_log_record_processors=[processor])
    list(_graph(200).stream({"n": 0}, stream_mode="custom"))
    processor.shutdown()
    warnings = [line for line in watch.lines if "being dropped" in line[1]]
    assert warnings and all(flag for _, _, flag in warnings)


# --- the OpenAI instrumentor honours the key ---------------------------------------------------


@pytest.fixture(scope="module")
def openai_base_url() -> Iterator[str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        yield f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
    finally:
        server.terminate()  # by its pid: only the process this fixture started
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()


def test_the_openai_instrumentor_records_nothing_when_suppressed(openai_base_url: str, telemetry: Telemetry) -> None:
    client: Any = openai.OpenAI(base_url=openai_base_url, api_key="test", max_retries=0, timeout=10)
    answers: list[str | None] = []
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument()
    try:

        def ask() -> None:
            response = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
            answers.append(response.choices[0].message.content)

        with suppressed():
            ask()
        with suppress_instrumentation():
            ask()
        ask()
    finally:
        instrumentor.uninstrument()
    assert len(answers) == 3 and all(answers)  # every call reached the server
    assert [s.name for s in telemetry.spans.get_finished_spans()] == ["chat m"]

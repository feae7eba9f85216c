"""The LangGraph instrumentor's lifecycle and failure rules, and ``opentelemetry-instrument``."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import langgraph.pregel._retry
import pytest
from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph
from langgraph.pregel import _runner
from langgraph.pregel.main import Pregel
from opentelemetry import context as otel_context
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream
import otelstream.integrations.langgraph as lg_integration
from otelstream.integrations.langgraph import LangGraphInstrumentor, _internals
from otelstream.telemetry import pipeline as telemetry_pipeline
from tests.conftest import Telemetry, make_telemetry
from tests.helpers import stream_records
from tests.langgraph_harness import instrumented
from tests.test_otlp_export import Receiver, receiver  # noqa: F401  # the OTLP receiver fixture

ROOT = Path(__file__).resolve().parent.parent


class State(TypedDict):
    n: int


def _graph() -> Any:
    def node(state: State) -> dict[str, Any]:
        get_stream_writer()("written")
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    graph.add_node("node", node)
    graph.add_edge(START, "node")
    return graph.compile()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    yield make_telemetry()
    otelstream.configure()


def _runs(telemetry: Telemetry) -> int:
    return len([s for s in telemetry.spans.get_finished_spans() if s.name.startswith("invoke_workflow")])


def _originals() -> tuple[Any, ...]:
    return (
        Pregel.__dict__["stream"],
        Pregel.__dict__["astream"],
        _runner.__dict__["run_with_retry"],  # imported there by name (not re-exported)
        _runner.__dict__["arun_with_retry"],
        langgraph.pregel._retry.run_with_retry,
    )


# --- lifecycle -------------------------------------------------------------------------------


def test_instrument_uninstrument_instrument(telemetry: Telemetry) -> None:
    before = _originals()
    instrumentor = LangGraphInstrumentor()
    assert instrumentor is LangGraphInstrumentor()  # one per process
    instrumentor.instrument()
    try:
        assert instrumentor.is_instrumented_by_opentelemetry
        assert Pregel.__dict__["stream"] is not before[0] and _runner.__dict__["run_with_retry"] is not before[2]
        _graph().invoke({"n": 0})
        assert _runs(telemetry) == 1
    finally:
        instrumentor.uninstrument()
    # LangGraph's own functions, the very objects, are back
    assert _originals() == before
    assert all(a is b for a, b in zip(_originals(), before, strict=True))
    _graph().invoke({"n": 0})
    assert _runs(telemetry) == 1
    with instrumented():
        _graph().invoke({"n": 0})
    assert _runs(telemetry) == 2


def test_repeated_calls_warn_and_do_nothing(telemetry: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    with instrumented() as instrumentor:
        wrapped = Pregel.__dict__["stream"]
        with caplog.at_level(logging.WARNING):
            instrumentor.instrument()
        assert Pregel.__dict__["stream"] is wrapped  # not wrapped twice
        assert "already instrumented" in caplog.text
        _graph().invoke({"n": 0})
        assert _runs(telemetry) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        LangGraphInstrumentor().uninstrument()
    assert "already uninstrumented" in caplog.text


def test_unsupported_version_warns_and_stays_uninstrumented(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    before = _originals()
    monkeypatch.setattr(lg_integration, "installed_version", lambda: "0.6.7")
    instrumentor = LangGraphInstrumentor()
    with caplog.at_level(logging.WARNING, logger="otelstream"):
        instrumentor.instrument()
    assert "LangGraph 0.6.7 is not supported" in caplog.text and ">=1.0, <1.3" in caplog.text
    assert not instrumentor.is_instrumented_by_opentelemetry
    assert _originals() == before
    _graph().invoke({"n": 0})
    assert _runs(telemetry) == 0
    monkeypatch.undo()
    with instrumented():  # a later instrument() with a supported version works
        _graph().invoke({"n": 0})
    assert _runs(telemetry) == 1


@pytest.mark.parametrize(("version", "ok"), [("1.0.0", True), ("1.2.22", True), ("1.3.0rc1", False), ("0.6.7", False)])
def test_supported_range(version: str, ok: bool) -> None:
    assert _internals.supported(version) is ok


# (tomllib is 3.11+, and the project supports 3.10)
_EXTRA = re.compile(r'^langgraph = \["langgraph(?P<range>[^"]+)"', re.MULTILINE)
_ENTRY = re.compile(
    r"^\[project\.entry-points\.opentelemetry_instrumentor\]\n(?P<name>\w+) = \"(?P<value>[^\"]+)\"", re.MULTILINE
)


def _pyproject() -> str:
    return (ROOT / "pyproject.toml").read_text()


def test_the_extra_declares_the_supported_range() -> None:
    extra = _EXTRA.search(_pyproject())
    assert extra is not None and extra["range"] == ",".join(_internals.SUPPORTED)
    entry = _ENTRY.search(_pyproject())
    assert entry is not None
    assert (entry["name"], entry["value"]) == ("langgraph", "otelstream.integrations.langgraph:LangGraphInstrumentor")


def test_suppressed_instrumentation_passes_through(telemetry: Telemetry) -> None:
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        with instrumented():
            assert list(_graph().stream({"n": 0})) == [{"node": {"n": 1}}]
    finally:
        otel_context.detach(token)
    assert _runs(telemetry) == 0 and not stream_records(telemetry.logs.get_finished_logs())


# --- failures of otelstream's own never reach the application -----------------------------------


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    # the suite makes internal errors raise; these tests check the production behaviour
    monkeypatch.delenv("OTELSTREAM_RAISE_INTERNAL", raising=False)


@pytest.mark.usefixtures("fallback")
def test_a_failing_record_still_reaches_the_application(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plain = list(_graph().stream({"n": 0}, stream_mode=["updates", "custom", "values"]))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(telemetry_pipeline, "_emit_record", broken)
    with caplog.at_level(logging.WARNING, logger="otelstream"), instrumented():
        ours = list(_graph().stream({"n": 0}, stream_mode=["updates", "custom", "values"]))
    assert ours == plain
    assert "did not come back through the telemetry pipeline" in caplog.text
    assert "lost 4 stream chunk(s)" in caplog.text  # counted as gaps, as for the engine


@pytest.mark.usefixtures("fallback")
@pytest.mark.parametrize(
    "target",
    [
        "otelstream.integrations.langgraph._run.start_run_span",
        "otelstream.integrations.langgraph._tasks.start_span",
        "otelstream.integrations.langgraph._tasks._TaskScope.configurable",
        "otelstream.integrations.langgraph._run.LangGraphRun._origin",
        "otelstream.integrations.langgraph._run.end_run_span",
    ],
)
def test_a_failing_instrumentor_leaves_the_run_alone(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    plain = list(_graph().stream({"n": 0}, stream_mode=["updates", "custom"]))
    plain_invoke = _graph().invoke({"n": 0})

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("instrumentor bug")

    monkeypatch.setattr(target, broken)
    with instrumented():
        assert list(_graph().stream({"n": 0}, stream_mode=["updates", "custom"])) == plain
        assert _graph().invoke({"n": 0}) == plain_invoke


def test_providers_given_to_instrument(monkeypatch: pytest.MonkeyPatch) -> None:
    otelstream.configure()  # otelstream's private providers, exporting nowhere
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call] # the SDK leaves it unannotated
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    with instrumented(tracer_provider=tracer_provider, logger_provider=logger_provider):
        chunks = list(_graph().stream({"n": 0}, stream_mode="custom"))
    assert chunks == ["written"]
    assert [s.name for s in spans.get_finished_spans()] == ["invoke_node node", "invoke_workflow LangGraph"]
    names = [r.log_record.event_name for r in stream_records(logs.get_finished_logs())]
    assert names == ["otelstream.custom", "otelstream.updates"]


def test_a_logger_provider_that_runs_no_processors_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry._logs import NoOpLoggerProvider

    with caplog.at_level(logging.WARNING, logger="otelstream"), instrumented(logger_provider=NoOpLoggerProvider()):
        assert list(_graph().stream({"n": 0}, stream_mode="custom")) == ["written"]
    assert "is not an SDK LoggerProvider and is ignored" in caplog.text


# --- opentelemetry-instrument ---------------------------------------------------------------------


def _entry_point_dist(tmp_path: Path) -> Path:
    # the entry point pyproject.toml declares, as an installed distribution would carry it
    entry = _ENTRY.search(_pyproject())
    assert entry is not None
    site = tmp_path / "site"
    info = site / "otelstream_entry_points-0.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: otelstream-entry-points\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(f"[opentelemetry_instrumentor]\n{entry['name']} = {entry['value']}\n")
    return site


def test_opentelemetry_instrument_picks_the_instrumentor_up(
    receiver: Receiver,  # noqa: F811  # the fixture imported above
    tmp_path: Path,
) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        """
import json
from typing import TypedDict
from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph

class State(TypedDict):
    n: int

def node(state):
    get_stream_writer()("from a plain LangGraph app")
    return {"n": 1}

g = StateGraph(State)
g.add_node("node", node)
g.add_edge(START, "node")
chunks = list(g.compile(name="auto").stream({"n": 0}, {"run_id": "auto-1"}, stream_mode=["custom", "updates"]))
print(json.dumps(chunks))
"""
    )
    path = os.pathsep.join([str(_entry_point_dist(tmp_path)), os.environ.get("PYTHONPATH", str(ROOT / "src"))])
    done = subprocess.run(
        [str(Path(sys.executable).parent / "opentelemetry-instrument"), sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "PYTHONPATH": path,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "plain-langgraph-app",
        },
    )
    assert done.returncode == 0, done.stderr
    chunks = json.loads(done.stdout)
    assert chunks == [["custom", "from a plain LangGraph app"], ["updates", {"node": {"n": 1}}]]
    # the auto-configured exporters flushed at exit: the backend replays what the app printed
    replayed = otelstream.replay(receiver.out, run_id="auto-1")
    assert [list(c) for c in replayed] == chunks
    assert replayed.complete

"""Which providers otelstream emits through. Global providers are process-wide and can be
set only once, so each case runs in its own interpreter."""

from __future__ import annotations

import json
import operator
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from otelstream import StreamMode

GRAPH = """
import operator
from typing import Annotated, TypedDict
from otelstream import StateGraph, START, get_stream_writer

class State(TypedDict):
    log: Annotated[list, operator.add]

def node(state):
    get_stream_writer()("hello")
    return {"log": ["node"]}

g = StateGraph(State)
g.add_node("node", node)
g.add_edge(START, "node")
graph = g.compile(name="probe")
"""


def _run(code: str, tmp_path: Path) -> dict[str, object]:
    script = tmp_path / "probe.py"
    script.write_text(GRAPH + textwrap.dedent(code))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_without_any_sdk_otelstream_streams_on_its_private_providers(tmp_path: Path) -> None:
    result = _run(
        """
        import json
        from opentelemetry import trace
        chunks = list(graph.stream({"log": []}, stream_mode=["custom", "updates"]))
        print(json.dumps({
            "chunks": chunks,
            "global_tracer_provider": type(trace.get_tracer_provider()).__name__,
        }))
        """,
        tmp_path,
    )
    assert result == {
        "chunks": [["custom", "hello"], ["updates", {"node": {"log": ["node"]}}]],
        # otelstream never installs a global provider of its own
        "global_tracer_provider": "ProxyTracerProvider",
    }


def test_global_sdk_providers_receive_the_same_events_the_stream_yields(tmp_path: Path) -> None:
    result = _run(
        """
        import json
        from opentelemetry import trace, _logs
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor, InMemoryLogRecordExporter
        from otelstream.telemetry.codec import decode

        spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
        tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(spans))
        lp = LoggerProvider(); lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
        trace.set_tracer_provider(tp)
        _logs.set_logger_provider(lp)

        chunks = list(graph.stream({"log": []}, stream_mode=["custom", "updates"]))
        exported = [
            [r.log_record.event_name, decode(r.log_record.attributes["otelstream.payload"])]
            for r in logs.get_finished_logs()
            if r.log_record.event_name in ("otelstream.custom", "otelstream.updates")
        ]
        print(json.dumps({
            "chunks": chunks,
            "exported": exported,
            "spans": sorted(s.name for s in spans.get_finished_spans()),
        }))
        """,
        tmp_path,
    )
    assert result == {
        "chunks": [["custom", "hello"], ["updates", {"node": {"log": ["node"]}}]],
        "exported": [
            ["otelstream.custom", "hello"],
            ["otelstream.updates", {"node": {"log": ["node"]}}],
        ],
        "spans": ["invoke_node node", "invoke_workflow probe"],
    }


def test_configure_with_a_file_writes_otlp_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    result = _run(
        f"""
        import json
        import otelstream
        otelstream.configure(export=otelstream.ExportOptions(file={str(path)!r}))
        chunks = list(graph.stream({{"log": []}}, stream_mode="custom"))
        otelstream.shutdown()
        print(json.dumps({{"chunks": chunks}}))
        """,
        tmp_path,
    )
    assert result == {"chunks": ["hello"]}
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    span_names = sorted(
        span["name"]
        for line in lines
        for rs in line.get("resourceSpans", [])
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    )
    records = [
        record
        for line in lines
        for rl in line.get("resourceLogs", [])
        for sl in rl["scopeLogs"]
        for record in sl["logRecords"]
    ]
    assert span_names == ["invoke_node node", "invoke_workflow probe"]
    custom = [r for r in records if r.get("eventName") == "otelstream.custom"]
    assert len(custom) == 1
    # OTLP JSON: hex ids, the payload as a string attribute
    assert len(custom[0]["traceId"]) == 32 and len(custom[0]["spanId"]) == 16
    payload = {a["key"]: a["value"] for a in custom[0]["attributes"]}["otelstream.payload"]
    assert payload == {"stringValue": '"hello"'}


class _LogState(TypedDict):
    log: Annotated[list[str], operator.add]


def test_payloads_are_encoded_only_when_something_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    # stream() takes the Python objects: JSON payloads are built only when an exporter reads them
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    import otelstream
    from otelstream.telemetry import codec, pipeline

    encoded: list[Any] = []

    def counting(value: Any, redactor: Any = None) -> str:
        encoded.append(value)
        return codec.encode(value, redactor)

    monkeypatch.setattr(pipeline, "encode", counting)

    def node(state: _LogState) -> dict[str, Any]:
        otelstream.get_stream_writer()({"progress": 1})
        return {"log": ["a"]}

    builder = otelstream.StateGraph(_LogState)
    builder.add_node("node", node)
    builder.add_edge(otelstream.START, "node")
    graph = builder.compile()
    modes: list[StreamMode] = ["values", "updates", "custom"]
    expected = [
        ("values", {"log": []}),
        ("custom", {"progress": 1}),
        ("updates", {"node": {"log": ["a"]}}),
        ("values", {"log": ["a"]}),
    ]
    otelstream.configure()  # otelstream's own providers, exporting nowhere
    try:
        assert list(graph.stream({"log": []}, stream_mode=modes)) == expected
        assert encoded == []
        exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        otelstream.configure(additional_log_record_processors=[SimpleLogRecordProcessor(exporter)])
        assert list(graph.stream({"log": []}, stream_mode=modes)) == expected
        assert len(encoded) == 4
        records = [r for r in exporter.get_finished_logs() if r.log_record.event_name != "otelstream.run.end"]
        assert [json.loads(str((r.log_record.attributes or {})["otelstream.payload"])) for r in records][1:3] == [
            {"progress": 1},
            {"node": {"log": ["a"]}},
        ]
    finally:
        otelstream.configure()

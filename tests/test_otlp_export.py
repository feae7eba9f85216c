"""Real OTLP/HTTP export to a real receiving process: live visibility and identical streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

import otelstream
from otelstream import START, StateGraph, get_stream_writer
from tests import otlp_receiver

ROOT = Path(__file__).resolve().parent.parent


class Receiver:
    def __init__(self, out: Path, process: subprocess.Popen[str], port: int) -> None:
        self.out = out
        self.process = process
        self.endpoint = f"http://127.0.0.1:{port}"

    def records(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [
            record
            for line in self.out.read_text().splitlines()
            for resource in json.loads(line).get("resourceLogs", [])
            for scope in resource["scopeLogs"]
            for record in scope["logRecords"]
        ]


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    out = tmp_path / "received.jsonl"
    running = otlp_receiver.start(str(out))
    try:
        yield Receiver(out, running.process, running.port)
    finally:
        running.stop()


@pytest.fixture
def otlp_export(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    otelstream.configure(export=otelstream.ExportOptions(otlp=True), service_name="otlp-test")
    yield receiver
    otelstream.shutdown()
    otelstream.configure()


def _concat(a: list[str], b: list[str]) -> list[str]:
    return a + b


class State(TypedDict):
    log: Annotated[list[str], _concat]


def test_chunks_of_a_running_node_are_visible_in_the_backend_before_it_ends(otlp_export: Receiver) -> None:
    release = threading.Event()
    seen_while_running: list[bool] = []

    def long_job(state: State) -> dict[str, Any]:
        get_stream_writer()({"progress": 1, "total": 10, "message": "Fetched 1/10 records"})
        seen_while_running.append(release.wait(timeout=30))
        return {"log": ["long_job"]}

    g = StateGraph(State)
    g.add_node("long_job", long_job)
    g.add_edge(START, "long_job")

    def watch_backend() -> None:
        # a bounded poll, kept: what the receiver process holds can only be read from its file
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(r.get("eventName") == "otelstream.custom" for r in otlp_export.records()):
                release.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_backend)
    watcher.start()
    streamed = list(g.compile(name="long").stream({"log": []}, stream_mode=["custom", "updates"]))
    watcher.join()
    # the node only finished because the receiver already held its chunk
    assert seen_while_running == [True]
    assert streamed[0] == ("custom", {"progress": 1, "total": 10, "message": "Fetched 1/10 records"})


def test_the_receiving_process_holds_the_stream_the_app_saw(otlp_export: Receiver) -> None:
    def step(state: State) -> dict[str, Any]:
        for i in range(300):
            get_stream_writer()({"i": i, "text": "päyload ✓"})
        return {"log": ["step"]}

    g = StateGraph(State)
    g.add_node("step", step)
    g.add_edge(START, "step")
    streamed = list(g.compile(name="exported").stream({"log": []}, stream_mode=["values", "custom", "updates"]))
    assert otelstream.force_flush()
    replayed = otelstream.replay(otlp_export.out)
    assert list(replayed) == streamed
    assert replayed.complete
    [run] = otelstream.runs(otlp_export.out)
    assert (run.graph, run.outcome, run.event_count) == ("exported", "completed", len(streamed))


def test_service_name_and_resource_attributes_come_from_the_standard_variables(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    otelstream.configure(export=otelstream.ExportOptions(otlp=True))
    try:
        g = StateGraph(State)
        g.add_node("a", lambda s: {"log": ["a"]})
        g.add_edge(START, "a")
        list(g.compile().stream({"log": []}))
        assert otelstream.force_flush()
    finally:
        otelstream.shutdown()
        otelstream.configure()
    resources = [
        {a["key"]: a["value"]["stringValue"] for a in resource["resource"]["attributes"] if "stringValue" in a["value"]}
        for line in receiver.out.read_text().splitlines()
        for resource in json.loads(line).get("resourceLogs", [])
    ]
    assert resources and all(r["service.name"] == "from-env" for r in resources)
    assert all(r["deployment.environment"] == "test" for r in resources)
    assert os.environ["OTEL_SERVICE_NAME"] == "from-env"


def test_under_opentelemetry_instrument_the_auto_configured_providers_carry_the_stream(
    receiver: Receiver, tmp_path: Path
) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        """
import json
from typing import TypedDict
from otelstream import START, StateGraph, get_stream_writer

class State(TypedDict):
    n: int

def node(state):
    get_stream_writer()("from an instrumented app")
    return {"n": 1}

g = StateGraph(State)
g.add_node("node", node)
g.add_edge(START, "node")
print(json.dumps(list(g.compile(name="instrumented").stream({"n": 0}, stream_mode="custom"))))
"""
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "opentelemetry-instrument"), sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "instrumented-app",
        },
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["from an instrumented app"]
    # the application's auto-configured exporters flushed at exit: the receiver has the chunk
    assert list(otelstream.replay(receiver.out)) == ["from an instrumented app"]


def test_metrics_are_exported_over_otlp_too(otlp_export: Receiver) -> None:
    g = StateGraph(State)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_edge(START, "a")
    list(g.compile(name="measured").stream({"log": []}))
    otelstream.shutdown()  # the periodic reader exports what it holds at shutdown
    names = {
        metric["name"]
        for line in otlp_export.out.read_text().splitlines()
        for resource in json.loads(line).get("resourceMetrics", [])
        for scope in resource["scopeMetrics"]
        for metric in scope["metrics"]
    }
    assert {"otelstream.runs.started", "otelstream.runs.finished", "otelstream.run.duration"} <= names

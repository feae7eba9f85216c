"""Run, node and progress metrics, and the progress-signal helper."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import otelstream
from otelstream import START, StateGraph, write_progress


def _last(a: int, b: int) -> int:
    return b


class State(TypedDict):
    n: Annotated[int, _last]


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    otelstream.configure(meter_provider=MeterProvider(metric_readers=[reader]))
    yield reader
    otelstream.configure()


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    data = reader.get_metrics_data()
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = ("count", getattr(point, "count", None))
                    out.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return out


def _graph(fail: bool = False, gate: threading.Event | None = None, seen: threading.Event | None = None) -> Any:
    def fetch(state: State) -> dict[str, Any]:
        for done in (10, 20):
            write_progress(done, 100, unit="records", message=f"Fetched {done}/100 records")
        if seen is not None:
            seen.set()
        if gate is not None:
            gate.wait(timeout=30)
        if fail:
            raise ConnectionError("upstream down")
        return {"n": 20}

    g = StateGraph(State)
    g.add_node("fetch", fetch)
    g.add_edge(START, "fetch")
    return g.compile(name="ingest")


def test_progress_signals_reach_the_stream_unchanged() -> None:
    assert list(_graph().stream({"n": 0}, stream_mode="custom")) == [
        {"progress": 10, "total": 100, "unit": "records", "message": "Fetched 10/100 records"},
        {"progress": 20, "total": 100, "unit": "records", "message": "Fetched 20/100 records"},
    ]


def test_invalid_progress_values_are_rejected_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="progress done must be a number, got str"):
        otelstream.progress_chunk("10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="progress total must not be negative, got -1"):
        otelstream.progress_chunk(1, -1)


def test_runs_nodes_and_custom_events_are_counted(reader: InMemoryMetricReader) -> None:
    list(_graph().stream({"n": 0}, stream_mode="updates"))  # custom not streamed: still measured
    with pytest.raises(ConnectionError):
        list(_graph(fail=True).stream({"n": 0}))
    points = _points(reader)
    assert sorted((p[0]["otelstream.outcome"], p[1]) for p in points["otelstream.runs.finished"]) == [
        ("completed", 1),
        ("failed", 1),
    ]
    assert points["otelstream.runs.started"] == [({"otelstream.graph": "ingest"}, 2)]
    assert points["otelstream.runs.active"] == [({"otelstream.graph": "ingest"}, 0)]
    assert points["otelstream.custom.events"] == [({"otelstream.graph": "ingest", "otelstream.node": "fetch"}, 4)]
    assert points["otelstream.progress.signals"] == [({"otelstream.graph": "ingest", "otelstream.node": "fetch"}, 4)]
    assert points["otelstream.node.errors"] == [
        ({"otelstream.graph": "ingest", "otelstream.node": "fetch", "error.type": "ConnectionError"}, 1)
    ]
    assert {tuple(sorted(p[0].items())) for p in points["otelstream.node.duration"]} == {
        (("otelstream.graph", "ingest"), ("otelstream.node", "fetch"), ("otelstream.outcome", "completed")),
        (("otelstream.graph", "ingest"), ("otelstream.node", "fetch"), ("otelstream.outcome", "failed")),
    }
    # per-run gauges report active runs only: both runs are over
    assert "otelstream.run.progress.done" not in points


def test_an_active_run_reports_its_progress_and_last_signal(reader: InMemoryMetricReader) -> None:
    gate, seen = threading.Event(), threading.Event()
    run_id = "run-progress-1"
    consumer = threading.Thread(target=lambda: list(_graph(gate=gate, seen=seen).stream({"n": 0}, {"run_id": run_id})))
    consumer.start()
    try:
        assert seen.wait(timeout=10)
        points = _points(reader)
    finally:
        gate.set()
        consumer.join(timeout=10)
    labels = {"otelstream.graph": "ingest", "otelstream.run_id": run_id}
    assert points["otelstream.run.progress.done"] == [(labels, 20.0)]
    assert points["otelstream.run.progress.total"] == [(labels, 100.0)]
    [(_, last_signal)] = points["otelstream.run.progress.last_signal"]
    [(_, started_at)] = points["otelstream.run.started_at"]
    assert last_signal >= started_at > 1.7e9
    assert points["otelstream.runs.active"] == [({"otelstream.graph": "ingest"}, 1)]


def test_per_run_gauges_can_be_switched_off() -> None:
    reader = InMemoryMetricReader()
    otelstream.configure(meter_provider=MeterProvider(metric_readers=[reader]), per_run_metrics=False)
    try:
        gate, seen = threading.Event(), threading.Event()
        consumer = threading.Thread(target=lambda: list(_graph(gate=gate, seen=seen).stream({"n": 0})))
        consumer.start()
        assert seen.wait(timeout=10)
        points = _points(reader)
        gate.set()
        consumer.join(timeout=10)
    finally:
        otelstream.configure()
    assert "otelstream.run.progress.done" not in points
    assert "otelstream.runs.started" in points


def test_metrics_are_served_for_prometheus_scraping(tmp_path: Path) -> None:
    script = tmp_path / "scrape.py"
    script.write_text(
        """
import json, socket, urllib.request
from typing import TypedDict
import otelstream
from otelstream import START, StateGraph, write_progress

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
otelstream.configure(prometheus=("127.0.0.1", port))

class State(TypedDict):
    n: int

def fetch(state):
    write_progress(5, 10, message="half")
    return {"n": 1}

g = StateGraph(State)
g.add_node("fetch", fetch)
g.add_edge(START, "fetch")
list(g.compile(name="scraped").stream({"n": 0}))
body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
print(json.dumps([line for line in body.splitlines() if line.startswith("otelstream_")]))
"""
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = json.loads(done.stdout)
    names = {line.split("{")[0].split(" ")[0] for line in lines}
    assert {
        "otelstream_runs_started_total",
        "otelstream_runs_finished_total",
        "otelstream_runs_active",
        "otelstream_run_duration_seconds_bucket",
        "otelstream_node_duration_seconds_count",
        "otelstream_custom_events_total",
        "otelstream_progress_signals_total",
    } <= names
    assert any(
        line.startswith("otelstream_runs_finished_total{")
        and 'otelstream_graph="scraped"' in line
        and 'otelstream_outcome="completed"' in line
        for line in lines
    )

"""A misbehaving OTLP endpoint: the application is unaffected, and every loss is reported.

Each test runs a real receiving process (``tests/otlp_receiver.py``) on 127.0.0.1 in a fault
mode — down, killed and restarted on the same port, slow, answering 5xx or 429 — and checks
what a user relies on: runs complete and their streams are whole; every record emitted is either
stored by the receiver or counted as dropped (on the run span and run-end record while the run
is active, in the ``otelstream.stream.dropped`` metric always); ``replay`` over what was stored
reports gaps instead of presenting an incomplete stream as complete; ``shutdown()`` returns.

The exporter's retry budget is 2 s (``OTEL_EXPORTER_OTLP_TIMEOUT``) to keep the file fast.
Figures measured by these tests are in ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream
from otelstream import START, StateGraph, StreamMode, get_stream_writer
from otelstream.telemetry import semconv

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the receiver is controlled by POSIX signals")

ROOT = Path(__file__).resolve().parent.parent
EXPORT_TIMEOUT_S = "2"
WAIT_S = 20.0  # bound of every wait on another thread or process
SHUTDOWN_BOUND_S = 60.0  # "does not hang"
MODES: list[StreamMode] = ["custom", "updates"]


# --- the receiving process -------------------------------------------------------------------


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """One line of the receiver's stdout, waiting at most ``timeout`` seconds."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(remaining, 0))
        if not ready:
            raise AssertionError(f"the receiver printed no line within {timeout} s (so far {line!r})")
        byte = os.read(fd, 1)
        if not byte:
            raise AssertionError(f"the receiver exited (so far {line!r})")
        line += byte
    return line.decode().strip()


class Receiver:
    """A receiving process, controlled by its PID."""

    def __init__(self, out: Path, args: tuple[str, ...]) -> None:
        self.out = out
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.otlp_receiver", str(out), *args], cwd=ROOT, stdout=subprocess.PIPE
        )
        line = _read_line(self.process, WAIT_S)
        assert line.startswith("port="), f"receiver did not start: {line!r}"
        self.port = int(line.split("=")[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.stats = ""

    def recover(self) -> None:
        """End the fault mode (SIGUSR1) and wait for the receiver to confirm it."""
        os.kill(self.process.pid, signal.SIGUSR1)
        line = _read_line(self.process, WAIT_S)
        assert line.startswith("recovered"), line
        self.stats = line.removeprefix("recovered ")

    def kill(self) -> None:
        """Kill the process (SIGKILL): the endpoint is gone at once, mid-request or not."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=WAIT_S)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def documents(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def records(self, run_id: str) -> list[dict[str, Any]]:
        """The otelstream log records of ``run_id`` this receiver stored, as attribute dicts."""
        return [
            {"eventName": record.get("eventName", ""), **_attributes(record)}
            for document in self.documents()
            for resource in document.get("resourceLogs", [])
            for scope in resource["scopeLogs"]
            for record in scope["logRecords"]
            if _attributes(record).get(semconv.RUN_ID) == run_id
        ]

    def chunk_seqs(self, run_id: str) -> list[int]:
        return sorted(int(r[semconv.SEQ]) for r in self.records(run_id) if r["eventName"] != semconv.RUN_END_EVENT)

    def metric_names(self) -> set[str]:
        return {
            metric["name"]
            for document in self.documents()
            for resource in document.get("resourceMetrics", [])
            for scope in resource["scopeMetrics"]
            for metric in scope["metrics"]
        }


def _attributes(record: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in record.get("attributes", []):
        value = attribute["value"]
        if "intValue" in value:
            out[attribute["key"]] = int(value["intValue"])
        elif value:
            out[attribute["key"]] = next(iter(value.values()))
    return out


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    """Start receivers with ``start(name, *args)``; every one is stopped and its pipe closed."""
    started: list[Receiver] = []

    def start(name: str, *args: str) -> Receiver:
        receiver = Receiver(tmp_path / f"{name}.jsonl", args)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def _free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- what otelstream reports -----------------------------------------------------------------


@dataclass
class Drops:
    """The ``otelstream.stream.dropped`` counter, read through an in-memory reader."""

    reader: InMemoryMetricReader

    def by_mode(self) -> dict[str, int]:
        data = self.reader.get_metrics_data()
        counts: dict[str, int] = {}
        for resource in data.resource_metrics if data is not None else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != semconv.METRIC_DROPPED:
                        continue
                    for point in metric.data.data_points:
                        mode = str((point.attributes or {}).get(semconv.MODE))
                        counts[mode] = counts.get(mode, 0) + int(point.value)  # type: ignore[union-attr]
        return counts

    def total(self) -> int:
        return sum(self.by_mode().values())


@pytest.fixture
def faults(
    receivers: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Callable[..., Receiver], Drops]]:
    """OTLP/HTTP export with a 2 s retry budget; drops counted where the test can read them.

    otelstream counts losses on the ``otelstream.stream.dropped`` counter of the meter provider
    it records its metrics on: here one passed to ``configure(meter_provider=...)``.
    """
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", EXPORT_TIMEOUT_S)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    monkeypatch.setattr(sys.modules[__name__], "_METER_PROVIDER", meter_provider)
    yield receivers, Drops(reader)
    otelstream.shutdown()
    otelstream.configure()
    meter_provider.shutdown()


_METER_PROVIDER: MeterProvider | None = None  # set by the ``faults`` fixture


def _export_to(endpoint: str, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> InMemorySpanExporter:
    """Configure otelstream's own OTLP export to ``endpoint``; spans are also kept in memory."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    if _METER_PROVIDER is not None:
        kwargs.setdefault("meter_provider", _METER_PROVIDER)
    spans = InMemorySpanExporter()
    otelstream.configure(
        export=otelstream.ExportOptions(otlp=True),
        service_name="faults",
        additional_span_processors=[SimpleSpanProcessor(spans)],
        **kwargs,
    )
    return spans


def _run_span(spans: InMemorySpanExporter, run_id: str) -> ReadableSpan:
    [span] = [
        s
        for s in spans.get_finished_spans()
        if s.name.startswith("invoke_workflow") and (s.attributes or {}).get(semconv.RUN_ID) == run_id
    ]
    return span


def _reported_on_run(span: ReadableSpan) -> dict[str, int]:
    """The ``otelstream.dropped*`` attributes of a run span."""
    reported = {k: v for k, v in (span.attributes or {}).items() if k.startswith(semconv.DROPPED)}
    assert all(isinstance(v, int) for v in reported.values()), reported
    return {k: int(v) for k, v in reported.items() if isinstance(v, int)}


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    # A bounded poll, kept: each condition is reached through a receiver process (what it
    # holds, or otelstream's export thread failing against it and counting the loss), and
    # neither signals this process; an event needs a drop callback in otelstream's export.
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.05)


# --- graphs ----------------------------------------------------------------------------------


def _last(a: int, b: int) -> int:
    return b


class State(TypedDict):
    n: Annotated[int, _last]


def _graph(name: str, node: Callable[[State], dict[str, Any]]) -> otelstream.CompiledStateGraph:
    g = StateGraph(State)
    g.add_node(name, node)
    g.add_edge(START, name)
    return g.compile(name=name)


def _burst(events: int) -> otelstream.CompiledStateGraph:
    def burst(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(events):
            write(i)
        return {"n": events}

    return _graph("burst", burst)


def _burst_chunks(events: int) -> list[Any]:
    return [("custom", i) for i in range(events)] + [("updates", {"burst": {"n": events}})]


def _stream(graph: otelstream.CompiledStateGraph) -> tuple[str, list[Any], float]:
    """Stream ``graph`` with a known run id; return the id, the chunks and the seconds it took."""
    run_id = str(uuid.uuid4())
    started = time.monotonic()
    chunks = list(graph.stream({"n": 0}, {"run_id": run_id}, stream_mode=MODES))
    return run_id, chunks, time.monotonic() - started


def _emitted(chunks: list[Any]) -> int:
    """Records a run emits: one per chunk, plus its ``otelstream.run.end`` record."""
    return len(chunks) + 1


# --- 1. endpoint down from the start ---------------------------------------------------------


def test_endpoint_down_from_the_start_runs_complete_losses_are_counted_and_shutdown_returns(
    faults: tuple[Callable[..., Receiver], Drops], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, drops = faults
    spans = _export_to(f"http://127.0.0.1:{_free_port()}", monkeypatch)  # nothing listens there

    # a burst larger than the export queue (2,048), then two small runs
    runs = [_stream(_burst(5_000)), _stream(_burst(100)), _stream(_burst(100))]

    for (_, chunks, _), events in zip(runs, (5_000, 100, 100), strict=True):
        assert chunks == _burst_chunks(events)  # the streams are whole
    burst_id = runs[0][0]
    burst_span = _run_span(spans, burst_id)
    assert (burst_span.attributes or {})[semconv.OUTCOME] == "completed"
    # the burst overflowed the queue while exports failed: losses during the run are on its span
    on_span = _reported_on_run(burst_span)
    assert on_span[semconv.DROPPED] > 0
    assert on_span[semconv.DROPPED] == sum(v for k, v in on_span.items() if k != semconv.DROPPED)
    # and the application's log says so, once
    assert [r.getMessage() for r in caplog.records if r.name == "otelstream"] == [
        "otelstream: the exporter is failing or stalled; stream records are being dropped "
        "(counted per run on the run span and the otelstream.run.end record)"
    ]

    started = time.monotonic()
    otelstream.shutdown()
    shutdown_s = time.monotonic() - started
    assert shutdown_s < SHUTDOWN_BOUND_S  # does not hang

    # nothing reached an endpoint, and every record emitted is counted as dropped
    emitted = sum(_emitted(chunks) for _, chunks, _ in runs)
    assert drops.by_mode() == {"custom": 5_200, "updates": 3, "run.end": 3}
    assert drops.total() == emitted
    print(
        f"\n[down from start] runs took {[round(s, 2) for _, _, s in runs]} s; burst span dropped "
        f"{on_span[semconv.DROPPED]}; emitted {emitted}, dropped {drops.total()}; shutdown {shutdown_s:.2f} s"
    )


# --- 2. endpoint killed mid-run and restarted on the same port ----------------------------------


PHASE = 200


def test_endpoint_killed_mid_run_and_restarted_export_recovers_and_replay_reports_the_gap(
    faults: tuple[Callable[..., Receiver], Drops], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    start, drops = faults
    first = start("first")
    spans = _export_to(first.endpoint, monkeypatch)
    run_id = str(uuid.uuid4())
    second: list[Receiver] = []

    def phased(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(PHASE):
            write({"phase": "up", "i": i})
        # the first receiver holds everything so far (the initial values are not streamed)
        _wait_until(lambda: len(first.chunk_seqs(run_id)) == PHASE, "the first receiver holds phase 1")
        first.kill()
        for i in range(PHASE):
            write({"phase": "down", "i": i})
        _wait_until(lambda: drops.by_mode().get("custom", 0) >= PHASE, "phase 2 is counted as dropped")
        second.append(start("second", "--port", str(first.port)))
        for i in range(PHASE):
            write({"phase": "back", "i": i})
        return {"n": 3 * PHASE}

    streamed = list(_graph("phased", phased).stream({"n": 0}, {"run_id": run_id}, stream_mode=MODES))
    assert otelstream.force_flush()

    # the application saw every chunk
    assert streamed == [
        *[("custom", {"phase": phase, "i": i}) for phase in ("up", "down", "back") for i in range(PHASE)],
        ("updates", {"phased": {"n": 3 * PHASE}}),
    ]
    # records emitted after the endpoint returned reached the new receiver
    assert first.chunk_seqs(run_id) == list(range(PHASE))
    assert second[0].chunk_seqs(run_id) == list(range(2 * PHASE, len(streamed)))
    # the loss is counted on the run, on the run-end record, and in the metric
    assert _reported_on_run(_run_span(spans, run_id)) == {semconv.DROPPED: PHASE, f"{semconv.DROPPED}.custom": PHASE}
    [end] = [r for r in second[0].records(run_id) if r["eventName"] == semconv.RUN_END_EVENT]
    assert (end[semconv.EVENT_COUNT], end[semconv.DROPPED]) == (len(streamed), PHASE)
    assert drops.by_mode() == {"custom": PHASE}

    # replay over what the receivers stored reports the gap; it never presents the run complete
    stored = tmp_path / "stored.jsonl"
    with stored.open("w") as combined:
        for receiver in (first, second[0]):
            combined.write(receiver.out.read_text())
    replayed = otelstream.replay(stored, run_id=run_id)
    assert replayed.gaps == [otelstream.Gap(first_seq=PHASE, count=PHASE)]
    assert not replayed.complete
    assert list(replayed) == streamed[:PHASE] + streamed[2 * PHASE :]
    [run] = otelstream.runs(stored)
    assert (run.outcome, run.event_count, run.received, run.missing) == (
        "completed",
        len(streamed),
        len(streamed) - PHASE,
        PHASE,
    )
    with pytest.raises(otelstream.IncompleteStreamError, match="gaps"):
        otelstream.replay(stored, run_id=run_id, strict=True)
    print(f"\n[killed mid-run] streamed {len(streamed)}, stored {run.received}, dropped {drops.total()}")


# --- 3. slow endpoint -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delay", "events"),
    [
        pytest.param("1", 3_000, id="1s-per-request"),  # within the 2 s timeout and stall limit
        pytest.param("3", 6_000, id="3s-per-request"),  # beyond both
    ],
)
def test_slow_endpoint_runs_complete_and_every_record_is_exported_or_counted(
    faults: tuple[Callable[..., Receiver], Drops], monkeypatch: pytest.MonkeyPatch, delay: str, events: int
) -> None:
    start, drops = faults
    receiver = start("slow", "--delay", delay)
    spans = _export_to(receiver.endpoint, monkeypatch)

    run_id, streamed, took = _stream(_burst(events))
    assert streamed == _burst_chunks(events)
    assert (_run_span(spans, run_id).attributes or {})[semconv.OUTCOME] == "completed"

    receiver.recover()  # the endpoint is fast again
    assert otelstream.force_flush()
    received = len(receiver.records(run_id))
    assert received + drops.total() == _emitted(streamed)
    # what was stored is what the application saw, at the same positions
    stored = receiver.out
    replayed = otelstream.replay(stored, run_id=run_id)
    numbered = list(replayed.numbered())
    assert numbered and all(streamed[seq] == (chunk.mode, chunk.payload) for seq, chunk in numbered)
    on_span = _reported_on_run(_run_span(spans, run_id))
    if delay == "1":
        # slower, never lost: the application waits while the exporter makes progress
        assert drops.total() == 0 and on_span == {}
        assert replayed.complete and list(replayed) == streamed
    else:
        # exports time out (2 s) and stall: records are dropped, counted, and replay says so;
        # the first batch (512 records) was held past its client's timeout, so it is missing
        assert drops.total() > 0 and on_span[semconv.DROPPED] > 0
        assert not replayed.complete
        assert replayed.gaps[0].first_seq == 0 and replayed.gaps[0].count >= 512

    # later runs export completely
    later_id, later, _ = _stream(_burst(50))
    assert otelstream.force_flush()
    later_replay = otelstream.replay(stored, run_id=later_id)
    assert later_replay.complete and list(later_replay) == later
    print(
        f"\n[slow {delay}s] run took {took:.2f} s; emitted {_emitted(streamed)}, received {received}, "
        f"dropped {drops.total()} (on span {on_span.get(semconv.DROPPED, 0)}); receiver {receiver.stats}; "
        f"replay gaps {replayed.gaps}, notes {replayed.notes}"
    )


# --- 4. 5xx and 429 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(("--fail-status", "500"), id="500"),
        pytest.param(("--fail-status", "503"), id="503"),
        pytest.param(("--fail-status", "429", "--retry-after", "1"), id="429-retry-after-1"),
    ],
)
def test_endpoint_answering_errors_app_unaffected_losses_counted_then_later_runs_export_whole(
    faults: tuple[Callable[..., Receiver], Drops], monkeypatch: pytest.MonkeyPatch, fault: tuple[str, ...]
) -> None:
    start, drops = faults
    receiver = start("failing", *fault)
    spans = _export_to(receiver.endpoint, monkeypatch)

    def waits_for_the_loss(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(PHASE):
            write(i)
        # stay active until the failed export is counted, so the loss lands on this run
        _wait_until(lambda: drops.by_mode().get("custom", 0) >= PHASE, "the failed export is counted")
        return {"n": PHASE}

    failed_id, failed, took = _stream(_graph("failing", waits_for_the_loss))
    assert failed == [*[("custom", i) for i in range(PHASE)], ("updates", {"failing": {"n": PHASE}})]
    assert _reported_on_run(_run_span(spans, failed_id)) == {
        semconv.DROPPED: PHASE,
        f"{semconv.DROPPED}.custom": PHASE,
    }
    assert otelstream.force_flush()
    # nothing stored, everything counted: the chunks, the last update and the run-end record
    assert receiver.records(failed_id) == []
    assert drops.by_mode() == {"custom": PHASE, "updates": 1, "run.end": 1}

    receiver.recover()
    later_id, later, _ = _stream(_burst(PHASE))
    assert otelstream.force_flush()
    replayed = otelstream.replay(receiver.out, run_id=later_id)
    assert replayed.complete and list(replayed) == later == _burst_chunks(PHASE)
    assert drops.total() == _emitted(failed)  # no new loss
    print(f"\n[{' '.join(fault)}] run took {took:.2f} s; dropped {drops.total()}; receiver {receiver.stats}")


# --- the loss metric where a user can read it ------------------------------------------------


@pytest.mark.parametrize("where", ["configured-meter-provider", "otlp-export"])
def test_the_loss_metric_reaches_the_meter_provider_otelstream_uses(
    receivers: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", EXPORT_TIMEOUT_S)
    receiver = receivers("failing", "--fail-status", "503")
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    kwargs: dict[str, Any] = {"meter_provider": meter_provider} if where == "configured-meter-provider" else {}
    try:
        _export_to(receiver.endpoint, monkeypatch, **kwargs)
        _, chunks, _ = _stream(_burst(PHASE))
        assert len(chunks) == PHASE + 1
        assert otelstream.force_flush()  # every record fails to export
        receiver.recover()
        otelstream.shutdown()  # the private meter provider exports its metrics to the recovered receiver
        if where == "otlp-export":
            names = receiver.metric_names()
        else:
            data = reader.get_metrics_data()
            assert data is not None
            names = {m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics}
        assert "otelstream.runs.started" in names  # otelstream's metrics do arrive there
        assert semconv.METRIC_DROPPED in names
    finally:
        otelstream.shutdown()
        otelstream.configure()
        meter_provider.shutdown()

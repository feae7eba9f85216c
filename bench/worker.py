"""Run one workload on one engine configuration, in a process of its own; print JSON.

Usage: ``python bench/worker.py CONFIG WORKLOAD --reps N --warmup M``. ``bench/run.py``
starts one worker per (workload, configuration): otelstream's instrumentation patches
globals (providers, the span-event hook), so configurations never share a process.

Configurations:

- ``langgraph``: LangGraph's plain ``stream()``.
- ``langgraph-traced``: LangGraph with OpenInference's LangChain instrumentor
  (``LangChainInstrumentor().instrument(tracer_provider=...)``), its spans exported through a
  ``BatchSpanProcessor`` to a counting null exporter; each repetition's clock stops after the
  tracer provider's ``force_flush()`` returned (the "traced peer").
- ``none``: otelstream with no setup (private providers, no exporter).
- ``null-export``: ``configure(additional_log_record_processors=[BackpressureLogRecordProcessor(
  counting exporter)], additional_span_processors=[BatchSpanProcessor(counting exporter)])``;
  each repetition's clock stops after ``otelstream.force_flush()`` returned.
- ``otlp``: ``configure(export=ExportOptions(otlp=True))`` with ``OTEL_EXPORTER_OTLP_ENDPOINT``
  pointing at ``bench/receiver.py``; the clock stops after ``otelstream.force_flush()``.
- ``plugin-none`` / ``plugin-null-export`` / ``plugin-otlp``: LangGraph's own graphs with
  otelstream's plugin, ``LangGraphInstrumentor().instrument(export_modes=[])``, over the export
  setup of ``none`` / ``null-export`` / ``otlp``: every chunk the application streams exported
  (and no other mode, so the exported records must equal the chunks streamed), with run, node
  and chat-model spans.

GC: ``gc.collect()`` before every timed repetition, GC left enabled (default thresholds)
while it runs, the same for every configuration.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from workloads import WORKLOADS, Sample, load_lib

CONFIGS = (
    "langgraph",
    "langgraph-traced",
    "none",
    "null-export",
    "otlp",
    "plugin-none",
    "plugin-null-export",
    "plugin-otlp",
)
PLUGIN_PREFIX = "plugin-"
EXPORT_CONFIGS = ("null-export", "otlp")
CHUNK_PREFIX = "otelstream."
RUN_END = "otelstream.run.end"


class Counts:
    """Stream records, run-end records and spans an exporter received. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.chunks = 0
        self.run_ends = 0
        self.spans = 0

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"chunks": self.chunks, "run_ends": self.run_ends, "spans": self.spans}

    def add(self, *, chunks: int = 0, run_ends: int = 0, spans: int = 0) -> None:
        with self._lock:
            self.chunks += chunks
            self.run_ends += run_ends
            self.spans += spans


def counting_span_exporter(counts: Counts) -> Any:
    """A span exporter that counts the spans it gets and drops them."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class CountingSpanExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            counts.add(spans=len(spans))
            return SpanExportResult.SUCCESS

    return CountingSpanExporter()


class TracedPeer:
    """``langgraph-traced``: OpenInference's LangChain instrumentor on LangGraph, spans to a counting exporter."""

    def __init__(self) -> None:
        from openinference.instrumentation.langchain import LangChainInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.counts = Counts()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "langgraph-bench"}))
        self.provider.add_span_processor(BatchSpanProcessor(counting_span_exporter(self.counts)))
        LangChainInstrumentor().instrument(tracer_provider=self.provider)

    def flush(self) -> None:
        if not self.provider.force_flush():
            raise SystemExit("TracerProvider.force_flush() timed out")

    def spans(self) -> int:
        return self.counts.snapshot()["spans"]


class Exporting:
    """The export side of an otelstream configuration: how to flush, count and read drops."""

    def __init__(self, config: str) -> None:
        import otelstream

        self.config = config
        self.counts = Counts()
        self.processor: Any = None
        self.endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        if config == "null-export":
            self._configure_null_export(otelstream)
        elif config == "otlp":
            if not self.endpoint:
                raise SystemExit("the otlp configuration needs OTEL_EXPORTER_OTLP_ENDPOINT")
            otelstream.configure(export=otelstream.ExportOptions(otlp=True), service_name="otelstream-bench")

    def _configure_null_export(self, otelstream: Any) -> None:
        from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from otelstream.telemetry.export import BackpressureLogRecordProcessor

        counts = self.counts

        class CountingLogExporter(LogRecordExporter):
            def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
                chunks = run_ends = 0
                for record in batch:
                    name = record.log_record.event_name or ""
                    if name == RUN_END:
                        run_ends += 1
                    elif name.startswith(CHUNK_PREFIX):
                        chunks += 1
                counts.add(chunks=chunks, run_ends=run_ends)
                return LogRecordExportResult.SUCCESS

            def shutdown(self) -> None:
                pass

            def force_flush(self, timeout_millis: int = 30000) -> bool:
                return True

        self.processor = BackpressureLogRecordProcessor(CountingLogExporter())
        otelstream.configure(
            additional_log_record_processors=[self.processor],
            additional_span_processors=[BatchSpanProcessor(counting_span_exporter(counts))],
        )

    def flush(self) -> None:
        import otelstream

        if not otelstream.force_flush():
            raise SystemExit("otelstream.force_flush() timed out")

    def received(self) -> dict[str, int]:
        if self.config == "otlp":
            with urllib.request.urlopen(f"{self.endpoint}/counts", timeout=30) as response:
                data: dict[str, int] = json.loads(response.read())
            return data
        return self.counts.snapshot()

    def dropped(self) -> int:
        return int(getattr(self._backpressure_processor(), "dropped", 0))

    def _backpressure_processor(self) -> Any:
        if self.processor is not None:
            return self.processor
        # otlp: the processor otelstream made for its private provider (read-only peek)
        from otelstream import _config

        processors = _config._private.export_processors
        return processors[0] if processors else None

    def shutdown(self) -> None:
        import otelstream

        otelstream.shutdown()


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def percentile(values: Sequence[int | float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return float(ordered[rank - 1])


def measure(config: str, workload_name: str, reps: int, warmup: int) -> dict[str, Any]:
    workload = WORKLOADS[workload_name]
    plugin = config.startswith(PLUGIN_PREFIX)
    export_config = config.removeprefix(PLUGIN_PREFIX)
    lib = load_lib("langgraph" if config.startswith("langgraph") or plugin else "otelstream")
    exporting = Exporting(export_config) if export_config in EXPORT_CONFIGS else None
    traced = TracedPeer() if config == "langgraph-traced" else None
    if plugin:
        from otelstream.integrations.langgraph import LangGraphInstrumentor

        # only the application's modes: the exported records must equal the chunks streamed
        LangGraphInstrumentor().instrument(export_modes=[])
    graph = workload.build(lib, workload.size)
    run: Callable[[Any, int], Sample] = workload.run

    def check(sample: Sample, size: int) -> Sample:
        if workload.expected_chunks is not None and sample.chunks != workload.expected_chunks(size):
            raise SystemExit(
                f"{config} {workload_name}: a run yielded {sample.chunks} chunks, expected "
                f"{workload.expected_chunks(size)} (is the stream mode supported?)"
            )
        return sample

    def finish() -> None:
        if exporting is not None:
            exporting.flush()
        if traced is not None:
            traced.flush()

    for _ in range(warmup):
        check(run(graph, workload.warmup_size), workload.warmup_size)
        finish()
    received_before = exporting.received() if exporting is not None else {}
    gc.collect()
    rss_before = _maxrss_bytes()
    seconds: list[float] = []
    chunks: list[int] = []
    p50: list[float] = []
    p99: list[float] = []
    latencies: list[int] = []
    spans: list[int] = []
    spans_before = traced.spans() if traced is not None else 0
    for _ in range(reps):
        gc.collect()
        start = time.perf_counter()
        sample = run(graph, workload.size)
        finish()
        seconds.append(time.perf_counter() - start)
        chunks.append(check(sample, workload.size).chunks)
        if traced is not None:  # after the clock: spans this repetition exported
            spans_now = traced.spans()
            spans.append(spans_now - spans_before)
            spans_before = spans_now
        if sample.latencies_ns:
            p50.append(percentile(sample.latencies_ns, 0.50) / 1000)
            p99.append(percentile(sample.latencies_ns, 0.99) / 1000)
            latencies.extend(sample.latencies_ns)
    rss_growth = _maxrss_bytes() - rss_before
    floor_seconds: list[float] = []
    if config == "langgraph" and workload.floor is not None:
        # the engine-independent floor (e.g. the model and LangChain's callbacks, no graph)
        workload.floor(workload.warmup_size)
        for _ in range(reps):
            gc.collect()
            start = time.perf_counter()
            workload.floor(workload.size)
            floor_seconds.append(time.perf_counter() - start)
    result: dict[str, Any] = {
        "config": config,
        "workload": workload_name,
        "reps": reps,
        "warmup": warmup,
        "seconds": seconds,
        "chunks": chunks,
        "maxrss_growth_bytes": rss_growth,
    }
    if latencies:
        result["p50_us"] = p50
        result["p99_us"] = p99
        result["pooled_p50_us"] = percentile(latencies, 0.50) / 1000
        result["pooled_p99_us"] = percentile(latencies, 0.99) / 1000
    if floor_seconds:
        result["floor_seconds"] = floor_seconds
    if traced is not None:
        result["traced_spans"] = spans
    if exporting is not None:
        received_after = exporting.received()
        delta = {key: received_after[key] - received_before.get(key, 0) for key in received_after}
        result["exported"] = delta
        result["dropped"] = exporting.dropped()
        result["counts_ok"] = delta.get("chunks") == sum(chunks) and delta.get("run_ends") == reps
        exporting.shutdown()
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", choices=CONFIGS)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    result = measure(args.config, args.workload, args.reps, args.warmup)
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

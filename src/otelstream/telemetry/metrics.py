"""Run, node and progress metrics, recorded by the same observer that emits the stream.

Names and labels are the contract in ``docs/telemetry.md`` (section "Metrics"). Labels are
bounded: graph and node names come from the application's code; the run id appears only
on the per-run gauges, which observe active runs only.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otelstream.telemetry import semconv

__all__ = ["GenAIMetrics", "RunMetrics", "is_progress"]


def is_progress(chunk: Any) -> bool:
    """Return whether a ``custom`` chunk is a progress signal (a dict with a numeric ``progress``)."""
    if type(chunk) is not dict:
        return False
    done = chunk.get("progress")
    return isinstance(done, (int, float)) and not isinstance(done, bool)


@dataclasses.dataclass(slots=True)
class _ActiveRun:
    graph: str
    started_at: float
    last_signal: float
    done: float | None = None
    total: float | None = None


class RunMetrics:
    """Records otelstream's metrics on a meter. Thread-safe; never raises into the caller."""

    def __init__(self, meter: Meter, *, per_run: bool = True) -> None:
        """Create the instruments on ``meter``; per-run gauges only if ``per_run``."""
        self._lock = threading.Lock()
        self._active: dict[str, _ActiveRun] = {}
        self.runs_started = meter.create_counter("otelstream.runs.started", unit="{run}", description="Runs started")
        self.runs_finished = meter.create_counter(
            "otelstream.runs.finished", unit="{run}", description="Runs finished, by outcome"
        )
        self.runs_active = meter.create_up_down_counter(
            "otelstream.runs.active", unit="{run}", description="Runs in progress"
        )
        self.run_duration = meter.create_histogram(
            "otelstream.run.duration", unit="s", description="Run duration, by outcome"
        )
        self.node_duration = meter.create_histogram(
            "otelstream.node.duration", unit="s", description="Node task duration, by outcome"
        )
        self.node_errors = meter.create_counter(
            "otelstream.node.errors", unit="{error}", description="Node tasks that raised"
        )
        # custom writes can come 100,000 a second: counted in a dict, reported at collection
        # (an SDK Counter.add per write cost a third of a write's time)
        self._custom_counts: dict[tuple[str, str], int] = {}
        meter.create_observable_counter(
            "otelstream.custom.events", [self._observe_custom], unit="{event}", description="Custom stream writes"
        )
        self.progress_signals = meter.create_counter(
            "otelstream.progress.signals", unit="{signal}", description="Progress signals written"
        )
        self.genai = GenAIMetrics(meter)
        if per_run:
            meter.create_observable_gauge(
                "otelstream.run.progress.done", [self._observe("done")], unit="1", description="Work done"
            )
            meter.create_observable_gauge(
                "otelstream.run.progress.total", [self._observe("total")], unit="1", description="Work to do"
            )
            meter.create_observable_gauge(
                "otelstream.run.progress.last_signal",
                [self._observe("last_signal")],
                unit="s",
                description="Unix time of the run's last progress signal (its start until the first)",
            )
            meter.create_observable_gauge(
                "otelstream.run.started_at",
                [self._observe("started_at")],
                unit="s",
                description="Unix time the run started",
            )

    def _observe_custom(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            counts = list(self._custom_counts.items())
        return [Observation(count, {semconv.GRAPH: graph, semconv.NODE: node}) for (graph, node), count in counts]

    def _observe(self, field: str) -> Any:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                runs = list(self._active.items())
            out = []
            for run_id, run in runs:
                value = getattr(run, field)
                if value is not None:
                    out.append(Observation(value, {semconv.GRAPH: run.graph, semconv.RUN_ID: run_id}))
            return out

        return callback

    def run_started(self, run_id: str, graph: str) -> None:
        """Count a root run as started and active."""
        labels = {semconv.GRAPH: graph}
        self.runs_started.add(1, labels)
        self.runs_active.add(1, labels)
        now = time.time()
        with self._lock:
            self._active[run_id] = _ActiveRun(graph=graph, started_at=now, last_signal=now)

    def run_ended(self, run_id: str, graph: str, outcome: str, duration_s: float) -> None:
        """Count a root run as finished with ``outcome``."""
        self.runs_active.add(-1, {semconv.GRAPH: graph})
        labels = {semconv.GRAPH: graph, semconv.OUTCOME: outcome}
        self.runs_finished.add(1, labels)
        self.run_duration.record(duration_s, labels)
        with self._lock:
            self._active.pop(run_id, None)

    def node_ended(self, graph: str, node: str, outcome: str, duration_s: float, error: BaseException | None) -> None:
        """Record one node task's duration, and its error if it failed."""
        self.node_duration.record(duration_s, {semconv.GRAPH: graph, semconv.NODE: node, semconv.OUTCOME: outcome})
        if outcome == "failed" and error is not None:
            self.node_errors.add(
                1, {semconv.GRAPH: graph, semconv.NODE: node, semconv.ERROR_TYPE: type(error).__qualname__}
            )

    def custom_written(self, root_run_id: str, graph: str, node: str, chunk: Any) -> None:
        """Count a custom write; a progress signal also updates its run's progress."""
        key = (graph, node)
        with self._lock:
            self._custom_counts[key] = self._custom_counts.get(key, 0) + 1
        if not is_progress(chunk):
            return
        self.progress_signals.add(1, {semconv.GRAPH: graph, semconv.NODE: node})
        total = chunk.get("total")
        with self._lock:
            run = self._active.get(root_run_id)
            if run is None:
                return
            run.done = float(chunk["progress"])
            if isinstance(total, (int, float)) and not isinstance(total, bool):
                run.total = float(total)
            run.last_signal = time.time()


# the GenAI conventions' advisory bucket boundaries (seconds, and tokens)
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_CHUNK_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


class GenAIMetrics:
    """The GenAI semantic conventions' client metrics, for LLM and tool calls."""

    def __init__(self, meter: Meter) -> None:
        """Create the histograms on ``meter``."""
        self.operation_duration = meter.create_histogram(
            semconv.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.token_usage = meter.create_histogram(
            semconv.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.time_to_first_chunk = meter.create_histogram(
            semconv.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from the request to the first streamed chunk",
            explicit_bucket_boundaries_advisory=_CHUNK_BUCKETS,
        )
        self.time_per_output_chunk = meter.create_histogram(
            semconv.METRIC_TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Time between consecutive streamed chunks, after the first",
            explicit_bucket_boundaries_advisory=_CHUNK_BUCKETS,
        )
        self.tool_duration = meter.create_histogram(
            semconv.METRIC_TOOL_DURATION,
            unit="s",
            description="Tool execution duration",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )

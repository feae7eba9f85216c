"""The engine's observer: a run tree's chunks, runs and tasks turned into OpenTelemetry.

:class:`TelemetryObserver` is the engine's :class:`~otelstream.engine.events.RunObserver`.
It adapts the engine's events to the shared :mod:`~otelstream.telemetry.pipeline`: each chunk
a consumer asked for becomes exactly one ``otelstream.<mode>`` record through
:meth:`Streams.emit <otelstream.telemetry.pipeline.Streams.emit>`, in the context of the
span it belongs to; runs and node tasks get ``invoke_workflow {graph}`` /
``invoke_node {node}`` spans. otelstream's log record processor receives each record
synchronously inside ``emit()`` and feeds ``stream()`` from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from opentelemetry import context as otel_context

from otelstream.engine.events import Outcome, RunInfo, StreamEvent, Task
from otelstream.engine.runtime import TaskContext
from otelstream.engine.types import StreamMode
from otelstream.errors import RunStopped
from otelstream.telemetry import messages as _messages
from otelstream.telemetry import semconv
from otelstream.telemetry._safe import handle_internal_errors
from otelstream.telemetry.hooks import task_hooks
from otelstream.telemetry.llm import stop_calls
from otelstream.telemetry.pipeline import Pipeline, SpanHandle, Streams, StreamTarget, start_span
from otelstream.telemetry.runs import end_run_span, start_run_span, thread_links

__all__ = ["TelemetryObserver", "streams_of"]


def _no_write(_: Any) -> None:
    """The ``custom`` writer when nobody streams ``custom``: a silent no-op."""


def streams_of(ctx: TaskContext | None) -> Streams | None:
    """Return the streams of the run tree the task of ``ctx`` belongs to, if otelstream observes it."""
    if ctx is None:
        return None
    observer = ctx.observer
    return observer.streams if isinstance(observer, TelemetryObserver) else None


class TelemetryObserver:
    """Records one run tree (a run and its subgraph runs) into OpenTelemetry."""

    __slots__ = ("_parent_context", "streams")

    def __init__(self, streams: Streams, parent_context: otel_context.Context | None) -> None:
        """Observe for ``streams``; root spans start under ``parent_context``."""
        self.streams = streams
        self._parent_context = parent_context

    @classmethod
    def for_root(cls, pipeline: Pipeline, parent_context: otel_context.Context | None) -> TelemetryObserver:
        """Return the observer of a root run (its consumers are added with :meth:`with_target`)."""
        return cls(Streams(pipeline, []), parent_context)

    @property
    def pipeline(self) -> Pipeline:
        """Where the telemetry goes."""
        return self.streams.pipeline

    def with_target(self, target: StreamTarget | None) -> TelemetryObserver:
        """Return an observer for a nested run that also feeds ``target``."""
        return TelemetryObserver(self.streams.with_target(target), self._parent_context)

    # --- chunks ---------------------------------------------------------------------------

    def wants(self, namespace: tuple[str, ...], mode: StreamMode) -> bool:
        """Return whether any target takes ``mode`` chunks from ``namespace``."""
        return self.streams.wants(namespace, mode)

    def emit(self, event: StreamEvent, run: RunInfo, task: Task | None) -> None:
        """Emit one record per target that wants ``event``, in the task's span (else the run's)."""
        handle = task.handle if task is not None and task.handle is not None else run.handle
        self.streams.emit(
            event.namespace, event.mode, event.payload, graph=run.graph_name, node=event.node, handle=handle
        )

    def writer_for(self, run: RunInfo, task: Task) -> Callable[[Any], None]:
        """Return the ``custom`` writer for ``task``.

        It emits only if someone streams ``custom``; it always feeds the metrics (custom event
        counts, progress signals), so progress is measured whether or not it is streamed.
        """
        streams = self.streams
        metrics = streams.pipeline.metrics
        targets = streams.targets_for(run.namespace, "custom")
        if metrics is None and not targets:
            return _no_write
        root_run_id = streams.root_run_id or run.run_id
        namespace, graph, node = run.namespace, run.graph_name, task.name

        def write(chunk: Any) -> None:
            if metrics is not None:
                with handle_internal_errors("recording custom metrics"):
                    metrics.custom_written(root_run_id, graph, node, chunk)
            if targets:
                handle = task.handle if task.handle is not None else run.handle
                streams.emit(namespace, "custom", chunk, graph=graph, node=node, handle=handle, targets=targets)

        return write

    # --- spans ----------------------------------------------------------------------------

    def run_started(self, run: RunInfo) -> None:
        """Start the run's ``invoke_workflow {graph}`` span and pick each target's logger."""
        with handle_internal_errors("starting a run span"):
            streams = self.streams
            parent = run.parent_task.handle if run.parent_task is not None else None
            run.handle = start_run_span(
                streams.pipeline,
                graph=run.graph_name,
                run_id=run.run_id,
                namespace=run.namespace,
                thread_id=run.config.get("configurable", {}).get("thread_id"),
                own=[t for t in streams.targets if t.run_id == run.run_id],
                parent_context=parent.context if parent is not None else self._parent_context,
                links=thread_links(run.previous_trace),
            )
            if not run.namespace:
                streams.root_run_id = run.run_id

    def trace_reference(self, run: RunInfo) -> dict[str, str] | None:
        """Return the run span's trace and span ids (hex), kept in the checkpoints it writes."""
        handle: SpanHandle | None = run.handle
        if handle is None:
            return None
        context = handle.span.get_span_context()
        if not context.is_valid:
            return None
        return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}

    def run_ended(self, run: RunInfo, outcome: Outcome, error: BaseException | None) -> None:
        """End the run's span with ``otelstream.outcome``; ERROR status only on failure."""
        handle: SpanHandle | None = run.handle
        if handle is None:
            return
        if not run.namespace:
            # an LLM call its code never finished must not outlive the run (nor stay registered)
            self.run_stopping(run, outcome)
        with handle_internal_errors("ending a run span"):
            end_run_span(
                self.pipeline,
                handle,
                graph=run.graph_name,
                run_id=run.run_id,
                namespace=run.namespace,
                thread_id=run.config.get("configurable", {}).get("thread_id"),
                own=[t for t in self.streams.targets if t.run_id == run.run_id],
                outcome=outcome,
                error=error,
            )

    @contextmanager
    def task_scope(self, task: Task, run: RunInfo) -> Iterator[None]:
        """Make the task's ``invoke_node {node}`` span current while its node code runs."""
        token = None
        with handle_internal_errors("starting a node span"):
            if task.handle is None:
                parent: SpanHandle | None = run.handle
                task.handle = start_span(
                    self.pipeline,
                    f"{semconv.OPERATION_INVOKE_NODE} {task.name}",
                    parent.context if parent is not None else self._parent_context,
                    attributes={
                        semconv.GRAPH: task.graph_name,
                        semconv.NODE: task.name,
                        semconv.STEP: task.step,
                        semconv.TASK_ID: task.id,
                        semconv.NAMESPACE: task.checkpoint_ns,
                    },
                )
            token = otel_context.attach(task.handle.context)
        try:
            with ExitStack() as hooks:
                with handle_internal_errors("preparing a node's integrations"):
                    targets = self.streams.targets_for(run.namespace, "messages")
                    if targets:
                        # echoed history is never re-emitted: LangGraph seeds at node start
                        _messages.seed_input(targets, task.input)
                    for hook in task_hooks():
                        scope = hook(task, run, self.streams)
                        if scope is not None:
                            hooks.enter_context(scope)
                yield
        finally:
            if token is not None:
                otel_context.detach(token)

    def node_returned(self, task: Task, run: RunInfo, result: Any) -> None:
        """Emit the messages the node returned (``messages`` mode), before its update."""
        with handle_internal_errors("emitting a node's messages"):
            _messages.emit_node_output(self.streams, run, task, result)

    def run_stopping(self, run: RunInfo, outcome: Outcome) -> None:
        """End the LLM calls still open in the run tree with ``outcome``.

        Called when the consumer stops reading (``abandoned``/``cancelled``), before node
        threads are waited for, and when the root run ends.
        """
        with handle_internal_errors("ending a stopped run's LLM calls"):
            stop_calls(self.streams.root_run_id or run.run_id, outcome)

    def task_ended(self, task: Task, error: BaseException | None) -> None:
        """End the task's span; a node's exception is recorded on it."""
        handle: SpanHandle | None = task.handle
        if handle is None:
            return
        with handle_internal_errors("ending a node span"):
            if error is None:
                outcome: Outcome = "interrupted" if task.interrupts else "completed"
                if task.interrupts:
                    handle.span.set_attribute(semconv.INTERRUPTS, len(task.interrupts))
            elif isinstance(error, Exception):
                outcome = "failed"
            elif isinstance(error, RunStopped) and error.outcome == "abandoned":
                outcome = "abandoned"  # stopped at a write once its consumer left
            else:
                outcome = "cancelled"
            handle.end(outcome, error)
            metrics = self.pipeline.metrics
            if metrics is not None:
                duration = time.monotonic() - handle.started
                metrics.node_ended(task.graph_name, task.name, outcome, duration, error)

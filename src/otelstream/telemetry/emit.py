"""Turning a run into OpenTelemetry: spans for runs and node tasks, a log record per chunk.

:class:`TelemetryObserver` is the engine's :class:`~otelstream.engine.events.RunObserver`.
Each chunk a consumer asked for becomes exactly one log record named ``otelstream.<mode>``
(see :mod:`otelstream.telemetry.semconv`), emitted in the context of the span it belongs
to, so backends correlate it with the trace. otelstream's log record processor receives
the same record synchronously inside ``emit()`` and feeds ``stream()`` from it.

Why log records carry the chunks: ``LogRecordProcessor.on_emit`` is the SDK's only
per-record hook (span events reach processors when the span ends), log records are not
subject to the 128-events-per-span limit, and they are exported while the span is still
open. See ``docs/telemetry.md``.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import Logger, LogRecord, SeverityNumber
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from otelstream.engine.events import Outcome, RunInfo, StreamEvent, Task
from otelstream.engine.types import StreamMode
from otelstream.telemetry import messages as _messages
from otelstream.telemetry import semconv
from otelstream.telemetry._safe import handle_internal_errors
from otelstream.telemetry._sdk import clean_record, span_event_limit
from otelstream.telemetry.codec import encode
from otelstream.telemetry.export import DROPS
from otelstream.telemetry.hooks import task_hooks
from otelstream.telemetry.metrics import RunMetrics
from otelstream.telemetry.redact import Redactor

__all__ = ["Pipeline", "SpanHandle", "StreamRecord", "StreamTarget", "TelemetryObserver", "end_span", "span_handle"]


class StreamRecord(LogRecord):
    """A log record that also carries the chunk's Python object for in-process consumers.

    The SDK keeps the record object it is given, so otelstream's processor can hand the
    consumer the very object the node produced, while exporters see only the JSON
    ``otelstream.payload`` attribute. The processor clears the reference once it took it.
    """

    otelstream_payload: Any


@dataclasses.dataclass(slots=True)
class Pipeline:
    """Where telemetry goes: the tracer, and the loggers for sampled and unsampled runs.

    ``export_logger`` belongs to a provider whose processors export (the application's, or
    the one :func:`otelstream.configure` built). ``stream_logger`` belongs to otelstream's
    private provider, whose only processor feeds ``stream()``: runs the application's
    sampler dropped use it, so their streams stay whole while nothing of them is exported.
    """

    tracer: trace.Tracer
    export_logger: Logger
    stream_logger: Logger
    max_payload_bytes: int
    span_event_modes: frozenset[str] = frozenset()
    metrics: RunMetrics | None = None
    redactor: Redactor | None = None
    # False: metadata-only telemetry, no payload leaves the process
    payloads: bool = True
    # message content on LLM/tool spans: True/False, or None to follow the GenAI env variable
    capture_content: bool | None = None
    # False when no exporter reads the records (otelstream's provider with nothing to
    # export to): stream() takes the Python objects, so JSON payloads are not built
    encode_payloads: bool = True


@dataclasses.dataclass(slots=True, eq=False)
class StreamTarget:
    """One consumer of chunks: a ``stream()`` call, with its modes and routing key.

    Attributes:
        run_id: The key otelstream's processor routes records by.
        modes: The stream modes the consumer asked for.
        subgraphs: Whether chunks of nested graphs are wanted.
        depth: Namespace length of the graph the consumer streams (0 for a root run).
        on_lost: Told the sequence number of a chunk whose record could not be emitted.
        mode_order: The modes as the consumer listed them (recorded on the run span).
        tagged: Whether the consumer's chunks are ``(mode, chunk)`` pairs.
    """

    run_id: str
    modes: frozenset[str]
    subgraphs: bool
    depth: int
    on_lost: Callable[[int], None]
    mode_order: tuple[str, ...] = ()
    tagged: bool = False
    counter: Iterator[int] = dataclasses.field(default_factory=itertools.count)
    logger: Logger | None = None
    emitted: int = 0
    final_count: int | None = None
    # ids of the messages this consumer's "messages" stream has seen (LangGraph's dedupe set)
    seen_messages: set[str] = dataclasses.field(default_factory=set)

    def issued(self) -> int:
        """Return how many sequence numbers were handed out; valid once the run is over."""
        if self.final_count is None:
            # itertools.count has no peek: taking the next number ends the numbering
            self.final_count = next(self.counter)
        return self.final_count

    def wants(self, namespace: tuple[str, ...], mode: str) -> bool:
        """Return whether this consumer takes ``mode`` chunks from ``namespace``."""
        if mode not in self.modes:
            return False
        return len(namespace) == self.depth or (self.subgraphs and len(namespace) > self.depth)


@dataclasses.dataclass(slots=True)
class _Handle:
    span: Span
    context: otel_context.Context
    sampled: bool
    # span events recorded so far, and how many the span keeps before evicting the oldest
    events: int = 0
    event_limit: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)


SpanHandle = _Handle
"""A span with the context that makes it current (what runs, tasks and LLM calls record into)."""


def span_handle(span: Span, parent_context: otel_context.Context | None) -> _Handle:
    """Return the handle of ``span``, started under ``parent_context``."""
    return _new_handle(span, parent_context)


def _new_handle(span: Span, parent_context: otel_context.Context | None) -> _Handle:
    return _Handle(
        span=span,
        context=trace.set_span_in_context(span, parent_context),
        sampled=span.get_span_context().trace_flags.sampled and span.is_recording(),
        event_limit=span_event_limit(span),
    )


NO_PAYLOAD: Any = object()
"""What :func:`take_span_event_payload` returns when no chunk object is waiting."""
_span_event_payload = threading.local()


def take_span_event_payload() -> Any:
    """Return (and forget) the chunk object of the span event being added on this thread."""
    payload = getattr(_span_event_payload, "value", NO_PAYLOAD)
    _span_event_payload.value = NO_PAYLOAD
    return payload


def _no_write(_: Any) -> None:
    """The ``custom`` writer when nobody streams ``custom``: a silent no-op."""


class TelemetryObserver:
    """Records one run tree (a run and its subgraph runs) into OpenTelemetry."""

    __slots__ = ("_parent_context", "pipeline", "root_run_id", "targets")

    def __init__(
        self,
        pipeline: Pipeline,
        targets: list[StreamTarget],
        parent_context: otel_context.Context | None,
        root_run_id: str | None = None,
    ) -> None:
        """Observe for ``targets``; root spans start under ``parent_context``."""
        self.pipeline = pipeline
        self.targets = targets
        self._parent_context = parent_context
        # the run whose progress metrics a custom write in any nested graph updates
        self.root_run_id = root_run_id

    def with_target(self, target: StreamTarget | None) -> TelemetryObserver:
        """Return an observer for a nested run that also feeds ``target``."""
        targets = self.targets if target is None else [*self.targets, target]
        return TelemetryObserver(self.pipeline, targets, self._parent_context, self.root_run_id)

    # --- chunks ---------------------------------------------------------------------------

    def wants(self, namespace: tuple[str, ...], mode: StreamMode) -> bool:
        """Return whether any target takes ``mode`` chunks from ``namespace``."""
        return any(t.wants(namespace, mode) for t in self.targets)

    def targets_for(self, namespace: tuple[str, ...], mode: str) -> list[StreamTarget]:
        """Return the targets that take ``mode`` chunks from ``namespace``.

        One LangGraph rule lives here: a ``stream()`` called inside a node that asks for
        ``custom`` keeps those writes to itself; the outer stream does not see them, even
        with ``subgraphs=True``. ``messages`` has no such rule: an outer stream with
        ``subgraphs=True`` sees the tokens an inner ``stream(stream_mode="messages")`` yields.
        """
        targets = [t for t in self.targets if t.wants(namespace, mode)]
        if mode == "custom" and len(targets) > 1:
            innermost = max(self.targets, key=lambda t: t.depth)
            if innermost.depth > 0 and innermost in targets:
                return [innermost]
        return targets

    def emit(
        self,
        event: StreamEvent,
        run: RunInfo,
        task: Task | None,
        targets: list[StreamTarget] | None = None,
        *,
        handle: _Handle | None = None,
        payload_json: str | None = None,
    ) -> None:
        """Emit one log record per target that wants ``event``.

        Args:
            event: The chunk.
            run: The run it belongs to.
            task: The task that produced it, if any.
            targets: The targets to consider (default: :meth:`targets_for` the event).
            handle: The span the record belongs to (default: the task's, else the run's).
            payload_json: The payload already encoded (default: encoded here, once).
        """
        if handle is None:
            handle = task.handle if task is not None and task.handle is not None else run.handle
        if targets is None:
            targets = self.targets_for(event.namespace, event.mode)
        for target in targets:
            if not target.wants(event.namespace, event.mode):
                continue
            seq = next(target.counter)
            with handle_internal_errors("emitting a stream event"):
                if payload_json is None:
                    payload_json = (
                        encode(event.payload, self.pipeline.redactor) if self.pipeline.encode_payloads else ""
                    )
                self._emit_record(target, seq, event, run, handle, payload_json)
                continue
            target.on_lost(seq)

    def _emit_record(
        self,
        target: StreamTarget,
        seq: int,
        event: StreamEvent,
        run: RunInfo,
        handle: _Handle | None,
        payload_json: str,
    ) -> None:
        attributes: dict[str, Any] = {
            semconv.SEQ: seq,
            semconv.RUN_ID: target.run_id,
            # absolute, as LangGraph yields it even to a stream() called inside a node
            semconv.NAMESPACE: "|".join(event.namespace),
            semconv.GRAPH: run.graph_name,
            semconv.NODE: event.node or "",
        }
        limit = self.pipeline.max_payload_bytes
        if not self.pipeline.payloads:
            attributes[semconv.PAYLOAD_OMITTED] = True
        elif not self.pipeline.encode_payloads:
            pass  # nobody but stream() reads the record, and it takes the object
        elif len(payload_json) > limit:
            attributes[semconv.PAYLOAD] = payload_json[:limit]
            attributes[semconv.PAYLOAD_TRUNCATED] = True
            attributes[semconv.PAYLOAD_SIZE] = len(payload_json)
        else:
            attributes[semconv.PAYLOAD] = payload_json
        timestamp = time.time_ns()
        name = semconv.event_name(event.mode)
        if (
            event.mode in self.pipeline.span_event_modes
            and handle is not None
            and handle.sampled
            and handle.events < handle.event_limit
        ):
            # the span-event carrier; past the span's event limit the SDK would evict the
            # oldest events, so the rest of this span's chunks travel as log records
            handle.events += 1
            _span_event_payload.value = event.payload
            try:
                handle.span.add_event(name, attributes, timestamp)
            finally:
                _span_event_payload.value = NO_PAYLOAD
            target.emitted += 1
            return
        record = StreamRecord(
            timestamp=timestamp,
            context=handle.context if handle is not None else None,
            severity_number=SeverityNumber.INFO,
            attributes=attributes,
            event_name=name,
        )
        record.otelstream_payload = event.payload
        logger = target.logger or self.pipeline.export_logger
        # the SDK Logger takes its own ReadWriteLogRecord too (the API type says LogRecord)
        logger.emit(clean_record(logger, record))  # type: ignore[arg-type]
        target.emitted += 1

    def writer_for(self, run: RunInfo, task: Task) -> Callable[[Any], None]:
        """Return the ``custom`` writer for ``task``.

        It emits only if someone streams ``custom``; it always feeds the metrics (custom event
        counts, progress signals), so progress is measured whether or not it is streamed.
        """
        metrics = self.pipeline.metrics
        targets = self.targets_for(run.namespace, "custom")
        if metrics is None and not targets:
            return _no_write
        root_run_id = self.root_run_id or run.run_id

        def write(chunk: Any) -> None:
            if metrics is not None:
                with handle_internal_errors("recording custom metrics"):
                    metrics.custom_written(root_run_id, run.graph_name, task.name, chunk)
            if targets:
                self.emit(StreamEvent(run.namespace, "custom", chunk, task.name), run, task, targets)

        return write

    # --- spans ----------------------------------------------------------------------------

    def run_started(self, run: RunInfo) -> None:
        """Start the run's ``invoke_workflow {graph}`` span and pick each target's logger."""
        with handle_internal_errors("starting a run span"):
            parent = run.parent_task.handle if run.parent_task is not None else None
            parent_context = parent.context if parent is not None else self._parent_context
            attributes: dict[str, Any] = {
                semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_WORKFLOW,
                semconv.GEN_AI_WORKFLOW_NAME: run.graph_name,
                semconv.RUN_ID: run.run_id,
                semconv.NAMESPACE: "|".join(run.namespace),
            }
            thread_id = run.config.get("configurable", {}).get("thread_id")
            if thread_id is not None:
                attributes[semconv.GEN_AI_CONVERSATION_ID] = str(thread_id)
            own = [t for t in self.targets if t.run_id == run.run_id]
            if own:
                attributes[semconv.STREAM_MODES] = list(own[0].mode_order)
                attributes[semconv.MODES_TAGGED] = own[0].tagged
                attributes[semconv.SUBGRAPHS] = own[0].subgraphs
            span = self.pipeline.tracer.start_span(
                f"{semconv.OPERATION_INVOKE_WORKFLOW} {run.graph_name}",
                context=parent_context,
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                links=_thread_links(run.previous_trace),
            )
            run.handle = _new_handle(span, parent_context)
            DROPS.open(run.run_id)
            if not run.namespace:
                self.root_run_id = run.run_id
                if self.pipeline.metrics is not None:
                    self.pipeline.metrics.run_started(run.run_id, run.graph_name)
            sampled = run.handle.sampled
            for target in own:
                # a run the application's sampler dropped still streams, through the
                # private provider that exports nothing
                target.logger = self.pipeline.export_logger if sampled else self.pipeline.stream_logger

    def trace_reference(self, run: RunInfo) -> dict[str, str] | None:
        """Return the run span's trace and span ids (hex), kept in the checkpoints it writes."""
        handle: _Handle | None = run.handle
        if handle is None:
            return None
        context = handle.span.get_span_context()
        if not context.is_valid:
            return None
        return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}

    def run_ended(self, run: RunInfo, outcome: Outcome, error: BaseException | None) -> None:
        """End the run's span with ``otelstream.outcome``; ERROR status only on failure."""
        handle: _Handle | None = run.handle
        if handle is None:
            return
        if not run.namespace:
            # an LLM call its code never finished must not outlive the run (nor stay registered)
            self.run_stopping(run, outcome)
        with handle_internal_errors("ending a run span"):
            dropped = DROPS.take(run.run_id)
            self._emit_run_end(run, outcome, handle, dropped)
            if dropped:
                handle.span.set_attribute(semconv.DROPPED, sum(dropped.values()))
                for mode, count in dropped.items():
                    handle.span.set_attribute(f"{semconv.DROPPED}.{mode}", count)
            end_span(handle.span, outcome, error)
            if not run.namespace and self.pipeline.metrics is not None:
                duration = time.monotonic() - handle.started
                self.pipeline.metrics.run_ended(run.run_id, run.graph_name, outcome, duration)

    def _emit_run_end(self, run: RunInfo, outcome: Outcome, handle: _Handle, dropped: dict[str, int]) -> None:
        for target in self.targets:
            if target.run_id != run.run_id:
                continue
            attributes: dict[str, Any] = {
                semconv.RUN_ID: target.run_id,
                semconv.GRAPH: run.graph_name,
                semconv.OUTCOME: outcome,
                semconv.EVENT_COUNT: target.issued(),
                semconv.STREAM_MODES: list(target.mode_order),
                semconv.MODES_TAGGED: target.tagged,
                semconv.SUBGRAPHS: target.subgraphs,
                semconv.DROPPED: sum(dropped.values()),
                **{f"{semconv.DROPPED}.{mode}": count for mode, count in dropped.items()},
            }
            thread_id = run.config.get("configurable", {}).get("thread_id")
            if thread_id is not None:
                attributes[semconv.GEN_AI_CONVERSATION_ID] = str(thread_id)
            if self.pipeline.span_event_modes and handle.sampled:
                # a trace-only backend gets the end record with the chunks it carries
                handle.span.add_event(semconv.RUN_END_EVENT, attributes)
                continue
            record = LogRecord(
                timestamp=time.time_ns(),
                context=handle.context,
                severity_number=SeverityNumber.INFO,
                attributes=attributes,
                event_name=semconv.RUN_END_EVENT,
            )
            (target.logger or self.pipeline.export_logger).emit(record)

    @contextmanager
    def task_scope(self, task: Task, run: RunInfo) -> Iterator[None]:
        """Make the task's ``invoke_node {node}`` span current while its node code runs."""
        token = None
        with handle_internal_errors("starting a node span"):
            if task.handle is None:
                parent: _Handle | None = run.handle
                parent_context = parent.context if parent is not None else self._parent_context
                span = self.pipeline.tracer.start_span(
                    f"{semconv.OPERATION_INVOKE_NODE} {task.name}",
                    context=parent_context,
                    kind=SpanKind.INTERNAL,
                    attributes={
                        semconv.GRAPH: task.graph_name,
                        semconv.NODE: task.name,
                        semconv.STEP: task.step,
                        semconv.TASK_ID: task.id,
                        semconv.NAMESPACE: task.checkpoint_ns,
                    },
                )
                task.handle = _new_handle(span, parent_context)
            token = otel_context.attach(task.handle.context)
        try:
            with ExitStack() as hooks:
                with handle_internal_errors("preparing a node's integrations"):
                    targets = self.targets_for(run.namespace, "messages")
                    if targets:
                        # echoed history is never re-emitted: LangGraph seeds at node start
                        _messages.seed_input(targets, task.input)
                    for hook in task_hooks():
                        scope = hook(task, run, self)
                        if scope is not None:
                            hooks.enter_context(scope)
                yield
        finally:
            if token is not None:
                otel_context.detach(token)

    def node_returned(self, task: Task, run: RunInfo, result: Any) -> None:
        """Emit the messages the node returned (``messages`` mode), before its update."""
        with handle_internal_errors("emitting a node's messages"):
            _messages.emit_node_output(self, run, task, result)

    def run_stopping(self, run: RunInfo, outcome: Outcome) -> None:
        """End the LLM calls still open in the run tree with ``outcome``.

        Called when the consumer stops reading (``abandoned``/``cancelled``), before node
        threads are waited for, and when the root run ends.
        """
        with handle_internal_errors("ending a stopped run's LLM calls"):
            from otelstream.telemetry.llm import stop_calls

            stop_calls(self.root_run_id or run.run_id, outcome)

    def task_ended(self, task: Task, error: BaseException | None) -> None:
        """End the task's span; a node's exception is recorded on it."""
        handle: _Handle | None = task.handle
        if handle is None:
            return
        with handle_internal_errors("ending a node span"):
            if error is None:
                outcome: Outcome = "interrupted" if task.interrupts else "completed"
                if task.interrupts:
                    handle.span.set_attribute(semconv.INTERRUPTS, len(task.interrupts))
            elif isinstance(error, Exception):
                outcome = "failed"
            else:
                outcome = "cancelled"
            end_span(handle.span, outcome, error)
            if self.pipeline.metrics is not None:
                duration = time.monotonic() - handle.started
                self.pipeline.metrics.node_ended(task.graph_name, task.name, outcome, duration, error)


def _thread_links(previous: dict[str, str] | None) -> list[Link] | None:
    # a run continuing a thread (a resume after an interrupt, or new input) links to the run
    # that wrote the checkpoint it starts from: a trace view can follow the whole thread
    if not previous:
        return None
    try:
        context = SpanContext(
            trace_id=int(previous["trace_id"], 16),
            span_id=int(previous["span_id"], 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    except (KeyError, TypeError, ValueError):
        return None  # a checkpoint written by another tool: no link rather than a failure
    return [Link(context, {semconv.LINK_REASON: semconv.LINK_CONTINUES_THREAD})]


def end_span(span: Span, outcome: Outcome, error: BaseException | None) -> None:
    """End ``span`` with ``otelstream.outcome``; a failure records the exception and ERROR status."""
    span.set_attribute(semconv.OUTCOME, outcome)
    if outcome == "failed" and error is not None:
        span.record_exception(error)
        span.set_attribute(semconv.ERROR_TYPE, type(error).__qualname__)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()

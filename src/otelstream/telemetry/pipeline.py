"""The telemetry pipeline: where records go, who consumes them, spans and their one lifecycle.

This is the API both producers of stream chunks share — otelstream's engine (through
:class:`~otelstream.telemetry.observer.TelemetryObserver`) and any integration that feeds
another engine's chunks into the same contract: nothing here knows the engine's types.

- :class:`Pipeline`: the tracer and loggers a run emits through, with the payload settings.
- :class:`StreamTarget`: one consumer of chunks (a ``stream()`` call) and its routing key.
- :class:`Streams`: the targets of one run tree; :meth:`Streams.emit` turns one chunk into
  one ``otelstream.<mode>`` record per target that wants it (see ``docs/telemetry.md``).
- :class:`SpanHandle`: a span with the context that makes it current; every span otelstream
  makes (run, node, LLM call, tool call) is started with :func:`start_span` and ended once
  with :meth:`SpanHandle.end`.

Why log records carry the chunks: ``LogRecordProcessor.on_emit`` is the SDK's only
per-record hook (span events reach processors when the span ends), log records are not
subject to the 128-events-per-span limit, and they are exported while the span is still
open. Span events are the optional second carrier, per mode.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import Logger, LogRecord, SeverityNumber
from opentelemetry.trace import Link, Span, SpanKind

from otelstream.engine.events import Outcome
from otelstream.telemetry import semconv
from otelstream.telemetry._safe import handle_internal_errors
from otelstream.telemetry._sdk import clean_record, span_event_limit
from otelstream.telemetry.codec import encode
from otelstream.telemetry.failure import record_failure
from otelstream.telemetry.metrics import RunMetrics
from otelstream.telemetry.redact import Redactor

__all__ = [
    "NO_PAYLOAD",
    "DirectSink",
    "Pipeline",
    "SpanHandle",
    "StreamRecord",
    "StreamTarget",
    "Streams",
    "emit_run_end",
    "end_span",
    "start_span",
    "take_span_event_payload",
]


class StreamRecord(LogRecord):
    """A log record that also carries the chunk's Python object for in-process consumers.

    The SDK keeps the record object it is given, so otelstream's processor can hand the
    consumer the very object the node produced, while exporters see only the JSON
    ``otelstream.payload`` attribute. The processor clears the reference once it took it.
    """

    otelstream_payload: Any


@dataclasses.dataclass(frozen=True, slots=True)
class DirectSink:
    """The processors of one of otelstream's own logger providers, fed without the SDK ``Logger``.

    Used only for a provider all of whose processors are otelstream's: the live stream and
    its export queues. ``Logger.emit`` would make the same calls through more layers;
    the record still goes to the live consumer first, then to the exporters (an SDK
    record, built only when there is an exporter). An application's provider, or one with
    processors the application added, always goes through ``Logger.emit``.

    Attributes:
        deliver: Hands ``(record name, attributes, chunk)`` to the run's channel.
        exporters: The provider's export processors, in order.
        logger: The provider's logger (its resource, scope and limits make the SDK record).
    """

    deliver: Callable[[str, dict[str, Any], Any], None]
    exporters: tuple[Any, ...]
    logger: Logger


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
    # how records of ``export_logger`` / ``stream_logger`` reach their processors when both
    # are otelstream's own (None: through Logger.emit)
    direct_export: DirectSink | None = None
    direct_stream: DirectSink | None = None


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


@dataclasses.dataclass(slots=True, eq=False)
class SpanHandle:
    """A span with the context that makes it current: what runs, tasks and LLM calls record into.

    Attributes:
        span: The span.
        context: The context with the span current (chunks are emitted in it).
        sampled: Whether the span is exported (recording and sampled).
        events: Span events recorded so far (the span-event carrier).
        event_limit: How many events the span keeps before the SDK evicts the oldest.
        started: ``time.monotonic()`` at start, for duration metrics.
    """

    span: Span
    context: otel_context.Context
    sampled: bool
    events: int = 0
    event_limit: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)
    ended: bool = False
    redactor: Redactor | None = None
    payloads: bool = True

    def end(self, outcome: Outcome, error: BaseException | None = None) -> bool:
        """End the span once, with ``otelstream.outcome``; return False if it had ended already.

        A failure records ``error`` on the span (exception event, ``error.type``, ERROR status),
        its text redacted by the redactor of the pipeline the span was started in.
        """
        if self.ended:
            return False
        self.ended = True
        end_span(self.span, outcome, error, self.redactor, with_text=self.payloads)
        return True


def start_span(
    pipeline: Pipeline,
    name: str,
    parent_context: otel_context.Context | None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
    links: Sequence[Link] | None = None,
) -> SpanHandle:
    """Start a span in ``pipeline`` under ``parent_context`` (not made current: callers attach ``handle.context``)."""
    span = pipeline.tracer.start_span(name, context=parent_context, kind=kind, attributes=attributes, links=links)
    return SpanHandle(
        span=span,
        context=trace.set_span_in_context(span, parent_context),
        sampled=span.get_span_context().trace_flags.sampled and span.is_recording(),
        event_limit=span_event_limit(span),
        redactor=pipeline.redactor,
        payloads=pipeline.payloads,
    )


def end_span(
    span: Span, outcome: Outcome, error: BaseException | None, redactor: Redactor | None, *, with_text: bool = True
) -> None:
    """End ``span`` with ``otelstream.outcome``; a failure records the redacted exception and ERROR status.

    ``with_text=False`` (metadata-only telemetry) records the exception's type without its text.
    """
    span.set_attribute(semconv.OUTCOME, outcome)
    if outcome == "failed" and error is not None:
        record_failure(span, error, redactor, with_text=with_text)
    span.end()


NO_PAYLOAD: Any = object()
"""What :func:`take_span_event_payload` returns when no chunk object is waiting."""
_span_event_payload = threading.local()


def take_span_event_payload() -> Any:
    """Return (and forget) the chunk object of the span event being added on this thread."""
    payload = getattr(_span_event_payload, "value", NO_PAYLOAD)
    _span_event_payload.value = NO_PAYLOAD
    return payload


class Streams:
    """The consumers of one run tree (a run and its subgraph runs) and how chunks reach them.

    Attributes:
        pipeline: Where the records go.
        targets: The consumers: the root ``stream()`` and any ``stream()`` called inside a node.
        root_run_id: The root run, whose progress metrics every nested custom write updates.
    """

    __slots__ = ("pipeline", "root_run_id", "targets")

    def __init__(self, pipeline: Pipeline, targets: list[StreamTarget], root_run_id: str | None = None) -> None:
        """Feed ``targets`` through ``pipeline``."""
        self.pipeline = pipeline
        self.targets = targets
        self.root_run_id = root_run_id

    def with_target(self, target: StreamTarget | None) -> Streams:
        """Return the streams of a nested run that also feeds ``target``."""
        targets = self.targets if target is None else [*self.targets, target]
        return Streams(self.pipeline, targets, self.root_run_id)

    def wants(self, namespace: tuple[str, ...], mode: str) -> bool:
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
        namespace: tuple[str, ...],
        mode: str,
        payload: Any,
        *,
        graph: str,
        node: str | None,
        handle: SpanHandle | None,
        targets: Sequence[StreamTarget] | None = None,
        payload_json: str | None = None,
    ) -> None:
        """Emit one chunk as one record per target that wants it; a record that fails is counted lost.

        Args:
            namespace: The graph the chunk comes from (``()`` for the root).
            mode: The stream mode.
            payload: The chunk, exactly as the consumer receives it.
            graph: The name of the graph that produced it.
            node: The node that produced it, if one did.
            handle: The span the record belongs to (its context is the record's).
            targets: The targets to consider (default: :meth:`targets_for` the chunk).
            payload_json: The payload already encoded (default: encoded here, once).
        """
        if targets is None:
            targets = self.targets_for(namespace, mode)
        pipeline = self.pipeline
        for target in targets:
            if not target.wants(namespace, mode):
                continue
            seq = next(target.counter)
            with handle_internal_errors("emitting a stream event"):
                if payload_json is None:
                    payload_json = encode(payload, pipeline.redactor) if pipeline.encode_payloads else ""
                _emit_record(pipeline, target, seq, namespace, mode, payload, graph, node, handle, payload_json)
                continue
            target.on_lost(seq)


def _payload_attributes(pipeline: Pipeline, attributes: dict[str, Any], payload_json: str) -> None:
    limit = pipeline.max_payload_bytes
    if not pipeline.payloads:
        attributes[semconv.PAYLOAD_OMITTED] = True
    elif not pipeline.encode_payloads:
        pass  # nobody but stream() reads the record, and it takes the object
    elif len(payload_json) > limit:
        attributes[semconv.PAYLOAD] = payload_json[:limit]
        attributes[semconv.PAYLOAD_TRUNCATED] = True
        attributes[semconv.PAYLOAD_SIZE] = len(payload_json)
    else:
        attributes[semconv.PAYLOAD] = payload_json


def _emit_record(
    pipeline: Pipeline,
    target: StreamTarget,
    seq: int,
    namespace: tuple[str, ...],
    mode: str,
    payload: Any,
    graph: str,
    node: str | None,
    handle: SpanHandle | None,
    payload_json: str,
) -> None:
    attributes: dict[str, Any] = {
        semconv.SEQ: seq,
        semconv.RUN_ID: target.run_id,
        # absolute, as LangGraph yields it even to a stream() called inside a node
        semconv.NAMESPACE: "|".join(namespace),
        semconv.GRAPH: graph,
        semconv.NODE: node or "",
    }
    _payload_attributes(pipeline, attributes, payload_json)
    timestamp = time.time_ns()
    name = semconv.event_name(mode)
    if (
        mode in pipeline.span_event_modes
        and handle is not None
        and handle.sampled
        and handle.events < handle.event_limit
    ):
        # the span-event carrier; past the span's event limit the SDK would evict the
        # oldest events, so the rest of this span's chunks travel as log records
        handle.events += 1
        _span_event_payload.value = payload
        try:
            handle.span.add_event(name, attributes, timestamp)
        finally:
            _span_event_payload.value = NO_PAYLOAD
        target.emitted += 1
        return
    logger = target.logger or pipeline.export_logger
    sink = pipeline.direct_stream if logger is pipeline.stream_logger else pipeline.direct_export
    context = handle.context if handle is not None else None
    if sink is not None:
        sink.deliver(name, attributes, payload)  # the live consumer first, as the processor order says
        if sink.exporters:
            exported = clean_record(
                sink.logger,
                LogRecord(
                    timestamp=timestamp,
                    context=context,
                    severity_number=SeverityNumber.INFO,
                    attributes=attributes,
                    event_name=name,
                ),
            )
            for processor in sink.exporters:
                processor.on_emit(exported)
        target.emitted += 1
        return
    record = StreamRecord(
        timestamp=timestamp,
        context=context,
        severity_number=SeverityNumber.INFO,
        attributes=attributes,
        event_name=name,
    )
    record.otelstream_payload = payload
    # the SDK Logger takes its own ReadWriteLogRecord too (the API type says LogRecord)
    logger.emit(clean_record(logger, record))  # type: ignore[arg-type]
    target.emitted += 1


def emit_run_end(pipeline: Pipeline, target: StreamTarget, handle: SpanHandle, attributes: dict[str, Any]) -> None:
    """Emit ``target``'s end-of-run record (``otelstream.run.end``) in the run span's context.

    A trace-only carrier (span-event modes set, span exported) gets it as a span event, with
    the chunks it carries.
    """
    if pipeline.span_event_modes and handle.sampled:
        handle.span.add_event(semconv.RUN_END_EVENT, attributes)
        return
    record = LogRecord(
        timestamp=time.time_ns(),
        context=handle.context,
        severity_number=SeverityNumber.INFO,
        attributes=attributes,
        event_name=semconv.RUN_END_EVENT,
    )
    (target.logger or pipeline.export_logger).emit(record)

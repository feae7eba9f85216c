"""Run spans and end-of-run records: one copy for every producer of runs.

Both otelstream's engine (through :class:`~otelstream.telemetry.observer.TelemetryObserver`)
and the LangGraph instrumentor record a run the same way: an ``invoke_workflow {graph}``
span with the run's id, namespace, thread and stream shape; drop accounting opened at the
start and reported at the end; one ``otelstream.run.end`` record per consumer; the run
metrics of a root run. Only what identifies the run is passed in, never an engine type.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Link, SpanContext, TraceFlags

from otelstream.engine.events import Outcome
from otelstream.telemetry import semconv
from otelstream.telemetry.export import DROPS
from otelstream.telemetry.pipeline import Pipeline, SpanHandle, StreamTarget, emit_run_end, start_span

__all__ = ["end_run_span", "start_run_span", "thread_links"]


def start_run_span(
    pipeline: Pipeline,
    *,
    graph: str,
    run_id: str,
    namespace: tuple[str, ...],
    thread_id: Any,
    own: Sequence[StreamTarget],
    parent_context: otel_context.Context | None,
    links: Sequence[Link] | None = None,
) -> SpanHandle:
    """Start a run's ``invoke_workflow {graph}`` span and open its drop accounting.

    A root run (empty ``namespace``) is counted as started. Each of ``own`` (the consumers
    streaming this run) gets its logger: the exporting one if the span is sampled, else the
    private one that only feeds ``stream()``.
    """
    attributes: dict[str, Any] = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_WORKFLOW,
        semconv.GEN_AI_WORKFLOW_NAME: graph,
        semconv.RUN_ID: run_id,
        semconv.NAMESPACE: "|".join(namespace),
    }
    if thread_id is not None:
        attributes[semconv.GEN_AI_CONVERSATION_ID] = str(thread_id)
    if own:
        attributes[semconv.STREAM_MODES] = list(own[0].mode_order)
        attributes[semconv.MODES_TAGGED] = own[0].tagged
        attributes[semconv.SUBGRAPHS] = own[0].subgraphs
    handle = start_span(
        pipeline,
        f"{semconv.OPERATION_INVOKE_WORKFLOW} {graph}",
        parent_context,
        attributes=attributes,
        links=links,
    )
    DROPS.open(run_id)
    if not namespace and pipeline.metrics is not None:
        pipeline.metrics.run_started(run_id, graph)
    for target in own:
        # a run the application's sampler dropped still streams, through the private
        # provider that exports nothing
        target.logger = pipeline.export_logger if handle.sampled else pipeline.stream_logger
    return handle


def end_run_span(
    pipeline: Pipeline,
    handle: SpanHandle,
    *,
    graph: str,
    run_id: str,
    namespace: tuple[str, ...],
    thread_id: Any,
    own: Sequence[StreamTarget],
    outcome: Outcome,
    error: BaseException | None,
) -> None:
    """Emit each consumer's ``otelstream.run.end`` record, then end the run span once.

    The run's losses (from the drop ledger) go on the span and the records; a root run's
    metrics record its outcome and duration.
    """
    dropped = DROPS.take(run_id)
    for target in own:
        attributes: dict[str, Any] = {
            semconv.RUN_ID: target.run_id,
            semconv.GRAPH: graph,
            semconv.OUTCOME: outcome,
            semconv.EVENT_COUNT: target.issued(),
            semconv.STREAM_MODES: list(target.mode_order),
            semconv.MODES_TAGGED: target.tagged,
            semconv.SUBGRAPHS: target.subgraphs,
            semconv.DROPPED: sum(dropped.values()),
            **{f"{semconv.DROPPED}.{mode}": count for mode, count in dropped.items()},
        }
        if thread_id is not None:
            attributes[semconv.GEN_AI_CONVERSATION_ID] = str(thread_id)
        emit_run_end(pipeline, target, handle, attributes)
    if dropped:
        handle.span.set_attribute(semconv.DROPPED, sum(dropped.values()))
        for mode, count in dropped.items():
            handle.span.set_attribute(f"{semconv.DROPPED}.{mode}", count)
    handle.end(outcome, error)
    if not namespace and pipeline.metrics is not None:
        pipeline.metrics.run_ended(run_id, graph, outcome, time.monotonic() - handle.started)


def thread_links(previous: dict[str, str] | None) -> list[Link] | None:
    """Return the link from a run continuing a thread to the run span given as hex ids.

    A resume after an interrupt, or new input on a thread, links to the run that wrote
    the checkpoint it starts from, so a trace view can follow the whole thread.
    """
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

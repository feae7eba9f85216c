"""One instrumented top-level LangGraph run: its consumer, channel, run span and records.

The wrapped ``stream()`` hands every chunk LangGraph yields to :meth:`LangGraphRun.deliver`
on the consumer's thread. It emits the chunk's one ``otelstream.<mode>`` record through
:meth:`Streams.emit <otelstream.telemetry.pipeline.Streams.emit>`; otelstream's processor
routes the record, synchronously, into this run's :class:`~otelstream.consumer.channel.RunChannel`;
the application gets what the channel received, reshaped as LangGraph would have. Emitting
on the consumer's thread keeps ``otelstream.seq`` in the order the application sees, with
no lock on LangGraph's side.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections import OrderedDict
from typing import Any

from opentelemetry import context as otel_context

from otelstream._config import router
from otelstream.consumer.channel import Chunk, RunChannel
from otelstream.engine.events import Outcome
from otelstream.integrations.langgraph._request import INTERRUPT, Request, record_payload
from otelstream.telemetry._safe import handle_internal_errors, reraise_internal_errors
from otelstream.telemetry.pipeline import Pipeline, SpanHandle, Streams, StreamTarget
from otelstream.telemetry.runs import end_run_span, start_run_span, thread_links

__all__ = ["LangGraphRun", "current_run"]

logger = logging.getLogger("otelstream")

_RUN_KEY = otel_context.create_key("otelstream.langgraph.run")

# the last run span of each thread id seen in this process: the next run on the thread links
# to it (LangGraph's checkpoints cannot carry the reference without changing what nodes see)
_THREAD_SPANS: OrderedDict[str, dict[str, str]] = OrderedDict()
_THREAD_SPANS_MAX = 4096
_THREAD_SPANS_LOCK = threading.Lock()


# reusable guards (stateless): one less object per chunk on the consumer's hot path
_EXPORTING = handle_internal_errors("exporting a LangGraph chunk")


def current_run() -> LangGraphRun | None:
    """Return the instrumented run whose graph code is running here (node threads included)."""
    run = otel_context.get_value(_RUN_KEY)
    return run if isinstance(run, LangGraphRun) else None


def _no_notify() -> None:
    """The consumer drains right after each record it emits: nobody needs waking."""


def _task_id_of(checkpoint_ns: Any) -> str | None:
    # "<parent ns>|<node>:<task id>": the task id is the last segment's suffix
    if not isinstance(checkpoint_ns, str) or ":" not in checkpoint_ns:
        return None
    return checkpoint_ns.rsplit("|", 1)[-1].rsplit(":", 1)[-1]


class LangGraphRun:
    """The telemetry of one top-level ``stream()``/``astream()`` call (``invoke`` included).

    Thread-safety: :meth:`deliver` runs on the consumer's thread; :meth:`task_started`,
    :meth:`nested_call` and :meth:`emit_progress` on node threads.
    """

    __slots__ = (
        "_lost_logged",
        "channel",
        "context",
        "custom_origin",
        "graph",
        "graphs",
        "handle",
        "interrupted",
        "llm_handler",
        "lock",
        "own_custom",
        "pipeline",
        "emitter",
        "request",
        "run_id",
        "streams",
        "target",
        "tasks",
        "tasks_by_node",
        "thread_id",
    )

    def __init__(
        self,
        pipeline: Pipeline,
        request: Request | None,
        *,
        graph: str,
        run_id: Any,
        thread_id: Any,
        parent_context: otel_context.Context | None,
    ) -> None:
        """Open the run's channel and start its span under ``parent_context``.

        Args:
            pipeline: Where the telemetry goes.
            request: The call's modes and shape; None for a call passed through unchanged
                (its run and task spans are still recorded, its chunks are not).
            graph: The graph's name.
            run_id: The application's ``config["run_id"]``, if it gave one.
            thread_id: The checkpointer thread, if any.
            parent_context: The context the call was made in.
        """
        given = str(run_id) if run_id is not None else None
        # ids must be unique among runs streaming at once: a clash gets a fresh id rather
        # than an error LangGraph would not raise
        self.run_id = given if given is not None and router().get(given) is None else str(uuid.uuid4())
        self.pipeline = pipeline
        self.request = request
        self.graph = graph
        self.thread_id = thread_id
        self.lock = threading.Lock()
        self.interrupted = False
        self.graphs: dict[str, str] = {}
        self.own_custom: set[str] = set()
        self.tasks: dict[str, SpanHandle] = {}
        self.tasks_by_node: dict[tuple[str, str], tuple[Any, SpanHandle | None]] = {}
        self.custom_origin: dict[int, tuple[Any, str, SpanHandle | None]] = {}
        self.llm_handler: Any = None
        self._lost_logged = False
        self.channel: RunChannel | None = None
        self.target: StreamTarget | None = None
        self.emitter: StreamTarget | None = None
        own: list[StreamTarget] = []
        if request is not None:
            # the consumer never waits on this channel, and no producer should wait for it:
            # LangGraph's own queue is unbounded, so this one is too
            self.channel = RunChannel(self.run_id, _no_notify, capacity=sys.maxsize)
            self.target = StreamTarget(
                run_id=self.run_id,
                modes=frozenset(request.inner_modes),
                subgraphs=request.subgraphs,
                depth=0,
                on_lost=self.channel.lost,
                mode_order=request.modes,
                tagged=request.tagged,
            )
            # what records are emitted for: every chunk the inner call yields (a functional-API
            # task's custom write has a namespace even without subgraphs=True) and progress
            # signals LangGraph does not carry to this stream; same run, same numbering
            self.emitter = StreamTarget(
                run_id=self.run_id,
                modes=frozenset((*request.inner_modes, "custom")),
                subgraphs=True,
                depth=0,
                on_lost=self.channel.lost,
                counter=self.target.counter,
            )
            own.append(self.target)
            router().open(self.channel)
        self.streams = Streams(pipeline, own, root_run_id=self.run_id)
        previous = None
        if thread_id is not None:
            with _THREAD_SPANS_LOCK:
                previous = _THREAD_SPANS.get(str(thread_id))
        try:
            self.handle = start_run_span(
                pipeline,
                graph=graph,
                run_id=self.run_id,
                namespace=(),
                thread_id=thread_id,
                own=own,
                parent_context=parent_context,
                links=thread_links(previous),
            )
        except BaseException:
            router().close(self.run_id)
            raise
        if self.emitter is not None and self.target is not None:
            self.emitter.logger = self.target.logger
        self.context = otel_context.set_value(_RUN_KEY, self, self.handle.context)

    # --- the consumer's side ----------------------------------------------------------------

    def deliver(self, item: Any) -> list[Any]:
        """Export one chunk of the inner call; return what the application gets for it (0 or 1 chunks)."""
        request = self.request
        if request is None:
            return [item]
        namespace, mode, payload, interrupts = request.split(item)
        if interrupts or (mode in ("updates", "values") and isinstance(payload, dict) and INTERRUPT in payload):
            self.interrupted = True
        received: Chunk | None = None
        with _EXPORTING:
            record = record_payload(request, mode, payload, interrupts)
            node, handle = self._origin(namespace, mode, payload)
            if mode in self.pipeline.span_event_modes and not handle.span.is_recording():
                # the span-event carrier: a node span that has ended takes no event, and chunks
                # are consumed after their node ends; the run span is open until the run ends
                handle = self.handle
            channel = self.channel
            assert channel is not None and self.emitter is not None
            with self.lock:
                self.streams.emit(
                    namespace,
                    mode,
                    record,
                    graph=self.graph_of(namespace),
                    node=node,
                    handle=handle,
                    targets=(self.emitter,),
                )
                drained = channel.drain()
            # what else the channel held are progress records the application does not get
            for chunk in drained:
                if chunk.payload is record and chunk.mode == mode:
                    received = chunk
                    break
        if not request.wants(mode):
            return []
        if received is None:
            # the record never reached the channel: the application still gets its chunk
            if reraise_internal_errors():
                raise RuntimeError(f"a {mode} chunk of run {self.run_id} did not come back through the pipeline")
            self._log_lost()
            if request.v2:
                return [item]
            received = Chunk(namespace, mode, payload)
        out = request.formatter(received)
        if request.v2 and mode == "values" and interrupts and not isinstance(payload, dict):
            out["interrupts"] = interrupts  # an output model cannot carry them in the record
        return [out]

    def _log_lost(self) -> None:
        if not self._lost_logged:
            self._lost_logged = True
            logger.warning(
                "otelstream: a chunk of LangGraph run %s did not come back through the telemetry "
                "pipeline; the application gets it directly (telemetry has a gap)",
                self.run_id,
            )

    def _origin(self, namespace: tuple[str, ...], mode: str, payload: Any) -> tuple[str | None, SpanHandle]:
        # the node that produced a chunk, and the span its record belongs to (else the run's)
        node: str | None = None
        handle: SpanHandle | None = None
        if mode == "updates" and isinstance(payload, dict) and len(payload) == 1:
            name = next(iter(payload))
            if name != INTERRUPT:
                node = str(name)
                step_handle = self.tasks_by_node.get(("|".join(namespace), node))
                handle = step_handle[1] if step_handle is not None else None
        elif mode == "messages" and isinstance(payload, tuple) and len(payload) == 2 and isinstance(payload[1], dict):
            metadata = payload[1]
            node = metadata.get("langgraph_node")
            task_id = _task_id_of(metadata.get("langgraph_checkpoint_ns"))
            handle = self.tasks.get(task_id) if task_id is not None else None
        elif mode == "tasks" and isinstance(payload, dict):
            node = payload.get("name")
            handle = self.tasks.get(str(payload.get("id")))
        elif mode == "custom":
            origin = self.custom_origin.pop(id(payload), None)
            if origin is not None and origin[0] is payload:
                node, handle = origin[1], origin[2]
        return (node if isinstance(node, str) else None), handle or self.handle

    def graph_of(self, namespace: tuple[str, ...]) -> str:
        """Return the name of the graph that runs at ``namespace`` (the root's if unknown)."""
        graphs = self.graphs
        for end in range(len(namespace), 0, -1):
            name = graphs.get("|".join(namespace[:end]))
            if name is not None:
                return name
        return self.graph

    def end(self, outcome: Outcome, error: BaseException | None) -> None:
        """End the run: its run-end record and span, with ``outcome`` (``interrupted`` if it paused)."""
        if outcome == "completed" and self.interrupted:
            outcome = "interrupted"
        try:
            with handle_internal_errors("ending a LangGraph run"):
                if self.channel is not None and self.target is not None:
                    # counts (and reports once) records that never reached the channel
                    self.channel.drain_all(self.target.issued())
                end_run_span(
                    self.pipeline,
                    self.handle,
                    graph=self.graph,
                    run_id=self.run_id,
                    namespace=(),
                    thread_id=self.thread_id,
                    own=self.streams.targets,
                    outcome=outcome,
                    error=error,
                )
                self._remember_thread()
        finally:
            if self.channel is not None:
                router().close(self.run_id)
            self.custom_origin.clear()
            self.tasks.clear()
            self.tasks_by_node.clear()

    def _remember_thread(self) -> None:
        if self.thread_id is None:
            return
        context = self.handle.span.get_span_context()
        if not context.is_valid:
            return
        with _THREAD_SPANS_LOCK:
            key = str(self.thread_id)
            _THREAD_SPANS[key] = {
                "trace_id": format(context.trace_id, "032x"),
                "span_id": format(context.span_id, "016x"),
            }
            _THREAD_SPANS.move_to_end(key)
            while len(_THREAD_SPANS) > _THREAD_SPANS_MAX:
                _THREAD_SPANS.popitem(last=False)

    # --- the node threads' side -------------------------------------------------------------

    def nested_call(self, checkpoint_ns: Any, graph: str, stream_mode: Any) -> None:
        """Note a graph streamed inside a node: its name, and whether it keeps ``custom`` to itself."""
        if not isinstance(checkpoint_ns, str) or not checkpoint_ns:
            return
        self.graphs.setdefault(checkpoint_ns, graph)
        modes = (stream_mode,) if isinstance(stream_mode, str) else stream_mode
        if isinstance(modes, (list, tuple)) and "custom" in modes:
            # that call's custom writes go to its own queue only, never to this stream
            self.own_custom.add(checkpoint_ns)

    def task_started(self, task_id: str, namespace: str, node: str, step: Any, handle: SpanHandle | None) -> None:
        """Remember a task's span, so records of its chunks carry it."""
        if handle is not None:
            self.tasks[task_id] = handle
        key = (namespace, node)
        previous = self.tasks_by_node.get(key)
        # two tasks of one node in one step (Send): their updates cannot be told apart
        self.tasks_by_node[key] = (step, None if previous is not None and previous[0] == step else handle)

    def custom_reaches_stream(self, namespace: str) -> bool:
        """Return whether a ``custom`` write in the graph at ``namespace`` reaches this stream."""
        request = self.request
        if request is None or "custom" not in request.inner_modes:
            return False
        if namespace and not request.subgraphs:
            return False  # LangGraph gives such a subgraph a writer that drops everything
        segments = namespace.split("|") if namespace else []
        return not any("|".join(segments[:end]) in self.own_custom for end in range(1, len(segments) + 1))

    def emit_progress(self, namespace: str, chunk: Any, node: str, handle: SpanHandle | None) -> None:
        """Emit a progress signal LangGraph will not bring to this stream, as a ``custom`` record."""
        target = self.emitter
        if target is None:
            return
        ns = tuple(namespace.split("|")) if namespace else ()
        with self.lock:
            self.streams.emit(
                ns,
                "custom",
                chunk,
                graph=self.graph_of(ns),
                node=node,
                handle=handle or self.handle,
                targets=(target,),
            )

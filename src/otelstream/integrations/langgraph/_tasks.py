"""The wrappers of ``langgraph.pregel._runner.run_with_retry`` / ``arun_with_retry``: node task spans.

LangGraph runs every task through these two functions — on the caller's thread (a single
task), on its pool (a thread with a copy of the context made at submit time) or as an
asyncio task — so wrapping them makes a span that is current *while the node's code runs*,
retries included: spans the node's code opens nest under it. They are imported by name into
``_runner``, so that module's names are the ones wrapped.

Around each task of an instrumented run the wrapper also:

* adds the run's :class:`~otelstream.integrations.langgraph._callbacks.SpanHandler` to the
  task's callback manager (``chat`` / ``execute_tool`` spans of LangChain models and tools);
* gives the task a stream writer that counts every ``custom`` write in the metrics and, for a
  progress signal LangGraph would not bring to the instrumented stream (``custom`` not
  streamed, or written in a subgraph the stream does not show), emits its record directly —
  so progress metrics and records exist for ``invoke()``-only applications too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context

from otelstream.engine.events import Outcome
from otelstream.integrations.langgraph._internals import Internals
from otelstream.integrations.langgraph._run import LangGraphRun, current_run
from otelstream.telemetry import semconv
from otelstream.telemetry._safe import handle_internal_errors
from otelstream.telemetry.metrics import is_progress
from otelstream.telemetry.pipeline import SpanHandle, start_span

__all__ = ["langgraph_writer", "make_arun_wrapper", "make_run_wrapper"]

Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]

# set while a writer of ours runs: a subgraph's writer may be its parent task's (LangGraph
# reuses it), and a write is counted once, by the innermost task
_writing = threading.local()


class _TaskScope:
    """One task of an instrumented run: its span, and what its node code is given."""

    __slots__ = ("_graph_ns", "_writer_reaches", "graph", "handle", "internals", "node", "run", "started")

    def __init__(self, internals: Internals, run: LangGraphRun, task: Any) -> None:
        self.internals = internals
        self.run = run
        self.node = str(task.name)
        self.started = time.monotonic()
        config = task.config
        configurable = config.get(internals.conf) or {}
        checkpoint_ns = str(configurable.get(internals.checkpoint_ns_key) or "")
        graph_ns = checkpoint_ns.rsplit(internals.ns_sep, 1)[0] if internals.ns_sep in checkpoint_ns else ""
        step = (config.get("metadata") or {}).get("langgraph_step")
        self.graph = run.graph_of(tuple(graph_ns.split(internals.ns_sep)) if graph_ns else ())
        attributes: dict[str, Any] = {
            semconv.GRAPH: self.graph,
            semconv.NODE: self.node,
            semconv.TASK_ID: str(task.id),
            semconv.NAMESPACE: checkpoint_ns,
        }
        if isinstance(step, int):
            attributes[semconv.STEP] = step
        self.handle: SpanHandle = start_span(
            run.pipeline,
            f"{semconv.OPERATION_INVOKE_NODE} {self.node}",
            otel_context.get_current(),
            attributes=attributes,
        )
        run.task_started(str(task.id), graph_ns, self.node, step, self.handle)
        self._add_handler(config.get("callbacks"))
        self._writer_reaches = run.custom_reaches_stream(graph_ns)
        self._graph_ns = graph_ns

    def _add_handler(self, callbacks: Any) -> None:
        from langchain_core.callbacks import BaseCallbackManager  # noqa: PLC0415 - LangChain is optional

        if not isinstance(callbacks, BaseCallbackManager):
            return  # no manager to join: LangGraph gives every task one
        run = self.run
        if run.llm_handler is None:
            # the handler subclasses LangChain's: imported only once a LangChain callback shows up
            from otelstream.integrations.langgraph._callbacks import SpanHandler  # noqa: PLC0415

            run.llm_handler = SpanHandler(run.pipeline)
        callbacks.add_handler(run.llm_handler, inherit=True)

    def configurable(self, task: Any) -> dict[str, Any] | None:
        """Return the ``configurable`` to run the task with: its runtime with our stream writer."""
        internals = self.internals
        runtime = (task.config.get(internals.conf) or {}).get(internals.runtime_key)
        if not isinstance(runtime, internals.runtime_type):
            return None
        return {internals.runtime_key: runtime.override(stream_writer=self._writer(runtime.stream_writer))}

    def _writer(self, original: Callable[[Any], None]) -> Callable[[Any], None]:
        run, graph, node, handle = self.run, self.graph, self.node, self.handle
        metrics = run.pipeline.metrics
        reaches, graph_ns = self._writer_reaches, self._graph_ns

        def write(chunk: Any) -> None:
            if getattr(_writing, "busy", False):
                return original(chunk)
            _writing.busy = True
            try:
                with handle_internal_errors("recording a LangGraph custom write"):
                    if metrics is not None:
                        metrics.custom_written(run.run_id, graph, node, chunk)
                    if reaches:
                        # the chunk comes back through the stream: its record names this node
                        run.custom_origin[id(chunk)] = (chunk, node, handle)
                    elif is_progress(chunk):
                        run.emit_progress(graph_ns, chunk, node, handle)
                return original(chunk)
            finally:
                _writing.busy = False

        return write

    def end(self, error: BaseException | None) -> None:
        """End the task's span: how the node's code ended decides the outcome."""
        internals = self.internals
        outcome: Outcome
        recorded: BaseException | None = None
        span = self.handle.span
        if error is None:
            outcome = "completed"
        elif isinstance(error, internals.graph_interrupt):
            # a pause for a human, not an error
            outcome = "interrupted"
            interrupts = error.args[0] if error.args else ()
            span.set_attribute(semconv.INTERRUPTS, len(interrupts) if isinstance(interrupts, (list, tuple)) else 1)
        elif isinstance(error, internals.bubble_up):
            outcome = "completed"  # a Command for a parent graph: LangGraph's control flow
        elif isinstance(error, Exception):
            outcome, recorded = "failed", error
        else:
            outcome = "cancelled"
        self.handle.end(outcome, recorded)
        metrics = self.run.pipeline.metrics
        if metrics is not None:
            metrics.node_ended(self.graph, self.node, outcome, time.monotonic() - self.started, recorded)


def langgraph_writer() -> Callable[[Any], None] | None:
    """Return the stream writer of the instrumented LangGraph node running here, if any.

    Registered for :func:`otelstream.write_progress`, which then works in LangGraph nodes.
    """
    if current_run() is None:
        return None
    from langgraph.config import get_stream_writer  # noqa: PLC0415 - LangGraph is imported when instrumented

    try:
        writer: Callable[[Any], None] = get_stream_writer()
    except RuntimeError:
        return None  # graph code outside a node (a routing function's caller, say)
    return writer


def _scope(internals: Internals, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[_TaskScope | None, Any]:
    run = current_run()
    if run is None:
        return None, None
    task = args[0] if args else kwargs.get("task")
    if task is None or internals.hidden_tag in (task.config.get("tags") or ()):
        return None, None  # __start__ and other hidden tasks are LangGraph's bookkeeping
    scope = None
    with handle_internal_errors("starting a LangGraph node span"):
        scope = _TaskScope(internals, run, task)
    return scope, task


def _patched(
    scope: _TaskScope, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], index: int
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    # hand our runtime to LangGraph through the function's own `configurable` argument,
    # merged over what the caller passed (the functional API passes its call hook there)
    extra = None
    with handle_internal_errors("wrapping a LangGraph stream writer"):
        extra = scope.configurable(task)
    if not extra:
        return args, kwargs
    if len(args) > index:
        return (*args[:index], {**(args[index] or {}), **extra}, *args[index + 1 :]), kwargs
    return args, {**kwargs, "configurable": {**(kwargs.get("configurable") or {}), **extra}}


def _end(scope: _TaskScope, error: BaseException | None) -> None:
    with handle_internal_errors("ending a LangGraph node span"):
        scope.end(error)


def make_run_wrapper(internals: Internals) -> Wrapper:
    """Return the wrapt wrapper of ``run_with_retry(task, retry_policy, configurable=None)``."""

    def run_with_retry(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        scope, task = _scope(internals, args, kwargs)
        if scope is None:
            return wrapped(*args, **kwargs)
        args, kwargs = _patched(scope, task, args, kwargs, 2)
        token = otel_context.attach(scope.handle.context)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _end(scope, exc)
            raise
        finally:
            otel_context.detach(token)
        _end(scope, None)
        return result

    return run_with_retry


def make_arun_wrapper(internals: Internals) -> Wrapper:
    """Return the wrapt wrapper of ``arun_with_retry(task, retry_policy, stream=False, configurable=None)``."""

    async def arun_with_retry(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        scope, task = _scope(internals, args, kwargs)
        if scope is None:
            return await wrapped(*args, **kwargs)
        args, kwargs = _patched(scope, task, args, kwargs, 3)
        token = otel_context.attach(scope.handle.context)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _end(scope, exc)
            raise
        finally:
            otel_context.detach(token)
        _end(scope, None)
        return result

    return arun_with_retry

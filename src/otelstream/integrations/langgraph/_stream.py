"""The wrappers of ``Pregel.stream`` / ``Pregel.astream``.

Each returns a generator (an async generator) that does nothing until its first ``next()``,
as LangGraph's own: then it tells a top-level call from a nested one exactly as LangGraph
does (``CONFIG_KEY_TASK_ID`` in the merged config). A nested call — a subgraph, or a graph
invoked in node code — passes through untouched: LangGraph already carries what the parent
stream should see. A top-level call runs LangGraph with the widened modes, exports every
chunk and yields what otelstream's channel received, reshaped to the application's call.

The run span is current only while LangGraph works (around each ``next()`` of the inner
generator), so tasks LangGraph starts inherit it and the application's loop body never runs
in the graph's context. ``close()``/``aclose()`` and ``throw()``/``athrow()`` reach LangGraph
as they would without the wrapper.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from typing import Any

from opentelemetry import context as otel_context

from otelstream.engine.events import Outcome
from otelstream.integrations.langgraph._internals import Internals
from otelstream.integrations.langgraph._pipeline import PipelineSource
from otelstream.integrations.langgraph._request import plan
from otelstream.integrations.langgraph._run import LangGraphRun, current_run
from otelstream.telemetry._safe import handle_internal_errors

__all__ = ["make_astream_wrapper", "make_stream_wrapper"]

# the OpenTelemetry API's key: set by exporters (and tests) to silence instrumentation
_SUPPRESS_KEY = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", "suppress_instrumentation")

Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


def _outcome_of(error: BaseException) -> Outcome:
    if isinstance(error, GeneratorExit):
        return "abandoned"  # the consumer stopped reading: not an error
    if isinstance(error, (asyncio.CancelledError, KeyboardInterrupt)):
        return "cancelled"
    return "failed"


class _Setup:
    """What the first ``next()`` decides about one call."""

    __slots__ = ("inner_kwargs", "run")

    def __init__(self, run: LangGraphRun | None, inner_kwargs: dict[str, Any]) -> None:
        self.run = run
        self.inner_kwargs = inner_kwargs


def _setup(
    internals: Internals,
    source: PipelineSource,
    export: Sequence[str],
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> _Setup:
    """Return the run to record (None: pass the call through) and the inner call's kwargs."""
    passthrough = _Setup(None, kwargs)
    if otel_context.get_value(_SUPPRESS_KEY):
        return passthrough
    with handle_internal_errors("instrumenting a LangGraph stream"):
        config = args[1] if len(args) > 1 else kwargs.get("config")
        merged = internals.ensure_config(instance.config, config)
        configurable = merged.get(internals.conf) or {}
        graph = getattr(instance, "name", None) or type(instance).__name__
        if internals.task_id_key in configurable:
            # nested: LangGraph carries its chunks to the parent stream itself
            parent = current_run()
            if parent is not None:
                parent.nested_call(
                    configurable.get(internals.checkpoint_ns_key),
                    str(graph),
                    kwargs.get("stream_mode") or "values",
                )
            return passthrough
        planned = plan(internals, instance, kwargs, export)
        request, inner_kwargs = planned if planned is not None else (None, kwargs)
        run = LangGraphRun(
            source.resolve(),
            request,
            graph=str(graph),
            run_id=config.get("run_id") if isinstance(config, dict) else None,
            thread_id=configurable.get("thread_id"),
            parent_context=otel_context.get_current(),
        )
        return _Setup(run, inner_kwargs)
    return passthrough


def make_stream_wrapper(internals: Internals, source: PipelineSource, export: Sequence[str]) -> Wrapper:
    """Return the wrapt wrapper of ``Pregel.stream``."""

    def stream(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return _stream(wrapped, instance, args, kwargs)

    def _stream(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Generator[Any, None, Any]:
        setup = _setup(internals, source, export, instance, args, kwargs)
        run = setup.run
        if run is None:
            return (yield from wrapped(*args, **kwargs))
        inner = wrapped(*args, **setup.inner_kwargs)
        outcome: Outcome = "completed"
        error: BaseException | None = None
        thrown: BaseException | None = None
        try:
            while True:
                token = otel_context.attach(run.context)
                try:
                    if thrown is not None:
                        # what the application threw at us, LangGraph gets at its own yield
                        exc, thrown = thrown, None
                        item = inner.throw(exc)
                    else:
                        item = next(inner)
                except StopIteration:
                    break
                finally:
                    otel_context.detach(token)
                for out in run.deliver(item):
                    try:
                        yield out
                    except GeneratorExit:
                        raise
                    except BaseException as exc:
                        thrown = exc
                        break
        except BaseException as exc:
            outcome, error = _outcome_of(exc), exc
            raise
        finally:
            token = otel_context.attach(run.context)
            try:
                # a break: LangGraph stops, waiting for the nodes still running, as without us
                inner.close()
            finally:
                otel_context.detach(token)
                run.end(outcome, None if outcome == "abandoned" else error)

    return stream


def make_astream_wrapper(internals: Internals, source: PipelineSource, export: Sequence[str]) -> Wrapper:
    """Return the wrapt wrapper of ``Pregel.astream``."""

    def astream(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return _astream(wrapped, instance, args, kwargs)

    async def _astream(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        setup = _setup(internals, source, export, instance, args, kwargs)
        run = setup.run
        inner = wrapped(*args, **(setup.inner_kwargs if run is not None else kwargs))
        outcome: Outcome = "completed"
        error: BaseException | None = None
        thrown: BaseException | None = None
        try:
            while True:
                token = otel_context.attach(run.context) if run is not None else None
                try:
                    if thrown is not None:
                        exc, thrown = thrown, None
                        item = await inner.athrow(exc)
                    else:
                        item = await inner.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    if token is not None:
                        otel_context.detach(token)
                for out in run.deliver(item) if run is not None else (item,):
                    try:
                        yield out
                    except GeneratorExit:
                        raise
                    except BaseException as exc:
                        thrown = exc
                        break
        except BaseException as exc:
            outcome, error = _outcome_of(exc), exc
            raise
        finally:
            token = otel_context.attach(run.context) if run is not None else None
            try:
                await inner.aclose()
            finally:
                if token is not None:
                    otel_context.detach(token)
                if run is not None:
                    run.end(outcome, None if outcome == "abandoned" else error)

    return astream

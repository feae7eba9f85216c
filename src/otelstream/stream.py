"""``stream()`` / ``astream()``: run a graph and yield what otelstream's processors receive.

The driver runs the superstep loop on the consumer's thread (nodes on worker threads when
chunks must flow while they run) and, between steps and whenever it is woken, yields the
chunks its run channel holds. It never yields anything the engine produced directly: the
engine reports to the telemetry observer, which emits OpenTelemetry records, which
otelstream's log record processor routes into the channel.

Graphs invoked inside a node (a compiled graph added as a node, or ``child.invoke()`` in
node code) run as subgraphs of the calling task: their chunks reach the root stream when
it asked for ``subgraphs=True``, under the namespace ``"<node>:<task id>"``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

from opentelemetry import context as otel_context

from otelstream._config import current_pipeline, router
from otelstream.consumer.channel import Chunk, RunChannel
from otelstream.consumer.output import make_formatter, normalize_modes
from otelstream.engine.compiled import CompiledStateGraph
from otelstream.engine.drive import adrive, drive
from otelstream.engine.events import Outcome, RunInfo, StopSignal
from otelstream.engine.loop import DEFAULT_RECURSION_LIMIT, RunLoop
from otelstream.engine.runner import AsyncWaker, SyncStepRunner, ThreadWaker
from otelstream.engine.runtime import TaskContext, current_task_context
from otelstream.engine.schema import coerce_to_schema, is_model_schema
from otelstream.errors import GraphInterrupt, InvalidStreamArgumentError
from otelstream.telemetry.observer import TelemetryObserver
from otelstream.telemetry.pipeline import StreamTarget

__all__ = ["Driver"]

logger = logging.getLogger("otelstream")

# chunks that must reach the consumer while a node runs force nodes onto worker threads
_LIVE_MODES = frozenset(("custom", "messages"))


def _normalize_config(graph: CompiledStateGraph, config: dict[str, Any] | None) -> dict[str, Any]:
    if config is not None and not isinstance(config, dict):
        raise InvalidStreamArgumentError(f"config must be a dict, got {type(config).__name__}")
    bound = getattr(graph, "_bound_config", None)
    merged: dict[str, Any] = {**(bound or {}), **(config or {})}
    limit = merged.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidStreamArgumentError(f"recursion_limit must be a positive int, got {limit!r}")
    merged["recursion_limit"] = limit
    run_id = merged.get("run_id")
    if run_id is not None and current_task_context() is None and router().get(str(run_id)) is not None:
        raise InvalidStreamArgumentError(f"run_id {run_id!s} is already streaming: run ids must be unique")
    merged["tags"] = list(merged.get("tags") or [])
    merged["metadata"] = dict(merged.get("metadata") or {})
    merged["configurable"] = dict(merged.get("configurable") or {})
    return merged


@dataclasses.dataclass(frozen=True, slots=True)
class _StreamRequest:
    """A validated ``stream()`` call: what to stream and how to shape it."""

    config: dict[str, Any]
    modes: list[str]
    tagged: bool
    subgraphs: bool
    formatter: Callable[[Chunk], Any]
    interrupt_before: Any = None
    interrupt_after: Any = None


def _prepare(
    graph: CompiledStateGraph, config: Any, stream_mode: Any, subgraphs: bool, version: str, options: dict[str, Any]
) -> _StreamRequest:
    # validated when stream()/astream() is called, before anything runs
    default = "values" if current_task_context() is not None else graph.stream_mode
    return _StreamRequest(
        config=_normalize_config(graph, config),
        modes=normalize_modes(stream_mode, default),
        tagged=isinstance(stream_mode, list),
        subgraphs=bool(subgraphs),
        formatter=make_formatter(stream_mode, subgraphs, version, _values_coercer(graph)),
        interrupt_before=options.get("interrupt_before"),
        interrupt_after=options.get("interrupt_after"),
    )


def _ended(state: _Run) -> Outcome:
    """Return how a run that raised nothing ended; a paused nested run pauses its caller.

    Raises:
        GraphInterrupt: a graph run inside a node paused (LangGraph re-raises it there).
    """
    if not state.loop.interrupted:
        return "completed"
    if state.parent is not None:
        raise GraphInterrupt(tuple(state.loop.interrupts))
    return "interrupted"


def _outcome_of(error: BaseException) -> Outcome:
    if isinstance(error, GeneratorExit):
        return "abandoned"
    if isinstance(error, (asyncio.CancelledError, KeyboardInterrupt)):
        return "cancelled"
    if isinstance(error, GraphInterrupt):
        return "interrupted"
    return "failed"


class _Run:
    """Everything one ``stream()`` call sets up: target, channel, observer, loop."""

    def __init__(
        self,
        graph: CompiledStateGraph,
        config: dict[str, Any],
        request: _StreamRequest | None,
        notify: Callable[[], None] | None,
    ) -> None:
        parent = current_task_context()
        self.parent = parent
        # a root run takes the caller's config["run_id"] (LangGraph's RunnableConfig key), so
        # the application knows which run to replay; nested runs always get their own
        given = config.get("run_id") if parent is None else None
        run_id = str(given) if given is not None else str(uuid.uuid4())
        if parent is None:
            namespace: tuple[str, ...] = ()
            observer = TelemetryObserver.for_root(current_pipeline(), otel_context.get_current())
        else:
            namespace = _child_namespace(parent)
            observer = parent.observer.with_target(None)  # type: ignore[attr-defined]
        self.channel: RunChannel | None = None
        self.target: StreamTarget | None = None
        if request is not None and notify is not None:
            self.channel = RunChannel(run_id, notify)
            target = StreamTarget(
                run_id=run_id,
                modes=frozenset(request.modes),
                subgraphs=request.subgraphs,
                depth=len(namespace),
                on_lost=self.channel.lost,
                mode_order=tuple(request.modes),
                tagged=request.tagged,
            )
            observer = observer.with_target(target)
            self.target = target
            router().open(self.channel)
        self.observer = observer
        self.run = RunInfo(
            run_id=run_id,
            graph_name=graph.name,
            namespace=namespace,
            parent_task=parent.task if parent is not None else None,
            config=config,
            # a nested run stops with the run around it (and with its own consumer, if any)
            stop=StopSignal(parent.run.stop if parent is not None else None),
        )
        # nested runs keep no checkpoints of their own: a resume re-runs them from their start
        breakpoints = request if request is not None and parent is None else None
        try:
            self.loop = self._new_loop(graph, config, observer, parent, breakpoints)
        except BaseException:
            if self.channel is not None:
                router().close(self.channel.run_id)
            raise
        self.live = request is not None and (bool(_LIVE_MODES.intersection(request.modes)) or request.subgraphs)

    def _new_loop(
        self,
        graph: CompiledStateGraph,
        config: dict[str, Any],
        observer: TelemetryObserver,
        parent: TaskContext | None,
        breakpoints: _StreamRequest | None,
    ) -> RunLoop:
        return RunLoop(
            graph.topology,
            self.run,
            observer,
            output_keys=graph.stream_output_keys,
            recursion_limit=config["recursion_limit"],
            checkpointer=graph.checkpointer if parent is None else None,
            interrupt_before=_pick(breakpoints and breakpoints.interrupt_before, graph.interrupt_before),
            interrupt_after=_pick(breakpoints and breakpoints.interrupt_after, graph.interrupt_after),
        )

    def drain_all(self) -> list[Any]:
        """Return every chunk left once the run is over (the loop emits nothing more)."""
        assert self.channel is not None and self.target is not None
        return self.channel.drain_all(self.target.issued())

    def finish(self, outcome: Outcome) -> None:
        """Keep the thread's finished superstep when the consumer stopped reading early."""
        if outcome == "abandoned":
            try:
                self.loop.finish_abandoned_step()
            except Exception:
                # close() must not raise: the thread stays at its previous checkpoint
                logger.warning("otelstream: could not checkpoint the superstep of an abandoned run", exc_info=True)

    def release(self, outcome: Outcome | None = None) -> None:
        """Let producers blocked on a full channel go: the consumer stops reading."""
        if self.channel is not None:
            self.channel.close()
        if outcome in ("abandoned", "cancelled"):
            # before waiting for node threads: they stop at their next stream write, and
            # their LLM calls end now, as abandoned
            self.run.stop.set(outcome)
            self.observer.run_stopping(self.run, outcome)

    def close(self, outcome: Outcome, error: BaseException | None) -> None:
        self.release(outcome)
        self.observer.run_ended(self.run, outcome, error)
        if self.channel is not None:
            router().close(self.channel.run_id)


def _pick(given: Any, compiled: Any) -> Any:
    # breakpoints passed to stream() replace the compiled ones, as in LangGraph
    if given is None:
        return compiled
    return given if given == "*" else [given] if isinstance(given, str) else list(given)


def _child_namespace(parent: TaskContext) -> tuple[str, ...]:
    # a second graph invoked by the same task gets a numbered segment, as in LangGraph
    calls = parent.subgraph_calls
    parent.subgraph_calls += 1
    if calls == 0:
        return parent.task.namespace
    return (*parent.task.namespace, str(calls))


class Driver:
    """The :class:`~otelstream.engine.compiled.StreamDriver` installed on import."""

    def stream(
        self,
        graph: CompiledStateGraph,
        input: Any,
        config: Any,
        *,
        stream_mode: Any = None,
        subgraphs: bool = False,
        version: str = "v1",
        **_langgraph_only: Any,
    ) -> Generator[Any, None, None]:
        """Validate the arguments now, then return the generator that runs the graph.

        Raises:
            InvalidStreamArgumentError: an unknown mode or version, or a malformed config.
        """
        return self._stream(graph, input, _prepare(graph, config, stream_mode, subgraphs, version, _langgraph_only))

    def _stream(self, graph: CompiledStateGraph, input: Any, request: _StreamRequest) -> Generator[Any, None, None]:
        waker = ThreadWaker()
        state = _Run(graph, request.config, request, waker.notify)
        formatter = request.formatter
        channel = state.channel
        assert channel is not None
        loop = state.loop
        runner = SyncStepRunner()
        state.observer.run_started(state.run)
        outcome: Outcome = "completed"
        error: BaseException | None = None
        try:
            try:
                loop.start(input)
                for _ in drive(loop, runner, waker, live=state.live):
                    for chunk in channel.drain():
                        yield formatter(chunk)
            except GeneratorExit:
                raise
            except BaseException:
                # LangGraph delivers everything produced before the error, then raises it
                for chunk in state.drain_all():
                    yield formatter(chunk)
                raise
            for chunk in state.drain_all():
                yield formatter(chunk)
            outcome = _ended(state)
        except BaseException as exc:
            outcome, error = _outcome_of(exc), exc
            raise
        finally:
            state.release(outcome)  # before waiting for node threads that may be blocked on it
            runner.close()
            state.finish(outcome)
            state.close(outcome, error)

    def astream(
        self,
        graph: CompiledStateGraph,
        input: Any,
        config: Any,
        *,
        stream_mode: Any = None,
        subgraphs: bool = False,
        version: str = "v1",
        **_langgraph_only: Any,
    ) -> AsyncGenerator[Any, None]:
        """Async version of :meth:`stream`; the arguments are validated at the call too."""
        return self._astream(graph, input, _prepare(graph, config, stream_mode, subgraphs, version, _langgraph_only))

    async def _astream(
        self, graph: CompiledStateGraph, input: Any, request: _StreamRequest
    ) -> AsyncGenerator[Any, None]:
        waker = AsyncWaker()
        state = _Run(graph, request.config, request, waker.notify)
        formatter = request.formatter
        channel = state.channel
        assert channel is not None
        loop = state.loop
        state.observer.run_started(state.run)
        outcome: Outcome = "completed"
        error: BaseException | None = None
        try:
            try:
                loop.start(input)
                async for _ in adrive(loop, waker):
                    for chunk in channel.drain():
                        yield formatter(chunk)
            except (GeneratorExit, asyncio.CancelledError):
                raise
            except BaseException:
                for chunk in state.drain_all():
                    yield formatter(chunk)
                raise
            for chunk in state.drain_all():
                yield formatter(chunk)
            outcome = _ended(state)
        except BaseException as exc:
            outcome, error = _outcome_of(exc), exc
            raise
        finally:
            state.finish(outcome)
            state.close(outcome, error)

    def invoke_nested(self, graph: CompiledStateGraph, input: Any, config: Any) -> Any:
        """Run ``graph`` as a subgraph of the current task and return its output values."""
        state = _Run(graph, _normalize_config(graph, config), None, None)
        loop = state.loop
        runner = SyncStepRunner()
        state.observer.run_started(state.run)
        try:
            loop.start(input)
            for _ in drive(loop, runner, None, live=False):
                pass
            outcome = _ended(state)
        except BaseException as exc:
            state.close(_outcome_of(exc), exc)
            raise
        finally:
            runner.close()
        state.close(outcome, None)
        return loop.topology.read_values(loop.state.channels, loop.topology.output_keys)

    async def ainvoke_nested(self, graph: CompiledStateGraph, input: Any, config: Any) -> Any:
        """Async version of :meth:`invoke_nested`."""
        state = _Run(graph, _normalize_config(graph, config), None, None)
        loop = state.loop
        state.observer.run_started(state.run)
        try:
            loop.start(input)
            async for _ in adrive(loop, None):
                pass
            outcome = _ended(state)
        except BaseException as exc:
            state.close(_outcome_of(exc), exc)
            raise
        state.close(outcome, None)
        return loop.topology.read_values(loop.state.channels, loop.topology.output_keys)


def _values_coercer(graph: CompiledStateGraph) -> Any:
    schema = graph.topology.output_schema
    if not is_model_schema(schema):
        return None
    return lambda data: coerce_to_schema(schema, data) if isinstance(data, dict) else data

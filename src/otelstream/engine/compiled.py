"""``CompiledStateGraph``: the public run/stream entry points of a compiled graph.

Its wiring is a :class:`~otelstream.engine.topology.Topology`. The streaming entry points
delegate to the :class:`StreamDriver` that the package installs on import
(:mod:`otelstream.stream`, which wires the engine to the OpenTelemetry pipeline): the
engine itself never imports OpenTelemetry nor anything above it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

from otelstream.engine.events import NullObserver, RunInfo
from otelstream.engine.loop import RunLoop
from otelstream.engine.persistence import StateSnapshot
from otelstream.engine.runtime import current_task_context
from otelstream.engine.topology import TASK_ID_KEY, GraphBuilder, build_topology
from otelstream.engine.types import GraphOutput, StreamModeArg, StreamPart
from otelstream.errors import ErrorCode, InvalidGraphError

if TYPE_CHECKING:
    from otelstream.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

__all__ = ["CompiledStateGraph", "StreamDriver", "call_config", "set_stream_driver"]

# configurable keys that address a checkpoint lineage: an explicit config naming one does
# not inherit the calling task's configurable
_CHECKPOINT_COORDINATES = ("thread_id", "checkpoint_ns", "checkpoint_id", "checkpoint_map")


class StreamDriver(Protocol):
    """Runs a compiled graph and streams it; provided by :mod:`otelstream.stream`."""

    def stream(self, graph: CompiledStateGraph, input: Any, config: Any, **kwargs: Any) -> Generator[Any, None, None]:
        """Run synchronously, yielding chunks."""
        ...

    def astream(self, graph: CompiledStateGraph, input: Any, config: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        """Run asynchronously, yielding chunks."""
        ...

    def invoke_nested(self, graph: CompiledStateGraph, input: Any, config: Any) -> Any:
        """Run as a subgraph of the task the caller runs in; return the output values."""
        ...

    async def ainvoke_nested(self, graph: CompiledStateGraph, input: Any, config: Any) -> Any:
        """Async version of ``invoke_nested``."""
        ...


_DRIVER: list[StreamDriver] = []


def set_stream_driver(driver: StreamDriver) -> None:
    """Install the driver that runs graphs (done once, by ``import otelstream``)."""
    _DRIVER[:] = [driver]


def _driver() -> StreamDriver:
    if not _DRIVER:
        raise RuntimeError("no stream driver installed: import otelstream (the package installs it)")
    return _DRIVER[0]


class CompiledStateGraph:
    """A compiled graph: run it with ``invoke``/``ainvoke``, stream it with ``stream``/``astream``.

    The parameters and chunk shapes are LangGraph's (see ``docs/telemetry.md`` for what
    every chunk looks like in OpenTelemetry).
    """

    stream_mode = "updates"
    # the keys "values" and "updates" chunks show; None for every state key
    stream_output_keys: str | list[str] | None = None

    def __init__(
        self,
        builder: GraphBuilder,
        *,
        name: str,
        checkpointer: BaseCheckpointSaver | None = None,
        interrupt_before: list[str] | str = (),  # type: ignore[assignment]
        interrupt_after: list[str] | str = (),  # type: ignore[assignment]
    ) -> None:
        """Compile ``builder`` (use ``StateGraph.compile()`` rather than this)."""
        self.builder = builder
        self.name = name
        self.topology = build_topology(builder, name)
        self.checkpointer = checkpointer
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after

    def get_state(self, config: dict[str, Any]) -> StateSnapshot:
        """Return the thread's state at its latest checkpoint (or the one ``config`` names).

        Raises:
            ValueError: the graph has no checkpointer (LangGraph's message).
            CheckpointError: the config names no thread.
        """
        loop = self._reader(config)
        snapshot = loop.snapshot()
        if snapshot is None:
            return StateSnapshot({}, (), config, None, None, None, (), ())
        return snapshot

    def get_state_history(
        self, config: dict[str, Any], *, before: dict[str, Any] | None = None, limit: int | None = None
    ) -> Iterator[StateSnapshot]:
        """Yield the thread's states, newest checkpoint first.

        Raises:
            ValueError: the graph has no checkpointer (LangGraph's message).
        """
        saver = self._saver()
        for saved in saver.list(config, before=before, limit=limit):
            yield self._reader(saved.config, saved).snapshot(apply_pending=False)  # type: ignore[misc]

    def _saver(self) -> BaseCheckpointSaver:
        if self.checkpointer is None:
            raise ValueError("No checkpointer set")
        return self.checkpointer

    def _reader(self, config: dict[str, Any], saved: CheckpointTuple | None = None) -> RunLoop:
        # a loop that loads the checkpoint and plans the next tasks, without running them
        run = RunInfo(run_id="get_state", graph_name=self.name, namespace=(), parent_task=None, config=config)
        return RunLoop(
            self.topology,
            run,
            NullObserver(),
            output_keys=self.stream_output_keys,
            checkpointer=self._saver(),
            saved=saved,
        )

    def __repr__(self) -> str:
        return f"<CompiledStateGraph {self.name!r} nodes={list(self.topology.nodes)}>"

    @overload
    def stream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamModeArg = None,
        subgraphs: bool = False,
        version: Literal["v1"] = "v1",
        **kwargs: Any,
    ) -> Generator[Any, None, None]: ...

    @overload
    def stream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamModeArg = None,
        subgraphs: bool = False,
        version: Literal["v2"],
        **kwargs: Any,
    ) -> Generator[StreamPart, None, None]: ...

    @overload
    def stream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamModeArg = None,
        subgraphs: bool = False,
        version: str = "v1",
        **kwargs: Any,
    ) -> Generator[Any, None, None]: ...

    def stream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamModeArg = None,
        subgraphs: bool = False,
        version: str = "v1",
        **kwargs: Any,
    ) -> Generator[Any, None, None]:
        """Run the graph, yielding chunks as LangGraph's ``stream()`` does.

        Args:
            input: The input state (a dict); with a checkpointer also ``None`` (continue the
                thread) or ``Command(resume=...)`` (answer its interrupts).
            config: ``configurable`` (``thread_id`` with a checkpointer), ``tags``,
                ``metadata``, ``recursion_limit``, ``run_id``, ...
            stream_mode: A mode, or a list of modes (chunks become ``(mode, chunk)``).
            subgraphs: Stream subgraphs too (chunks gain a namespace).
            version: ``"v2"`` yields typed dict parts instead of tuples.
            **kwargs: ``output_keys`` (the state keys "values" and "updates" show),
                ``interrupt_before`` / ``interrupt_after`` (replace the compiled breakpoints
                for this run), and for LangGraph compatibility ``debug``.

        Returns:
            An iterator of chunks; closing it early ends the run after the current step
            (with a checkpointer, a finished step is kept and the thread continues after it).
        """
        graph = self._with_output_keys(kwargs.pop("output_keys", None))
        return _driver().stream(
            graph,
            input,
            call_config(config),
            stream_mode=self._mode_or_default(stream_mode, config),
            subgraphs=subgraphs,
            version=version,
            **kwargs,
        )

    @overload
    def astream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamModeArg = None,
        subgraphs: bool = False,
        version: Literal["v1"] = "v1",
        **kwargs: Any,
    ) -> AsyncGenerator[Any, None]: ...

    @overload
    def astream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamModeArg = None,
        subgraphs: bool = False,
        version: Literal["v2"],
        **kwargs: Any,
    ) -> AsyncGenerator[StreamPart, None]: ...

    @overload
    def astream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamModeArg = None,
        subgraphs: bool = False,
        version: str = "v1",
        **kwargs: Any,
    ) -> AsyncGenerator[Any, None]: ...

    def astream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamModeArg = None,
        subgraphs: bool = False,
        version: str = "v1",
        **kwargs: Any,
    ) -> AsyncGenerator[Any, None]:
        """Async version of :meth:`stream`: nodes may be ``async def``."""
        graph = self._with_output_keys(kwargs.pop("output_keys", None))
        return _driver().astream(
            graph,
            input,
            call_config(config),
            stream_mode=self._mode_or_default(stream_mode, config),
            subgraphs=subgraphs,
            version=version,
            **kwargs,
        )

    def _with_output_keys(self, output_keys: Any) -> CompiledStateGraph:
        # a copy whose "values"/"updates" show ``output_keys`` (a key, or a list of keys)
        if output_keys is None:
            return self
        keys = output_keys if isinstance(output_keys, str) else list(output_keys)
        for key in [keys] if isinstance(keys, str) else keys:
            if key not in self.topology.fields:
                raise InvalidGraphError(f"Key {key} not in channels", code=ErrorCode.INVALID_STREAM_ARGUMENT)
        bound = object.__new__(type(self))
        bound.__dict__.update(self.__dict__)
        bound.stream_output_keys = keys
        return bound

    def _mode_or_default(self, stream_mode: Any, config: Any) -> Any:
        # LangGraph defaults to "values" only when handed a task's config, i.e. when a node
        # passes its own config on to a nested graph; otherwise to the graph's stream_mode
        if stream_mode is not None:
            return stream_mode
        if isinstance(config, dict) and TASK_ID_KEY in (config.get("configurable") or {}):
            return "values"
        return self.stream_mode

    def invoke(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: Any = "values",
        output_keys: str | Sequence[str] | None = None,
        version: str = "v1",
        **kwargs: Any,
    ) -> Any:
        """Run the graph to the end and return its output.

        With ``stream_mode="values"`` (the default) this is the final state restricted to the
        output schema (a :class:`GraphOutput` with ``version="v2"``); with another mode, the
        list of chunks, as in LangGraph. Chunks show only the output schema's keys too.
        """
        graph = self._with_output_keys(self.topology.output_keys if output_keys is None else output_keys)
        if stream_mode == "values":
            if current_task_context() is not None and version == "v1":
                return _driver().invoke_nested(graph, input, call_config(config))
            collected = _Collected(version)
            for chunk in graph.stream(input, config, stream_mode=["values"], version=version, **kwargs):
                collected.add(chunk)
            return collected.output()
        return list(graph.stream(input, config, stream_mode=stream_mode, version=version, **kwargs))

    async def ainvoke(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: Any = "values",
        output_keys: str | Sequence[str] | None = None,
        version: str = "v1",
        **kwargs: Any,
    ) -> Any:
        """Async version of :meth:`invoke`."""
        graph = self._with_output_keys(self.topology.output_keys if output_keys is None else output_keys)
        if stream_mode == "values":
            if current_task_context() is not None and version == "v1":
                return await _driver().ainvoke_nested(graph, input, call_config(config))
            collected = _Collected(version)
            async for chunk in graph.astream(input, config, stream_mode=["values"], version=version, **kwargs):
                collected.add(chunk)
            return collected.output()
        return [c async for c in graph.astream(input, config, stream_mode=stream_mode, version=version, **kwargs)]

    def with_config(self, config: dict[str, Any] | None = None, **kwargs: Any) -> CompiledStateGraph:
        """Return a copy that merges ``config`` into every call's config."""
        bound = object.__new__(type(self))
        bound.__dict__.update(self.__dict__)
        bound.__dict__["_bound_config"] = {**getattr(self, "_bound_config", {}), **(config or {}), **kwargs}
        return bound


class _Collected:
    """What ``invoke()`` returns: the last values chunk, with the run's interrupts."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.last: Any = None
        self.interrupts: list[Any] = []

    def add(self, chunk: Any) -> None:
        if self.version == "v2":
            self.last = chunk["data"]
            self.interrupts.extend(chunk.get("interrupts", ()))
            return
        self.last = chunk[1]
        if isinstance(self.last, dict) and "__interrupt__" in self.last:
            self.interrupts.extend(self.last["__interrupt__"])

    def output(self) -> Any:
        if self.version == "v2":
            return GraphOutput(value=self.last, interrupts=tuple(self.interrupts))
        if self.interrupts and isinstance(self.last, dict):
            # LangGraph's shape: the interrupts as a list (stream chunks carry a tuple)
            return {**self.last, "__interrupt__": self.interrupts}
        return self.last


def call_config(config: Any) -> Any:
    """Merge ``config`` over the config of the task the caller runs in, if any.

    A graph called from node code inherits its task's metadata, tags and configurable, as
    LangGraph's ``ensure_config`` makes it do: the nested run's tasks then carry the
    calling node's metadata. Explicit values win; tags are appended without duplicates.
    """
    ctx = current_task_context()
    if ctx is None or (config is not None and not isinstance(config, dict)):
        return config
    ambient = ctx.task.config
    explicit = config or {}
    merged = {**ambient, **explicit}
    merged["metadata"] = {**ambient.get("metadata", {}), **(explicit.get("metadata") or {})}
    tags = list(ambient.get("tags", []))
    merged["tags"] = tags + [t for t in explicit.get("tags") or () if t not in tags]
    configurable = explicit.get("configurable") or {}
    if any(configurable.get(key) for key in _CHECKPOINT_COORDINATES):
        merged["configurable"] = dict(configurable)
    else:
        merged["configurable"] = {**ambient.get("configurable", {}), **configurable}
    return merged

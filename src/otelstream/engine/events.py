"""What the engine produces while it runs, and the interface it hands that to.

The engine never talks to an iterator: it reports each stream event, task and run to a
:class:`RunObserver`. otelstream's telemetry layer implements the observer by turning every
event into an OpenTelemetry record; ``stream()`` is fed from those records.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol

from otelstream.engine.types import StreamMode

if TYPE_CHECKING:
    from otelstream.engine.topology import NodeSpec

__all__ = ["NullObserver", "Outcome", "RunInfo", "RunObserver", "StopSignal", "StreamEvent", "Task"]

Outcome = Literal["completed", "abandoned", "cancelled", "failed", "interrupted"]
"""How a run ended: as the telemetry's ``otelstream.outcome`` attribute reports it."""


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEvent:
    """One chunk of one stream mode, before it is formatted for the consumer.

    Attributes:
        namespace: The graph the chunk comes from: ``()`` for the root, else
            ``("child:<task id>", ...)``.
        mode: The stream mode.
        payload: The chunk itself, exactly as LangGraph yields it for that mode.
        node: The node that produced it, when one did (``None`` for run-level chunks).
    """

    namespace: tuple[str, ...]
    mode: StreamMode
    payload: Any
    node: str | None = None


@dataclasses.dataclass(slots=True, eq=False)
class Task:
    """One node execution within one superstep."""

    id: str
    name: str
    path: tuple[Any, ...]
    input: Any
    triggers: tuple[str, ...]
    node: NodeSpec
    step: int
    namespace: tuple[str, ...]
    graph_name: str
    # the node's config, or a function that builds it: most nodes never read it
    lazy_config: dict[str, Any] | Callable[[], dict[str, Any]]
    writes: list[tuple[str, Any]] = dataclasses.field(default_factory=list)
    error: BaseException | None = None
    # the interrupts the task paused with (it ran, but did not finish)
    interrupts: tuple[Any, ...] = ()
    # the task finished before a resume: its saved writes are reused, it does not run again
    cached: bool = False
    # what interrupt() calls inside the task return (an engine.interrupts.InterruptScope)
    interrupt_scope: Any = None
    # the task paused at an interrupt and now runs again: a subgraph it runs resumes too
    resuming: bool = False
    # the run's engine.persistence.Persistence: subgraphs the task runs checkpoint under it
    persistence: Any = None
    # what the observer attaches to the task (its span); opaque to the engine
    handle: Any = None

    @property
    def config(self) -> dict[str, Any]:
        """The config the node runs with (LangGraph's: metadata, tags, configurable)."""
        config = self.lazy_config
        if callable(config):
            config = self.lazy_config = config()
        return config

    @property
    def checkpoint_ns(self) -> str:
        """The task's namespace as LangGraph spells it: ``parent|name:id``."""
        return "|".join(self.namespace)


class StopSignal:
    """Set when a run's consumer stopped reading: its nodes stop at their next stream write.

    A nested run's signal also reports its caller's: a graph run inside a node stops with
    the run around it.
    """

    __slots__ = ("_outcome", "_parent")

    def __init__(self, parent: StopSignal | None = None) -> None:
        """Create an unset signal, under ``parent``'s if the run is nested."""
        self._outcome: Outcome | None = None
        self._parent = parent

    def set(self, outcome: Outcome) -> None:
        """Stop the run: ``abandoned`` (the consumer closed the stream) or ``cancelled``."""
        self._outcome = outcome

    def stopped(self) -> Outcome | None:
        """Return why the run (or a run around it) stopped, or None while it goes on."""
        if self._outcome is not None:
            return self._outcome
        return self._parent.stopped() if self._parent is not None else None


@dataclasses.dataclass(slots=True, eq=False)
class RunInfo:
    """One execution of a graph (the root run or a subgraph run inside a task)."""

    run_id: str
    graph_name: str
    namespace: tuple[str, ...]
    parent_task: Task | None
    config: dict[str, Any]
    # the run that last wrote the thread's checkpoint, when this run continues a thread:
    # what the observer's trace_reference() returned for it
    previous_trace: dict[str, str] | None = None
    handle: Any = None
    stop: StopSignal = dataclasses.field(default_factory=StopSignal)


class RunObserver(Protocol):
    """Receives everything a run does. Implemented by otelstream's telemetry layer.

    Every method is called on the thread doing the work (the consumer's thread for run and
    superstep events, a worker thread or the event loop for task events). Implementations
    must not raise: a failure to record telemetry must never break the run.
    """

    def wants(self, namespace: tuple[str, ...], mode: StreamMode) -> bool:
        """Return whether anyone consumes ``mode`` chunks of the graph at ``namespace``."""
        ...

    def emit(self, event: StreamEvent, run: RunInfo, task: Task | None) -> None:
        """Deliver one chunk; ``task`` is the task that produced it, if any."""
        ...

    def run_started(self, run: RunInfo) -> None:
        """A run (root or subgraph) started."""
        ...

    def run_ended(self, run: RunInfo, outcome: Outcome, error: BaseException | None) -> None:
        """A run ended with ``outcome``."""
        ...

    def task_scope(self, task: Task, run: RunInfo) -> AbstractContextManager[None]:
        """Enter around the node's code: makes the task's span current while it runs."""
        ...

    def node_returned(self, task: Task, run: RunInfo, result: Any) -> None:
        """The node's code returned ``result`` (its writes are recorded, its update not emitted yet)."""
        ...

    def task_ended(self, task: Task, error: BaseException | None) -> None:
        """The task finished, with ``error`` if it raised."""
        ...

    def writer_for(self, run: RunInfo, task: Task) -> Callable[[Any], None]:
        """Return the ``custom`` stream writer for code running in ``task``."""
        ...

    def trace_reference(self, run: RunInfo) -> dict[str, str] | None:
        """Return how to find ``run`` in telemetry later, kept in the checkpoints it writes."""
        ...


class NullObserver:
    """An observer that wants nothing: for reading a thread's state without running it."""

    def wants(self, namespace: tuple[str, ...], mode: StreamMode) -> bool:
        """Return False: nobody consumes chunks."""
        return False

    def emit(self, event: StreamEvent, run: RunInfo, task: Task | None) -> None:
        """Drop the chunk."""

    def run_started(self, run: RunInfo) -> None:
        """Ignore the run."""

    def run_ended(self, run: RunInfo, outcome: Outcome, error: BaseException | None) -> None:
        """Ignore the run."""

    def task_scope(self, task: Task, run: RunInfo) -> AbstractContextManager[None]:
        """Return a scope that does nothing."""
        return contextlib.nullcontext()

    def node_returned(self, task: Task, run: RunInfo, result: Any) -> None:
        """Ignore what the node returned."""

    def task_ended(self, task: Task, error: BaseException | None) -> None:
        """Ignore the task."""

    def writer_for(self, run: RunInfo, task: Task) -> Callable[[Any], None]:
        """Return a writer that drops chunks."""
        return lambda _chunk: None

    def trace_reference(self, run: RunInfo) -> dict[str, str] | None:
        """Return None: nothing is traced."""
        return None

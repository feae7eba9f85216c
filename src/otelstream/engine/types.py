"""The values users hand to the engine: ``Send``, ``Command``, ``RetryPolicy`` and the names.

These mirror LangGraph's ``langgraph.types`` so graph code ports unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, TypedDict, get_args

from otelstream.checkpoint.serde import register_type
from otelstream.engine.schema import annotated_keys, updates_from_object

__all__ = [
    "END",
    "START",
    "Command",
    "GraphOutput",
    "Interrupt",
    "RetryPolicy",
    "Send",
    "StreamMode",
    "StreamModeArg",
    "StreamPart",
    "StreamWriter",
    "default_retry_on",
]

START: Literal["__start__"] = "__start__"
"""The virtual node a graph's input enters through."""
END: Literal["__end__"] = "__end__"
"""The virtual node that ends a run when reached."""

StreamMode = Literal["values", "updates", "custom", "messages", "debug", "tasks", "checkpoints"]
"""How ``stream()`` emits: the names LangGraph uses."""

StreamModeArg = StreamMode | Sequence[StreamMode] | None
"""What ``stream_mode=`` takes: a mode, a list of modes (chunks become ``(mode, chunk)``), or None."""


class _StreamPartFields(TypedDict):
    type: StreamMode
    ns: tuple[str, ...]
    data: Any


class StreamPart(_StreamPartFields, total=False):
    """One ``version="v2"`` chunk: its mode, namespace and data (``values`` parts add ``interrupts``)."""

    interrupts: tuple[Interrupt, ...]


STREAM_MODES: frozenset[StreamMode] = frozenset(get_args(StreamMode))


class StreamWriter(Protocol):
    """A callable that writes one ``custom`` chunk to the stream."""

    def __call__(self, chunk: Any, /) -> None:
        """Write ``chunk``; a silent no-op when the ``custom`` mode is not streamed."""


class Send:
    """A packet for a node: run ``node`` in the next superstep with ``arg`` as its input."""

    __slots__ = ("arg", "node")

    def __init__(self, /, node: str, arg: Any) -> None:
        """Address ``arg`` to ``node``.

        Args:
            node: Name of the node to run.
            arg: The input that node receives instead of the graph state.
        """
        self.node = node
        self.arg = arg

    def __hash__(self) -> int:
        return hash((self.node, repr(self.arg)))

    def __repr__(self) -> str:
        return f"Send(node={self.node!r}, arg={self.arg!r})"

    def __eq__(self, value: object) -> bool:
        return isinstance(value, Send) and self.node == value.node and self.arg == value.arg


@dataclasses.dataclass
class Command:
    """Update the state and choose the next nodes from inside a node.

    Attributes:
        graph: ``None`` for the current graph, ``Command.PARENT`` for the closest parent.
        update: State update applied like a node's return value.
        resume: Value to resume an interrupt with, or a mapping of interrupt ids to values
            when several interrupts are pending (only as the input of a run).
        goto: A node name, a ``Send``, or a sequence of them, to run next.
    """

    graph: str | None = None
    update: Any | None = None
    resume: Any | None = None
    goto: Send | Sequence[Send | str] | str = ()

    PARENT: ClassVar[Literal["__parent__"]] = "__parent__"

    def __repr__(self) -> str:
        contents = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if getattr(self, f.name)
        )
        return f"Command({contents})"

    def update_items(self) -> list[tuple[str, Any]]:
        """Return ``update`` as ``(key, value)`` pairs, in order (LangGraph's rules)."""
        update = self.update
        if isinstance(update, dict):
            return list(update.items())
        if isinstance(update, (list, tuple)) and all(
            isinstance(t, tuple) and len(t) == 2 and isinstance(t[0], str) for t in update
        ):
            return list(update)
        keys = annotated_keys(type(update))
        if keys:
            return updates_from_object(update, keys) or []
        if update is not None:
            return [("__root__", update)]
        return []

    def goto_targets(self) -> list[Send | str]:
        """Return ``goto`` as a list of node names and ``Send`` packets."""
        goto = self.goto
        if isinstance(goto, (str, Send)):
            return [goto]
        return list(goto)


@dataclasses.dataclass(slots=True)
class Interrupt:
    """A pause a node asked for with :func:`~otelstream.interrupt`, as LangGraph reports it.

    Attributes:
        value: What the node handed to ``interrupt()`` (shown to the human).
        id: Identifies the interrupt when resuming with a mapping of ids to values; the
            same for every interrupt of one task, and stable across resumes.
        response_schema: Reserved, as in LangGraph (always ``None``).
    """

    value: Any
    id: str
    response_schema: Any = None


@dataclasses.dataclass(frozen=True)
class GraphOutput:
    """What ``invoke(..., version="v2")`` returns: the output and any interrupts.

    Attributes:
        value: The final output of the graph.
        interrupts: The interrupts the run stopped at, if any.
    """

    value: Any
    interrupts: tuple[Any, ...] = ()


def default_retry_on(exc: Exception) -> bool:
    """Retry on anything but programming errors, as LangGraph's default does.

    ``ConnectionError`` is retried; ``ValueError``, ``TypeError``, ``LookupError`` and other
    errors that another attempt cannot fix are not.
    """
    if isinstance(exc, ConnectionError):
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if type(exc).__name__ in ("HTTPStatusError", "HTTPError") and isinstance(status, int):
        return 500 <= status < 600
    return not isinstance(
        exc,
        (
            ValueError,
            TypeError,
            ArithmeticError,
            ImportError,
            LookupError,
            NameError,
            SyntaxError,
            RuntimeError,
            ReferenceError,
            StopIteration,
            StopAsyncIteration,
            OSError,
        ),
    )


class RetryPolicy(NamedTuple):
    """How a node is retried when it raises.

    Attributes:
        initial_interval: Seconds before the first retry.
        backoff_factor: Multiplier applied to the interval after each retry.
        max_interval: Upper bound for the interval, in seconds.
        max_attempts: Attempts in all, the first included.
        jitter: Add up to one second of random jitter to each interval.
        retry_on: Exception classes to retry, or a predicate on the exception.
    """

    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    max_attempts: int = 3
    jitter: bool = True
    retry_on: type[Exception] | Sequence[type[Exception]] | Callable[[Exception], bool] = default_retry_on

    def should_retry(self, exc: Exception) -> bool:
        """Return whether ``exc`` is one this policy retries."""
        retry_on = self.retry_on
        if isinstance(retry_on, type) and issubclass(retry_on, BaseException):
            return isinstance(exc, retry_on)
        if isinstance(retry_on, Sequence):
            return isinstance(exc, tuple(retry_on))
        predicate: Callable[[Exception], bool] = retry_on  # type: ignore[assignment]
        return bool(predicate(exc))


# checkpoints hold Send packets, Commands and interrupts: the JSON serializer may rebuild them
register_type(Send, Command, Interrupt)

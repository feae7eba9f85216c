"""Every public exception otelstream raises, with an :class:`ErrorCode` per kind of mistake.

Errors in a graph definition are raised at ``add_*`` or ``compile()`` time and name the
offending node, edge or state key. Errors while a graph runs mirror LangGraph's exception
types (``GraphRecursionError``, ``InvalidUpdateError``) so code written against LangGraph
catches them unchanged.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = [
    "CheckpointError",
    "EmptyInputError",
    "ErrorCode",
    "GraphInterrupt",
    "GraphRecursionError",
    "IncompleteStreamError",
    "InvalidGraphError",
    "InvalidStreamArgumentError",
    "InvalidUpdateError",
    "OtelstreamError",
    "RemoteStreamError",
    "ReplayError",
    "ReplaySourceError",
    "RunStopped",
]


class ErrorCode(str, Enum):
    """Stable identifiers for the kinds of error, for programs that react to them."""

    INVALID_GRAPH = "INVALID_GRAPH"
    INVALID_NODE = "INVALID_NODE"
    INVALID_EDGE = "INVALID_EDGE"
    INVALID_STATE_SCHEMA = "INVALID_STATE_SCHEMA"
    INVALID_REDUCER = "INVALID_REDUCER"
    INVALID_STREAM_ARGUMENT = "INVALID_STREAM_ARGUMENT"
    INVALID_CONCURRENT_GRAPH_UPDATE = "INVALID_CONCURRENT_GRAPH_UPDATE"
    INVALID_GRAPH_NODE_RETURN_VALUE = "INVALID_GRAPH_NODE_RETURN_VALUE"
    GRAPH_RECURSION_LIMIT = "GRAPH_RECURSION_LIMIT"
    INVALID_SEND = "INVALID_SEND"
    INVALID_CHECKPOINT = "INVALID_CHECKPOINT"


class OtelstreamError(Exception):
    """Base class of otelstream's own errors; ``code`` says which kind."""

    code: ErrorCode = ErrorCode.INVALID_GRAPH

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        """Create the error.

        Args:
            message: What is wrong, naming the node, edge or key at fault.
            code: The kind of error; defaults to the class's code.
        """
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidGraphError(OtelstreamError, ValueError):
    """The graph definition is invalid; raised by ``add_*`` or ``compile()``.

    It subclasses ``ValueError`` because LangGraph raises ``ValueError`` for the same mistakes.
    """


class InvalidUpdateError(OtelstreamError):
    """A node's update cannot be applied (e.g. two writes to a key without a reducer)."""

    code = ErrorCode.INVALID_CONCURRENT_GRAPH_UPDATE


class GraphRecursionError(OtelstreamError, RecursionError):
    """The run reached ``recursion_limit`` supersteps without hitting a stop condition."""

    code = ErrorCode.GRAPH_RECURSION_LIMIT


class EmptyInputError(OtelstreamError):
    """The graph was started with no input."""

    code = ErrorCode.INVALID_STREAM_ARGUMENT


class GraphInterrupt(Exception):  # LangGraph's name (no "Error"), caught by ported code
    """Raised inside a node by ``interrupt()``: the run pauses; it is not an error.

    The engine catches it: the run ends with the interrupts in its stream, and a
    checkpointer keeps the thread ready to resume with ``Command(resume=...)``.

    Attributes:
        interrupts: The interrupts that paused the task.
    """

    def __init__(self, interrupts: tuple[Any, ...] = ()) -> None:
        """Carry ``interrupts`` (:class:`~otelstream.Interrupt` values) to the engine."""
        super().__init__(interrupts)
        self.interrupts = tuple(interrupts)


class InvalidStreamArgumentError(OtelstreamError, ValueError):
    """An argument of ``stream()``/``astream()`` is invalid; raised before the run starts."""

    code = ErrorCode.INVALID_STREAM_ARGUMENT


class ReplayError(OtelstreamError, ValueError):
    """The requested run or modes cannot be replayed from this source."""

    code = ErrorCode.INVALID_STREAM_ARGUMENT


class IncompleteStreamError(ReplayError):
    """Raised by ``replay(..., strict=True)`` when the stream has gaps or truncated payloads."""


class ReplaySourceError(ValueError):
    """The source cannot be read at all (missing file, not OTLP JSON, server unreachable)."""


class RunStopped(BaseException):
    """Raised inside a node at its next stream write once the run's consumer stopped reading.

    When the application breaks out of ``stream()``, closes it, or cancels ``astream()``,
    nodes still running would otherwise run to their end with nobody reading: the next
    ``get_stream_writer()`` write or ``write_progress()`` call raises this instead, so the
    node stops there (LangGraph cancels such tasks too). Like ``asyncio.CancelledError`` it is
    a ``BaseException``, so ``except Exception`` in node code does not swallow it; the node's
    span ends with the run's outcome.

    Attributes:
        outcome: ``"abandoned"`` (the stream was closed) or ``"cancelled"``.
    """

    def __init__(self, outcome: str) -> None:
        """Say why the run stopped."""
        super().__init__(f"the run's consumer stopped reading ({outcome})")
        self.outcome = outcome


class RemoteStreamError(ReplaySourceError):
    """``remote_stream()``: the gateway refused the stream, does not hold the run, or stayed unreachable."""


class CheckpointError(OtelstreamError, ValueError):
    """A checkpointer cannot be used as configured, or holds a checkpoint it cannot read.

    It subclasses ``ValueError`` because LangGraph raises ``ValueError`` for a missing thread id.
    """

    code = ErrorCode.INVALID_CHECKPOINT

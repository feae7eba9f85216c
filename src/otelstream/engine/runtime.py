"""What node code can reach while it runs: its config and its stream writer.

Both are context variables set around each node call, so they follow the node into threads
and asyncio tasks that copy the context (as ``asyncio`` and the engine's executor do).
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otelstream.engine.events import RunInfo, RunObserver, Task

__all__ = ["TaskContext", "current_task_context", "get_config", "get_stream_writer"]


@dataclasses.dataclass(slots=True, eq=False)
class TaskContext:
    """The task a piece of code runs in, and where its stream chunks go."""

    task: Task
    run: RunInfo
    observer: RunObserver
    writer: Callable[[Any], None]
    # how many graphs this task has invoked so far: a repeated call gets a numbered namespace
    subgraph_calls: int = 0


_TASK_CONTEXT: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "otelstream_task_context", default=None
)


def current_task_context() -> TaskContext | None:
    """Return the task the caller runs in, or None outside a graph."""
    return _TASK_CONTEXT.get()


def set_task_context(ctx: TaskContext | None) -> contextvars.Token[TaskContext | None]:
    """Make ``ctx`` current; reset with the returned token."""
    return _TASK_CONTEXT.set(ctx)


def reset_task_context(token: contextvars.Token[TaskContext | None]) -> None:
    """Undo :func:`set_task_context`."""
    _TASK_CONTEXT.reset(token)


def get_config() -> dict[str, Any]:
    """Return the config of the node currently running.

    Raises:
        RuntimeError: called outside a running node (LangGraph's message).
    """
    ctx = _TASK_CONTEXT.get()
    if ctx is None:
        raise RuntimeError("Called get_config outside of a runnable context")
    return ctx.task.config


def get_stream_writer() -> Callable[[Any], None]:
    """Return the ``custom`` stream writer of the node currently running.

    The writer is a silent no-op when the run does not stream the ``custom`` mode.

    Raises:
        RuntimeError: called outside a running node (LangGraph's message).
    """
    ctx = _TASK_CONTEXT.get()
    if ctx is None:
        raise RuntimeError("Called get_config outside of a runnable context")
    return ctx.writer

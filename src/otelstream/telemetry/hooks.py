"""Code that integrations run around every node: e.g. making LangChain see the task's config.

The telemetry layer cannot import integrations (dependencies point the other way), so an
integration registers a :data:`TaskHook` here and :meth:`~otelstream.telemetry.observer.TelemetryObserver.task_scope`
enters what each hook returns while the node's code runs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from otelstream.engine.events import RunInfo, Task

if TYPE_CHECKING:
    from otelstream.telemetry.pipeline import Streams

__all__ = ["TaskHook", "register_task_hook", "task_hooks", "unregister_task_hook"]

TaskHook = Callable[[Task, RunInfo, "Streams"], "AbstractContextManager[None] | None"]
"""Called on the node's thread before it runs; returns a context manager to enter, or None."""

# a tuple, replaced whole: readers on node threads never see a list being changed
_HOOKS: tuple[TaskHook, ...] = ()


def register_task_hook(hook: TaskHook) -> None:
    """Run ``hook`` around every node from now on (once, however often registered)."""
    global _HOOKS
    if hook not in _HOOKS:
        _HOOKS = (*_HOOKS, hook)


def unregister_task_hook(hook: TaskHook) -> None:
    """Stop running ``hook``."""
    global _HOOKS
    _HOOKS = tuple(h for h in _HOOKS if h != hook)


def task_hooks() -> tuple[TaskHook, ...]:
    """Return the registered hooks, in registration order."""
    return _HOOKS

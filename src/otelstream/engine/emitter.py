"""One run's line to its observer: what is streamed, and the chunks the loop hands on."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from otelstream.engine.events import RunInfo, RunObserver, StreamEvent, Task
from otelstream.engine.types import StreamMode

__all__ = ["RunEmitter", "utc_timestamp"]


def utc_timestamp() -> str:
    """Return the time as LangGraph's debug events show it."""
    return datetime.now(timezone.utc).isoformat()


class RunEmitter:
    """Reports one run's chunks to its observer; shared by the run loop and its pauses.

    ``muted`` silences the run: a superstep saved after the consumer left streams nothing.
    """

    __slots__ = ("muted", "namespace", "observer", "run")

    def __init__(self, observer: RunObserver, run: RunInfo) -> None:
        """Emit ``run``'s chunks to ``observer``."""
        self.observer = observer
        self.run = run
        self.namespace = run.namespace
        self.muted = False

    def wants(self, mode: StreamMode) -> bool:
        """Return whether anyone consumes ``mode`` chunks of this run."""
        return not self.muted and self.observer.wants(self.namespace, mode)

    def emit(self, mode: StreamMode, payload: Any, task: Task | None = None) -> None:
        """Emit one chunk (check :meth:`wants` first: payloads are built only when streamed)."""
        node = task.name if task is not None else None
        self.observer.emit(StreamEvent(self.namespace, mode, payload, node), self.run, task)

    def task_event(self, payload: dict[str, Any], task: Task, *, result: bool, step: int) -> None:
        """Emit a task start (or result) as ``tasks`` and ``debug`` show it, to those streamed."""
        if self.wants("tasks"):
            self.emit("tasks", payload, task)
        if self.wants("debug"):
            kind = "task_result" if result else "task"
            self.emit("debug", {"step": step, "timestamp": utc_timestamp(), "type": kind, "payload": payload}, task)

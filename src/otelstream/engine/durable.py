"""A run's pauses and resumes: what a resume reuses and answers, what a paused task streams.

:class:`Pauses` is composed into the run loop. It holds the run's link to its checkpointer
(if any), the answers a resumed run hands to ``interrupt()`` calls, and the interrupts
the run paused with; the loop hands it the data each decision needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from otelstream.checkpoint.base import INTERRUPT, RESUME
from otelstream.engine.channels import MISSING
from otelstream.engine.emitter import RunEmitter, utc_timestamp
from otelstream.engine.events import Task
from otelstream.engine.interrupts import InterruptScope, ParentResume, PendingResume
from otelstream.engine.persistence import Persistence, interrupt_payload
from otelstream.engine.types import Command, Interrupt

__all__ = ["Pauses"]


class Pauses:
    """Checkpoint and interrupt handling of one run (see the module docstring).

    Attributes:
        persistence: The run's checkpoints, or ``None`` for a run without a checkpointer.
        interrupts: The interrupts tasks of the current superstep paused with.
        resume: What ``interrupt()`` calls of a resumed run answer with.
    """

    def __init__(
        self, persistence: Persistence | None, emitter: RunEmitter, parent: Task | None, commit_lock: threading.Lock
    ) -> None:
        """Handle the pauses of the run ``emitter`` reports, run by task ``parent`` if nested.

        ``commit_lock`` is the loop's: answers are saved under it, as task outcomes are.
        """
        self.persistence = persistence
        self.interrupts: list[Interrupt] = []
        self.resume: PendingResume | ParentResume | None = None
        self._emitter = emitter
        self._parent = parent
        self._commit_lock = commit_lock

    @property
    def can_resume(self) -> bool:
        """Whether the run continues a thread: it has a checkpoint to resume from."""
        return self.persistence is not None and self.persistence.saved is not None

    def begin_resume(self, input: Any) -> None:
        """Take the answers the run resumes with (``Command(resume=...)``, or its caller's)."""
        persistence = self.persistence
        assert persistence is not None
        parent = self._parent
        if parent is not None and parent.resuming and parent.interrupt_scope is not None:
            self.resume = ParentResume(parent.interrupt_scope)
        else:
            resume = input.resume if isinstance(input, Command) else MISSING
            self.resume = PendingResume(resume, persistence.interrupted_tasks())

    def reuse_finished(self, tasks: list[Task]) -> None:
        """Mark the planned tasks that finished before the run stopped, and those that paused."""
        persistence = self.persistence
        if persistence is None:
            return
        paused = persistence.interrupted_tasks()
        for task in tasks:
            writes = persistence.writes_of(task.id)
            if writes:  # finished before the run stopped: reuse its writes
                task.writes, task.cached = writes, True
            task.resuming = task.id in paused

    def emit_checkpoint(self, values: Callable[[], Any], tasks: Callable[[], list[Task]]) -> None:
        """Emit the current checkpoint with ``tasks()`` planned from it, for "checkpoints" and "debug"."""
        persistence = self.persistence
        emitter = self._emitter
        if persistence is None or not (emitter.wants("checkpoints") or emitter.wants("debug")):
            return
        payload = persistence.payload(values(), tasks())
        if emitter.wants("checkpoints"):
            emitter.emit("checkpoints", payload)
        if emitter.wants("debug"):
            step = payload["metadata"]["step"]
            emitter.emit(
                "debug", {"step": step, "timestamp": utc_timestamp(), "type": "checkpoint", "payload": payload}
            )

    def interrupt_scope(self, task: Task) -> InterruptScope:
        """Return what ``interrupt()`` calls in ``task``'s next attempt answer with."""
        parent = self._parent
        if self.persistence is None and parent is not None and parent.interrupt_scope is not None:
            # a graph run inside a node without its own checkpoints re-runs from its start
            # on resume: its interrupt() calls pause, and are answered for, the calling task
            scope: InterruptScope = parent.interrupt_scope
            return scope
        answers: list[Any] = []
        persistence = self.persistence
        if persistence is not None:
            saved = persistence.special(task.id, RESUME)
            answers = list(saved) if saved is not MISSING else []
        return InterruptScope(task, answers, self.resume, self._save_answers)

    def _save_answers(self, task: Task, answers: list[Any]) -> None:
        if self.persistence is not None:
            with self._commit_lock:
                self.persistence.put_writes(task.id, [(RESUME, answers)])

    def commit_interrupt(self, task: Task, values: Callable[[], Any], step: int) -> None:
        """Stream a paused task: its interrupts as an update, the state with them, its result.

        That is LangGraph's order; ``values()`` is the state without the step's writes.
        """
        interrupts = tuple(task.interrupts)
        self.interrupts.extend(interrupts)
        if self.persistence is not None:
            self.persistence.put_writes(task.id, [(INTERRUPT, list(interrupts))])
        emitter = self._emitter
        if emitter.wants("updates"):
            emitter.emit("updates", {"__interrupt__": interrupts}, task)
        if emitter.wants("values"):
            current = values()
            emitter.emit("values", {**current, "__interrupt__": interrupts} if isinstance(current, dict) else current)
        if emitter.wants("tasks") or emitter.wants("debug"):
            payload: dict[str, Any] = {
                "id": task.id,
                "name": task.name,
                "error": None,
                "result": {},
                "interrupts": [interrupt_payload(i) for i in interrupts],
            }
            emitter.task_event(payload, task, result=True, step=step)
        emitter.observer.task_ended(task, None)

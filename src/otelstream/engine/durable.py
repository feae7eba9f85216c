"""The durable half of the run loop: checkpoints, pauses and resumes.

Mixed into :class:`~otelstream.engine.loop.RunLoop`: how a run continues a thread from its
checkpoint, what a paused task streams, what ``interrupt()`` calls answer with, and the
``"checkpoints"`` chunks. The plain superstep mechanics stay in ``loop.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from otelstream.checkpoint.base import ERROR, INTERRUPT, RESUME
from otelstream.engine.channels import MISSING, BaseChannel
from otelstream.engine.compiled import Topology
from otelstream.engine.events import RunInfo, RunObserver, Task
from otelstream.engine.interrupts import InterruptScope, ParentResume, PendingResume, mark_breakpoint
from otelstream.engine.persistence import Persistence, StateSnapshot, interrupt_payload, task_id_for
from otelstream.engine.types import Command, Interrupt, StreamMode

if TYPE_CHECKING:
    from otelstream.engine.loop import RunLoop

__all__ = ["DurableSteps", "utc_timestamp"]


def utc_timestamp() -> str:
    """Return the time as LangGraph's debug events show it."""
    return datetime.now(timezone.utc).isoformat()


class DurableSteps:
    """Checkpoint and interrupt handling of a run loop (see the module docstring)."""

    run: RunInfo
    observer: RunObserver
    topology: Topology
    channels: dict[str, BaseChannel]
    versions: dict[str, int]
    version: int
    seen: dict[str, dict[str, int]]
    namespace: tuple[str, ...]
    output_keys: str | list[str]
    step: int
    start_step: int
    tasks: list[Task]
    persistence: Persistence | None
    interrupted: bool
    interrupts: list[Interrupt]
    resume: PendingResume | ParentResume | None
    muted: bool
    _committed: set[str]
    _commit_lock: threading.Lock
    _id_prefix: str
    _id_counter: Iterator[int]

    if TYPE_CHECKING:  # provided by RunLoop

        def wants(self, mode: StreamMode) -> bool:
            """Return whether anyone consumes ``mode`` chunks of this run."""

        def _emit(self, mode: StreamMode, payload: Any, task: Task | None = None) -> None: ...

        def _emit_task_event(self, payload: dict[str, Any], task: Task, *, result: bool) -> None: ...

        def _plan(self, step: int) -> list[Task]: ...

        def _start_task(self, input: Any) -> Task: ...

        def _apply(self, tasks: list[Task], preview: dict[str, BaseChannel] | None = None) -> None: ...

        def after_tick(self) -> None:
            """Apply the step's writes."""

    def finish_abandoned_step(self) -> None:
        """Save the superstep in progress when the consumer stopped reading, as LangGraph does.

        Only when every task of the step finished: the thread then continues after it.
        Nothing is streamed (nobody reads any more, and the telemetry must show only what
        the consumer was given).
        """
        if self.persistence is None or self.interrupted or not self.tasks or self.interrupts:
            return
        if any(task.error is not None or not (task.cached or task.id in self._committed) for task in self.tasks):
            return
        self.muted = True
        self.after_tick()

    def _resume(self, input: Any) -> None:
        # continue the thread from its checkpoint: LangGraph re-emits the current values
        # (and checkpoint), and the next tick re-plans the interrupted superstep
        persistence = self.persistence
        assert persistence is not None
        parent = self.run.parent_task
        if parent is not None and parent.resuming and parent.interrupt_scope is not None:
            self.resume = ParentResume(parent.interrupt_scope)
        else:
            resume = input.resume if isinstance(input, Command) else MISSING
            self.resume = PendingResume(resume, persistence.interrupted_tasks())
        if isinstance(input, Command) and input.update is not None:
            self._apply_resume_update(input)
        mark_breakpoint(self.versions, self.seen)
        self.start_step = self.step
        if self.wants("values"):
            self._emit("values", self.output_values())
        self._emit_checkpoint()

    def _apply_resume_update(self, command: Command) -> None:
        # Command(resume=..., update=...): LangGraph writes the update into the state before
        # the paused step runs again; only those channels change (the step's triggers stay)
        grouped: dict[str, list[Any]] = {}
        for key, value in command.update_items():
            if key in self.topology.fields:
                grouped.setdefault(key, []).append(value)
        if not grouped:
            return
        self.version += 1
        for key, values in grouped.items():
            if self.channels[key].update(values):
                self.versions[key] = self.version

    def output_values(self) -> Any:
        """Return the current values of the output keys, as a "values" chunk shows them."""
        keys = self.output_keys
        if isinstance(keys, str):
            channel = self.channels[keys]
            return channel.get() if channel.is_available() else None
        return self.topology.read_values(self.channels, keys)

    def observer_trace(self) -> dict[str, str] | None:
        """Return where this run is in telemetry, for the checkpoints it writes."""
        return self.observer.trace_reference(self.run)

    def _emit_checkpoint(self, tasks: list[Task] | None = None) -> None:
        # the current checkpoint with the tasks planned from it, for "checkpoints" and "debug"
        persistence = self.persistence
        if persistence is None or not (self.wants("checkpoints") or self.wants("debug")):
            return
        if tasks is None:
            tasks = self._plan(self.step + 1)
        payload = persistence.payload(cast("RunLoop", self), tasks)
        if self.wants("checkpoints"):
            self._emit("checkpoints", payload)
        if self.wants("debug"):
            self._emit(
                "debug",
                {
                    "step": payload["metadata"]["step"],
                    "timestamp": utc_timestamp(),
                    "type": "checkpoint",
                    "payload": payload,
                },
            )

    def snapshot(self, *, apply_pending: bool = True) -> StateSnapshot | None:
        """Return the thread's state at the loaded checkpoint, or None without one."""
        persistence = self.persistence
        if persistence is None or persistence.saved is None:
            return None
        if persistence.saved.metadata.get("source") == "input":
            tasks = [self._start_task(None)]  # the input checkpoint's one task: applying the input
        else:
            tasks = self._plan(self.step + 1)
        return persistence.snapshot(cast("RunLoop", self), tasks, apply_pending=apply_pending)

    def preview_values(self, tasks: list[Task]) -> Any:
        """Return the output values as they would be with ``tasks``' writes applied."""
        preview = {key: channel.copy() for key, channel in self.channels.items()}
        self._apply(tasks, preview)
        current, self.channels = self.channels, preview
        try:
            return self.output_values()
        finally:
            self.channels = current

    def _task_id(self, name: str, path: tuple[Any, ...], step: int | None = None) -> str:
        persistence = self.persistence
        if persistence is None or persistence.checkpoint_id is None:
            # uuid-shaped: a random prefix per run and a counter (uuid4() per task costs a
            # system call, ~2.5 µs of a ~80 µs step)
            return f"{self._id_prefix}{next(self._id_counter):012x}"
        step = self.step if step is None else step
        return task_id_for(persistence.checkpoint_id, self.namespace, step, name, path)

    def _breakpoint(self) -> None:
        # a static breakpoint: LangGraph streams an empty interrupt and stops
        mark_breakpoint(self.versions, self.seen)
        self.interrupted = True
        if self.wants("updates"):
            self._emit("updates", {"__interrupt__": ()})

    def interrupt_scope(self, task: Task) -> InterruptScope:
        """Return what ``interrupt()`` calls in ``task``'s next attempt answer with."""
        parent = self.run.parent_task
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

    def _commit_interrupt(self, task: Task) -> None:
        # LangGraph streams each paused task's interrupts as an update, then the state
        # (the step's writes not applied) with them, then the task result
        interrupts = tuple(task.interrupts)
        self.interrupts.extend(interrupts)
        if self.persistence is not None:
            self.persistence.put_writes(task.id, [(INTERRUPT, list(interrupts))])
        if self.wants("updates"):
            self._emit("updates", {"__interrupt__": interrupts}, task)
        if self.wants("values"):
            values = self.output_values()
            self._emit("values", {**values, "__interrupt__": interrupts} if isinstance(values, dict) else values)
        if self.wants("tasks") or self.wants("debug"):
            payload: dict[str, Any] = {
                "id": task.id,
                "name": task.name,
                "error": None,
                "result": {},
                "interrupts": [interrupt_payload(i) for i in interrupts],
            }
            self._emit_task_event(payload, task, result=True)
        self.observer.task_ended(task, None)

    def _keep_writes(self, task: Task, error: BaseException | None) -> None:
        # saved as the task finishes: a resume (or a restart after a crash) reuses them
        assert self.persistence is not None
        if error is None:
            self.persistence.put_writes(task.id, list(task.writes))
        elif isinstance(error, Exception):
            try:
                self.persistence.put_writes(task.id, [(ERROR, error)])
            except Exception:  # an unpicklable error must not hide the node's own
                pass

"""Human-in-the-loop pauses: ``interrupt()``, static breakpoints, and resuming with a value.

``interrupt(value)`` inside a node raises :class:`~otelstream.errors.GraphInterrupt` the
first time; the run ends with the interrupt in its stream. Resuming the thread with
``Command(resume=answer)`` runs the node again from its start, and this time the same
``interrupt()`` call returns ``answer``. A node may interrupt several times: the answers
are kept (as pending writes of the checkpoint) and handed back in call order.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from otelstream.engine.channels import MISSING
from otelstream.engine.persistence import BREAKPOINT, interrupt_id
from otelstream.engine.runtime import current_task_context
from otelstream.engine.types import Interrupt
from otelstream.errors import GraphInterrupt

if TYPE_CHECKING:
    from otelstream.engine.events import Task

__all__ = ["InterruptScope", "ParentResume", "PendingResume", "interrupt", "mark_breakpoint", "should_interrupt"]

MULTIPLE_INTERRUPTS = (
    "When there are multiple pending interrupts, you must specify the interrupt id when resuming. "
    "Docs: https://docs.langchain.com/oss/python/langgraph/interrupts#handling-multiple-interrupts."
)


class ParentResume:
    """A resumed subgraph's answers: those of the task that runs it, one level up."""

    def __init__(self, scope: InterruptScope) -> None:
        """Answer from ``scope``, the calling task's."""
        self._scope = scope

    def take(self, task: Task) -> tuple[bool, Any]:
        """Return the calling task's next unmatched answer, if there is one."""
        pending = self._scope.pending
        return pending.take(self._scope.task) if pending is not None else (False, None)


class PendingResume:
    """The answers a run was resumed with, waiting for the ``interrupt()`` calls they answer.

    A plain ``Command(resume=x)`` answers the next unanswered ``interrupt()`` of any task;
    a mapping answers the tasks whose interrupts have those ids.
    """

    def __init__(self, resume: Any, paused: Mapping[str, tuple[Interrupt, ...]]) -> None:
        """Match ``resume`` to the ``paused`` tasks (task id -> its interrupts).

        Raises:
            RuntimeError: several tasks are paused and ``resume`` is not a mapping of
                interrupt ids (LangGraph's message).
        """
        self._lock = threading.Lock()
        self._by_task: dict[str, Any] = {}
        self._any: Any = MISSING
        ids = {intr.id: task_id for task_id, interrupts in paused.items() for intr in interrupts}
        if isinstance(resume, Mapping) and resume and all(key in ids for key in resume):
            for key, value in resume.items():
                self._by_task[ids[key]] = value
        elif resume is not MISSING:
            if len(paused) > 1:
                raise RuntimeError(MULTIPLE_INTERRUPTS)
            self._any = resume

    def take(self, task: Task) -> tuple[bool, Any]:
        """Return ``(True, answer)`` for ``task``'s next unanswered interrupt, if there is one."""
        with self._lock:
            if task.id in self._by_task:
                return True, self._by_task.pop(task.id)
            if self._any is not MISSING:
                value, self._any = self._any, MISSING
                return True, value
            return False, None


@dataclasses.dataclass(eq=False)
class InterruptScope:
    """What the ``interrupt()`` calls of one task attempt return.

    Attributes:
        task: The task (for a graph invoked inside a node, the calling task at the root).
        answers: The answers given so far, in call order (kept across resumes).
        pending: The run's unmatched answers.
        on_answer: Saves the answers when one is taken (a pending write of the task).
        calls: How many times the attempt called ``interrupt()``.
    """

    task: Task
    answers: list[Any]
    pending: PendingResume | ParentResume | None
    on_answer: Callable[[Task, list[Any]], None]
    calls: int = 0

    def next_answer(self) -> tuple[bool, Any]:
        """Return the answer to the attempt's next ``interrupt()`` call, if there is one."""
        index = self.calls
        self.calls += 1
        if index < len(self.answers):
            return True, self.answers[index]
        if self.pending is None:
            return False, None
        found, value = self.pending.take(self.task)
        if found:
            self.answers.append(value)
            self.on_answer(self.task, list(self.answers))
        return found, value


def interrupt(value: Any) -> Any:
    """Pause the run and show ``value`` to a human; return their answer once resumed.

    The first call raises :class:`~otelstream.errors.GraphInterrupt`, which the engine
    catches: the stream ends with ``{'__interrupt__': (Interrupt(value=..., id=...),)}``.
    Resuming the thread with ``Command(resume=answer)`` re-runs the node from its start,
    and this call returns ``answer``. Resuming needs a checkpointer and a ``thread_id``.

    Raises:
        GraphInterrupt: no answer is available yet (the engine handles it).
        RuntimeError: called outside a running node (LangGraph's message).
    """
    ctx = current_task_context()
    if ctx is None:
        raise RuntimeError("Called get_config outside of a runnable context")
    scope: InterruptScope | None = ctx.task.interrupt_scope
    index = 0
    if scope is not None:
        index = scope.calls
        found, answer = scope.next_answer()
        if found:
            return answer
    raise GraphInterrupt((Interrupt(value=value, id=interrupt_id(ctx.task.checkpoint_ns, index)),))


def should_interrupt(
    nodes: Iterable[str] | str, versions: Mapping[str, int], seen: Mapping[str, Mapping[str, int]], tasks: list[Task]
) -> bool:
    """Return whether a static breakpoint on ``nodes`` fires for ``tasks`` (LangGraph's rule).

    It fires when a channel changed since the last breakpoint and one of the tasks is a
    node in ``nodes`` (``"*"`` for all), so resuming does not stop at the same place again.
    """
    last = seen.get(BREAKPOINT, {})
    if not any(version > last.get(channel, 0) for channel, version in versions.items()):
        return False
    names = None if nodes == "*" else set(nodes)
    return any(names is None or task.name in names for task in tasks)


def mark_breakpoint(versions: Mapping[str, int], seen: dict[str, dict[str, int]]) -> None:
    """Record the current versions as seen by breakpoints: resuming passes this point."""
    seen[BREAKPOINT] = dict(versions)

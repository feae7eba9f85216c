"""A run's link to its checkpointer: load a thread, save each superstep, read pending writes.

The superstep loop owns the state; this module turns it into checkpoints and back, in
LangGraph's shapes (the ``"checkpoints"`` payload, ``StateSnapshot``), and keeps the
pending writes of the superstep in progress: what finished tasks wrote, what interrupted
tasks asked, what failed tasks raised, and the values interrupts were resumed with.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from otelstream.checkpoint.base import (
    ERROR,
    INTERRUPT,
    RESUME,
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointTuple,
    PendingWrite,
    checkpoint_address,
    new_checkpoint_id,
)
from otelstream.engine.channels import MISSING
from otelstream.engine.types import Interrupt

if TYPE_CHECKING:
    from otelstream.engine.algo import LoopState
    from otelstream.engine.events import Task

__all__ = [
    "BREAKPOINT",
    "Persistence",
    "PregelTask",
    "StateSnapshot",
    "interrupt_id",
    "interrupt_payload",
    "task_id_for",
]

BREAKPOINT = "__interrupt__"
"""The ``versions_seen`` entry recording the channel versions at the last static breakpoint."""

_SPECIAL = frozenset((ERROR, INTERRUPT, RESUME))
_TASK_IDS = uuid.UUID("6f74656c-7374-7265-616d-636b70747321")


class PregelTask(NamedTuple):
    """A task of a checkpoint, as ``get_state()`` reports it (LangGraph's fields)."""

    id: str
    name: str
    path: tuple[Any, ...]
    error: Any = None
    interrupts: tuple[Interrupt, ...] = ()
    state: Any = None
    result: Any = None


class StateSnapshot(NamedTuple):
    """A thread's state at one checkpoint, as ``get_state()`` returns it (LangGraph's fields)."""

    values: Any
    next: tuple[str, ...]
    config: dict[str, Any]
    metadata: dict[str, Any] | None
    created_at: str | None
    parent_config: dict[str, Any] | None
    tasks: tuple[PregelTask, ...]
    interrupts: tuple[Interrupt, ...]


def interrupt_id(checkpoint_ns: str, index: int = 0) -> str:
    """Return the id of the ``index``-th interrupt of the task at ``checkpoint_ns``.

    Task ids are stable across resumes, so interrupt ids are too: a resume can name them.
    """
    key = checkpoint_ns if index == 0 else f"{checkpoint_ns}|{index}"
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def task_id_for(checkpoint_id: str, namespace: tuple[str, ...], step: int, name: str, path: tuple[Any, ...]) -> str:
    """Return the id of a task planned from ``checkpoint_id``: the same when re-planned on resume."""
    return str(uuid.uuid5(_TASK_IDS, f"{checkpoint_id}|{'|'.join(namespace)}|{step}|{name}|{path!r}"))


def _public_configurable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (config.get("configurable") or {}).items() if not str(k).startswith("__pregel_")}


class Persistence:
    """Loads and saves one run's checkpoints on one thread and namespace."""

    def __init__(
        self,
        saver: BaseCheckpointSaver,
        config: dict[str, Any],
        state_keys: Collection[str],
        saved: CheckpointTuple | None = None,
        *,
        namespace: str | None = None,
        parents: dict[str, str] | None = None,
    ) -> None:
        """Find the thread's checkpoint ``config`` names (its latest by default), or use ``saved``.

        A subgraph keeps its checkpoints in the thread under its own ``namespace``
        (``child:<task id>``); ``parents`` maps each enclosing graph's namespace to the
        checkpoint it was at, as LangGraph's ``checkpoint_map`` does.

        Raises:
            CheckpointError: ``config`` names no ``thread_id``.
        """
        self.saver = saver
        self.thread_id, self.checkpoint_ns, _ = checkpoint_address(config)
        self.parents = dict(parents or {})
        if namespace is not None:
            self.checkpoint_ns = namespace
            config = {"configurable": {"thread_id": self.thread_id, "checkpoint_ns": namespace}}
        self.extra = _public_configurable(config)
        self.state_keys = frozenset(state_keys)
        self.saved: CheckpointTuple | None = saved if saved is not None else saver.get_tuple(config)
        self.config: dict[str, Any] | None = self.saved.config if self.saved is not None else None
        self.pending: list[PendingWrite] = list(self.saved.pending_writes) if self.saved is not None else []

    @property
    def checkpoint_id(self) -> str | None:
        """The id of the checkpoint the run is at (None before the first save)."""
        return self.config["configurable"]["checkpoint_id"] if self.config is not None else None

    # --- loading -----------------------------------------------------------------------

    def restore(self, state: LoopState) -> dict[str, str] | None:
        """Set ``state``'s channels, versions and step to the loaded checkpoint.

        Returns:
            Where the run that wrote the checkpoint is in telemetry, if it said.
        """
        assert self.saved is not None
        checkpoint = self.saved.checkpoint
        values = checkpoint["channel_values"]
        for key, channel in state.channels.items():
            if key in values:
                channel.restore(values[key])
        state.versions = dict(checkpoint["channel_versions"])
        state.seen = {node: dict(seen) for node, seen in checkpoint["versions_seen"].items()}
        state.version = max(state.versions.values(), default=0)
        state.step = int(self.saved.metadata.get("step", -1))
        return checkpoint.get("trace")

    def writes_of(self, task_id: str) -> list[tuple[str, Any]]:
        """Return the pending writes ``task_id`` made to state channels (a finished task)."""
        return [(channel, value) for tid, channel, value in self.pending if tid == task_id and channel not in _SPECIAL]

    def result_of(self, task_id: str) -> dict[str, Any] | None:
        """Return what a finished task wrote to state keys, as ``get_state()`` shows it."""
        writes = self.writes_of(task_id)
        if not writes:
            return None
        return {channel: value for channel, value in writes if channel in self.state_keys}

    def special(self, task_id: str, channel: str) -> Any:
        """Return the last special write (``__interrupt__``, ``__resume__``, ``__error__``) of a task."""
        found = MISSING
        for tid, chan, value in self.pending:
            if tid == task_id and chan == channel:
                found = value
        return found

    def interrupted_tasks(self) -> dict[str, tuple[Interrupt, ...]]:
        """Return the tasks paused by ``interrupt()`` and not finished since, with their interrupts."""
        paused: dict[str, tuple[Interrupt, ...]] = {}
        for tid, channel, value in self.pending:
            if channel == INTERRUPT and value:
                paused[tid] = tuple(value)
        return {tid: intr for tid, intr in paused.items() if not self.writes_of(tid)}

    # --- saving ------------------------------------------------------------------------

    def save(self, state: LoopState, source: str, trace: dict[str, str] | None) -> dict[str, Any]:
        """Save ``state`` as a new checkpoint at its step; return the checkpoint's config.

        Args:
            state: The channels and versions to save.
            source: LangGraph's ``metadata["source"]``: ``"input"`` or ``"loop"``.
            trace: Where the saving run is in telemetry (kept for the run that continues).
        """
        parent = self.config
        checkpoint: Checkpoint = {
            "v": 1,
            "id": new_checkpoint_id(),
            "ts": datetime.now(timezone.utc).isoformat(),
            "channel_values": {
                key: saved for key, channel in state.channels.items() if (saved := channel.checkpoint()) is not MISSING
            },
            "channel_versions": dict(state.versions),
            "versions_seen": {node: dict(seen) for node, seen in state.seen.items()},
            "trace": trace,
        }
        metadata = {"source": source, "step": state.step, "parents": dict(self.parents)}
        address = parent or {"configurable": {"thread_id": self.thread_id, "checkpoint_ns": self.checkpoint_ns}}
        self.config = self.saver.put(address, checkpoint, metadata)
        self.pending = []
        self.saved = CheckpointTuple(self.config, checkpoint, metadata, parent, [])
        return self.config

    def child_parents(self) -> dict[str, str]:
        """Return the ``parents`` of a subgraph run by a task of this run."""
        assert self.checkpoint_id is not None
        return {**self.parents, self.checkpoint_ns: self.checkpoint_id}

    def put_writes(self, task_id: str, writes: list[tuple[str, Any]]) -> None:
        """Keep a task's writes as pending writes of the current checkpoint."""
        assert self.config is not None
        self.saver.put_writes(self.config, writes, task_id)
        self.pending.extend((task_id, channel, value) for channel, value in writes)

    def keep_task_writes(self, task: Task, error: BaseException | None) -> None:
        """Keep what a finished task wrote, or the error it failed with: a resume reuses them."""
        if error is None:
            self.put_writes(task.id, list(task.writes))
        elif isinstance(error, Exception):
            try:
                self.put_writes(task.id, [(ERROR, error)])
            except Exception:  # an unpicklable error must not hide the node's own
                pass

    # --- reporting ---------------------------------------------------------------------

    def payload(self, values: Any, tasks: Iterable[Task]) -> dict[str, Any]:
        """Return the ``"checkpoints"`` chunk of the current checkpoint (its ``values``), ``tasks`` planned next."""
        assert self.saved is not None
        configurable = {**self.extra, **self.saved.config["configurable"]}
        configurable = {
            "checkpoint_ns": configurable.pop("checkpoint_ns"),
            "thread_id": configurable.pop("thread_id"),
            **configurable,
        }
        parent_config = self.saved.parent_config
        if self.parents:
            # a subgraph's checkpoints name the checkpoints of the graphs around it
            checkpoint_map = {**self.parents, self.checkpoint_ns: self.checkpoint_id}
            configurable = {**configurable, "checkpoint_map": checkpoint_map}
            configurable["checkpoint_id"] = configurable.pop("checkpoint_id")
            if parent_config is not None:
                parent_id = parent_config["configurable"]["checkpoint_id"]
                parent_map = {**self.parents, self.checkpoint_ns: parent_id}
                parent_config = {"configurable": {**parent_config["configurable"], "checkpoint_map": parent_map}}
        task_list = list(tasks)
        return {
            "config": {"configurable": configurable},
            "parent_config": parent_config,
            "values": values,
            "metadata": dict(self.saved.metadata),
            "next": [t.name for t in task_list],
            "tasks": [self._task_entry(t) for t in task_list],
        }

    def _task_entry(self, task: Task) -> dict[str, Any]:
        state = _subgraph_state(task, self.thread_id)
        error = self.special(task.id, ERROR)
        if error is not MISSING and not self.writes_of(task.id):
            return {"id": task.id, "name": task.name, "error": repr(error), "state": state}
        interrupts = self.special(task.id, INTERRUPT)
        entry: dict[str, Any] = {
            "id": task.id,
            "name": task.name,
            "interrupts": tuple(interrupt_payload(i) for i in interrupts) if interrupts is not MISSING else (),
            "state": state,
        }
        result = self.result_of(task.id)
        if result is not None:
            entry["result"] = result
        return entry

    def snapshot(
        self, tasks: list[Task], values_with: Callable[[list[Task]], Any], *, apply_pending: bool
    ) -> StateSnapshot:
        """Return the current checkpoint as ``get_state()`` reports it, ``tasks`` planned next.

        ``values_with(finished)`` returns the output values with those tasks' writes applied.
        With ``apply_pending`` (``get_state()``, not the history) the values show the writes
        of tasks that finished after the checkpoint, and ``next`` leaves those tasks out.
        """
        assert self.saved is not None
        pregel_tasks = []
        interrupts: list[Interrupt] = []
        for task in tasks:
            error = self.special(task.id, ERROR)
            paused = self.special(task.id, INTERRUPT)
            task_interrupts = tuple(paused) if paused is not MISSING else ()
            interrupts.extend(task_interrupts)
            pregel_tasks.append(
                PregelTask(
                    id=task.id,
                    name=task.name,
                    path=task.path,
                    error=repr(error) if error is not MISSING else None,
                    interrupts=task_interrupts,
                    state=_subgraph_state(task, self.thread_id),
                    result=self.result_of(task.id),
                )
            )
        finished = [t for t in tasks if self.writes_of(t.id)] if apply_pending else []
        for task in finished:
            task.writes = self.writes_of(task.id)
        return StateSnapshot(
            values=values_with(finished),
            next=tuple(t.name for t in tasks if t not in finished),
            config=self.saved.config,
            metadata=dict(self.saved.metadata),
            created_at=self.saved.checkpoint["ts"],
            parent_config=self.saved.parent_config,
            tasks=tuple(pregel_tasks),
            interrupts=tuple(interrupts),
        )


def interrupt_payload(interrupt: Interrupt) -> dict[str, Any]:
    """Return an interrupt as LangGraph's task and checkpoint payloads show it."""
    return {"value": interrupt.value, "id": interrupt.id, "response_schema": interrupt.response_schema}


def _subgraph_state(task: Task, thread_id: str) -> Any:
    if task.node is not None and task.node.is_subgraph:
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": task.checkpoint_ns}}
    return None

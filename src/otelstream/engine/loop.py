"""The superstep loop: plan (``tick``), run (the runner), apply (``after_tick``).

One :class:`RunLoop` runs one graph execution. The driver and the runner drive it::

    loop.start(input)                  # input phase: one "values" chunk with the input
    while loop.tick():                 # plan the next superstep's tasks
        for task in loop.tasks:        # the runner, on any thread, in parallel:
            loop.record_result(task, node(task.input))   # writes, edges, branches
            loop.commit_task(task)     # or loop.fail_task(task, error)
        loop.after_tick()              # apply writes in a deterministic order

Chunks leave only through the observer, at the moments LangGraph emits them: task starts
when a step is planned, each task's update as it finishes (completion order), one values
chunk after the step when an output key was written.
"""

from __future__ import annotations

import inspect
import itertools
import os
import threading
import uuid
from typing import Any

from otelstream.checkpoint.base import BaseCheckpointSaver
from otelstream.engine.channels import BaseChannel, EphemeralValue, Topic, troubleshooting
from otelstream.engine.compiled import PULL, PUSH, TASK_ID_KEY, TASKS, CompiledStateGraph
from otelstream.engine.durable import DurableSteps, utc_timestamp
from otelstream.engine.events import RunInfo, RunObserver, StreamEvent, Task
from otelstream.engine.interrupts import (
    ParentResume,
    PendingResume,
    should_interrupt,
)
from otelstream.engine.persistence import Persistence
from otelstream.engine.types import START, Command, Interrupt, StreamMode
from otelstream.engine.writes import (
    TaskWrites,
    add_task_note,
    call_path,
    result_value,
    update_value,
    updates_of,
)
from otelstream.errors import ErrorCode, GraphRecursionError

__all__ = ["DEFAULT_RECURSION_LIMIT", "RunLoop"]

DEFAULT_RECURSION_LIMIT = 25

# user metadata keys LangGraph copies from configurable into a task's metadata
_CONFIGURABLE_METADATA = (
    "thread_id",
    "checkpoint_id",
    "checkpoint_ns",
    "task_id",
    "run_id",
    "assistant_id",
    "graph_id",
)
# metadata keys LangGraph leaves out of "tasks" payloads
_EXCLUDED_METADATA = frozenset(
    (
        "thread_id",
        "checkpoint_id",
        "checkpoint_ns",
        "checkpoint_map",
        "langgraph_step",
        "langgraph_node",
        "langgraph_triggers",
        "langgraph_path",
        "langgraph_checkpoint_ns",
    )
)


def _sort_key(task: Task) -> tuple[Any, ...]:
    # pull tasks by node name, then push tasks by Send order: independent of completion order
    return (0, task.name, 0) if task.path[0] == PULL else (1, "", task.path[1])


class RunLoop(TaskWrites, DurableSteps):
    """Runs one graph execution superstep by superstep; see the module docstring."""

    def __init__(
        self,
        graph: CompiledStateGraph,
        run: RunInfo,
        observer: RunObserver,
        *,
        recursion_limit: int = DEFAULT_RECURSION_LIMIT,
        checkpointer: BaseCheckpointSaver | None = None,
        interrupt_before: list[str] | str = (),  # type: ignore[assignment]
        interrupt_after: list[str] | str = (),  # type: ignore[assignment]
    ) -> None:
        """Prepare a run of ``graph`` reporting to ``observer``.

        With a ``checkpointer`` the run continues the thread ``run.config`` names: the
        thread's latest checkpoint is loaded here, before the run starts.

        Raises:
            CheckpointError: a checkpointer is set and the config names no thread.
        """
        self.graph = graph
        self.topology = graph.topology
        self.run = run
        self.observer = observer
        self.recursion_limit = recursion_limit
        self.channels: dict[str, BaseChannel] = self.topology.new_channels()
        # channels an empty update can clear, and those of them the last step wrote (None:
        # unknown, for a new or restored run): a step clears only what the previous one wrote
        self._clearing = frozenset(k for k, c in self.channels.items() if isinstance(c, (EphemeralValue, Topic)))
        self._written_clearing: set[str] | None = None
        # the channels the last applied step changed; None until a step was applied
        self.changed: set[str] | None = None
        self.versions: dict[str, int] = {}
        self.seen: dict[str, dict[str, int]] = {}
        self.version = 0
        self.step = 0
        self.tasks: list[Task] = []
        self.namespace = run.namespace
        # "values" and "updates" show the output keys (invoke() passes the output schema's,
        # as LangGraph does); task results show every state key
        output_keys = getattr(graph, "stream_output_keys", None)
        self.output_keys: str | list[str] = output_keys if output_keys is not None else list(self.topology.fields)
        self._output_set = frozenset([output_keys] if isinstance(output_keys, str) else self.output_keys)
        # a task's outcome chunks (update, task result) stay together, as LangGraph's
        # commit emits them, even when another task finishes at the same moment
        self._commit_lock = threading.Lock()
        self._committed: set[str] = set()
        # task ids of a run without checkpoints: uuid-shaped, unique across runs by the prefix
        self._id_prefix = str(uuid.uuid4())[:24]
        self._id_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))
        self.muted = False
        self.start_step = 0
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        # set when the run paused: a task called interrupt(), or a static breakpoint fired
        self.interrupted = False
        self.interrupts: list[Interrupt] = []
        self.resume: PendingResume | ParentResume | None = None
        self.previous_trace: dict[str, str] | None = None
        self.persistence: Persistence | None = None
        parent = run.parent_task
        if checkpointer is not None:
            self.persistence = Persistence(checkpointer, run.config, self.topology.fields)
        elif parent is not None and parent.persistence is not None:
            # a subgraph of a checkpointed run checkpoints under its own namespace
            above: Persistence = parent.persistence
            self.persistence = Persistence(
                above.saver,
                run.config,
                self.topology.fields,
                namespace="|".join(self.namespace),
                parents=above.child_parents(),
            )
        if self.persistence is not None:
            if self.persistence.saved is not None:
                self.persistence.restore(self)
                run.previous_trace = self.previous_trace

    # --- emitting -------------------------------------------------------------------------

    def wants(self, mode: StreamMode) -> bool:
        """Return whether anyone consumes ``mode`` chunks of this run."""
        return not self.muted and self.observer.wants(self.namespace, mode)

    def _emit(self, mode: StreamMode, payload: Any, task: Task | None = None) -> None:
        node = task.name if task is not None else None
        self.observer.emit(StreamEvent(self.namespace, mode, payload, node), self.run, task)

    def _emit_task_event(self, payload: dict[str, Any], task: Task, *, result: bool) -> None:
        if self.wants("tasks"):
            self._emit("tasks", payload, task)
        if self.wants("debug"):
            kind = "task_result" if result else "task"
            self._emit(
                "debug",
                {"step": self.step, "timestamp": utc_timestamp(), "type": kind, "payload": payload},
                task,
            )

    def _emit_values(self) -> None:
        if self.wants("values"):
            keys = self.output_keys
            if isinstance(keys, str):
                channel = self.channels[keys]
                self._emit("values", channel.get() if channel.is_available() else None)
            else:
                self._emit("values", self.topology.read_values(self.channels, keys))

    # --- input ----------------------------------------------------------------------------

    def start(self, input: Any) -> None:
        """Apply the input (the ``__start__`` step) and emit the first values chunk.

        Raises:
            EmptyInputError: ``input`` is None (resuming needs a checkpointer).
            InvalidUpdateError: ``input`` is not a mapping of state keys.
        """
        from otelstream.errors import EmptyInputError

        parent = self.run.parent_task
        resuming = (
            input is None
            or (isinstance(input, Command) and input.resume is not None)
            or (parent is not None and parent.resuming)  # a subgraph resumes with its caller
        )
        persistence = self.persistence
        if resuming and persistence is not None and persistence.saved is not None:
            self._resume(input)
            return
        if input is None:
            raise EmptyInputError("Received no input for __start__")
        if isinstance(input, Command) and input.resume is not None:
            raise EmptyInputError("Received Command(resume=...) but the thread has nothing to resume")
        if persistence is not None:
            # the input checkpoint comes before step 0 on a new thread, after the last one else
            self.step = (self.step if persistence.saved is not None else -2) + 1
            persistence.save(self, "input")
        start_task = self._start_task(input)
        try:
            if isinstance(input, Command):
                writes, gotos = self._command_writes(input, START)
            else:
                writes = updates_of(input, self.topology.input_keys)
                gotos = []
            out = writes + self._goto_writes(START, gotos) + self._edge_writes(START)
            for branch, state in self._branch_inputs(START, writes, input):
                out.extend(self._branch_writes(START, branch, call_path(branch, state, self.run.config)))
            start_task.writes = out
        except Exception as exc:
            # the input is mapped by LangGraph's hidden __start__ task: its errors say so
            add_task_note(exc, start_task)
            raise
        if persistence is not None:
            self._emit_checkpoint([start_task])
            persistence.put_writes(start_task.id, list(start_task.writes))
        self._apply([start_task])
        if persistence is not None:
            self.step += 1
            persistence.save(self, "loop")
            self._emit_checkpoint()
        self.start_step = self.step

    def _start_task(self, input: Any) -> Task:
        # LangGraph's hidden __start__ task, which maps the input to state writes
        path = (PULL, START)
        return Task(
            id=self._task_id(START, path),
            name=START,
            path=path,
            input=input,
            triggers=(START,),
            node=None,  # type: ignore[arg-type]  # the input task runs no node code
            step=self.step,
            namespace=self.namespace,
            graph_name=self.topology.name,
            lazy_config=self.run.config,
        )

    # --- plan -----------------------------------------------------------------------------

    def tick(self) -> bool:
        """Plan the next superstep; return False when the run is over.

        Raises:
            GraphRecursionError: ``recursion_limit`` supersteps have already run.
        """
        if self.interrupted:
            return False
        self.step += 1
        if self.step > self.start_step + self.recursion_limit:
            raise GraphRecursionError(
                troubleshooting(
                    f"Recursion limit of {self.recursion_limit} reached without hitting a stop "
                    "condition. You can increase the limit by setting the `recursion_limit` "
                    "config key.",
                    ErrorCode.GRAPH_RECURSION_LIMIT,
                )
            )
        tasks = self._plan(self.step)
        self.tasks = tasks
        if self.interrupt_before and should_interrupt(self.interrupt_before, self.versions, self.seen, tasks):
            self._breakpoint()
            return False
        persistence = self.persistence
        if persistence is not None:
            paused = persistence.interrupted_tasks()
            for task in tasks:
                writes = persistence.writes_of(task.id)
                if writes:  # finished before the run stopped: reuse its writes
                    task.writes, task.cached = writes, True
                task.resuming = task.id in paused
        if self.wants("tasks") or self.wants("debug"):
            for task in tasks:
                payload: dict[str, Any] = {
                    "id": task.id,
                    "name": task.name,
                    "input": task.input,
                    "triggers": task.triggers,
                }
                metadata = self._task_metadata(task)
                if metadata:
                    payload["metadata"] = metadata
                self._emit_task_event(payload, task, result=False)
        for task in tasks:
            if task.cached and self.wants("updates"):
                state_writes = [(k, v) for k, v in task.writes if k in self.topology.fields]
                update = {task.name: update_value(state_writes, self.output_keys), "__metadata__": {"cached": True}}
                self._emit("updates", update, task)
        return bool(tasks)

    @property
    def runnable(self) -> list[Task]:
        """The planned tasks that must run (not the ones whose writes a resume reuses)."""
        return [task for task in self.tasks if not task.cached]

    def _plan(self, step: int) -> list[Task]:
        # the tasks of superstep ``step``: Send packets in order, then triggered nodes by name
        saved_step, self.step = self.step, step
        try:
            tasks: list[Task] = []
            sends = self.channels[TASKS]
            if sends.is_available():
                for index, packet in enumerate(sends.get()):
                    tasks.append(self._new_task(packet.node, (PUSH, index, False), packet.arg, ("__pregel_push",)))
            changed = self.changed
            if changed is None:  # a new or restored run: every node may be due
                candidates: Any = sorted(self.topology.nodes)
            else:
                triggered_by = self.topology.triggered_by
                candidates = sorted({node for chan in changed for node in triggered_by.get(chan, ())})
            for name in candidates:
                if self._triggered(name):
                    node = self.topology.nodes[name]
                    state = self.topology.read_state(self.channels, node.input_schema)
                    tasks.append(self._new_task(name, (PULL, name), state, self.topology.triggers[name]))
            return tasks
        finally:
            self.step = saved_step

    def _triggered(self, name: str) -> bool:
        seen = self.seen.get(name, {})
        for chan in self.topology.triggers[name]:
            if self.channels[chan].is_available() and self.versions.get(chan, 0) > seen.get(chan, 0):
                return True
        return False

    def _new_task(self, name: str, path: tuple[Any, ...], input: Any, triggers: tuple[str, ...]) -> Task:
        task_id = self._task_id(name, path)
        namespace = (*self.namespace, f"{name}:{task_id}")
        node = self.topology.nodes[name]
        step = self.step
        return Task(
            id=task_id,
            name=name,
            path=path,
            input=input,
            triggers=triggers,
            node=node,
            step=step,
            namespace=namespace,
            graph_name=self.topology.name,
            lazy_config=lambda: self._task_config(task_id, name, path, triggers, namespace, step),
            persistence=self.persistence,
        )

    def _task_config(
        self,
        task_id: str,
        name: str,
        path: tuple[Any, ...],
        triggers: tuple[str, ...],
        namespace: tuple[str, ...],
        step: int,
    ) -> dict[str, Any]:
        # built on first use (the node asks for its config, a nested graph or an LLM call
        # inherits it, a "tasks" chunk shows its metadata): most nodes never need it
        run_config = self.run.config
        configurable = run_config.get("configurable", {})
        # the key order is LangGraph's: user (and inherited) metadata, the configurable keys
        # LangGraph propagates, the subgraph's checkpoint_ns, langgraph_*, node metadata
        metadata = dict(run_config.get("metadata", {}))
        for key in _CONFIGURABLE_METADATA:
            if key not in metadata and configurable.get(key):
                metadata[key] = configurable[key]
        parent = self.run.parent_task
        if parent is not None and "checkpoint_ns" not in metadata:
            # the calling task's namespace: without the numbered segment of a repeated call
            metadata["checkpoint_ns"] = parent.checkpoint_ns
        metadata.update(
            langgraph_step=step,
            langgraph_node=name,
            langgraph_triggers=triggers,
            langgraph_path=path,
            langgraph_checkpoint_ns="|".join(namespace),
        )
        node = self.topology.nodes[name]
        if node.metadata:
            metadata.update(node.metadata)
        return {
            **run_config,
            "metadata": metadata,
            "tags": list(run_config.get("tags", [])),
            # the task id marks a config handed to nested graph calls as a task's config
            "configurable": {**configurable, TASK_ID_KEY: task_id},
        }

    def _task_metadata(self, task: Task) -> dict[str, Any]:
        # LangGraph forwards only user-meaningful metadata: its own bookkeeping keys are
        # redundant with the payload's fields and namespace
        metadata = {k: v for k, v in task.config["metadata"].items() if k not in _EXCLUDED_METADATA}
        if task.config.get("tags"):
            metadata["tags"] = list(task.config["tags"])
        return metadata

    # --- run ------------------------------------------------------------------------------

    def record_result(self, task: Task, result: Any) -> None:
        """Turn what ``task``'s node returned into its writes, edges and branches included.

        Called inside the task (routing functions are part of it, as in LangGraph: they see
        the task's config, and an error in one fails the task and may be retried). Writes
        accumulate on ``task.writes`` as LangGraph's writers run, so a failing routing
        function leaves the node's own writes there: :meth:`fail_task` streams them.

        Raises:
            InvalidUpdateError: the node returned something that is not a state update, or
                routed to an unknown node.
        """
        writes = self._begin_writes(task, result)
        for branch, state in self._branch_inputs(task.name, writes, result):
            task.writes.extend(self._branch_writes(task.name, branch, call_path(branch, state, task.config)))

    async def arecord_result(self, task: Task, result: Any) -> None:
        """Async version of :meth:`record_result`: routing functions may be ``async def``."""
        writes = self._begin_writes(task, result)
        for branch, state in self._branch_inputs(task.name, writes, result):
            chosen = call_path(branch, state, task.config, awaitable=True)
            if inspect.isawaitable(chosen):
                chosen = await chosen
            task.writes.extend(self._branch_writes(task.name, branch, chosen))

    def _begin_writes(self, task: Task, result: Any) -> list[tuple[str, Any]]:
        # the node's state writes with its Command gotos (one LangGraph writer: all or
        # nothing), then its plain edges; returns the state writes
        task.writes = []
        writes, gotos = self._result_writes(task, result)
        task.writes = writes + self._goto_writes(task.name, gotos)
        task.writes.extend(self._edge_writes(task.name))
        return writes

    def commit_task(self, task: Task) -> None:
        """Emit ``task``'s update and task result, once :meth:`record_result` succeeded."""
        with self._commit_lock:
            self._commit(task, None)

    def fail_task(self, task: Task, error: BaseException) -> None:
        """Record that ``task`` raised ``error`` (after its retries).

        Writes the task made before failing (a routing function raised after the node
        returned) are streamed as in LangGraph: an update, and the task result's ``result``.
        """
        task.error = error
        with self._commit_lock:
            self._commit(task, error)

    def _commit(self, task: Task, error: BaseException | None) -> None:
        self._committed.add(task.id)
        if task.interrupts and error is None:
            self._commit_interrupt(task)
            return
        if self.persistence is not None:
            self._keep_writes(task, error)
        state_writes = [(k, v) for k, v in task.writes if k in self.topology.fields]
        if (error is None or task.writes) and self.wants("updates"):
            self._emit("updates", {task.name: update_value(state_writes, self.output_keys)}, task)
        if self.wants("tasks") or self.wants("debug"):
            payload: dict[str, Any] = {
                "id": task.id,
                "name": task.name,
                "error": error,
                "result": result_value(state_writes),
                "interrupts": [],
            }
            self._emit_task_event(payload, task, result=True)
        self.observer.task_ended(task, error)

    # --- apply ----------------------------------------------------------------------------

    def after_tick(self) -> None:
        """Apply the step's writes and emit a values chunk if the state changed.

        With a checkpointer the step ends with a checkpoint. A step in which a task paused
        is not applied: the thread stays at the previous checkpoint (with the finished
        tasks' writes kept), and LangGraph's last values chunk shows those writes applied.

        Raises:
            BaseException: the first task error, in completion order, or an
                ``InvalidUpdateError`` for conflicting writes.
        """
        if self.interrupts:
            self.interrupted = True
            finished = [t for t in self.tasks if not t.interrupts and t.writes]
            if finished:
                preview = {key: channel.copy() for key, channel in self.channels.items()}
                self._apply(finished, preview)
            return
        self._apply(self.tasks)
        if self.persistence is not None:
            self.persistence.save(self, "loop")
            self._emit_checkpoint()
        if self.interrupt_after and should_interrupt(self.interrupt_after, self.versions, self.seen, self.tasks):
            self._breakpoint()

    def _apply(self, tasks: list[Task], preview: dict[str, BaseChannel] | None = None) -> None:
        # ``preview``: apply to these copies of the channels, only to emit the values chunk
        if preview is not None:
            saved = (self.channels, self.versions, self.seen, self.version, self.changed, self._written_clearing)
            self.channels, self.versions, self.seen = preview, dict(self.versions), {}
            try:
                self._apply(tasks)
            finally:
                (
                    self.channels,
                    self.versions,
                    self.seen,
                    self.version,
                    self.changed,
                    self._written_clearing,
                ) = saved
            return
        tasks = sorted(tasks, key=_sort_key)
        for task in tasks:
            seen = self.seen.setdefault(task.name, {})
            for chan in task.triggers:
                if chan in self.versions:
                    seen[chan] = self.versions[chan]
        self.version += 1
        version = self.version
        changed: set[str] = set()
        for chan in {c for t in tasks for c in t.triggers}:
            if chan in self.channels and self.channels[chan].consume():
                self.versions[chan] = version
                changed.add(chan)
        grouped: dict[str, list[Any]] = {}
        for task in tasks:
            for chan, value in task.writes:
                grouped.setdefault(chan, []).append(value)
        updated: set[str] = set()
        for chan, values in grouped.items():
            if self.channels[chan].update(values):
                self.versions[chan] = version
                updated.add(chan)
        written = self._written_clearing
        for chan in self._clearing if written is None else written:
            channel = self.channels[chan]
            if chan not in updated and channel.is_available() and channel.update(()):
                self.versions[chan] = version
                changed.add(chan)
        self._written_clearing = updated & self._clearing
        self.changed = changed | updated
        # LangGraph emits values when an output key was both written and changed
        if any(key in updated and key in grouped for key in self._output_set):
            self._emit_values()

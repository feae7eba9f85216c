"""The superstep loop: plan (``tick``), run (the runner), apply (``after_tick``).

One :class:`RunLoop` runs one graph execution. The driver and the runner drive it::

    loop.start(input)                  # input phase: one "values" chunk with the input
    while loop.tick():                 # plan the next superstep's tasks
        for task in loop.tasks:        # the runner, on any thread, in parallel:
            loop.record_result(task, node(task.input))   # writes, edges, branches
            loop.commit_task(task)     # or loop.fail_task(task, error)
        loop.after_tick()              # apply writes in a deterministic order

The loop receives the graph's :class:`~otelstream.engine.topology.Topology`, never the
compiled graph. Its state is one :class:`~otelstream.engine.algo.LoopState`; the algorithms
over it are free functions (:mod:`~otelstream.engine.algo`, :mod:`~otelstream.engine.writes`);
checkpoints and interrupts are handled by a composed :class:`~otelstream.engine.durable.Pauses`.

Chunks leave only through the observer, at the moments LangGraph emits them: task starts
when a step is planned, each task's update as it finishes (completion order), one values
chunk after the step when an output key was written.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

from otelstream.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from otelstream.engine import writes as _writes
from otelstream.engine.algo import LoopState, apply_update, apply_writes, due_nodes
from otelstream.engine.channels import EphemeralValue, Topic, troubleshooting
from otelstream.engine.durable import Pauses
from otelstream.engine.emitter import RunEmitter
from otelstream.engine.events import RunInfo, RunObserver, Task
from otelstream.engine.interrupts import InterruptScope, mark_breakpoint, should_interrupt
from otelstream.engine.persistence import Persistence, StateSnapshot
from otelstream.engine.tasks import TaskIds, task_config, task_metadata
from otelstream.engine.topology import PULL, PUSH, TASKS, Topology
from otelstream.engine.types import START, Command, Interrupt
from otelstream.engine.writes import add_task_note, call_path, result_value, update_value, updates_of
from otelstream.errors import EmptyInputError, ErrorCode, GraphRecursionError

__all__ = ["DEFAULT_RECURSION_LIMIT", "RunLoop"]

DEFAULT_RECURSION_LIMIT = 25


def _persistence(
    checkpointer: BaseCheckpointSaver | None, run: RunInfo, topology: Topology, saved: CheckpointTuple | None
) -> Persistence | None:
    if checkpointer is not None:
        return Persistence(checkpointer, run.config, topology.fields, saved)
    parent = run.parent_task
    if parent is not None and parent.persistence is not None:
        # a subgraph of a checkpointed run checkpoints under its own namespace
        above: Persistence = parent.persistence
        return Persistence(
            above.saver,
            run.config,
            topology.fields,
            namespace="|".join(run.namespace),
            parents=above.child_parents(),
        )
    return None


class RunLoop:
    """Runs one graph execution superstep by superstep; see the module docstring."""

    def __init__(
        self,
        topology: Topology,
        run: RunInfo,
        observer: RunObserver,
        *,
        output_keys: str | list[str] | None = None,
        recursion_limit: int = DEFAULT_RECURSION_LIMIT,
        checkpointer: BaseCheckpointSaver | None = None,
        saved: CheckpointTuple | None = None,
        interrupt_before: list[str] | str = (),  # type: ignore[assignment]
        interrupt_after: list[str] | str = (),  # type: ignore[assignment]
    ) -> None:
        """Prepare a run of the graph ``topology`` describes, reporting to ``observer``.

        Args:
            topology: The compiled graph's wiring.
            run: The run: its id, namespace, calling task and config.
            observer: Receives every chunk, task and run event.
            output_keys: The keys "values" and "updates" show (default: every state key).
            recursion_limit: Supersteps allowed before ``GraphRecursionError``.
            checkpointer: Continue the thread ``run.config`` names: its latest checkpoint
                (or ``saved``) is loaded here, before the run starts.
            saved: The checkpoint to load instead of the thread's latest.
            interrupt_before: Nodes to pause before (``"*"``: every node).
            interrupt_after: Nodes to pause after.

        Raises:
            CheckpointError: a checkpointer is set and the config names no thread.
        """
        self.topology = topology
        self.run = run
        self.observer = observer
        self.recursion_limit = recursion_limit
        channels = topology.new_channels()
        self.state = LoopState(
            channels=channels,
            versions={},
            seen={},
            clearing=frozenset(k for k, c in channels.items() if isinstance(c, (EphemeralValue, Topic))),
        )
        self.tasks: list[Task] = []
        # "values" and "updates" show the output keys (invoke() passes the output schema's,
        # as LangGraph does); task results show every state key
        self.output_keys: str | list[str] = output_keys if output_keys is not None else list(topology.fields)
        self._output_set = frozenset([output_keys] if isinstance(output_keys, str) else self.output_keys)
        # a task's outcome chunks (update, task result) stay together, as LangGraph's
        # commit emits them, even when another task finishes at the same moment
        self._commit_lock = threading.Lock()
        self._committed: set[str] = set()
        self.start_step = 0
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        # set when the run paused: a task called interrupt(), or a static breakpoint fired
        self.interrupted = False
        self.emitter = RunEmitter(observer, run)
        persistence = _persistence(checkpointer, run, topology, saved)
        self.pauses = Pauses(persistence, self.emitter, run.parent_task, self._commit_lock)
        self._ids = TaskIds(run.namespace, persistence)
        if persistence is not None and persistence.saved is not None:
            run.previous_trace = persistence.restore(self.state)

    @property
    def persistence(self) -> Persistence | None:
        """The run's checkpoints, if it has a checkpointer."""
        return self.pauses.persistence

    @property
    def interrupts(self) -> list[Interrupt]:
        """The interrupts the run paused with."""
        return self.pauses.interrupts

    @property
    def step(self) -> int:
        """The superstep the run is at."""
        return self.state.step

    def output_values(self) -> Any:
        """Return the current values of the output keys, as a "values" chunk shows them."""
        return self.topology.output_values(self.state.channels, self.output_keys)

    def _values_with(self, tasks: list[Task]) -> Any:
        # the output values as they would be with ``tasks``' writes applied
        if not tasks:
            return self.output_values()
        preview = self.state.preview()
        apply_writes(preview, tasks)
        return self.topology.output_values(preview.channels, self.output_keys)

    def _save(self, source: str) -> None:
        persistence = self.persistence
        assert persistence is not None
        persistence.save(self.state, source, self.observer.trace_reference(self.run))

    def _emit_checkpoint(self, tasks: list[Task] | None = None) -> None:
        step = self.state.step
        self.pauses.emit_checkpoint(self.output_values, lambda: self._plan(step + 1) if tasks is None else tasks)

    # --- input ----------------------------------------------------------------------------

    def start(self, input: Any) -> None:
        """Apply the input (the ``__start__`` step) and emit the first values chunk.

        Raises:
            EmptyInputError: ``input`` is None (resuming needs a checkpointer).
            InvalidUpdateError: ``input`` is not a mapping of state keys.
        """
        parent = self.run.parent_task
        resuming = (
            input is None
            or (isinstance(input, Command) and input.resume is not None)
            or (parent is not None and parent.resuming)  # a subgraph resumes with its caller
        )
        if resuming and self.pauses.can_resume:
            self._resume(input)
            return
        if input is None:
            raise EmptyInputError("Received no input for __start__")
        if isinstance(input, Command) and input.resume is not None:
            raise EmptyInputError("Received Command(resume=...) but the thread has nothing to resume")
        persistence = self.persistence
        state = self.state
        if persistence is not None:
            # the input checkpoint comes before step 0 on a new thread, after the last one else
            state.step = (state.step if persistence.saved is not None else -2) + 1
            self._save("input")
        start_task = self._start_task(input)
        topology = self.topology
        try:
            if isinstance(input, Command):
                writes, gotos = _writes.command_writes(topology, input, START)
            else:
                writes = updates_of(input, topology.input_keys)
                gotos = []
            out = writes + _writes.goto_writes(topology, START, gotos) + _writes.edge_writes(topology, START)
            for branch, branch_state in _writes.branch_inputs(topology, state.channels, START, writes, input):
                chosen = call_path(branch, branch_state, self.run.config)
                out.extend(_writes.branch_writes(topology, START, branch, chosen))
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
            state.step += 1
            self._save("loop")
            self._emit_checkpoint()
        self.start_step = state.step

    def _resume(self, input: Any) -> None:
        # continue the thread from its checkpoint: LangGraph re-emits the current values
        # (and checkpoint), and the next tick re-plans the interrupted superstep
        self.pauses.begin_resume(input)
        if isinstance(input, Command) and input.update is not None:
            # Command(resume=..., update=...): LangGraph writes the update into the state
            # before the paused step runs again; only those channels change
            apply_update(self.state, self.topology, input.update_items())
        mark_breakpoint(self.state.versions, self.state.seen)
        self.start_step = self.state.step
        if self.emitter.wants("values"):
            self.emitter.emit("values", self.output_values())
        self._emit_checkpoint()

    def _start_task(self, input: Any) -> Task:
        # LangGraph's hidden __start__ task, which maps the input to state writes
        path = (PULL, START)
        return Task(
            id=self._ids.next(START, path, self.state.step),
            name=START,
            path=path,
            input=input,
            triggers=(START,),
            node=None,  # type: ignore[arg-type]  # the input task runs no node code
            step=self.state.step,
            namespace=self.run.namespace,
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
        state = self.state
        state.step += 1
        if state.step > self.start_step + self.recursion_limit:
            raise GraphRecursionError(
                troubleshooting(
                    f"Recursion limit of {self.recursion_limit} reached without hitting a stop "
                    "condition. You can increase the limit by setting the `recursion_limit` "
                    "config key.",
                    ErrorCode.GRAPH_RECURSION_LIMIT,
                )
            )
        tasks = self._plan(state.step)
        self.tasks = tasks
        if self.interrupt_before and should_interrupt(self.interrupt_before, state.versions, state.seen, tasks):
            self._breakpoint()
            return False
        self.pauses.reuse_finished(tasks)
        emitter = self.emitter
        if emitter.wants("tasks") or emitter.wants("debug"):
            for task in tasks:
                payload: dict[str, Any] = {
                    "id": task.id,
                    "name": task.name,
                    "input": task.input,
                    "triggers": task.triggers,
                }
                metadata = task_metadata(task)
                if metadata:
                    payload["metadata"] = metadata
                emitter.task_event(payload, task, result=False, step=state.step)
        for task in tasks:
            if task.cached and emitter.wants("updates"):
                state_writes = [(k, v) for k, v in task.writes if k in self.topology.fields]
                update = {task.name: update_value(state_writes, self.output_keys), "__metadata__": {"cached": True}}
                emitter.emit("updates", update, task)
        return bool(tasks)

    @property
    def runnable(self) -> list[Task]:
        """The planned tasks that must run (not the ones whose writes a resume reuses)."""
        return [task for task in self.tasks if not task.cached]

    def _plan(self, step: int) -> list[Task]:
        # the tasks of superstep ``step``: Send packets in order, then triggered nodes by name
        topology = self.topology
        channels = self.state.channels
        tasks: list[Task] = []
        sends = channels[TASKS]
        if sends.is_available():
            for index, packet in enumerate(sends.get()):
                tasks.append(self._new_task(packet.node, (PUSH, index, False), packet.arg, ("__pregel_push",), step))
        for name in due_nodes(self.state, topology):
            node = topology.nodes[name]
            node_state = topology.read_state(channels, node.input_schema)
            tasks.append(self._new_task(name, (PULL, name), node_state, topology.triggers[name], step))
        return tasks

    def _new_task(self, name: str, path: tuple[Any, ...], input: Any, triggers: tuple[str, ...], step: int) -> Task:
        task_id = self._ids.next(name, path, step)
        namespace = (*self.run.namespace, f"{name}:{task_id}")
        node = self.topology.nodes[name]
        run = self.run
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
            lazy_config=lambda: task_config(
                run.config, run.parent_task, node, task_id, path, triggers, namespace, step
            ),
            persistence=self.persistence,
        )

    def _breakpoint(self) -> None:
        # a static breakpoint: LangGraph streams an empty interrupt and stops
        mark_breakpoint(self.state.versions, self.state.seen)
        self.interrupted = True
        if self.emitter.wants("updates"):
            self.emitter.emit("updates", {"__interrupt__": ()})

    # --- run ------------------------------------------------------------------------------

    def interrupt_scope(self, task: Task) -> InterruptScope:
        """Return what ``interrupt()`` calls in ``task``'s next attempt answer with."""
        return self.pauses.interrupt_scope(task)

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
        topology = self.topology
        writes = self._begin_writes(task, result)
        for branch, state in _writes.branch_inputs(topology, self.state.channels, task.name, writes, result):
            chosen = call_path(branch, state, task.config)
            task.writes.extend(_writes.branch_writes(topology, task.name, branch, chosen))

    async def arecord_result(self, task: Task, result: Any) -> None:
        """Async version of :meth:`record_result`: routing functions may be ``async def``."""
        topology = self.topology
        writes = self._begin_writes(task, result)
        for branch, state in _writes.branch_inputs(topology, self.state.channels, task.name, writes, result):
            chosen = call_path(branch, state, task.config, awaitable=True)
            if inspect.isawaitable(chosen):
                chosen = await chosen
            task.writes.extend(_writes.branch_writes(topology, task.name, branch, chosen))

    def _begin_writes(self, task: Task, result: Any) -> list[tuple[str, Any]]:
        # the node's state writes with its Command gotos (one LangGraph writer: all or
        # nothing), then its plain edges; returns the state writes
        topology = self.topology
        task.writes = []
        writes, gotos = _writes.result_writes(topology, task, result)
        _writes.prepare_updates(topology, writes)
        task.writes = writes + _writes.goto_writes(topology, task.name, gotos)
        task.writes.extend(_writes.edge_writes(topology, task.name))
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
            self.pauses.commit_interrupt(task, self.output_values, self.state.step)
            return
        if self.persistence is not None:
            self.persistence.keep_task_writes(task, error)
        state_writes = [(k, v) for k, v in task.writes if k in self.topology.fields]
        emitter = self.emitter
        if (error is None or task.writes) and emitter.wants("updates"):
            emitter.emit("updates", {task.name: update_value(state_writes, self.output_keys)}, task)
        if emitter.wants("tasks") or emitter.wants("debug"):
            payload: dict[str, Any] = {
                "id": task.id,
                "name": task.name,
                "error": error,
                "result": result_value(state_writes),
                "interrupts": [],
            }
            emitter.task_event(payload, task, result=True, step=self.state.step)
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
                self._apply(finished, self.state.preview())
            return
        self._apply(self.tasks)
        if self.persistence is not None:
            self._save("loop")
            self._emit_checkpoint()
        state = self.state
        if self.interrupt_after and should_interrupt(self.interrupt_after, state.versions, state.seen, self.tasks):
            self._breakpoint()

    def _apply(self, tasks: list[Task], state: LoopState | None = None) -> None:
        # apply to ``state`` (default: the run's); a preview copy is applied only to emit
        # the values chunk
        target = self.state if state is None else state
        updated = apply_writes(target, tasks)
        # LangGraph emits values when an output key was both written and changed
        if self.emitter.wants("values") and not updated.isdisjoint(self._output_set):
            self.emitter.emit("values", self.topology.output_values(target.channels, self.output_keys))

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
        self.emitter.muted = True
        self.after_tick()

    # --- reading a thread -----------------------------------------------------------------

    def snapshot(self, *, apply_pending: bool = True) -> StateSnapshot | None:
        """Return the thread's state at the loaded checkpoint, or None without one."""
        persistence = self.persistence
        if persistence is None or persistence.saved is None:
            return None
        if persistence.saved.metadata.get("source") == "input":
            tasks = [self._start_task(None)]  # the input checkpoint's one task: applying the input
        else:
            tasks = self._plan(self.state.step + 1)
        return persistence.snapshot(tasks, self._values_with, apply_pending=apply_pending)

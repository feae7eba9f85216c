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
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

from otelstream.engine.channels import BaseChannel, troubleshooting
from otelstream.engine.compiled import PULL, PUSH, TASK_ID_KEY, TASKS, CompiledStateGraph, branch_channel
from otelstream.engine.events import RunInfo, RunObserver, StreamEvent, Task
from otelstream.engine.graph import BranchSpec
from otelstream.engine.schema import updates_from_object
from otelstream.engine.types import END, START, Command, Send, StreamMode
from otelstream.errors import ErrorCode, GraphRecursionError, InvalidUpdateError

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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class RunLoop:
    """Runs one graph execution superstep by superstep; see the module docstring."""

    def __init__(
        self,
        graph: CompiledStateGraph,
        run: RunInfo,
        observer: RunObserver,
        *,
        recursion_limit: int = DEFAULT_RECURSION_LIMIT,
    ) -> None:
        """Prepare a run of ``graph`` reporting to ``observer``."""
        self.graph = graph
        self.topology = graph.topology
        self.run = run
        self.observer = observer
        self.recursion_limit = recursion_limit
        self.channels: dict[str, BaseChannel] = self.topology.new_channels()
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

    # --- emitting -------------------------------------------------------------------------

    def wants(self, mode: StreamMode) -> bool:
        """Return whether anyone consumes ``mode`` chunks of this run."""
        return self.observer.wants(self.namespace, mode)

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
                {"step": self.step, "timestamp": _now(), "type": kind, "payload": payload},
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

        if input is None:
            raise EmptyInputError("Received no input for __start__")
        start_task = Task(
            id=str(uuid.uuid4()),
            name=START,
            path=(PULL, START),
            input=input,
            triggers=(START,),
            node=None,  # type: ignore[arg-type]  # the input task runs no node code
            step=0,
            namespace=self.namespace,
            graph_name=self.topology.name,
            config=self.run.config,
        )
        try:
            if isinstance(input, Command):
                writes, gotos = self._command_writes(input, START)
            else:
                writes = _updates_of(input, self.topology.input_keys)
                gotos = []
            out = writes + self._goto_writes(START, gotos) + self._edge_writes(START)
            for branch, state in self._branch_inputs(START, writes, input):
                out.extend(self._branch_writes(START, branch, _call_path(branch, state, self.run.config)))
            start_task.writes = out
        except Exception as exc:
            # the input is mapped by LangGraph's hidden __start__ task: its errors say so
            add_task_note(exc, start_task)
            raise
        self._apply([start_task])

    # --- plan -----------------------------------------------------------------------------

    def tick(self) -> bool:
        """Plan the next superstep; return False when the run is over.

        Raises:
            GraphRecursionError: ``recursion_limit`` supersteps have already run.
        """
        self.step += 1
        if self.step > self.recursion_limit:
            raise GraphRecursionError(
                troubleshooting(
                    f"Recursion limit of {self.recursion_limit} reached without hitting a stop "
                    "condition. You can increase the limit by setting the `recursion_limit` "
                    "config key.",
                    ErrorCode.GRAPH_RECURSION_LIMIT,
                )
            )
        tasks: list[Task] = []
        sends = self.channels[TASKS]
        if sends.is_available():
            for index, packet in enumerate(sends.get()):
                # LangGraph's path for a Send task: (PUSH, index, False); True marks @task calls
                tasks.append(self._new_task(packet.node, (PUSH, index, False), packet.arg, ("__pregel_push",)))
        for name in sorted(self.topology.nodes):
            if self._triggered(name):
                node = self.topology.nodes[name]
                state = self.topology.read_state(self.channels, node.input_schema)
                tasks.append(self._new_task(name, (PULL, name), state, self.topology.triggers[name]))
        self.tasks = tasks
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
        return bool(tasks)

    def _triggered(self, name: str) -> bool:
        seen = self.seen.get(name, {})
        for chan in self.topology.triggers[name]:
            if self.channels[chan].is_available() and self.versions.get(chan, 0) > seen.get(chan, 0):
                return True
        return False

    def _new_task(self, name: str, path: tuple[Any, ...], input: Any, triggers: tuple[str, ...]) -> Task:
        task_id = str(uuid.uuid4())
        namespace = (*self.namespace, f"{name}:{task_id}")
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
            langgraph_step=self.step,
            langgraph_node=name,
            langgraph_triggers=triggers,
            langgraph_path=path,
            langgraph_checkpoint_ns="|".join(namespace),
        )
        node = self.topology.nodes[name]
        if node.metadata:
            metadata.update(node.metadata)
        config = {
            **run_config,
            "metadata": metadata,
            "tags": list(run_config.get("tags", [])),
            # the task id marks a config handed to nested graph calls as a task's config
            "configurable": {**configurable, TASK_ID_KEY: task_id},
        }
        return Task(
            id=task_id,
            name=name,
            path=path,
            input=input,
            triggers=triggers,
            node=node,
            step=self.step,
            namespace=namespace,
            graph_name=self.topology.name,
            config=config,
        )

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
            task.writes.extend(self._branch_writes(task.name, branch, _call_path(branch, state, task.config)))

    async def arecord_result(self, task: Task, result: Any) -> None:
        """Async version of :meth:`record_result`: routing functions may be ``async def``."""
        writes = self._begin_writes(task, result)
        for branch, state in self._branch_inputs(task.name, writes, result):
            chosen = _call_path(branch, state, task.config, awaitable=True)
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
        state_writes = [(k, v) for k, v in task.writes if k in self.topology.fields]
        if (error is None or task.writes) and self.wants("updates"):
            self._emit("updates", {task.name: _update_value(state_writes, self.output_keys)}, task)
        if self.wants("tasks") or self.wants("debug"):
            payload: dict[str, Any] = {
                "id": task.id,
                "name": task.name,
                "error": error,
                "result": _result_value(state_writes),
                "interrupts": [],
            }
            self._emit_task_event(payload, task, result=True)
        self.observer.task_ended(task, error)

    def _result_writes(self, task: Task, result: Any) -> tuple[list[tuple[str, Any]], list[Send | str]]:
        if isinstance(result, Send):  # LangGraph takes a returned Send as a goto
            return [], [result]
        if isinstance(result, Command):
            return self._command_writes(result, task.name)
        if isinstance(result, (list, tuple)) and result and any(isinstance(r, Command) for r in result):
            writes: list[tuple[str, Any]] = []
            gotos: list[Send | str] = []
            for item in result:
                if isinstance(item, Command):
                    w, g = self._command_writes(item, task.name)
                    writes.extend(w)
                    gotos.extend(g)
                else:
                    writes.extend(_updates_of(item, list(self.topology.fields)))
            return writes, gotos
        return _updates_of(result, list(self.topology.fields)), []

    def _command_writes(self, command: Command, source: str) -> tuple[list[tuple[str, Any]], list[Send | str]]:
        fields = self.topology.fields
        if command.graph == Command.PARENT:
            raise InvalidUpdateError(
                f"Node '{source}' returned Command(graph=Command.PARENT), which otelstream does not support yet",
                code=ErrorCode.INVALID_GRAPH_NODE_RETURN_VALUE,
            )
        writes = [(k, v) for k, v in command.update_items() if k in fields]
        return writes, command.goto_targets()

    def _goto_writes(self, source: str, gotos: list[Send | str]) -> list[tuple[str, Any]]:
        return [write for target in gotos for write in self._destination_write(source, target)]

    def _edge_writes(self, source: str) -> list[tuple[str, Any]]:
        # plain edges and joins, written after the node's own writes as in LangGraph
        out: list[tuple[str, Any]] = []
        for end in self.topology.edges.get(source, ()):
            out.append((branch_channel(end), None))
        for channel in self.topology.joins.get(source, ()):
            out.append((channel, source))
        return out

    def _branch_inputs(self, source: str, writes: list[tuple[str, Any]], output: Any) -> list[tuple[BranchSpec, Any]]:
        # what each conditional edge after ``source`` is called with
        inputs = []
        for branch in self.topology.branches.get(source, {}).values():
            state = self._local_state(writes, branch.input_schema)
            if branch.input_schema is None and isinstance(state, dict) and isinstance(output, dict):
                # LangGraph passes the node's other returned keys through to the branch
                state = {**output, **state}
            inputs.append((branch, state))
        return inputs

    def _branch_writes(self, source: str, branch: BranchSpec, result: Any) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for destination in _map_branch_result(branch, result):
            out.extend(self._destination_write(source, destination))
        return out

    def _destination_write(self, source: str, target: Send | str) -> list[tuple[str, Any]]:
        if isinstance(target, Send):
            if target.node == END:
                raise InvalidUpdateError(
                    f"Cannot send a packet to the END node (from '{source}')", code=ErrorCode.INVALID_SEND
                )
            if target.node not in self.topology.nodes:
                raise InvalidUpdateError(
                    f"Send from '{source}' targets unknown node '{target.node}'",
                    code=ErrorCode.INVALID_SEND,
                )
            return [(TASKS, target)]
        if not isinstance(target, str):
            raise InvalidUpdateError(
                f"Node '{source}' chose {target!r} as next node: expected a node name or Send",
                code=ErrorCode.INVALID_SEND,
            )
        if target == END:
            return []
        if target not in self.topology.nodes:
            raise InvalidUpdateError(f"Node '{source}' routed to unknown node '{target}'", code=ErrorCode.INVALID_SEND)
        return [(branch_channel(target), None)]

    def _local_state(self, writes: list[tuple[str, Any]], schema: Any = None) -> Any:
        # a branch sees the state with its own node's writes applied, not its siblings'
        by_key: dict[str, list[Any]] = {}
        for key, value in writes:
            by_key.setdefault(key, []).append(value)
        channels = dict(self.channels)
        for key, values in by_key.items():
            channel = self.channels[key].copy()
            channel.update(values)
            channels[key] = channel
        return self.topology.read_state(channels, schema)

    # --- apply ----------------------------------------------------------------------------

    def after_tick(self) -> None:
        """Apply the step's writes and emit a values chunk if the state changed.

        Raises:
            BaseException: the first task error, in completion order, or an
                ``InvalidUpdateError`` for conflicting writes.
        """
        self._apply(self.tasks)

    def _apply(self, tasks: list[Task]) -> None:
        tasks = sorted(tasks, key=_sort_key)
        for task in tasks:
            seen = self.seen.setdefault(task.name, {})
            for chan in task.triggers:
                if chan in self.versions:
                    seen[chan] = self.versions[chan]
        self.version += 1
        version = self.version
        for chan in {c for t in tasks for c in t.triggers}:
            if chan in self.channels and self.channels[chan].consume():
                self.versions[chan] = version
        grouped: dict[str, list[Any]] = {}
        for task in tasks:
            for chan, value in task.writes:
                grouped.setdefault(chan, []).append(value)
        updated: set[str] = set()
        for chan, values in grouped.items():
            if self.channels[chan].update(values):
                self.versions[chan] = version
                updated.add(chan)
        for chan, channel in self.channels.items():
            if chan not in updated and channel.is_available() and channel.update(()):
                self.versions[chan] = version
        # LangGraph emits values when an output key was both written and changed
        if any(key in updated and key in grouped for key in self._output_set):
            self._emit_values()


def _updates_of(value: Any, keys: list[str]) -> list[tuple[str, Any]]:
    """Return the state writes a node's return value (or the input) makes, as LangGraph does.

    Raises:
        InvalidUpdateError: ``value`` is neither None, a dict nor an annotated object.
    """
    if value is None:
        return []
    if isinstance(value, dict):
        known = set(keys)
        return [(k, v) for k, v in value.items() if k in known]
    items = updates_from_object(value, keys)
    if items is None:
        code = ErrorCode.INVALID_GRAPH_NODE_RETURN_VALUE
        raise InvalidUpdateError(troubleshooting(f"Expected dict, got {value}", code), code=code)
    return items


def _update_value(writes: list[tuple[str, Any]], output_keys: str | list[str]) -> Any:
    # LangGraph's map_output_updates: one dict of the task's writes to the output keys, a
    # list of single-key dicts when one was written twice, None when none was written
    if isinstance(output_keys, str):
        values = [v for k, v in writes if k == output_keys]
        return None if not values else values[0] if len(values) == 1 else values
    wanted = set(output_keys)
    kept = [(k, v) for k, v in writes if k in wanted]
    if not kept:
        return None
    keys = [k for k, _ in kept]
    if len(set(keys)) != len(keys):
        return [{k: v} for k, v in kept]
    return dict(kept)


def _result_value(writes: list[tuple[str, Any]]) -> dict[str, Any]:
    # LangGraph's map_task_result_writes, quirks included: a None first write is replaced
    result: dict[str, Any] = {}
    for key, value in writes:
        existing = result.get(key)
        if existing is not None:
            if isinstance(existing, dict) and isinstance(existing.get("$writes"), list):
                existing["$writes"].append(value)
            else:
                result[key] = {"$writes": [existing, value]}
        else:
            result[key] = value
    return result


def _call_path(branch: BranchSpec, state: Any, config: dict[str, Any], *, awaitable: bool = False) -> Any:
    """Call a conditional edge's routing function (its config injected if it takes one).

    Raises:
        TypeError: the function is async and the graph runs synchronously (LangGraph's
            message).
    """
    if branch.is_async and not awaitable:
        name = getattr(branch.path, "__name__", "condition")
        raise TypeError(no_sync_function(name))
    if branch.takes_config:
        return branch.path(state, config=config)
    return branch.path(state)


def _map_branch_result(branch: BranchSpec, result: Any) -> list[Send | str]:
    # LangGraph's rules and errors: a KeyError for a result missing from the path_map, a
    # ValueError for None or START. Unknown node names are caught by _destination_write.
    results = list(result) if isinstance(result, (list, tuple)) else [result]
    if branch.ends:
        ends = branch.ends
        destinations = [r if isinstance(r, Send) else ends[r] for r in results]
    else:
        destinations = results
    if any(d is None or (isinstance(d, str) and d == START) for d in destinations):
        raise ValueError("Branch did not return a valid destination")
    if any(isinstance(d, Send) and d.node == END for d in destinations):
        raise InvalidUpdateError("Cannot send a packet to the END node", code=ErrorCode.INVALID_SEND)
    return destinations


def no_sync_function(name: str) -> str:
    """Return LangGraph's message for an async node or routing function run synchronously."""
    return (
        f'No synchronous function provided to "{name}".'
        "\nEither initialize with a synchronous function or invoke via the async API "
        "(ainvoke, astream, etc.)"
    )


def add_task_note(error: BaseException, task: Task) -> None:
    """Note on ``error`` which task raised it, as LangGraph does: once per failed attempt.

    A subgraph's error gets one note per level, the task in the subgraph's first.
    """
    error.add_note(f"During task with name '{task.name}' and id '{task.id}'")

"""How a task's return value becomes channel writes: updates, Command, edges, branches, Send.

LangGraph's writers, in its order: the node's state writes with its Command gotos, then
its plain edges and joins, then each conditional edge's choice (routing functions run
inside the task, on the state with the task's own writes applied).
"""

from __future__ import annotations

from typing import Any

from otelstream.engine.channels import BaseChannel, troubleshooting
from otelstream.engine.events import Task
from otelstream.engine.schema import updates_from_object
from otelstream.engine.topology import TASKS, BranchSpec, Topology, branch_channel
from otelstream.engine.types import END, START, Command, Send
from otelstream.errors import ErrorCode, InvalidUpdateError

__all__ = [
    "add_task_note",
    "branch_inputs",
    "branch_writes",
    "call_path",
    "command_writes",
    "edge_writes",
    "goto_writes",
    "no_sync_function",
    "prepare_updates",
    "result_value",
    "result_writes",
    "update_value",
    "updates_of",
]


def result_writes(topology: Topology, task: Task, result: Any) -> tuple[list[tuple[str, Any]], list[Send | str]]:
    """Return the state writes and gotos of what ``task``'s node returned (updates, Commands, a Send)."""
    if isinstance(result, Send):  # LangGraph takes a returned Send as a goto
        return [], [result]
    if isinstance(result, Command):
        return command_writes(topology, result, task.name)
    if isinstance(result, (list, tuple)) and result and any(isinstance(r, Command) for r in result):
        writes: list[tuple[str, Any]] = []
        gotos: list[Send | str] = []
        for item in result:
            if isinstance(item, Command):
                w, g = command_writes(topology, item, task.name)
                writes.extend(w)
                gotos.extend(g)
            else:
                writes.extend(updates_of(item, list(topology.fields)))
        return writes, gotos
    return updates_of(result, list(topology.fields)), []


def command_writes(topology: Topology, command: Command, source: str) -> tuple[list[tuple[str, Any]], list[Send | str]]:
    """Return the state writes and gotos of a ``Command`` returned by ``source`` (or given as input).

    Raises:
        InvalidUpdateError: ``Command(graph=Command.PARENT)``, which is not supported.
    """
    if command.graph == Command.PARENT:
        raise InvalidUpdateError(
            f"Node '{source}' returned Command(graph=Command.PARENT), which otelstream does not support yet",
            code=ErrorCode.INVALID_GRAPH_NODE_RETURN_VALUE,
        )
    fields = topology.fields
    writes = [(k, v) for k, v in command.update_items() if k in fields]
    return writes, command.goto_targets()


def goto_writes(topology: Topology, source: str, gotos: list[Send | str]) -> list[tuple[str, Any]]:
    """Return the trigger writes of ``source``'s gotos (node names or ``Send`` packets)."""
    return [write for target in gotos for write in _destination_write(topology, source, target)]


def edge_writes(topology: Topology, source: str) -> list[tuple[str, Any]]:
    """Return the writes of ``source``'s plain edges and joins (written after its own, as in LangGraph)."""
    out: list[tuple[str, Any]] = []
    for end in topology.edges.get(source, ()):
        out.append((branch_channel(end), None))
    for channel in topology.joins.get(source, ()):
        out.append((channel, source))
    return out


def branch_inputs(
    topology: Topology, channels: dict[str, BaseChannel], source: str, writes: list[tuple[str, Any]], output: Any
) -> list[tuple[BranchSpec, Any]]:
    """Return each conditional edge after ``source`` with the state its routing function is called with."""
    inputs = []
    for branch in topology.branches.get(source, {}).values():
        state = _local_state(topology, channels, writes, branch.input_schema)
        if branch.input_schema is None and isinstance(state, dict) and isinstance(output, dict):
            # LangGraph passes the node's other returned keys through to the branch
            state = {**output, **state}
        inputs.append((branch, state))
    return inputs


def branch_writes(topology: Topology, source: str, branch: BranchSpec, result: Any) -> list[tuple[str, Any]]:
    """Return the trigger writes of the destinations a routing function chose.

    Raises:
        InvalidUpdateError: a destination is unknown, or a ``Send`` to END.
    """
    out: list[tuple[str, Any]] = []
    for destination in _map_branch_result(branch, result):
        out.extend(_destination_write(topology, source, destination))
    return out


def _destination_write(topology: Topology, source: str, target: Send | str) -> list[tuple[str, Any]]:
    if isinstance(target, Send):
        if target.node == END:
            raise InvalidUpdateError(
                f"Cannot send a packet to the END node (from '{source}')", code=ErrorCode.INVALID_SEND
            )
        if target.node not in topology.nodes:
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
    if target not in topology.nodes:
        raise InvalidUpdateError(f"Node '{source}' routed to unknown node '{target}'", code=ErrorCode.INVALID_SEND)
    return [(branch_channel(target), None)]


def _local_state(
    topology: Topology, channels: dict[str, BaseChannel], writes: list[tuple[str, Any]], schema: Any = None
) -> Any:
    # a branch sees the state with its own node's writes applied, not its siblings'
    by_key: dict[str, list[Any]] = {}
    for key, value in writes:
        by_key.setdefault(key, []).append(value)
    local = dict(channels)
    for key, values in by_key.items():
        channel = channels[key].copy()
        channel.update(values)
        local[key] = channel
    return topology.read_state(local, schema)


def prepare_updates(topology: Topology, writes: list[tuple[str, Any]]) -> None:
    """Let reducers that complete what a node wrote do it now, before the update is streamed.

    A reducer may carry a ``prepare_update(value)`` function (``add_messages`` gives messages
    without an id their uuid, in place): LangGraph's ``updates`` chunk already shows what the
    reducer filled in, so the chunk otelstream streams at the task's commit must too.
    """
    preparers = topology.preparers
    if not preparers:
        return
    for key, value in writes:
        prepare = preparers.get(key)
        if prepare is not None:
            prepare(value)


def updates_of(value: Any, keys: list[str]) -> list[tuple[str, Any]]:
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


def update_value(writes: list[tuple[str, Any]], output_keys: str | list[str]) -> Any:
    """Return a task's "updates" value: LangGraph's ``map_output_updates``.

    One dict of the task's writes to the output keys, a list of single-key dicts when one
    was written twice, None when none was written.
    """
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


def result_value(writes: list[tuple[str, Any]]) -> dict[str, Any]:
    """Return a task result's ``result``: LangGraph's ``map_task_result_writes``.

    Quirks included: a None first write is replaced.
    """
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


def call_path(branch: BranchSpec, state: Any, config: dict[str, Any], *, awaitable: bool = False) -> Any:
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

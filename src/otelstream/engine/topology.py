"""A compiled graph's wiring: nodes, trigger channels and writers, derived once at compile time.

Compilation turns edges into trigger channels, the way LangGraph does, so scheduling is
one rule: a node runs in a superstep when one of its trigger channels changed since it
last ran. ``branch:to:<node>`` carries plain and conditional edges, ``join:a+b:c`` waits
for every start of a join, and ``__pregel_tasks`` carries ``Send`` packets.

``StateGraph.compile()`` builds the :class:`Topology`; ``CompiledStateGraph`` and the run
loop read it. It imports nothing above it in the engine.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol

from otelstream.engine.channels import BaseChannel, EphemeralValue, NamedBarrierValue, Topic
from otelstream.engine.schema import SchemaField, coerce_to_schema, schema_fields
from otelstream.engine.types import END, START, RetryPolicy

__all__ = [
    "PULL",
    "PUSH",
    "TASKS",
    "TASK_ID_KEY",
    "BranchSpec",
    "GraphBuilder",
    "NodeSpec",
    "Topology",
    "branch_channel",
    "build_topology",
]

TASKS = "__pregel_tasks"
PULL = "__pregel_pull"
PUSH = "__pregel_push"
TASK_ID_KEY = "__pregel_task_id"
"""The ``configurable`` key holding the task id in a node's config (LangGraph's name)."""


def branch_channel(node: str) -> str:
    """Return the name of the channel that triggers ``node``."""
    return f"branch:to:{node}"


@dataclasses.dataclass(slots=True)
class Topology:
    """Everything the loop needs to run a graph, derived once at compile time."""

    name: str
    fields: dict[str, SchemaField]
    state_schema: Any
    output_schema: Any
    input_keys: list[str]
    output_keys: list[str]
    nodes: dict[str, NodeSpec]
    triggers: dict[str, tuple[str, ...]]
    edges: dict[str, list[str]]
    joins: dict[str, list[str]]
    join_names: dict[str, frozenset[str]]
    branches: dict[str, dict[str, BranchSpec]]
    # channel -> the nodes it triggers, by name: a step plans only the nodes whose trigger
    # channels the previous step changed (LangGraph's updated-channels rule)
    triggered_by: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # state key -> its reducer's ``prepare_update`` (see writes.prepare_updates), found once
    preparers: dict[str, Callable[[Any], None]] = dataclasses.field(default_factory=dict)

    def new_channels(self) -> dict[str, BaseChannel]:
        """Return a fresh set of empty channels for one run."""
        channels: dict[str, BaseChannel] = {key: field.make_channel() for key, field in self.fields.items()}
        channels[START] = EphemeralValue(START)
        channels[TASKS] = Topic(TASKS)
        for node in self.nodes:
            channels[branch_channel(node)] = EphemeralValue(branch_channel(node))
        for channel, names in self.join_names.items():
            channels[channel] = NamedBarrierValue(channel, set(names))
        return channels

    def read_state(self, channels: dict[str, BaseChannel], schema: Any = None) -> Any:
        """Read the state as a node with ``schema`` as input receives it."""
        # only the schema's own keys, as in LangGraph: a node over the state schema does not
        # see keys that another schema (a node's input schema) added
        keys = _schema_keys(schema or self.state_schema)
        values = {k: channels[k].get() for k in keys if k in channels and channels[k].is_available()}
        return coerce_to_schema(schema, values)

    def read_values(self, channels: dict[str, BaseChannel], keys: Sequence[str]) -> dict[str, Any]:
        """Return the available channels among ``keys`` as a dict, in ``keys`` order."""
        return {k: channels[k].get() for k in keys if channels[k].is_available()}

    def output_values(self, channels: dict[str, BaseChannel], keys: str | list[str]) -> Any:
        """Return the state as a "values" chunk shows it: the value of one key, or a dict of ``keys``."""
        if isinstance(keys, str):
            channel = channels[keys]
            return channel.get() if channel.is_available() else None
        return self.read_values(channels, keys)


@functools.lru_cache(maxsize=256)
def _schema_keys(schema: Any) -> tuple[str, ...]:
    return tuple(f.key for f in schema_fields(schema))


class GraphBuilder(Protocol):
    """What :func:`build_topology` reads of a ``StateGraph`` (kept a protocol: no import of it)."""

    @property
    def nodes(self) -> Mapping[str, NodeSpec]:
        """The nodes by name."""
        ...

    @property
    def edges(self) -> set[tuple[str, str]]:
        """Plain edges ``(start, end)``."""
        ...

    @property
    def waiting_edges(self) -> set[tuple[tuple[str, ...], str]]:
        """Joins: ``(starts, end)``, ``end`` runs once every start ran."""
        ...

    @property
    def branches(self) -> Mapping[str, Mapping[str, BranchSpec]]:
        """Conditional edges by source node and name."""
        ...

    @property
    def fields(self) -> Mapping[str, SchemaField]:
        """The state keys with their channels."""
        ...

    @property
    def state_schema(self) -> Any:
        """The state schema."""
        ...

    @property
    def output_schema(self) -> Any:
        """The output schema."""
        ...

    @property
    def input_keys(self) -> Sequence[str]:
        """The keys the input may set."""
        ...

    @property
    def output_keys(self) -> Sequence[str]:
        """The keys ``invoke()`` returns."""
        ...


def build_topology(graph: GraphBuilder, name: str) -> Topology:
    """Derive trigger channels and writers from the builder's edges."""
    triggers: dict[str, list[str]] = {node: [branch_channel(node)] for node in graph.nodes}
    triggers[START] = [START]
    edges: dict[str, list[str]] = {}
    for start, end in sorted(graph.edges):
        if end != END:
            edges.setdefault(start, []).append(end)
    joins: dict[str, list[str]] = {}
    join_names: dict[str, frozenset[str]] = {}
    for starts, end in sorted(graph.waiting_edges):
        if end == END:
            continue
        channel = f"join:{'+'.join(starts)}:{end}"
        join_names[channel] = frozenset(starts)
        triggers[end].append(channel)
        for start in starts:
            joins.setdefault(start, []).append(channel)
    return Topology(
        name=name,
        fields=dict(graph.fields),
        state_schema=graph.state_schema,
        output_schema=graph.output_schema,
        input_keys=list(graph.input_keys),
        output_keys=list(graph.output_keys),
        nodes=dict(graph.nodes),
        triggers={node: tuple(sorted(chans)) for node, chans in triggers.items()},
        edges=edges,
        joins=joins,
        join_names=join_names,
        branches={k: dict(v) for k, v in graph.branches.items()},
        triggered_by=_triggered_by(triggers),
        preparers={
            key: prepare
            for key, field in graph.fields.items()
            if (prepare := getattr(field.reducer, "prepare_update", None)) is not None
        },
    )


def _triggered_by(triggers: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    nodes: dict[str, list[str]] = {}
    for node, channels in triggers.items():
        if node == START:
            continue
        for channel in channels:
            nodes.setdefault(channel, []).append(node)
    return {channel: tuple(sorted(names)) for channel, names in nodes.items()}


@dataclasses.dataclass(slots=True)
class NodeSpec:
    """A node as added: the callable (or compiled graph) and how to call it."""

    name: str
    action: Any
    metadata: dict[str, Any] | None
    retry_policy: tuple[RetryPolicy, ...]
    input_schema: Any
    is_async: bool
    takes_config: bool
    takes_writer: bool
    is_subgraph: bool
    ends: tuple[str, ...]


@dataclasses.dataclass(slots=True)
class BranchSpec:
    """A conditional edge: ``path`` picks the next nodes; ``ends`` maps its results."""

    path: Callable[..., Any]
    ends: dict[Hashable, str] | None
    is_async: bool
    takes_config: bool
    # the schema ``path``'s first parameter is annotated with, if not the state's
    input_schema: Any = None

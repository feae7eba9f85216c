"""The superstep algorithms as free functions over explicit data: which nodes are due, how writes apply.

:class:`LoopState` is everything a run's channels hold between two supersteps: the channel
values, their versions, and which versions each node has seen. The run loop owns one; the
checkpointer saves and restores it (:mod:`otelstream.engine.persistence`). The functions
here read and change only what they are handed, as LangGraph's ``pregel/_algo.py`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from otelstream.engine.channels import BaseChannel
from otelstream.engine.events import Task
from otelstream.engine.topology import PULL, Topology

__all__ = ["LoopState", "apply_update", "apply_writes", "due_nodes"]


@dataclasses.dataclass(slots=True)
class LoopState:
    """The channels of one run and their versions.

    Attributes:
        channels: The channel of every state key, trigger and join.
        versions: The version each channel was last changed at.
        seen: For each node, the versions of its trigger channels when it last ran.
        clearing: The channels an empty update can clear (ephemeral values, topics).
        version: The latest version handed out.
        step: The superstep the state is at.
        changed: The channels the last applied step changed; ``None`` for a new or restored
            run (every node may be due).
        written_clearing: The clearing channels the last step wrote; ``None`` when unknown.
    """

    channels: dict[str, BaseChannel]
    versions: dict[str, int]
    seen: dict[str, dict[str, int]]
    clearing: frozenset[str]
    version: int = 0
    step: int = 0
    changed: set[str] | None = None
    written_clearing: set[str] | None = None

    def preview(self) -> LoopState:
        """Return a copy whose channels can take writes without touching this state."""
        return LoopState(
            channels={key: channel.copy() for key, channel in self.channels.items()},
            versions=dict(self.versions),
            seen={},
            clearing=self.clearing,
            version=self.version,
            step=self.step,
            changed=self.changed,
            written_clearing=self.written_clearing,
        )


def due_nodes(state: LoopState, topology: Topology) -> list[str]:
    """Return the nodes a trigger channel of which changed since they last ran, by name."""
    changed = state.changed
    if changed is None:  # a new or restored run: every node may be due
        candidates: Iterable[str] = sorted(topology.nodes)
    else:
        triggered_by = topology.triggered_by
        candidates = sorted({node for chan in changed for node in triggered_by.get(chan, ())})
    return [name for name in candidates if _triggered(state, topology, name)]


def _triggered(state: LoopState, topology: Topology, name: str) -> bool:
    seen = state.seen.get(name, {})
    versions = state.versions
    channels = state.channels
    for chan in topology.triggers[name]:
        if channels[chan].is_available() and versions.get(chan, 0) > seen.get(chan, 0):
            return True
    return False


def _sort_key(task: Task) -> tuple[Any, ...]:
    # pull tasks by node name, then push tasks by Send order: independent of completion order
    return (0, task.name, 0) if task.path[0] == PULL else (1, "", task.path[1])


def apply_writes(state: LoopState, tasks: Iterable[Task]) -> set[str]:
    """Apply ``tasks``' writes to ``state`` in a deterministic order; return the channels they updated.

    As LangGraph's ``apply_writes``: the tasks' triggers are marked seen and consumed, the
    writes grouped by channel in task order (sorted on path, so independent of completion
    order) and applied, and clearing channels the previous step wrote but this one did not
    are emptied.
    """
    ordered = sorted(tasks, key=_sort_key)
    for task in ordered:
        seen = state.seen.setdefault(task.name, {})
        for chan in task.triggers:
            if chan in state.versions:
                seen[chan] = state.versions[chan]
    state.version += 1
    version = state.version
    changed: set[str] = set()
    for chan in {c for t in ordered for c in t.triggers}:
        if chan in state.channels and state.channels[chan].consume():
            state.versions[chan] = version
            changed.add(chan)
    grouped: dict[str, list[Any]] = {}
    for task in ordered:
        for chan, value in task.writes:
            grouped.setdefault(chan, []).append(value)
    updated: set[str] = set()
    for chan, values in grouped.items():
        if state.channels[chan].update(values):
            state.versions[chan] = version
            updated.add(chan)
    written = state.written_clearing
    for chan in state.clearing if written is None else written:
        channel = state.channels[chan]
        if chan not in updated and channel.is_available() and channel.update(()):
            state.versions[chan] = version
            changed.add(chan)
    state.written_clearing = updated & state.clearing
    state.changed = changed | updated
    return updated


def apply_update(state: LoopState, topology: Topology, items: Iterable[tuple[str, Any]]) -> None:
    """Write ``items`` to the state keys they name, outside any superstep (no trigger is consumed)."""
    grouped: dict[str, list[Any]] = {}
    for key, value in items:
        if key in topology.fields:
            grouped.setdefault(key, []).append(value)
    if not grouped:
        return
    state.version += 1
    for key, values in grouped.items():
        if state.channels[key].update(values):
            state.versions[key] = state.version

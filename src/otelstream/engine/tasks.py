"""How a planned node becomes a :class:`~otelstream.engine.events.Task`: its id, namespace and config."""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Any

from otelstream.engine.events import Task
from otelstream.engine.persistence import Persistence, task_id_for
from otelstream.engine.topology import TASK_ID_KEY, NodeSpec

__all__ = ["TaskIds", "task_config", "task_metadata"]

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


class TaskIds:
    """Hands out the task ids of one run.

    With a checkpoint, ids derive from it (a task re-planned on resume keeps its id);
    without, they are uuid-shaped: a random prefix per run and a counter (``uuid4()`` per
    task costs a system call on a hot path).
    """

    __slots__ = ("_counter", "_namespace", "_persistence", "_prefix")

    def __init__(self, namespace: tuple[str, ...], persistence: Persistence | None) -> None:
        """Name the tasks of the run at ``namespace``, checkpointed by ``persistence`` if any."""
        self._namespace = namespace
        self._persistence = persistence
        self._prefix = str(uuid.uuid4())[:24]
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def next(self, name: str, path: tuple[Any, ...], step: int) -> str:
        """Return the id of the task of node ``name`` at ``path``, planned for superstep ``step``."""
        persistence = self._persistence
        if persistence is None or persistence.checkpoint_id is None:
            return f"{self._prefix}{next(self._counter):012x}"
        return task_id_for(persistence.checkpoint_id, self._namespace, step, name, path)


def task_config(
    run_config: dict[str, Any],
    parent: Task | None,
    node: NodeSpec,
    task_id: str,
    path: tuple[Any, ...],
    triggers: tuple[str, ...],
    namespace: tuple[str, ...],
    step: int,
) -> dict[str, Any]:
    """Return the config a task's node runs with: LangGraph's metadata, tags and configurable.

    Built on first use (the node asks for its config, a nested graph or an LLM call
    inherits it, a "tasks" chunk shows its metadata): most nodes never need it.
    """
    configurable = run_config.get("configurable", {})
    # the key order is LangGraph's: user (and inherited) metadata, the configurable keys
    # LangGraph propagates, the subgraph's checkpoint_ns, langgraph_*, node metadata
    metadata = dict(run_config.get("metadata", {}))
    for key in _CONFIGURABLE_METADATA:
        if key not in metadata and configurable.get(key):
            metadata[key] = configurable[key]
    if parent is not None and "checkpoint_ns" not in metadata:
        # the calling task's namespace: without the numbered segment of a repeated call
        metadata["checkpoint_ns"] = parent.checkpoint_ns
    metadata.update(
        langgraph_step=step,
        langgraph_node=node.name,
        langgraph_triggers=triggers,
        langgraph_path=path,
        langgraph_checkpoint_ns="|".join(namespace),
    )
    if node.metadata:
        metadata.update(node.metadata)
    return {
        **run_config,
        "metadata": metadata,
        "tags": list(run_config.get("tags", [])),
        # the task id marks a config handed to nested graph calls as a task's config
        "configurable": {**configurable, TASK_ID_KEY: task_id},
    }


def task_metadata(task: Task) -> dict[str, Any]:
    """Return the metadata a ``tasks`` chunk shows for ``task``.

    LangGraph forwards only user-meaningful metadata: its own bookkeeping keys are
    redundant with the payload's fields and namespace.
    """
    metadata = {k: v for k, v in task.config["metadata"].items() if k not in _EXCLUDED_METADATA}
    if task.config.get("tags"):
        metadata["tags"] = list(task.config["tags"])
    return metadata

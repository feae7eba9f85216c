"""Checkpointers: where durable runs keep their state between supersteps and across processes.

``InMemorySaver`` for tests and short-lived threads, ``SqliteSaver`` for state that must
survive the process (standard-library ``sqlite3``, nothing to install). Pass one to
``StateGraph.compile(checkpointer=...)`` and name a thread in
``config["configurable"]["thread_id"]``.
"""

from __future__ import annotations

from otelstream.checkpoint.base import BaseCheckpointSaver, Checkpoint, CheckpointTuple
from otelstream.checkpoint.memory import InMemorySaver
from otelstream.checkpoint.serde import (
    CheckpointedError,
    JsonSerializer,
    PickleSerializer,
    Serializer,
    register_type,
)
from otelstream.checkpoint.sqlite import SqliteSaver

__all__ = [
    "BaseCheckpointSaver",
    "Checkpoint",
    "CheckpointTuple",
    "CheckpointedError",
    "InMemorySaver",
    "JsonSerializer",
    "PickleSerializer",
    "Serializer",
    "SqliteSaver",
    "register_type",
]

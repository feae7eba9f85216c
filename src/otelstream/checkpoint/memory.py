"""``InMemorySaver``: checkpoints kept in the process, for tests and short-lived threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from otelstream.checkpoint.base import (
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointTuple,
    address_config,
    checkpoint_address,
    load_tuple,
    write_index,
)
from otelstream.checkpoint.serde import JsonSerializer, Serializer

__all__ = ["InMemorySaver"]


class InMemorySaver(BaseCheckpointSaver):
    """Keeps checkpoints in memory; everything is lost when the process ends.

    Values are stored serialized, as a durable store would hold them, so a node mutating
    its state after a checkpoint cannot change what the checkpoint holds.
    """

    def __init__(self, *, serde: Serializer | None = None) -> None:
        """Create an empty store; ``serde`` turns values into bytes (typed JSON by default)."""
        self.serde: Serializer = serde or JsonSerializer()
        self._lock = threading.Lock()
        # (thread, ns) -> checkpoint id -> (checkpoint, metadata, parent id)
        self._checkpoints: dict[tuple[str, str], dict[str, tuple[bytes, bytes, str | None]]] = {}
        # (thread, ns, checkpoint id) -> (task id, index) -> (task id, channel, value)
        self._writes: dict[tuple[str, str, str], dict[tuple[str, int], tuple[str, str, bytes]]] = {}

    def get_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """Return the checkpoint ``config`` names, or the thread's latest; None if none."""
        thread_id, ns, checkpoint_id = checkpoint_address(config)
        with self._lock:
            saved = self._checkpoints.get((thread_id, ns))
            if not saved:
                return None
            if checkpoint_id is None:
                checkpoint_id = max(saved)
            elif checkpoint_id not in saved:
                return None
            return self._tuple(thread_id, ns, checkpoint_id, saved[checkpoint_id])

    def list(
        self, config: dict[str, Any], *, before: dict[str, Any] | None = None, limit: int | None = None
    ) -> Iterator[CheckpointTuple]:
        """Yield the thread's checkpoints in ``config``'s namespace, newest first."""
        thread_id, ns, _ = checkpoint_address(config)
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        with self._lock:
            saved = dict(self._checkpoints.get((thread_id, ns), {}))
            ids = sorted((i for i in saved if before_id is None or i < before_id), reverse=True)
            tuples = [self._tuple(thread_id, ns, i, saved[i]) for i in ids[:limit]]
        yield from tuples

    def put(self, config: dict[str, Any], checkpoint: Checkpoint, metadata: dict[str, Any]) -> dict[str, Any]:
        """Save ``checkpoint`` as the child of the one ``config`` names; return its config."""
        thread_id, ns, parent_id = checkpoint_address(config)
        entry = (self.serde.dumps(checkpoint), self.serde.dumps(metadata), parent_id)
        with self._lock:
            self._checkpoints.setdefault((thread_id, ns), {})[checkpoint["id"]] = entry
        return address_config(thread_id, ns, checkpoint["id"])

    def put_writes(self, config: dict[str, Any], writes: Sequence[tuple[str, Any]], task_id: str) -> None:
        """Save a task's writes as pending writes of the checkpoint ``config`` names."""
        thread_id, ns, checkpoint_id = checkpoint_address(config)
        if checkpoint_id is None:
            raise ValueError("put_writes needs the checkpoint_id the writes belong to")
        encoded = [(channel, self.serde.dumps(value)) for channel, value in writes]
        with self._lock:
            stored = self._writes.setdefault((thread_id, ns, checkpoint_id), {})
            for position, (channel, data) in enumerate(encoded):
                key = (task_id, write_index(channel, position))
                if key[1] >= 0 and key in stored:
                    continue  # a task's ordinary writes are saved once, as in LangGraph
                stored[key] = (task_id, channel, data)

    def delete_thread(self, thread_id: str) -> None:
        """Forget every checkpoint and write of ``thread_id``."""
        with self._lock:
            for key in [k for k in self._checkpoints if k[0] == thread_id]:
                del self._checkpoints[key]
            for wkey in [k for k in self._writes if k[0] == thread_id]:
                del self._writes[wkey]

    def _tuple(
        self, thread_id: str, ns: str, checkpoint_id: str, entry: tuple[bytes, bytes, str | None]
    ) -> CheckpointTuple:
        data, metadata, parent_id = entry
        writes = self._writes.get((thread_id, ns, checkpoint_id), {})
        return load_tuple(self.serde, (thread_id, ns, checkpoint_id, parent_id), data, metadata, writes.values())

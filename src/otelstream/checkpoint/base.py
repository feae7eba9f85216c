"""What a checkpointer stores and the interface every checkpointer implements.

A checkpoint is the state of one graph run between two supersteps: every channel's value,
the channel versions and what each node has seen, so a run can stop anywhere and a later
run can continue from the last completed superstep. Writes of tasks that finished inside
a superstep that did not complete (an interrupt, an error, a killed process) are kept as
*pending writes* of the checkpoint the superstep started from: a resumed run reuses them
instead of running those tasks again.

Checkpoints are addressed as LangGraph addresses them: ``config["configurable"]`` holds
``thread_id``, ``checkpoint_ns`` (``""`` for the root graph) and optionally
``checkpoint_id``.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, TypedDict

from otelstream.errors import CheckpointError

__all__ = [
    "ERROR",
    "INTERRUPT",
    "RESUME",
    "BaseCheckpointSaver",
    "Checkpoint",
    "CheckpointTuple",
    "PendingWrite",
    "address_config",
    "checkpoint_address",
    "load_tuple",
    "new_checkpoint_id",
    "write_index",
]

INTERRUPT = "__interrupt__"
"""Pending-write channel of a task that paused: its interrupts."""
RESUME = "__resume__"
"""Pending-write channel holding the values a task's interrupts were resumed with."""
ERROR = "__error__"
"""Pending-write channel of a task that failed: its exception."""

# special writes replace each other (LangGraph's WRITES_IDX_MAP); ordinary ones are indexed
_SPECIAL_INDEX = {ERROR: -1, INTERRUPT: -3, RESUME: -4}

PendingWrite = tuple[str, str, Any]
"""``(task_id, channel, value)``."""


class Checkpoint(TypedDict):
    """One saved state of a run. Values are the channels' own saved forms."""

    v: int
    id: str
    ts: str
    channel_values: dict[str, Any]
    channel_versions: dict[str, int]
    versions_seen: dict[str, dict[str, int]]
    # how the checkpoint's run can be found in telemetry: {"trace_id", "span_id"} in hex
    trace: dict[str, str] | None


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointTuple:
    """A checkpoint with its address, metadata, parent and pending writes."""

    config: dict[str, Any]
    checkpoint: Checkpoint
    metadata: dict[str, Any]
    parent_config: dict[str, Any] | None
    pending_writes: list[PendingWrite]


def write_index(channel: str, position: int) -> int:
    """Return the storage index of a task's write: fixed for special channels."""
    return _SPECIAL_INDEX.get(channel, position)


def checkpoint_address(config: dict[str, Any]) -> tuple[str, str, str | None]:
    """Return ``(thread_id, checkpoint_ns, checkpoint_id)`` from a run config.

    Raises:
        CheckpointError: the config names no thread (LangGraph's message, as a ValueError).
    """
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or thread_id == "":
        raise CheckpointError(
            "Checkpointer requires one or more of the following 'configurable' keys: "
            "thread_id, checkpoint_ns, checkpoint_id"
        )
    return str(thread_id), str(configurable.get("checkpoint_ns") or ""), configurable.get("checkpoint_id")


_ID_LOCK = threading.Lock()
_LAST_TICKS = [0]
# 100 ns intervals between the Gregorian epoch (UUID time) and the Unix epoch
_GREGORIAN_OFFSET = 0x01B21DD213814000


def address_config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> dict[str, Any]:
    """Return the config that names one checkpoint (LangGraph's key order)."""
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint_id}}


class _Loads(Protocol):
    def loads(self, data: bytes) -> Any: ...


def load_tuple(
    serde: _Loads,
    address: tuple[str, str, str, str | None],
    data: bytes,
    metadata: bytes,
    writes: Iterable[tuple[str, str, bytes]],
) -> CheckpointTuple:
    """Decode a stored checkpoint: ``address`` is (thread, namespace, checkpoint id, parent id).

    Raises:
        CheckpointError: a blob cannot be decoded, naming the thread and checkpoint (a bad
            blob never surfaces as a raw ``AttributeError`` or ``KeyError``).
    """
    thread_id, ns, checkpoint_id, parent_id = address
    try:
        return CheckpointTuple(
            config=address_config(thread_id, ns, checkpoint_id),
            checkpoint=serde.loads(data),
            metadata=serde.loads(metadata),
            parent_config=address_config(thread_id, ns, parent_id) if parent_id else None,
            pending_writes=[(task, channel, serde.loads(value)) for task, channel, value in writes],
        )
    except Exception as exc:
        where = f"thread {thread_id!r}, checkpoint {checkpoint_id!r}" + (f" in {ns!r}" if ns else "")
        detail = str(exc) if isinstance(exc, CheckpointError) else f"{type(exc).__name__}: {exc}"
        raise CheckpointError(f"Cannot read {where}: {detail}") from exc


def new_checkpoint_id() -> str:
    """Return a new UUID version 6: later ids sort after earlier ones, as strings too.

    Ids come from the clock, made strictly increasing within the process, so a thread's
    checkpoints list in the order they were taken.
    """
    with _ID_LOCK:
        ticks = max(time.time_ns() // 100 + _GREGORIAN_OFFSET, _LAST_TICKS[0] + 1)
        _LAST_TICKS[0] = ticks
    high = (ticks >> 12) & 0xFFFFFFFFFFFF
    low = ticks & 0x0FFF
    rand = int.from_bytes(os.urandom(8), "big")
    value = (high << 80) | (0x6 << 76) | (low << 64) | (0b10 << 62) | (rand & 0x3FFFFFFFFFFFFFFF)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class BaseCheckpointSaver(abc.ABC):
    """Stores checkpoints and pending writes per thread and namespace.

    Implementations must be safe to call from several threads: nodes of one superstep run
    in parallel and each saves its writes as it finishes.
    """

    @abc.abstractmethod
    def get_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """Return the checkpoint ``config`` names, or the thread's latest; None if none."""

    @abc.abstractmethod
    def list(
        self, config: dict[str, Any], *, before: dict[str, Any] | None = None, limit: int | None = None
    ) -> Iterator[CheckpointTuple]:
        """Yield the thread's checkpoints in ``config``'s namespace, newest first."""

    @abc.abstractmethod
    def put(self, config: dict[str, Any], checkpoint: Checkpoint, metadata: dict[str, Any]) -> dict[str, Any]:
        """Save ``checkpoint`` as the child of the one ``config`` names; return its config."""

    @abc.abstractmethod
    def put_writes(self, config: dict[str, Any], writes: Sequence[tuple[str, Any]], task_id: str) -> None:
        """Save a task's writes as pending writes of the checkpoint ``config`` names."""

    @abc.abstractmethod
    def delete_thread(self, thread_id: str) -> None:
        """Forget every checkpoint and write of ``thread_id``."""

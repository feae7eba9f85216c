"""The per-run queue between otelstream's processors and one ``stream()`` iterator.

Processors ``put`` chunks from whatever thread emitted them; the iterator drains
them on its own thread. Chunks leave in sequence-number order: two nodes running in
parallel may get their numbers in one order and reach the processor in the other, and
replay from a backend sorts by sequence number, so the live stream must too.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Chunk", "RunChannel"]

logger = logging.getLogger("otelstream")


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    """One received chunk: where it comes from, its mode and payload."""

    namespace: tuple[str, ...]
    mode: str
    payload: Any


_LOST: Any = object()


DEFAULT_CAPACITY = 4096
"""Chunks a channel holds before producers on other threads wait for the consumer."""


class RunChannel:
    """Reorders chunks by sequence number and hands them to one consumer, with backpressure.

    Thread-safety: ``put`` and ``lost`` may be called from any thread; ``drain`` and
    ``drain_all`` only from the consumer's. ``notify`` is called after every ``put`` and
    must not block.

    Backpressure: when ``capacity`` chunks wait, a ``put`` from any thread but the consumer's
    blocks until the consumer drains, so a slow consumer bounds memory instead of losing
    chunks. A ``put`` on the consumer's own thread (a node run inline, an async node on the
    event loop) never blocks: nobody else could drain. ``close()`` releases blocked producers.
    """

    __slots__ = (
        "_capacity",
        "_closed",
        "_consumer",
        "_lock",
        "_next",
        "_notify",
        "_pending",
        "_ready",
        "_room",
        "lost_count",
        "run_id",
    )

    def __init__(self, run_id: str, notify: Callable[[], None], capacity: int = DEFAULT_CAPACITY) -> None:
        """Create an empty channel for ``run_id`` that calls ``notify`` on arrivals."""
        self.run_id = run_id
        self._notify = notify
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._capacity = capacity
        self._closed = False
        self._consumer = threading.get_ident()
        self._next = 0
        self._pending: dict[int, Any] = {}
        self._ready: deque[Any] = deque()
        self.lost_count = 0

    def put(self, seq: int, chunk: Chunk | Any) -> None:
        """Accept the chunk numbered ``seq``; duplicates of delivered numbers are ignored."""
        with self._lock:
            if seq < self._next or seq in self._pending:
                return
            if seq != self._next:
                self._pending[seq] = chunk
                return
            ready = self._ready
            ready.append(chunk)
            nxt = seq + 1
            pending = self._pending
            while pending and nxt in pending:
                ready.append(pending.pop(nxt))
                nxt += 1
            self._next = nxt
            full = len(ready) >= self._capacity
        self._notify()
        if full and threading.get_ident() != self._consumer:
            with self._lock:
                while len(self._ready) >= self._capacity and not self._closed:
                    self._notify()
                    self._room.wait(0.1)

    def close(self) -> None:
        """Stop blocking producers: the consumer is gone (later chunks just accumulate)."""
        with self._lock:
            self._closed = True
            self._room.notify_all()

    def lost(self, seq: int) -> None:
        """Record that chunk ``seq`` will never arrive (its record could not be emitted)."""
        self.put(seq, _LOST)

    def drain(self) -> list[Chunk]:
        """Return the chunks that are ready, in order; call on the consumer's thread."""
        self._consumer = threading.get_ident()
        ready = self._ready
        if not ready:
            return []
        with self._lock:
            items = list(ready)
            ready.clear()
            self._room.notify_all()
        return self._without_lost(items)

    def drain_all(self, expected: int | None = None) -> list[Chunk]:
        """Return everything left once the run is over, pending chunks after a gap included.

        Args:
            expected: How many chunks the run emitted, if known, so chunks missing at the
                end are noticed too. Every missing chunk is counted in ``lost_count`` and
                reported in one warning.
        """
        with self._lock:
            items = list(self._ready)
            self._ready.clear()
            pending = sorted(self._pending)
            items.extend(self._pending[k] for k in pending)
            self._pending.clear()
            end = max(expected or 0, pending[-1] + 1 if pending else self._next)
            # numbers below `end` that were neither delivered nor held never arrived
            never_arrived = end - self._next - len(pending)
            self._next = end
        chunks = self._without_lost(items)
        self.lost_count += never_arrived
        if self.lost_count:
            logger.warning(
                "otelstream: run %s lost %d stream chunk(s); the stream has gaps",
                self.run_id,
                self.lost_count,
            )
        return chunks

    def _without_lost(self, items: list[Any]) -> list[Chunk]:
        if any(item is _LOST for item in items):
            kept = [item for item in items if item is not _LOST]
            self.lost_count += len(items) - len(kept)
            return kept
        return items

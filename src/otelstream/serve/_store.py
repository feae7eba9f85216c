"""The gateway's runs: each run's stream rebuilt incrementally from the records received.

Records arrive in any order and any number of times (exporters retry, a Collector may send a
batch twice, span events arrive when their span ends). Each run keeps the chunks it received
by ``otelstream.seq`` and *releases* them in seq order: a released chunk is what consumers
are served, and releases only ever move forward, so an SSE id (the seq) names a position no
later release can precede. A missing seq holds the stream for ``reorder_window`` seconds;
after that it is released as a :class:`Gap`, like replay reports it, never invented.

The store is plain data and is driven from one thread (the gateway's event loop): ``ingest``
and ``tick`` take the clock as an argument, and a run calls its listeners when it changed.
Memory is bounded: runs are evicted by age (``retention_s`` since their last record) and by
size (``max_bytes`` over all runs, ``max_runs``), oldest first and ended runs before live
ones; each eviction is counted and listed.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from otelstream._otlp.records import Carried, Gap, Telemetry
from otelstream.telemetry import semconv

__all__ = ["Entry", "NodeSpan", "Run", "RunStore", "StoreLimits"]

logger = logging.getLogger(__name__)

_ENTRY_OVERHEAD = 160
"""Bytes counted per stored chunk beyond its text: the objects that hold it."""
_MAX_NODE_SPANS = 20_000
_RECENT_EVICTIONS = 50


@dataclasses.dataclass(frozen=True, slots=True)
class StoreLimits:
    """How much the gateway keeps.

    Attributes:
        retention_s: A run is evicted this long after its last record.
        max_bytes: Evict runs (oldest first, ended ones before live ones) while all chunks
            stored take more than this.
        max_runs: Evict the oldest runs beyond this many.
        reorder_window_s: How long a missing seq holds the stream before it is a gap.
    """

    retention_s: float = 3600.0
    max_bytes: int = 256 * 1024 * 1024
    max_runs: int = 10_000
    reorder_window_s: float = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One released position of a run's stream: a chunk, or a gap standing for missing chunks.

    Attributes:
        seq: The chunk's seq; for a gap, its last missing seq (so resuming after it skips it).
        mode: The chunk's mode (empty for a gap).
        namespace: The chunk's namespace.
        data: The payload as otelstream encoded it (JSON), or a truncation marker.
        gap: Set on gap entries.
    """

    seq: int
    mode: str
    namespace: tuple[str, ...]
    data: str
    gap: Gap | None = None

    @property
    def event(self) -> str:
        """The SSE event name: the mode, ``mode|ns1|ns2`` for a subgraph's chunk."""
        return "|".join((self.mode, *self.namespace)) if self.namespace else self.mode


@dataclasses.dataclass(frozen=True, slots=True)
class NodeSpan:
    """A node task's ``invoke_node`` span: the web page's timeline."""

    trace_id: str
    node: str
    namespace: str
    step: int | None
    start_ns: int
    end_ns: int
    outcome: str | None


def truncation_marker(carried: Carried) -> str:
    """The data of a chunk whose payload telemetry cut (or never carried)."""
    return json.dumps(
        {"$t": "otelstream.truncated", "size": carried.size, "head": carried.payload}, separators=(",", ":")
    )


class Run:
    """One run's stream as received so far, with what is known about the run."""

    def __init__(self, run_id: str, now: float, wall_ns: int) -> None:
        """Start an empty run first seen at monotonic ``now`` (``wall_ns`` since the epoch)."""
        self.run_id = run_id
        self.graph = ""
        self.thread_id: str | None = None
        self.trace_ids: set[str] = set()
        self.first_seen_ns = wall_ns
        self.last_seen = now
        self.start_ns = 0
        self.end_ns = 0
        self.outcome: str | None = None
        self.event_count: int | None = None
        self.stream_modes: tuple[str, ...] | None = None
        self.subgraphs: bool | None = None
        self.tagged: bool | None = None
        self.entries: list[Entry] = []
        self.seqs: list[int] = []  # entries' seqs, for bisect
        self.gaps: list[Gap] = []
        self.next_seq = 0
        self.received = 0
        self.duplicates = 0
        self.conflicts = 0
        self.late = 0
        self.late_conflicts: list[int] = []  # seqs served before a conflicting copy arrived
        self.truncated = 0
        self.bytes = 0
        self.nodes: dict[tuple[str, str], list[int]] = {}  # (namespace, node) -> [first_ns, last_ns, chunks]
        self._pending: dict[int, Carried] = {}
        self._conflicted: set[int] = set()
        self._released_data: dict[int, tuple[Any, ...]] = {}  # seq -> the released copy's identity()
        self._hold_since: float | None = None
        self._end_seen: float | None = None
        self.finished = False
        self.evicted: str | None = None
        self.listeners: set[Callable[[], None]] = set()

    # --- receiving ------------------------------------------------------------------------

    def add_chunk(self, carried: Carried, now: float) -> None:
        """Take one received chunk record (a duplicate, a conflicting copy or a late one too)."""
        self.last_seen = now
        seq = carried.seq
        if carried.trace_id:
            self.trace_ids.add(carried.trace_id)
        if not carried.namespace and not self.graph:
            self.graph = carried.graph
        key = carried.identity()
        if seq < self.next_seq:
            released = self._released_data.get(seq)
            if released is None:
                self.late += 1  # already released as a gap: a gap is never taken back
            elif released == key:
                self.duplicates += 1
            else:
                # consumers already have the first copy; which one is right is unknowable
                self.conflicts += 1
                self.gaps.append(Gap(seq, 1))
                self.late_conflicts.append(seq)
                logger.warning("run %s: conflicting copies of chunk %s; reported as a gap", self.run_id, seq)
            return
        pending = self._pending.get(seq)
        if pending is not None:
            if pending.identity() == key:
                self.duplicates += 1
            elif seq not in self._conflicted:
                self.conflicts += 1
                self._conflicted.add(seq)
                logger.warning("run %s: conflicting copies of chunk %s; reported as a gap", self.run_id, seq)
            return
        self._pending[seq] = carried
        self.received += 1
        if carried.truncated:
            self.truncated += 1
        if carried.node:
            stats = self.nodes.setdefault(("|".join(carried.namespace), carried.node), [carried.timestamp, 0, 0])
            stats[0] = min(stats[0], carried.timestamp) if stats[0] else carried.timestamp
            stats[1] = max(stats[1], carried.timestamp)
            stats[2] += 1

    def add_end(self, outcome: str, event_count: int | None, now: float, **known: Any) -> None:
        """Take what the run-end record or the run span says about the run's end."""
        self.last_seen = now
        if outcome:
            self.outcome = outcome
        if event_count is not None:
            self.event_count = event_count
        for name in ("stream_modes", "subgraphs", "tagged", "thread_id"):
            if known.get(name) is not None:
                setattr(self, name, known[name])
        if self._end_seen is None and self.outcome is not None:
            self._end_seen = now

    # --- releasing ------------------------------------------------------------------------

    def advance(self, now: float, window_s: float) -> bool:
        """Release what can be released; return whether anything changed."""
        changed = False
        while True:
            seq = self.next_seq
            carried = self._pending.pop(seq, None)
            if carried is not None:
                if seq in self._conflicted:
                    self._conflicted.discard(seq)
                    self._release_gap(seq, 1)
                else:
                    self._release(carried)
                self._hold_since = None
                changed = True
                continue
            expected = self.event_count
            if expected is not None and seq >= expected:
                break
            if not self._pending and (expected is None or self._end_seen is None):
                break  # nothing after the hole yet: keep waiting
            if self._hold_since is None:
                self._hold_since = now
            if now - self._hold_since < window_s:
                break
            upto = min(self._pending) if self._pending else expected
            assert upto is not None
            self._release_gap(seq, upto - seq)
            self._hold_since = None
            changed = True
        if not self.finished and self._end_seen is not None and not self._pending:
            if self.event_count is not None and self.next_seq >= self.event_count:
                self.finished = changed = True
            elif self.event_count is None and now - self._end_seen >= window_s:
                # a run span but no run-end record: how many chunks the run emitted is unknown
                self.finished = changed = True
        return changed

    def _release(self, carried: Carried) -> None:
        data = truncation_marker(carried) if carried.truncated else carried.payload
        entry = Entry(carried.seq, carried.mode, carried.namespace, data)
        self._append(entry)
        self._released_data[carried.seq] = carried.identity()
        self.next_seq = carried.seq + 1

    def _release_gap(self, first: int, count: int) -> None:
        gap = Gap(first, count)
        self.gaps.append(gap)
        self._append(Entry(first + count - 1, "", (), "", gap))
        self.next_seq = first + count

    def _append(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.seqs.append(entry.seq)
        self.bytes += len(entry.data) + len(entry.mode) + _ENTRY_OVERHEAD

    def after(self, seq: int) -> int:
        """The index in ``entries`` of the first entry after ``seq`` (``-1``: from the start)."""
        return bisect.bisect_right(self.seqs, seq)

    def notify(self) -> None:
        """Tell every listener the run changed (they must not block)."""
        for listener in list(self.listeners):
            listener()

    # --- describing -----------------------------------------------------------------------

    @property
    def status(self) -> str:
        """``running`` until the run's end is known and its stream fully released, then ``ended``."""
        return "ended" if self.finished else "running"

    def summary(self) -> dict[str, Any]:
        """The run as ``GET /runs`` lists it."""
        return {
            "run_id": self.run_id,
            "graph": self.graph,
            "thread_id": self.thread_id,
            "trace_ids": sorted(self.trace_ids),
            "status": self.status,
            "outcome": self.outcome,
            "chunks": self.received,
            "released": len(self.entries),
            "event_count": self.event_count,
            "gaps": [dataclasses.asdict(g) for g in self.gaps],
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "late": self.late,
            "truncated": self.truncated,
            "stream_modes": list(self.stream_modes) if self.stream_modes is not None else None,
            "subgraphs": self.subgraphs,
            "started_ns": self.start_ns or self.first_seen_ns,
            "ended_ns": self.end_ns or None,
            "bytes": self.bytes,
        }


class RunStore:
    """Every run the gateway holds, bounded by :class:`StoreLimits`."""

    def __init__(self, limits: StoreLimits | None = None) -> None:
        """Start empty."""
        self.limits = limits or StoreLimits()
        self.runs: dict[str, Run] = {}  # insertion order: oldest first
        self.bytes = 0
        self.evictions: collections.Counter[str] = collections.Counter()
        self.recent_evictions: collections.deque[dict[str, Any]] = collections.deque(maxlen=_RECENT_EVICTIONS)
        self.node_spans: collections.OrderedDict[str, list[NodeSpan]] = collections.OrderedDict()
        self.problems = 0

    def ingest(self, telemetry: Telemetry, nodes: list[NodeSpan], now: float, wall_ns: int) -> None:
        """Take one request's records and spans; release what can be; evict what must go."""
        touched: dict[str, Run] = {}
        for carried in telemetry.chunks:
            run = self._run(carried.run_id, now, wall_ns)
            if run is not None:
                run.add_chunk(carried, now)
                touched[run.run_id] = run
        for end in telemetry.ends.values():
            run = self._run(end.run_id, now, wall_ns)
            if run is not None:
                run.add_end(
                    end.outcome,
                    end.event_count,
                    now,
                    stream_modes=end.stream_modes,
                    subgraphs=end.subgraphs,
                    tagged=end.tagged,
                    thread_id=end.thread_id,
                )
                touched[run.run_id] = run
        for span in telemetry.spans.values():
            run = self._run(span.run_id, now, wall_ns)
            if run is not None:
                run.graph = span.graph or run.graph
                run.trace_ids.add(span.trace_id)
                run.start_ns, run.end_ns = span.start_ns, span.end_ns
                run.add_end(
                    span.outcome or "",
                    None,
                    now,
                    stream_modes=span.stream_modes,
                    subgraphs=span.subgraphs,
                    tagged=span.tagged,
                    thread_id=span.thread_id,
                )
                touched[run.run_id] = run
        for node in nodes:
            self.node_spans.setdefault(node.trace_id, []).append(node)
            self.node_spans.move_to_end(node.trace_id)
        while len(self.node_spans) > _MAX_NODE_SPANS:
            self.node_spans.popitem(last=False)
        self.problems += len(telemetry.problems)
        for run in touched.values():
            before = run.bytes
            run.advance(now, self.limits.reorder_window_s)
            self.bytes += run.bytes - before
            run.notify()
        self._evict(now)

    def _run(self, run_id: str, now: float, wall_ns: int) -> Run | None:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = Run(run_id, now, wall_ns)
        return run

    def tick(self, now: float) -> None:
        """Release what waited long enough, and evict by age (call about twice a second)."""
        for run in list(self.runs.values()):
            before = run.bytes
            if run.advance(now, self.limits.reorder_window_s):
                self.bytes += run.bytes - before
                run.notify()
        self._evict(now)

    def _evict(self, now: float) -> None:
        limits = self.limits
        for run in list(self.runs.values()):
            if now - run.last_seen > limits.retention_s:
                self._drop(run, "age")
        while self.runs and (self.bytes > limits.max_bytes or len(self.runs) > limits.max_runs):
            # ended runs go first: a live run has consumers more likely than a finished one
            victim = next((r for r in self.runs.values() if r.finished), None) or next(iter(self.runs.values()))
            self._drop(victim, "size" if self.bytes > limits.max_bytes else "count")

    def _drop(self, run: Run, reason: str) -> None:
        del self.runs[run.run_id]
        self.bytes -= run.bytes
        self.evictions[reason] += 1
        self.recent_evictions.append({"run_id": run.run_id, "graph": run.graph, "reason": reason})
        run.evicted = reason
        logger.info("evicted run %s (%s, %s bytes)", run.run_id, reason, run.bytes)
        run.notify()

    def find(
        self, *, graph: str | None = None, thread_id: str | None = None, status: str | None = None
    ) -> Iterator[Run]:
        """The runs matching every filter given, newest first."""
        for run in sorted(self.runs.values(), key=lambda r: r.start_ns or r.first_seen_ns, reverse=True):
            if graph is not None and run.graph != graph:
                continue
            if thread_id is not None and run.thread_id != thread_id:
                continue
            if status is not None and status not in (run.status, run.outcome):
                continue
            yield run

    def nodes_of(self, run: Run) -> list[dict[str, Any]]:
        """The run's node timeline: node spans received, and nodes seen only in chunks."""
        out: list[dict[str, Any]] = []
        spanned: set[tuple[str, str]] = set()
        for trace_id in sorted(run.trace_ids):
            for span in self.node_spans.get(trace_id, ()):
                spanned.add((span.namespace.rsplit("|", 1)[0] if "|" in span.namespace else "", span.node))
                out.append(
                    {
                        "node": span.node,
                        "namespace": span.namespace,
                        "step": span.step,
                        "start_ns": span.start_ns,
                        "end_ns": span.end_ns,
                        "outcome": span.outcome,
                    }
                )
        for (namespace, node), (first, _, chunks) in run.nodes.items():
            if (namespace, node) not in spanned:
                out.append(
                    {
                        "node": node,
                        "namespace": namespace,
                        "step": None,
                        "start_ns": first,
                        "end_ns": None,
                        "chunks": chunks,
                    }
                )
        return sorted(out, key=lambda n: n["start_ns"] or 0)

    def stats(self) -> dict[str, Any]:
        """Store-wide counters, for ``GET /runs``."""
        return {
            "runs": len(self.runs),
            "bytes": self.bytes,
            "max_bytes": self.limits.max_bytes,
            "evicted": {"total": sum(self.evictions.values()), **self.evictions},
            "recent_evictions": list(self.recent_evictions),
            "unreadable_records": self.problems,
        }


def node_span(name: str, attributes: dict[str, Any], trace_id: str, start_ns: int, end_ns: int) -> NodeSpan | None:
    """A :class:`NodeSpan` if the span is otelstream's ``invoke_node`` span."""
    if not name.startswith(semconv.OPERATION_INVOKE_NODE) or semconv.NODE not in attributes:
        return None
    step = attributes.get(semconv.STEP)
    return NodeSpan(
        trace_id=trace_id,
        node=str(attributes[semconv.NODE]),
        namespace=str(attributes.get(semconv.NAMESPACE) or ""),
        step=step if isinstance(step, int) and not isinstance(step, bool) else None,
        start_ns=int(start_ns or 0),
        end_ns=int(end_ns or 0),
        outcome=str(attributes[semconv.OUTCOME]) if semconv.OUTCOME in attributes else None,
    )

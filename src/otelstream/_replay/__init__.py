"""Replay: rebuild the stream a run yielded from its exported telemetry.

``otelstream.replay(source)`` reads what a run left in telemetry — in-memory exporters, an
OTLP-JSON file (the Collector file exporter's format, or a trace as Jaeger v2 and Tempo return
it), or a running Arize Phoenix server — and yields the chunks ``graph.stream(...)`` yielded,
in the same order, decoded to the same Python shapes::

    for mode, chunk in otelstream.replay("otelstream-telemetry/demo.otlp.jsonl"):
        print(mode, chunk)

It never invents data: missing sequence numbers are reported as :class:`Gap` s, payloads that
were cut by the size cap come back as :class:`TruncatedPayload` markers, and a run absent
from the source (sampled out, or not exported yet) is an error that says so.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from typing import Any

from otelstream._otlp.records import Carried, Gap, Telemetry, TruncatedPayload
from otelstream._replay._sources import load
from otelstream.consumer.channel import Chunk
from otelstream.consumer.output import make_formatter, normalize_modes
from otelstream.errors import IncompleteStreamError, ReplayError, ReplaySourceError
from otelstream.telemetry.codec import DecodeError, decode

__all__ = [
    "Gap",
    "IncompleteStreamError",
    "Replay",
    "ReplayError",
    "ReplaySourceError",
    "RunSummary",
    "TruncatedPayload",
    "replay",
    "replay_thread",
    "runs",
]


@dataclasses.dataclass(frozen=True, slots=True)
class RunSummary:
    """One streamed run found in a source."""

    run_id: str
    graph: str
    trace_id: str
    start: datetime.datetime | None
    duration_s: float | None
    outcome: str | None
    stream_modes: tuple[str, ...]
    modes_known: bool
    subgraphs: bool | None
    tagged: bool | None
    event_count: int | None
    received: int
    thread_id: str | None = None
    first_chunk_ns: int | None = None

    @property
    def missing(self) -> int | None:
        """How many chunks the run emitted that the source lacks (None if unknown)."""
        return None if self.event_count is None else max(0, self.event_count - self.received)


def _summaries(telemetry: Telemetry) -> dict[str, RunSummary]:
    by_run: dict[str, list[Carried]] = {}
    for chunk in telemetry.chunks:
        by_run.setdefault(chunk.run_id, []).append(chunk)
    run_ids = list(dict.fromkeys([*telemetry.spans, *by_run, *telemetry.ends]))
    out: dict[str, RunSummary] = {}
    for run_id in run_ids:
        span = telemetry.spans.get(run_id)
        end = telemetry.ends.get(run_id)
        chunks = by_run.get(run_id, [])
        # the run span and the run-end record both describe the stream; either may be missing
        modes = (span.stream_modes if span is not None else None) or (end.stream_modes if end else None)
        start = (
            datetime.datetime.fromtimestamp(span.start_ns / 1e9, datetime.timezone.utc)
            if span is not None and span.start_ns
            else None
        )
        out[run_id] = RunSummary(
            run_id=run_id,
            graph=span.graph if span is not None else (chunks[0].graph if chunks else ""),
            trace_id=span.trace_id if span is not None else "",
            start=start,
            duration_s=(span.end_ns - span.start_ns) / 1e9 if span is not None and span.end_ns else None,
            outcome=span.outcome if span is not None and span.outcome else (end.outcome if end else None),
            # without the run span and the run-end record, only the modes of surviving chunks are known
            stream_modes=modes or tuple(dict.fromkeys(c.mode for c in sorted(chunks, key=lambda c: c.seq))),
            modes_known=modes is not None,
            subgraphs=span.subgraphs if span is not None else (end.subgraphs if end else None),
            tagged=span.tagged if span is not None else (end.tagged if end else None),
            event_count=end.event_count if end is not None else None,
            received=len({c.seq for c in chunks}),
            thread_id=(span.thread_id if span is not None else None) or (end.thread_id if end else None),
            first_chunk_ns=min((c.timestamp for c in chunks if c.timestamp), default=None),
        )
    return out


def runs(source: Any, *, thread_id: str | None = None, project: str = "default") -> list[RunSummary]:
    """List the streamed runs ``source`` holds, oldest first; only one thread's if given.

    Raises:
        ReplaySourceError: ``source`` cannot be read.
    """
    summaries = _summaries(load(source, project=project))
    found = [r for r in summaries.values() if thread_id is None or r.thread_id == str(thread_id)]
    return sorted(found, key=_started)


def _started(run: RunSummary) -> tuple[bool, float]:
    # the run span's start; without it, the first chunk the source holds
    if run.start is not None:
        return False, run.start.timestamp()
    if run.first_chunk_ns is not None:
        return False, run.first_chunk_ns / 1e9
    return True, 0.0


def replay_thread(source: Any, thread_id: str, *, project: str = "default", **options: Any) -> list[Replay]:
    """Rebuild the stream of every run of a thread, in the order the runs started.

    A human-in-the-loop thread is several runs: the one that stopped at an interrupt, then
    each resume. ``options`` are :func:`replay`'s (``stream_mode``, ``subgraphs``, ...).

    Raises:
        ReplaySourceError: ``source`` cannot be read.
        ReplayError: the source holds no run of ``thread_id``.
    """
    telemetry = load(source, project=project)
    summaries = _summaries(telemetry)
    found = sorted((r for r in summaries.values() if r.thread_id == str(thread_id)), key=_started)
    if not found:
        raise ReplayError(
            f"no run of thread {thread_id} in this source: its runs were sampled out, not exported yet, "
            "or ran without a checkpointer thread_id"
        )
    return [_replay_loaded(telemetry, summaries, run.run_id, **options) for run in found]


class Replay:
    """The replayed stream of one run: iterate it; ``gaps``, ``conflicts``, ``notes`` say what is missing or wrong."""

    def __init__(
        self,
        run: RunSummary,
        chunks: list[Carried],
        formatter: Any,
        modes: list[str],
        subgraphs: bool,
        notes: list[str],
    ) -> None:
        """Prepare the replay (use :func:`replay`)."""
        self.run = run
        self.notes = notes
        unique: dict[int, Carried] = {}
        conflicts: set[int] = set()
        beyond: list[int] = []
        for chunk in chunks:
            if run.event_count is not None and chunk.seq >= run.event_count:
                # the run's end record says how many chunks it emitted: this one cannot be its
                beyond.append(chunk.seq)
                continue
            first = unique.get(chunk.seq)
            if first is None:
                unique[chunk.seq] = chunk
            elif first.identity() == chunk.identity():
                # at-least-once export delivers some records twice: normal
                notes.append(f"chunk {chunk.seq} appears more than once; the copies are identical")
            else:
                conflicts.add(chunk.seq)
        if beyond:
            notes.append(
                f"{len(beyond)} record(s) claim sequence numbers past the {run.event_count} chunks the run "
                f"emitted ({', '.join(map(str, sorted(beyond)[:10]))}): ignored as invalid"
            )
        # sequence numbers present in copies that differ: a forgery or a damaged source
        self.conflicts = sorted(conflicts)
        if conflicts:
            notes.append(
                f"chunk(s) {', '.join(map(str, self.conflicts))} arrived in conflicting copies: the stream "
                "cannot be trusted (the first copy is shown)"
            )
        self._chunks = [unique[seq] for seq in sorted(unique)]
        self.gaps = _gaps(sorted(unique), run.event_count)
        self.truncated = [c.seq for c in self._chunks if c.truncated]
        if run.event_count is None:
            notes.append(
                "the run's otelstream.run.end record is not in the source: chunks missing at the "
                "end of the stream cannot be detected"
            )
        self._formatter = formatter
        self._modes = set(modes)
        self._subgraphs = subgraphs

    @property
    def complete(self) -> bool:
        """Whether every chunk the run emitted is here, whole."""
        return not self.gaps and not self.truncated and not self.conflicts and self.run.event_count is not None

    def __iter__(self) -> Iterator[Any]:
        for _, chunk in self.numbered():
            yield self._formatter(chunk)

    def numbered(self) -> Iterator[tuple[int, Chunk]]:
        """Yield ``(seq, chunk)`` for each replayed chunk, before shaping it like ``stream()``."""
        for carried in self._chunks:
            if carried.mode not in self._modes:
                continue
            if carried.namespace and not self._subgraphs:
                continue
            yield carried.seq, Chunk(carried.namespace, carried.mode, _payload(carried))


def _payload(carried: Carried) -> Any:
    if carried.truncated:
        return TruncatedPayload(carried.seq, carried.size, carried.payload)
    try:
        return decode(carried.payload)
    except DecodeError as exc:
        raise ReplayError(f"chunk {carried.seq} of run {carried.run_id}: {exc}") from None


def _gaps(seqs: list[int], expected: int | None) -> list[Gap]:
    gaps: list[Gap] = []
    following = 0
    for seq in seqs:
        if seq > following:
            gaps.append(Gap(following, seq - following))
        following = seq + 1
    if expected is not None and expected > following:
        gaps.append(Gap(following, expected - following))
    return gaps


def replay(
    source: Any,
    *,
    run_id: str | None = None,
    stream_mode: Any = None,
    subgraphs: bool = False,
    version: str = "v1",
    strict: bool = False,
    project: str = "default",
) -> Replay:
    """Rebuild the stream of one run from ``source``.

    Args:
        source: In-memory exporters or finished spans/log records, an OTLP-JSON file path, or
            a Phoenix server URL (``http://127.0.0.1:6006``).
        run_id: The run to replay; may be omitted when the source holds exactly one run.
        stream_mode: As passed to ``stream()``: a mode (bare chunks) or a list (``(mode,
            chunk)`` pairs). Default: the modes the run streamed, in the shape it streamed them.
        subgraphs: As passed to ``stream()``.
        version: ``"v1"`` or ``"v2"``, as passed to ``stream()``.
        strict: Raise :class:`IncompleteStreamError` instead of replaying a stream with gaps
            or truncated payloads.
        project: The Phoenix project to read.

    Returns:
        An iterable of chunks with ``run``, ``gaps``, ``truncated``, ``notes``, ``complete``.

    Raises:
        ReplaySourceError: ``source`` cannot be read.
        ReplayError: the run is not in the source, or it did not stream what is asked.
    """
    telemetry = load(source, project=project)
    return _replay_loaded(
        telemetry,
        _summaries(telemetry),
        run_id,
        stream_mode=stream_mode,
        subgraphs=subgraphs,
        version=version,
        strict=strict,
    )


def _replay_loaded(
    telemetry: Telemetry,
    summaries: dict[str, RunSummary],
    run_id: str | None,
    *,
    stream_mode: Any = None,
    subgraphs: bool = False,
    version: str = "v1",
    strict: bool = False,
) -> Replay:
    if run_id is None:
        if len(summaries) != 1:
            listed = ", ".join(f"{r.run_id} ({r.graph})" for r in summaries.values()) or "none"
            raise ReplayError(
                f"the source holds {len(summaries)} runs; name one with run_id= (--run-id from the shell): {listed}"
            )
        run_id = next(iter(summaries))
    run = summaries.get(run_id)
    if run is None:
        raise ReplayError(
            f"run {run_id} has no telemetry in this source: it was sampled out, not exported yet, or streamed elsewhere"
        )
    notes = list(telemetry.problems)
    recorded = list(run.stream_modes)
    if stream_mode is None and not recorded:
        notes.append(f"run {run_id} has no record of its stream modes and no chunks in this source")
        return Replay(run, [], make_formatter([], subgraphs, version), [], subgraphs, notes)
    if stream_mode is None:
        # the shape the run was streamed with: bare chunks when it was not given a list
        stream_mode = recorded if run.tagged is not False or len(recorded) != 1 else recorded[0]
    modes = normalize_modes(stream_mode, "values")
    missing_modes = [m for m in modes if m not in recorded]
    if missing_modes and run.modes_known:
        raise ReplayError(f"run {run_id} did not stream {missing_modes}; it streamed {recorded}")
    if missing_modes:
        notes.append(
            f"no {missing_modes} chunks are in the source, and the run's span and run-end record are "
            "missing too: whether it streamed them is unknown"
        )
    if subgraphs and run.subgraphs is False:
        notes.append("the run was streamed without subgraphs=True: no subgraph chunks were recorded")
    formatter = make_formatter(stream_mode, subgraphs, version)
    result = Replay(run, [c for c in telemetry.chunks if c.run_id == run_id], formatter, modes, subgraphs, notes)
    if strict and not result.complete:
        raise IncompleteStreamError(
            f"run {run_id} is incomplete in this source: gaps {result.gaps}, truncated chunks "
            f"{result.truncated}, emitted count {'unknown' if run.event_count is None else run.event_count}"
        )
    return result

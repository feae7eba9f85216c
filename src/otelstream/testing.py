"""Test the one-pipeline promise in your own suite: the telemetry rebuilds the stream you saw.

:func:`capture` points otelstream at fresh in-memory exporters for the duration of a ``with``
block and puts the previous configuration back afterwards. The :class:`Capture` it yields
holds what your runs exported, rebuilds their streams with :func:`otelstream.replay`, and
checks them against what ``stream()`` yielded::

    import otelstream.testing


    def test_my_graph_streams_what_it_exports() -> None:
        with otelstream.testing.capture() as captured:
            yielded = list(graph.stream(inputs, stream_mode=["updates", "custom"], subgraphs=True))
        captured.assert_same_stream(yielded)
        assert [run.outcome for run in captured.runs()] == ["completed"]

Or as a pytest fixture::

    @pytest.fixture
    def captured() -> Iterator[otelstream.testing.Capture]:
        with otelstream.testing.capture() as captured:
            yield captured

Async streams need nothing else: collect ``[c async for c in graph.astream(...)]`` inside the
block. :func:`assert_same_stream` also works on its own against any source replay reads (an
OTLP-JSON file your test exported, a Phoenix URL).

A capture changes otelstream's process-wide configuration: captures nest, but two must not
run at the same time in different threads of one process (pytest-xdist's worker processes are
fine).
"""

from __future__ import annotations

import contextlib
import pprint
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelstream import _config
from otelstream._replay import Replay, RunSummary, replay, runs
from otelstream.telemetry import semconv
from otelstream.telemetry.redact import Redactor

__all__ = ["Capture", "assert_same_stream", "capture"]

_MAX_SHOWN_CHARS = 2000


class Capture:
    """What otelstream exported while a :func:`capture` block ran, and the streams it rebuilds.

    The accessors read the exporters each time they are called, so they see runs that ended
    after the previous call, and keep working after the ``with`` block has exited.

    Attributes:
        tracer_provider: The SDK tracer provider otelstream emitted its spans through.
        logger_provider: The SDK logger provider otelstream emitted its stream records through.
        span_exporter: Receives every finished span, synchronously.
        log_exporter: Receives every emitted log record, synchronously.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider,
        logger_provider: LoggerProvider,
        span_exporter: InMemorySpanExporter,
        log_exporter: InMemoryLogRecordExporter,
    ) -> None:
        """Hold providers and exporters (use :func:`capture`, which wires them to otelstream)."""
        self.tracer_provider = tracer_provider
        self.logger_provider = logger_provider
        self.span_exporter = span_exporter
        self.log_exporter = log_exporter

    def spans(self) -> list[ReadableSpan]:
        """Return every finished span, in the order the spans ended."""
        return list(self.span_exporter.get_finished_spans())

    def logs(self) -> list[ReadableLogRecord]:
        """Return every exported log record, otelstream's run-end records included."""
        return list(self.log_exporter.get_finished_logs())

    def records(self, run_id: str | None = None, *, mode: str | None = None) -> list[ReadableLogRecord]:
        """Return the log records that carry stream chunks, run by run, each run in ``seq`` order.

        Chunks of the modes ``span_event_modes`` carries are span events, not records: find
        them on :meth:`spans`, or use :meth:`replay`, which reads both carriers.

        Args:
            run_id: Only this run's records.
            mode: Only this stream mode's records (``"updates"``, ``"messages"``, ...).
        """
        chunks: list[tuple[str, int, ReadableLogRecord]] = []
        for record in self.log_exporter.get_finished_logs():
            name = record.log_record.event_name or ""
            if not name.startswith(semconv.EVENT_PREFIX) or name == semconv.RUN_END_EVENT:
                continue
            if mode is not None and name != semconv.EVENT_PREFIX + mode:
                continue
            attributes = record.log_record.attributes or {}
            run = str(attributes.get(semconv.RUN_ID, ""))
            if run_id is None or run == run_id:
                chunks.append((run, _seq(attributes.get(semconv.SEQ)), record))
        # runs in the order their first record was exported; within a run, seq order (nodes on
        # worker threads may export out of seq order)
        first_seen: dict[str, int] = {}
        for run, _, _ in chunks:
            first_seen.setdefault(run, len(first_seen))
        chunks.sort(key=lambda item: (first_seen[item[0]], item[1]))
        return [record for _, _, record in chunks]

    def runs(self, *, thread_id: str | None = None) -> list[RunSummary]:
        """Return the streamed runs the capture holds, oldest first (see :func:`otelstream.runs`).

        Args:
            thread_id: Only the runs of this checkpointer thread.
        """
        return runs(self._source(), thread_id=thread_id)

    def replay(
        self,
        run_id: str | None = None,
        *,
        stream_mode: Any = None,
        subgraphs: bool | None = None,
        version: str = "v1",
        strict: bool = False,
    ) -> Replay:
        """Rebuild one run's stream from the captured telemetry (see :func:`otelstream.replay`).

        Args:
            run_id: The run; may be omitted when the capture holds exactly one run.
            stream_mode: As passed to ``stream()``; default: the modes and shape the run used.
            subgraphs: As passed to ``stream()``; default (unlike :func:`otelstream.replay`):
                what the run was streamed with.
            version: ``"v1"`` or ``"v2"``, as passed to ``stream()`` (not recorded).
            strict: Raise :class:`~otelstream.IncompleteStreamError` on gaps or truncation.

        Returns:
            The replayed stream, with ``run``, ``gaps``, ``truncated``, ``notes``, ``complete``.

        Raises:
            ReplayError: the run is not in the capture, or ``run_id`` is needed and missing.
        """
        return _replay(self._source(), run_id, stream_mode, subgraphs, version, strict)

    def assert_same_stream(
        self,
        yielded: Iterable[Any],
        *,
        run_id: str | None = None,
        stream_mode: Any = None,
        subgraphs: bool | None = None,
        version: str = "v1",
    ) -> None:
        """Check that the captured telemetry rebuilds exactly the chunks ``stream()`` yielded.

        Args:
            yielded: The chunks your code received from ``stream()`` / ``astream()``.
            run_id: The run they came from; may be omitted when the capture holds one run.
            stream_mode: As passed to ``stream()``; default: what the run recorded.
            subgraphs: As passed to ``stream()``; default: what the run recorded.
            version: As passed to ``stream()``.

        Raises:
            AssertionError: the streams differ; the message names the first differing chunk,
                where inside it they differ, and what replay found missing.
            ReplayError: the run is not in the capture, or ``run_id`` is needed and missing.
        """
        assert_same_stream(
            yielded,
            self._source(),
            run_id=run_id,
            stream_mode=stream_mode,
            subgraphs=subgraphs,
            version=version,
        )

    def clear(self) -> None:
        """Forget everything captured so far (runs still streaming keep exporting here)."""
        self.span_exporter.clear()
        self.log_exporter.clear()

    def _source(self) -> tuple[InMemorySpanExporter, InMemoryLogRecordExporter]:
        return self.span_exporter, self.log_exporter


@contextlib.contextmanager
def capture(
    *,
    span_event_modes: Sequence[str] | None = None,
    max_payload_bytes: int | None = None,
    redact: bool | Redactor | None = None,
    payloads: Literal["full", "none"] | None = None,
    capture_message_content: bool | None = None,
) -> Iterator[Capture]:
    """Send otelstream's telemetry to fresh in-memory exporters inside the ``with`` block.

    Runs started in the block emit through a new SDK ``TracerProvider`` and ``LoggerProvider``
    with synchronous in-memory exporters. On exit the configuration in force before is put
    back exactly — nothing of it is shut down, so its exporters, additional processors and
    Prometheus endpoint carry on — and later runs export where they did before and never reach
    this capture. A run still streaming at exit keeps exporting here: the capture's providers
    are not shut down, and the exporters stay readable.

    The options are :func:`otelstream.configure`'s, for this capture only; left out, they take
    configure's defaults (and its ``OTELSTREAM_*`` variables), not the previous configuration's.

    Args:
        span_event_modes: Modes carried as span events instead of log records.
        max_payload_bytes: Cap on each record's JSON payload.
        redact: Credential redaction in telemetry payloads.
        payloads: ``"none"`` for metadata-only telemetry (nothing to rebuild chunks from).
        capture_message_content: Put prompts and completions on LLM and tool spans.

    Yields:
        The :class:`Capture` holding what the block's runs exported.

    Raises:
        ValueError: an option is invalid (then nothing was changed).
    """
    span_exporter = InMemorySpanExporter()
    log_exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call] # the SDK leaves it unannotated
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    with _config.override(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        span_event_modes=span_event_modes,
        max_payload_bytes=max_payload_bytes,
        redact=redact,
        payloads=payloads,
        capture_message_content=capture_message_content,
    ):
        yield Capture(tracer_provider, logger_provider, span_exporter, log_exporter)


def assert_same_stream(
    yielded: Iterable[Any],
    source: Any,
    *,
    run_id: str | None = None,
    stream_mode: Any = None,
    subgraphs: bool | None = None,
    version: str = "v1",
) -> None:
    """Check that ``source`` rebuilds exactly the chunks ``stream()`` yielded for one run.

    Args:
        yielded: The chunks your code received from ``stream()`` / ``astream()``.
        source: Anything :func:`otelstream.replay` reads: in-memory exporters, an OTLP-JSON
            file path, a Phoenix URL.
        run_id: The run they came from; may be omitted when the source holds one run.
        stream_mode: As passed to ``stream()``; default: what the run recorded.
        subgraphs: As passed to ``stream()``; default: what the run recorded.
        version: As passed to ``stream()``.

    Raises:
        AssertionError: the streams differ; the message names the first differing chunk,
            where inside it they differ, and what replay found missing.
        ReplayError: the run is not in the source, or ``run_id`` is needed and missing.
        ReplaySourceError: ``source`` cannot be read.
    """
    expected = list(yielded)
    replayed = _replay(source, run_id, stream_mode, subgraphs, version, strict=False)
    rebuilt = list(replayed)
    if expected == rebuilt:
        return
    seqs = [seq for seq, _ in replayed.numbered()]
    raise AssertionError(_mismatch(expected, rebuilt, seqs, replayed))


# --- replay with the run's own subgraphs flag --------------------------------------------------


def _replay(
    source: Any, run_id: str | None, stream_mode: Any, subgraphs: bool | None, version: str, strict: bool
) -> Replay:
    if subgraphs is None:
        found = runs(source)
        if run_id is not None:
            found = [r for r in found if r.run_id == run_id]
        # no such run, or several and no run_id: replay() raises the error that says so
        subgraphs = len(found) == 1 and bool(found[0].subgraphs)
    return replay(source, run_id=run_id, stream_mode=stream_mode, subgraphs=subgraphs, version=version, strict=strict)


# --- the first mismatch, readably ----------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _mismatch(expected: list[Any], rebuilt: list[Any], seqs: list[int], replayed: Replay) -> str:
    run = replayed.run.run_id
    index = next(
        (i for i, (a, b) in enumerate(zip(expected, rebuilt, strict=False)) if a != b),
        min(len(expected), len(rebuilt)),
    )
    lines = [
        f"stream() yielded {len(expected)} chunks, the telemetry of run {run} rebuilds {len(rebuilt)}; "
        f"first mismatch at chunk [{index}]" + (f" (otelstream.seq {seqs[index]})" if index < len(seqs) else "") + ":"
    ]
    if index >= len(rebuilt):
        lines.append("  the telemetry has no such chunk; stream() yielded:")
        lines.append(_shown(expected[index], "    "))
    elif index >= len(expected):
        lines.append("  stream() yielded no such chunk; the telemetry holds:")
        lines.append(_shown(rebuilt[index], "    "))
    else:
        path, left, right = _difference(expected[index], rebuilt[index], f"[{index}]")
        lines.append(f"  at {path}: {_short(left)} != {_short(right)}" + _types(left, right))
        lines.append("  yielded:")
        lines.append(_shown(expected[index], "    "))
        lines.append("  rebuilt:")
        lines.append(_shown(rebuilt[index], "    "))
    if not replayed.complete:
        lines.append(
            f"  the rebuilt stream is incomplete: gaps {replayed.gaps}, truncated chunks (seq) "
            f"{replayed.truncated}, emitted count "
            f"{'unknown' if replayed.run.event_count is None else replayed.run.event_count}"
        )
    lines.extend(f"  note: {note}" for note in replayed.notes)
    return "\n".join(lines)


def _difference(left: Any, right: Any, path: str) -> tuple[str, Any, Any]:
    """Descend to the innermost place where two unequal values differ."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in left:
            if key not in right:
                return f"{path}[{key!r}]", left[key], _MISSING
        for key in right:
            if key not in left:
                return f"{path}[{key!r}]", _MISSING, right[key]
        for key in left:
            if left[key] != right[key]:
                return _difference(left[key], right[key], f"{path}[{key!r}]")
    elif isinstance(left, (list, tuple)) and type(left) is type(right):
        for i, (a, b) in enumerate(zip(left, right, strict=False)):
            if a != b:
                return _difference(a, b, f"{path}[{i}]")
        i = min(len(left), len(right))
        if len(left) > len(right):
            return f"{path}[{i}]", left[i], _MISSING
        if len(right) > len(left):
            return f"{path}[{i}]", _MISSING, right[i]
    return path, left, right


def _types(left: Any, right: Any) -> str:
    if left is _MISSING or right is _MISSING or type(left) is type(right):
        return ""
    return f" (yielded {type(left).__name__}, rebuilt {type(right).__name__})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _shown(value: Any, indent: str) -> str:
    text = pprint.pformat(value, width=100, compact=True)
    if len(text) > _MAX_SHOWN_CHARS:
        text = text[:_MAX_SHOWN_CHARS] + "…"
    return "\n".join(indent + line for line in text.splitlines())


def _seq(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1

"""What a reader takes out of otelstream's telemetry: stream records, run ends and run spans.

Shared by replay (which reads a whole source) and the gateway (which reads one OTLP request
at a time), so both understand a record the same way. This module imports nothing from the
engine: the gateway must not depend on it (an import-linter contract checks that).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from otelstream.telemetry import semconv

__all__ = ["STREAM_MODE_NAMES", "Carried", "Gap", "RunEnd", "RunSpan", "Telemetry", "TruncatedPayload"]

STREAM_MODE_NAMES: frozenset[str] = frozenset(
    ("values", "updates", "custom", "messages", "tasks", "checkpoints", "debug")
)
"""The modes otelstream writes (``engine.types.STREAM_MODES``; a test checks they agree)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Gap:
    """Chunks ``first_seq`` to ``first_seq + count - 1`` are missing from the source."""

    first_seq: int
    count: int


@dataclasses.dataclass(frozen=True, slots=True)
class TruncatedPayload:
    """Stands for a chunk whose payload the size cap cut in telemetry.

    Attributes:
        seq: The chunk's sequence number.
        size: The payload's full length in characters, when recorded.
        head: The JSON text that was kept (not decodable on its own).
    """

    seq: int
    size: int | None
    head: str


@dataclasses.dataclass(frozen=True, slots=True)
class Carried:
    """One chunk as telemetry carried it (a log record or a span event)."""

    run_id: str
    seq: int
    mode: str
    namespace: tuple[str, ...]
    graph: str
    node: str
    payload: str
    truncated: bool
    size: int | None
    timestamp: int
    trace_id: str = ""

    def identity(self) -> tuple[Any, ...]:
        """What two copies of one chunk share when they are the same copy (at-least-once export).

        Copies of a sequence number that differ in any of it are conflicting: a forgery or a
        damaged source, never a duplicate.
        """
        return (self.mode, self.namespace, self.graph, self.node, self.payload, self.truncated)


@dataclasses.dataclass(frozen=True, slots=True)
class RunEnd:
    """The ``otelstream.run.end`` record: how the run ended and how many chunks it emitted."""

    run_id: str
    outcome: str
    event_count: int
    stream_modes: tuple[str, ...] | None
    tagged: bool | None
    subgraphs: bool | None
    thread_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RunSpan:
    """The ``invoke_workflow`` span of a streamed run."""

    run_id: str
    graph: str
    trace_id: str
    start_ns: int
    end_ns: int
    outcome: str | None
    stream_modes: tuple[str, ...] | None
    tagged: bool | None
    subgraphs: bool | None
    thread_id: str | None = None


@dataclasses.dataclass(slots=True)
class Telemetry:
    """Everything replay found in a source, with what it could not read."""

    chunks: list[Carried] = dataclasses.field(default_factory=list)
    ends: dict[str, RunEnd] = dataclasses.field(default_factory=dict)
    spans: dict[str, RunSpan] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)

    def add_record(self, name: str, attributes: dict[str, Any], timestamp: int, where: str, trace_id: str = "") -> None:
        """Take one log record or span event, if it is otelstream's (``trace_id`` in hex, if known)."""
        if not name.startswith(semconv.EVENT_PREFIX):
            return
        try:
            if name == semconv.RUN_END_EVENT:
                run_id = str(attributes[semconv.RUN_ID])
                modes = attributes.get(semconv.STREAM_MODES)
                self.ends[run_id] = RunEnd(
                    run_id=run_id,
                    outcome=str(attributes.get(semconv.OUTCOME, "")),
                    event_count=_int(attributes[semconv.EVENT_COUNT], semconv.EVENT_COUNT),
                    stream_modes=_modes(modes),
                    tagged=_optional_bool(attributes.get(semconv.MODES_TAGGED)),
                    subgraphs=_optional_bool(attributes.get(semconv.SUBGRAPHS)),
                    thread_id=_optional_str(attributes.get(semconv.GEN_AI_CONVERSATION_ID)),
                )
                return
            mode = name[len(semconv.EVENT_PREFIX) :]
            if mode not in STREAM_MODE_NAMES:
                self.problems.append(f"{where}: {name} is not a stream mode otelstream writes; ignored")
                return
            namespace = str(attributes.get(semconv.NAMESPACE) or "")
            omitted = bool(attributes.get(semconv.PAYLOAD_OMITTED, False))
            # metadata-only telemetry: the chunk's place is known, its content never left the process
            payload = "" if omitted else attributes[semconv.PAYLOAD]
            if not isinstance(payload, str):
                raise TypeError(f"{semconv.PAYLOAD} is {type(payload).__name__}, not a string")
            self.chunks.append(
                Carried(
                    run_id=str(attributes[semconv.RUN_ID]),
                    seq=_seq(attributes[semconv.SEQ]),
                    mode=mode,
                    namespace=tuple(namespace.split("|")) if namespace else (),
                    graph=str(attributes.get(semconv.GRAPH, "")),
                    node=str(attributes.get(semconv.NODE, "")),
                    payload=payload,
                    truncated=omitted or bool(attributes.get(semconv.PAYLOAD_TRUNCATED, False)),
                    size=_int(attributes[semconv.PAYLOAD_SIZE], semconv.PAYLOAD_SIZE)
                    if semconv.PAYLOAD_SIZE in attributes
                    else None,
                    timestamp=int(timestamp or 0),
                    trace_id=trace_id,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            self.problems.append(f"{where}: unreadable {name} record ({type(exc).__name__}: {exc})")

    def add_span(
        self,
        name: str,
        attributes: dict[str, Any],
        trace_id: str,
        start_ns: int,
        end_ns: int,
    ) -> None:
        """Take a span, if it is the run span of a streamed run."""
        run_id = attributes.get(semconv.RUN_ID)
        if not name.startswith(semconv.OPERATION_INVOKE_WORKFLOW) or run_id is None:
            return
        if attributes.get(semconv.NAMESPACE):
            return  # a subgraph's run span: its chunks belong to the root run's stream
        modes = attributes.get(semconv.STREAM_MODES)
        subgraphs = attributes.get(semconv.SUBGRAPHS)
        self.spans[str(run_id)] = RunSpan(
            run_id=str(run_id),
            graph=str(attributes.get(semconv.GEN_AI_WORKFLOW_NAME, "")),
            trace_id=trace_id,
            start_ns=int(start_ns or 0),
            end_ns=int(end_ns or 0),
            outcome=str(attributes[semconv.OUTCOME]) if semconv.OUTCOME in attributes else None,
            stream_modes=_modes(modes),
            tagged=_optional_bool(attributes.get(semconv.MODES_TAGGED)),
            subgraphs=_optional_bool(subgraphs),
            thread_id=_optional_str(attributes.get(semconv.GEN_AI_CONVERSATION_ID)),
        )


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"{what} is {type(value).__name__}, not an integer")
    return int(value)


def _seq(value: Any) -> int:
    seq = _int(value, semconv.SEQ)
    # an OTLP int64 attribute: anything outside is not a number otelstream wrote
    if seq < 0 or seq > _MAX_SEQ:
        raise ValueError(f"{semconv.SEQ} is {seq}, not a position in a stream")
    return seq


_MAX_SEQ = 2**63 - 1


def _modes(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, (list, tuple)):
        return None
    return tuple(str(m) for m in value if str(m) in STREAM_MODE_NAMES)


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)

"""What replay reads out of any source: stream records, run ends and run spans."""

from __future__ import annotations

import dataclasses
from typing import Any

from otelstream.engine.types import STREAM_MODES
from otelstream.telemetry import semconv

__all__ = ["Carried", "RunEnd", "RunSpan", "Telemetry"]


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

    def add_record(self, name: str, attributes: dict[str, Any], timestamp: int, where: str) -> None:
        """Take one log record or span event, if it is otelstream's."""
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
            if mode not in STREAM_MODES:
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
                    seq=_int(attributes[semconv.SEQ], semconv.SEQ),
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


def _modes(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, (list, tuple)):
        return None
    return tuple(str(m) for m in value if str(m) in STREAM_MODES)


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)

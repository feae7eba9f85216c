"""Names otelstream writes into OpenTelemetry: the telemetry contract (``docs/telemetry.md``).

Treat every value here as public API: the collector config, dashboards and replay match on
these strings.
"""

from __future__ import annotations

from typing import Final

INSTRUMENTATION_SCOPE: Final = "otelstream"

# --- stream events: one log record / span event per chunk ---------------------------------
EVENT_PREFIX: Final = "otelstream."
"""Every chunk's record is named ``otelstream.<mode>`` (``otelstream.updates``, ...)."""
RUN_END_EVENT: Final = "otelstream.run.end"
"""Closes a run's stream: carries the outcome and how many chunks the run emitted."""

SEQ: Final = "otelstream.seq"
RUN_ID: Final = "otelstream.run_id"
MODE: Final = "otelstream.mode"
NAMESPACE: Final = "otelstream.namespace"
GRAPH: Final = "otelstream.graph"
NODE: Final = "otelstream.node"
PAYLOAD: Final = "otelstream.payload"
PAYLOAD_SIZE: Final = "otelstream.payload.size"
PAYLOAD_TRUNCATED: Final = "otelstream.payload.truncated"
PAYLOAD_OMITTED: Final = "otelstream.payload.omitted"
"""True on records of metadata-only telemetry: the payload never left the process."""
EVENT_COUNT: Final = "otelstream.event_count"
DROPPED: Final = "otelstream.dropped"
"""Records of the run lost before export; ``otelstream.dropped.<mode>`` per mode."""
METRIC_DROPPED: Final = "otelstream.stream.dropped"

# --- spans ---------------------------------------------------------------------------------
OUTCOME: Final = "otelstream.outcome"
STEP: Final = "otelstream.step"
TASK_ID: Final = "otelstream.task_id"
STREAM_MODES: Final = "otelstream.stream_modes"
MODES_TAGGED: Final = "otelstream.stream_modes.tagged"
"""True when chunks were ``(mode, chunk)`` pairs (``stream_mode`` passed as a list)."""
SUBGRAPHS: Final = "otelstream.subgraphs"
INTERRUPTS: Final = "otelstream.interrupts"
"""On an interrupted node span: how many interrupts the node paused with."""
LINK_REASON: Final = "otelstream.link.reason"
"""On a run span's link to the run that last wrote its thread's checkpoint."""
LINK_CONTINUES_THREAD: Final = "continues_thread"

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
ERROR_TYPE: Final = "error.type"

OPERATION_INVOKE_WORKFLOW: Final = "invoke_workflow"
OPERATION_INVOKE_NODE: Final = "invoke_node"


def event_name(mode: str) -> str:
    """Return the record name that carries chunks of ``mode``."""
    return EVENT_PREFIX + mode

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

# the span event a failure is recorded as: the names Span.record_exception writes
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
EXCEPTION_ESCAPED: Final = "exception.escaped"

OPERATION_INVOKE_WORKFLOW: Final = "invoke_workflow"
OPERATION_INVOKE_NODE: Final = "invoke_node"


def event_name(mode: str) -> str:
    """Return the record name that carries chunks of ``mode``."""
    return EVENT_PREFIX + mode


# --- LLM and tool calls (GenAI semantic conventions, development status) -------------------
OPERATION_CHAT: Final = "chat"
OPERATION_EXECUTE_TOOL: Final = "execute_tool"

GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
LLM_CHUNKS: Final = "otelstream.llm.chunks"
"""How many chunks the LLM call streamed (the closing chunk of `llm_call`/OpenAI calls included)."""

METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
METRIC_TOOL_DURATION: Final = "gen_ai.execute_tool.duration"

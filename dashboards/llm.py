"""The ``otelstream-llm`` dashboard: the OpenTelemetry GenAI client metrics otelstream records.

Token usage, operations, time to first chunk, time per output chunk, operation and tool duration;
every model-level query filters on the ``model`` variable (``gen_ai_request_model``).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards._panels import (
    LLM_UID,
    RUNS_UID,
    PanelBuilder,
    add_rows,
    base,
    dashboard_link,
    datasource_variable,
    label_variable,
    prom,
    quantiles,
    single_stat,
    ts,
)

MODEL_FILTER = '{gen_ai_request_model=~"$model"}'
TOKEN_SUM = "gen_ai_client_token_usage_sum"
OPERATIONS = "gen_ai_client_operation_duration_seconds_count"

GENAI_NOTE = (
    " GenAI metric from the OpenTelemetry GenAI semantic conventions, recorded by otelstream for every LLM call"
    " whose tokens the `messages` stream mode carries (LangChain chat models, otelstream.llm_call, the OpenAI"
    " instrumentor) and every LangChain tool."
)
"""Appended to every panel description: where the metric comes from (and that it needs ``messages``)."""


def dashboard() -> db.Dashboard:
    """Return the LLM dashboard: tokens per second, time to first chunk, operation duration, usage."""
    d = (
        base(
            "otelstream / LLM calls",
            LLM_UID,
            "GenAI metrics (OpenTelemetry GenAI semantic conventions): tokens, time to first chunk, time per "
            "output chunk, operation and tool duration, recorded by otelstream for every LLM and tool call.",
            ["llm", "gen_ai"],
        )
        .with_variable(datasource_variable("prometheus"))
        .with_variable(label_variable("model", "Request model", OPERATIONS, "gen_ai_request_model"))
        .link(dashboard_link("Runs", RUNS_UID))
    )
    return add_rows(d, {"Usage": usage_panels(), "Throughput": throughput_panels(), "Latency": latency_panels()})


def usage_panels() -> list[PanelBuilder]:
    """Return the range totals: input and output tokens, operations, and p95 time to first chunk."""
    m = MODEL_FILTER
    return [
        single_stat(
            "Input tokens (range)",
            "Input tokens used during the selected range (gen_ai_client_token_usage, gen_ai_token_type=input)."
            + GENAI_NOTE,
            f'sum(increase({TOKEN_SUM}{{gen_ai_request_model=~"$model", gen_ai_token_type="input"}}[$__range]))',
            "short",
            [(None, "blue")],
        ),
        single_stat(
            "Output tokens (range)",
            "Output tokens used during the selected range (gen_ai_client_token_usage, gen_ai_token_type=output)."
            + GENAI_NOTE,
            f'sum(increase({TOKEN_SUM}{{gen_ai_request_model=~"$model", gen_ai_token_type="output"}}[$__range]))',
            "short",
            [(None, "blue")],
        ),
        single_stat(
            "Operations (range)",
            "GenAI operations (model calls) during the selected range (gen_ai_client_operation_duration_seconds)."
            + GENAI_NOTE,
            f"sum(increase({OPERATIONS}{m}[$__range]))",
            "short",
            [(None, "blue")],
        ),
        single_stat(
            "Time to first chunk p95 (range)",
            "p95 of the time from request to the first streamed chunk over the selected range "
            "(gen_ai_client_operation_time_to_first_chunk_seconds; streaming calls only)." + GENAI_NOTE,
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(gen_ai_client_operation_time_to_first_chunk_seconds_bucket{m}[$__range])))",
            "s",
            [(None, "green"), (5.0, "orange"), (10.0, "red")],
        ),
    ]


def throughput_panels() -> list[PanelBuilder]:
    """Return tokens per second (by type, by model), tokens per operation, and operations per second."""
    m = MODEL_FILTER
    return [
        ts(
            "Tokens per second by type",
            "Input and output tokens per second (rate of gen_ai_client_token_usage_sum)." + GENAI_NOTE,
            [
                prom(
                    f"sum by (gen_ai_token_type) (rate({TOKEN_SUM}{m}[$__rate_interval]))",
                    "A",
                    "{{gen_ai_token_type}}",
                )
            ],
            "short",
        ),
        ts(
            "Output tokens per second by model",
            "Output tokens per second per request model." + GENAI_NOTE,
            [
                prom(
                    "sum by (gen_ai_request_model) "
                    f'(rate({TOKEN_SUM}{{gen_ai_request_model=~"$model", gen_ai_token_type="output"}}'
                    "[$__rate_interval]))",
                    "A",
                    "{{gen_ai_request_model}}",
                )
            ],
            "short",
        ),
        ts(
            "Tokens per operation",
            "Average tokens per operation, by token type (sum / count of gen_ai_client_token_usage)." + GENAI_NOTE,
            [
                prom(
                    f"sum by (gen_ai_token_type) (rate({TOKEN_SUM}{m}[$__rate_interval])) "
                    f"/ sum by (gen_ai_token_type) (rate(gen_ai_client_token_usage_count{m}[$__rate_interval]))",
                    "A",
                    "{{gen_ai_token_type}}",
                )
            ],
            "short",
        ),
        ts(
            "Operations per second by model and error",
            "GenAI operations per second by request model; error_type is set on failed calls." + GENAI_NOTE,
            [
                prom(
                    f"sum by (gen_ai_request_model, error_type) (rate({OPERATIONS}{m}[$__rate_interval]))",
                    "A",
                    "{{gen_ai_request_model}} {{error_type}}",
                )
            ],
            "ops",
        ),
    ]


def latency_panels() -> list[PanelBuilder]:
    """Return the p50 / p95 / p99 of time to first chunk, operation duration, time per output chunk, tool duration."""
    m = MODEL_FILTER
    return [
        ts(
            "Time to first chunk",
            "p50 / p95 / p99 time to the first streamed chunk per request model "
            "(gen_ai_client_operation_time_to_first_chunk_seconds). The OtelstreamTimeToFirstChunk* alerts watch "
            "its p95." + GENAI_NOTE,
            quantiles("gen_ai_client_operation_time_to_first_chunk_seconds", "gen_ai_request_model", m),
            "s",
        ),
        ts(
            "Operation duration",
            "p50 / p95 / p99 GenAI operation duration per request model "
            "(gen_ai_client_operation_duration_seconds)." + GENAI_NOTE,
            quantiles("gen_ai_client_operation_duration_seconds", "gen_ai_request_model", m),
            "s",
        ),
        ts(
            "Time per output chunk",
            "p50 / p95 / p99 time between consecutive streamed chunks per request model "
            "(gen_ai_client_operation_time_per_output_chunk_seconds)." + GENAI_NOTE,
            quantiles("gen_ai_client_operation_time_per_output_chunk_seconds", "gen_ai_request_model", m),
            "s",
        ),
        ts(
            "Tool duration",
            "p50 / p95 / p99 tool execution time per tool (gen_ai_execute_tool_duration_seconds)." + GENAI_NOTE,
            quantiles("gen_ai_execute_tool_duration_seconds", "gen_ai_tool_name", ""),
            "s",
        ),
    ]

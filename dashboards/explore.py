"""The ``otelstream-explore`` dashboard: runs and node tasks from Tempo (TraceQL), stream records from Loki.

``run_id``, ``graph`` and ``service_name`` are free-text regular expressions, so a run id pasted from
the runs dashboard (or its data link) selects that one run.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import logs, loki, table, tempo
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import loki as loki_models
from grafana_foundation_sdk.models import tempo as tempo_models

from dashboards._panels import (
    EXPLORE_UID,
    LOKI,
    RUNS_UID,
    TEMPO,
    PanelBuilder,
    add_rows,
    base,
    dashboard_link,
    datasource_variable,
    textbox,
    ts,
)

RUN_SPAN = (
    '{ span.gen_ai.operation.name = "invoke_workflow" && span.otelstream.run_id =~ "$run_id" '
    '&& span.gen_ai.workflow.name =~ "$graph" }'
)
"""TraceQL: the run spans of the selected runs."""

RECORDS = (
    '{service_name=~"$service_name"} | event_name=~"otelstream[.].+" '
    '| otelstream_run_id=~"$run_id" | otelstream_graph=~"$graph"'
)
"""LogQL: the stream records of the selected runs."""


def dashboard() -> db.Dashboard:
    """Return the trace and record explorer: runs and nodes from Tempo, stream records from Loki."""
    d = (
        base(
            "otelstream / Explore runs",
            EXPLORE_UID,
            "Traces (Tempo, TraceQL) and stream records (Loki) of otelstream runs; set run_id to one run's id.",
            ["traces", "logs"],
        )
        .with_variable(datasource_variable("tempo"))
        .with_variable(datasource_variable("loki"))
        .with_variable(
            textbox("run_id", "Run id", ".+", "otelstream.run_id of one run (a regular expression; .+ = every run)")
        )
        .with_variable(textbox("graph", "Graph", ".+", "Graph name (a regular expression)"))
        .with_variable(
            textbox("service_name", "service.name", ".+", "service.name of the application (a regular expression)")
        )
        .link(dashboard_link("Runs overview", RUNS_UID))
    )
    return add_rows(d, {"Traces": trace_panels(), "Stream records": record_panels()})


def traceql_table(title: str, description: str, query: str, limit: int, spans_per_set: int, w: int) -> table.Panel:
    """Return a table of the spans a TraceQL query finds: at most ``limit`` traces, ``spans_per_set`` spans each."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(TEMPO)
        .with_target(
            tempo.TempoQuery()
            .ref_id("A")
            .datasource(TEMPO)
            .query_type("traceql")
            .query(query)
            .table_type(tempo_models.SearchTableType.SPANS)
            .limit(limit)
            .spss(spans_per_set)
        )
        .span(w)
        .height(9)
    )


def trace_panels() -> list[PanelBuilder]:
    """Return the run spans, their node spans, and the failed spans."""
    return [
        traceql_table(
            "Runs (invoke_workflow spans)",
            "Run spans by otelstream.run_id (root runs and subgraph runs; a subgraph run has a non-empty "
            "namespace). Click a trace id to open the trace.",
            RUN_SPAN + " | select(span.otelstream.run_id, span.gen_ai.workflow.name, span.otelstream.outcome, "
            "span.otelstream.namespace, span.otelstream.dropped)",
            limit=100,
            spans_per_set=1,
            w=24,
        ),
        traceql_table(
            "Node tasks of the selected runs",
            "invoke_node spans that are children of the matching run spans, with step and outcome.",
            RUN_SPAN + ' > { span.otelstream.node != "" } '
            "| select(span.otelstream.node, span.otelstream.step, span.otelstream.outcome)",
            limit=100,
            spans_per_set=50,
            w=12,
        ),
        traceql_table(
            "Failed spans",
            "Runs and node tasks with otelstream.outcome = failed, with their exception type.",
            '{ span.otelstream.outcome = "failed" } '
            "| select(span.otelstream.node, span.error.type, span.otelstream.run_id, span.gen_ai.workflow.name)",
            limit=50,
            spans_per_set=10,
            w=12,
        ),
    ]


def record_panels() -> list[PanelBuilder]:
    """Return stream records per second by mode, the selected runs' records, and their run-end records."""
    return [
        ts(
            "Stream records per second by mode",
            "otelstream.<mode> log records per second (Loki). The event_name filter needs a Loki that stores the "
            "OTLP event name as structured metadata (grafana/loki#21229); on older versions drop it: the "
            "otelstream_run_id filter alone selects otelstream's records.",
            [
                loki.Dataquery()
                .ref_id("A")
                .datasource(LOKI)
                .expr(f"sum by (event_name) (count_over_time({RECORDS} [$__auto]))")
                .legend_format("{{event_name}}")
                .query_type("range")
            ],
            "ops",
            w=24,
            datasource=LOKI,
        ),
        logs.Panel()
        .title("Stream records of $run_id")
        .description(
            "Every chunk the run streamed, one otelstream.<mode> record each (attributes: otelstream.seq, "
            "otelstream.namespace, otelstream.node, otelstream.payload), then its otelstream.run.end record. "
            "Log details link the trace_id to Tempo (derived field in the Loki datasource)."
        )
        .datasource(LOKI)
        .with_target(
            loki.Dataquery()
            .ref_id("A")
            .datasource(LOKI)
            .expr(RECORDS)
            .query_type("range")
            .max_lines(1000)
            .direction(loki_models.LokiQueryDirection.FORWARD)
        )
        .show_time(True)
        .wrap_log_message(True)
        .enable_log_details(True)
        .sort_order(common.LogsSortOrder.ASCENDING)
        .span(24)
        .height(14),
        logs.Panel()
        .title("Run-end records")
        .description("otelstream.run.end records: outcome, chunks emitted (otelstream.event_count) and dropped.")
        .datasource(LOKI)
        .with_target(
            loki.Dataquery()
            .ref_id("A")
            .datasource(LOKI)
            .expr(
                '{service_name=~"$service_name"} | event_name="otelstream.run.end" '
                '| otelstream_run_id=~"$run_id" | otelstream_graph=~"$graph"'
            )
            .query_type("range")
            .max_lines(200)
        )
        .show_time(True)
        .enable_log_details(True)
        .span(24)
        .height(8),
    ]

"""The ``otelstream-runs`` dashboard: throughput, durations, per-run progress and stalls, errors, dropped records.

Every query filters on the ``graph`` variable; run-level queries aggregate to :data:`RUN`.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from dashboards._links import run_links
from dashboards._panels import (
    EXPLORE_UID,
    LLM_UID,
    PROMETHEUS,
    RUNS_UID,
    PanelBuilder,
    add_rows,
    base,
    dashboard_link,
    datasource_variable,
    label_variable,
    prom,
    prom_table,
    quantiles,
    single_stat,
    textbox,
    thresholds,
    ts,
)

# the per-run label set every run-level query aggregates to: the exporter adds its own labels
# (job, instance, otel_scope_*), which would otherwise split one run into several rows
RUN = "otelstream_graph, otelstream_run_id"
GRAPH_FILTER = '{otelstream_graph=~"$graph"}'

STALL_WARN_S = 300.0
STALL_CRIT_S = 600.0
"""Colours of the "since last signal" column; 600 s matches the OtelstreamRunStalled alert."""

PROGRESS_COLUMNS = {
    "done": f"max by ({RUN}) (otelstream_run_progress_done{GRAPH_FILTER})",
    "total": f"max by ({RUN}) (otelstream_run_progress_total{GRAPH_FILTER})",
    "progress": f"max by ({RUN}) (otelstream_run_progress_done{GRAPH_FILTER}) / max by ({RUN}) "
    f"(otelstream_run_progress_total{GRAPH_FILTER} > 0)",
    "since last signal": f"time() - max by ({RUN}) (otelstream_run_progress_last_signal_seconds{GRAPH_FILTER})",
    "age": f"time() - max by ({RUN}) (otelstream_run_started_at_seconds{GRAPH_FILTER})",
}
"""The progress table's value columns after graph and run id: column name -> instant query (refIds A, B, ...)."""


def dashboard() -> db.Dashboard:
    """Return the runs overview: throughput, durations, progress, stalls, errors, dropped records."""
    d = (
        base(
            "otelstream / Runs",
            RUNS_UID,
            "Runs, nodes and progress signals of otelstream graphs (metrics contract: docs/telemetry.md, Metrics).",
            ["runs"],
        )
        .with_variable(datasource_variable("prometheus"))
        .with_variable(datasource_variable("tempo"))
        .with_variable(datasource_variable("loki"))
        .with_variable(label_variable("graph", "Graph", "otelstream_runs_started_total", "otelstream_graph"))
        .with_variable(
            db.CustomVariable("stall_minutes")
            .label("Stalled after (min)")
            .description("A run is counted as stalled when it sent no progress signal for this long")
            .values("5,10,15,30,60")
            .current(dm.VariableOption(selected=True, text="10", value="10"))
        )
        .with_variable(
            textbox("jaeger_url", "Jaeger UI", "http://localhost:16686", "Base URL of a Jaeger UI for the trace links")
        )
        .with_variable(
            textbox(
                "jaeger_service",
                "Jaeger service",
                "unknown_service",
                "service.name of the application (Jaeger searches within one service)",
            )
        )
        .link(dashboard_link("Explore runs (traces, records)", EXPLORE_UID))
        .link(dashboard_link("LLM calls", LLM_UID))
    )
    return add_rows(
        d,
        {
            "Throughput": throughput_panels(),
            "Durations": duration_panels(),
            "Progress": progress_panels(),
            "Errors and telemetry health": error_panels(),
        },
    )


def throughput_panels() -> list[PanelBuilder]:
    """Return the active, stalled, failed and dropped counts, then runs started/finished and active per graph."""
    g = GRAPH_FILTER
    return [
        single_stat(
            "Active runs",
            "Root runs in progress now (otelstream_runs_active).",
            f"sum(otelstream_runs_active{g})",
            "short",
            [(None, "green")],
        ),
        single_stat(
            "Stalled runs",
            "Active runs with no progress signal for $stall_minutes minutes: "
            "time() - otelstream_run_progress_last_signal_seconds (a run's last signal starts at its start time, "
            "so a run that never reports progress counts too).",
            f"count((time() - max by ({RUN}) (otelstream_run_progress_last_signal_seconds{g})) "
            "> $stall_minutes * 60) or vector(0)",
            "short",
            [(None, "green"), (1.0, "red")],
        ),
        single_stat(
            "Failed runs (range)",
            "Runs that finished with outcome failed during the selected range.",
            'sum(increase(otelstream_runs_finished_total{otelstream_graph=~"$graph", otelstream_outcome="failed"}'
            "[$__range])) or vector(0)",
            "short",
            [(None, "green"), (1.0, "red")],
        ),
        single_stat(
            "Dropped stream records (range)",
            "Stream records otelstream's exporter dropped (exporter failing or too slow) during the selected range. "
            "Anything above 0 means replays of those runs have gaps.",
            "sum(increase(otelstream_stream_dropped_total[$__range])) or vector(0)",
            "short",
            [(None, "green"), (1.0, "red")],
        ),
        ts(
            "Runs started / finished by outcome",
            "Root runs started, and finished per outcome (completed, failed, abandoned, cancelled, "
            "interrupted: paused for a human), per second.",
            [
                prom(
                    f"sum by (otelstream_graph) (rate(otelstream_runs_started_total{g}[$__rate_interval]))",
                    "A",
                    "started {{otelstream_graph}}",
                ),
                prom(
                    "sum by (otelstream_graph, otelstream_outcome) "
                    f"(rate(otelstream_runs_finished_total{g}[$__rate_interval]))",
                    "B",
                    "{{otelstream_outcome}} {{otelstream_graph}}",
                ),
            ],
            "ops",
        ),
        ts(
            "Active runs",
            "Root runs in progress, per graph.",
            [prom(f"sum by (otelstream_graph) (otelstream_runs_active{g})", "A", "{{otelstream_graph}}")],
            "short",
        ),
    ]


def duration_panels() -> list[PanelBuilder]:
    """Return the run and node duration quantiles."""
    g = GRAPH_FILTER
    return [
        ts(
            "Run duration quantiles",
            "p50 / p95 / p99 of root run duration per graph (otelstream_run_duration_seconds, all outcomes).",
            quantiles("otelstream_run_duration_seconds", "otelstream_graph", g),
            "s",
        ),
        ts(
            "Node duration quantiles",
            "p50 / p95 of node task duration per graph and node (otelstream_node_duration_seconds; "
            "one task is one node execution in one superstep, retries included).",
            quantiles("otelstream_node_duration_seconds", "otelstream_graph, otelstream_node", g, (0.5, 0.95)),
            "s",
        ),
    ]


def progress_table() -> table.Panel:
    """Return the table of active runs: graph, run id (linked to its traces and records), then PROGRESS_COLUMNS."""
    ref_ids = [chr(ord("A") + i) for i in range(len(PROGRESS_COLUMNS))]
    # merged, each query's value column is named "Value #<refId>"
    value_fields = [f"Value #{ref_id}" for ref_id in ref_ids]
    return (
        table.Panel()
        .title("Run progress (active runs)")
        .description(
            "One row per active run: progress done / total (from progress signals, otelstream.write_progress), "
            "seconds since its last progress signal (its start until the first), and age. Click a run id for its "
            "trace in Tempo or Jaeger, its stream records in Loki, or the explore dashboard."
        )
        .datasource(PROMETHEUS)
        .targets([prom_table(expr, ref_id) for ref_id, expr in zip(ref_ids, PROGRESS_COLUMNS.values(), strict=True)])
        # one query per column: merge them into one row per run, then order and name the columns
        .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "indexByName": {
                        field: i for i, field in enumerate(["otelstream_graph", "otelstream_run_id", *value_fields])
                    },
                    "renameByName": {
                        "otelstream_graph": "graph",
                        **dict(zip(value_fields, PROGRESS_COLUMNS, strict=True)),
                    },
                },
            )
        )
        .sort_by([cb.TableSortByFieldState().display_name("since last signal").desc(True)])
        .override_by_name("otelstream_run_id", [dm.DynamicConfigValue(id_val="links", value=run_links())])
        .override_by_name(
            "progress",
            [
                dm.DynamicConfigValue(id_val="unit", value="percentunit"),
                dm.DynamicConfigValue(id_val="min", value=0),
                dm.DynamicConfigValue(id_val="max", value=1),
                dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "gauge", "mode": "basic"}),
            ],
        )
        .override_by_name(
            "since last signal",
            [
                dm.DynamicConfigValue(id_val="unit", value="s"),
                dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
                dm.DynamicConfigValue(
                    id_val="thresholds",
                    value={
                        "mode": "absolute",
                        "steps": [
                            {"color": "green", "value": None},
                            {"color": "orange", "value": STALL_WARN_S},
                            {"color": "red", "value": STALL_CRIT_S},
                        ],
                    },
                ),
            ],
        )
        .override_by_name("age", [dm.DynamicConfigValue(id_val="unit", value="s")])
        .span(24)
        .height(10)
    )


def progress_panels() -> list[PanelBuilder]:
    """Return the progress table, time since each run's last signal, and progress and custom events per node."""
    g = GRAPH_FILTER
    return [
        progress_table(),
        ts(
            "Seconds since last progress signal",
            "time() - otelstream_run_progress_last_signal_seconds per active run; the dashed line is the "
            "OtelstreamRunStalled alert threshold (10 min). A run's series ends when the run ends.",
            [
                prom(
                    f"time() - max by ({RUN}) (otelstream_run_progress_last_signal_seconds{g})",
                    "A",
                    "{{otelstream_graph}} {{otelstream_run_id}}",
                )
            ],
            "s",
        )
        .thresholds(thresholds([(None, "green"), (STALL_CRIT_S, "red")]))
        .thresholds_style(cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)),
        ts(
            "Progress signals and custom events",
            "Progress signals (custom chunks with a numeric progress) and all custom writes, per second, per node.",
            [
                prom(
                    "sum by (otelstream_graph, otelstream_node) "
                    f"(rate(otelstream_progress_signals_total{g}[$__rate_interval]))",
                    "A",
                    "progress {{otelstream_graph}}/{{otelstream_node}}",
                ),
                prom(
                    "sum by (otelstream_graph, otelstream_node) "
                    f"(rate(otelstream_custom_events_total{g}[$__rate_interval]))",
                    "B",
                    "custom {{otelstream_graph}}/{{otelstream_node}}",
                ),
            ],
            "ops",
        ),
    ]


def error_panels() -> list[PanelBuilder]:
    """Return node errors, node errors per finished run, and dropped stream records."""
    g = GRAPH_FILTER
    return [
        ts(
            "Node errors",
            "Node tasks that raised, per second, by node and exception type (otelstream_node_errors_total).",
            [
                prom(
                    "sum by (otelstream_graph, otelstream_node, error_type) "
                    f"(rate(otelstream_node_errors_total{g}[$__rate_interval]))",
                    "A",
                    "{{otelstream_graph}}/{{otelstream_node}} {{error_type}}",
                )
            ],
            "ops",
            w=8,
        ),
        ts(
            "Node errors per finished run",
            "Node errors divided by runs finished, per graph (the OtelstreamNodeErrorRateHigh alert fires above 0.1).",
            [
                prom(
                    f"sum by (otelstream_graph) (rate(otelstream_node_errors_total{g}[$__rate_interval])) "
                    f"/ sum by (otelstream_graph) (rate(otelstream_runs_finished_total{g}[$__rate_interval]))",
                    "A",
                    "{{otelstream_graph}}",
                )
            ],
            "short",
            w=8,
        ),
        ts(
            "Dropped stream records",
            "Stream records dropped before export, per second, by stream mode (otelstream_stream_dropped_total). "
            "Expected to be empty.",
            [
                prom(
                    "sum by (otelstream_mode) (rate(otelstream_stream_dropped_total[$__rate_interval]))",
                    "A",
                    "{{otelstream_mode}}",
                )
            ],
            "ops",
            w=8,
        ),
    ]

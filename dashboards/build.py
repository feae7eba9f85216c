"""Build otelstream's Grafana dashboards as code and write them as committed JSON.

Usage (from the repository root, with the ``dev`` extra installed)::

    python dashboards/build.py          # (re)write dashboards/*.json
    python dashboards/build.py --check  # exit 1 if the committed JSON differs from the builder's

The dashboards are built with ``grafana-foundation-sdk`` pinned to its Grafana 11.6 line
(``1769699379!11.6.0``, classic dashboard JSON, ``schemaVersion`` 41). Metric names and labels
are the contract in ``docs/telemetry.md`` ("Metrics"); the GenAI panels use the OpenTelemetry
GenAI client metrics. Datasources are template variables (``prometheus``, ``tempo``, ``loki``)
whose defaults are the uids ``dashboards/provisioning/datasources.yaml`` provisions.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import logs, loki, prometheus, stat, table, tempo, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import loki as loki_models
from grafana_foundation_sdk.models import prometheus as prometheus_models
from grafana_foundation_sdk.models import tempo as tempo_models

HERE = Path(__file__).resolve().parent

RUNS_UID = "otelstream-runs"
LLM_UID = "otelstream-llm"
EXPLORE_UID = "otelstream-explore"

PROMETHEUS = dm.DataSourceRef(type_val="prometheus", uid="${prometheus}")
TEMPO = dm.DataSourceRef(type_val="tempo", uid="${tempo}")
LOKI = dm.DataSourceRef(type_val="loki", uid="${loki}")

# the per-run label set every run-level query aggregates to: the exporter adds its own labels
# (job, instance, otel_scope_*), which would otherwise split one run into several rows
RUN = "otelstream_graph, otelstream_run_id"
GRAPH_FILTER = '{otelstream_graph=~"$graph"}'
MODEL_FILTER = '{gen_ai_request_model=~"$model"}'

STALL_WARN_S = 300.0
STALL_CRIT_S = 600.0
"""Colours of the "since last signal" column; 600 s matches the OtelstreamRunStalled alert."""

GENAI_NOTE = (
    " GenAI metric from the OpenTelemetry GenAI semantic conventions, recorded by otelstream for every LLM call"
    " whose tokens the `messages` stream mode carries (LangChain chat models, otelstream.llm_call, the OpenAI"
    " instrumentor) and every LangChain tool."
)


class Ids:
    """Hands out panel ids, unique within one dashboard."""

    def __init__(self) -> None:
        self._next = 0

    def __call__(self) -> int:
        """Return the next id."""
        self._next += 1
        return self._next


def _keep_tokens_quote(text: str) -> str:
    """Percent-encode ``text`` for a URL, leaving Grafana's ``${...}`` interpolation tokens as they are."""
    parts = re.split(r"(\$\{[^}]+\})", text)
    return "".join(part if part.startswith("${") else urllib.parse.quote(part, safe="") for part in parts)


def explore_url(datasource: str, ds_type: str, query: dict[str, Any]) -> str:
    """Return a Grafana Explore URL running ``query`` on the datasource variable ``datasource``."""
    pane = {
        "datasource": f"${{{datasource}}}",
        "queries": [{"refId": "A", "datasource": {"type": ds_type, "uid": f"${{{datasource}}}"}, **query}],
        "range": {"from": "${__from}", "to": "${__to}"},
    }
    panes = json.dumps({"otelstream": pane}, separators=(",", ":"), sort_keys=True)
    return "/explore?schemaVersion=1&panes=" + _keep_tokens_quote(panes)


RUN_ID_VALUE = "${__data.fields.otelstream_run_id}"


def run_links() -> list[dict[str, Any]]:
    """Data links from a run id cell to its traces (Tempo, Jaeger), its records (Loki) and the explore dashboard."""
    traceql = '{ span.gen_ai.operation.name = "invoke_workflow" && span.otelstream.run_id = "' + RUN_ID_VALUE + '" }'
    logql = '{service_name=~".+"} | otelstream_run_id = "' + RUN_ID_VALUE + '"'
    jaeger_tags = _keep_tokens_quote(json.dumps({"otelstream.run_id": RUN_ID_VALUE}))
    return [
        {
            "title": "Run trace in Tempo",
            "url": explore_url(
                "tempo", "tempo", {"queryType": "traceql", "query": traceql, "tableType": "traces", "limit": 20}
            ),
        },
        {
            "title": "Run stream records in Loki",
            "url": explore_url("loki", "loki", {"expr": logql, "queryType": "range"}),
        },
        {
            "title": "Run trace in Jaeger",
            "url": "${jaeger_url}/search?service=${jaeger_service}&tags="
            + jaeger_tags
            + "&lookback=custom&start=${__from}000&end=${__to}000",
            "targetBlank": True,
        },
        {
            "title": "Explore this run (traces and records)",
            "url": f"/d/{EXPLORE_UID}/otelstream-explore?var-run_id={RUN_ID_VALUE}&${{__url_time_range}}",
        },
    ]


# --- small builders ------------------------------------------------------------------------------


def prom(expr: str, ref_id: str, legend: str = "__auto") -> prometheus.Dataquery:
    """Return a Prometheus range query."""
    return prometheus.Dataquery().expr(expr).ref_id(ref_id).legend_format(legend).datasource(PROMETHEUS).range()


def prom_table(expr: str, ref_id: str) -> prometheus.Dataquery:
    """Return an instant Prometheus query whose result is a table."""
    return (
        prometheus.Dataquery()
        .expr(expr)
        .ref_id(ref_id)
        .datasource(PROMETHEUS)
        .instant()
        .format(prometheus_models.PromQueryFormat.TABLE)
    )


def quantiles(metric: str, by: str, filt: str, qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> list[prometheus.Dataquery]:
    """Return one ``histogram_quantile`` query per quantile of histogram ``metric``."""
    out = []
    for i, q in enumerate(qs):
        expr = f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{filt}[$__rate_interval])))"
        label = " ".join("{{" + name.strip() + "}}" for name in by.split(","))
        out.append(prom(expr, chr(ord("A") + i), f"p{round(q * 100)} {label}"))
    return out


def ts(
    ids: Ids,
    title: str,
    description: str,
    targets: Sequence[cogbuilder.Builder[Any]],
    unit: str,
    w: int = 12,
    h: int = 8,
    configure: Callable[[timeseries.Panel], timeseries.Panel] | None = None,
) -> timeseries.Panel:
    """Return a time series panel on the Prometheus datasource."""
    panel = (
        timeseries.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(list(targets))
        .unit(unit)
        .span(w)
        .height(h)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
    )
    return configure(panel) if configure else panel


def single_stat(
    ids: Ids, title: str, description: str, expr: str, unit: str, steps: list[tuple[float | None, str]], w: int = 6
) -> stat.Panel:
    """Return a stat panel of one instant Prometheus expression, coloured by ``steps``."""
    return (
        stat.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .with_target(
            prometheus.Dataquery().expr(expr).ref_id("A").datasource(PROMETHEUS).instant().legend_format("__auto")
        )
        .unit(unit)
        .span(w)
        .height(4)
        .thresholds(
            db.ThresholdsConfig()
            .mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=value, color=color) for value, color in steps])
        )
    )


def datasource_variable(name: str, ds_type: str, label: str) -> db.DatasourceVariable:
    """Return a datasource variable defaulting to the provisioned datasource whose uid is ``name``."""
    return (
        db.DatasourceVariable(name)
        .label(label)
        .type(ds_type)
        .current(dm.VariableOption(selected=True, text=name, value=name))
    )


def textbox(name: str, label: str, default: str, description: str) -> db.TextBoxVariable:
    """Return a free-text variable."""
    return (
        db.TextBoxVariable(name)
        .label(label)
        .description(description)
        .default_value(default)
        .current(dm.VariableOption(selected=True, text=default, value=default))
    )


def base(title: str, uid: str, description: str, tags: list[str]) -> db.Dashboard:
    """Return a dashboard with the settings all three share."""
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["otelstream", *tags])
        .editable()
        .timezone("browser")
        .time("now-3h", "now")
        .refresh("30s")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .annotation(
            db.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .built_in(1)
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
        )
    )


def dashboard_link(title: str, uid: str) -> db.DashboardLink:
    """Return a link to another otelstream dashboard, keeping the time range (variables differ between them)."""
    return (
        db.DashboardLink(title)
        .type(dm.DashboardLinkType.LINK)
        .url(f"/d/{uid}")
        .include_vars(False)
        .keep_time(True)
        .icon("dashboard")
    )


def row(ids: Ids, title: str) -> db.Row:
    """Return a row header."""
    return db.Row(title).id(ids())


# --- otelstream-runs --------------------------------------------------------------------------------


def runs_dashboard() -> db.Dashboard:
    """Return the runs overview: throughput, durations, progress, stalls, errors, dropped records."""
    ids = Ids()
    g = GRAPH_FILTER
    d = (
        base(
            "otelstream / Runs",
            RUNS_UID,
            "Runs, nodes and progress signals of otelstream graphs (metrics contract: docs/telemetry.md, Metrics).",
            ["runs"],
        )
        .with_variable(datasource_variable("prometheus", "prometheus", "Metrics"))
        .with_variable(datasource_variable("tempo", "tempo", "Traces"))
        .with_variable(datasource_variable("loki", "loki", "Logs"))
        .with_variable(
            db.QueryVariable("graph")
            .label("Graph")
            .datasource(PROMETHEUS)
            .query("label_values(otelstream_runs_started_total, otelstream_graph)")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
        )
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

    d = d.with_row(row(ids, "Throughput"))
    d = d.with_panel(
        single_stat(
            ids,
            "Active runs",
            "Root runs in progress now (otelstream_runs_active).",
            f"sum(otelstream_runs_active{g})",
            "short",
            [(None, "green")],
        )
    )
    d = d.with_panel(
        single_stat(
            ids,
            "Stalled runs",
            "Active runs with no progress signal for $stall_minutes minutes: "
            "time() - otelstream_run_progress_last_signal_seconds (a run's last signal starts at its start time, "
            "so a run that never reports progress counts too).",
            f"count((time() - max by ({RUN}) (otelstream_run_progress_last_signal_seconds{g})) "
            "> $stall_minutes * 60) or vector(0)",
            "short",
            [(None, "green"), (1.0, "red")],
        )
    )
    d = d.with_panel(
        single_stat(
            ids,
            "Failed runs (range)",
            "Runs that finished with outcome failed during the selected range.",
            'sum(increase(otelstream_runs_finished_total{otelstream_graph=~"$graph", otelstream_outcome="failed"}'
            "[$__range])) or vector(0)",
            "short",
            [(None, "green"), (1.0, "red")],
        )
    )
    d = d.with_panel(
        single_stat(
            ids,
            "Dropped stream records (range)",
            "Stream records otelstream's exporter dropped (exporter failing or too slow) during the selected range. "
            "Anything above 0 means replays of those runs have gaps.",
            "sum(increase(otelstream_stream_dropped_total[$__range])) or vector(0)",
            "short",
            [(None, "green"), (1.0, "red")],
        )
    )
    d = d.with_panel(
        ts(
            ids,
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
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Active runs",
            "Root runs in progress, per graph.",
            [prom(f"sum by (otelstream_graph) (otelstream_runs_active{g})", "A", "{{otelstream_graph}}")],
            "short",
        )
    )

    d = d.with_row(row(ids, "Durations"))
    d = d.with_panel(
        ts(
            ids,
            "Run duration quantiles",
            "p50 / p95 / p99 of root run duration per graph (otelstream_run_duration_seconds, all outcomes).",
            quantiles("otelstream_run_duration_seconds", "otelstream_graph", g),
            "s",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Node duration quantiles",
            "p50 / p95 of node task duration per graph and node (otelstream_node_duration_seconds; "
            "one task is one node execution in one superstep, retries included).",
            quantiles("otelstream_node_duration_seconds", "otelstream_graph, otelstream_node", g, (0.5, 0.95)),
            "s",
        )
    )

    d = d.with_row(row(ids, "Progress"))
    progress_table = (
        table.Panel()
        .id(ids())
        .title("Run progress (active runs)")
        .description(
            "One row per active run: progress done / total (from progress signals, otelstream.write_progress), "
            "seconds since its last progress signal (its start until the first), and age. Click a run id for its "
            "trace in Tempo or Jaeger, its stream records in Loki, or the explore dashboard."
        )
        .datasource(PROMETHEUS)
        .targets(
            [
                prom_table(f"max by ({RUN}) (otelstream_run_progress_done{g})", "A"),
                prom_table(f"max by ({RUN}) (otelstream_run_progress_total{g})", "B"),
                prom_table(
                    f"max by ({RUN}) (otelstream_run_progress_done{g}) / max by ({RUN}) "
                    f"(otelstream_run_progress_total{g} > 0)",
                    "C",
                ),
                prom_table(f"time() - max by ({RUN}) (otelstream_run_progress_last_signal_seconds{g})", "D"),
                prom_table(f"time() - max by ({RUN}) (otelstream_run_started_at_seconds{g})", "E"),
            ]
        )
        .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "indexByName": {
                        "otelstream_graph": 0,
                        "otelstream_run_id": 1,
                        "Value #A": 2,
                        "Value #B": 3,
                        "Value #C": 4,
                        "Value #D": 5,
                        "Value #E": 6,
                    },
                    "renameByName": {
                        "otelstream_graph": "graph",
                        "Value #A": "done",
                        "Value #B": "total",
                        "Value #C": "progress",
                        "Value #D": "since last signal",
                        "Value #E": "age",
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
    d = d.with_panel(progress_table)
    d = d.with_panel(
        ts(
            ids,
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
            configure=lambda p: p.thresholds(
                db.ThresholdsConfig()
                .mode(dm.ThresholdsMode.ABSOLUTE)
                .steps([dm.Threshold(value=None, color="green"), dm.Threshold(value=STALL_CRIT_S, color="red")])
            ).thresholds_style(cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)),
        )
    )
    d = d.with_panel(
        ts(
            ids,
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
        )
    )

    d = d.with_row(row(ids, "Errors and telemetry health"))
    d = d.with_panel(
        ts(
            ids,
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
        )
    )
    d = d.with_panel(
        ts(
            ids,
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
        )
    )
    d = d.with_panel(
        ts(
            ids,
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
        )
    )
    return d


# --- otelstream-llm ---------------------------------------------------------------------------------


def llm_dashboard() -> db.Dashboard:
    """Return the LLM dashboard: tokens per second, time to first chunk, operation duration, usage."""
    ids = Ids()
    m = MODEL_FILTER
    token_sum = "gen_ai_client_token_usage_sum"
    ops = "gen_ai_client_operation_duration_seconds_count"
    d = (
        base(
            "otelstream / LLM calls",
            LLM_UID,
            "GenAI metrics (OpenTelemetry GenAI semantic conventions): tokens, time to first chunk, time per "
            "output chunk, operation and tool duration, recorded by otelstream for every LLM and tool call.",
            ["llm", "gen_ai"],
        )
        .with_variable(datasource_variable("prometheus", "prometheus", "Metrics"))
        .with_variable(
            db.QueryVariable("model")
            .label("Request model")
            .datasource(PROMETHEUS)
            .query(f"label_values({ops}, gen_ai_request_model)")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
        )
        .link(dashboard_link("Runs", RUNS_UID))
    )
    d = d.with_row(row(ids, "Usage"))
    d = d.with_panel(
        single_stat(
            ids,
            "Input tokens (range)",
            "Input tokens used during the selected range (gen_ai_client_token_usage, gen_ai_token_type=input)."
            + GENAI_NOTE,
            'sum(increase(gen_ai_client_token_usage_sum{gen_ai_request_model=~"$model", gen_ai_token_type="input"}'
            "[$__range]))",
            "short",
            [(None, "blue")],
        )
    )
    d = d.with_panel(
        single_stat(
            ids,
            "Output tokens (range)",
            "Output tokens used during the selected range (gen_ai_client_token_usage, gen_ai_token_type=output)."
            + GENAI_NOTE,
            'sum(increase(gen_ai_client_token_usage_sum{gen_ai_request_model=~"$model", gen_ai_token_type="output"}'
            "[$__range]))",
            "short",
            [(None, "blue")],
        )
    )
    d = d.with_panel(
        single_stat(
            ids,
            "Operations (range)",
            "GenAI operations (model calls) during the selected range (gen_ai_client_operation_duration_seconds)."
            + GENAI_NOTE,
            f"sum(increase({ops}{m}[$__range]))",
            "short",
            [(None, "blue")],
        )
    )
    d = d.with_panel(
        single_stat(
            ids,
            "Time to first chunk p95 (range)",
            "p95 of the time from request to the first streamed chunk over the selected range "
            "(gen_ai_client_operation_time_to_first_chunk_seconds; streaming calls only)." + GENAI_NOTE,
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(gen_ai_client_operation_time_to_first_chunk_seconds_bucket{m}[$__range])))",
            "s",
            [(None, "green"), (5.0, "orange"), (10.0, "red")],
        )
    )
    d = d.with_row(row(ids, "Throughput"))
    d = d.with_panel(
        ts(
            ids,
            "Tokens per second by type",
            "Input and output tokens per second (rate of gen_ai_client_token_usage_sum)." + GENAI_NOTE,
            [
                prom(
                    f"sum by (gen_ai_token_type) (rate({token_sum}{m}[$__rate_interval]))",
                    "A",
                    "{{gen_ai_token_type}}",
                )
            ],
            "short",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Output tokens per second by model",
            "Output tokens per second per request model." + GENAI_NOTE,
            [
                prom(
                    "sum by (gen_ai_request_model) "
                    f'(rate({token_sum}{{gen_ai_request_model=~"$model", gen_ai_token_type="output"}}'
                    "[$__rate_interval]))",
                    "A",
                    "{{gen_ai_request_model}}",
                )
            ],
            "short",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Tokens per operation",
            "Average tokens per operation, by token type (sum / count of gen_ai_client_token_usage)." + GENAI_NOTE,
            [
                prom(
                    f"sum by (gen_ai_token_type) (rate({token_sum}{m}[$__rate_interval])) "
                    f"/ sum by (gen_ai_token_type) (rate(gen_ai_client_token_usage_count{m}[$__rate_interval]))",
                    "A",
                    "{{gen_ai_token_type}}",
                )
            ],
            "short",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Operations per second by model and error",
            "GenAI operations per second by request model; error_type is set on failed calls." + GENAI_NOTE,
            [
                prom(
                    f"sum by (gen_ai_request_model, error_type) (rate({ops}{m}[$__rate_interval]))",
                    "A",
                    "{{gen_ai_request_model}} {{error_type}}",
                )
            ],
            "ops",
        )
    )
    d = d.with_row(row(ids, "Latency"))
    d = d.with_panel(
        ts(
            ids,
            "Time to first chunk",
            "p50 / p95 / p99 time to the first streamed chunk per request model "
            "(gen_ai_client_operation_time_to_first_chunk_seconds). The OtelstreamTimeToFirstChunk* alerts watch "
            "its p95." + GENAI_NOTE,
            quantiles("gen_ai_client_operation_time_to_first_chunk_seconds", "gen_ai_request_model", m),
            "s",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Operation duration",
            "p50 / p95 / p99 GenAI operation duration per request model "
            "(gen_ai_client_operation_duration_seconds)." + GENAI_NOTE,
            quantiles("gen_ai_client_operation_duration_seconds", "gen_ai_request_model", m),
            "s",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Time per output chunk",
            "p50 / p95 / p99 time between consecutive streamed chunks per request model "
            "(gen_ai_client_operation_time_per_output_chunk_seconds)." + GENAI_NOTE,
            quantiles("gen_ai_client_operation_time_per_output_chunk_seconds", "gen_ai_request_model", m),
            "s",
        )
    )
    d = d.with_panel(
        ts(
            ids,
            "Tool duration",
            "p50 / p95 / p99 tool execution time per tool (gen_ai_execute_tool_duration_seconds)." + GENAI_NOTE,
            quantiles("gen_ai_execute_tool_duration_seconds", "gen_ai_tool_name", ""),
            "s",
        )
    )
    return d


# --- otelstream-explore -----------------------------------------------------------------------------


def explore_dashboard() -> db.Dashboard:
    """Return the trace and record explorer: runs and nodes from Tempo, stream records from Loki."""
    ids = Ids()
    run_span = (
        '{ span.gen_ai.operation.name = "invoke_workflow" && span.otelstream.run_id =~ "$run_id" '
        '&& span.gen_ai.workflow.name =~ "$graph" }'
    )
    records = (
        '{service_name=~"$service_name"} | event_name=~"otelstream[.].+" '
        '| otelstream_run_id=~"$run_id" | otelstream_graph=~"$graph"'
    )
    d = (
        base(
            "otelstream / Explore runs",
            EXPLORE_UID,
            "Traces (Tempo, TraceQL) and stream records (Loki) of otelstream runs; set run_id to one run's id.",
            ["traces", "logs"],
        )
        .with_variable(datasource_variable("tempo", "tempo", "Traces"))
        .with_variable(datasource_variable("loki", "loki", "Logs"))
        .with_variable(
            textbox("run_id", "Run id", ".+", "otelstream.run_id of one run (a regular expression; .+ = every run)")
        )
        .with_variable(textbox("graph", "Graph", ".+", "Graph name (a regular expression)"))
        .with_variable(
            textbox("service_name", "service.name", ".+", "service.name of the application (a regular expression)")
        )
        .link(dashboard_link("Runs overview", RUNS_UID))
    )
    d = d.with_row(row(ids, "Traces"))
    d = d.with_panel(
        table.Panel()
        .id(ids())
        .title("Runs (invoke_workflow spans)")
        .description(
            "Run spans by otelstream.run_id (root runs and subgraph runs; a subgraph run has a non-empty "
            "namespace). Click a trace id to open the trace."
        )
        .datasource(TEMPO)
        .with_target(
            tempo.TempoQuery()
            .ref_id("A")
            .datasource(TEMPO)
            .query_type("traceql")
            .query(
                run_span + " | select(span.otelstream.run_id, span.gen_ai.workflow.name, span.otelstream.outcome, "
                "span.otelstream.namespace, span.otelstream.dropped)"
            )
            .table_type(tempo_models.SearchTableType.SPANS)
            .limit(100)
            .spss(1)
        )
        .span(24)
        .height(9)
    )
    d = d.with_panel(
        table.Panel()
        .id(ids())
        .title("Node tasks of the selected runs")
        .description("invoke_node spans that are children of the matching run spans, with step and outcome.")
        .datasource(TEMPO)
        .with_target(
            tempo.TempoQuery()
            .ref_id("A")
            .datasource(TEMPO)
            .query_type("traceql")
            .query(
                run_span + ' > { span.otelstream.node != "" } '
                "| select(span.otelstream.node, span.otelstream.step, span.otelstream.outcome)"
            )
            .table_type(tempo_models.SearchTableType.SPANS)
            .limit(100)
            .spss(50)
        )
        .span(12)
        .height(9)
    )
    d = d.with_panel(
        table.Panel()
        .id(ids())
        .title("Failed spans")
        .description("Runs and node tasks with otelstream.outcome = failed, with their exception type.")
        .datasource(TEMPO)
        .with_target(
            tempo.TempoQuery()
            .ref_id("A")
            .datasource(TEMPO)
            .query_type("traceql")
            .query(
                '{ span.otelstream.outcome = "failed" } '
                "| select(span.otelstream.node, span.error.type, span.otelstream.run_id, span.gen_ai.workflow.name)"
            )
            .table_type(tempo_models.SearchTableType.SPANS)
            .limit(50)
            .spss(10)
        )
        .span(12)
        .height(9)
    )
    d = d.with_row(row(ids, "Stream records"))
    d = d.with_panel(
        ts(
            ids,
            "Stream records per second by mode",
            "otelstream.<mode> log records per second (Loki). The event_name filter needs a Loki that stores the "
            "OTLP event name as structured metadata (grafana/loki#21229); on older versions drop it: the "
            "otelstream_run_id filter alone selects otelstream's records.",
            [
                loki.Dataquery()
                .ref_id("A")
                .datasource(LOKI)
                .expr(f"sum by (event_name) (count_over_time({records} [$__auto]))")
                .legend_format("{{event_name}}")
                .query_type("range")
            ],
            "ops",
            w=24,
            configure=lambda p: p.datasource(LOKI),
        )
    )
    d = d.with_panel(
        logs.Panel()
        .id(ids())
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
            .expr(records)
            .query_type("range")
            .max_lines(1000)
            .direction(loki_models.LokiQueryDirection.FORWARD)
        )
        .show_time(True)
        .wrap_log_message(True)
        .enable_log_details(True)
        .sort_order(common.LogsSortOrder.ASCENDING)
        .span(24)
        .height(14)
    )
    d = d.with_panel(
        logs.Panel()
        .id(ids())
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
        .height(8)
    )
    return d


# --- output --------------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[], db.Dashboard]] = {
    "otelstream-runs.json": runs_dashboard,
    "otelstream-llm.json": llm_dashboard,
    "otelstream-explore.json": explore_dashboard,
}


INTERVAL_ONLY_KEYS = ("auto", "auto_count", "auto_min")
"""Keys the SDK writes on every variable but only interval variables have (Grafana's schema rejects them)."""


def to_json(dashboard: db.Dashboard) -> str:
    """Return the dashboard's JSON text: sorted keys, two-space indent, final newline."""
    model = json.loads(JSONEncoder().encode(dashboard.build()))
    for variable in model.get("templating", {}).get("list", []):
        if variable.get("type") != "interval":
            for key in INTERVAL_ONLY_KEYS:
                variable.pop(key, None)
    return json.dumps(model, sort_keys=True, indent=2) + "\n"


def render() -> dict[str, str]:
    """Return each dashboard file's name and JSON text, as written to ``dashboards/``."""
    return {name: to_json(build()) for name, build in BUILDERS.items()}


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with ``--check`` report the ones whose committed JSON is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed dashboard differs")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = HERE / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print(
            f"stale dashboards (run python dashboards/build.py and commit): {', '.join(stale)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Panel, query, variable and dashboard-settings builders the otelstream dashboards share.

Every dashboard reads its datasources through template variables named after the datasource uids
``dashboards/provisioning/datasources.yaml`` provisions (``prometheus``, ``tempo``, ``loki``), so a
reference such as :data:`PROMETHEUS` points at ``${prometheus}``, never at a fixed uid.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import logs, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as prometheus_models

RUNS_UID = "otelstream-runs"
LLM_UID = "otelstream-llm"
EXPLORE_UID = "otelstream-explore"

PROMETHEUS = dm.DataSourceRef(type_val="prometheus", uid="${prometheus}")
TEMPO = dm.DataSourceRef(type_val="tempo", uid="${tempo}")
LOKI = dm.DataSourceRef(type_val="loki", uid="${loki}")

DATASOURCE_LABELS = {"prometheus": "Metrics", "tempo": "Traces", "loki": "Logs"}
"""Datasource variable name (= provisioned uid = datasource type) -> the label Grafana shows."""

Steps: TypeAlias = Sequence[tuple[float | None, str]]
"""Threshold steps as (lower bound, colour); the first bound is None (from minus infinity)."""

PanelBuilder: TypeAlias = timeseries.Panel | stat.Panel | table.Panel | logs.Panel
"""The panel kinds the dashboards use; :func:`add_rows` numbers them."""


# --- queries ---------------------------------------------------------------------------------------


def prom(expr: str, ref_id: str, legend: str = "__auto") -> prometheus.Dataquery:
    """Return a Prometheus range query."""
    return prometheus.Dataquery().expr(expr).ref_id(ref_id).legend_format(legend).datasource(PROMETHEUS).range()


def prom_instant(expr: str, ref_id: str = "A") -> prometheus.Dataquery:
    """Return an instant Prometheus query (one value per series at the end of the range)."""
    return prometheus.Dataquery().expr(expr).ref_id(ref_id).datasource(PROMETHEUS).instant()


def prom_table(expr: str, ref_id: str) -> prometheus.Dataquery:
    """Return an instant Prometheus query whose result is a table."""
    return prom_instant(expr, ref_id).format(prometheus_models.PromQueryFormat.TABLE)


def quantiles(metric: str, by: str, filt: str, qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> list[prometheus.Dataquery]:
    """Return one ``histogram_quantile`` query per quantile of histogram ``metric``, legend ``p95 {{label}}``."""
    out = []
    for i, q in enumerate(qs):
        expr = f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{filt}[$__rate_interval])))"
        label = " ".join("{{" + name.strip() + "}}" for name in by.split(","))
        out.append(prom(expr, chr(ord("A") + i), f"p{round(q * 100)} {label}"))
    return out


# --- panels ----------------------------------------------------------------------------------------


def thresholds(steps: Steps) -> db.ThresholdsConfig:
    """Return absolute thresholds colouring values from each step's bound upwards."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=value, color=color) for value, color in steps])
    )


def ts(
    title: str,
    description: str,
    targets: Sequence[cogbuilder.Builder[Any]],
    unit: str,
    w: int = 12,
    h: int = 8,
    datasource: dm.DataSourceRef = PROMETHEUS,
) -> timeseries.Panel:
    """Return a time series panel (lines, light fill, no points); chain panel-specific options onto it."""
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource)
        .targets(list(targets))
        .unit(unit)
        .span(w)
        .height(h)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
    )


def single_stat(title: str, description: str, expr: str, unit: str, steps: Steps, w: int = 6) -> stat.Panel:
    """Return a stat panel of one instant Prometheus expression, coloured by ``steps``."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .with_target(prom_instant(expr).legend_format("__auto"))
        .unit(unit)
        .span(w)
        .height(4)
        .thresholds(thresholds(steps))
    )


# --- variables -------------------------------------------------------------------------------------


def datasource_variable(name: str) -> db.DatasourceVariable:
    """Return the datasource variable ``name`` (a key of :data:`DATASOURCE_LABELS`), defaulting to uid ``name``."""
    return (
        db.DatasourceVariable(name)
        .label(DATASOURCE_LABELS[name])
        .type(name)
        .current(dm.VariableOption(selected=True, text=name, value=name))
    )


def label_variable(name: str, label: str, metric: str, metric_label: str) -> db.QueryVariable:
    """Return a multi-select variable over the values of ``metric_label`` on ``metric``, "All" (``.*``) by default."""
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(f"label_values({metric}, {metric_label})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
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


# --- dashboards ------------------------------------------------------------------------------------


def base(title: str, uid: str, description: str, tags: list[str]) -> db.Dashboard:
    """Return a dashboard with the settings all of them share (time range, refresh, built-in annotations)."""
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


def add_rows(dashboard: db.Dashboard, rows: Mapping[str, Sequence[PanelBuilder]]) -> db.Dashboard:
    """Add each row header, then its panels, numbering rows and panels 1, 2, ... in that order.

    Args:
        dashboard: the dashboard to add to.
        rows: row title -> the panels under it, left to right and top to bottom (the grid wraps at 24).

    Returns:
        ``dashboard``, with the rows and panels added.
    """
    # Grafana only needs ids unique within one dashboard; reading order makes them easy to find in the JSON
    next_id = itertools.count(1)
    for title, panels in rows.items():
        dashboard = dashboard.with_row(db.Row(title).id(next(next_id)))
        for panel in panels:
            dashboard = dashboard.with_panel(panel.id(next(next_id)))
    return dashboard

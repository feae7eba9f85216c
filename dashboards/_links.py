"""Links from a run id to its traces and stream records: Grafana Explore, Jaeger, the explore dashboard.

The URLs carry Grafana interpolation tokens (``${tempo}``, ``${__data.fields.otelstream_run_id}``,
``${__from}``) that Grafana replaces when the link is clicked, so they are percent-encoded around
those tokens, never through them.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from dashboards._panels import EXPLORE_UID

RUN_ID_VALUE = "${__data.fields.otelstream_run_id}"
"""The run id of the table row a link is clicked on."""


def keep_tokens_quote(text: str) -> str:
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
    return "/explore?schemaVersion=1&panes=" + keep_tokens_quote(panes)


def run_links() -> list[dict[str, Any]]:
    """Data links from a run id cell to its traces (Tempo, Jaeger), its records (Loki) and the explore dashboard."""
    traceql = '{ span.gen_ai.operation.name = "invoke_workflow" && span.otelstream.run_id = "' + RUN_ID_VALUE + '" }'
    logql = '{service_name=~".+"} | otelstream_run_id = "' + RUN_ID_VALUE + '"'
    jaeger_tags = keep_tokens_quote(json.dumps({"otelstream.run_id": RUN_ID_VALUE}))
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

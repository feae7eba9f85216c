"""An ingestion pipeline: fetch records with progress, enrich batches in parallel, summarise.

Run it with ``otelstream demo`` (or ``python examples/ingest.py``): it streams ``updates``,
``custom`` progress signals and ``values`` at once, with subgraphs, while every chunk goes to
OpenTelemetry.
"""

from __future__ import annotations

import operator
import time
from typing import Annotated, Any, TypedDict

from otelstream import END, START, CompiledStateGraph, Send, StateGraph, get_stream_writer, write_progress

TOTAL = 60
PAGE = 10
BATCHES = 3


class State(TypedDict):
    records: list[int]
    enriched: Annotated[list[int], operator.add]
    summary: str


def fetch(state: State) -> dict[str, Any]:
    records: list[int] = []
    for page in range(0, TOTAL, PAGE):
        time.sleep(0.05)  # a slow API page
        records.extend(range(page, page + PAGE))
        write_progress(len(records), TOTAL, unit="records", message=f"Fetched {len(records)}/{TOTAL} records")
    return {"records": records}


def fan_out(state: State) -> list[Send]:
    size = len(state["records"]) // BATCHES
    return [Send("enrich", {"batch": i, "items": state["records"][i * size : (i + 1) * size]}) for i in range(BATCHES)]


def enrich(task: dict[str, Any]) -> dict[str, Any]:
    time.sleep(0.05 * (task["batch"] + 1))
    size = len(task["items"])
    write_progress(size, size, unit="records", message=f"Enriched batch {task['batch']}")
    return {"enriched": [x * x for x in task["items"]]}


def count(state: State) -> dict[str, Any]:
    return {"summary": f"{len(state['enriched'])} records enriched"}


def report(state: State) -> dict[str, Any]:
    get_stream_writer()({"message": "Report ready"})
    return {"summary": state["summary"] + f", checksum {sum(state['enriched'])}"}


def build_summary() -> CompiledStateGraph:
    """The summarising subgraph: count, then report."""
    g = StateGraph(State)
    g.add_node("count", count)
    g.add_node("report", report)
    g.add_edge(START, "count")
    g.add_edge("count", "report")
    return g.compile(name="summarize")


def build_graph() -> CompiledStateGraph:
    """The ingestion graph: fetch -> enrich x3 in parallel -> summarize (a subgraph)."""
    g = StateGraph(State)
    g.add_node("fetch", fetch)
    g.add_node("enrich", enrich)
    g.add_node("summarize", build_summary())
    g.add_edge(START, "fetch")
    g.add_conditional_edges("fetch", fan_out)
    g.add_edge("enrich", "summarize")
    g.add_edge("summarize", END)
    return g.compile(name="ingest")


graph = build_graph()

if __name__ == "__main__":
    for namespace, mode, chunk in graph.stream({"records": []}, stream_mode=["updates", "custom"], subgraphs=True):
        print(namespace, mode, chunk)

"""A durable run in its own process, for the test that kills it mid-run.

``python -m tests.durable_worker DB THREAD`` streams the graph on a SQLite thread; the
``slow`` node then blocks until the process is killed. Each node appends its name to a
log file, so the test sees which node code ran in which process.
"""

from __future__ import annotations

import operator
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import otelstream


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def build(saver: otelstream.BaseCheckpointSaver, ran: Path, *, block: bool) -> otelstream.CompiledStateGraph:
    """``first -> second -> (fast, slow) -> last``; ``slow`` blocks when ``block``."""

    def node(name: str) -> Any:
        def run(state: State) -> dict[str, Any]:
            with ran.open("a") as out:
                out.write(f"{os.getpid()} {name}\n")
            if name == "slow" and block:
                time.sleep(120)  # kept: the test SIGKILLs the process here; the bound only ends a stray worker
            return {"log": [name]}

        return run

    graph = otelstream.StateGraph(State)
    for name in ("first", "second", "fast", "slow", "last"):
        graph.add_node(name, node(name))
    graph.add_edge(otelstream.START, "first")
    graph.add_edge("first", "second")
    graph.add_edge("second", "fast")
    graph.add_edge("second", "slow")
    graph.add_edge(["fast", "slow"], "last")
    return graph.compile(checkpointer=saver)


def main() -> None:
    """Stream the graph on the thread named on the command line, to its end (or death)."""
    db, thread, ran = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    saver = otelstream.SqliteSaver(db)
    graph = build(saver, ran, block=True)
    for _ in graph.stream({"log": []}, {"configurable": {"thread_id": thread}}):
        pass


if __name__ == "__main__":
    main()

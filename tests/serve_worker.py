"""A graph process for the gateway's tests: runs one scenario, exporting to OTEL_EXPORTER_OTLP_ENDPOINT.

Run as ``python -m tests.serve_worker SCENARIO RUN_ID OUT MODES_JSON SUBGRAPHS VERSION [GATE]``.
It writes every chunk its in-process ``stream()`` yielded to OUT, one ``codec.encode`` line each,
then ``END``. With GATE, the graph stops half-way until that file exists (a consumer can join
mid-run, a gateway can be killed and restarted).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import otelstream
from otelstream import END, START, Command, InMemorySaver, Send, StateGraph, get_stream_writer, interrupt
from otelstream.telemetry.codec import encode

GATE_POLL_S = 0.05
GATE_TIMEOUT_S = 60.0


def _add(a: list[str], b: list[str]) -> list[str]:
    return a + b


class State(TypedDict):
    topic: str
    items: list[str]
    results: Annotated[list[str], _add]
    answer: str


def _wait(gate: Path | None) -> None:
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while gate is not None and not gate.exists() and time.monotonic() < deadline:
        time.sleep(GATE_POLL_S)


def research(gate: Path | None) -> otelstream.CompiledStateGraph:
    """plan --Send x2--> work --> review (a subgraph) --> llm (tokens); gated after plan."""

    def plan(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(5):
            otelstream.write_progress(i + 1, 10, unit="steps", message=f"planning {i + 1}/10")
        write({"stage": "plan", "pair": ("x", 1), "tags": frozenset({"a"})})
        return {"items": ["alpha", "beta"]}

    def fan_out(state: State) -> list[Send]:
        return [Send("work", {"topic": state["topic"], "item": item}) for item in state["items"]]

    def work(packet: dict[str, Any]) -> dict[str, Any]:
        _wait(gate)
        otelstream.write_progress(7, 10, unit="steps", message=f"working on {packet['item']}")
        return {"results": [f"{packet['topic']}:{packet['item']}"]}

    def check(state: State) -> dict[str, Any]:
        get_stream_writer()({"stage": "check", "n": len(state["results"])})
        return {"answer": "checked"}

    @otelstream.stream_llm(model="fake-model", provider="test")
    def generate(prompt: str) -> Any:
        yield from ("The", " answer", " is", " 42", ".")

    def llm(state: State) -> dict[str, Any]:
        otelstream.write_progress(10, 10, unit="steps", message="done")
        return {"answer": "".join(generate(state["topic"]))}

    review = StateGraph(State)
    review.add_node("check", check)
    review.add_edge(START, "check")
    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("work", work)
    graph.add_node("review", review.compile(name="review"))
    graph.add_node("llm", llm)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["work"])
    graph.add_edge("work", "review")
    graph.add_edge("review", "llm")
    graph.add_edge("llm", END)
    return graph.compile(name="research", checkpointer=InMemorySaver())


def tokens(count: int) -> otelstream.CompiledStateGraph:
    """One node streaming ``count`` LLM tokens."""

    @otelstream.stream_llm(model="fake-model", provider="test")
    def generate(prompt: str) -> Any:
        for i in range(count):
            yield f"t{i} "

    graph = StateGraph(State)
    graph.add_node("llm", lambda state: {"answer": "".join(generate(state["topic"]))})
    graph.add_edge(START, "llm")
    return graph.compile(name="tokens")


def approval() -> otelstream.CompiledStateGraph:
    """A node that pauses with interrupt() for a human's answer."""

    def ask(state: State) -> dict[str, Any]:
        answer = interrupt({"question": f"publish {state['topic']}?"})
        return {"answer": str(answer)}

    graph = StateGraph(State)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    return graph.compile(name="approval", checkpointer=InMemorySaver())


def main(argv: list[str]) -> int:
    scenario, run_id, out_path, modes_json, subgraphs, version = argv[:6]
    gate = Path(argv[6]) if len(argv) > 6 else None
    modes = json.loads(modes_json)
    otelstream.configure(export=otelstream.ExportOptions(otlp=True), service_name="serve-worker")
    config: dict[str, Any] = {"run_id": run_id, "configurable": {"thread_id": f"thread-{run_id[:8]}"}}
    inputs: Any = {"topic": "otel", "items": [], "results": [], "answer": ""}
    if scenario == "research":
        graph = research(gate)
    elif scenario == "tokens":
        graph = tokens(10_000)
    elif scenario == "approval":
        graph = approval()
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    with open(out_path, "w", encoding="utf-8") as out:
        kwargs: dict[str, Any] = {"stream_mode": modes, "subgraphs": subgraphs == "true", "version": version}
        for chunk in graph.stream(inputs, config, **kwargs):
            out.write(encode(chunk) + "\n")
            out.flush()
        if scenario == "approval":
            # the resume is a run of its own on the same thread
            resume = {**config, "run_id": run_id[:-1] + ("1" if run_id[-1] != "1" else "2")}
            for chunk in graph.stream(Command(resume="yes"), resume, **kwargs):
                out.write("RESUMED " + encode(chunk) + "\n")
        out.write("END\n")
    otelstream.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

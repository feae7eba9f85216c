"""The benchmark workloads, written once against either engine's LangGraph API.

A workload builds its graph from a :class:`Lib` (otelstream's or LangGraph's names), runs
one ``stream()`` to the end and returns a :class:`Sample`. Consumers count chunks and
drop them (no ``list(...)``): memory figures then measure the engine, not the consumer.
"""

from __future__ import annotations

import dataclasses
import operator
import time
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypedDict

__all__ = ["WORKLOADS", "Lib", "Sample", "Workload", "load_lib"]


@dataclasses.dataclass(frozen=True)
class Lib:
    """The names a workload uses from the engine under test."""

    name: str
    StateGraph: Any
    START: str
    END: str
    Send: Any
    get_stream_writer: Callable[[], Callable[[Any], None]]


def load_lib(engine: str) -> Lib:
    """Import one engine only (the other is never imported in the same process)."""
    if engine == "langgraph":
        import langgraph.config
        import langgraph.graph
        import langgraph.types

        return Lib(
            name="langgraph",
            StateGraph=langgraph.graph.StateGraph,
            START=langgraph.graph.START,
            END=langgraph.graph.END,
            Send=langgraph.types.Send,
            get_stream_writer=langgraph.config.get_stream_writer,
        )
    if engine == "otelstream":
        import otelstream

        return Lib(
            name="otelstream",
            StateGraph=otelstream.StateGraph,
            START=otelstream.START,
            END=otelstream.END,
            Send=otelstream.Send,
            get_stream_writer=otelstream.get_stream_writer,
        )
    raise ValueError(f"unknown engine {engine!r}")


@dataclasses.dataclass
class Sample:
    """What one ``stream()`` delivered: chunks received, and emit-to-yield latencies (ns)."""

    chunks: int
    latencies_ns: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Workload:
    """A graph and how to stream it.

    Attributes:
        name: Identifier used on the command line.
        title: Row label in the table.
        build: ``build(lib, size) -> compiled graph``.
        run: ``run(graph, size) -> Sample``; one complete ``stream()`` (the caller times it).
        size: The workload's size (nodes, tasks, events).
        warmup_size: Size of the untimed warm-up runs.
        unit_divisor: ``seconds / unit_divisor`` is the per-unit time (node step, task, event).
        expected_chunks: ``expected_chunks(size)`` is the number of chunks a run must yield, if
            fixed by the workload (the worker fails otherwise: an engine that ignores a mode
            must not show up as infinitely fast).
        floor: ``floor(size)`` does the workload's engine-independent work once, outside any
            graph (the ``langgraph`` worker times it too, as a reference).
    """

    name: str
    title: str
    build: Callable[[Lib, int], Any]
    run: Callable[[Any, int], Sample]
    size: int
    warmup_size: int
    unit_divisor: int
    expected_chunks: Callable[[int], int] | None = None
    floor: Callable[[int], Any] | None = None


# --- (1) a chain of trivial nodes ---------------------------------------------------------


class ChainState(TypedDict):
    n: int


def _increment(state: ChainState) -> dict[str, int]:
    return {"n": state["n"] + 1}


def build_chain(lib: Lib, size: int) -> Any:
    graph = lib.StateGraph(ChainState)
    previous = lib.START
    for i in range(size):
        name = f"n{i}"
        graph.add_node(name, _increment)
        graph.add_edge(previous, name)
        previous = name
    graph.add_edge(previous, lib.END)
    return graph.compile(name="chain")


def _count(chunks: Iterable[Any]) -> int:
    count = 0
    for _ in chunks:
        count += 1
    return count


def _consume(stream: Iterable[Any]) -> Sample:
    return Sample(_count(stream))


def _chain_runner(mode: str) -> Callable[[Any, int], Sample]:
    def run(graph: Any, size: int) -> Sample:
        config = {"recursion_limit": size + 10}
        return _consume(graph.stream({"n": 0}, config, stream_mode=mode))

    return run


# --- (2) 50 parallel nodes in one superstep (Send fan-out) ---------------------------------


class FanState(TypedDict):
    width: int
    done: Annotated[list[int], operator.add]


def _work(packet: dict[str, int]) -> dict[str, list[int]]:
    return {"done": [packet["i"]]}


def build_fanout(lib: Lib, size: int) -> Any:
    def fan_out(state: FanState) -> list[Any]:
        return [lib.Send("work", {"i": i}) for i in range(state["width"])]

    graph = lib.StateGraph(FanState)
    graph.add_node("work", _work)
    graph.add_conditional_edges(lib.START, fan_out, ["work"])
    graph.add_edge("work", lib.END)
    return graph.compile(name="fanout")


def run_fanout(graph: Any, size: int) -> Sample:
    return _consume(graph.stream({"width": size, "done": []}, stream_mode="updates"))


# --- (3) one node writing many custom events ----------------------------------------------


class EventState(TypedDict):
    events: int


def build_custom(lib: Lib, size: int) -> Any:
    get_stream_writer = lib.get_stream_writer

    def chatty(state: EventState) -> dict[str, int]:
        write = get_stream_writer()
        for i in range(state["events"]):
            write({"i": i})
        return {"events": state["events"]}

    graph = lib.StateGraph(EventState)
    graph.add_node("chatty", chatty)
    graph.add_edge(lib.START, "chatty")
    graph.add_edge("chatty", lib.END)
    return graph.compile(name="custom")


def run_custom(graph: Any, size: int) -> Sample:
    return _consume(graph.stream({"events": size}, stream_mode="custom"))


# --- (5) custom events paced at one per millisecond: emit -> yield latency ---------------

PACE_S = 0.001


def build_paced(lib: Lib, size: int) -> Any:
    get_stream_writer = lib.get_stream_writer

    def paced(state: EventState) -> dict[str, int]:
        write = get_stream_writer()
        start = time.perf_counter()
        for i in range(state["events"]):
            delay = start + i * PACE_S - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            write({"i": i, "t": time.perf_counter_ns()})
        return {"events": state["events"]}

    graph = lib.StateGraph(EventState)
    graph.add_node("paced", paced)
    graph.add_edge(lib.START, "paced")
    graph.add_edge("paced", lib.END)
    return graph.compile(name="paced")


def run_paced(graph: Any, size: int) -> Sample:
    latencies: list[int] = []
    for chunk in graph.stream({"events": size}, stream_mode="custom"):
        latencies.append(time.perf_counter_ns() - chunk["t"])
    return Sample(len(latencies), latencies)


# --- LLM workloads: a LangChain chat model called inside nodes -----------------------------
#
# bench/chat_model.py imports langchain_core, which switches on otelstream's LangChain
# integration: it is imported only when one of these graphs is built.


class ChatState(TypedDict):
    messages: Annotated[list[Any], operator.add]
    tokens: int


def _chat_model() -> Any:
    import chat_model

    return chat_model


def build_tokens(lib: Lib, size: int) -> Any:
    """(4): one node, one ``model.invoke(messages)`` of ``state["tokens"]`` tokens."""
    models: dict[int, Any] = {}
    bench_model = _chat_model().BenchChatModel

    def llm(state: ChatState) -> dict[str, Any]:
        n = state["tokens"]
        model = models.get(n) or models.setdefault(n, bench_model(tokens=n))
        return {"messages": [model.invoke(state["messages"])]}

    graph = lib.StateGraph(ChatState)
    graph.add_node("llm", llm)
    graph.add_edge(lib.START, "llm")
    graph.add_edge("llm", lib.END)
    return graph.compile(name="tokens")


def _chat_inputs(tokens: int) -> dict[str, Any]:
    return {"messages": [_chat_model().HumanMessage("hi")], "tokens": tokens}


def run_tokens(graph: Any, size: int) -> Sample:
    return _consume(graph.stream(_chat_inputs(size), stream_mode="messages"))


# --- (5) tokens paced at one per millisecond, messages: emit -> yield latency ---------------


def build_paced_tokens(lib: Lib, size: int) -> Any:
    """One node; its model produces a token per millisecond, each stamped with ``perf_counter_ns()``."""
    models: dict[int, Any] = {}
    bench_model = _chat_model().BenchChatModel

    def llm(state: ChatState) -> dict[str, Any]:
        n = state["tokens"]
        model = models.get(n) or models.setdefault(n, bench_model(tokens=n, pace_s=PACE_S, stamp=True))
        return {"messages": [model.invoke(state["messages"])]}

    graph = lib.StateGraph(ChatState)
    graph.add_node("llm", llm)
    graph.add_edge(lib.START, "llm")
    graph.add_edge("llm", lib.END)
    return graph.compile(name="paced_tokens")


def run_paced_tokens(graph: Any, size: int) -> Sample:
    latencies: list[int] = []
    for message, _metadata in graph.stream(_chat_inputs(size), stream_mode="messages"):
        latencies.append(time.perf_counter_ns() - int(message.content))
    return Sample(len(latencies), latencies)


# --- (6) an agent loop, all five modes -----------------------------------------------------

TOKENS_PER_CALL = 20
TOOL_ROUNDS = 2  # agent, tools, agent, tools, agent
ALL_MODES = ["values", "updates", "messages", "custom", "debug"]
# values 6 (input + 5 steps), updates 5, custom 5, debug 10 (task + task_result per node),
# messages 62 (3 calls x 20 tokens, and the 2 ToolMessages the tools node returns)
AGENT_CHUNKS_PER_RUN = 88


class AgentState(TypedDict):
    messages: Annotated[list[Any], operator.add]


def build_agent(lib: Lib, size: int) -> Any:
    """agent -> tools -> agent -> tools -> agent: the model decides, by its tool calls.

    Each agent step is one ``model.invoke(messages)`` of 20 tokens; the model asks for the
    ``search`` tool until the conversation holds two tool results. Every node writes one
    custom event.
    """
    get_stream_writer = lib.get_stream_writer
    chat = _chat_model()
    model = chat.BenchChatModel(tokens=TOKENS_PER_CALL, tool_rounds=TOOL_ROUNDS)
    tool_message = chat.ToolMessage

    def agent(state: AgentState) -> dict[str, Any]:
        get_stream_writer()({"node": "agent", "status": "thinking"})
        return {"messages": [model.invoke(state["messages"])]}

    def tools(state: AgentState) -> dict[str, Any]:
        call = state["messages"][-1].tool_calls[0]
        get_stream_writer()({"node": "tools", "status": f"calling {call['name']}"})
        return {"messages": [tool_message(content=f"result for {call['args']['q']}", tool_call_id=call["id"])]}

    def route(state: AgentState) -> str:
        return "tools" if state["messages"][-1].tool_calls else lib.END

    graph = lib.StateGraph(AgentState)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_edge(lib.START, "agent")
    graph.add_conditional_edges("agent", route, ["tools", lib.END])
    graph.add_edge("tools", "agent")
    return graph.compile(name="agent")


def run_agent(graph: Any, size: int) -> Sample:
    inputs = {"messages": [_chat_model().HumanMessage("what is otelstream?")]}
    return _consume(graph.stream(inputs, stream_mode=list(ALL_MODES)))


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "chain_updates", "(1) chain of 100 nodes, updates", build_chain, _chain_runner("updates"), 100, 100, 100
        ),
        Workload("chain_values", "(1) chain of 100 nodes, values", build_chain, _chain_runner("values"), 100, 100, 100),
        Workload("fanout", "(2) 50 parallel nodes (Send), updates", build_fanout, run_fanout, 50, 50, 50),
        Workload("custom_10k", "(3) 10,000 custom events", build_custom, run_custom, 10_000, 10_000, 10_000),
        Workload("custom_1m", "(3) 1,000,000 custom events", build_custom, run_custom, 1_000_000, 10_000, 1_000_000),
        Workload("paced", "(5) 1,000 custom events, 1/ms", build_paced, run_paced, 1_000, 100, 1_000),
        Workload(
            "tokens_10k",
            "(4) LLM call, 10,000 tokens, messages",
            build_tokens,
            run_tokens,
            10_000,
            1_000,
            10_000,
            expected_chunks=lambda size: size,  # one messages chunk per token
            floor=lambda size: _chat_model().invoke_floor(size),
        ),
        Workload(
            "paced_tokens",
            "(5) 1,000 tokens, 1/ms, messages",
            build_paced_tokens,
            run_paced_tokens,
            1_000,
            100,
            1_000,
            expected_chunks=lambda size: size,
        ),
        Workload(
            "agent",
            "(6) agent loop, 5 modes",
            build_agent,
            run_agent,
            1,
            1,
            1,
            expected_chunks=lambda size: AGENT_CHUNKS_PER_RUN,
        ),
    )
}

"""Differential property test: random graphs run the same on otelstream and on LangGraph.

Hypothesis draws small graphs (edges, joins, conditional edges, Send fan-outs, Command
gotos, a subgraph node, cycles cut by the recursion limit, reducer and plain keys that may
conflict). Nodes do not sleep, so within a superstep the completion order is left to the
thread pool (or event loop): each root superstep's chunks (everything between two root
"values" chunks, subgraph chunks included) are compared as a multiset, with every task id
replaced by one placeholder; the order of the supersteps, the "values" chunks and the
final error are compared exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import operator
from typing import Annotated, Any, TypedDict, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.differential import LIBS, Lib, arun, normalize, run


class State(TypedDict):
    log: Annotated[list[str], operator.add]
    count: Annotated[int, operator.add]
    last: str


@dataclasses.dataclass(frozen=True)
class Spec:
    """A random graph: which node writes what, and how nodes are wired."""

    nodes: int
    writes_last: tuple[bool, ...]
    entry: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    joins: tuple[tuple[tuple[int, int], int], ...]
    branches: tuple[tuple[int, int, int], ...]  # (source, target while short, limit)
    sends: tuple[tuple[int, int, int], ...]  # (source, target, packets)
    gotos: tuple[tuple[int, int], ...]  # (source, target): the node returns a Command
    subgraph: int | None  # this node is a compiled graph of one node


T = TypeVar("T", bound=tuple[int, ...])


def _one_per_source(items: list[T]) -> tuple[T, ...]:
    # a node gets at most one branch of each kind (a second would reuse the branch's name)
    return tuple({item[0]: item for item in items}.values())


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    n = draw(st.integers(1, 4))
    node = st.integers(0, n - 1)
    joins = draw(st.lists(st.tuples(st.tuples(node, node), node), max_size=1))
    return Spec(
        nodes=n,
        writes_last=tuple(draw(st.lists(st.booleans(), min_size=n, max_size=n))),
        entry=tuple(sorted(set(draw(st.lists(node, min_size=1, max_size=2))))),
        edges=tuple(sorted(set(draw(st.lists(st.tuples(node, node), max_size=4))))),
        joins=tuple((starts, end) for starts, end in joins if starts[0] != starts[1]),
        branches=_one_per_source(draw(st.lists(st.tuples(node, node, st.integers(1, 4)), max_size=2))),
        sends=_one_per_source(draw(st.lists(st.tuples(node, node, st.integers(1, 3)), max_size=1))),
        gotos=_one_per_source(draw(st.lists(st.tuples(node, node), max_size=2))),
        subgraph=draw(st.none() | node),
    )


def build(spec: Spec) -> Any:
    def for_lib(lib: Lib) -> Any:
        names = [f"n{i}" for i in range(spec.nodes)]

        gotos = dict(spec.gotos)

        def make(i: int) -> Any:
            def node(state: Any) -> Any:
                update: dict[str, Any] = {"log": [names[i]], "count": 1}
                if spec.writes_last[i]:
                    update["last"] = names[i]
                # (not inside the subgraph, where the parent's nodes do not exist)
                if i in gotos and i != spec.subgraph and len(state["log"]) < 4:
                    return lib.Command(goto=names[gotos[i]], update=update)
                return update

            if i != spec.subgraph:
                return node
            child = lib.StateGraph(State)
            child.add_node("inner", node)
            child.add_edge(lib.START, "inner")
            return child.compile()

        graph = lib.StateGraph(State)
        for i, name in enumerate(names):
            graph.add_node(name, make(i))
        for i in spec.entry:
            graph.add_edge(lib.START, names[i])
        for a, b in spec.edges:
            graph.add_edge(names[a], names[b])
        for (a, b), end in spec.joins:
            graph.add_edge([names[a], names[b]], names[end])
        for src, dst, limit in spec.branches:

            def route(state: Any, dst: int = dst, limit: int = limit) -> str:
                return names[dst] if len(state["log"]) < limit else lib.END

            graph.add_conditional_edges(names[src], route)
        for src, dst, packets in spec.sends:

            def fan(state: Any, dst: int = dst, packets: int = packets) -> list[Any]:
                return [lib.Send(names[dst], {"log": [], "count": 0}) for _ in range(packets)]

            graph.add_conditional_edges(names[src], fan)
        return graph.compile()

    return for_lib


def _steps(chunks: list[Any]) -> list[Any]:
    # split at root "values" chunks (kept in place); compare each superstep as a multiset
    out: list[Any] = []
    step: list[str] = []
    for ns, mode, chunk in chunks:
        if ns:
            step.append(repr((ns, mode, chunk)))
            continue
        if mode == "values":
            out.append(sorted(step))
            out.append(chunk)
            step = []
        else:
            step.append(repr((mode, chunk)))
    out.append(sorted(step))
    return out


KWARGS: dict[str, Any] = {
    "stream_mode": ["values", "updates", "tasks"],
    "subgraphs": True,
    "config": {"recursion_limit": 5},
}
SETTINGS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(specs())
def test_random_graphs(spec: Spec) -> None:
    ours, theirs = (normalize(run(lib, build(spec), {"log": []}, **KWARGS), numbered=False) for lib in LIBS)
    assert ours[1] == theirs[1]
    assert _steps(ours[0]) == _steps(theirs[0])


@SETTINGS
@given(specs())
def test_random_graphs_async(spec: Spec) -> None:
    ours, theirs = (
        normalize(asyncio.run(arun(lib, build(spec), {"log": []}, **KWARGS)), numbered=False) for lib in LIBS
    )
    assert ours[1] == theirs[1]
    assert _steps(ours[0]) == _steps(theirs[0])

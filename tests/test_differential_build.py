"""Differential tests: build-time validation (``add_*`` and ``compile()``).

Each case is a list of builder calls; both engines must reject it at the same call with a
``ValueError`` (otelstream's ``InvalidGraphError`` subclasses it), or both accept it.
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, TypedDict

import pytest

import otelstream
from tests.differential import LIBS, OTEL, Lib, Op, assert_same, build_error_at


class State(TypedDict):
    x: int
    log: Annotated[list[str], operator.add]


def _two_args_too_many(a: list[str], b: list[str], c: list[str]) -> list[str]:
    return a + b + c


def _one_arg(a: list[str]) -> list[str]:
    return a


def _concat(a: list[str], b: list[str]) -> list[str]:
    return a + b


def _with_default(a: list[str], b: list[str], c: list[str] | None = None) -> list[str]:
    return a + b


def _variadic(*parts: list[str]) -> list[str]:
    return parts[0] + parts[1]


class ThreeArgReducer(TypedDict):
    log: Annotated[list[str], _two_args_too_many]


class OneArgReducer(TypedDict):
    log: Annotated[list[str], _one_arg]


class DefaultArgReducer(TypedDict):
    log: Annotated[list[str], _with_default]


class VariadicReducer(TypedDict):
    log: Annotated[list[str], _variadic]


class OtherReducer(TypedDict):
    log: Annotated[list[str], _concat]


class PlainLog(TypedDict):
    log: list[str]


class Private(TypedDict):
    secret: int


class Empty(TypedDict):
    pass


def _node(state: State) -> dict[str, Any]:
    return {}


def _other_reducer_node(state: OtherReducer) -> dict[str, Any]:
    return {}


def _plain_log_node(state: PlainLog) -> dict[str, Any]:
    return {}


def _private_node(state: Private) -> dict[str, Any]:
    return {}


START, END = "__start__", "__end__"
A: Op = ("add_node", ("a", _node))
B: Op = ("add_node", ("b", _node))
ENTRY: Op = ("add_edge", (START, "a"))

CASES: dict[str, tuple[Any, list[Op]]] = {
    "valid": (State, [A, ENTRY]),
    "valid with finish point": (State, [A, ("set_entry_point", ("a",)), ("set_finish_point", ("a",))]),
    "edge to unknown node": (State, [A, ENTRY, ("add_edge", ("a", "ghost"))]),
    "edge from unknown node": (State, [A, ENTRY, ("add_edge", ("ghost", "a"))]),
    "join from unknown node": (State, [A, ENTRY, ("add_edge", (["a", "ghost"], "a"))]),
    "join to unknown node": (State, [A, B, ENTRY, ("add_edge", (["a", "b"], "ghost"))]),
    "edge from END": (State, [A, ENTRY, ("add_edge", (END, "a"))]),
    "edge to START": (State, [A, ENTRY, ("add_edge", ("a", START))]),
    "join to START": (State, [A, B, ENTRY, ("add_edge", (["a", "b"], START))]),
    "join from END": (State, [A, ENTRY, ("add_edge", ([END, "a"], "a"))]),
    "no entry point": (State, [A]),
    "no nodes": (State, []),
    "duplicate node": (State, [A, A, ENTRY]),
    "node named START": (State, [("add_node", (START, _node)), A, ENTRY]),
    "node named END": (State, [("add_node", (END, _node)), A, ENTRY]),
    "node name with |": (State, [("add_node", ("a|b", _node)), A, ENTRY]),
    "node name with :": (State, [("add_node", ("a:b", _node)), A, ENTRY]),
    "reducer with three args": (ThreeArgReducer, [A, ENTRY]),
    "reducer with one arg": (OneArgReducer, [A, ENTRY]),
    "reducer with a third defaulted arg": (DefaultArgReducer, [A, ENTRY]),
    "variadic reducer": (VariadicReducer, [A, ENTRY]),
    "branch to unknown node": (State, [A, ENTRY, ("add_conditional_edges", ("a", _node, {"x": "ghost"}))]),
    "branch list to unknown node": (State, [A, ENTRY, ("add_conditional_edges", ("a", _node, ["ghost"]))]),
    "branch from unknown node": (State, [A, ENTRY, ("add_conditional_edges", ("ghost", _node))]),
    "duplicate branch": (
        State,
        [A, ENTRY, ("add_conditional_edges", ("a", _node)), ("add_conditional_edges", ("a", _node))],
    ),
    "conditional entry point": (State, [A, ("set_conditional_entry_point", (_node, ["a"]))]),
    "node input schema with another reducer": (State, [("add_node", ("a", _other_reducer_node)), ENTRY]),
    "node input schema without the reducer": (State, [("add_node", ("a", _plain_log_node)), ENTRY]),
    "node input schema adds a private key": (State, [("add_node", ("a", _private_node)), ENTRY]),
    "destinations to unknown node": (State, [("add_node", ("a", _node, None, None, None, None, ("ghost",))), ENTRY]),
    "empty sequence": (State, [("add_sequence", ([],))]),
    "sequence": (State, [("add_sequence", ([("a", _node), ("b", _node)],)), ENTRY]),
}

# LangGraph accepts these and fails (or runs stateless) later; otelstream rejects them at
# StateGraph() on purpose, so they are checked on otelstream alone.
STRICTER: dict[str, tuple[Any, list[Op]]] = {
    "state schema is not a class": (dict[str, int], [A, ENTRY]),
    "state schema without keys": (Empty, [A, ENTRY]),
    "state schema is an int": (int, [A, ENTRY]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_build_validation(case: str) -> None:
    schema, ops = CASES[case]
    (ours, our_error), (theirs, their_error) = (build_error_at(lib, schema, ops) for lib in LIBS)
    detail = f"otelstream: {ours} {our_error!r}\nlanggraph:  {theirs} {their_error!r}"
    assert ours == theirs, detail
    assert (our_error is None) == (their_error is None), detail
    if their_error is not None and isinstance(their_error, ValueError):
        assert isinstance(our_error, ValueError), detail


@pytest.mark.parametrize("case", list(STRICTER))
def test_build_validation_stricter_than_langgraph(case: str) -> None:
    schema, ops = STRICTER[case]
    index, error = build_error_at(OTEL, schema, ops)
    assert index == -1
    assert isinstance(error, otelstream.InvalidGraphError)
    assert isinstance(error, ValueError)


# --- builder conveniences, run on both engines ----------------------------------------------


class _CallableNode:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, state: State) -> dict[str, Any]:
        return {"log": [self.name]}


def _suffixed(state: State, suffix: str) -> dict[str, Any]:
    return {"log": [suffix]}


def alpha(state: State) -> dict[str, Any]:
    return {"log": ["alpha"]}


def beta(state: State) -> dict[str, Any]:
    return {"log": ["beta"]}


def conveniences(lib: Lib) -> Any:
    """Nodes added by function, as a callable object, a partial, and in a sequence."""
    graph = lib.StateGraph(State)
    graph.add_node(alpha)
    graph.add_node("obj", _CallableNode("obj"))
    graph.add_node("partial", functools.partial(_suffixed, suffix="partial"))
    graph.add_sequence([beta, ("beta2", beta)])
    graph.add_edge(lib.START, "alpha")
    graph.add_edge("alpha", "obj")
    graph.add_edge("obj", "partial")
    graph.add_edge("partial", "beta")
    return graph.compile()


def test_builder_conveniences() -> None:
    chunks, _ = assert_same(conveniences, {"x": 0}, stream_mode="updates")
    assert [next(iter(c)) for c in chunks] == ["alpha", "obj", "partial", "beta", "beta2"]


def test_with_config() -> None:
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(State)
        graph.add_node("a", lambda state: {"x": state["x"] + 1})
        graph.add_edge(lib.START, "a")
        graph.add_edge("a", "a")
        return graph.compile().with_config(recursion_limit=3, tags=["bound"])

    _, error = assert_same(build, {"x": 0}, stream_mode=["updates", "tasks"])
    assert error[1] == "GraphRecursionError"

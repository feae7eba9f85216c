"""Differential tests: state schemas, inputs, node return values and output keys."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

import pydantic
import pytest

from tests.differential import LIBS, FinishOrder, Lib, assert_same, assert_same_invoke, normalize, run

MODES = ["values", "updates", "custom", "tasks"]


class State(TypedDict):
    x: int
    log: Annotated[list[str], operator.add]


class Private(TypedDict):
    secret: int


def simple(lib: Lib) -> Any:
    """START -> a."""
    graph = lib.StateGraph(State)
    graph.add_node("a", lambda state: {"log": ["a"]})
    graph.add_edge(lib.START, "a")
    return graph.compile()


# --- inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["hello", 5, [("x", 1)]])
def test_input_that_is_not_a_state_update(given: Any) -> None:
    # mapped by the hidden __start__ task: its note names it
    _, error = assert_same(simple, given, stream_mode=MODES)
    assert error[1] == "InvalidUpdateError"
    assert error[3] == ["During task with name '__start__' and id '<id1>'"]


def test_input_none_without_checkpointer() -> None:
    _, error = assert_same(simple, None, stream_mode=MODES)
    assert error[1] == "EmptyInputError"


def test_input_with_a_reducer_key_and_unknown_keys() -> None:
    chunks, _ = assert_same(simple, {"x": 1, "log": ["in"], "nope": 2}, stream_mode=MODES)
    assert chunks[0] == ("values", {"x": 1, "log": ["in"]})


def test_command_as_input() -> None:
    # a Command input writes its update and goes to its goto, skipping START's edges
    def build(lib: Lib) -> Any:
        order = FinishOrder(lib, "a", "b")  # when both run, in one step
        graph = lib.StateGraph(State)
        graph.add_node("a", order.node("a", lambda state: {"log": ["a"]}))
        graph.add_node("b", order.node("b", lambda state: {"log": ["b"]}))
        graph.add_edge(lib.START, "a")
        return graph.compile()

    results = [run(lib, build, lib.Command(goto="b", update={"x": 3}), stream_mode=MODES) for lib in LIBS]
    assert normalize(results[0]) == normalize(results[1])


# --- node return values --------------------------------------------------------------------


@pytest.mark.parametrize("returned", [None, {}, {"unknown": 1}, {"x": 1, "unknown": 2}])
def test_node_return_values(returned: Any) -> None:
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(State)
        graph.add_node("n", lambda state: returned)
        graph.add_node("after", lambda state: {"log": ["after"]})
        graph.add_edge(lib.START, "n")
        graph.add_edge("n", "after")
        return graph.compile()

    assert_same(build, {"x": 0}, stream_mode=[*MODES, "debug"])


@pytest.mark.parametrize("returned", ["a string", 42, ["x"]])
def test_node_returning_a_non_dict(returned: Any) -> None:
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(State)
        graph.add_node("n", lambda state: returned)
        graph.add_edge(lib.START, "n")
        return graph.compile()

    _, error = assert_same(build, {"x": 0}, stream_mode=MODES)
    assert error[1] == "InvalidUpdateError"


def test_rewriting_the_same_value_still_emits_values() -> None:
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(State)
        graph.add_node("same", lambda state: {"x": state["x"]})
        graph.add_edge(lib.START, "same")
        return graph.compile()

    chunks, _ = assert_same(build, {"x": 7}, stream_mode="values")
    assert chunks == [{"x": 7, "log": []}, {"x": 7, "log": []}]


# --- state schemas -------------------------------------------------------------------------


class PydanticState(pydantic.BaseModel):
    x: int
    note: str = "default"
    log: Annotated[list[str], operator.add] = []


@dataclasses.dataclass
class DataclassState:
    x: int
    note: str = "default"
    log: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize("schema", [PydanticState, DataclassState])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_model_state(schema: Any, version: str) -> None:
    def build(lib: Lib) -> Any:
        def a(state: Any) -> dict[str, Any]:
            lib.get_stream_writer()({"type": type(state).__name__, "note": state.note})
            return {"x": state.x + 1, "log": ["a"]}

        def b(state: Any) -> Any:
            return {"note": f"seen {state.x}"}

        graph = lib.StateGraph(schema)
        graph.add_node("a", a)
        graph.add_node("b", b)
        graph.add_edge(lib.START, "a")
        graph.add_edge("a", "b")
        return graph.compile()

    assert_same(build, {"x": 1}, stream_mode=[*MODES, "debug"], version=version)
    assert_same(build, schema(x=1), stream_mode=MODES, version=version)
    assert_same_invoke(build, {"x": 1})


class InputState(TypedDict):
    question: str


class OutputState(TypedDict):
    answer: str


class OverallState(InputState, OutputState):
    scratch: str


def io_schema(lib: Lib) -> Any:
    def think(state: InputState) -> dict[str, Any]:
        return {"scratch": state["question"].upper()}

    def answer(state: OverallState) -> dict[str, Any]:
        return {"answer": f"{state['scratch']}!"}

    graph = lib.StateGraph(OverallState, input_schema=InputState, output_schema=OutputState)
    graph.add_node("think", think)
    graph.add_node("answer", answer)
    graph.add_edge(lib.START, "think")
    graph.add_edge("think", "answer")
    return graph.compile()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_input_and_output_schema_streams_all_keys(version: str) -> None:
    chunks, _ = assert_same(io_schema, {"question": "hi", "scratch": "ignored"}, stream_mode=MODES, version=version)
    if version == "v1":
        assert chunks[-1] == ("values", {"question": "hi", "answer": "HI!", "scratch": "HI"})


def test_input_and_output_schema_invoke_returns_output_keys() -> None:
    chunks, _ = assert_same_invoke(io_schema, {"question": "hi"})
    assert chunks == [{"answer": "HI!"}]
    assert_same_invoke(io_schema, {"question": "hi"}, stream_mode="updates")


# --- private channels, branch schemas, returned objects ------------------------------------


def test_node_input_schema_adds_a_private_channel() -> None:
    def build(lib: Lib) -> Any:
        def a(state: State) -> dict[str, Any]:
            return {"secret": 42, "log": ["a"]}

        def b(state: Private) -> dict[str, Any]:
            return {"log": [f"secret {state['secret']}"]}

        def c(state: State) -> dict[str, Any]:
            return {"log": [repr(state)]}  # the state schema's keys only: no "secret"

        graph = lib.StateGraph(State)
        graph.add_node("a", a)
        graph.add_node("b", b)
        graph.add_node("c", c)
        graph.add_edge(lib.START, "a")
        graph.add_edge("a", "b")
        graph.add_edge("b", "c")
        return graph.compile()

    chunks, _ = assert_same(build, {"x": 1}, stream_mode=MODES)
    assert chunks[-1][1]["secret"] == 42  # "values" streams every channel
    chunks, _ = assert_same_invoke(build, {"x": 1})
    assert "secret" not in chunks[0]


def test_branch_input_schema() -> None:
    def build(lib: Lib) -> Any:
        def route(state: Private) -> str:
            return "b" if state.get("secret") else lib.END

        graph = lib.StateGraph(State)
        graph.add_node("a", lambda state: {"secret": 1})
        graph.add_node("b", lambda state: {"log": [repr(state)]})
        graph.add_edge(lib.START, "a")
        graph.add_conditional_edges("a", route)
        return graph.compile()

    assert_same(build, {"x": 1}, stream_mode=MODES)


def test_branch_sees_the_nodes_extra_returned_keys() -> None:
    def build(lib: Lib) -> Any:
        def route(state: dict[str, Any]) -> str:
            lib.get_stream_writer()(repr(state))  # key order included
            return lib.END

        graph = lib.StateGraph(State)
        graph.add_node("a", lambda state: {"log": ["a"], "extra": 1})
        graph.add_edge(lib.START, "a")
        graph.add_conditional_edges("a", route)
        return graph.compile()

    chunks, _ = assert_same(build, {"x": 1}, stream_mode=MODES)
    assert ("custom", "{'log': ['a'], 'extra': 1, 'x': 1}") in chunks


class ModelState(pydantic.BaseModel):
    x: int = 0
    note: str | None = None
    log: Annotated[list[str], operator.add] = []


def test_node_returning_a_model_instance() -> None:
    # every field is written, defaults included (not just the fields set), except a None
    # that defaults to None; a Command's update model likewise
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(ModelState)
        graph.add_node("a", lambda state: ModelState(x=5))
        graph.add_node("b", lambda state: lib.Command(update=ModelState(note="n")))
        graph.add_edge(lib.START, "a")
        graph.add_edge("a", "b")
        return graph.compile()

    assert_same(build, {"x": 1, "log": ["in"]}, stream_mode=MODES)


def test_node_returning_a_send() -> None:
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(State)
        graph.add_node("a", lambda state: lib.Send("b", {"x": 7}))
        graph.add_node("b", lambda packet: {"log": [repr(packet)]})
        graph.add_edge(lib.START, "a")
        return graph.compile()

    assert_same(build, {"x": 1}, stream_mode=MODES)


# --- output keys ---------------------------------------------------------------------------


class ChildOutput(TypedDict):
    log: Annotated[list[str], operator.add]


@pytest.mark.parametrize("keys", [["log"], "log", "x", ["x", "log"]])
def test_output_keys(keys: Any) -> None:
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(State)
        graph.add_node("a", lambda state: {"log": ["a"]})
        graph.add_node("b", lambda state: {"x": 5})
        graph.add_edge(lib.START, "a")
        graph.add_edge("a", "b")
        return graph.compile()

    assert_same(build, {"x": 1}, stream_mode=[*MODES, "debug"], output_keys=keys)
    assert_same_invoke(build, {"x": 1}, output_keys=keys)
    assert_same_invoke(build, {"x": 1}, output_keys=keys, stream_mode="updates")


def test_subgraph_with_output_schema_streams_only_its_output_keys() -> None:
    # a subgraph node is invoked: its values and updates show its output schema's keys
    def build(lib: Lib) -> Any:
        child = lib.StateGraph(State, output_schema=ChildOutput)
        child.add_node("c", lambda state: {"x": 9, "log": ["c"]})
        child.add_edge(lib.START, "c")
        graph = lib.StateGraph(State)
        graph.add_node("child", child.compile())
        graph.add_edge(lib.START, "child")
        return graph.compile()

    chunks, _ = assert_same(build, {"x": 1}, stream_mode=MODES, subgraphs=True)
    assert ((), "updates", {"child": {"log": ["c"]}}) in chunks


def test_literal_return_annotation_is_a_path_map() -> None:
    def build(lib: Lib) -> Any:
        def route(state: State) -> Literal["b", "__end__"]:
            return "b" if state["x"] < 2 else "__end__"

        graph = lib.StateGraph(State)
        graph.add_node("a", lambda state: {"log": ["a"]})
        graph.add_node("b", lambda state: {"log": ["b"]})
        graph.add_edge(lib.START, "a")
        graph.add_conditional_edges("a", route)
        return graph.compile()

    assert_same(build, {"x": 1}, stream_mode=MODES)


# --- reducer annotations -------------------------------------------------------------------


def _merge(current: Mapping[str, int], new: Mapping[str, int]) -> dict[str, int]:
    return {**current, **new}


class AnnotationForms(TypedDict):
    seq: Annotated[Sequence[str], operator.add]  # starts as [] (abstract type made concrete)
    doc: Annotated[list[str], operator.add, "doc"]  # only the last item can be a reducer
    optional: NotRequired[Annotated[list[str], operator.add]]
    mapping: Annotated[Mapping[str, int], _merge]
    maybe: Annotated[Optional[int], operator.add]  # noqa: UP045 - the typing form is the case
    number: Annotated[int, operator.add]


def test_reducer_annotation_forms() -> None:
    def build(lib: Lib) -> Any:
        def a(state: AnnotationForms) -> dict[str, Any]:
            return {"seq": ["a"], "optional": ["a"], "mapping": {"k": 1}, "number": 2, "maybe": 1}

        graph = lib.StateGraph(AnnotationForms)
        graph.add_node("a", a)
        graph.add_edge(lib.START, "a")
        return graph.compile()

    chunks, _ = assert_same(build, {"doc": ["d"]}, stream_mode=["values", "updates"])
    assert chunks[0] == ("values", {"seq": [], "doc": ["d"], "optional": [], "mapping": {}, "number": 0})


def test_explicit_node_input_schema() -> None:
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(State)
        graph.add_node("a", lambda state: {"secret": 7, "log": ["a"]})
        graph.add_node("b", lambda state: {"log": [repr(state)]}, input_schema=Private)
        graph.add_edge(lib.START, "a")
        graph.add_edge("a", "b")
        return graph.compile()

    chunks, _ = assert_same(build, {"x": 1}, stream_mode=MODES)
    assert ("updates", {"b": {"log": ["{'secret': 7}"]}}) in chunks


def test_command_update_as_pairs_writing_a_key_twice() -> None:
    def build(lib: Lib) -> Any:
        graph = lib.StateGraph(State)
        graph.add_node("a", lambda state: lib.Command(update=[("log", ["one"]), ("x", 3), ("log", ["two"])]))
        graph.add_edge(lib.START, "a")
        return graph.compile()

    chunks, _ = assert_same(build, {"x": 1}, stream_mode=[*MODES, "debug"])
    assert ("updates", {"a": [{"log": ["one"]}, {"x": 3}, {"log": ["two"]}]}) in chunks

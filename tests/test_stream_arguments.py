"""Invalid stream() arguments fail at the call, before the run starts, naming the problem."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

import otelstream
from otelstream import START, InvalidStreamArgumentError, StateGraph
from tests.conftest import Telemetry


class State(TypedDict):
    x: int


def _graph() -> otelstream.CompiledStateGraph:
    g = StateGraph(State)
    g.add_node("a", lambda s: {"x": s["x"] + 1})
    g.add_edge(START, "a")
    return g.compile()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stream_mode": "token"}, r"Unknown stream_mode 'token'; expected one of \['checkpoints', 'custom'"),
        ({"stream_mode": ["values", "nope"]}, "Unknown stream_mode 'nope'"),
        ({"stream_mode": []}, "stream_mode is an empty list"),
        ({"stream_mode": 3}, "stream_mode must be a mode name or a list of them, got int"),
        ({"version": "v3"}, "Unknown version 'v3'"),
        ({"config": {"recursion_limit": 0}}, "recursion_limit must be a positive int, got 0"),
        ({"config": {"recursion_limit": "5"}}, "recursion_limit must be a positive int, got '5'"),
        ({"config": ["not", "a", "dict"]}, "config must be a dict, got list"),
    ],
)
def test_invalid_arguments_raise_before_anything_runs(
    telemetry: Telemetry, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidStreamArgumentError, match=message):
        _graph().stream({"x": 1}, **kwargs)
    with pytest.raises(InvalidStreamArgumentError, match=message):
        _graph().astream({"x": 1}, **kwargs)
    assert telemetry.spans.get_finished_spans() == ()
    assert telemetry.logs.get_finished_logs() == ()


def test_the_error_is_a_value_error_with_a_code() -> None:
    with pytest.raises(ValueError) as info:
        _graph().stream({"x": 1}, stream_mode="token")  # type: ignore[arg-type]  # an unknown mode, on purpose
    assert isinstance(info.value, otelstream.OtelstreamError)
    assert info.value.code is otelstream.ErrorCode.INVALID_STREAM_ARGUMENT

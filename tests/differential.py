"""Differential harness: run one graph definition on otelstream and on LangGraph, compare.

A graph definition is a function ``build(lib) -> compiled graph`` written once against a
:class:`Lib` namespace; :data:`OTEL` and :data:`LANGGRAPH` provide the two engines. The
helpers run the graph on both, normalise what came out (task ids, debug timestamps,
exception objects) and assert both runs produced the same chunks, in the same order, and
ended the same way.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

import langgraph.checkpoint.memory
import langgraph.config
import langgraph.graph
import langgraph.graph.message
import langgraph.prebuilt
import langgraph.types

import otelstream

__all__ = [
    "LANGGRAPH",
    "LIBS",
    "OTEL",
    "STAGGER",
    "Build",
    "Lib",
    "Result",
    "arun",
    "assert_same",
    "assert_same_async",
    "assert_same_invoke",
    "build_error_at",
    "compare",
    "invoke",
    "normalize",
    "run",
    "unordered",
]


@dataclasses.dataclass(frozen=True)
class Lib:
    """What a graph definition may use from the engine under test."""

    name: str
    StateGraph: Any
    START: str
    END: str
    Send: Any
    Command: Any
    RetryPolicy: Any
    get_stream_writer: Callable[[], Callable[[Any], None]]
    StreamWriter: Any
    interrupt: Callable[[Any], Any]
    InMemorySaver: Any
    # the prebuilt agent pieces (LangChain messages and tools)
    MessagesState: Any = None
    add_messages: Any = None
    ToolNode: Any = None
    tools_condition: Any = None

    def __repr__(self) -> str:
        return self.name


OTEL = Lib(
    name="otelstream",
    StateGraph=otelstream.StateGraph,
    START=otelstream.START,
    END=otelstream.END,
    Send=otelstream.Send,
    Command=otelstream.Command,
    RetryPolicy=otelstream.RetryPolicy,
    get_stream_writer=otelstream.get_stream_writer,
    StreamWriter=otelstream.StreamWriter,
    interrupt=otelstream.interrupt,
    InMemorySaver=otelstream.InMemorySaver,
    MessagesState=otelstream.MessagesState,
    add_messages=otelstream.add_messages,
    ToolNode=otelstream.ToolNode,
    tools_condition=otelstream.tools_condition,
)
LANGGRAPH = Lib(
    name="langgraph",
    StateGraph=langgraph.graph.StateGraph,
    START=langgraph.graph.START,
    END=langgraph.graph.END,
    Send=langgraph.types.Send,
    Command=langgraph.types.Command,
    RetryPolicy=langgraph.types.RetryPolicy,
    get_stream_writer=langgraph.config.get_stream_writer,
    StreamWriter=langgraph.types.StreamWriter,
    interrupt=langgraph.types.interrupt,
    InMemorySaver=langgraph.checkpoint.memory.InMemorySaver,
    MessagesState=langgraph.graph.message.MessagesState,
    add_messages=langgraph.graph.message.add_messages,
    ToolNode=langgraph.prebuilt.ToolNode,
    tools_condition=langgraph.prebuilt.tools_condition,
)
LIBS = (OTEL, LANGGRAPH)

Build = Callable[[Lib], Any]

STAGGER = 0.05
"""Seconds between the completions of parallel test nodes that must finish in a known order.

Wide enough for a loaded machine; nodes sleep ``k * STAGGER`` to finish k-th.
"""


@dataclasses.dataclass
class Result:
    """What one run produced: the chunks yielded, then the exception raised, if any."""

    chunks: list[Any]
    error: BaseException | None = None


def run(lib: Lib, build: Build, input: Any, **kwargs: Any) -> Result:
    """Build the graph with ``lib`` and collect ``stream(input, **kwargs)``."""
    graph = build(lib)
    chunks: list[Any] = []
    try:
        for chunk in graph.stream(input, **kwargs):
            chunks.append(chunk)
    except Exception as exc:
        return Result(chunks, exc)
    return Result(chunks)


async def arun(lib: Lib, build: Build, input: Any, **kwargs: Any) -> Result:
    """Build the graph with ``lib`` and collect ``astream(input, **kwargs)``."""
    graph = build(lib)
    chunks: list[Any] = []
    try:
        async for chunk in graph.astream(input, **kwargs):
            chunks.append(chunk)
    except Exception as exc:
        return Result(chunks, exc)
    return Result(chunks)


def invoke(lib: Lib, build: Build, input: Any, **kwargs: Any) -> Result:
    """Build the graph with ``lib`` and ``invoke`` it; the return value is the only chunk."""
    graph = build(lib)
    try:
        return Result([graph.invoke(input, **kwargs)])
    except Exception as exc:
        return Result([], exc)


# --- normalisation ----------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{32}\b")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00$")
_DEBUG_KEYS = {"step", "timestamp", "type", "payload"}


class _Normalizer:
    """Replaces uuid-shaped strings by ``<id1>``, ``<id2>``... in order of first appearance.

    Numbering (rather than one placeholder for all) keeps identity checked: a task's start
    and result events must carry the same id, and a child namespace must name its task.
    """

    def __init__(self, numbered: bool = True) -> None:
        self.ids: dict[str, str] = {}
        self.numbered = numbered

    def _id(self, match: re.Match[str]) -> str:
        if not self.numbered:
            return "<id>"
        return self.ids.setdefault(match.group(0), f"<id{len(self.ids) + 1}>")

    def __call__(self, obj: Any) -> Any:
        if isinstance(obj, str):
            if _TIMESTAMP.match(obj):
                return "<timestamp>"
            return _UUID.sub(self._id, obj)
        if isinstance(obj, BaseException):
            notes = getattr(obj, "__notes__", [])
            return ("<exception>", type(obj).__name__, self(obj.args), self(list(notes)))
        if type(obj).__module__.startswith("langchain_core.messages") and hasattr(obj, "model_dump"):
            # a LangChain message: its fields, so the uuid in its id is numbered like the rest
            return (f"<{type(obj).__name__}>", self(obj.model_dump()))
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            # e.g. GraphOutput: each engine has its own class of that name
            fields = {f.name: self(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
            return (f"<{type(obj).__name__}>", fields)
        if isinstance(obj, dict):
            if set(obj) == _DEBUG_KEYS:
                obj = {**obj, "timestamp": "<timestamp>"}
            return {self(k): self(v) for k, v in obj.items()}
        if isinstance(obj, tuple):
            return tuple(self(v) for v in obj)
        if isinstance(obj, list):
            return [self(v) for v in obj]
        return obj


def normalize(result: Result, *, numbered: bool = True) -> tuple[list[Any], Any]:
    """Return ``(chunks, error)`` with ids, timestamps and exceptions made comparable.

    Args:
        result: What a run produced.
        numbered: Number ids in order of first appearance (``<id1>``...), which checks
            identities; False makes every id ``<id>``, for runs whose order of first
            appearance is not deterministic.
    """
    norm = _Normalizer(numbered)
    return norm(result.chunks), norm(result.error) if result.error is not None else None


def compare(results: dict[str, Result]) -> tuple[list[Any], Any]:
    """Assert both engines' results are the same once normalised; return ours, normalised."""
    return _compare(results)


def _compare(results: dict[str, Result]) -> tuple[list[Any], Any]:
    ours = normalize(results[OTEL.name])
    theirs = normalize(results[LANGGRAPH.name])
    assert ours[1] == theirs[1], f"errors differ:\n otelstream: {ours[1]!r}\n langgraph:  {theirs[1]!r}"
    assert ours[0] == theirs[0], _diff(ours[0], theirs[0])
    return ours


def _diff(ours: list[Any], theirs: list[Any]) -> str:
    lines = ["chunks differ (otelstream | langgraph):"]
    for i in range(max(len(ours), len(theirs))):
        a = ours[i] if i < len(ours) else "<missing>"
        b = theirs[i] if i < len(theirs) else "<missing>"
        mark = "  " if a == b else "!!"
        lines.append(f"{mark} {i}: {a!r}")
        if a != b:
            lines.append(f"   {' ' * len(str(i))}  {b!r}")
    return "\n".join(lines)


ATTEMPTS = 2
"""Runs of both engines before a difference fails a test.

Parallel test nodes finish in a known order only because they sleep ``STAGGER`` apart; a
loaded machine can still flip two of them once in a while, in either engine. A real
difference shows on every run; a scheduling accident does not show twice in a row.
"""


def _compare_runs(collect: Callable[[], dict[str, Result]]) -> tuple[list[Any], Any]:
    for attempt in range(ATTEMPTS):
        try:
            return _compare(collect())
        except AssertionError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def assert_same(build: Build, input: Any, **kwargs: Any) -> tuple[list[Any], Any]:
    """Stream ``build``'s graph on both engines; assert identical chunks and error.

    Returns:
        The normalised ``(chunks, error)``, for assertions on the behaviour itself.
    """
    return _compare_runs(lambda: {lib.name: run(lib, build, input, **kwargs) for lib in LIBS})


async def assert_same_async(build: Build, input: Any, **kwargs: Any) -> tuple[list[Any], Any]:
    """Like :func:`assert_same` with ``astream``."""
    for attempt in range(ATTEMPTS):
        results = {lib.name: await arun(lib, build, input, **kwargs) for lib in LIBS}
        try:
            return _compare(results)
        except AssertionError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def assert_same_invoke(build: Build, input: Any, **kwargs: Any) -> tuple[list[Any], Any]:
    """Like :func:`assert_same` with ``invoke``; the chunk list holds the return value."""
    return _compare_runs(lambda: {lib.name: invoke(lib, build, input, **kwargs) for lib in LIBS})


def unordered(chunks: Sequence[Any]) -> list[str]:
    """Return ``chunks`` as a sorted list of reprs, to compare steps as multisets."""
    return sorted(map(repr, chunks))


# --- build-time errors ------------------------------------------------------------------

Op = tuple[str, tuple[Any, ...]]


def build_error_at(lib: Lib, schema: Any, ops: Sequence[Op]) -> tuple[int, BaseException | None]:
    """Apply builder calls ``ops`` (method name, args) to ``StateGraph(schema)``, then compile.

    Returns:
        ``(index, error)``: the index of the call that raised (``-1`` for the constructor,
        ``len(ops)`` for ``compile()``), or ``(len(ops) + 1, None)`` when nothing raised.
    """
    try:
        graph = lib.StateGraph(schema)
    except Exception as exc:
        return -1, exc
    for index, (method, args) in enumerate(ops):
        try:
            getattr(graph, method)(*args)
        except Exception as exc:
            return index, exc
    try:
        graph.compile()
    except Exception as exc:
        return len(ops), exc
    return len(ops) + 1, None

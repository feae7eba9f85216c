"""Differential harness: run one graph definition on otelstream and on LangGraph, compare.

A graph definition is a function ``build(lib) -> compiled graph`` written once against a
:class:`Lib` namespace; :data:`OTEL` and :data:`LANGGRAPH` provide the two engines. The
helpers run the graph on both, normalise what came out (task ids, debug timestamps,
exception objects) and assert both runs produced the same chunks, in the same order, and
ended the same way — once: a difference is a difference, never retried.

That needs every run to be deterministic. Within a superstep, parallel tasks finish in
an order the thread pool or the event loop picks, and "updates"/"tasks"/"debug" chunks
follow it; a graph whose parallel tasks' order shows in the stream fixes it with a
:class:`FinishOrder` (each task waits for the commit of the tasks before it), never
with sleeps. Where LangGraph itself gives no order, a test compares a documented
multiset instead (``unordered``, the random graphs' supersteps).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import re
import threading
import weakref
from collections.abc import Callable, Hashable, Sequence
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
    "WAIT_S",
    "Build",
    "FinishOrder",
    "Lib",
    "Result",
    "arun",
    "assert_same",
    "assert_same_async",
    "assert_same_invoke",
    "build_error_at",
    "by_name",
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


# --- the finish order of parallel tasks ---------------------------------------------------

WAIT_S = 30.0
"""Bound of every wait in :class:`FinishOrder`; reaching it means a bug, not a slow machine."""

Key = Callable[[str, Any], Hashable]
"""Maps a task's ``(node name, input)`` to its key in a :class:`FinishOrder` (None: not in it)."""


def by_name(name: str, input: Any) -> Hashable:
    """The default :data:`Key`: a task is known by its node's name."""
    return name


class _Committed:
    """Set once a task was committed; waited for from node threads and from event loops."""

    __slots__ = ("_lock", "_waiters", "event")

    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def set(self) -> None:
        with self._lock:
            self.event.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self.event.is_set():
                return
            self._waiters.append((loop, future))
        await future


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class FinishOrder:
    """Makes the parallel tasks of a superstep finish in a given order, on both engines.

    Parallel nodes finish in an order set by the thread pool (or the event loop), and
    "updates", "tasks" and "debug" chunks follow it. A node that sets an event just before
    it returns does not fix that order: the engine emits a task's chunks only after its
    node returned (LangGraph in the future's done callback, on the worker thread, on the
    submitting thread when the future was done before the callback was registered, or on
    the event loop under ``astream``), so a released sibling can still be emitted first.
    A node calling :meth:`finish` therefore waits for the *commit* of the tasks before it:
    both engines' "step planned" and "task committed" methods are wrapped (see
    :func:`_install_hooks`) to tell every live ``FinishOrder``.

    Each planned step that runs tasks with keys of this order starts a round of those
    keys, in the order given here; a node may run in several steps (and again on a
    resume) and waits only for the keys of its own step. Steps with none of the keys (a
    subgraph's, for instance) leave the round alone. A step must not run more ordered
    tasks than a thread pool has threads (``min(32, os.cpu_count() + 4)`` by default),
    or an early key could wait for a thread that its successors hold.

    Args:
        lib: The engine whose tasks are ordered.
        *keys: Task keys, in the order the tasks must be committed.
        key: How a task's ``(node name, input)`` maps to its key; ``None`` (or raising,
            or an unhashable key) for tasks outside the order. Defaults to the node's name.
    """

    def __init__(self, lib: Lib, *keys: Hashable, key: Key = by_name) -> None:
        self.lib = lib
        self.keys = keys
        self.key = key
        self._lock = threading.Lock()
        self._round: tuple[Hashable, ...] = ()
        self._committed: dict[Hashable, _Committed] = {}
        with _ORDERS_LOCK:
            _ORDERS.add(self)

    def finish(self, key: Hashable) -> None:
        """Block (a sync node) until the tasks before ``key`` in this step were committed.

        Raises:
            AssertionError: ``key`` does not run in this step, or a wait reached :data:`WAIT_S`.
        """
        for before, committed in self._before(key):
            if not committed.event.wait(WAIT_S):
                raise AssertionError(f"{key!r} waited {WAIT_S} s for {before!r} to be committed")

    async def afinish(self, key: Hashable) -> None:
        """Wait (an async node) until the tasks before ``key`` in this step were committed.

        Raises:
            AssertionError: ``key`` does not run in this step, or a wait reached :data:`WAIT_S`.
        """
        for before, committed in self._before(key):
            try:
                await asyncio.wait_for(committed.wait(), WAIT_S)
            except TimeoutError:
                raise AssertionError(f"{key!r} waited {WAIT_S} s for {before!r} to be committed") from None

    def node(self, key: Hashable, action: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Wrap a one-argument sync node so it calls :meth:`finish` before ``action``."""

        def ordered(state: Any) -> Any:
            self.finish(key)
            return action(state)

        return ordered

    def _before(self, key: Hashable) -> list[tuple[Hashable, _Committed]]:
        with self._lock:
            if key not in self._round:
                raise AssertionError(f"{key!r} is not one of this step's ordered tasks {self._round!r}")
            earlier = self._round[: self._round.index(key)]
            return [(k, self._committed[k]) for k in earlier]

    def _key(self, name: str, input: Any) -> Hashable:
        # Every task of the engine reaches every live order, also orders of graphs a test
        # no longer runs (until they are collected): a key that does not apply is not one.
        try:
            key = self.key(name, input)
            hash(key)
        except Exception:
            return None
        return key

    def _planned(self, tasks: Sequence[tuple[str, Any]]) -> None:
        present = {self._key(name, input) for name, input in tasks}
        keys = tuple(k for k in self.keys if k in present)
        if keys:
            with self._lock:
                self._round = keys
                self._committed = {k: _Committed() for k in keys}

    def _task_committed(self, name: str, input: Any) -> None:
        key = self._key(name, input)
        with self._lock:
            committed = self._committed.get(key) if key is not None else None
        if committed is not None:
            committed.set()


_ORDERS: weakref.WeakSet[FinishOrder] = weakref.WeakSet()
_ORDERS_LOCK = threading.Lock()


def _orders(lib: Lib) -> list[FinishOrder]:
    with _ORDERS_LOCK:
        return [order for order in _ORDERS if order.lib is lib]


def _wrap_plan(owner: type, name: str, lib: Lib, runnable: Callable[[Any], Sequence[tuple[str, Any]]]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def tick(self: Any) -> bool:
        more: bool = original(self)
        if more:
            orders = _orders(lib)
            if orders:
                tasks = runnable(self)
                for order in orders:
                    order._planned(tasks)
        return more

    setattr(owner, name, tick)


def _wrap_commit(owner: type, name: str, lib: Lib) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def commit(self: Any, task: Any, *args: Any) -> Any:
        try:
            return original(self, task, *args)
        finally:  # its chunks are out (or the commit failed): release whoever waits for it
            for order in _orders(lib):
                order._task_committed(task.name, task.input)

    setattr(owner, name, commit)


def _install_hooks() -> None:
    """Tell the live :class:`FinishOrder` objects when either engine plans a step or commits a task.

    Test-only wrappers of private methods, installed once when this module is imported;
    with no ``FinishOrder`` alive they only look at an empty set. LangGraph plans in
    ``PregelLoop.tick`` (the step runs the tasks without writes yet) and commits in
    ``PregelRunner.commit`` (which puts the task's chunks on the stream); otelstream plans
    in ``RunLoop.tick`` and emits a task's chunks in ``RunLoop.commit_task``/``fail_task``.
    """
    from langgraph.pregel._loop import PregelLoop
    from langgraph.pregel._runner import PregelRunner

    from otelstream.engine.loop import RunLoop

    _wrap_plan(
        PregelLoop, "tick", LANGGRAPH, lambda loop: [(t.name, t.input) for t in loop.tasks.values() if not t.writes]
    )
    _wrap_commit(PregelRunner, "commit", LANGGRAPH)
    _wrap_plan(RunLoop, "tick", OTEL, lambda loop: [(t.name, t.input) for t in loop.runnable])
    _wrap_commit(RunLoop, "commit_task", OTEL)
    _wrap_commit(RunLoop, "fail_task", OTEL)


_install_hooks()


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


def assert_same(build: Build, input: Any, **kwargs: Any) -> tuple[list[Any], Any]:
    """Stream ``build``'s graph on both engines; assert identical chunks and error.

    Returns:
        The normalised ``(chunks, error)``, for assertions on the behaviour itself.
    """
    return compare({lib.name: run(lib, build, input, **kwargs) for lib in LIBS})


async def assert_same_async(build: Build, input: Any, **kwargs: Any) -> tuple[list[Any], Any]:
    """Like :func:`assert_same` with ``astream``."""
    return compare({lib.name: await arun(lib, build, input, **kwargs) for lib in LIBS})


def assert_same_invoke(build: Build, input: Any, **kwargs: Any) -> tuple[list[Any], Any]:
    """Like :func:`assert_same` with ``invoke``; the chunk list holds the return value."""
    return compare({lib.name: invoke(lib, build, input, **kwargs) for lib in LIBS})


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

"""A user's worst day: hostile state, fuzzed telemetry, interrupts, and 1,000 concurrent runs."""

from __future__ import annotations

import asyncio
import json
import operator
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otelstream
from otelstream import START, Send, StateGraph, get_stream_writer
from otelstream.telemetry import semconv
from otelstream.telemetry.codec import DecodeError, Unencodable, decode
from tests.conftest import Telemetry
from tests.helpers import rebuild


def _keep(a: Any, b: Any) -> Any:
    return b


class Blob(TypedDict):
    value: Annotated[Any, _keep]


class Opaque:
    """Not JSON-serialisable, compares by identity."""


def _hostile_values() -> dict[str, Any]:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    deep: Any = "bottom"
    for _ in range(500):
        deep = [deep]
    return {
        "opaque": Opaque(),
        "cyclic": cyclic,
        "deep": deep,
        "huge": "x" * 2_000_000,
        "control": "a\x00b\x1b[31mred\x7f\u2028",
        "surrogate": "bad \ud800 half",
    }


@pytest.mark.parametrize("name", list(_hostile_values()))
def test_hostile_state_reaches_the_stream_untouched_and_telemetry_stays_safe(telemetry: Telemetry, name: str) -> None:
    value = _hostile_values()[name]

    def node(state: Blob) -> dict[str, Any]:
        get_stream_writer()(value)
        return {"value": value}

    g = StateGraph(Blob)
    g.add_node("node", node)
    g.add_edge(START, "node")
    streamed = list(g.compile().stream({"value": None}, stream_mode=["custom", "updates"]))
    # the application gets its own objects back, identical
    assert streamed[0][1] is value
    assert streamed[1][1]["node"]["value"] is value

    records = [r for r in telemetry.logs.get_finished_logs() if r.log_record.event_name == "otelstream.custom"]
    payload = str((records[0].log_record.attributes or {})[semconv.PAYLOAD])
    assert payload.isascii()
    if name == "huge":
        assert (records[0].log_record.attributes or {})[semconv.PAYLOAD_TRUNCATED] is True
        return
    exported = decode(payload)
    if name in ("control", "surrogate"):
        assert exported == value
    elif name == "opaque":
        assert isinstance(exported, Unencodable)
    else:
        assert "Unencodable" in repr(exported)


def test_keyboard_interrupt_in_a_node_ends_the_run_as_cancelled(telemetry: Telemetry) -> None:
    def interrupted(state: Blob) -> dict[str, Any]:
        raise KeyboardInterrupt

    g = StateGraph(Blob)
    g.add_node("interrupted", interrupted)
    g.add_edge(START, "interrupted")
    with pytest.raises(KeyboardInterrupt):
        list(g.compile(name="ctrl_c").stream({"value": 1}))
    [run] = [s for s in telemetry.spans.get_finished_spans() if s.name == "invoke_workflow ctrl_c"]
    assert (run.attributes or {})[semconv.OUTCOME] == "cancelled"
    assert run.status.status_code.name == "UNSET"
    assert len(otelstream._config.router()) == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)
tags = st.sampled_from(["tuple", "set", "dict", "bytes", "float", "datetime", "exc", "model", "send", "repr", "x"])


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
        json_values.map(json.dumps),
        st.builds(lambda t, v: json.dumps({"$t": t, "v": v, "type": v, "args": v}), tags, json_values),
    )
)
def test_fuzzed_payloads_decode_or_raise_decode_error(text: str) -> None:
    try:
        decode(text)
    except DecodeError:
        pass


otlp_documents = st.fixed_dictionaries(
    {
        "resourceLogs": st.lists(
            st.fixed_dictionaries(
                {
                    "scopeLogs": st.lists(
                        st.fixed_dictionaries(
                            {
                                "logRecords": st.lists(
                                    st.fixed_dictionaries(
                                        {
                                            "eventName": st.sampled_from(
                                                ["otelstream.custom", "otelstream.run.end", "other", ""]
                                            ),
                                            "attributes": st.lists(
                                                st.fixed_dictionaries(
                                                    {
                                                        "key": st.sampled_from(
                                                            [
                                                                semconv.RUN_ID,
                                                                semconv.SEQ,
                                                                semconv.PAYLOAD,
                                                                semconv.EVENT_COUNT,
                                                                semconv.NAMESPACE,
                                                                semconv.STREAM_MODES,
                                                            ]
                                                        ),
                                                        "value": st.one_of(
                                                            st.builds(
                                                                lambda v: {"stringValue": v}, st.text(max_size=8)
                                                            ),
                                                            st.builds(
                                                                lambda v: {"intValue": v}, st.integers(-3, 5).map(str)
                                                            ),
                                                            st.builds(lambda v: {"boolValue": v}, st.booleans()),
                                                            json_values,
                                                        ),
                                                    }
                                                ),
                                                max_size=6,
                                            ),
                                        }
                                    ),
                                    max_size=5,
                                )
                            }
                        ),
                        max_size=2,
                    )
                }
            ),
            max_size=2,
        )
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(otlp_documents)
def test_fuzzed_otlp_json_never_crashes_replay(document: dict[str, Any]) -> None:
    try:
        summaries = otelstream.runs(document)
        for summary in summaries:
            list(otelstream.replay(document, run_id=summary.run_id))
    except (otelstream.ReplayError, otelstream.ReplaySourceError):
        pass


class Load(TypedDict):
    run: int
    log: Annotated[list[str], operator.add]


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, tuple[int, ...], tuple[tuple[int, int], ...], int]:
    n = draw(st.integers(1, 5))
    entry = tuple(sorted(set(draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=2)))))
    edges = tuple(
        sorted(
            {
                (a, b)
                for a, b in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=5))
                if a < b
            }
        )
    )
    return n, entry, edges, draw(st.integers(0, 3))


def _dag_graph(n: int, entry: tuple[int, ...], edges: tuple[tuple[int, int], ...], fan: int = 0) -> Any:
    def make(i: int) -> Any:
        def node(state: Load) -> dict[str, Any]:
            get_stream_writer()((state["run"], f"n{i}"))
            return {"log": [f"n{i}"]}

        return node

    def worker(packet: dict[str, Any]) -> dict[str, Any]:
        get_stream_writer()((packet["run"], f"w{packet['k']}"))
        return {"log": [f"w{packet['k']}"]}

    g = StateGraph(Load)
    for i in range(n):
        g.add_node(f"n{i}", make(i))
    g.add_node("w", worker)
    for i in entry:
        g.add_edge(START, f"n{i}")
    for a, b in edges:
        g.add_edge(f"n{a}", f"n{b}")
    if fan:
        # a Send fan-out after the last node: its reduced order is the Send order
        g.add_conditional_edges(
            f"n{n - 1}", lambda state: [Send("w", {"run": state["run"], "k": k}) for k in range(fan)]
        )
    return g.compile()


def _shape(chunks: list[Any]) -> tuple[list[Any], Counter[Any]]:
    # values chunks are deterministic; custom chunks of parallel nodes may come in any order
    values = [c for mode, c in chunks if mode == "values"]
    customs = Counter(c[1] for mode, c in chunks if mode == "custom")
    return values, customs


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(dags(), min_size=3, max_size=3))
def test_a_thousand_concurrent_runs_in_threads_and_asyncio_stay_isolated(specs: list[Any]) -> None:
    graphs = [_dag_graph(*spec) for spec in specs]
    expected = [_shape(list(g.stream({"run": -1, "log": []}, stream_mode=["values", "custom"]))) for g in graphs]
    modes = ["values", "custom"]
    errors: list[str] = []
    checked: list[int] = []
    lock = threading.Lock()

    def check(run: int, chunks: list[Any]) -> None:
        with lock:
            checked.append(run)
        values, customs = _shape(chunks)
        want_values, want_customs = expected[run % len(graphs)]
        foreign = [c for mode, c in chunks if mode == "custom" and c[0] != run]
        if foreign or [{**v, "run": -1} for v in values] != want_values or customs != want_customs:
            with lock:
                errors.append(f"run {run}: foreign={foreign[:3]} values={values[:2]}")

    def threaded(run: int) -> None:
        check(run, list(graphs[run % len(graphs)].stream({"run": run, "log": []}, stream_mode=modes)))

    async def in_asyncio(run: int) -> None:
        chunks = [c async for c in graphs[run % len(graphs)].astream({"run": run, "log": []}, stream_mode=modes)]
        check(run, chunks)

    async def asyncio_half() -> None:
        await asyncio.gather(*(in_asyncio(run) for run in range(500, 1000)))

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(threaded, run) for run in range(500)]
        asyncio.run(asyncio_half())
        for future in futures:
            future.result(timeout=120)
    assert errors == []
    assert sorted(checked) == list(range(1000))
    assert len(otelstream._config.router()) == 0


def test_the_rebuilt_stream_of_hostile_strings_equals_the_stream(telemetry: Telemetry) -> None:
    strings = ["\x00", "\ud83d", "é\u0301", "\u202e rtl", "\\u0000", '{"$t": "tuple"}', "</script>"]

    def node(state: Blob) -> dict[str, Any]:
        for s in strings:
            get_stream_writer()({"s": s, "$t": s})
        return {}

    g = StateGraph(Blob)
    g.add_node("node", node)
    g.add_edge(START, "node")
    streamed = list(g.compile().stream({"value": 0}, stream_mode="custom"))
    assert [chunk for _, _, chunk in rebuild(telemetry.logs.get_finished_logs())] == streamed


class Marker:
    """A chunk object whose lifetime the test watches."""


@pytest.mark.parametrize("consume", ["all", "break"])
def test_nothing_keeps_a_chunk_alive_after_the_stream_is_done(telemetry: Telemetry, consume: str) -> None:
    import gc
    import weakref

    refs: list[weakref.ref[Marker]] = []

    def node(state: Blob) -> dict[str, Any]:
        for _ in range(3):
            marker = Marker()
            refs.append(weakref.ref(marker))
            get_stream_writer()(marker)
        return {"value": 1}

    g = StateGraph(Blob)
    g.add_node("node", node)
    g.add_edge(START, "node")
    stream = g.compile().stream({"value": 0}, stream_mode="custom")
    if consume == "all":
        received = list(stream)
        assert len(received) == 3
        del received
    else:
        next(stream)
        stream.close()
    del stream
    gc.collect()
    # no channel, record, router or exporter queue holds on to the objects the node wrote
    assert [r() for r in refs] == [None, None, None]
    assert len(otelstream._config.router()) == 0


def test_a_slow_consumer_of_a_million_chunks_keeps_memory_bounded_and_loses_nothing(tmp_path: Any) -> None:
    import subprocess
    import sys

    script = tmp_path / "million.py"
    script.write_text(
        """
import json, resource, time
from typing import TypedDict
from otelstream import START, StateGraph, get_stream_writer

class S(TypedDict):
    n: int

def burst(state):
    write = get_stream_writer()
    for i in range(state["n"]):
        write(i)
    return {"n": 0}

g = StateGraph(S)
g.add_node("burst", burst)
g.add_edge(START, "burst")
graph = g.compile()

def consume(n):
    count = expected = 0
    for chunk in graph.stream({"n": n}, stream_mode="custom"):
        if chunk != expected:
            raise SystemExit(f"chunk {chunk} out of order, expected {expected}")
        expected += 1
        count += 1
        if count % 2000 == 0:
            time.sleep(0.002)  # kept: a consumer slower than the producer is the point; nothing is ordered by it
    return count

consume(20_000)  # warm-up: imports, threads, first buffers
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
count = consume(1_000_000)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"count": count, "growth_mb": (after - before) / 1024}))
"""
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["count"] == 1_000_000
    # unbounded buffering of 1M chunks would cost well over 100 MB; the channel holds 4,096
    assert result["growth_mb"] < 32, result

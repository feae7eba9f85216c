"""The gateway in real processes on 127.0.0.1: a graph process exports to it, consumer processes read from it.

Each consumer — ``remote_stream``, ``aremote_stream``, a raw SSE client, ``langgraph_sdk``'s
``runs.join_stream`` — must receive exactly what the graph's in-process ``stream()`` yielded.
Every process is stopped by its PID in teardown.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import langchain_core.messages.ai  # noqa: F401 - so decode() rebuilds message objects here too
import pytest

from otelstream.serve._frames import plain
from otelstream.telemetry.codec import decode, encode

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
WAIT_S = 60.0
ALL_MODES = ["values", "updates", "custom", "tasks", "debug", "messages", "checkpoints"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELSTREAM_")) and "proxy" not in k.lower()
    }
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env["NO_PROXY"] = LOOPBACK
    env.update(extra)
    return env


def _wait(probe: Any, what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.1)
    raise TimeoutError(f"gave up waiting for {what}")


class Gateway:
    def __init__(self, tmp: Path) -> None:
        self.port, self.grpc_port = _free_port(), _free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log = tmp / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "otelstream._cli", "serve", "--port", str(self.port)]
        argv += ["--grpc-port", str(self.grpc_port), "--reorder-window", "1", "--log-level", "warning"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        _wait(self._ok, f"the gateway at {self.url}")

    def _ok(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"gateway exited: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/ok", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def runs(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/runs", timeout=5) as response:
            return list(json.load(response)["runs"])

    def run(self, run_id: str) -> dict[str, Any] | None:
        return next((r for r in self.runs() if r["run_id"] == run_id), None)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    started = Gateway(tmp_path)
    try:
        started.start()
        yield started
    finally:
        started.stop()


class Processes:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", *argv], env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO
        )
        self.started.append(process)
        return process


@pytest.fixture
def processes() -> Iterator[Processes]:
    running = Processes()
    try:
        yield running
    finally:
        for process in running.started:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=10)  # reaps it and closes its pipe


def _worker(
    processes: Processes,
    gateway: Gateway,
    scenario: str,
    out: Path,
    modes: Any,
    subgraphs: bool,
    version: str = "v1",
    gate: Path | None = None,
    protocol: str = "http/protobuf",
    endpoint: str | None = None,
) -> tuple[str, subprocess.Popen[bytes]]:
    run_id = str(uuid.uuid4())
    argv = ["tests.serve_worker", scenario, run_id, str(out), json.dumps(modes), str(subgraphs).lower(), version]
    if gate is not None:
        argv.append(str(gate))
    if endpoint is None:
        endpoint = gateway.url if protocol != "grpc" else f"http://{LOOPBACK}:{gateway.grpc_port}"
    process = processes.start(
        argv,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_BLRP_SCHEDULE_DELAY="100",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRICS_EXPORTER="none",
    )
    return run_id, process


def _consumer(
    processes: Processes,
    kind: str,
    gateway: Gateway,
    run_id: str,
    out: Path,
    modes: Any,
    subgraphs: bool,
    version: str = "v1",
    last_event_id: int | None = None,
    reconnects: int = 3,
) -> subprocess.Popen[bytes]:
    argv = ["tests.serve_consumer", kind, gateway.url, run_id, str(out), json.dumps(modes), str(subgraphs).lower()]
    argv.append(version)
    if last_event_id is not None:
        argv.append(str(last_event_id))
    return processes.start(argv, SERVE_CONSUMER_RECONNECTS=str(reconnects))


def _finish(process: subprocess.Popen[bytes], what: str) -> None:
    try:
        output, _ = process.communicate(timeout=WAIT_S * 2)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"{what} did not finish: {output.decode(errors='replace')[-3000:]}") from None
    assert process.returncode == 0, f"{what} failed: {output.decode(errors='replace')[-3000:]}"


def _expected(out: Path) -> list[str]:
    lines = out.read_text().splitlines()
    assert lines[-1] == "END"
    return [line for line in lines[:-1] if not line.startswith("RESUMED ")]


def _received(out: Path) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    lines = out.read_text().splitlines()
    assert lines and lines[-1].startswith("END\t"), lines[-3:]
    chunks = [(int(seq), data) for seq, data in (line.split("\t", 1) for line in lines[:-1])]
    return chunks, json.loads(lines[-1].split("\t", 1)[1])


def _sdk_view(encoded: str) -> list[Any]:
    # LangGraph Server's view of an in-process (ns, mode, chunk): event `mode|ns`, plain JSON data
    namespace, mode, chunk = decode(encoded)
    return ["|".join((mode, *namespace)), json.loads(plain(encode(chunk)))]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_every_consumer_receives_exactly_what_stream_yielded(
    gateway: Gateway, processes: Processes, tmp_path: Path, protocol: str
) -> None:
    expected_path = tmp_path / "expected.txt"
    run_id, worker = _worker(processes, gateway, "research", expected_path, ALL_MODES, True, protocol=protocol)
    # every consumer starts before the first record arrives: the gateway holds the request
    consumers = {kind: tmp_path / f"{kind}.txt" for kind in ("remote", "aremote", "sse", "sdk")}
    started = [
        (kind, _consumer(processes, kind, gateway, run_id, path, ALL_MODES, True)) for kind, path in consumers.items()
    ]
    _finish(worker, "the graph process")
    for kind, process in started:
        _finish(process, f"the {kind} consumer")
    expected = _expected(expected_path)
    assert len(expected) > 40
    for kind in ("remote", "aremote", "sse"):
        chunks, end = _received(consumers[kind])
        assert [data for _, data in chunks] == expected, kind
        assert [seq for seq, _ in chunks] == sorted({seq for seq, _ in chunks}), kind  # no duplicates
        assert end.get("outcome") == "completed", kind
    messages = [decode(line) for line in expected if decode(line)[1] == "messages"]
    assert type(messages[0][2][0]).__name__ == "AIMessageChunk"  # message objects again
    sdk_chunks, sdk_end = _received(consumers["sdk"])
    assert [json.loads(data) for _, data in sdk_chunks] == [_sdk_view(line) for line in expected]
    assert sdk_end["status"] == "success"
    run = gateway.run(run_id)
    assert run is not None and run["gaps"] == [] and run["chunks"] == run["event_count"] == len(expected)


@pytest.mark.parametrize(
    ("modes", "subgraphs", "version"), [("updates", False, "v1"), (["values", "custom"], True, "v2")]
)
def test_remote_stream_yields_the_shapes_stream_yields(
    gateway: Gateway, processes: Processes, tmp_path: Path, modes: Any, subgraphs: bool, version: str
) -> None:
    expected_path, received_path = tmp_path / "expected.txt", tmp_path / "received.txt"
    run_id, worker = _worker(processes, gateway, "research", expected_path, modes, subgraphs, version)
    consumer = _consumer(processes, "remote", gateway, run_id, received_path, modes, subgraphs, version)
    _finish(worker, "the graph process")
    _finish(consumer, "the consumer")
    chunks, end = _received(received_path)
    assert [data for _, data in chunks] == _expected(expected_path)
    assert end["complete"] is True


def test_a_consumer_joining_mid_run_gets_the_whole_stream_and_a_restarted_one_resumes(
    gateway: Gateway, processes: Processes, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    expected_path = tmp_path / "expected.txt"
    run_id, worker = _worker(processes, gateway, "research", expected_path, ALL_MODES, True, gate=gate)
    # the run is live and half-way (waiting at the gate) when the consumers connect
    _wait(lambda: (gateway.run(run_id) or {}).get("chunks", 0) >= 10, "the first half of the run at the gateway")
    late_path, killed_path = tmp_path / "late.txt", tmp_path / "killed.txt"
    late = _consumer(processes, "remote", gateway, run_id, late_path, ALL_MODES, True)
    killed = _consumer(processes, "remote", gateway, run_id, killed_path, ALL_MODES, True)
    _wait(lambda: killed_path.exists() and len(killed_path.read_text().splitlines()) >= 5, "the consumer's chunks")
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    # the restarted consumer resumes after the last seq it had written
    last_seq = int(killed_path.read_text().splitlines()[-1].split("\t", 1)[0])
    gate.touch()
    restarted = _consumer(processes, "remote", gateway, run_id, killed_path, ALL_MODES, True, last_event_id=last_seq)
    _finish(worker, "the graph process")
    _finish(late, "the late consumer")
    _finish(restarted, "the restarted consumer")
    expected = _expected(expected_path)
    late_chunks, end = _received(late_path)
    assert [data for _, data in late_chunks] == expected and end["complete"] is True
    resumed, _ = _received(killed_path)
    assert [data for _, data in resumed] == expected  # without loss or duplicates


def test_ten_thousand_tokens(gateway: Gateway, processes: Processes, tmp_path: Path) -> None:
    expected_path, received_path = tmp_path / "expected.txt", tmp_path / "received.txt"
    run_id, worker = _worker(processes, gateway, "tokens", expected_path, "messages", False)
    consumer = _consumer(processes, "remote", gateway, run_id, received_path, "messages", False)
    _finish(worker, "the graph process")
    _finish(consumer, "the consumer")
    expected = _expected(expected_path)
    assert len(expected) >= 10_000
    chunks, end = _received(received_path)
    assert [data for _, data in chunks] == expected and end["gaps"] == [] and end["complete"] is True


def test_an_interrupted_run_ends_interrupted_with_its_interrupt(
    gateway: Gateway, processes: Processes, tmp_path: Path
) -> None:
    expected_path, received_path = tmp_path / "expected.txt", tmp_path / "received.txt"
    run_id, worker = _worker(processes, gateway, "approval", expected_path, ["values", "updates"], False)
    consumer = _consumer(processes, "remote", gateway, run_id, received_path, ["values", "updates"], False)
    _finish(worker, "the graph process")
    _finish(consumer, "the consumer")
    expected = _expected(expected_path)
    chunks, end = _received(received_path)
    assert [data for _, data in chunks] == expected
    assert end["outcome"] == "interrupted"
    interrupts = [decode(data)[1] for _, data in chunks if "__interrupt__" in data]
    assert type(interrupts[0]["__interrupt__"][0]).__name__ == "Interrupt"


def test_a_killed_gateway_is_reported_not_waited_for_and_a_restarted_one_resumes_the_stream(
    gateway: Gateway, processes: Processes, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    expected_path = tmp_path / "expected.txt"
    run_id, worker = _worker(processes, gateway, "research", expected_path, ALL_MODES, True, gate=gate)
    _wait(lambda: (gateway.run(run_id) or {}).get("chunks", 0) >= 10, "the first half of the run at the gateway")
    resumed_path, lost_path = tmp_path / "resumed.txt", tmp_path / "lost.txt"
    resumed = _consumer(processes, "remote", gateway, run_id, resumed_path, ALL_MODES, True, reconnects=8)
    _wait(lambda: resumed_path.exists() and len(resumed_path.read_text().splitlines()) >= 5, "the consumer's chunks")
    gateway.stop(signal.SIGKILL)
    # a consumer of a gateway that does not come back gives up with the reason, never hangs
    lost = _consumer(processes, "remote", gateway, run_id, lost_path, ALL_MODES, True)
    lost.communicate(timeout=WAIT_S)
    assert lost.returncode == 1 and "ERROR\t" in lost_path.read_text()
    gateway.start()  # same port, empty: what it missed is reported as a gap, what comes next is served
    gate.touch()
    _finish(worker, "the graph process")
    _finish(resumed, "the resumed consumer")
    expected = _expected(expected_path)
    chunks, end = _received(resumed_path)
    assert [data for _, data in chunks] == expected and end["gaps"] == []
    run = gateway.run(run_id)
    assert run is not None and run["gaps"] and run["gaps"][0]["first_seq"] == 0  # the new gateway's own view

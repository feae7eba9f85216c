"""The gateway behind a real collector hop: app --OTLP/HTTP--> rotel --OTLP/HTTP--> otelstream serve.

Consumers: ``remote_stream`` in another process, and ``otelstream tail`` (the CLI).
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import LOOPBACK, Process, _listening, e2e_binary, free_port, server_env, wait_until
from tests.test_serve_live import (
    ALL_MODES,
    Gateway,
    Processes,
    _consumer,
    _env,
    _expected,
    _finish,
    _received,
    _worker,
    gateway,
    processes,
)

__all__ = ["gateway", "processes"]  # the fixtures, used by name


def test_a_run_through_rotel_streams_live_to_every_consumer(
    gateway: Gateway, processes: Processes, tmp_path: Path
) -> None:
    http_port, grpc_port = free_port(), free_port()
    argv = [str(e2e_binary("rotel-agent")), "start", "--otlp-http-endpoint", f"{LOOPBACK}:{http_port}"]
    argv += ["--otlp-grpc-endpoint", f"{LOOPBACK}:{grpc_port}", "--exporter", "otlp"]
    argv += ["--otlp-exporter-endpoint", gateway.url, "--otlp-exporter-protocol", "http"]
    argv += ["--pid-file", str(tmp_path / "rotel.pid"), "--log-file", str(tmp_path / "rotel-daemon.log")]
    rotel = Process("rotel-agent", argv, server_env(), tmp_path / "rotel.log")
    try:
        rotel.start()
        wait_until(functools.partial(_listening, http_port), timeout_s=15, what="rotel", process=rotel)
        gate = tmp_path / "gate"
        expected_path, received_path = tmp_path / "expected.txt", tmp_path / "received.txt"
        run_id, worker = _worker(
            processes,
            gateway,
            "research",
            expected_path,
            ALL_MODES,
            True,
            gate=gate,
            endpoint=f"http://{LOOPBACK}:{http_port}",
        )
        consumer = _consumer(processes, "remote", gateway, run_id, received_path, ALL_MODES, True)
        tail = subprocess.Popen(
            [sys.executable, "-m", "otelstream._cli", "tail", gateway.url, "--run-id", run_id],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        gate.touch()
        _finish(worker, "the graph process")
        _finish(consumer, "the consumer")
        output, _ = tail.communicate(timeout=120)
        expected = _expected(expected_path)
        chunks, end = _received(received_path)
        assert [data for _, data in chunks] == expected and end["complete"] is True
        printed = output.decode()
        assert tail.returncode == 0, printed
        assert "planning 5/10  [5/10 steps]" in printed and f"run {run_id} ended: completed" in printed
        assert len(
            [line for line in printed.splitlines() if line.startswith(("(root)", "review", "work", "llm"))]
        ) == len(expected)
    finally:
        rotel.stop()

"""A real OTLP/HTTP receiver for tests: a separate process that stores what it receives.

Run as ``python -m tests.otlp_receiver OUT.jsonl``. It listens on 127.0.0.1 on a free port,
prints ``port=<n>`` once ready, decodes every protobuf ``POST /v1/traces``, ``/v1/logs`` and ``/v1/metrics``
and appends it to OUT as an OTLP-JSON line (the format otelstream's file exporter and replay
use). It stops on SIGTERM.

Fault modes, for tests of a misbehaving endpoint (all off by default):

- ``--port N`` listens on port N instead of a free one (to restart an endpoint on the same port);
- ``--fail-status CODE`` answers every OTLP request with HTTP ``CODE`` (e.g. 500, 503, 429) and
  stores nothing;
- ``--retry-after SECONDS`` adds a ``Retry-After`` header to those failure answers;
- ``--max-body BYTES`` answers 413 (Request Entity Too Large) to a request whose body is larger,
  as a collector with a request size limit does, and stores nothing of it;
- ``--blackhole`` accepts connections and never answers (a collector that hangs); nothing else
  applies in this mode;
- ``--delay SECONDS`` holds every OTLP request that long before storing it and answering 200. A
  request whose client gives up (closes the connection) during the delay is not stored: a
  record is either stored and acknowledged, or neither.

``SIGUSR1`` ends the fault mode: every request arriving after it is served normally (requests
already held by ``--delay`` still wait out their delay). The receiver then prints
``recovered failed=<n> delayed=<n> abandoned=<n>`` (requests answered with the failure status,
requests held, held requests whose client left).
"""

from __future__ import annotations

import argparse
import base64
import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_MESSAGES: dict[str, tuple[Any, Any]] = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}
_IDS = frozenset(("traceId", "spanId", "parentSpanId"))


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in _IDS and isinstance(v, str) else _hex_ids(v) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


class Faults:
    """The fault mode, shared by the request threads; ``recover()`` ends it."""

    def __init__(
        self, fail_status: int | None, retry_after: float | None, delay: float, max_body: int | None = None
    ) -> None:
        self.fail_status = fail_status
        self.max_body = max_body
        self.too_large = 0
        self.retry_after = retry_after
        self.delay = delay
        self.recovered = threading.Event()
        self.lock = threading.Lock()
        self.failed = 0
        self.delayed = 0
        self.abandoned = 0

    def count(self, what: str) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)

    def summary(self) -> str:
        with self.lock:
            return f"failed={self.failed} delayed={self.delayed} abandoned={self.abandoned} too_large={self.too_large}"


def _client_left(connection: socket.socket) -> bool:
    """Whether the client closed its end (it sent everything before waiting for the answer)."""
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _hold(connection: socket.socket, delay: float) -> bool:
    """Wait out ``delay`` seconds; False if the client left meanwhile."""
    deadline = time.monotonic() + delay
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([connection], [], [], min(remaining, 0.05))
        if readable:
            return not _client_left(connection)
    return True


def main(out_path: str, *, port: int = 0, faults: Faults | None = None) -> None:
    lock = threading.Lock()
    out = open(out_path, "a", encoding="utf-8")
    active = faults if faults is not None else Faults(None, None, 0.0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            kinds = _MESSAGES.get(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if kinds is None:
                self.send_response(404)
                self.end_headers()
                return
            if active.max_body is not None and len(body) > active.max_body:
                active.count("too_large")
                self.send_response(413)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            faulty = not active.recovered.is_set()
            if faulty and active.fail_status is not None:
                active.count("failed")
                self.send_response(active.fail_status)
                if active.retry_after is not None:
                    self.send_header("Retry-After", f"{active.retry_after:g}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if faulty and active.delay > 0:
                active.count("delayed")
                if not _hold(self.connection, active.delay):
                    active.count("abandoned")
                    self.close_connection = True
                    return
            request = kinds[0]()
            request.ParseFromString(body)
            line = json.dumps(_hex_ids(MessageToDict(request, use_integers_for_enums=True)))
            with lock:
                if out.closed:
                    return
                out.write(line + "\n")
                out.flush()
            payload = kinds[1]().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    def recover(signum: int, frame: FrameType | None) -> None:
        active.recovered.set()
        print(f"recovered {active.summary()}", flush=True)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    signal.signal(signal.SIGUSR1, recover)
    print(f"port={server.server_address[1]}", flush=True)
    server.serve_forever()
    with lock:
        out.close()


class Running:
    """A receiver process started by :func:`start`: its endpoint, and how to stop it by its pid."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)  # by its pid: only the process start() began
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start(*args: str) -> Running:
    """Start ``python -m tests.otlp_receiver ARGS...`` on 127.0.0.1 and wait until it listens."""
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.otlp_receiver", *args], cwd=root, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("port="):
        process.kill()
        process.wait()
        process.stdout.close()
        raise AssertionError(f"receiver did not start: {line!r}")
    return Running(process, int(line.strip().split("=")[1]))


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.otlp_receiver", description="A real OTLP/HTTP receiver for tests."
    )
    parser.add_argument("out", help="OTLP-JSON lines file to append what is received to")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--fail-status", type=int, default=None, help="answer every OTLP request with this status")
    parser.add_argument("--retry-after", type=float, default=None, help="Retry-After seconds on failure answers")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to hold each OTLP request")
    parser.add_argument("--max-body", type=int, default=None, help="answer 413 to larger request bodies")
    parser.add_argument("--blackhole", action="store_true", help="accept connections, never answer")
    return parser.parse_args(argv)


def blackhole(port: int = 0) -> None:
    """Accept connections and hold them open without ever answering, until SIGTERM."""
    listener = socket.create_server(("127.0.0.1", port))
    held: list[socket.socket] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"port={listener.getsockname()[1]}", flush=True)
    while True:
        connection, _ = listener.accept()
        held.append(connection)  # kept: the client waits for an answer that never comes


if __name__ == "__main__":
    args = _parse(sys.argv[1:])
    if args.blackhole:
        blackhole(args.port)
    else:
        main(args.out, port=args.port, faults=Faults(args.fail_status, args.retry_after, args.delay, args.max_body))

"""A local OTLP/HTTP receiver that counts what it receives, for the ``otlp`` configuration.

Run as ``python bench/receiver.py``: it listens on 127.0.0.1 on a free port, prints
``port=<n>`` once ready, parses every protobuf ``POST /v1/logs``, ``/v1/traces`` and
``/v1/metrics`` (a real parse, as a collector does) and counts stream records
(``otelstream.<mode>``), ``otelstream.run.end`` records and spans; ``GET /counts`` returns
the counts as JSON. Unlike ``tests/otlp_receiver.py`` it writes nothing to disk, so a
1,000,000-record run does not spend the shared CPU on JSON files. It keeps connections
alive (HTTP/1.1), as a collector does, and stops on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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

CHUNK_PREFIX = "otelstream."
RUN_END = "otelstream.run.end"


class Tally:
    """What was received so far. Thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts = {"chunks": 0, "run_ends": 0, "spans": 0, "other_logs": 0, "metric_requests": 0}

    def add(self, key: str, n: int) -> None:
        with self.lock:
            self.counts[key] += n

    def json(self) -> bytes:
        with self.lock:
            return json.dumps(self.counts).encode()


def _count_logs(body: bytes, tally: Tally) -> bytes:
    request = ExportLogsServiceRequest()
    request.ParseFromString(body)
    chunks = run_ends = other = 0
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                name = record.event_name
                if name == RUN_END:
                    run_ends += 1
                elif name.startswith(CHUNK_PREFIX):
                    chunks += 1
                else:
                    other += 1
    tally.add("chunks", chunks)
    tally.add("run_ends", run_ends)
    tally.add("other_logs", other)
    return bytes(ExportLogsServiceResponse().SerializeToString())


def _count_traces(body: bytes, tally: Tally) -> bytes:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
    tally.add("spans", spans)
    return bytes(ExportTraceServiceResponse().SerializeToString())


def _count_metrics(body: bytes, tally: Tally) -> bytes:
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    tally.add("metric_requests", 1)
    return bytes(ExportMetricsServiceResponse().SerializeToString())


def main() -> None:
    tally = Tally()
    handlers = {"/v1/logs": _count_logs, "/v1/traces": _count_traces, "/v1/metrics": _count_metrics}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            handler = handlers.get(self.path)
            if handler is None:
                self._reply(404, b"", "text/plain")
                return
            self._reply(200, handler(body, tally), "application/x-protobuf")

        def do_GET(self) -> None:
            if self.path != "/counts":
                self._reply(404, b"", "text/plain")
                return
            self._reply(200, tally.json(), "application/json")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"port={server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

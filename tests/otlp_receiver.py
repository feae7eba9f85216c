"""A real OTLP/HTTP receiver for tests: a separate process that stores what it receives.

Run as ``python -m tests.otlp_receiver OUT.jsonl``. It listens on 127.0.0.1 on a free port,
prints ``port=<n>`` once ready, decodes every protobuf ``POST /v1/traces``, ``/v1/logs`` and ``/v1/metrics``
and appends it to OUT as an OTLP-JSON line (the format otelstream's file exporter and replay
use). It stops on SIGTERM.
"""

from __future__ import annotations

import base64
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def main(out_path: str) -> None:
    lock = threading.Lock()
    out = open(out_path, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            kinds = _MESSAGES.get(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if kinds is None:
                self.send_response(404)
                self.end_headers()
                return
            request = kinds[0]()
            request.ParseFromString(body)
            line = json.dumps(_hex_ids(MessageToDict(request, use_integers_for_enums=True)))
            with lock:
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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"port={server.server_address[1]}", flush=True)
    server.serve_forever()
    out.close()


if __name__ == "__main__":
    main(sys.argv[1])

"""A local HTTP server speaking OpenAI's chat completions wire format, run as a separate process.

``python -m tests.openai_server`` binds 127.0.0.1 on a free port and prints it. The last
user message picks the answer:

* ``"tokens N"``: N tokens ``"t0 "``, ``"t1 "``, ... then ``finish_reason="stop"`` (and a usage
  chunk when the request asks for ``stream_options.include_usage``);
* ``"break N"``: N tokens, then the connection is cut inside the chunked body (no final chunk,
  no ``[DONE]``): the client sees a broken stream;
* ``"tool"``: one streamed tool call, ``finish_reason="tool_calls"``;
* anything else: the text echoed back as one token.

Streams are server-sent events (``data: {json}`` lines, ``data: [DONE]`` at the end) in a
chunked HTTP/1.1 response, as OpenAI sends them; ``"stream": false`` gets one JSON object.
"""

from __future__ import annotations

import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREATED = 1_700_000_000


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish}],
        "usage": usage,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output stays readable."""

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self._write_chunk(f"data: {text}\n\n".encode())

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        model = body.get("model", "local-model")
        prompt = str(body["messages"][-1]["content"])
        words = prompt.split()
        count = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
        tokens = [f"t{i} " for i in range(count)] if words and words[0] in ("tokens", "break") else [prompt]
        if not body.get("stream"):
            answer = {
                "id": "chatcmpl-local",
                "object": "chat.completion",
                "created": CREATED,
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "".join(tokens)}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": len(tokens), "total_tokens": 5 + len(tokens)},
            }
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._event(_chunk(model, {"role": "assistant", "content": ""}))
        if words and words[0] == "tool":
            call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "add", "arguments": ""}}
            self._event(_chunk(model, {"tool_calls": [call]}))
            self._event(_chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1}'}}]}))
            self._event(_chunk(model, {}, "tool_calls"))
        else:
            for token in tokens:
                self._event(_chunk(model, {"content": token}))
            if words and words[0] == "break":
                # cut the connection inside the chunked body: a broken stream, not a clean end
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self._event(_chunk(model, {}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 5, "completion_tokens": len(tokens), "total_tokens": 5 + len(tokens)}
            self._event(_chunk(model, {}, usage=usage))
        self._event("[DONE]")
        self._write_chunk(b"")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()

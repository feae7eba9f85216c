"""How the gateway runs: its token, limits and receivers, in one frozen dataclass."""

from __future__ import annotations

import dataclasses

from otelstream.serve._store import StoreLimits

__all__ = ["GatewayOptions"]


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayOptions:
    """How the gateway runs.

    Attributes:
        token: When set, every OTLP and reading request needs ``Authorization: Bearer <token>``.
        limits: What the store keeps (retention, memory, reorder window).
        max_body: The largest OTLP request body accepted, after decompression (413 beyond).
        max_clients: Concurrent streams served; more get 503.
        join_grace_s: How long a request for a run not seen yet waits for it before a 404.
        ping_s: Seconds between SSE keep-alive comments.
        send_timeout_s: A consumer whose connection accepts nothing for this long is cut.
        name: This gateway's name in ``GET /runs`` (which gateway owns a run, behind a load balancer).
        grpc_port: Also receive OTLP/gRPC on this port (None: HTTP only).
        host: The address the gRPC receiver binds (the HTTP one is the ASGI server's).
    """

    token: str | None = None
    limits: StoreLimits = dataclasses.field(default_factory=StoreLimits)
    max_body: int = 64 * 1024 * 1024
    max_clients: int = 1000
    join_grace_s: float = 10.0
    ping_s: float = 15.0
    send_timeout_s: float = 30.0
    name: str = "otelstream-gateway"
    grpc_port: int | None = None
    host: str = "127.0.0.1"

"""Running the gateway: uvicorn for HTTP, and the gRPC receiver on the same event loop."""

from __future__ import annotations

import dataclasses
import logging

import uvicorn

from otelstream.serve._app import create_app
from otelstream.serve._options import GatewayOptions

__all__ = ["serve"]

logger = logging.getLogger("otelstream.serve")


def serve(
    options: GatewayOptions | None = None, *, host: str = "127.0.0.1", port: int = 4320, log_level: str = "info"
) -> None:
    """Run the gateway until SIGINT/SIGTERM.

    Args:
        options: Limits, token, gRPC port (``options.host`` is set to ``host``).
        host: The address to bind; loopback unless told otherwise.
        port: The HTTP port (OTLP/HTTP, the API, the page).
        log_level: uvicorn's log level.
    """
    options = dataclasses.replace(options or GatewayOptions(), host=host)
    if options.name == GatewayOptions().name:
        options = dataclasses.replace(options, name=f"{host}:{port}")
    app = create_app(options)
    # the asyncio loop, not uvloop: grpc.aio runs on the same loop
    config = uvicorn.Config(
        app, host=host, port=port, loop="asyncio", log_level=log_level, access_log=False, timeout_graceful_shutdown=2
    )
    logger.info("otelstream gateway on http://%s:%s (OTLP/HTTP, runs, streams, page)", host, port)
    uvicorn.Server(config).run()

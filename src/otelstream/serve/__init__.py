"""The stream gateway: ``otelstream serve`` receives OTLP and serves each run's stream live.

It sits after the exporters, like any backend: applications point
``OTEL_EXPORTER_OTLP_ENDPOINT`` at it (or a Collector forwards to it), it rebuilds each run's
stream from the records it receives, and serves it as Server-Sent Events — to
:func:`otelstream.remote_stream`, to LangGraph's SDK (``client.runs.join_stream``), to a
browser (``GET /``). It imports nothing from the engine: what it knows of a run is what the
telemetry says.

Run it from the shell (``otelstream serve``), or embed the ASGI app::

    from otelstream.serve import GatewayOptions, create_app
    app = create_app(GatewayOptions(token="..."))  # e.g. uvicorn.run(app, port=4320)

Needs the ``serve`` extra: ``pip install 'otelstream[serve]'``.
"""

from __future__ import annotations

try:
    import sse_starlette  # noqa: F401 - checked here, so the error names the extra
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"the otelstream gateway needs the 'serve' extra ({exc.name} is missing): pip install 'otelstream[serve]'"
    ) from exc

from otelstream.serve._app import create_app
from otelstream.serve._options import GatewayOptions
from otelstream.serve._server import serve
from otelstream.serve._store import RunStore, StoreLimits

__all__ = ["GatewayOptions", "RunStore", "StoreLimits", "create_app", "serve"]

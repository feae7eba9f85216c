"""Instrument LangGraph itself: every stream chunk of an unmodified LangGraph app in OpenTelemetry.

::

    from otelstream.integrations.langgraph import LangGraphInstrumentor

    LangGraphInstrumentor().instrument()    # idempotent; uninstrument() restores LangGraph

or, with no code change, ``opentelemetry-instrument python app.py`` (the instrumentor is
registered under the ``opentelemetry_instrumentor`` entry point ``langgraph``).

Then every top-level ``stream()`` / ``astream()`` of a LangGraph graph — and so ``invoke()``
/ ``ainvoke()``, which run through them — emits each chunk LangGraph produces as one
``otelstream.<mode>`` record of otelstream's telemetry contract (``docs/telemetry.md``), and
the iterator the application holds yields what otelstream's processor received: the same
chunks, in the same shape, as plain LangGraph. Besides the modes the application streams,
each run exports ``OTELSTREAM_EXPORT_MODES`` (default ``updates``; see
:mod:`~otelstream.integrations.langgraph._settings` for the modes with side effects).

Spans: ``invoke_workflow {graph}`` per top-level call (outcome, thread id, a link to the
previous run of the same thread in this process), ``invoke_node {node}`` per task, current
while the node's code runs, and ``chat {model}`` / ``execute_tool {tool}`` for LangChain
models and tools in nodes. A failure of otelstream's own never reaches the application: it is
logged once and the run carries on with less telemetry.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Collection, Iterable
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.sdk._logs import LoggerProvider

from otelstream.engine.progress import register_writer_source, unregister_writer_source
from otelstream.integrations.langgraph._internals import SUPPORTED, installed_version, load, supported
from otelstream.integrations.langgraph._pipeline import PipelineSource
from otelstream.integrations.langgraph._settings import ENV_EXPORT_MODES, export_modes, warn_side_effects
from otelstream.integrations.langgraph._stream import make_astream_wrapper, make_stream_wrapper
from otelstream.integrations.langgraph._tasks import langgraph_writer, make_arun_wrapper, make_run_wrapper

__all__ = ["ENV_EXPORT_MODES", "LangGraphInstrumentor"]

logger = logging.getLogger("otelstream")

_PREGEL_MODULE = "langgraph.pregel.main"
_RUNNER_MODULE = "langgraph.pregel._runner"
# (module, attribute path): wrapped in this order, unwrapped in the same order
_TARGETS = (
    (_PREGEL_MODULE, "Pregel.stream"),
    (_PREGEL_MODULE, "Pregel.astream"),
    (_RUNNER_MODULE, "run_with_retry"),
    (_RUNNER_MODULE, "arun_with_retry"),
)


def _unwrap(module_name: str, path: str) -> None:
    owner: Any = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    current = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
    original = getattr(current, "__wrapped__", None)
    if isinstance(current, wrapt.FunctionWrapper) and original is not None:
        setattr(owner, name, original)


class LangGraphInstrumentor(BaseInstrumentor):  # type: ignore[misc]  # the base class is untyped
    """Wraps LangGraph's ``Pregel.stream`` / ``astream`` and its task runner; see the module docstring.

    A process-wide singleton (OpenTelemetry's instrumentor convention): ``instrument()`` and
    ``uninstrument()`` are idempotent; a repeated call logs a warning and does nothing.
    """

    _lock = threading.Lock()

    def instrumentation_dependencies(self) -> Collection[str]:
        """Return the LangGraph versions this instrumentor supports."""
        return (f"langgraph {', '.join(SUPPORTED)}",)

    def instrument(self, **kwargs: Any) -> None:
        """Instrument LangGraph (see :meth:`_instrument` for the arguments).

        An unsupported LangGraph version is reported with a warning and left alone, and the
        instrumentor stays uninstrumented.
        """
        with self._lock:
            super().instrument(**kwargs)
            if not getattr(self, "_wrapped", False):
                self._is_instrumented_by_opentelemetry = False

    def uninstrument(self, **kwargs: Any) -> None:
        """Restore LangGraph's own functions exactly."""
        with self._lock:
            super().uninstrument(**kwargs)

    def _instrument(self, **kwargs: Any) -> None:
        """Wrap LangGraph.

        Args:
            **kwargs: ``tracer_provider`` (make spans there instead of where otelstream
                resolves its tracer), ``logger_provider`` (emit stream records there: an SDK
                ``LoggerProvider``), ``meter_provider`` (record metrics there),
                ``export_modes`` (modes every run exports besides the application's;
                default ``OTELSTREAM_EXPORT_MODES``, else ``updates``).

        Raises:
            ModuleNotFoundError: LangGraph is not installed.
        """
        self._wrapped = False
        version = installed_version()
        if version is None:
            raise ModuleNotFoundError("LangGraphInstrumentor needs langgraph: pip install 'otelstream[langgraph]'")
        if not supported(version):
            logger.warning(
                "otelstream: LangGraph %s is not supported by LangGraphInstrumentor (supported: %s); "
                "LangGraph is left uninstrumented",
                version,
                ", ".join(SUPPORTED),
            )
            return
        internals = load(version)
        logger_provider = kwargs.get("logger_provider")
        if logger_provider is not None:
            if not isinstance(logger_provider, LoggerProvider):
                logger.warning(
                    "otelstream: logger_provider %r is not an SDK LoggerProvider and is ignored: "
                    "otelstream's processor must see every record",
                    logger_provider,
                )
        source = PipelineSource(kwargs.get("tracer_provider"), logger_provider, kwargs.get("meter_provider"))
        given: Iterable[str] | None = kwargs.get("export_modes")
        export = export_modes(given)
        warn_side_effects(export)
        factories = (
            make_stream_wrapper(internals, source, export),
            make_astream_wrapper(internals, source, export),
            make_run_wrapper(internals),
            make_arun_wrapper(internals),
        )
        done: list[tuple[str, str]] = []
        try:
            for (module, path), wrapper in zip(_TARGETS, factories, strict=True):
                wrapt.wrap_function_wrapper(module, path, wrapper)
                done.append((module, path))
        except BaseException:
            for module, path in done:  # all or nothing: LangGraph is never half wrapped
                _unwrap(module, path)
            raise
        register_writer_source(langgraph_writer)
        self._wrapped = True

    def _uninstrument(self, **kwargs: Any) -> None:
        if getattr(self, "_wrapped", False):
            unregister_writer_source(langgraph_writer)
            for module, path in _TARGETS:
                _unwrap(module, path)
        self._wrapped = False

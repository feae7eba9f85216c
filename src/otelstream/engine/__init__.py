"""otelstream's graph engine: StateGraph, channels, the superstep loop (internal).

No stability guarantee for anything imported from here: use the names ``otelstream``
exports. The engine imports nothing of OpenTelemetry nor of the layers above it; it
reports what runs do to a :class:`~otelstream.engine.events.RunObserver`.
"""

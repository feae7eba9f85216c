"""otelstream's telemetry layer: the only code that calls the OpenTelemetry API (internal).

No stability guarantee, except for the modules the documentation sends users to:
:mod:`otelstream.telemetry.semconv` (attribute and record names, part of the telemetry
contract) and :mod:`otelstream.telemetry.redact` (``Redactor``, its patterns and marker).
"""

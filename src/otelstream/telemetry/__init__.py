"""telemetry layer of otelstream."""

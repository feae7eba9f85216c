"""engine layer of otelstream."""

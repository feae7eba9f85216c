"""consumer layer of otelstream."""

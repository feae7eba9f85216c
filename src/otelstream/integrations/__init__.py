"""integrations layer of otelstream."""

"""otelstream's Grafana dashboards as code: one module per dashboard, written to JSON by ``build.py``."""

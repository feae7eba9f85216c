"""The package version, in one place (read by the facade and by telemetry's instrumentation scope)."""

__version__ = "0.1.0"

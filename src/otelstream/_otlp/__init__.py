"""Internal: otelstream's records read out of OTLP (JSON or protobuf), for replay and the gateway.

Nothing here is public API; nothing here imports the engine.
"""

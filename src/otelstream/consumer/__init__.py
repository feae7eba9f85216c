"""otelstream's consumer layer: the processor that routes records to runs, LangGraph's chunk shapes (internal).

No stability guarantee for anything imported from here: use the names ``otelstream`` exports.
"""

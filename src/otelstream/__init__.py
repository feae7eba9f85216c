"""otelstream: LangGraph-style graph streaming, carried end to end by OpenTelemetry.

Build graphs with the LangGraph API and stream them; every chunk ``stream()`` yields was
first emitted into OpenTelemetry, so your tracing backend holds the very stream your
application saw::

    from otelstream import StateGraph, START, END
    graph = StateGraph(State)
    ...
    for mode, chunk in graph.compile().stream(inputs, stream_mode=["updates", "custom"]):
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otelstream import integrations as _integrations  # noqa: F401 - lets LangChain see node configs
from otelstream._config import ExportOptions, configure, force_flush, shutdown
from otelstream._remote import aremote_stream, remote_stream
from otelstream._replay import (
    Gap,
    Replay,
    RunSummary,
    TruncatedPayload,
    replay,
    replay_thread,
    runs,
)
from otelstream._version import __version__
from otelstream.checkpoint import BaseCheckpointSaver, InMemorySaver, SqliteSaver
from otelstream.engine.compiled import CompiledStateGraph, set_stream_driver
from otelstream.engine.graph import StateGraph
from otelstream.engine.interrupts import interrupt
from otelstream.engine.persistence import PregelTask, StateSnapshot
from otelstream.engine.progress import progress_chunk, write_progress
from otelstream.engine.runtime import get_config, get_stream_writer
from otelstream.engine.types import (
    END,
    START,
    Command,
    GraphOutput,
    Interrupt,
    RetryPolicy,
    Send,
    StreamMode,
    StreamModeArg,
    StreamPart,
    StreamWriter,
)
from otelstream.errors import (
    CheckpointError,
    EmptyInputError,
    ErrorCode,
    GraphInterrupt,
    GraphRecursionError,
    IncompleteStreamError,
    InvalidGraphError,
    InvalidStreamArgumentError,
    InvalidUpdateError,
    OtelstreamError,
    ReplayError,
    ReplaySourceError,
    RunStopped,
)
from otelstream.llm import LLMStream, llm_call, stream_llm
from otelstream.stream import Driver
from otelstream.telemetry.redact import Redactor

# the engine runs graphs through the driver installed here: the OpenTelemetry pipeline
set_stream_driver(Driver())

__all__ = [
    "END",
    "START",
    "BaseCheckpointSaver",
    "CheckpointError",
    "Command",
    "CompiledStateGraph",
    "EmptyInputError",
    "ErrorCode",
    "ExportOptions",
    "Gap",
    "GraphInterrupt",
    "GraphOutput",
    "InMemorySaver",
    "IncompleteStreamError",
    "Interrupt",
    "GraphRecursionError",
    "InvalidGraphError",
    "InvalidStreamArgumentError",
    "InvalidUpdateError",
    "LLMStream",
    "OtelstreamError",
    "PregelTask",
    "Redactor",
    "Replay",
    "ReplayError",
    "ReplaySourceError",
    "RetryPolicy",
    "RunStopped",
    "RunSummary",
    "Send",
    "SqliteSaver",
    "StateGraph",
    "StateSnapshot",
    "StreamMode",
    "StreamModeArg",
    "StreamPart",
    "StreamWriter",
    "TruncatedPayload",
    "__version__",
    "aremote_stream",
    "configure",
    "force_flush",
    "get_config",
    "get_stream_writer",
    "interrupt",
    "llm_call",
    "progress_chunk",
    "remote_stream",
    "replay",
    "replay_thread",
    "runs",
    "shutdown",
    "stream_llm",
    "write_progress",
]

if TYPE_CHECKING:
    from otelstream.prebuilt import MessagesState as MessagesState
    from otelstream.prebuilt import ToolNode as ToolNode
    from otelstream.prebuilt import add_messages as add_messages
    from otelstream.prebuilt import tools_condition as tools_condition

# the prebuilt agent pieces need LangChain (an optional extra): imported on first use, and
# listed in otelstream.prebuilt.__all__ rather than here, so `from otelstream import *` works
# without LangChain
_PREBUILT = frozenset(("MessagesState", "ToolNode", "add_messages", "tools_condition"))


def __getattr__(name: str) -> object:
    if name in _PREBUILT:
        from otelstream import prebuilt  # noqa: PLC0415 - needs LangChain, an optional extra

        return getattr(prebuilt, name)
    raise AttributeError(f"module 'otelstream' has no attribute {name!r}")

"""Without LangChain installed, otelstream works and streams any LLM's tokens with its own chunk type.

The check runs in a subprocess whose import system refuses ``langchain_core`` (and what
depends on it), as an environment without the ``langchain`` extra would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("langchain_core", "langchain", "langgraph", "langsmith"):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, Block())

    from typing import Annotated, Any, TypedDict
    import operator
    import otelstream
    from otelstream import START, StateGraph, stream_llm
    from otelstream.telemetry.codec import decode, encode
    from otelstream.telemetry.messages import AIMessageChunk

    class State(TypedDict):
        messages: Annotated[list, operator.add]

    @stream_llm(model="m", provider="p")
    def generate():
        yield from ["a", "b"]

    def node(state):
        return {"messages": ["".join(generate())]}

    graph = StateGraph(State)
    graph.add_node("llm", node)
    graph.add_edge(START, "llm")
    out = []
    for mode, chunk in graph.compile().stream({"messages": []}, stream_mode=["messages", "updates"]):
        if mode == "messages":
            message, metadata = chunk
            assert type(message) is AIMessageChunk, type(message)
            assert decode(encode(message)) == message
            out.append([message.content, message.chunk_position, metadata["langgraph_node"]])
        else:
            out.append(chunk)
    exec("from otelstream import *", {})  # the star import needs no optional extra
    try:
        otelstream.ToolNode
    except ImportError as exc:
        out.append(str(exc))
    print(json.dumps({"out": out, "loaded": sorted(m for m in sys.modules if m.startswith("langchain"))}))
    """
)


def test_everything_but_prebuilt_works_without_langchain() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["loaded"] == []
    assert data["out"] == [
        ["a", None, "llm"],
        ["b", None, "llm"],
        ["", "last", "llm"],
        {"llm": {"messages": ["ab"]}},
        "otelstream.prebuilt needs langchain-core (LangChain messages and tools): "
        "install it with `pip install 'otelstream[langchain]'`",
    ]

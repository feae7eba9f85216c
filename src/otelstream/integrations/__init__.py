"""Integrations with LLM libraries: LangChain chat models and tools, the OpenAI client.

The LangChain integration needs no call: once the application has imported
``langchain_core``, every node runs with LangChain seeing the task's config (see
:mod:`otelstream.integrations.langchain`). It is looked up per node rather than imported
here, so ``import otelstream`` never imports LangChain, which is an optional extra.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from otelstream.engine.events import RunInfo, Task
from otelstream.telemetry.hooks import register_task_hook

if TYPE_CHECKING:
    from otelstream.telemetry.pipeline import Streams

__all__: list[str] = []


def _langchain_scope(task: Task, run: RunInfo, streams: Streams) -> AbstractContextManager[None] | None:
    # no LangChain object can exist before langchain_core is imported: nothing to do
    if "langchain_core" not in sys.modules:
        return None
    from otelstream.integrations import langchain  # noqa: PLC0415 - LangChain is an optional extra

    return langchain.task_scope(task, run, streams)


register_task_hook(_langchain_scope)

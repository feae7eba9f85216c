"""``ToolNode`` and ``tools_condition``: run the last AI message's tool calls, LangGraph's way.

Tools are invoked without an explicit config, so LangChain takes the node's config from
its context variable (set by otelstream around every node): tool callbacks, the
``execute_tool`` spans and tokens of models called inside tools all follow from that.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_core.tools import tool as create_tool
from pydantic import ValidationError

from otelstream.engine.types import Command

__all__ = ["ToolInvocationError", "ToolNode", "tools_condition"]

INVALID_TOOL_NAME_ERROR_TEMPLATE = "Error: {requested_tool} is not a valid tool, try one of [{available_tools}]."
TOOL_CALL_ERROR_TEMPLATE = "Error: {error}\n Please fix your mistakes."
TOOL_INVOCATION_ERROR_TEMPLATE = (
    "Error invoking tool '{tool_name}' with kwargs {tool_kwargs} with error:\n"
    " {error}\n"
    " Please fix the error and try again."
)

ErrorHandling = bool | str | Callable[[Exception], str] | type[Exception] | tuple[type[Exception], ...]


class ToolInvocationError(ToolException):
    """A tool was called with arguments that do not validate (LangGraph's message)."""

    def __init__(self, tool_name: str, source: ValidationError, tool_kwargs: dict[str, Any]) -> None:
        """Describe the failed call of ``tool_name``."""
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'Unknown error')}" for e in source.errors()
        ]
        self.message = TOOL_INVOCATION_ERROR_TEMPLATE.format(
            tool_name=tool_name, tool_kwargs=tool_kwargs, error="\n".join(parts)
        )
        self.tool_name = tool_name
        self.tool_kwargs = tool_kwargs
        self.source = source
        super().__init__(self.message)


def _default_error_handling(error: Exception) -> str:
    # LangGraph's default: the model may fix bad arguments; any other error fails the node
    if isinstance(error, ToolInvocationError):
        return error.message
    raise error


class ToolNode:
    """A node that runs the tool calls of the last ``AIMessage``, in parallel, in call order.

    Input: a state with a ``messages`` key (or ``messages_key``), or a list of messages.
    Output: ``{"messages": [ToolMessage, ...]}`` (a list for list input). A tool returning
    a ``Command`` makes the output a list of commands, each tool message wrapped in one.

    Args:
        tools: LangChain tools, or plain functions (made into tools with ``@tool``).
        name: The node's name when added without one (``"tools"``).
        handle_tool_errors: What a tool error becomes. By default an invalid-arguments error
            becomes an error ``ToolMessage`` and any other error fails the node; ``True`` turns
            every error into an error message, ``False`` none; a string is the message; a
            callable maps the exception to it; an exception type (or tuple) names what to catch.
        messages_key: The state key holding the messages.

    Raises:
        TypeError: ``tools`` holds something that is neither a tool nor a function.
    """

    def __init__(
        self,
        tools: Sequence[BaseTool | Callable[..., Any]],
        *,
        name: str = "tools",
        handle_tool_errors: ErrorHandling | None = None,
        messages_key: str = "messages",
    ) -> None:
        """Build the tool table; see the class docstring."""
        self.name = name
        self.messages_key = messages_key
        self.handle_tool_errors: ErrorHandling = (
            _default_error_handling if handle_tool_errors is None else handle_tool_errors
        )
        self.tools_by_name: dict[str, BaseTool] = {}
        for item in tools:
            if isinstance(item, BaseTool):
                made = item
            elif callable(item):
                made = create_tool(item)
            else:
                raise TypeError(f"ToolNode takes LangChain tools or functions, got {type(item).__name__}: {item!r}")
            self.tools_by_name[made.name] = made

    def __repr__(self) -> str:
        return f"ToolNode(tools={list(self.tools_by_name)})"

    def __call__(self, input: Any) -> Any:
        """Run the tool calls of the last AI message in ``input``.

        Raises:
            ValueError: ``input`` holds no messages, or its last message is not an AIMessage.
        """
        message, input_type = self._last_ai_message(input)
        calls = list(message.tool_calls)
        if len(calls) <= 1:
            outputs = [self._run_one(call) for call in calls]
        else:
            with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="otelstream-tool") as pool:
                # each tool runs in a copy of the node's context: LangChain's config and the span
                futures = [pool.submit(contextvars.copy_context().run, self._run_one, call) for call in calls]
                outputs = [f.result() for f in futures]
        return self._combine(outputs, input_type)

    def _last_ai_message(self, input: Any) -> tuple[AIMessage, Literal["list", "dict"]]:
        if isinstance(input, list):
            messages: list[AnyMessage] = input
            input_type: Literal["list", "dict"] = "list"
        elif isinstance(input, dict):
            messages = input.get(self.messages_key) or []
            input_type = "dict"
        else:
            messages = getattr(input, self.messages_key, None) or []
            input_type = "dict"
        if not messages:
            raise ValueError(f"ToolNode found no messages under {self.messages_key!r} in its input: {input!r}")
        last = messages[-1]
        if not isinstance(last, AIMessage):
            raise ValueError(f"ToolNode needs an AIMessage as the last message, got {type(last).__name__}")
        return last, input_type

    def _run_one(self, call: ToolCall) -> ToolMessage | Command:
        tool = self.tools_by_name.get(call["name"])
        if tool is None:
            content = INVALID_TOOL_NAME_ERROR_TEMPLATE.format(
                requested_tool=call["name"], available_tools=", ".join(self.tools_by_name)
            )
            return ToolMessage(content=content, name=call["name"], tool_call_id=call["id"], status="error")
        try:
            try:
                # no config: LangChain takes the node's from its context variable
                response = _invoke(tool, {**call, "type": "tool_call"})
            except ValidationError as exc:
                raise ToolInvocationError(call["name"], exc, call["args"]) from exc
        except Exception as exc:
            flag = self.handle_tool_errors
            if isinstance(flag, type) and issubclass(flag, Exception):
                handled: tuple[type[Exception], ...] = (flag,)
            elif isinstance(flag, tuple):
                handled = flag
            else:
                handled = (Exception,)
            if not flag or not isinstance(exc, handled):
                raise
            if isinstance(flag, str):
                content = flag
            elif callable(flag) and not isinstance(flag, type):
                content = flag(exc)
            else:
                content = TOOL_CALL_ERROR_TEMPLATE.format(error=repr(exc))
            return ToolMessage(content=content, name=call["name"], tool_call_id=call["id"], status="error")
        if isinstance(response, (ToolMessage, Command)):
            return response
        return ToolMessage(content=str(response), name=call["name"], tool_call_id=call["id"])

    def _combine(self, outputs: list[ToolMessage | Command], input_type: Literal["list", "dict"]) -> Any:
        if not any(isinstance(o, Command) for o in outputs):
            return outputs if input_type == "list" else {self.messages_key: outputs}
        combined: list[Any] = []
        for output in outputs:
            if isinstance(output, Command):
                combined.append(output)
            else:
                update = [output] if input_type == "list" else {self.messages_key: [output]}
                combined.append(Command(update=update))
        return combined


def _invoke(tool: BaseTool, call: dict[str, Any]) -> Any:
    if not (isinstance(tool, StructuredTool) and tool.func is None and tool.coroutine is not None):
        return tool.invoke(call)
    # an async-only tool: ToolNode is synchronous, so the coroutine gets an event loop of its own
    # (asyncio.run copies the context: callbacks still find the node's config and span)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(tool.ainvoke(call))
    # this thread already runs a loop (a sync stream() called from async code): use another
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="otelstream-tool") as pool:
        return pool.submit(contextvars.copy_context().run, asyncio.run, tool.ainvoke(call)).result()


def tools_condition(state: Any, messages_key: str = "messages") -> Literal["tools", "__end__"]:
    """Route to ``"tools"`` if the last message has tool calls, else to the end.

    Raises:
        ValueError: the state holds no messages.
    """
    if isinstance(state, list):
        messages = state
    elif isinstance(state, dict):
        messages = state.get(messages_key, [])
    else:
        messages = getattr(state, messages_key, [])
    if not messages:
        raise ValueError(f"No messages found in input state to tool_edge: {state}")
    last = messages[-1]
    if getattr(last, "tool_calls", None):
        return "tools"
    return "__end__"

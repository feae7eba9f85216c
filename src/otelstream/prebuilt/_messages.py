"""``add_messages`` and ``MessagesState``: a conversation merged by message id, as in LangGraph."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langchain_core.messages import (
    AnyMessage,
    BaseMessage,
    BaseMessageChunk,
    RemoveMessage,
    convert_to_messages,
    message_chunk_to_message,
)

__all__ = ["REMOVE_ALL_MESSAGES", "MessagesState", "add_messages"]

REMOVE_ALL_MESSAGES = "__remove_all__"
"""The id of a ``RemoveMessage`` that clears the history before the messages after it."""


def _coerce(messages: list[Any]) -> list[Any]:
    # plain messages pass unchanged; dicts, tuples, strings and chunks become messages
    if all(issubclass(t, BaseMessage) and not issubclass(t, BaseMessageChunk) for t in set(map(type, messages))):
        return messages
    converted: list[Any] = [
        message_chunk_to_message(m) if isinstance(m, BaseMessageChunk) else m for m in convert_to_messages(messages)
    ]
    return converted


def _merge(left_in: Any, right_in: Any) -> list[Any]:
    left = _coerce(left_in if isinstance(left_in, list) else [left_in])
    right = _coerce(right_in if isinstance(right_in, list) else [right_in])
    remove_all = None
    # ids are assigned in place, as LangGraph does: the caller's messages gain them too
    for message in left:
        if message.id is None:
            message.id = str(uuid.uuid4())
    for index, message in enumerate(right):
        if message.id is None:
            message.id = str(uuid.uuid4())
        if isinstance(message, RemoveMessage) and message.id == REMOVE_ALL_MESSAGES:
            remove_all = index
    if remove_all is not None:
        return right[remove_all + 1 :]
    merged: list[Any] = left.copy()
    by_id = {m.id: i for i, m in enumerate(merged)}
    to_remove: set[str | None] = set()
    for message in right:
        existing = by_id.get(message.id)
        if existing is not None:
            if isinstance(message, RemoveMessage):
                to_remove.add(message.id)
            else:
                to_remove.discard(message.id)
                merged[existing] = message
        elif isinstance(message, RemoveMessage):
            raise ValueError(f"Attempting to delete a message with an ID that doesn't exist ('{message.id}')")
        else:
            by_id[message.id] = len(merged)
            merged.append(message)
    if to_remove:
        merged = [m for m in merged if m.id not in to_remove]
    return merged


def add_messages(left: Any = None, right: Any = None, **kwargs: Any) -> Any:
    """Merge ``right`` into ``left`` by message id: append new ones, replace same-id ones.

    A ``RemoveMessage(id=...)`` deletes that message; ``RemoveMessage(id=REMOVE_ALL_MESSAGES)``
    drops everything before it. Messages may be message objects, dicts, ``(role, text)``
    tuples or strings; message chunks become whole messages. Messages without an id get a
    uuid, in place. Called with no arguments (``add_messages()``) it returns itself, as
    LangGraph's decorator form does.

    Args:
        left: The current messages (a list or one message).
        right: The messages to merge in.
        **kwargs: ``format`` is LangGraph's OpenAI reformatting, which otelstream does not
            implement.

    Returns:
        The merged list.

    Raises:
        ValueError: only one of ``left`` / ``right`` was given, a ``RemoveMessage`` names an
            unknown id, or ``format`` was passed.
    """
    if kwargs:
        raise ValueError(f"add_messages() got unsupported arguments {sorted(kwargs)}: otelstream has no `format`")
    if left is not None and right is not None:
        return _merge(left, right)
    if left is not None or right is not None:
        raise ValueError(
            "Must specify non-null arguments for both 'left' and 'right'. Only "
            f"received: '{'left' if left else 'right'}'."
        )
    merge: Callable[[Any, Any], Any] = functools.partial(_merge)
    return merge


def _assign_missing_ids(value: Any) -> None:
    # the ids the reducer will give, given now: the node's update shows them, as in LangGraph
    for message in value if isinstance(value, list) else [value]:
        if getattr(message, "id", "") is None and hasattr(message, "content"):
            message.id = str(uuid.uuid4())


add_messages.prepare_update = _assign_missing_ids  # type: ignore[attr-defined]  # read by the engine


class MessagesState(TypedDict):
    """A state with one ``messages`` key merged by :func:`add_messages`."""

    messages: Annotated[list[AnyMessage], add_messages]

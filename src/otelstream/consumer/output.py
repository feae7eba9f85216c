"""Shaping received chunks exactly as LangGraph's ``stream()`` yields them.

==========================  ======================  ===========================
``stream_mode`` argument    ``subgraphs=False``     ``subgraphs=True``
==========================  ======================  ===========================
a string ``"updates"``      ``chunk``               ``(ns, chunk)``
a list ``["updates"]``      ``(mode, chunk)``       ``(ns, mode, chunk)``
a tuple ``("a", "b")``      ``chunk``               ``(ns, chunk)``
==========================  ======================  ===========================

The tuple row is a LangGraph quirk (it tests ``isinstance(stream_mode, list)``), kept so
code ported from LangGraph behaves the same. ``version="v2"`` yields
``{"type", "ns", "data"}`` dicts instead, with a values chunk's ``__interrupt__`` moved to
``"interrupts"`` and its data coerced to the output schema.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from otelstream.consumer.channel import Chunk
from otelstream.engine.types import STREAM_MODES
from otelstream.errors import InvalidStreamArgumentError

__all__ = ["make_formatter", "normalize_modes"]


def normalize_modes(stream_mode: Any, default: str) -> list[str]:
    """Return the requested modes as a list, validating each.

    Raises:
        InvalidStreamArgumentError: an unknown mode, or a value of the wrong type.
    """
    if stream_mode is None:
        return [default]
    if isinstance(stream_mode, str):
        modes = [stream_mode]
    elif isinstance(stream_mode, (list, tuple)):
        modes = list(stream_mode)
        if not modes:
            raise InvalidStreamArgumentError("stream_mode is an empty list: name at least one mode")
    else:
        raise InvalidStreamArgumentError(
            f"stream_mode must be a mode name or a list of them, got {type(stream_mode).__name__}"
        )
    for mode in modes:
        if not isinstance(mode, str) or mode not in STREAM_MODES:
            raise InvalidStreamArgumentError(f"Unknown stream_mode {mode!r}; expected one of {sorted(STREAM_MODES)}")
    return modes


def make_formatter(
    stream_mode: Any,
    subgraphs: bool,
    version: str,
    coerce_values: Callable[[Any], Any] | None = None,
) -> Callable[[Chunk], Any]:
    """Return the function that turns a received chunk into what the iterator yields."""
    if version == "v2":

        def v2(chunk: Chunk) -> Any:
            if chunk.mode == "values":
                data = chunk.payload
                interrupts: Sequence[Any] = ()
                if isinstance(data, dict) and "__interrupt__" in data:
                    data = dict(data)
                    interrupts = data.pop("__interrupt__")
                if coerce_values is not None:
                    data = coerce_values(data)
                return {"type": "values", "ns": chunk.namespace, "data": data, "interrupts": interrupts}
            return {"type": chunk.mode, "ns": chunk.namespace, "data": chunk.payload}

        return v2
    if version != "v1":
        raise InvalidStreamArgumentError(f"Unknown version {version!r}; expected 'v1' or 'v2'")
    with_mode = isinstance(stream_mode, list)
    if with_mode and subgraphs:
        return lambda c: (c.namespace, c.mode, c.payload)
    if with_mode:
        return lambda c: (c.mode, c.payload)
    if subgraphs:
        return lambda c: (c.namespace, c.payload)
    return lambda c: c.payload

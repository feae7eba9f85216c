"""One top-level ``stream()`` call: the modes LangGraph is asked for, and the shape handed back.

LangGraph decides what it *produces* from the set of requested modes and what it *yields*
with ``mode in stream_mode`` on the argument as given (``pregel/main.py`` ``_output``). So
the inner call asks for the application's modes plus the export modes, as a list (internal
chunks then carry their mode), with the application's own ``version`` and ``subgraphs``;
each chunk is exported, and only those the application asked for go back, rebuilt with
LangGraph's four v1 rules or as the v2 part dict (:func:`~otelstream.consumer.output.make_formatter`
implements the same table for otelstream's engine).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from otelstream.consumer.channel import Chunk
from otelstream.consumer.output import make_formatter
from otelstream.integrations.langgraph._internals import MODES, Internals

__all__ = ["Request", "plan"]

INTERRUPT = "__interrupt__"


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """How one top-level call is run and reshaped.

    Attributes:
        app_modes: ``stream_mode`` as the application's call resolves it (a str, list, tuple...).
        modes: The application's modes as a list, in its order (recorded on the run span).
        inner_modes: What the inner call asks for: the application's modes, then the export modes.
        subgraphs: The application's ``subgraphs``.
        v2: Whether the application asked for ``version="v2"``.
        tagged: Whether the application gets ``(mode, chunk)`` pairs (it passed a list).
        formatter: Turns a received chunk into what the application gets.
    """

    app_modes: Any
    modes: tuple[str, ...]
    inner_modes: tuple[str, ...]
    subgraphs: bool
    v2: bool
    tagged: bool
    formatter: Callable[[Chunk], Any]

    def wants(self, mode: str) -> bool:
        """Return whether the application's own call would have yielded a chunk of ``mode``."""
        # the same test as LangGraph's `mode in stream_mode`: str, list and tuple alike. No
        # namespace test: the inner call has the application's `subgraphs`, so LangGraph only
        # produces what the application would get — a functional-API task's custom writes
        # come with the task's namespace even without subgraphs=True
        return mode in self.app_modes

    def split(self, item: Any) -> tuple[tuple[str, ...], str, Any, Any]:
        """Return ``(namespace, mode, payload, interrupts)`` of one chunk of the inner call.

        ``interrupts`` is the v2 values part's ``"interrupts"`` (else None).
        """
        if self.v2:
            return tuple(item["ns"]), item["type"], item["data"], item.get("interrupts")
        if self.subgraphs:
            namespace, mode, payload = item
            return tuple(namespace), mode, payload, None
        mode, payload = item
        return (), mode, payload, None


def _resolve_mode(instance: Any, stream_mode: Any) -> Any:
    # None means the graph's default at the top level (a nested call would get "values")
    return instance.stream_mode if stream_mode is None else stream_mode


def plan(
    internals: Internals, instance: Any, kwargs: dict[str, Any], export: Sequence[str]
) -> tuple[Request, dict[str, Any]] | None:
    """Return the request and the inner call's keyword arguments, or None to pass the call through.

    A call is passed through (no widening, no records) when its ``stream_mode`` is not a mode
    name or a list/tuple of known names, or, on LangGraph 1.0, a tuple (which 1.0 turns into
    no chunks at all).
    """
    app_modes = _resolve_mode(instance, kwargs.get("stream_mode"))
    if isinstance(app_modes, str):
        modes: tuple[str, ...] = (app_modes,)
    elif isinstance(app_modes, (list, tuple)):
        if isinstance(app_modes, tuple) and not internals.has_v2:
            return None
        modes = tuple(app_modes)
    else:
        return None
    if not all(isinstance(m, str) and m in MODES for m in modes):
        return None  # LangGraph raises or ignores as it likes, unchanged
    # LangGraph takes anything but "v2" for v1; before 1.1 it ignores `version` altogether
    v2 = kwargs.get("version", "v1") == "v2" and internals.has_v2
    subgraphs = bool(kwargs.get("subgraphs", False))
    if not internals.independent_interrupts and "values" in modes and "updates" not in modes:
        # LangGraph 1.0 sends an interrupt to `updates` *instead of* `values` when both are
        # streamed: adding `updates` would take the interrupt out of the application's values
        export = [m for m in export if m != "updates"]
    request = Request(
        app_modes=app_modes,
        modes=tuple(dict.fromkeys(modes)),
        inner_modes=tuple(dict.fromkeys((*modes, *export))),
        subgraphs=subgraphs,
        v2=v2,
        tagged=isinstance(app_modes, list),
        formatter=make_formatter(app_modes, subgraphs, "v2" if v2 else "v1"),
    )
    return request, {**kwargs, "stream_mode": list(request.inner_modes)}


def record_payload(request: Request, mode: str, payload: Any, interrupts: Any) -> Any:
    """Return the payload a chunk's record carries: the chunk, as in the telemetry contract.

    A v2 values part carries its interrupts apart; the record carries them under
    ``__interrupt__`` as v1 yields them (and as the engine records them), so replay rebuilds
    either version. A state that is not a dict (a v2 output model) cannot hold them.
    """
    if request.v2 and mode == "values" and interrupts and isinstance(payload, dict):
        return {**payload, INTERRUPT: interrupts}
    return payload

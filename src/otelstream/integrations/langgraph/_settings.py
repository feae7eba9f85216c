"""Which stream modes every LangGraph run exports, whatever the application streams.

A run called with ``invoke()``, or streamed in ``values`` only, still tells operators how it
is doing: the instrumentor asks LangGraph for the application's modes plus these, exports
them all, and hands the application only its own. Adding a mode is not always free, so the
modes are in two groups:

* cost only — ``updates``, ``values``, ``tasks``, ``checkpoints``, ``debug``: LangGraph
  computes their payloads; nothing the application can observe changes;
* with side effects — ``custom`` and ``messages`` move single-task steps from the caller's
  thread to LangGraph's pool; ``messages`` and ``tools`` switch chat models to their
  streaming API, and ``messages`` gives id-less messages a uuid in the state. These are added
  only when the operator lists them (the opt-in); ``instrument()`` logs each effect once.

``subgraphs=True`` is never forced: it would change the root-level ``messages`` chunks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from otelstream.integrations.langgraph._internals import MODES
from otelstream.telemetry import environment

__all__ = ["DEFAULT_EXPORT_MODES", "ENV_EXPORT_MODES", "SIDE_EFFECTS", "export_modes", "warn_side_effects"]

logger = logging.getLogger("otelstream")

ENV_EXPORT_MODES = environment.EXPORT_MODES.name
"""Comma-separated modes every instrumented LangGraph run exports (default ``updates``; ``none``)."""
DEFAULT_EXPORT_MODES: tuple[str, ...] = ("updates",)

SIDE_EFFECTS: Mapping[str, str] = {
    "custom": "LangGraph runs single-task steps on its thread pool instead of the caller's thread",
    "messages": (
        "LangGraph runs single-task steps on its thread pool, chat models in nodes stream "
        "(their _stream/_astream is used instead of _generate), and messages without an id "
        "get a uuid in the graph state"
    ),
    "tools": "chat models in nodes stream (their _stream/_astream is used instead of _generate)",
}


def export_modes(value: Iterable[str] | str | None = None) -> tuple[str, ...]:
    """Return the modes to export: ``value``, else ``OTELSTREAM_EXPORT_MODES``, else ``updates``.

    Unknown names are dropped with a warning; ``"none"`` (or an empty list) exports nothing
    beyond what the application streams.
    """
    if value is None:
        raw = environment.EXPORT_MODES.get()
        if raw is None:
            return DEFAULT_EXPORT_MODES
        value = raw
    names = [m.strip() for m in value.split(",")] if isinstance(value, str) else [str(m).strip() for m in value]
    names = [m for m in names if m and m.lower() != "none"]
    unknown = [m for m in names if m not in MODES]
    if unknown:
        logger.warning(
            "otelstream: %s lists unknown stream modes %s; known: %s", ENV_EXPORT_MODES, unknown, sorted(MODES)
        )
    return tuple(dict.fromkeys(m for m in names if m in MODES))


def warn_side_effects(modes: Iterable[str]) -> None:
    """Log, once per ``instrument()``, what exporting each side-effect mode changes."""
    for mode in modes:
        effect = SIDE_EFFECTS.get(mode)
        if effect is not None:
            logger.warning(
                "otelstream: exporting %r from every LangGraph run, as %s asks: %s", mode, ENV_EXPORT_MODES, effect
            )

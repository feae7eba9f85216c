"""The LangGraph names the instrumentor relies on, private ones included, resolved once.

Everything LangGraph-specific the wrappers read comes from :func:`load`, called by
``instrument()`` after the version check: the wrappers themselves import nothing from
LangGraph, so a missing name fails ``instrument()`` (which then leaves LangGraph alone)
rather than a run. The private names were measured stable from 1.0 to 1.2
(``/work/shared/reference/langgraph-instrumentation.md`` §8).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from importlib import metadata
from typing import Any

__all__ = ["SUPPORTED", "Internals", "installed_version", "load", "supported"]

SUPPORTED = (">=1.0", "<1.3")
"""The LangGraph versions the instrumentor is tested with (also the extra's range)."""
_LOWEST = (1, 0)
_BEYOND = (1, 3)

# stream modes LangGraph knows; "tools" exists from 1.2 on
MODES = frozenset(("values", "updates", "custom", "messages", "checkpoints", "tasks", "debug", "tools"))


def installed_version() -> str | None:
    """Return the installed ``langgraph`` distribution's version, or None if it is absent."""
    try:
        return metadata.version("langgraph")
    except metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    # "1.2.22" -> (1, 2, 22); "1.3.0rc1" -> (1, 3, 0): pre-releases count as their release
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def supported(version: str) -> bool:
    """Return whether ``version`` of LangGraph is in the :data:`SUPPORTED` range."""
    release = _release(version)
    return _LOWEST <= release[:2] < _BEYOND


@dataclasses.dataclass(frozen=True, slots=True)
class Internals:
    """What the wrappers need from the installed LangGraph."""

    version: tuple[int, ...]
    pregel: type[Any]
    runner_module: Any
    ensure_config: Callable[..., Any]
    conf: str
    task_id_key: str
    runtime_key: str
    checkpoint_ns_key: str
    ns_sep: str
    hidden_tag: str
    runtime_type: type[Any]
    graph_interrupt: type[BaseException]
    parent_command: type[BaseException]
    bubble_up: type[BaseException]

    @property
    def has_v2(self) -> bool:
        """Whether ``stream()`` takes ``version=`` (from 1.1 on)."""
        return self.version[:2] >= (1, 1)

    @property
    def independent_interrupts(self) -> bool:
        """Whether an interrupt reaches ``values`` also when ``updates`` is streamed (from 1.1 on).

        LangGraph 1.0's ``PregelLoop.output_writes`` emits it to ``updates``, *else* to ``values``.
        """
        return self.version[:2] >= (1, 1)


def load(version: str) -> Internals:
    """Import the names the wrappers use from the installed LangGraph.

    Raises:
        ImportError: LangGraph is not installed, or lacks one of the names.
    """
    from langgraph._internal import _constants  # noqa: PLC0415 - imported at instrument()
    from langgraph._internal._config import ensure_config  # noqa: PLC0415 - imported at instrument()
    from langgraph.constants import TAG_HIDDEN  # noqa: PLC0415 - imported at instrument()
    from langgraph.errors import GraphBubbleUp, GraphInterrupt, ParentCommand  # noqa: PLC0415 - imported at instrument()
    from langgraph.pregel import _runner  # noqa: PLC0415 - imported at instrument()
    from langgraph.pregel.main import Pregel  # noqa: PLC0415 - imported at instrument()
    from langgraph.runtime import Runtime  # noqa: PLC0415 - imported at instrument()

    for name in ("run_with_retry", "arun_with_retry"):
        if not callable(getattr(_runner, name, None)):
            raise ImportError(f"langgraph.pregel._runner has no {name}")
    return Internals(
        version=_release(version),
        pregel=Pregel,
        runner_module=_runner,
        ensure_config=ensure_config,
        conf=_constants.CONF,
        task_id_key=_constants.CONFIG_KEY_TASK_ID,
        runtime_key=_constants.CONFIG_KEY_RUNTIME,
        checkpoint_ns_key=_constants.CONFIG_KEY_CHECKPOINT_NS,
        ns_sep=_constants.NS_SEP,
        hidden_tag=TAG_HIDDEN,
        runtime_type=Runtime,
        graph_interrupt=GraphInterrupt,
        parent_command=ParentCommand,
        bubble_up=GraphBubbleUp,
    )

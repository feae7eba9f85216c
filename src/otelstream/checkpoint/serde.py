"""How checkpoints are turned into bytes, and back.

Checkpointed state holds whatever nodes return: dicts, dataclasses, Pydantic models,
LangChain messages, exceptions. ``pickle`` round-trips all of them exactly, which is what
resuming needs. Loading a pickle runs code named in it, so a checkpoint store must be
trusted like the application's own code (see ``docs/security.md``): pass another
:class:`Serializer` to a checkpointer to store state differently.
"""

from __future__ import annotations

import pickle
from typing import Any, Protocol

from otelstream.errors import CheckpointError

__all__ = ["PickleSerializer", "Serializer"]


class Serializer(Protocol):
    """Turns checkpointed values into bytes and back."""

    def dumps(self, value: Any) -> bytes:
        """Return ``value`` as bytes."""
        ...

    def loads(self, data: bytes) -> Any:
        """Return the value ``data`` holds."""
        ...


class PickleSerializer:
    """Stores values with ``pickle`` (protocol 5): exact round trips of any picklable state."""

    def dumps(self, value: Any) -> bytes:
        """Return ``value`` pickled.

        Raises:
            CheckpointError: the value cannot be pickled (names its type).
        """
        try:
            return pickle.dumps(value, protocol=5)
        except Exception as exc:
            raise CheckpointError(
                f"Cannot checkpoint a value of type {type(value).__name__}: {exc}. "
                "State kept by a checkpointer must be picklable."
            ) from exc

    def loads(self, data: bytes) -> Any:
        """Return the value pickled in ``data``.

        Raises:
            CheckpointError: the bytes are not a readable pickle (a damaged store).
        """
        try:
            # checkpoint stores are trusted like code (see the module docstring)
            return pickle.loads(data)
        except Exception as exc:
            raise CheckpointError(f"Cannot read a checkpointed value: {exc}") from exc

"""The drive loop, written once sync and once async: plan, run, apply until the run is over.

The driver above the engine (``otelstream.stream``) iterates these and, at every point
they yield, hands the consumer the chunks that arrived; a nested run just exhausts them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from otelstream.engine.loop import RunLoop
from otelstream.engine.runner import AsyncWaker, SyncStepRunner, ThreadWaker, arun_step

__all__ = ["adrive", "drive"]


def drive(loop: RunLoop, runner: SyncStepRunner, waker: ThreadWaker | None, *, live: bool) -> Iterator[None]:
    """Run ``loop`` (already started) superstep by superstep; yield whenever chunks may be waiting.

    Args:
        loop: The run.
        runner: Runs each superstep's tasks.
        waker: Notified when a chunk arrives or a task finishes (``None``: nobody waits).
        live: Run nodes on worker threads so chunks reach the consumer while they run.
    """
    while loop.tick():
        yield
        yield from runner.run_step(loop, waker, live=live)
        loop.after_tick()
        yield


async def adrive(loop: RunLoop, waker: AsyncWaker | None) -> AsyncIterator[None]:
    """Async version of :func:`drive`: tasks run as asyncio tasks on the running loop."""
    while loop.tick():
        yield
        async for _ in arun_step(loop, waker):
            yield
        loop.after_tick()
        yield

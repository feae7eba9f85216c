"""Running one superstep's tasks: inline, on a thread pool, or as asyncio tasks.

The runners are generators that yield whenever the driver should look for new chunks
(a task finished, or the waker was notified), so live chunks reach the consumer while
nodes still run. Semantics follow LangGraph: with threads a failing task lets its siblings
finish (their updates are streamed) before the first error is raised; with asyncio the
siblings are cancelled.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from otelstream.engine.events import RunInfo, Task
from otelstream.engine.loop import RunLoop
from otelstream.engine.runtime import TaskContext, reset_task_context, set_task_context
from otelstream.engine.writes import add_task_note, no_sync_function
from otelstream.errors import GraphInterrupt, RunStopped

__all__ = ["AsyncWaker", "SyncStepRunner", "ThreadWaker", "Waker", "arun_step"]


class Waker(Protocol):
    """Wakes the driver: a chunk arrived or a task finished. ``notify`` is thread-safe."""

    def notify(self) -> None:
        """Wake the waiting driver (from any thread)."""
        ...


class ThreadWaker:
    """A waker for a driver thread that blocks."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        """Create an unset waker."""
        self._event = threading.Event()

    def notify(self) -> None:
        """Wake the waiting thread."""
        # Event.set takes a lock; a chunk burst notifies thousands of times per wake-up
        if not self._event.is_set():
            self._event.set()

    def wait(self) -> None:
        """Block until notified, then reset."""
        self._event.wait()
        self._event.clear()


class AsyncWaker:
    """A waker for a driver coroutine; ``notify`` may come from worker threads."""

    __slots__ = ("_event", "_loop", "_thread")

    def __init__(self) -> None:
        """Create an unset waker bound to the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._thread = threading.get_ident()

    def notify(self) -> None:
        """Wake the waiting coroutine, from the loop's thread or any other."""
        if threading.get_ident() == self._thread:
            self._event.set()
        else:
            try:
                self._loop.call_soon_threadsafe(self._event.set)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    async def wait(self) -> None:
        """Wait until notified, then reset."""
        await self._event.wait()
        self._event.clear()


def _node_kwargs(task: Task, ctx: TaskContext) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if task.node.takes_config:
        kwargs["config"] = task.config
    if task.node.takes_writer:
        kwargs["writer"] = ctx.writer
    return kwargs


def _retry_delay(policy: Any, attempt: int) -> float:
    interval = min(policy.max_interval, policy.initial_interval * policy.backoff_factor ** (attempt - 1))
    return float(interval + (random.uniform(0, 1) if policy.jitter else 0))


def _policy_for(task: Task, exc: Exception) -> Any:
    for policy in task.node.retry_policy:
        if policy.should_retry(exc):
            return policy
    return None


def _stoppable(write: Callable[[Any], None], run: RunInfo) -> Callable[[Any], None]:
    # the node's writer: once the run's consumer stopped reading, the next write stops the node
    stop = run.stop

    def guarded(chunk: Any) -> None:
        outcome = stop.stopped()
        if outcome is not None:
            raise RunStopped(outcome)
        write(chunk)

    return guarded


def run_task(loop: RunLoop, task: Task, on_outcome: Callable[[Task, bool], None] | None = None) -> None:
    """Run ``task``'s node (with retries) on the calling thread and record the outcome.

    ``on_outcome(task, failed)`` is told as soon as the node returned or finally raised,
    before the outcome's chunks are emitted.
    """
    ctx = TaskContext(task, loop.run, loop.observer, _stoppable(loop.observer.writer_for(loop.run, task), loop.run))
    node = task.node
    attempt = 0
    while True:
        attempt += 1
        try:
            task.writes = []  # a retry starts afresh, as in LangGraph
            task.interrupt_scope = loop.interrupt_scope(task)
            with loop.observer.task_scope(task, loop.run):
                token = set_task_context(ctx)
                try:
                    if node.is_subgraph:
                        result = node.action.invoke(task.input, task.config)
                    elif node.is_async:
                        raise TypeError(no_sync_function(task.name))
                    else:
                        result = node.action(task.input, **_node_kwargs(task, ctx))
                    loop.record_result(task, result)
                    loop.observer.node_returned(task, loop.run, result)
                finally:
                    reset_task_context(token)
        except GraphInterrupt as exc:
            # a pause, not a failure: never retried; the task commits with its interrupts
            task.writes, task.interrupts = [], exc.interrupts
        except Exception as exc:
            add_task_note(exc, task)  # on every failed attempt, as LangGraph does
            policy = _policy_for(task, exc)
            if policy is not None and attempt < policy.max_attempts:
                time.sleep(_retry_delay(policy, attempt))
                continue
            if on_outcome is not None:
                on_outcome(task, True)
            loop.fail_task(task, exc)
            return
        except BaseException as exc:
            loop.fail_task(task, exc)
            raise
        if on_outcome is not None:
            on_outcome(task, False)
        loop.commit_task(task)
        return


async def arun_task(loop: RunLoop, task: Task) -> None:
    """Async version of :func:`run_task`; sync nodes run in a worker thread.

    The outcome is not emitted here but by the asyncio task's done callback
    (:class:`_Committer`): LangGraph commits there too, so a sibling's next step runs before the
    update of a task that just finished is streamed.

    Raises:
        Exception: what the node raised, once retries are exhausted.
    """
    ctx = TaskContext(task, loop.run, loop.observer, _stoppable(loop.observer.writer_for(loop.run, task), loop.run))
    node = task.node
    attempt = 0
    while True:
        attempt += 1
        try:
            task.writes = []  # a retry starts afresh, as in LangGraph
            task.interrupt_scope = loop.interrupt_scope(task)
            with loop.observer.task_scope(task, loop.run):
                token = set_task_context(ctx)
                try:
                    if node.is_subgraph:
                        result = await node.action.ainvoke(task.input, task.config)
                    elif node.is_async:
                        result = await node.action(task.input, **_node_kwargs(task, ctx))
                    else:
                        # to_thread copies the context: the node span and task context follow
                        result = await asyncio.to_thread(node.action, task.input, **_node_kwargs(task, ctx))
                    await loop.arecord_result(task, result)
                    loop.observer.node_returned(task, loop.run, result)
                finally:
                    reset_task_context(token)
        except asyncio.CancelledError:
            loop.observer.task_ended(task, asyncio.CancelledError())
            raise
        except GraphInterrupt as exc:
            task.writes, task.interrupts = [], exc.interrupts  # a pause: commits, never retried
        except Exception as exc:
            add_task_note(exc, task)  # on every failed attempt, as LangGraph does
            policy = _policy_for(task, exc)
            if policy is not None and attempt < policy.max_attempts:
                await asyncio.sleep(_retry_delay(policy, attempt))
                continue
            raise
        return


class _Committer:
    """Emits each async task's outcome exactly once, from its done callback or earlier.

    The done callback is LangGraph's timing; but ``asyncio.wait`` may return a finished
    task before that callback ran (when the waker woke it in the same loop iteration), and
    the step must not be applied before every finished task was committed.
    """

    __slots__ = ("committed", "loop")

    def __init__(self, loop: RunLoop) -> None:
        self.loop = loop
        self.committed: set[asyncio.Future[None]] = set()

    def __call__(self, task: Task, future: asyncio.Future[None]) -> None:
        if future in self.committed or future.cancelled():
            return
        self.committed.add(future)
        error = future.exception()
        if error is None:
            self.loop.commit_task(task)
        else:
            self.loop.fail_task(task, error)


class _StepTracker:
    """Counts a threaded step's running tasks the way LangGraph's ``FuturesDict`` does.

    ``settled`` is cleared each time a task is submitted and set when every submitted task
    ended, or when a task ended and some task has failed. So after a failure the step waits
    for its running siblings only if a task was submitted after the failure was recorded:
    LangGraph's behaviour, timing-dependent there too (a node that fails at once, before
    its siblings are submitted, lets them finish and stream; one that fails later does not).

    A task's outcome is counted as soon as its node returned or raised, before its chunks
    are emitted (emitting through OpenTelemetry is slower than LangGraph's queue, and would
    otherwise shift the race); ``finished`` lists the tasks whose chunks were emitted.
    """

    __slots__ = ("counted", "failed", "finished", "lock", "pending", "settled", "signal", "waker")

    def __init__(self, waker: ThreadWaker | None) -> None:
        self.lock = threading.Lock()
        self.pending = 0
        self.failed = False
        self.counted: set[str] = set()
        self.finished: list[Task] = []
        self.settled = threading.Event()
        self.signal = threading.Semaphore(0)
        self.waker = waker

    def submitted(self, task: Task) -> None:
        with self.lock:
            self.settled.clear()
            self.pending += 1
            # a task that ended before it was registered settles now, as LangGraph's done
            # callback (added at registration) runs at once for a finished future
            if task.id in self.counted and (self.pending == 0 or self.failed):
                self.settled.set()

    def outcome(self, task: Task, failed: bool) -> None:
        with self.lock:
            if task.id in self.counted:
                return
            self.counted.add(task.id)
            self.pending -= 1
            self.failed = self.failed or failed
            if self.pending == 0 or self.failed:
                self.settled.set()

    def ended(self, task: Task, _future: object = None) -> None:
        self.outcome(task, task.error is not None)  # if run_task ended without counting it
        with self.lock:
            self.finished.append(task)
        self.signal.release()
        if self.waker is not None:
            self.waker.notify()

    def emitting(self) -> bool:
        """Return whether a counted task has not finished emitting its chunks yet."""
        with self.lock:
            return len(self.counted) > len(self.finished)


class SyncStepRunner:
    """Runs steps on the driver's thread when it can, on a lazily made thread pool otherwise.

    A single task runs inline unless chunks must flow while it runs (``live``), which is
    LangGraph's rule too. ``close()`` shuts the pool down, waiting for nodes still running
    after a failure; no thread outlives the run.
    """

    def __init__(self) -> None:
        """Create a runner without threads; the pool is made on first need."""
        self._executor: ThreadPoolExecutor | None = None

    def run_step(self, loop: RunLoop, waker: ThreadWaker | None, *, live: bool) -> Iterator[None]:
        """Run ``loop.tasks``; yield each time the driver should drain chunks.

        Raises:
            BaseException: the first task error in completion order.
        """
        tasks = loop.runnable
        if not tasks:  # a resumed step whose tasks all finished before the pause
            finished = []
        elif len(tasks) == 1 and (not live or waker is None):
            run_task(loop, tasks[0])
            finished = [tasks[0]]
        else:
            finished = yield from self._run_threaded(loop, tasks, waker)
        yield
        for task in finished:
            if task.error is not None:
                raise task.error

    def _run_threaded(
        self, loop: RunLoop, tasks: list[Task], waker: ThreadWaker | None
    ) -> Generator[None, None, list[Task]]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(thread_name_prefix="otelstream-node")
        tracker = _StepTracker(waker)
        futures = []
        for task in tasks:
            future = self._executor.submit(contextvars.copy_context().run, run_task, loop, task, tracker.outcome)
            # registered after submission, as LangGraph does (its callback may run at once)
            tracker.submitted(task)
            future.add_done_callback(functools.partial(tracker.ended, task))
            futures.append(future)
        seen = 0
        # wait for each task until one failed, as LangGraph does, then until settled
        while seen < len(tasks) and not any(t.error is not None for t in tracker.finished[:seen]):
            if waker is not None:
                waker.wait()
            else:
                tracker.signal.acquire()
            with tracker.lock:
                seen = len(tracker.finished)
            yield
        while not tracker.settled.is_set() or tracker.emitting():
            if waker is not None:
                waker.wait()
                yield
            else:
                tracker.signal.acquire()
        for future in futures:
            if future.done() and (exc := future.exception()) is not None:
                raise exc  # a BaseException escaped run_task
        with tracker.lock:
            return list(tracker.finished)

    def close(self) -> None:
        """Shut the thread pool down, waiting for running nodes."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


async def arun_step(loop: RunLoop, waker: AsyncWaker | None) -> AsyncIterator[None]:
    """Run ``loop.tasks`` as asyncio tasks; yield whenever chunks may be waiting.

    On the first failure the remaining tasks are cancelled, as LangGraph does.

    Raises:
        BaseException: the first task error.
    """
    commit = _Committer(loop)
    pending: dict[asyncio.Future[None], Task] = {}
    for task in loop.runnable:
        started: asyncio.Future[None] = asyncio.ensure_future(arun_task(loop, task))
        started.add_done_callback(functools.partial(commit, task))
        pending[started] = task
    try:
        while pending:
            wait_for: set[asyncio.Future[Any]] = set(pending)
            waiter: asyncio.Task[None] | None = None
            if waker is not None:
                waiter = asyncio.ensure_future(waker.wait())
                wait_for.add(waiter)
            done, _ = await asyncio.wait(wait_for, return_when=asyncio.FIRST_COMPLETED)
            if waiter is not None and waiter not in done:
                waiter.cancel()
            failed: BaseException | None = None
            for future, task in list(pending.items()):  # in task order: deterministic
                if future not in done:
                    continue
                commit(task, future)
                del pending[future]
                if failed is None and not future.cancelled():
                    failed = future.exception()
            if failed is not None:
                raise failed
            yield
    finally:
        for running in pending:
            running.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    yield

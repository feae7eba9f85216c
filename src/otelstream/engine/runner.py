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
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from otelstream.engine.events import Task
from otelstream.engine.loop import RunLoop
from otelstream.engine.runtime import TaskContext, reset_task_context, set_task_context

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


def run_task(loop: RunLoop, task: Task) -> None:
    """Run ``task``'s node (with retries) on the calling thread and record the outcome."""
    ctx = TaskContext(task, loop.run, loop.observer, loop.observer.writer_for(loop.run, task))
    node = task.node
    attempt = 0
    while True:
        attempt += 1
        try:
            with loop.observer.task_scope(task, loop.run):
                token = set_task_context(ctx)
                try:
                    if node.is_subgraph:
                        result = node.action.invoke(task.input, task.config)
                    elif node.is_async:
                        raise TypeError(f'No synchronous function provided to "{task.name}"')
                    else:
                        result = node.action(task.input, **_node_kwargs(task, ctx))
                    loop.record_result(task, result)
                finally:
                    reset_task_context(token)
        except Exception as exc:
            policy = _policy_for(task, exc)
            if policy is not None and attempt < policy.max_attempts:
                time.sleep(_retry_delay(policy, attempt))
                continue
            loop.fail_task(task, exc)
            return
        except BaseException as exc:
            loop.fail_task(task, exc)
            raise
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
    ctx = TaskContext(task, loop.run, loop.observer, loop.observer.writer_for(loop.run, task))
    node = task.node
    attempt = 0
    while True:
        attempt += 1
        try:
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
                    loop.record_result(task, result)
                finally:
                    reset_task_context(token)
        except asyncio.CancelledError:
            loop.observer.task_ended(task, asyncio.CancelledError())
            raise
        except Exception as exc:
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


class SyncStepRunner:
    """Runs steps on the driver's thread when it can, on a lazily made thread pool otherwise.

    A single task runs inline unless chunks must flow while it runs (``live``), which is
    LangGraph's rule too. ``close()`` shuts the pool down; no thread outlives the run.
    """

    def __init__(self) -> None:
        """Create a runner without threads; the pool is made on first need."""
        self._executor: ThreadPoolExecutor | None = None

    def run_step(self, loop: RunLoop, waker: ThreadWaker | None, *, live: bool) -> Iterator[None]:
        """Run ``loop.tasks``; yield each time the driver should drain chunks.

        Raises:
            BaseException: the first task error in completion order, once all tasks ended.
        """
        tasks = loop.tasks
        finished: list[Task] = []
        if len(tasks) == 1 and (not live or waker is None):
            run_task(loop, tasks[0])
            finished.append(tasks[0])
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(thread_name_prefix="otelstream-node")
            done = threading.Semaphore(0)
            lock = threading.Lock()

            def on_done(task: Task) -> Any:
                def callback(_: Future[None]) -> None:
                    with lock:
                        finished.append(task)
                    done.release()
                    if waker is not None:
                        waker.notify()

                return callback

            futures = []
            for task in tasks:
                context = contextvars.copy_context()
                future = self._executor.submit(context.run, run_task, loop, task)
                future.add_done_callback(on_done(task))
                futures.append(future)
            remaining = len(tasks)
            while remaining:
                if waker is not None:
                    waker.wait()
                    while done.acquire(blocking=False):
                        remaining -= 1
                else:
                    done.acquire()
                    remaining -= 1
                yield
            for future in futures:
                exc = future.exception()
                if exc is not None:  # a BaseException escaped run_task
                    raise exc
        yield
        for task in finished:
            if task.error is not None:
                raise task.error

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
    for task in loop.tasks:
        future = asyncio.ensure_future(arun_task(loop, task))
        future.add_done_callback(functools.partial(commit, task))
        pending[future] = task
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
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    yield

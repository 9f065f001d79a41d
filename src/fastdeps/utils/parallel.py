"""Lazy, bounded parallel map, with a serial fallback.

With ``--use-feature=fast-deps``, pip downloads the wheels that the resolver
picked with :func:`map_multithread`, so the shape of these functions follows
from that job:

- Lazy: the input is pulled one chunk at a time, never all at once, so that a
  long or generated list of downloads keeps memory flat and the caller's
  generator runs only as fast as the workers free up.
- Completion order: downloads finish out of order (a 20 MB wheel next to a
  20 kB one); yielding each result as soon as it is ready lets the caller
  install, verify or report progress without waiting for the slowest file.
  Results therefore come back in no particular order: a ``func`` whose result
  must be matched to its input should return the input along with it.
- Bounded: at most ``max_workers`` calls of ``func`` run at the same time, and
  at most ``(max_workers + 1) * chunksize`` items are pulled from the input
  ahead of the results already yielded.
- Stops cleanly: when ``func`` raises, when the caller stops iterating (break,
  ``close()``, an exception in the loop body, Ctrl-C), nothing new is started,
  work not yet started is cancelled, and the calls already running are waited
  for, so that no call outlives the iterator and touches files that the
  caller is about to clean up. The input is never drained. A caller that may
  stop early should close the iterator (``contextlib.closing``) rather than
  leave the pool to the garbage collector.

Some platforms cannot run the pools at all; there both functions fall back to
a plain lazy ``map()`` in the calling thread, which gives the same results.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Executor

__all__ = ["map_multiprocess", "map_multithread"]

S = TypeVar("S")
T = TypeVar("T")

# pip's session keeps at most 10 connections per host (requests' default
# pool size). More download threads than that against one index would open
# connections that urllib3 then throws away, with a "Connection pool is full"
# warning for each, so 10 is also the point past which threads stop helping.
DEFAULT_THREAD_WORKERS = 10


def _can_start_threads() -> bool:
    """Whether this interpreter can run a thread.

    WebAssembly builds (Emscripten, WASI) import ``threading`` but fail to
    start a thread; a build may also lack the module entirely. Trying once is
    the only reliable test, and it costs one short-lived thread.
    """
    try:
        import threading

        probe = threading.Thread(target=lambda: None, name="pip-parallel-probe")
        probe.start()
        probe.join()
    except (ImportError, RuntimeError):
        return False
    return True


def _can_share_process_locks() -> bool:
    """Whether processes can share locks, which ProcessPoolExecutor needs.

    ``multiprocessing.synchronize`` refuses to import where the OS has no
    working ``sem_open`` (Android, some BSDs, AWS Lambda).
    """
    try:
        import multiprocessing.synchronize  # noqa: F401
    except ImportError:
        return False
    return True


# Decided once, at import: the answer cannot change during a run. Tests
# monkeypatch these two names.
_THREADS_WORK = _can_start_threads()
# A process pool also needs threads: it is fed by a manager thread.
PROCESS_POOLS_WORK = _THREADS_WORK and _can_share_process_locks()


def map_multithread(
    func: Callable[[S], T],
    iterable: Iterable[S],
    chunksize: int = 1,
    *,
    max_workers: int | None = None,
) -> Generator[T, None, None]:
    """Yield ``func(item)`` for each item of ``iterable``, from a thread pool.

    Meant for I/O-bound work such as downloads. Results come in completion
    order. ``chunksize`` items are handed to a worker at a time. The default
    ``max_workers`` is :data:`DEFAULT_THREAD_WORKERS`. An exception raised
    by ``func`` reaches the caller as the same object. Without working
    threads, this is ``map(func, iterable)`` in the calling thread.
    """
    _check_sizes(chunksize, max_workers)
    if not _THREADS_WORK:
        return _map_serially(func, iterable)
    from concurrent.futures import ThreadPoolExecutor

    def make_pool(workers: int) -> Executor:
        return ThreadPoolExecutor(workers, thread_name_prefix="pip-parallel")

    workers = max_workers or DEFAULT_THREAD_WORKERS
    return _map_in_pool(make_pool, func, iterable, chunksize, workers)


def map_multiprocess(
    func: Callable[[S], T],
    iterable: Iterable[S],
    chunksize: int = 1,
    *,
    max_workers: int | None = None,
) -> Generator[T, None, None]:
    """Yield ``func(item)`` for each item of ``iterable``, from a process pool.

    Meant for CPU-bound work; ``func``, the items and the results must be
    picklable, and an exception raised by ``func`` reaches the caller as a
    copy of the same type. Raise ``chunksize`` to amortise the cost of
    sending work to another process. The default ``max_workers`` is the
    number of CPUs. Where processes cannot share locks, or threads do not
    work, this is ``map(func, iterable)`` in the calling process.

    For one-off CPU-bound work, pip's long-standing request for
    ``utils.parallel`` (pip issues 8187, 12712): each call has a pool of
    its own, started at the call.
    """
    _check_sizes(chunksize, max_workers)
    if not PROCESS_POOLS_WORK:
        return _map_serially(func, iterable)
    from concurrent.futures import ProcessPoolExecutor

    workers = max_workers or _default_process_workers()
    return _map_in_pool(ProcessPoolExecutor, func, iterable, chunksize, workers)


def _check_sizes(chunksize: int, max_workers: int | None) -> None:
    """Reject bad sizes at the call, not at the first ``next()``."""
    if chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, not {chunksize}")
    if max_workers is not None and max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, not {max_workers}")


def _default_process_workers() -> int:
    workers = os.cpu_count() or 1
    if sys.platform == "win32":
        # ProcessPoolExecutor refuses more: Windows cannot wait on more
        # process handles at once.
        workers = min(workers, 61)
    return workers


def _map_serially(
    func: Callable[[S], T], iterable: Iterable[S]
) -> Generator[T, None, None]:
    # A generator rather than a bare map object, so that every path returns
    # the same type, with close().
    yield from map(func, iterable)


def _map_in_pool(
    make_pool: Callable[[int], Executor],
    func: Callable[[S], T],
    iterable: Iterable[S],
    chunksize: int,
    max_workers: int,
) -> Generator[T, None, None]:
    """Keep ``max_workers`` chunks running; yield each chunk's results.

    The input is only ever pulled here, in the consuming thread, so it need
    not be thread-safe. The pool is created on the first ``next()``.
    """
    # Imported here because concurrent.futures imports threading, which a
    # platform without threads may lack; the serial path never gets here.
    from concurrent.futures import FIRST_COMPLETED, wait

    chunks = _chunked(iter(iterable), chunksize)
    pool = make_pool(max_workers)
    try:
        running = {
            pool.submit(_call_each, func, chunk)
            for chunk in islice(chunks, max_workers)
        }
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            # Collect the whole batch before starting anything, so that a
            # failure anywhere in it stops the map with nothing new started.
            batch = [future.result() for future in finished]
            for results in batch:
                # Refill before yielding, so the worker that just freed up
                # has work while the caller handles these results.
                running.update(
                    pool.submit(_call_each, func, chunk) for chunk in islice(chunks, 1)
                )
                yield from results
    finally:
        # Waiting for the calls already running costs nothing, even on Ctrl-C:
        # the interpreter joins pool threads at exit anyway. In exchange, none
        # still runs once the caller's error handling or cleanup begins.
        pool.shutdown(wait=True, cancel_futures=True)


def _chunked(items: Iterator[S], size: int) -> Iterator[list[S]]:
    while chunk := list(islice(items, size)):
        yield chunk


def _call_each(func: Callable[[S], T], chunk: list[S]) -> list[T]:
    # Module level, so that a process pool can pickle it.
    return [func(item) for item in chunk]

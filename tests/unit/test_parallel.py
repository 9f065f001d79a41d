"""map_multithread / map_multiprocess: lazy, bounded, completion order, clean stops.

Every ordering here is forced with events and barriers, never with sleeps:
each call of ``func`` that must stay in flight blocks on its own gate until
the test opens it. The gates time out after a minute only so that a broken
implementation fails instead of hanging the suite.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import pytest

from fastdeps.utils import parallel
from fastdeps.utils.parallel import map_multiprocess, map_multithread

T = TypeVar("T")

HANG_GUARD = 60.0  # seconds; never reached unless the code under test is broken


class RecordingInput:
    """An input that counts how many items were pulled, and by which threads."""

    def __init__(self, items: Iterable[int]) -> None:
        self._items = items
        self.pulled = 0
        self.pulling_threads: set[int] = set()

    def __iter__(self) -> Iterator[int]:
        for item in self._items:
            self.pulled += 1
            self.pulling_threads.add(threading.get_ident())
            yield item


class GatedCalls:
    """A ``func`` whose call for each item blocks until that item is released."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[int, threading.Event] = {}
        self._all_released = False
        self.started: list[int] = []
        self.finished: list[int] = []

    def _gate(self, item: int) -> threading.Event:
        with self._lock:
            gate = self._gates.setdefault(item, threading.Event())
            if self._all_released:
                gate.set()
            return gate

    def release(self, *items: int) -> None:
        for item in items:
            self._gate(item).set()

    def release_all(self) -> None:
        with self._lock:
            self._all_released = True
            gates = list(self._gates.values())
        for gate in gates:
            gate.set()

    def __call__(self, item: int) -> int:
        with self._lock:
            self.started.append(item)
        if not self._gate(item).wait(HANG_GUARD):
            raise AssertionError(f"item {item} was never released")
        with self._lock:
            self.finished.append(item)
        return item


class RecordingThreadPool(concurrent.futures.ThreadPoolExecutor):
    """ThreadPoolExecutor that records shutdown() and runs hooks before it."""

    shutdowns: list[tuple[bool, bool]] = []
    before_shutdown: list[Callable[[], None]] = []

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.shutdowns.append((wait, cancel_futures))
        for hook in self.before_shutdown:
            hook()
        super().shutdown(wait, cancel_futures=cancel_futures)


@pytest.fixture
def pool_spy(monkeypatch: pytest.MonkeyPatch) -> type[RecordingThreadPool]:
    """Make map_multithread use RecordingThreadPool, with fresh records."""
    monkeypatch.setattr(RecordingThreadPool, "shutdowns", [])
    monkeypatch.setattr(RecordingThreadPool, "before_shutdown", [])
    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", RecordingThreadPool)
    return RecordingThreadPool


def pool_threads() -> list[threading.Thread]:
    return [
        thread
        for thread in threading.enumerate()
        if thread.name.startswith("pip-parallel")
    ]


def square(item: int) -> int:
    return item * item


def square_with_pid(item: int) -> tuple[int, int]:
    return item * item, os.getpid()


def fail_on_three(item: int) -> int:
    if item == 3:
        raise ValueError("item 3 is bad")
    return item


def take_within_bound(
    results: Iterator[T], source: RecordingInput, count: int, bound: int
) -> list[T]:
    """Take ``count`` results, checking how far ahead the input was pulled."""
    taken: list[T] = []
    for result in results:
        taken.append(result)
        assert source.pulled - len(taken) <= bound
        if len(taken) == count:
            break
    return taken


# Thread pool: results and order


def test_every_item_gives_exactly_one_result() -> None:
    results = list(map_multithread(square, range(50), max_workers=4))
    assert sorted(results) == [item * item for item in range(50)]


def test_chunks_give_every_result_too() -> None:
    results = list(map_multithread(square, range(50), 7, max_workers=3))
    assert sorted(results) == [item * item for item in range(50)]


def test_empty_input_gives_no_results() -> None:
    assert list(map_multithread(square, [], max_workers=2)) == []


def test_results_come_in_completion_order() -> None:
    calls = GatedCalls()
    results = map_multithread(calls, range(3), max_workers=3)
    calls.release(2)
    assert next(results) == 2
    calls.release(0)
    assert next(results) == 0
    calls.release(1)
    assert next(results) == 1
    with pytest.raises(StopIteration):
        next(results)


# Thread pool: laziness


def test_nothing_is_pulled_or_started_before_the_first_next(
    pool_spy: type[RecordingThreadPool],
) -> None:
    source = RecordingInput(itertools.count())
    results = map_multithread(square, source, max_workers=2)
    results.close()
    assert source.pulled == 0
    assert pool_spy.shutdowns == []


def test_one_item_is_pulled_per_freed_worker() -> None:
    calls = GatedCalls()
    source = RecordingInput(itertools.count())
    results = map_multithread(calls, source, max_workers=3)
    calls.release(0)
    assert next(results) == 0
    assert source.pulled == 4  # 0, 1, 2 to start with; 3 in place of 0
    calls.release(2)
    assert next(results) == 2
    assert source.pulled == 5
    calls.release_all()
    results.close()
    assert source.pulled == 5


def test_input_is_pulled_at_most_one_chunk_past_the_running_ones() -> None:
    source = RecordingInput(itertools.count())
    results = map_multithread(square, source, 3, max_workers=2)
    taken = take_within_bound(results, source, count=30, bound=(2 + 1) * 3)
    results.close()
    assert len(taken) == 30
    assert source.pulled % 3 == 0  # whole chunks only


def test_input_is_pulled_only_by_the_consuming_thread() -> None:
    source = RecordingInput(range(20))
    list(map_multithread(square, source, max_workers=4))
    assert source.pulling_threads == {threading.get_ident()}


# Thread pool: concurrency


def count_peak_concurrency(max_workers: int | None, parties: int) -> int:
    """Run 3 * parties calls that wait for each other in groups of ``parties``.

    The barrier proves that ``parties`` calls do run at once; the counter
    proves that no more than that ever do.
    """
    barrier = threading.Barrier(parties, timeout=HANG_GUARD)
    lock = threading.Lock()
    running = 0
    peak = 0

    def meet(item: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        barrier.wait()
        with lock:
            running -= 1
        return item

    list(map_multithread(meet, range(3 * parties), max_workers=max_workers))
    return peak


def test_at_most_max_workers_calls_run_at_once() -> None:
    assert count_peak_concurrency(max_workers=3, parties=3) == 3


def test_default_max_workers_for_threads_matches_pips_connection_pool() -> None:
    assert parallel.DEFAULT_THREAD_WORKERS == 10
    assert count_peak_concurrency(max_workers=None, parties=10) == 10


# Thread pool: failures and early stops


def test_exception_from_func_reaches_the_caller_as_is() -> None:
    error = ValueError("item 3 is bad")

    def fail_on_three(item: int) -> int:
        if item == 3:
            raise error
        return item

    with pytest.raises(ValueError) as excinfo:
        list(map_multithread(fail_on_three, range(10), max_workers=2))
    assert excinfo.value is error


def test_failure_starts_nothing_new_and_lets_running_calls_finish(
    pool_spy: type[RecordingThreadPool],
) -> None:
    both_started = threading.Barrier(2, timeout=HANG_GUARD)
    calls = GatedCalls()
    pool_spy.before_shutdown.append(calls.release_all)

    def fail_on_zero(item: int) -> int:
        both_started.wait()
        if item == 0:
            raise KeyError(item)
        return calls(item)

    source = RecordingInput(itertools.count())
    with pytest.raises(KeyError):
        list(map_multithread(fail_on_zero, source, max_workers=2))
    assert source.pulled == 2
    assert calls.finished == [1]  # item 1 ran to its end before the map raised
    assert pool_spy.shutdowns == [(True, True)]
    assert pool_threads() == []


def test_keyboard_interrupt_in_the_loop_body_stops_the_map(
    pool_spy: type[RecordingThreadPool],
) -> None:
    calls = GatedCalls()
    pool_spy.before_shutdown.append(calls.release_all)
    source = RecordingInput(itertools.count())
    calls.release(0)
    with pytest.raises(KeyboardInterrupt):
        for _ in map_multithread(calls, source, max_workers=2):
            raise KeyboardInterrupt
    assert source.pulled == 3  # 0 and 1, then 2 in place of 0; never drained
    assert sorted(calls.started) == sorted(calls.finished)
    assert set(calls.started) <= {0, 1, 2}
    assert pool_spy.shutdowns == [(True, True)]
    assert pool_threads() == []


def test_keyboard_interrupt_while_waiting_for_results_stops_the_map(
    pool_spy: type[RecordingThreadPool],
) -> None:
    # A KeyboardInterrupt raised inside the generator, as Ctrl-C is when it
    # arrives while the consumer waits for the next result.
    calls = GatedCalls()
    pool_spy.before_shutdown.append(calls.release_all)

    def interrupt_on_zero(item: int) -> int:
        if item == 0:
            raise KeyboardInterrupt
        return calls(item)

    source = RecordingInput(itertools.count())
    with pytest.raises(KeyboardInterrupt):
        list(map_multithread(interrupt_on_zero, source, max_workers=2))
    assert source.pulled == 2
    assert set(calls.started) <= {1}
    assert pool_spy.shutdowns == [(True, True)]
    assert pool_threads() == []


def test_breaking_out_of_the_loop_shuts_the_pool_down(
    pool_spy: type[RecordingThreadPool],
) -> None:
    calls = GatedCalls()
    pool_spy.before_shutdown.append(calls.release_all)
    source = RecordingInput(itertools.count())
    calls.release(0)
    for result in map_multithread(calls, source, max_workers=2):
        assert result == 0
        break
    assert source.pulled == 3
    assert sorted(calls.started) == sorted(calls.finished)
    assert pool_spy.shutdowns == [(True, True)]
    assert pool_threads() == []


@pytest.mark.parametrize("map_function", [map_multithread, map_multiprocess])
@pytest.mark.parametrize(
    ("chunksize", "max_workers", "message"),
    [
        (0, None, "chunksize must be at least 1, not 0"),
        (1, 0, "max_workers must be at least 1, not 0"),
        (1, -2, "max_workers must be at least 1, not -2"),
    ],
)
def test_bad_sizes_are_rejected_at_the_call(
    map_function: Callable[..., Iterator[int]],
    chunksize: int,
    max_workers: int | None,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        map_function(square, [1], chunksize, max_workers=max_workers)


# Process pool


def test_map_multiprocess_runs_func_in_other_processes() -> None:
    results = list(map_multiprocess(square_with_pid, range(20), 3, max_workers=2))
    assert sorted(square for square, _ in results) == [n * n for n in range(20)]
    assert os.getpid() not in {pid for _, pid in results}


def test_map_multiprocess_raises_the_exception_type_from_func() -> None:
    with pytest.raises(ValueError, match="^item 3 is bad$"):
        list(map_multiprocess(fail_on_three, range(10), max_workers=2))


def test_map_multiprocess_pulls_input_lazily() -> None:
    source = RecordingInput(itertools.count())
    results = map_multiprocess(square, source, 2, max_workers=2)
    taken = take_within_bound(results, source, count=10, bound=(2 + 1) * 2)
    results.close()
    assert len(taken) == 10


# Platform support and the serial fallback


@pytest.mark.skipif(
    sys.platform in ("emscripten", "wasi"), reason="no threads on WebAssembly"
)
def test_pools_are_used_where_the_platform_has_threads_and_sem_open() -> None:
    assert parallel._THREADS_WORK is True
    assert parallel.PROCESS_POOLS_WORK is True


def test_thread_probe_fails_when_a_thread_cannot_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert parallel._can_start_threads() is False


def test_thread_probe_fails_without_a_threading_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "threading", None)
        threads_work = parallel._can_start_threads()
    assert threads_work is False


def test_process_lock_probe_fails_without_sem_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "multiprocessing.synchronize", None)
    assert parallel._can_share_process_locks() is False


def test_availability_is_decided_when_the_module_is_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    try:
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, "multiprocessing.synchronize", None)
            importlib.reload(parallel)
            decided = (parallel._THREADS_WORK, parallel.PROCESS_POOLS_WORK)
    finally:
        importlib.reload(parallel)
    assert decided == (True, False)


def test_map_multithread_without_threads_is_a_lazy_serial_map(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "_THREADS_WORK", False)
    caller = threading.get_ident()

    def square_in_caller(item: int) -> int:
        assert threading.get_ident() == caller
        return item * item

    source = RecordingInput(itertools.count())
    results = map_multithread(square_in_caller, source, 4, max_workers=3)
    assert next(results) == 0
    assert source.pulled == 1
    assert [next(results) for _ in range(9)] == [n * n for n in range(1, 10)]
    assert source.pulled == 10
    results.close()
    assert list(map_multithread(square, range(20))) == list(map(square, range(20)))


def test_map_multiprocess_without_sem_open_is_a_serial_map(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "PROCESS_POOLS_WORK", False)
    results = list(map_multiprocess(square_with_pid, range(20), 3, max_workers=2))
    assert results == [(n * n, os.getpid()) for n in range(20)]


def test_serial_map_stops_at_keyboard_interrupt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "_THREADS_WORK", False)

    def interrupt_on_two(item: int) -> int:
        if item == 2:
            raise KeyboardInterrupt
        return item

    source = RecordingInput(itertools.count())
    with pytest.raises(KeyboardInterrupt):
        list(map_multithread(interrupt_on_two, source))
    assert source.pulled == 3

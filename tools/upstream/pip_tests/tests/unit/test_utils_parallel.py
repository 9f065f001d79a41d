"""Test the lazy, bounded parallel map of pip._internal.utils.parallel."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import closing

import pytest

from pip._internal.utils import parallel
from pip._internal.utils.parallel import map_multiprocess, map_multithread

ParallelMap = Callable[..., Iterator[int]]
MAPS: list[ParallelMap] = [map_multithread, map_multiprocess]


def square(number: int) -> int:
    return number * number


def fail_on_three(number: int) -> int:
    if number == 3:
        raise ValueError("three")
    return number


@pytest.mark.parametrize("map_func", MAPS)
@pytest.mark.parametrize("chunksize", [1, 3])
def test_results_are_those_of_map(map_func: ParallelMap, chunksize: int) -> None:
    results = map_func(square, range(20), chunksize, max_workers=2)

    assert sorted(results) == [square(number) for number in range(20)]


@pytest.mark.parametrize("map_func", MAPS)
def test_an_error_reaches_the_caller_with_its_type(map_func: ParallelMap) -> None:
    with pytest.raises(ValueError, match="three"):
        list(map_func(fail_on_three, range(6), max_workers=2))


@pytest.mark.parametrize("map_func", MAPS)
def test_sizes_are_checked_at_the_call(map_func: ParallelMap) -> None:
    with pytest.raises(ValueError, match="chunksize must be at least 1, not 0"):
        map_func(square, [], 0)


def test_threads_run_at_once_but_never_more_than_max_workers() -> None:
    both_started = threading.Barrier(2, timeout=30)
    lock = threading.Lock()
    running = 0
    most_running = 0

    def work(number: int) -> int:
        nonlocal running, most_running
        with lock:
            running += 1
            most_running = max(most_running, running)
        if number < 2:
            both_started.wait()
        with lock:
            running -= 1
        return number

    assert sorted(map_multithread(work, range(10), max_workers=2)) == list(range(10))
    assert most_running == 2


def test_the_input_is_pulled_only_as_workers_free_up() -> None:
    pulled = 0

    def numbers() -> Iterator[int]:
        nonlocal pulled
        for number in range(1000):
            pulled += 1
            yield number

    with closing(map_multithread(square, numbers(), 2, max_workers=2)) as results:
        next(results)
        # At most (max_workers + 1) chunks ahead of what was yielded.
        assert pulled <= 3 * 2 + 2
    assert pulled < 1000


def test_without_threads_work_is_done_in_the_calling_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "_THREADS_WORK", False)
    threads = list(
        map_multithread(lambda _: threading.current_thread(), range(3), max_workers=2)
    )

    assert threads == [threading.current_thread()] * 3


def test_without_process_locks_work_is_done_in_the_calling_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "PROCESS_POOLS_WORK", False)
    # A lambda cannot be pickled: only a serial map can call it.
    results = list(map_multiprocess(lambda number: number + 1, range(3)))

    assert results == [1, 2, 3]

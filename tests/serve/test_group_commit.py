"""The group commit: what callers hand in during a run is done together in the next run."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from shelfwise.serve.group_commit import GroupCommit


def test_callers_who_arrive_during_a_run_share_the_next_one() -> None:
    release, started = threading.Event(), threading.Event()
    runs: list[list[int]] = []

    def run(items: list[int]) -> int:
        runs.append(items)
        started.set()
        assert release.wait(5)
        return sum(items)

    commit: GroupCommit[int, int] = GroupCommit(run, max_items=100, name="test")
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(commit.submit, [1])
        assert started.wait(5)  # the first run is under way: the others queue behind it
        rest = [pool.submit(commit.submit, [10 * n, 10 * n + 1]) for n in range(1, 6)]
        while sum(len(items) for items, _ in commit._queue) < 10:
            threading.Event().wait(0.001)
        release.set()
        assert first.result(5) == 1
        shared = sum(range(10, 60, 10)) * 2 + 5  # every later caller's items, in one run
        assert [f.result(5) for f in rest] == [shared] * 5
    commit.close()
    assert runs == [[1], [10, 11, 20, 21, 30, 31, 40, 41, 50, 51]]
    assert (commit.runs, commit.callers) == (2, 6)


def test_a_run_takes_whole_callers_up_to_its_limit_and_a_large_caller_alone() -> None:
    release = threading.Event()
    runs: list[list[int]] = []

    def run(items: list[int]) -> int:
        runs.append(items)
        assert release.wait(5)
        return len(items)

    commit: GroupCommit[int, int] = GroupCommit(run, max_items=4, name="test")
    with ThreadPoolExecutor(4) as pool:
        blocker = pool.submit(commit.submit, [0])
        while not runs:
            threading.Event().wait(0.001)
        sizes = ([1, 2], [3, 4], [5, 6, 7, 8, 9])  # queued in this order
        futures = []
        for items in sizes:
            futures.append(pool.submit(commit.submit, items))
            while len(commit._queue) < len(futures):
                threading.Event().wait(0.001)
        release.set()
        assert blocker.result(5) == 1
        assert [f.result(5) for f in futures] == [4, 4, 5]
    commit.close()
    assert runs == [[0], [1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_a_failed_run_fails_each_of_its_callers_and_the_next_run_goes_on() -> None:
    def run(items: list[int]) -> int:
        if -1 in items:
            raise ValueError("the store refused the batch")
        return len(items)

    commit: GroupCommit[int, int] = GroupCommit(run, max_items=10, name="test")
    with pytest.raises(ValueError, match="refused"):
        commit.submit([1, -1])
    assert commit.submit([1, 2, 3]) == 3
    commit.close()
    with pytest.raises(RuntimeError, match="closed"):
        commit.submit([1])

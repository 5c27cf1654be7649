"""Fetching the next batch while the current one is used (``imap_fetch.answers_ahead``)."""

from __future__ import annotations

import threading

import pytest

from sla_daemon.adapters.imap_fetch import AHEAD_LIMIT, Answer, answers_ahead


class FakeFetch:
    """A fetch that answers each UID with a small header, noting which thread asked."""

    def __init__(self, *, failing: int | None = None, size: int = 10) -> None:
        self.failing = failing
        self.size = size
        self.calls: list[tuple[int, str]] = []
        self.second_started = threading.Event()

    def __call__(self, batch: list[int]) -> Answer:
        """The answer to ``batch``, or OSError for the failing batch."""
        self.calls.append((batch[0], threading.current_thread().name))
        if batch[0] != 1:
            self.second_started.set()
        if batch[0] == self.failing:
            raise OSError("connection reset")
        return {uid: {b"BODY[HEADER]": b"x" * self.size} for uid in batch}


def test_every_batch_comes_with_its_answer_in_order_the_next_fetched_by_a_thread() -> None:
    """Batches come in order; while the first is in use the second is being fetched."""
    fetch = FakeFetch()
    seen = []
    for batch, answer in answers_ahead(fetch, [[1, 2], [3], [4, 5]], abandoned=pytest.fail):
        if batch == [1, 2]:
            assert fetch.second_started.wait(30)  # fetched while the first is still in use
        seen.append((batch, sorted(answer)))
    assert seen == [([1, 2], [1, 2]), ([3], [3]), ([4, 5], [4, 5])]
    assert [first for first, _ in fetch.calls] == [1, 3, 4]
    assert all(name.startswith("imap-fetch") for _, name in fetch.calls)


def test_a_failed_fetch_raises_where_its_answer_is_taken() -> None:
    """The error of the fetch ahead comes out of the iteration, after the batches before."""
    answers = answers_ahead(FakeFetch(failing=3), [[1], [3], [4]], abandoned=pytest.fail)
    assert next(answers)[0] == [1]
    with pytest.raises(OSError, match="connection reset"):
        next(answers)


def test_stopping_early_after_a_failed_fetch_ahead_reports_the_connection() -> None:
    """A caller that stops while the fetch ahead failed hears of it: the connection is unsafe."""
    reported: list[BaseException] = []
    answers = answers_ahead(FakeFetch(failing=3), [[1], [3]], abandoned=reported.append)
    assert next(answers)[0] == [1]
    answers.close()
    assert [str(exc) for exc in reported] == ["connection reset"]


def test_stopping_early_after_a_good_fetch_ahead_reports_nothing() -> None:
    """A fetch ahead that succeeded left the connection clean: nothing is reported."""
    answers = answers_ahead(FakeFetch(), [[1], [3]], abandoned=pytest.fail)
    assert next(answers)[0] == [1]
    answers.close()


def test_a_large_answer_is_not_fetched_ahead_of() -> None:
    """After an answer of AHEAD_LIMIT bytes or more, the next batch is fetched when needed."""
    fetch = FakeFetch(size=AHEAD_LIMIT)
    batches = [batch for batch, _ in answers_ahead(fetch, [[1], [3]], abandoned=pytest.fail)]
    assert batches == [[1], [3]]
    assert fetch.calls[1] == (3, threading.current_thread().name)


def test_no_batches_fetch_nothing() -> None:
    """An empty list of batches sends no FETCH."""
    fetch = FakeFetch()
    assert list(answers_ahead(fetch, [], abandoned=pytest.fail)) == []
    assert fetch.calls == []
